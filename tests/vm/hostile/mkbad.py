#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Make hostile qcow2 images for tests/vm/guest/t-hostile.sh.

    mkbad.py OUTDIR

Valid images are made with qemu-img/qemu-io, then copies are patched
byte by byte, deterministically: header fields out of range, header
extensions that lie, snapshot tables that are cut short, L1/L2 entries that
point outside the file or into metadata, reserved bits, compressed data
that does not decompress, backing chains that loop or are missing.

OUTDIR/cases.txt gets one line per case, fields separated by '|':

    NAME|refuse|IMAGE|CTL_TEXT|KERNEL_TEXT|LAYERS
        attaching must be refused: qcowctl prints one line containing
        CTL_TEXT; the kernel, asked directly (LAYERS: space separated
        q:PATH / r:PATH backing layers, the way qcowctl would pass them),
        refuses and logs one line containing KERNEL_TEXT.

    NAME|eio|IMAGE|BAD_OFF|BAD_LEN|GOOD_OFF|GOOD_LEN|GOOD_SHA256
        attaching works; reading BAD_LEN bytes at BAD_OFF fails with EIO
        and marks the image corrupt; reading GOOD_LEN bytes at GOOD_OFF
        still works and gives data whose sha256 is GOOD_SHA256.

Nothing here depends on qemu's choice of host offsets: every patch is
located by parsing the image.
"""

import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys

K = 1024
M = 1024 * K
G = 1024 * M

COPIED = 1 << 63
COMPRESSED = 1 << 62

EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_BITMAPS = 0x23852875

# Header field offsets (docs/interop/qcow2.rst).
H_MAGIC = 0
H_VERSION = 4
H_BACKING_OFFSET = 8
H_BACKING_SIZE = 16
H_CLUSTER_BITS = 20
H_SIZE = 24
H_CRYPT = 32
H_L1_SIZE = 36
H_L1_OFFSET = 40
H_RT_OFFSET = 48
H_RT_CLUSTERS = 56
H_NB_SNAPSHOTS = 60
H_SNAPSHOTS_OFFSET = 64
H_INCOMPAT = 72
H_REFCOUNT_ORDER = 96
H_HEADER_LENGTH = 100
H_COMPRESSION_TYPE = 104


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def qemu_io(img, *cmds):
    args = ['qemu-io', '-f', 'qcow2']
    for c in cmds:
        args += ['-c', c]
    run(*args, img)


class Image:
    """A qcow2 file opened for patching."""

    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as f:
            self.data = bytearray(f.read())
        self.cluster_bits = self.u32(H_CLUSTER_BITS)
        self.cluster_size = 1 << self.cluster_bits
        self.version = self.u32(H_VERSION)
        self.extended_l2 = self.version >= 3 and bool(self.u64(H_INCOMPAT) & (1 << 4))

    def save(self, path):
        with open(path, 'wb') as f:
            f.write(self.data)

    def u16(self, off):
        return struct.unpack_from('>H', self.data, off)[0]

    def u32(self, off):
        return struct.unpack_from('>I', self.data, off)[0]

    def u64(self, off):
        return struct.unpack_from('>Q', self.data, off)[0]

    def put16(self, off, v):
        struct.pack_into('>H', self.data, off, v)

    def put32(self, off, v):
        struct.pack_into('>I', self.data, off, v)

    def put64(self, off, v):
        struct.pack_into('>Q', self.data, off, v)

    def extensions(self):
        """[(type, offset of the extension header, length)]"""
        off = self.u32(H_HEADER_LENGTH) if self.version >= 3 else 72
        out = []
        while off + 8 <= self.cluster_size:
            t, n = struct.unpack_from('>II', self.data, off)
            if t == 0:
                break
            out.append((t, off, n))
            off += 8 + ((n + 7) & ~7)
        return out

    def extension(self, etype):
        for t, off, n in self.extensions():
            if t == etype:
                return off, n
        raise KeyError(hex(etype))

    def l1_entry_off(self, i):
        return self.u64(H_L1_OFFSET) + 8 * i

    def l2_table(self, guest):
        """Host offset of the L2 table that maps guest offset @guest."""
        l2_bits = self.cluster_bits - (4 if self.extended_l2 else 3)
        i = guest >> (self.cluster_bits + l2_bits)
        return self.u64(self.l1_entry_off(i)) & 0x00FFFFFFFFFFFE00

    def l2_entry_off(self, guest):
        esize = 16 if self.extended_l2 else 8
        l2_bits = self.cluster_bits - (4 if self.extended_l2 else 3)
        idx = (guest >> self.cluster_bits) & ((1 << l2_bits) - 1)
        table = self.l2_table(guest)
        assert table, 'no L2 table for guest 0x%x' % guest
        return table + esize * idx

    def compressed(self, word):
        """(host offset, length in bytes) of a compressed L2 entry."""
        x = 62 - (self.cluster_bits - 8)
        off = word & ((1 << x) - 1)
        nb = (word >> x) & ((1 << (self.cluster_bits - 8)) - 1)
        return off, (nb + 1) * 512 - (off & 511)

    def compressed_word(self, off, nb):
        x = 62 - (self.cluster_bits - 8)
        return COMPRESSED | (nb << x) | off


class Gen:
    def __init__(self, out):
        self.out = out
        self.base = os.path.join(out, 'base')
        os.makedirs(self.base, exist_ok=True)
        self.lines = []
        self.names = set()

    def path(self, name):
        return os.path.join(self.out, name + '.qcow2')

    def add(self, name, kind, *fields):
        assert name not in self.names, name
        self.names.add(name)
        self.lines.append('|'.join([name, kind] + [str(f) for f in fields]))

    def patched(self, name, base):
        """A copy of image @base to patch as case @name."""
        img = Image(base)
        img.path = self.path(name)
        return img

    # A header/table case: attach must be refused naming @field.
    def refuse(self, name, base, patch, ctl_text, kernel_text=None, layers=''):
        img = self.patched(name, base)
        patch(img)
        img.save(img.path)
        self.add(name, 'refuse', img.path, ctl_text, kernel_text or ctl_text, layers)

    # An entry case: reading [bad_off, +bad_len) fails, the good range works.
    def eio(self, name, base, patch, bad, good, good_data):
        img = self.patched(name, base)
        patch(img)
        img.save(img.path)
        assert len(good_data) == good[1]
        self.add(name, 'eio', img.path, bad[0], bad[1], good[0], good[1],
                 hashlib.sha256(good_data).hexdigest())

    def write(self):
        with open(os.path.join(self.out, 'cases.txt'), 'w') as f:
            for line in self.lines:
                f.write(line + '\n')


def text_data(size, seed):
    """Deterministic compressible but not trivial data (words)."""
    rnd = random.Random(seed)
    words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz')
                     for _ in range(rnd.randint(2, 9))) for _ in range(4000)]
    out = bytearray()
    while len(out) < size:
        out += (' '.join(rnd.choice(words) for _ in range(12)) + '\n').encode()
    return bytes(out[:size])


def make_bases(g):
    b = g.base
    bases = {}

    # plain: v3, 64K clusters, 1G (two L1 entries), data at 0 and 600M
    p = os.path.join(b, 'plain.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', p, '1G')
    qemu_io(p, 'write -P 0x11 0 128k', 'write -P 0x22 600M 64k')
    bases['plain'] = p

    # v2: compat=0.10, 64K clusters
    p = os.path.join(b, 'v2.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', p, '16M')
    qemu_io(p, 'write -P 0x11 0 128k')
    bases['v2'] = p

    # backed: a raw backing file, backing format extension, a bitmap
    raw = os.path.join(b, 'b.raw')
    run('qemu-img', 'create', '-q', '-f', 'raw', raw, '16M')
    p = os.path.join(b, 'backed.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'b.raw', '-F', 'raw', p, '16M')
    qemu_io(p, 'write -P 0x11 0 128k')
    bases['backed'] = p
    p = os.path.join(b, 'bitmap.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', p, '16M')
    run('qemu-img', 'bitmap', '--add', p, 'b0')
    bases['bitmap'] = p

    # snap: one internal snapshot
    p = os.path.join(b, 'snap.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', p, '16M')
    qemu_io(p, 'write -P 0x11 0 128k')
    run('qemu-img', 'snapshot', '-c', 'first', p)
    qemu_io(p, 'write -P 0x33 0 64k')
    bases['snap'] = p

    # compressed, zlib and zstd: 256K of text in 64K clusters
    src = os.path.join(b, 'text.raw')
    text = text_data(256 * K, 1)
    with open(src, 'wb') as f:
        f.write(text)
    bases['text'] = text
    for ctype in ('zlib', 'zstd'):
        p = os.path.join(b, ctype + '.qcow2')
        run('qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o',
            'compression_type=' + ctype, src, p)
        bases[ctype] = p

    # extended L2: 64K clusters (2K subclusters)
    p = os.path.join(b, 'extl2.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', p, '16M')
    qemu_io(p, 'write -P 0x11 0 4k', 'write -P 0x11 64k 64k')
    bases['extl2'] = p
    return bases


def header_cases(g, bases):
    plain = bases['plain']

    def setter(off, v, width=32):
        def patch(img):
            (img.put32 if width == 32 else img.put64)(off, v)
        return patch

    g.refuse('magic', plain, setter(H_MAGIC, 0x514649FA), 'magic')
    g.refuse('version-1', plain, setter(H_VERSION, 1), 'version')
    g.refuse('version-4', plain, setter(H_VERSION, 4), 'version')
    g.refuse('cluster-bits-8', plain, setter(H_CLUSTER_BITS, 8), 'cluster_bits')
    g.refuse('cluster-bits-22', plain, setter(H_CLUSTER_BITS, 22), 'cluster_bits')
    g.refuse('header-length-small', plain, setter(H_HEADER_LENGTH, 96), 'header_length')
    g.refuse('header-length-unaligned', plain, setter(H_HEADER_LENGTH, 108), 'header_length')
    g.refuse('header-length-huge', plain, setter(H_HEADER_LENGTH, 1 << 20), 'header_length')
    g.refuse('size-huge', plain, setter(H_SIZE, 1 << 62, 64), 'size: virtual size')
    # 1G in 64K clusters needs 2 L1 entries
    g.refuse('l1-size-small', plain, setter(H_L1_SIZE, 1), 'l1_size')
    g.refuse('l1-size-huge', plain, setter(H_L1_SIZE, 0x7FFFFFFF), 'l1_size')

    def l1_off(delta=None, value=None):
        def patch(img):
            v = value if value is not None else img.u64(H_L1_OFFSET) + delta
            img.put64(H_L1_OFFSET, v)
        return patch

    g.refuse('l1-offset-misaligned', plain, l1_off(delta=512), 'l1_table_offset')
    g.refuse('l1-offset-past-eof', plain, l1_off(value=1 << 40), 'l1_table_offset')
    g.refuse('l1-offset-zero', plain, l1_off(value=0), 'l1_table_offset')

    def l1_on_reftable(img):
        img.put64(H_L1_OFFSET, img.u64(H_RT_OFFSET))
    g.refuse('l1-overlaps-reftable', plain, l1_on_reftable, 'overlaps')

    def rt_off(delta=None, value=None):
        def patch(img):
            v = value if value is not None else img.u64(H_RT_OFFSET) + delta
            img.put64(H_RT_OFFSET, v)
        return patch

    g.refuse('reftable-offset-misaligned', plain, rt_off(delta=512), 'refcount_table_offset')
    g.refuse('reftable-offset-past-eof', plain, rt_off(value=1 << 40), 'refcount_table_offset')
    g.refuse('reftable-clusters-0', plain, setter(H_RT_CLUSTERS, 0), 'refcount_table_clusters')
    g.refuse('reftable-clusters-huge', plain, setter(H_RT_CLUSTERS, 0xFFFFFFFF),
             'refcount_table_clusters')
    g.refuse('nb-snapshots-huge', plain, setter(H_NB_SNAPSHOTS, 0x7FFFFFFF), 'nb_snapshots')

    def snapshots_past_eof(img):
        img.put32(H_NB_SNAPSHOTS, 1)
        img.put64(H_SNAPSHOTS_OFFSET, 1 << 40)
    g.refuse('snapshots-offset-past-eof', plain, snapshots_past_eof, 'snapshots_offset')
    g.refuse('refcount-order-7', plain, setter(H_REFCOUNT_ORDER, 7), 'refcount_order')
    g.refuse('crypt-aes', plain, setter(H_CRYPT, 1), 'crypt_method')
    g.refuse('crypt-luks', plain, setter(H_CRYPT, 2), 'crypt_method')
    g.refuse('crypt-7', plain, setter(H_CRYPT, 7), 'crypt_method')

    def incompat(bits, ctype=None):
        def patch(img):
            img.put64(H_INCOMPAT, img.u64(H_INCOMPAT) | bits)
            if ctype is not None:
                img.data[H_COMPRESSION_TYPE] = ctype
        return patch

    g.refuse('incompat-unknown-bit', plain, incompat(1 << 7), 'incompatible_features')
    g.refuse('compression-bit-without-type', plain, incompat(1 << 3), 'compression_type')
    g.refuse('compression-type-without-bit', plain, incompat(0, 1), 'compression_type')
    g.refuse('compression-type-unknown', plain, incompat(1 << 3, 2), 'compression_type')

    def extl2_small_cluster(img):
        img.put64(H_INCOMPAT, img.u64(H_INCOMPAT) | (1 << 4))
        img.put32(H_CLUSTER_BITS, 13)
        img.put32(H_L1_SIZE, 64)
    g.refuse('extl2-cluster-8k', plain, extl2_small_cluster, 'cluster_bits')

    backed = bases['backed']
    raw = 'r:' + os.path.join(g.base, 'b.raw')
    g.refuse('backing-file-size-2000', backed, setter(H_BACKING_SIZE, 2000),
             'backing_file_size', layers=raw)
    g.refuse('backing-file-offset-past-cluster', backed,
             setter(H_BACKING_OFFSET, 1 << 16, 64), 'backing_file_offset', layers=raw)
    g.refuse('backing-file-offset-in-header', backed,
             setter(H_BACKING_OFFSET, 48, 64), 'backing_file_offset', layers=raw)

    def ext_runs_past(img):
        off, _ = img.extension(EXT_FEATURE_TABLE)
        img.put32(off + 4, 0x10000)
    g.refuse('extension-length-past-cluster', plain, ext_runs_past, 'header extension')

    def ext_dup_backing_format(img):
        off, _ = img.extension(EXT_FEATURE_TABLE)
        img.put32(off, EXT_BACKING_FORMAT)
    g.refuse('extension-duplicate-backing-format', backed, ext_dup_backing_format,
             'header extension', layers=raw)

    def bitmaps_bad_length(img):
        off, n = img.extension(EXT_BITMAPS)
        assert n == 24
        img.put32(off + 4, 16)
    g.refuse('bitmaps-extension-length', bases['bitmap'], bitmaps_bad_length,
             'bitmaps extension')

    snap = bases['snap']

    def snap_entry(img):
        assert img.u32(H_NB_SNAPSHOTS) == 1
        return img.u64(H_SNAPSHOTS_OFFSET)

    def snap_truncated(img):
        # Move the table to a new cluster at the end of the file and cut
        # the file 8 bytes into the entry's extra data.
        off = snap_entry(img)
        entry = img.data[off:off + 40 + 8]
        end = (len(img.data) + img.cluster_size - 1) & ~(img.cluster_size - 1)
        img.data[len(img.data):] = bytes(end - len(img.data)) + entry
        img.put64(H_SNAPSHOTS_OFFSET, end)
    g.refuse('snapshot-entry-truncated', snap, snap_truncated, 'snapshot table')

    def snap_id_len_0(img):
        img.put16(snap_entry(img) + 12, 0)
    g.refuse('snapshot-id-length-0', snap, snap_id_len_0, 'snapshot id_str_size')

    def snap_l1_past_eof(img):
        img.put64(snap_entry(img), 1 << 40)
    g.refuse('snapshot-l1-past-eof', snap, snap_l1_past_eof, 'snapshot l1_table_offset')


def chain_cases(g):
    d = os.path.join(g.out, 'loop')
    os.makedirs(d, exist_ok=True)
    a, b = os.path.join(d, 'a.qcow2'), os.path.join(d, 'b.qcow2')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', a, '16M')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'a.qcow2', '-F', 'qcow2', b)
    run('qemu-img', 'rebase', '-u', '-b', 'b.qcow2', '-F', 'qcow2', a)
    g.add('backing-loop', 'refuse', a, 'backing chain loops', 'backing chain loops',
          'q:%s q:%s' % (b, a))

    m = g.path('backing-missing')
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', 'gone.raw', '-F', 'raw', m, '16M')
    g.add('backing-missing', 'refuse', m, 'No such file or directory',
          'no backing layer was given', '')


def entry_cases(g, bases):
    plain = bases['plain']
    c = 64 * K
    # L1[0] maps [0, 512M); L1[1] still maps the 0x22 data at 600M.
    l1_bad = (0, c)
    l1_good = (600 * M, c)
    l1_good_data = b'\x22' * c
    # L2 entry of cluster 0; cluster 1 (same table) is good.
    l2_bad = (0, c)
    l2_good = (c, c)
    l2_good_data = b'\x11' * c

    def l1(fn):
        def patch(img):
            off = img.l1_entry_off(0)
            img.put64(off, fn(img, img.u64(off)))
        return patch

    def l2(fn, guest=0):
        def patch(img):
            off = img.l2_entry_off(guest)
            img.put64(off, fn(img, img.u64(off)))
        return patch

    g.eio('l1-entry-past-eof', plain, l1(lambda i, v: COPIED | (1 << 40)),
          l1_bad, l1_good, l1_good_data)
    g.eio('l1-entry-misaligned', plain, l1(lambda i, v: v + 512),
          l1_bad, l1_good, l1_good_data)
    g.eio('l1-entry-reserved-bit', plain, l1(lambda i, v: v | (1 << 60)),
          l1_bad, l1_good, l1_good_data)
    g.eio('l1-entry-into-l1', plain, l1(lambda i, v: COPIED | i.u64(H_L1_OFFSET)),
          l1_bad, l1_good, l1_good_data)
    g.eio('l1-entry-into-reftable', plain, l1(lambda i, v: COPIED | i.u64(H_RT_OFFSET)),
          l1_bad, l1_good, l1_good_data)

    g.eio('l2-entry-past-eof', plain, l2(lambda i, v: COPIED | (1 << 40)),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-entry-misaligned', plain, l2(lambda i, v: v + 512),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-entry-reserved-bit-low', plain, l2(lambda i, v: v | (1 << 3)),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-entry-reserved-bit-high', plain, l2(lambda i, v: v | (1 << 57)),
          l2_bad, l2_good, l2_good_data)
    # The header cluster is host offset 0, which alone means "unallocated":
    # COPIED with offset 0 is the entry that claims the header cluster.
    g.eio('l2-entry-into-header', plain, l2(lambda i, v: COPIED),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-entry-into-l1', plain, l2(lambda i, v: COPIED | i.u64(H_L1_OFFSET)),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-entry-into-reftable', plain, l2(lambda i, v: COPIED | i.u64(H_RT_OFFSET)),
          l2_bad, l2_good, l2_good_data)
    g.eio('l2-compressed-into-header', plain,
          l2(lambda i, v: i.compressed_word(100, 1)), l2_bad, l2_good, l2_good_data)
    g.eio('l2-zero-flag-in-v2', bases['v2'], l2(lambda i, v: v | 1),
          l2_bad, l2_good, l2_good_data)

    # Extended L2: subcluster 0 both allocated and zero; cluster 1 is good.
    def ext_bitmap(bitmap):
        def patch(img):
            img.put64(img.l2_entry_off(0) + 8, bitmap)
        return patch

    g.eio('extl2-alloc-and-zero', bases['extl2'], ext_bitmap((1 << 32) | 1),
          (0, 2 * K), l2_good, l2_good_data)

    def ext_unallocated_with_bits(img):
        off = img.l2_entry_off(2 * c)
        assert img.u64(off) == 0
        img.put64(off + 8, 1)
    g.eio('extl2-alloc-bits-without-cluster', bases['extl2'], ext_unallocated_with_bits,
          (2 * c, c), l2_good, l2_good_data)

    # Compressed clusters: cluster 0 is damaged, cluster 1 reads as the text.
    text = bases['text']
    for ctype in ('zlib', 'zstd'):
        base = bases[ctype]
        chk = Image(base)
        assert chk.u64(chk.l2_entry_off(0)) & COMPRESSED
        assert chk.u64(chk.l2_entry_off(c)) & COMPRESSED

        def garbage(img):
            off, _ = img.compressed(img.u64(img.l2_entry_off(0)))
            img.data[off:off + 64] = b'\xff' * 64
        g.eio('compressed-garbage-' + ctype, base, garbage, (0, c), (c, c), text[c:2 * c])

        def truncated(img):
            off, n = img.compressed(img.u64(img.l2_entry_off(0)))
            assert n > 1024, 'cluster 0 compresses to %d bytes' % n
            img.put64(img.l2_entry_off(0), img.compressed_word(off, 0))
        g.eio('compressed-truncated-' + ctype, base, truncated, (0, c), (c, c), text[c:2 * c])

    g.eio('compressed-copied', bases['zlib'], l2(lambda i, v: v | COPIED),
          (0, c), (c, c), text[c:2 * c])
    g.eio('compressed-past-eof', bases['zlib'],
          l2(lambda i, v: i.compressed_word(1 << 40, 1)), (0, c), (c, c), text[c:2 * c])


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: mkbad.py OUTDIR')
    out = os.path.abspath(sys.argv[1])
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    g = Gen(out)
    bases = make_bases(g)
    header_cases(g, bases)
    chain_cases(g)
    entry_cases(g, bases)
    g.write()
    print('mkbad: %d cases in %s' % (len(g.lines), out))


if __name__ == '__main__':
    main()
