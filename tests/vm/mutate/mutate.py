#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seeded mutation of valid qcow2 images (tests/vm/guest/t-mutate.sh).

    mutate.py gen BASES SEED OUT      write the mutant of SEED to OUT and
                                      print its layout and mutations
    mutate.py show BASES SEED...      only print them
    mutate.py fields BASES [LAYOUT]   count the mutable fields per structure

BASES is a directory made by mkbases.py.  A seed decides everything: the
base layout, how many mutations (1..4), and for each a structure, a field
of it and an operation, so `gen BASES SEED` makes the same bytes from the
same bases on any machine.

Structures (each parsed out of the valid base, never assumed):
    header      every header field (v2 and v3), with values chosen per field
    ext         header extension type and length words, the end marker,
                backing format / feature table / bitmaps extension payloads
    backing     the backing file name bytes
    l1          active L1 table entries (mostly allocated ones)
    l2          L2 entries: offset bits, COPIED/compressed/zero flags,
                reserved bits; with extended L2 also the subcluster bitmaps
    reftable    refcount table entries
    refblock    refcount entries (any width: 1..64 bits) of used clusters
    snapshot    snapshot table entry fields, id/name strings, extra data,
                and the entries of the snapshots' own L1 tables
    compressed  compressed cluster descriptors (offset and sector count)
                and the compressed bytes themselves
    bitmaps     bitmap directory entries and bitmap table entries
    file        the file cut short
Operations on integers: one or a few bit flips, 0, all ones, boundary
values (per field), small deltas, random; on offsets and table entries
also: point into another metadata structure (flags kept), at another data
cluster (a second reference), beyond the end of the file, misaligned, a
copy of a sibling entry; on flags: single feature bits; on strings/bytes:
byte flips, zero/0xff runs, random bytes.

Python 3 standard library only.
"""

import hashlib
import json
import os
import random
import struct
import sys

COPIED = 1 << 63
COMPRESSED = 1 << 62
OFF_MASK = 0x00FFFFFFFFFFFE00          # L1/L2/bitmap table entry offset bits
RT_MASK = 0xFFFFFFFFFFFFFE00           # refcount table entry offset bits

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_FDE = 0x0537BE77
EXT_DATA_FILE = 0x44415441

# Weights of the structures (those a layout lacks are skipped).
WEIGHTS = {
    'header': 14, 'ext': 8, 'backing': 3, 'l1': 10, 'l2': 20, 'l2bitmap': 6,
    'reftable': 7, 'refblock': 13, 'snapshot': 12, 'compressed': 12, 'bitmaps': 7,
    'file': 2,
}

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1


class Field:
    """An integer (or byte string) at @off in the image.

    Integers: @nbytes big-endian bytes at @off, of which @bits bits at
    @shift are the field (sub-byte refcounts share a byte).  Byte strings:
    kind 'bytes', @nbytes long.
    """

    def __init__(self, struct, name, off, nbytes, kind, bits=None, shift=0, info=None):
        self.struct = struct
        self.name = name
        self.off = off
        self.nbytes = nbytes
        self.kind = kind
        self.bits = bits if bits is not None else 8 * nbytes
        self.shift = shift
        self.info = info or {}

    def get(self, d):
        v = int.from_bytes(d[self.off:self.off + self.nbytes], 'big')
        return (v >> self.shift) & ((1 << self.bits) - 1)

    def put(self, d, value):
        mask = (1 << self.bits) - 1
        v = int.from_bytes(d[self.off:self.off + self.nbytes], 'big')
        v = (v & ~(mask << self.shift)) | ((value & mask) << self.shift)
        d[self.off:self.off + self.nbytes] = v.to_bytes(self.nbytes, 'big')


def u(d, off, n):
    return int.from_bytes(d[off:off + n], 'big')


def align(x, a):
    return (x + a - 1) // a * a


class Base:
    """A valid base image, parsed: its fields by structure, its metadata."""

    def __init__(self, name, layout, data):
        self.name = name
        self.layout = layout
        self.data = bytes(data)
        d = self.data
        self.version = u(d, 4, 4)
        self.cb = u(d, 20, 4)
        self.cs = 1 << self.cb
        self.size = u(d, 24, 8)
        self.l1_size = u(d, 36, 4)
        self.l1_off = u(d, 40, 8)
        self.rt_off = u(d, 48, 8)
        self.rt_clusters = u(d, 56, 4)
        self.nb_snap = u(d, 60, 4)
        self.snap_off = u(d, 64, 8)
        if self.version >= 3:
            self.incompat = u(d, 72, 8)
            self.rc_order = u(d, 96, 4)
            self.hdr_len = u(d, 100, 4)
        else:
            self.incompat = 0
            self.rc_order = 4
            self.hdr_len = 72
        self.ext_l2 = bool(self.incompat & (1 << 4))
        self.esize = 16 if self.ext_l2 else 8
        self.l2_entries = self.cs // self.esize
        self.eof = len(d)
        self.fields = {s: [] for s in WEIGHTS}
        # Preferred subsets (allocated entries, used clusters).
        self.hot = {s: [] for s in WEIGHTS}
        self.meta = []            # (what, offset, length)
        self.data_clusters = []   # host offsets of standard data clusters
        self._header()
        self._extensions()
        self._tables()
        self._refcounts()
        self._snapshots()
        self.fields['file'] = [Field('file', 'file length', 0, 0, 'file')]

    # -- helpers ---------------------------------------------------------
    def add(self, struct, name, off, nbytes, kind, hot=False, **kw):
        f = Field(struct, name, off, nbytes, kind, **kw)
        self.fields[struct].append(f)
        if hot:
            self.hot[struct].append(f)
        return f

    def cluster_of(self, off):
        return off & ~(self.cs - 1)

    # -- header and extensions --------------------------------------------
    HEADER = [
        (0, 4, 'magic', 'magic'), (4, 4, 'version', 'version'),
        (8, 8, 'backing_file_offset', 'hoff'), (16, 4, 'backing_file_size', 'count'),
        (20, 4, 'cluster_bits', 'cluster_bits'), (24, 8, 'size', 'vsize'),
        (32, 4, 'crypt_method', 'crypt'), (36, 4, 'l1_size', 'count'),
        (40, 8, 'l1_table_offset', 'hoff'), (48, 8, 'refcount_table_offset', 'hoff'),
        (56, 4, 'refcount_table_clusters', 'count'), (60, 4, 'nb_snapshots', 'count'),
        (64, 8, 'snapshots_offset', 'hoff'),
    ]
    HEADER3 = [
        (72, 8, 'incompatible_features', 'incompat'),
        (80, 8, 'compatible_features', 'compat'),
        (88, 8, 'autoclear_features', 'autoclear'),
        (96, 4, 'refcount_order', 'refcount_order'),
        (100, 4, 'header_length', 'header_length'),
    ]

    def _header(self):
        hdr = self.HEADER + (self.HEADER3 if self.version >= 3 else [])
        for off, n, name, kind in hdr:
            self.add('header', name, off, n, kind)
        if self.version >= 3 and self.hdr_len > 104:
            self.add('header', 'compression_type', 104, 1, 'compression_type')
        self.meta.append(('header', 0, self.cs))
        bo, bs = u(self.data, 8, 8), u(self.data, 16, 4)
        if bo and bs:
            self.add('backing', 'backing file name', bo, bs, 'bytes')

    def _extensions(self):
        d = self.data
        off = self.hdr_len
        self.bitmap_ext = None
        while off + 8 <= self.cs:
            t, n = u(d, off, 4), u(d, off + 4, 4)
            tname = {EXT_END: 'end', EXT_BACKING_FORMAT: 'backing format',
                     EXT_FEATURE_TABLE: 'feature table', EXT_BITMAPS: 'bitmaps'}.get(t, hex(t))
            self.add('ext', 'extension %s: type' % tname, off, 4, 'ext_type')
            if t == EXT_END:
                break
            self.add('ext', 'extension %s: length' % tname, off + 4, 4, 'ext_len',
                     info={'len': n})
            p = off + 8
            if t == EXT_BITMAPS and n >= 24:
                self.bitmap_ext = p
                self.add('ext', 'bitmaps: nb_bitmaps', p, 4, 'count')
                self.add('ext', 'bitmaps: reserved', p + 4, 4, 'count')
                self.add('ext', 'bitmaps: bitmap_directory_size', p + 8, 8, 'count')
                self.add('ext', 'bitmaps: bitmap_directory_offset', p + 16, 8, 'hoff')
            elif n:
                self.add('ext', 'extension %s: payload' % tname, p, n, 'bytes')
            off = p + align(n, 8)

    # -- L1/L2 and bitmaps --------------------------------------------------
    def _l2_table(self, l2off, l1i, struct_tag, seen):
        """Add the fields of the L2 table at @l2off (guest range of L1 index @l1i)."""
        d = self.data
        first = l2off not in seen
        seen.add(l2off)
        if first:
            self.meta.append(('L2 table', l2off, self.cs))
        if not first:
            return
        x = 62 - (self.cb - 8)
        # Entries past the end of the disk are never looked at: one will do.
        n = min(self.l2_entries, max(0, self.size - l1i * self.l2_entries * self.cs)
                // self.cs + 2)
        n = min(n, max(0, (self.eof - l2off) // self.esize))
        words = struct.unpack_from('>%dQ' % (n * self.esize // 8), d, l2off)
        for i in range(n):
            eoff = l2off + i * self.esize
            v = words[i * self.esize // 8]
            guest = (l1i * self.l2_entries + i) * self.cs
            if guest >= self.size + self.cs and v == 0:
                # Past the end of the disk: one unused entry is enough.
                if guest >= self.size + 2 * self.cs:
                    break
            info = {'guest': guest}
            where = 'L2 @0x%x[%d] (guest 0x%x%s)' % (l2off, i, guest, struct_tag)
            if v & COMPRESSED:
                coff = v & ((1 << x) - 1)
                nsect = (v >> x) & ((1 << (self.cb - 8)) - 1)
                clen = (nsect + 1) * 512 - (coff & 511)
                info.update(coff=coff, clen=clen)
                self.add('compressed', where + ' compressed descriptor', eoff, 8, 'cdesc',
                         hot=True, info=info)
                n = min(clen, max(0, self.eof - coff))
                if n > 0:
                    self.add('compressed', 'compressed bytes of guest 0x%x @0x%x+%d' %
                             (guest, coff, n), coff, n, 'cbytes', hot=True)
                    self.meta.append(('compressed data', coff & ~511, align(n, 512)))
                continue
            alloc = v != 0
            self.add('l2', where, eoff, 8, 'l2e', hot=alloc, info=info)
            if v & OFF_MASK:
                self.data_clusters.append(v & OFF_MASK)
            if self.ext_l2:
                self.add('l2bitmap', where + ' subcluster bitmap', eoff + 8, 8, 'l2bm',
                         hot=alloc or words[i * 2 + 1] != 0, info=info)

    def _tables(self):
        d = self.data
        self.meta.append(('L1 table', self.l1_off, align(self.l1_size * 8, 512)))
        self.seen_l2 = set()
        for i, v in enumerate(struct.unpack_from('>%dQ' % self.l1_size, d, self.l1_off)):
            eoff = self.l1_off + 8 * i
            self.add('l1', 'L1[%d] (guest 0x%x)' % (i, i * self.l2_entries * self.cs),
                     eoff, 8, 'l1e', hot=v != 0, info={'guest': i * self.l2_entries * self.cs})
            if v & OFF_MASK:
                self._l2_table(v & OFF_MASK, i, '', self.seen_l2)
        if self.bitmap_ext is None:
            return
        p = self.bitmap_ext
        nb, dsize, doff = u(d, p, 4), u(d, p + 8, 8), u(d, p + 16, 8)
        self.meta.append(('bitmap directory', doff, align(dsize, 512)))
        off = doff
        for _ in range(nb):
            toff, tsize = u(d, off, 8), u(d, off + 8, 4)
            nsz, xsz = u(d, off + 18, 2), u(d, off + 20, 4)
            name = d[off + 24 + xsz:off + 24 + xsz + nsz].decode(errors='replace')
            b = 'bitmap %s: ' % name
            for o, n, fname, kind in ((0, 8, 'bitmap_table_offset', 'hoff'),
                                      (8, 4, 'bitmap_table_size', 'count'),
                                      (12, 4, 'flags', 'bflags'), (16, 1, 'type', 'count'),
                                      (17, 1, 'granularity_bits', 'count'),
                                      (18, 2, 'name_size', 'count'),
                                      (20, 4, 'extra_data_size', 'count')):
                self.add('bitmaps', b + fname, off + o, n, kind)
            self.add('bitmaps', b + 'name', off + 24 + xsz, nsz, 'bytes')
            self.meta.append(('bitmap table', toff, align(tsize * 8, 512)))
            for i in range(tsize):
                v = u(d, toff + 8 * i, 8)
                self.add('bitmaps', b + 'table[%d]' % i, toff + 8 * i, 8, 'bte', hot=v != 0)
                if v & OFF_MASK:
                    self.meta.append(('bitmap data', v & OFF_MASK, self.cs))
            off += align(24 + xsz + nsz, 8)

    # -- refcounts ----------------------------------------------------------
    def _refcounts(self):
        d = self.data
        self.meta.append(('refcount table', self.rt_off, self.rt_clusters * self.cs))
        w = 1 << self.rc_order
        per = self.cs * 8 // w
        nclusters = (self.eof + self.cs - 1) // self.cs
        blocks = []
        # Entries far past the end of the file are all zero: a few will do.
        n = min(self.rt_clusters * self.cs // 8, nclusters // per + 8)
        words = struct.unpack_from('>%dQ' % n, d, self.rt_off)
        for i, v in enumerate(words):
            eoff = self.rt_off + 8 * i
            self.add('reftable', 'refcount table[%d]' % i, eoff, 8, 'rte', hot=v != 0)
            if v & RT_MASK:
                blocks.append((i, v & RT_MASK))
                self.meta.append(('refcount block', v & RT_MASK, self.cs))
        for ti, boff in blocks:
            for bi in range(per):
                ci = ti * per + bi
                if ci >= nclusters + 4:
                    break
                if w >= 8:
                    f = Field('refblock', '', boff + bi * (w // 8), w // 8, 'rc')
                else:
                    f = Field('refblock', '', boff + (bi * w) // 8, 1, 'rc', bits=w,
                              shift=(bi & ((8 // w) - 1)) * w)
                f.name = 'refcount of cluster 0x%x (block @0x%x[%d])' % (ci * self.cs, boff, bi)
                self.fields['refblock'].append(f)
                if f.get(d):
                    self.hot['refblock'].append(f)

    # -- snapshots ------------------------------------------------------------
    def _snapshots(self):
        d = self.data
        off = self.snap_off
        start = off
        for k in range(self.nb_snap):
            l1off, l1n = u(d, off, 8), u(d, off + 8, 4)
            idn, nmn, xsz = u(d, off + 12, 2), u(d, off + 14, 2), u(d, off + 36, 4)
            s = 'snapshot %d: ' % k
            for o, n, fname, kind in ((0, 8, 'l1_table_offset', 'hoff'), (8, 4, 'l1_size', 'count'),
                                      (12, 2, 'id_str_size', 'count'),
                                      (14, 2, 'name_size', 'count'),
                                      (16, 4, 'date_sec', 'count'), (20, 4, 'date_nsec', 'count'),
                                      (24, 8, 'vm_clock_nsec', 'count'),
                                      (32, 4, 'vm_state_size', 'count'),
                                      (36, 4, 'extra_data_size', 'count')):
                self.add('snapshot', s + fname, off + o, n, kind)
            for o, fname in ((0, 'vm_state_size_large'), (8, 'disk_size'), (16, 'icount')):
                if o + 8 <= xsz:
                    self.add('snapshot', s + 'extra ' + fname, off + 40 + o, 8,
                             'vsize' if fname == 'disk_size' else 'count')
            self.add('snapshot', s + 'id', off + 40 + xsz, idn, 'bytes')
            self.add('snapshot', s + 'name', off + 40 + xsz + idn, nmn, 'bytes')
            self.meta.append(('snapshot L1 table', l1off, align(l1n * 8, 512)))
            for i in range(l1n):
                v = u(d, l1off + 8 * i, 8)
                self.add('snapshot', s + 'L1[%d]' % i, l1off + 8 * i, 8, 'l1e', hot=v != 0,
                         info={'guest': i * self.l2_entries * self.cs})
                if v & OFF_MASK:
                    self._l2_table(v & OFF_MASK, i, ', snapshot %d' % k, self.seen_l2)
            off += align(40 + xsz + idn + nmn, 8)
        if self.nb_snap:
            self.meta.append(('snapshot table', start, align(off - start, 512)))


# ---------------------------------------------------------------------------
# Values

def boundary_values(base, f, v):
    cs, eof = base.cs, base.eof
    k = f.kind
    if k == 'magic':
        return [0, 0x514649FA, 0x514649FB, U32]
    if k == 'version':
        return [0, 1, 2, 3, 4, 0x80000003, U32]
    if k == 'cluster_bits':
        return [0, 8, 9, 12, 16, 20, 21, 22, 23, 30, 31, 32, 63, U32, base.cb - 1, base.cb + 1]
    if k == 'vsize':
        return [0, 1, 511, 512, v - 512, v + 512, v - cs, v + cs, v * 2, v * 64,
                1 << 32, 1 << 40, 1 << 55, 1 << 56, 1 << 62, 1 << 63, U64]
    if k == 'crypt':
        return [1, 2, 3, U32]
    if k == 'incompat':
        return [v ^ (1 << rb) for rb in (0, 1, 2, 3, 4, 5, 7, 31, 63)]
    if k == 'compat':
        return [v ^ 1, v ^ 2, v ^ (1 << 63)]
    if k == 'autoclear':
        return [v ^ 1, v ^ 2, v ^ 4, v ^ (1 << 63), U64]
    if k == 'refcount_order':
        return [0, 1, 2, 3, 4, 5, 6, 7, 8, 64, U32]
    if k == 'header_length':
        return [0, 8, 72, 96, 100, 103, 104, 105, 108, 112, 120, v - 8, v + 8, v + 4,
                cs - 8, cs, cs + 8, 1 << 20, U32]
    if k == 'compression_type':
        return [0, 1, 2, 255]
    if k == 'ext_type':
        return [EXT_END, EXT_BACKING_FORMAT, EXT_FEATURE_TABLE, EXT_BITMAPS, EXT_FDE,
                EXT_DATA_FILE, 0x12345678, U32]
    if k == 'ext_len':
        return [0, 1, v - 1, v + 1, v - 8, v + 8, 24, 23, 25, cs, cs - 8, cs + 1,
                0x7FFFFFFF, 0x80000000, U32]
    if k == 'bflags':
        return [v ^ 1, v ^ 2, v ^ 4, v ^ 8, v ^ (1 << 31), 0, U32]
    if k in ('hoff',):
        return [0, 1, 8, 72, 512, cs - 1, cs, cs + 8, eof - cs, eof - 8, eof, eof + cs,
                align(eof, cs) + cs, 1 << 32, 1 << 40, 1 << 55, 1 << 56, 1 << 62, U64]
    # counts, sizes, lengths
    return [0, 1, 2, v - 1, v + 1, v * 2, v + 7, v + 8, 255, 256, 1023, 1024, 1025, 65535,
            65536, cs // 8, cs // 8 + 1, cs, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 1 << 32,
            1 << 40, U64]


def pick_extent(rng, base, exclude_off=None):
    """An offset inside some metadata structure (at its start, mostly)."""
    ext = [m for m in base.meta if m[1] != exclude_off and m[2] > 0] or base.meta
    what, off, n = rng.choice(ext)
    r = rng.random()
    if r < 0.7:
        return off, what
    if r < 0.9:
        return off + (rng.randrange(max(1, n // 512)) * 512 if n >= 512 else 0), what + ' (inside)'
    return off + 8 * rng.randrange(max(1, n // 8)), what + ' (inside, unaligned)'


def beyond_eof(rng, base):
    e = align(base.eof, base.cs)
    return rng.choice([e, e + base.cs, e + 64 * base.cs, base.eof, 1 << 40, (1 << 56) - base.cs,
                       1 << 48])


def mutate_int(rng, base, d, f):
    """Apply one operation to integer field @f; return its description."""
    v = f.get(d)
    w = f.bits
    mask = (1 << w) - 1
    k = f.kind
    ops = ['flip', 'flip', 'flips', 'zero', 'ones', 'boundary', 'boundary', 'delta', 'random']
    entry = k in ('l1e', 'l2e', 'rte', 'bte')
    if entry or k == 'hoff':
        ops += ['meta', 'meta', 'meta', 'eof', 'eof', 'misalign', 'data', 'sibling']
    if entry:
        ops += ['flag', 'flag', 'reserved']
    if k == 'cdesc':
        ops = ['flip', 'flips', 'zero', 'ones', 'random', 'csect', 'csect', 'coff', 'coff',
               'meta', 'eof', 'cflag', 'sibling']
    if k == 'l2bm':
        ops = ['flip', 'flip', 'flips', 'zero', 'ones', 'random', 'bmboth', 'bmalloc', 'bmzero',
               'sibling']
    if k == 'rc':
        ops = ['zero', 'zero', 'dec', 'inc', 'ones', 'flip', 'random', 'one']
    if k in ('magic', 'version', 'cluster_bits', 'crypt', 'incompat', 'compat', 'autoclear',
             'refcount_order', 'header_length', 'compression_type', 'ext_type', 'bflags'):
        ops = ['boundary'] * 5 + ['flip', 'zero', 'ones']
    op = rng.choice(ops)
    omask = RT_MASK if k == 'rte' else OFF_MASK
    note = ''
    if op == 'flip':
        nv = v ^ (1 << rng.randrange(w))
    elif op == 'flips':
        nv = v
        for _ in range(rng.randint(2, 4)):
            nv ^= 1 << rng.randrange(w)
    elif op == 'zero':
        nv = 0
    elif op == 'ones':
        nv = mask
    elif op == 'one':
        nv = 1 if v != 1 else 2
    elif op == 'inc':
        nv = v + 1
    elif op == 'dec':
        nv = v - 1
    elif op == 'random':
        nv = rng.getrandbits(w)
    elif op == 'boundary':
        nv = rng.choice([x for x in boundary_values(base, f, v) if x & mask != v] or [~v])
    elif op == 'delta':
        nv = v + rng.choice([-1, 1, -8, 8, -512, 512, -base.cs, base.cs, -4096, 4096])
    elif op in ('meta', 'eof', 'misalign', 'data'):
        cur = v & omask if (entry or k == 'cdesc') else v
        if op == 'meta':
            target, note = pick_extent(rng, base, exclude_off=cur)
            note = 'into ' + note
        elif op == 'eof':
            target, note = beyond_eof(rng, base), 'beyond EOF 0x%x' % base.eof
        elif op == 'misalign':
            target = (cur or base.cs) + rng.choice([512, 8, base.cs // 2, 1024])
            note = 'misaligned'
        else:
            pool = base.data_clusters or [base.cs]
            target, note = rng.choice(pool), 'at a data cluster'
        if k == 'cdesc':
            x = 62 - (base.cb - 8)
            nv = (v & ~((1 << x) - 1)) | (target & ((1 << x) - 1))
        elif entry:
            nv = (v & ~omask) | (target & omask)
            if target & ~omask & 0x1FF and op == 'misalign':
                nv |= target & 0x1FF   # the reserved low bits get the misalignment
            if k in ('l1e', 'l2e') and nv & omask and rng.random() < 0.7:
                nv |= COPIED
        else:
            nv = target
    elif op == 'sibling':
        sibs = [g for g in base.fields[f.struct] if g.kind == k and g is not f]
        if sibs:
            g = rng.choice([s for s in sibs if s.get(d)] or sibs)
            nv, note = g.get(d), 'copy of ' + g.name
        else:
            nv = v ^ 1
    elif op == 'flag':
        bit = rng.choice([63, 63, 62, 0] if k == 'l2e' else [63, 62, 0])
        nv, note = v ^ (1 << bit), 'flag bit %d' % bit
    elif op == 'reserved':
        bit = rng.choice(list(range(1, 9)) + list(range(56, 62)))
        nv, note = v ^ (1 << bit), 'reserved bit %d' % bit
    elif op == 'csect':
        x = 62 - (base.cb - 8)
        sm = (1 << (base.cb - 8)) - 1
        ns = (v >> x) & sm
        nn = rng.choice([0, sm, ns + 1, ns - 1, ns * 2 + 1, rng.randrange(sm + 1)]) & sm
        nv, note = (v & ~(sm << x)) | (nn << x), 'sector count %d -> %d' % (ns, nn)
    elif op == 'coff':
        nv = v + rng.choice([-512, 512, -1, 1, -base.cs, base.cs, 64])
        note = 'offset moved'
    elif op == 'cflag':
        bit = rng.choice([63, 62])
        nv, note = v ^ (1 << bit), 'flag bit %d' % bit
    elif op == 'bmboth':
        sc = rng.randrange(32)
        nv, note = v | (1 << sc) | (1 << (32 + sc)), 'subcluster %d allocated and zero' % sc
    elif op == 'bmalloc':
        nv, note = v | rng.getrandbits(32), 'allocation bits set'
    else:  # bmzero
        nv, note = v | (rng.getrandbits(32) << 32), 'zero bits set'
    nv &= mask
    if nv == v:
        nv = v ^ (1 << rng.randrange(w))
        note += (' ' if note else '') + '(+ bit flip)'
    f.put(d, nv)
    return '%s: 0x%x -> 0x%x (%s%s)' % (f.name, v, nv, op, ', ' + note if note else '')


def mutate_bytes(rng, f, d):
    n = f.nbytes
    if n <= 0:
        return '%s: empty, left alone' % f.name
    op = rng.choice(['byteflip', 'byteflip', 'zeros', 'ones', 'random', 'bitflip'])
    start = rng.randrange(n)
    ln = min(n - start, rng.choice([1, 1, 2, 4, 8, 64, n]))
    o = f.off + start
    if op == 'byteflip':
        for i in range(ln):
            d[o + i] ^= 0xFF
    elif op == 'zeros':
        d[o:o + ln] = bytes(ln)
    elif op == 'ones':
        d[o:o + ln] = b'\xff' * ln
    elif op == 'random':
        d[o:o + ln] = bytes(rng.getrandbits(8) for _ in range(ln))
    else:
        ln = 1
        d[o] ^= 1 << rng.randrange(8)
    return '%s: %s of %d bytes at +%d' % (f.name, op, ln, start)


def mutate_file(rng, base, d):
    n = len(d)
    cs = base.cs
    choices = [n - 1, n - 512, n - cs, cs, cs + 512, max(cs, n // 2),
               rng.randrange(cs, max(cs + 1, n))]
    if n > 2 * cs:
        choices.append(rng.randrange(1, n // cs) * cs)
    new = max(512, min(n - 1, rng.choice(choices)))
    del d[new:]
    return 'file cut from %d to %d bytes' % (n, new)


# ---------------------------------------------------------------------------

class FileView:
    """A file read on demand, for the few functions here that take bytes:
    len() and slicing (an image the kernel grew can be sparse and huge)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def __len__(self):
        return self.size

    def __getitem__(self, sl):
        start, stop, _ = sl.indices(self.size)
        return os.pread(self.fd, max(0, stop - start), start) if stop > start else b''

    def extents(self, piece=16 << 20):
        """(offset, bytes) of the data (not the holes), piece by piece."""
        off = 0
        while off < self.size:
            try:
                start = os.lseek(self.fd, off, os.SEEK_DATA)
                end = os.lseek(self.fd, start, os.SEEK_HOLE)
            except OSError:
                return
            while start < end:
                n = min(piece, end - start)
                yield start, os.pread(self.fd, n, start)
                start += n
            off = end

    def close(self):
        os.close(self.fd)


def copy_sparse(src, dst):
    v = FileView(src)
    try:
        with open(dst, 'wb') as f:
            for off, b in v.extents():
                f.seek(off)
                f.write(b)
            f.truncate(len(v))
    finally:
        v.close()


def live_metadata(d, limit=1 << 16):
    """The metadata an image's header leads to, read leniently.

    For any bytes, however damaged: [(what, offset, length)] of the header
    cluster, L1 table, L2 tables (active and snapshots'), refcount table
    and blocks, snapshot table, bitmap directory and tables, as far as they
    lie inside the file.  At most @limit tables of each kind.
    """
    out = []
    n = len(d)
    if n < 72:
        return out
    ver, cb = u(d, 4, 4), u(d, 20, 4)
    if not 9 <= cb <= 21:
        return [('header', 0, min(n, 512))]
    cs = 1 << cb

    def inside(off, ln):
        return 0 <= off < n and ln > 0

    def add(what, off, ln):
        if inside(off, ln):
            out.append((what, off, min(ln, n - off)))

    add('header cluster', 0, cs)

    def l1(what, off, size):
        size = min(size, limit, max(0, (n - off) // 8) if off < n else 0)
        add(what, off, size * 8)
        if not inside(off, size * 8):
            return
        for v in struct.unpack('>%dQ' % size, d[off:off + 8 * size]):
            if v & OFF_MASK:
                add('L2 table (from %s)' % what, v & OFF_MASK, cs)

    l1('L1 table', u(d, 40, 8), u(d, 36, 4))
    rt, rtc = u(d, 48, 8), u(d, 56, 4)
    if inside(rt, 8):
        rtn = min(rtc * cs // 8, limit, (n - rt) // 8)
        add('refcount table', rt, rtn * 8)
        for v in struct.unpack('>%dQ' % rtn, d[rt:rt + 8 * rtn]):
            if v & RT_MASK:
                add('refcount block', v & RT_MASK, cs)
    nb, so = u(d, 60, 4), u(d, 64, 8)
    off = so
    for k in range(min(nb, 1000)):
        if not inside(off, 40) or off + 40 > n:
            break
        add('snapshot table entry %d' % k, off, 40)
        l1('snapshot %d L1 table' % k, u(d, off, 8), u(d, off + 8, 4))
        xsz, idn, nmn = u(d, off + 36, 4), u(d, off + 12, 2), u(d, off + 14, 2)
        off += align(40 + xsz + idn + nmn, 8)
    if ver >= 3 and n >= 104:
        hl = u(d, 100, 4)
        p = hl
        while 0 < p and p + 8 <= min(cs, n):
            t, ln = u(d, p, 4), u(d, p + 4, 4)
            if t == EXT_END:
                break
            if t == EXT_BITMAPS and ln >= 24 and p + 32 <= n:
                bn, dsz, dof = u(d, p + 8, 4), u(d, p + 16, 8), u(d, p + 24, 8)
                add('bitmap directory', dof, dsz)
                q = dof
                for _ in range(min(bn, 64)):
                    if not inside(q, 24) or q + 24 > n:
                        break
                    toff, tsz = u(d, q, 8), u(d, q + 8, 4)
                    add('bitmap table', toff, min(tsz, limit) * 8)
                    q += align(24 + u(d, q + 20, 4) + u(d, q + 18, 2), 8)
            p += 8 + align(ln, 8)
    return out


def overlaps(extents):
    """{((offA, lenA), (offB, lenB)): (whatA, whatB)} for the metadata
    extents that overlap each other (the same extent reached twice, like
    an L2 table a snapshot shares, is one structure, not an overlap)."""
    uniq = {}
    for what, off, ln in extents:
        uniq.setdefault((off, ln), what)
    ext = sorted(uniq.items())
    out = {}
    for i, ((a, la), wa) in enumerate(ext):
        for (b, lb), wb in ext[i + 1:]:
            if b >= a + la:
                break
            out[((a, la), (b, lb))] = (wa, wb)
    return out


# ---------------------------------------------------------------------------

class Bases:
    """The layouts of a mkbases.py directory, parsed on first use."""

    def __init__(self, root, only=None):
        self.root = os.path.abspath(root)
        with open(os.path.join(self.root, 'layouts.json')) as f:
            self.layouts = json.load(f)
        names = sorted(self.layouts)
        if only:
            want = set(only.replace(',', ' ').split())
            names = [n for n in names if n in want]
            if not names:
                raise SystemExit('mutate: no layout among %s' % only)
        self.names = names
        self._parsed = {}

    def get(self, name):
        if name not in self._parsed:
            with open(os.path.join(self.root, self.layouts[name]['file']), 'rb') as f:
                self._parsed[name] = Base(name, self.layouts[name], f.read())
        return self._parsed[name]


def nmutations(rng):
    r = rng.random()
    return 1 if r < 0.65 else 2 if r < 0.85 else 3 if r < 0.95 else 4


def generate(bases, seed):
    """-> (layout name, mutated bytes, [descriptions], [guest offsets hit])."""
    rng = random.Random('qcow-mutate-%d' % seed)
    name = rng.choice(bases.names)
    base = bases.get(name)
    d = bytearray(base.data)
    descs = []
    hot = []
    cut = None
    for _ in range(nmutations(rng)):
        avail = [s for s in WEIGHTS if base.fields[s]]
        s = rng.choices(avail, [WEIGHTS[x] for x in avail])[0]
        if s == 'file':
            cut = s
            continue
        pool = base.hot[s] if base.hot[s] and rng.random() < 0.85 else base.fields[s]
        f = rng.choice(pool)
        if f.kind in ('bytes', 'cbytes'):
            descs.append(mutate_bytes(rng, f, d))
        else:
            descs.append(mutate_int(rng, base, d, f))
        if 'guest' in f.info:
            hot.append(f.info['guest'])
    if cut:
        descs.append(mutate_file(rng, base, d))
    return name, bytes(d), descs, hot


def write_sparse(path, data, chunk=65536):
    """Write @data to @path leaving all-zero chunks as holes."""
    zero = bytes(chunk)
    with open(path, 'wb') as f:
        for off in range(0, len(data), chunk):
            piece = data[off:off + chunk]
            if piece == zero[:len(piece)]:
                continue
            f.seek(off)
            f.write(piece)
        f.truncate(len(data))


def image_seed(run_seed, index):
    """The seed of image @index of a run: reproducible on its own."""
    h = hashlib.sha256(b'%d/%d' % (run_seed, index)).digest()
    return int.from_bytes(h[:6], 'big')


def main(argv):
    if len(argv) >= 4 and argv[1] == 'gen':
        bases = Bases(argv[2], os.environ.get('QCOW_MUTATE_LAYOUTS'))
        name, data, descs, _ = generate(bases, int(argv[3]))
        write_sparse(argv[4], data)
        print('seed %s: layout %s (%s)' % (argv[3], name, bases.layouts[name]['opts']))
        for x in descs:
            print('  ' + x)
        return 0
    if len(argv) >= 4 and argv[1] == 'show':
        bases = Bases(argv[2], os.environ.get('QCOW_MUTATE_LAYOUTS'))
        for s in argv[3:]:
            name, _, descs, _ = generate(bases, int(s))
            print('seed %s: layout %s: %s' % (s, name, '; '.join(descs)))
        return 0
    if len(argv) >= 3 and argv[1] == 'fields':
        bases = Bases(argv[2])
        for n in ([argv[3]] if len(argv) > 3 else bases.names):
            b = bases.get(n)
            print('%-14s %s' % (n, ' '.join('%s=%d/%d' % (s, len(b.hot[s]), len(b.fields[s]))
                                            for s in WEIGHTS if b.fields[s])))
        return 0
    sys.stderr.write(__doc__.split('\n\n')[1] + '\n')
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
