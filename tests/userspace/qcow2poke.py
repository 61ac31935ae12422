#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Damage qcow2 images on purpose, for the qcowctl check tests.

An independent reading of the qcow2 layout (QEMU docs/interop/qcow2.rst),
written apart from the C format core so that the tests do not take the
code under test as their oracle.  Each command prints the old value of
what it changes (decimal) and takes values as decimal or 0x hex.

  qcow2poke.py IMG l1 IDX [set V | or V | andnot V]
  qcow2poke.py IMG l2 GUEST [set V | or V | andnot V | bitmap V]
  qcow2poke.py IMG refcount CLUSTER [set V | add V]
  qcow2poke.py IMG reftable IDX [set V | or V]
  qcow2poke.py IMG l2-offset GUEST      # host offset of the L2 table
  qcow2poke.py IMG data-offset GUEST    # host offset of the data cluster
  qcow2poke.py IMG header               # a few header fields

With no operation the value is only printed.
"""
import struct
import sys


class Image:
    def __init__(self, path):
        self.path = path
        self.f = open(path, 'r+b')
        h = self.read(0, 104)
        (magic, self.version, _, _, self.cluster_bits, self.size, _,
         self.l1_size, self.l1_offset, self.rt_offset, self.rt_clusters,
         self.nb_snapshots, self.sn_offset) = struct.unpack('>IIQIIQIIQQIIQ', h[:72])
        if magic != 0x514649fb:
            sys.exit('not a qcow2 image')
        self.incompat = 0
        self.refcount_order = 4
        if self.version >= 3:
            self.incompat, _, _, self.refcount_order, _ = struct.unpack('>QQQII', h[72:104])
        self.cs = 1 << self.cluster_bits
        self.ext_l2 = bool(self.incompat & 16)
        self.l2_entry = 16 if self.ext_l2 else 8
        self.l2_entries = self.cs // self.l2_entry

    def file_clusters(self):
        self.f.seek(0, 2)
        return (self.f.tell() + self.cs - 1) // self.cs

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n).ljust(n, b'\0')

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def u64(self, off):
        return struct.unpack('>Q', self.read(off, 8))[0]

    def put64(self, off, v):
        self.write(off, struct.pack('>Q', v))

    def l1_entry_off(self, idx):
        return self.l1_offset + 8 * idx

    def l2_entry_off(self, guest):
        l1 = self.u64(self.l1_entry_off(guest // (self.cs * self.l2_entries)))
        l2 = l1 & 0x00fffffffffffe00
        if not l2:
            sys.exit('guest offset %#x has no L2 table' % guest)
        return l2 + self.l2_entry * ((guest // self.cs) % self.l2_entries)

    def refcount_loc(self, cluster):
        bits = 1 << self.refcount_order
        per_block = self.cs * 8 // bits
        rt = self.u64(self.rt_offset + 8 * (cluster // per_block))
        block = rt & ~0x1ff
        if not block:
            sys.exit('cluster %d has no refcount block' % cluster)
        return block, cluster % per_block, bits

    def refcount(self, cluster):
        block, i, bits = self.refcount_loc(cluster)
        if bits >= 8:
            n = bits // 8
            return int.from_bytes(self.read(block + i * n, n), 'big')
        byte = self.read(block + i * bits // 8, 1)[0]
        shift = (i * bits) % 8
        return (byte >> shift) & ((1 << bits) - 1)

    def set_refcount(self, cluster, v):
        block, i, bits = self.refcount_loc(cluster)
        if bits >= 8:
            n = bits // 8
            self.write(block + i * n, v.to_bytes(n, 'big'))
            return
        off = block + i * bits // 8
        byte = self.read(off, 1)[0]
        shift = (i * bits) % 8
        mask = ((1 << bits) - 1) << shift
        byte = (byte & ~mask) | ((v << shift) & mask)
        self.write(off, bytes([byte]))


def num(s):
    return int(s, 0)


def modify(img, off, ops):
    old = img.u64(off)
    print(old)
    if not ops:
        return
    op, v = ops[0], num(ops[1])
    new = {'set': v, 'or': old | v, 'andnot': old & ~v}[op] & (2**64 - 1)
    img.put64(off, new)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    img = Image(sys.argv[1])
    cmd, args = sys.argv[2], sys.argv[3:]
    if cmd == 'l1':
        modify(img, img.l1_entry_off(num(args[0])), args[1:])
    elif cmd == 'l2':
        off = img.l2_entry_off(num(args[0]))
        if args[1:2] == ['bitmap']:
            if not img.ext_l2:
                sys.exit('no extended L2 entries')
            modify(img, off + 8, ['set', args[2]])
        else:
            modify(img, off, args[1:])
    elif cmd == 'refcount':
        c = num(args[0])
        old = img.refcount(c)
        print(old)
        if args[1:]:
            v = num(args[2])
            img.set_refcount(c, v if args[1] == 'set' else old + v)
    elif cmd == 'reftable':
        modify(img, img.rt_offset + 8 * num(args[0]), args[1:])
    elif cmd == 'l2-offset':
        print(img.u64(img.l1_entry_off(num(args[0]) // (img.cs * img.l2_entries))) & 0x00fffffffffffe00)
    elif cmd == 'data-offset':
        print(img.u64(img.l2_entry_off(num(args[0]))) & 0x00fffffffffffe00)
    elif cmd == 'header':
        print('cluster_size %d l1_offset %d l1_size %d rt_offset %d refcount_order %d'
              % (img.cs, img.l1_offset, img.l1_size, img.rt_offset, img.refcount_order))
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
