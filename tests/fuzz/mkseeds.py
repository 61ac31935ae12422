#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Cut seed inputs for the fuzz targets out of real qcow2 images.

usage: mkseeds.py OUTDIR IMAGE...

Writes OUTDIR/<target>/<image>[-<what>] in each target's input format (see
the comment at the top of tests/fuzz/fuzz_<target>.c):

  fuzz_header    file size + the file up to the end of the header cluster,
                 snapshot table and bitmap directory (trailing zeros past
                 the header extensions cut: the target reads a short first
                 cluster, and snapshot table bytes past its input as zeros)
  fuzz_snapshot  geometry + file size + the snapshot table
  fuzz_entries   geometry + the first refcount block + the L1 table, the
                 first L2 table and the refcount table
  fuzz_overlap   cluster size + the image's metadata regions
  fuzz_bitmap    cluster size + the bitmap directory
"""
import os
import struct
import sys

EXT_BITMAPS = 0x23852875
MAX_PREFIX = 1 << 20


def header(b):
    """The fields the seeds need, as qcow2.rst lays them out."""
    f = struct.unpack('>IIQIIQIIQQIIQ', b[:72])
    h = dict(zip(('magic', 'version', 'backing_file_offset', 'backing_file_size',
                  'cluster_bits', 'size', 'crypt_method', 'l1_size',
                  'l1_table_offset', 'refcount_table_offset',
                  'refcount_table_clusters', 'nb_snapshots',
                  'snapshots_offset'), f))
    h['incompat'], h['refcount_order'], h['header_length'] = 0, 4, 72
    if h['version'] >= 3:
        h['incompat'], _, _, h['refcount_order'], h['header_length'] = \
            struct.unpack('>QQQII', b[72:104])
    h['cs'] = 1 << h['cluster_bits']
    h['bitmap_dir'] = None
    off = h['header_length']
    end = min(h['cs'], len(b))
    while off + 8 <= end:
        typ, ln = struct.unpack('>II', b[off:off + 8])
        if typ == 0:
            off += 8
            break
        if typ == EXT_BITMAPS and ln == 24:
            nb, _, size, doff = struct.unpack('>IIQQ', b[off + 8:off + 32])
            h['bitmap_dir'] = (doff, size, nb)
        off += 8 + (ln + 7) // 8 * 8
    # The header, its extensions and the backing file name: bytes a seed
    # keeps even where they are zero.
    h['meta_end'] = max(off, h['backing_file_offset'] + h['backing_file_size'])
    return h


def snapshot_table_len(b, h):
    """Bytes from snapshots_offset to the end of the last entry."""
    off = h['snapshots_offset']
    pos = off
    end = off
    for _ in range(h['nb_snapshots']):
        _, _, id_len, name_len = struct.unpack('>QIHH', b[pos:pos + 16])
        extra, = struct.unpack('>I', b[pos + 36:pos + 40])
        size = 40 + extra + id_len + name_len
        end = pos + size
        pos += (size + 7) // 8 * 8
    return end - off


def put(outdir, target, name, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def seeds(outdir, path):
    name = os.path.basename(path).rsplit('.', 1)[0]
    with open(path, 'rb') as f:
        b = f.read()
    h = header(b)
    cs, cb = h['cs'], h['cluster_bits']
    v3 = h['version'] >= 3
    extl2 = bool(h['incompat'] & 16)
    size = len(b)

    # fuzz_header: everything the header names that the target reads.
    end = cs
    if h['nb_snapshots']:
        end = max(end, h['snapshots_offset'] + snapshot_table_len(b, h))
    if h['bitmap_dir']:
        end = max(end, h['bitmap_dir'][0] + h['bitmap_dir'][1])
    prefix = b[:min(end, MAX_PREFIX)].rstrip(b'\0')
    prefix = b[:max(len(prefix), h['meta_end'])]
    put(outdir, 'fuzz_header', name, struct.pack('>Q', size) + prefix)

    if h['nb_snapshots']:
        off = h['snapshots_offset']
        table = b[off:off + snapshot_table_len(b, h)]
        geo = bytes([(1 if v3 else 0) | ((cb - 9) << 1)])
        put(outdir, 'fuzz_snapshot', name, geo + struct.pack('>Q', size) + b'\0' + table)

    # fuzz_entries: flags bit 0 v3, bit 1 extended L2, bit 2 data file,
    # bits 3..5 refcount_order.
    flags = (1 if v3 else 0) | (2 if extl2 else 0) | (4 if h['incompat'] & 4 else 0)
    flags |= (h['refcount_order'] % 8) << 3
    geo = bytes([cb - 9, flags]) + struct.pack('>Q', size)
    rt = h['refcount_table_offset']
    refblock = b'\0' * 64
    if rt + 8 <= size:
        rb, = struct.unpack('>Q', b[rt:rt + 8])
        rb &= ~0x1ff
        if 0 < rb and rb + 64 <= size:
            refblock = b[rb:rb + 64]
    pre = geo + refblock + b'\0'
    l1 = b[h['l1_table_offset']:h['l1_table_offset'] + 8 * h['l1_size']]
    if l1.strip(b'\0'):
        put(outdir, 'fuzz_entries', name + '-l1', pre + l1[:4096])
    for i in range(0, len(l1), 8):
        l2, = struct.unpack('>Q', l1[i:i + 8])
        l2 &= 0x00fffffffffffe00
        if l2 and l2 + cs <= size:
            table = b[l2:l2 + min(cs, 8192)]
            cut = len(table.rstrip(b'\0'))
            step = 16 if extl2 else 8
            put(outdir, 'fuzz_entries', name + '-l2',
                pre + table[:(cut + step - 1) // step * step])
            break
    put(outdir, 'fuzz_entries', name + '-reftable',
        pre + b[rt:rt + min(8 * 64, h['refcount_table_clusters'] * cs)])

    # fuzz_overlap: the regions qcow2_image_regions() would list.
    regions = [(0, cs), (h['l1_table_offset'], 8 * h['l1_size']),
               (rt, h['refcount_table_clusters'] * cs)]
    if h['nb_snapshots']:
        regions.append((h['snapshots_offset'], 40 * h['nb_snapshots']))
    if h['bitmap_dir']:
        regions.append(h['bitmap_dir'][:2])
    regions.append((cs, cs))     # the query: the first cluster after the header
    put(outdir, 'fuzz_overlap', name,
        bytes([cb - 9]) + b''.join(struct.pack('>QQ', s, ln) for s, ln in regions))

    if h['bitmap_dir']:
        doff, dsize, _ = h['bitmap_dir']
        put(outdir, 'fuzz_bitmap', name, bytes([cb - 9]) + b[doff:doff + dsize])


def crafted(outdir, path):
    """A valid header qemu-img does not write: 70 feature names (64 kept)."""
    with open(path, 'rb') as f:
        b = bytearray(f.read())
    h = header(bytes(b))
    names = b''.join(struct.pack('>BB46s', i % 3, i % 64, b'feature %d' % i)
                     for i in range(70))
    ext = struct.pack('>II', 0x6803f857, len(names)) + names + b'\0' * 8
    off = h['header_length']
    if h['backing_file_offset'] or off + len(ext) > h['cs']:
        return
    b[off:off + len(ext)] = ext
    put(outdir, 'fuzz_header', 'crafted-70-feature-names',
        struct.pack('>Q', len(b)) + bytes(b[:off + len(ext)]))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for path in sys.argv[2:]:
        seeds(sys.argv[1], path)
        if os.path.basename(path) == 'v3-64k.qcow2':
            crafted(sys.argv[1], path)


if __name__ == '__main__':
    main()
