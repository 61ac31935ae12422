#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check `qcowctl dump --json` of an image against qemu-img and the file.

  dumpcheck.py IMAGE DUMP.json INFO.json MAP.json

INFO.json and MAP.json are `qemu-img info --output=json` and `qemu-img map
--output=json` of IMAGE.  Asserts that
  - the header fields the dump shows are those qemu-img info reports
    (virtual size, cluster size, compat, refcount bits, lazy refcounts,
    extended L2, compression type, backing file and format, snapshots,
    bitmaps);
  - the host cluster map tiles the file: runs in order, no gap, no
    overlap, up to the end of the file;
  - every cluster whose stored refcount is not zero (read here with
    qcow2poke.py, not with qcowctl) is in a run that is not "free", and
    every run says the refcount this script reads;
  - every guest run qemu-img map places in the image itself (depth 0,
    data, offset; not with an external data file) lies in "data" runs of
    the map naming those guest offsets.
Prints one line per mismatch; exit status 1 if there was one.
"""
import json
import sys

from qcow2poke import Image

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def main():
    path, dump_p, info_p, map_p = sys.argv[1:5]
    dump = json.load(open(dump_p))
    info = json.load(open(info_p))
    qmap = json.load(open(map_p))
    img = Image(path)
    h = dump['header']
    spec = info.get('format-specific', {}).get('data', {})

    check(h['size'] == info['virtual-size'], 'size %d, qemu-img %d' % (h['size'], info['virtual-size']))
    check(h['cluster_size'] == info['cluster-size'], 'cluster size')
    check({'0.10': 2, '1.1': 3}[spec['compat']] == h['version'], 'version')
    check(h['refcount_bits'] == spec['refcount-bits'], 'refcount bits')
    check(bool(h['compatible_features'] & 1) == spec.get('lazy-refcounts', False), 'lazy refcounts')
    check(h['extended_l2'] == spec.get('extended-l2', False), 'extended L2')
    check(['zlib', 'zstd'][h['compression_type']] == spec['compression-type'], 'compression type')
    ext = dump['extensions']
    check(ext.get('backing_file') == info.get('backing-filename'), 'backing file')
    check(ext.get('backing_format') == info.get('backing-filename-format'), 'backing format')
    snaps = dump['snapshot_table']['snapshots']
    qsnaps = info.get('snapshots', [])
    check([(s['id'], s['name']) for s in snaps] == [(s['id'], s['name']) for s in qsnaps], 'snapshots')
    check(len(dump.get('bitmaps', [])) == len(spec.get('bitmaps', [])), 'bitmaps')

    cs = h['cluster_size']
    runs = dump['clusters']
    nb = img.file_clusters()
    owner = {}
    pos = 0
    for r in runs:
        check(r['first_cluster'] == pos, 'run at cluster %d, expected %d' % (r['first_cluster'], pos))
        check(r['offset'] == r['first_cluster'] * cs and r['length'] == r['clusters'] * cs, 'run bytes')
        for i in range(r['clusters']):
            owner[r['first_cluster'] + i] = (r, i)
        pos = r['first_cluster'] + r['clusters']
    check(pos >= nb, 'map ends at cluster %d, file has %d' % (pos, nb))

    for c in range(nb):
        rc = img.refcount(c) if c in owner else 0
        if c not in owner:
            check(False, 'cluster %d not in the map' % c)
            continue
        r, _ = owner[c]
        check(r['refcount'] == rc, 'cluster %d: map says refcount %s, file %d' % (c, r['refcount'], rc))
        if rc:
            check(r['type'] != 'free', 'cluster %d has refcount %d but is free in the map' % (c, rc))

    data_file = h['incompatible_features'] & 4   # offsets are in the data file
    for e in qmap:
        if data_file or e['depth'] != 0 or not e['data'] or 'offset' not in e:
            continue
        for off in range(0, e['length'], cs):
            host = e['offset'] + off
            c = host // cs
            if c not in owner:
                check(False, 'guest 0x%x: host cluster %d not in the map' % (e['start'] + off, c))
                continue
            r, i = owner[c]
            if r['type'] != 'data':
                check(False, 'guest 0x%x: host cluster %d is %s in the map' % (e['start'] + off, c, r['type']))
                continue
            # the first reference names the cluster: active state first
            want = e['start'] + off - host % cs
            got = r['guest_offset'] + i * cs
            check(got == want, 'host cluster %d: map says guest 0x%x, qemu-img 0x%x' % (c, got, want))

    for m in errors[:20]:
        print(m)
    sys.exit(1 if errors else 0)


main()
