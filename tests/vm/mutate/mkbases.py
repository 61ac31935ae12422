#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Make the valid base images that tests/vm/mutate/mutate.py corrupts.

    mkbases.py OUTDIR

Every base is made by the real qemu-img/qemu-io at run time (in the test
VM, or on the host for make stress), so the mutations start from what QEMU
writes, not from what we think it writes.  OUTDIR gets:

    img/NAME.qcow2      one image per layout (below)
    backing/*           the backing files some layouts name, by the relative
                        path ../backing/FILE: a mutant in DIR/N/ finds them
                        in DIR/backing/
    layouts.json        NAME -> file, backing layers, virtual size, the
                        guest ranges that hold data, the qemu-img options

The layouts cover: qcow2 v2 and v3; 512 B, 4 KiB, 64 KiB and 2 MiB
clusters; refcount_bits 1, 4, 16 (default) and 64; extended L2 (with
partly allocated and zeroed subclusters); zlib and zstd compressed clusters
(qemu-img convert -c); internal snapshots (v2 and v3); raw and qcow2
backing files; a persistent bitmap (bitmaps extension, bitmap directory
and bitmap tables); lazy refcounts; zero clusters and discarded ranges.
Python 3 standard library only.
"""

import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

K = 1024
M = 1024 * K


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def create(path, size, opts='', backing=None, fmt=None):
    args = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if opts:
        args += ['-o', opts]
    if backing:
        args += ['-b', backing, '-F', fmt]
    run(*args, path, str(size))


def qemu_io(path, cmds, fmt='qcow2'):
    args = ['qemu-io', '-f', fmt]
    for c in cmds:
        args += ['-c', c]
    run(*args, path)


def text_data(size, seed):
    """Compressible, not trivial: lines of random words."""
    rnd = random.Random(seed)
    words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz')
                     for _ in range(rnd.randint(2, 9))) for _ in range(3000)]
    out = bytearray()
    while len(out) < size:
        out += (' '.join(rnd.choice(words) for _ in range(12)) + '\n').encode()
    return bytes(out[:size])


# name: (qemu-img create options, virtual size, qemu-io commands, data
# ranges [(guest offset, length)] the runner aims some writes at).
PLAIN = {
    'v3-64k': ('cluster_size=65536', 16 * M,
               ['write -P 0x11 0 192k', 'write -P 0x22 1M 64k', 'write -P 0x33 8M 4k',
                'write -z 4M 128k', 'write -P 0x44 16320k 64k'],
               [(0, 192 * K), (1 * M, 64 * K), (8 * M, 4 * K), (16320 * K, 64 * K)]),
    'v2-64k': ('compat=0.10,cluster_size=65536', 16 * M,
               ['write -P 0x11 0 128k', 'write -P 0x22 5M 64k', 'write -P 0x33 16380k 4k'],
               [(0, 128 * K), (5 * M, 64 * K), (16380 * K, 4 * K)]),
    'v3-512-rc4': ('cluster_size=512,refcount_bits=4', 4 * M,
                   ['write -P 0x11 0 8k', 'write -P 0x22 1M 4k', 'write -P 0x33 2049k 1k',
                    'write -z 3M 4k', 'write -P 0x44 4095k 1k'],
                   [(0, 8 * K), (1 * M, 4 * K), (2049 * K, 1 * K), (4095 * K, 1 * K)]),
    'v3-4k-rc1': ('cluster_size=4096,refcount_bits=1', 16 * M,
                  ['write -P 0x11 0 64k', 'write -P 0x22 7M 8k', 'write -P 0x33 16380k 4k'],
                  [(0, 64 * K), (7 * M, 8 * K), (16380 * K, 4 * K)]),
    'v3-4k-rc64': ('cluster_size=4096,refcount_bits=64', 16 * M,
                   ['write -P 0x11 0 64k', 'write -P 0x22 3M 12k', 'write -z 5M 8k',
                    'write -P 0x33 16380k 4k'],
                   [(0, 64 * K), (3 * M, 12 * K), (16380 * K, 4 * K)]),
    'v3-2m-extl2': ('cluster_size=2097152,extended_l2=on', 16 * M,
                    ['write -P 0x11 0 64k', 'write -P 0x22 2176k 192k', 'write -P 0x33 6M 256k',
                     'write -z 10M 64k', 'write -P 0x44 16320k 64k'],
                    [(0, 64 * K), (2176 * K, 192 * K), (6 * M, 256 * K), (16320 * K, 64 * K)]),
    'v3-64k-extl2': ('cluster_size=65536,extended_l2=on', 16 * M,
                     ['write -P 0x11 0 4k', 'write -P 0x22 64k 64k', 'write -P 0x33 134k 2k',
                      'write -z 256k 4k', 'write -P 0x44 1M 6k', 'write -z 1030k 2k'],
                     [(0, 4 * K), (64 * K, 64 * K), (134 * K, 2 * K), (1 * M, 6 * K)]),
    'lazy': ('cluster_size=65536,lazy_refcounts=on', 16 * M,
             ['write -P 0x11 0 128k', 'write -P 0x22 3M 64k', 'discard 64k 64k'],
             [(0, 64 * K), (3 * M, 64 * K)]),
}


def make(out, jobs=None):
    img = os.path.join(out, 'img')
    bk = os.path.join(out, 'backing')
    os.makedirs(img)
    os.makedirs(bk)
    layouts = {}

    def add(name, opts, size, data, layers=(), compressed=False):
        layouts[name] = {'file': 'img/%s.qcow2' % name, 'opts': opts, 'size': size,
                         'data': [list(r) for r in data],
                         'layers': [list(x) for x in layers], 'compressed': compressed}

    def plain(name):
        opts, size, cmds, data = PLAIN[name]
        p = os.path.join(img, name + '.qcow2')
        create(p, size, opts)
        qemu_io(p, cmds)
        add(name, opts, size, data)

    # Compressed clusters: text through qemu-img convert -c, then one
    # ordinary cluster written on top.
    raw = os.path.join(out, 'text.raw')
    with open(raw, 'wb') as f:
        f.write(text_data(768 * K, 7))
        f.truncate(4 * M)

    def compressed(name, opts):
        p = os.path.join(img, name + '.qcow2')
        run('qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', opts, raw, p)
        qemu_io(p, ['write -P 0x55 2M 64k'])
        add(name, opts, 4 * M, [(0, 768 * K), (2 * M, 64 * K)], compressed=True)

    # Internal snapshots: clusters shared with one or two snapshots
    # (refcount 2 and 3, COPIED clear), some rewritten after them.
    def snap_v3():
        p = os.path.join(img, 'snap-v3.qcow2')
        create(p, 16 * M, 'cluster_size=65536')
        qemu_io(p, ['write -P 0x11 0 256k', 'write -P 0x12 4M 64k'])
        run('qemu-img', 'snapshot', '-c', 's1', p)
        qemu_io(p, ['write -P 0x66 64k 64k', 'write -P 0x67 2M 64k'])
        run('qemu-img', 'snapshot', '-c', 's2', p)
        qemu_io(p, ['write -P 0x68 0 4k', 'discard 2M 64k'])
        add('snap-v3', 'cluster_size=65536 + snapshots s1, s2', 16 * M,
            [(0, 256 * K), (4 * M, 64 * K)])

    def snap_v2():
        p = os.path.join(img, 'snap-v2.qcow2')
        create(p, 8 * M, 'compat=0.10,cluster_size=4096')
        qemu_io(p, ['write -P 0x11 0 32k', 'write -P 0x12 5M 8k'])
        run('qemu-img', 'snapshot', '-c', 'a', p)
        qemu_io(p, ['write -P 0x13 4k 4k'])
        add('snap-v2', 'compat=0.10,cluster_size=4096 + snapshot a', 8 * M,
            [(0, 32 * K), (5 * M, 8 * K)])

    # Backing files: raw and qcow2, named ../backing/FILE.
    def backed_raw():
        braw = os.path.join(bk, 'b.raw')
        with open(braw, 'wb') as f:
            f.truncate(16 * M)
        qemu_io(braw, ['write -P 0xb1 0 1M', 'write -P 0xb2 9M 64k'], fmt='raw')
        p = os.path.join(img, 'backed-raw.qcow2')
        create(p, 16 * M, 'cluster_size=65536', backing='../backing/b.raw', fmt='raw')
        qemu_io(p, ['write -P 0x77 64k 4k', 'write -P 0x78 2M 64k'])
        add('backed-raw', 'cluster_size=65536 over raw', 16 * M,
            [(0, 1 * M), (2 * M, 64 * K), (9 * M, 64 * K)], layers=[('raw', 'b.raw')])

    def backed_qcow2():
        bq = os.path.join(bk, 'b.qcow2')
        create(bq, 8 * M, 'cluster_size=4096')
        qemu_io(bq, ['write -P 0xc1 0 256k', 'write -P 0xc2 6M 16k'])
        p = os.path.join(img, 'backed-qcow2.qcow2')
        create(p, 8 * M, 'cluster_size=65536,extended_l2=on', backing='../backing/b.qcow2',
               fmt='qcow2')
        qemu_io(p, ['write -P 0x79 8k 4k', 'write -P 0x7a 1M 64k'])
        add('backed-qcow2', 'cluster_size=65536,extended_l2=on over qcow2 (4k clusters)',
            8 * M, [(0, 256 * K), (1 * M, 64 * K), (6 * M, 16 * K)],
            layers=[('qcow2', 'b.qcow2')])

    # A persistent dirty bitmap: bitmaps extension, directory, tables.
    def bitmaps():
        p = os.path.join(img, 'bitmaps.qcow2')
        create(p, 16 * M, 'cluster_size=65536')
        run('qemu-img', 'bitmap', '--add', p, 'b0')
        run('qemu-img', 'bitmap', '--add', '-g', '4096', p, 'b1')
        qemu_io(p, ['write -P 0x11 0 128k', 'write -P 0x22 7M 64k'])
        add('bitmaps', 'cluster_size=65536 + bitmaps b0, b1', 16 * M,
            [(0, 128 * K), (7 * M, 64 * K)])

    # Slowest first: qemu-img runs one layout per CPU at a time.
    tasks = [snap_v3, backed_qcow2, backed_raw, bitmaps, snap_v2,
             lambda: compressed('zlib-64k', 'cluster_size=65536,compression_type=zlib'),
             lambda: compressed('zstd-4k', 'cluster_size=4096,compression_type=zstd')]
    tasks += [lambda n=n: plain(n) for n in PLAIN]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as ex:
        for f in [ex.submit(t) for t in tasks]:
            f.result()
    os.unlink(raw)

    with open(os.path.join(out, 'layouts.json'), 'w') as f:
        json.dump(layouts, f, indent=1, sort_keys=True)
    return layouts


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: mkbases.py OUTDIR')
    out = os.path.abspath(sys.argv[1])
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    layouts = make(out)
    print('mkbases: %d layouts in %s' % (len(layouts), out))


if __name__ == '__main__':
    main()
