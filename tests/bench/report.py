#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Host side of `make bench`: turn what tests/bench/guest-bench.sh wrote
# (fio JSON, CPU samples and disk write counters per round, row and device)
# into
#   - a table on stdout (medians over rounds, spread, latency, CPU per I/O,
#     write amplification, ratios of qcow to loop and to qemu-nbd, and the
#     goals of issues 3, 4 and 6 with a met/MISSED mark),
#   - OUT/results.json (every per-round number and the aggregates),
#   - OUT/ratios.dat and OUT/title.txt, read by tests/bench/ratios.gp.
#
#   report.py IN_DIR OUT_DIR [HOST_JSON]
#
# Ratios are computed per round (qcow and its peer ran minutes apart at most,
# under the same TCG speed) and then summarised by their median and range;
# never as a ratio of medians.  A point that could not run (qcow write rows
# before the module writes) is "n/a": no ratio, and its goals are "n/a", not
# missed.
import json
import os
import statistics
import sys


def row(name, title, short, metric='iops', lat='read', subject='qcow',
        refs=None, names=None):
    """A table row.  refs: what the subject is compared with, as
    {reference: (row, device)}; by default loop and nbd of the same row."""
    if refs is None:
        refs = {'loop': (name, 'loop'), 'nbd': (name, 'nbd')}
    return dict(name=name, title=title, short=short, metric=metric, lat=lat,
                subject=subject, refs=refs, names=names or {})


SPARSE = {'loop': 'loop (sparse raw)'}
ROWS = [
    row('randread-qd1', '4K randread QD1', 'rd 4K QD1'),
    row('randread-qd16', '4K randread QD16', 'rd 4K QD16',
        refs={'loop': ('randread-qd16', 'loop'),
              'nbd': ('randread-qd16', 'nbd'),
              'file': ('randread-qd16', 'file')}),
    row('randread-qd16-uring', '4K randread QD16 io_uring', 'rd 4K uring'),
    row('randread-qd16x2', '4K randread QD16 x2 jobs', 'rd 4K x2',
        refs={'loop': ('randread-qd16x2', 'loop'),
              'nbd': ('randread-qd16x2', 'nbd'),
              '1job': ('randread-qd16', 'qcow')}),
    row('read-64k', '64K seq read QD16', 'rd 64K seq', metric='bw'),
    row('read-1m', '1M seq read QD16', 'rd 1M seq', metric='bw'),
    row('randread-qd16-l2miss', '4K randread QD16, 64K L2', 'rd 64K-L2',
        subject='qcows',
        refs={'loop': ('randread-qd16', 'loop'),
              'nbd': ('randread-qd16-l2miss', 'nbds'),
              'qcow': ('randread-qd16', 'qcow')}),
    row('randread-overlay', '4K randread QD16, overlay', 'rd overlay',
        refs={'loop': ('randread-qd16', 'loop'),
              'nbd': ('randread-overlay', 'nbd'),
              'direct': ('randread-qd16', 'qcow')}),
    row('randwrite-qd1', '4K randwrite QD1', 'wr 4K QD1', lat='write'),
    row('randwrite-qd16', '4K randwrite QD16', 'wr 4K QD16', lat='write'),
    row('randwrite-qd16-uring', '4K randwrite QD16 io_uring', 'wr 4K uring',
        lat='write'),
    row('randwrite-qd16x2', '4K randwrite QD16 x2 jobs', 'wr 4K x2',
        lat='write',
        refs={'loop': ('randwrite-qd16x2', 'loop'),
              'nbd': ('randwrite-qd16x2', 'nbd'),
              '1job': ('randwrite-qd16', 'qcow')}),
    row('randrw-qd16', '4K 70/30 randrw QD16', 'rw 70/30'),
    row('write-64k', '64K seq write QD16', 'wr 64K seq', metric='bw',
        lat='write'),
    row('write-1m', '1M seq write QD16', 'wr 1M seq', metric='bw',
        lat='write'),
    row('randwrite-empty', '4K randwrite QD16, empty', 'wr empty',
        lat='write', names=SPARSE),
    row('randwrite-fsync', '4K randwrite QD1 fsync=1, empty', 'wr fsync',
        lat='write', names=SPARSE),
    row('randwrite-cow64k', '4K randwrite QD16, COW 64K', 'wr COW 64K',
        lat='write',
        refs={'loop': ('randwrite-empty', 'loop'),
              'nbd': ('randwrite-cow64k', 'nbd')}),
    row('randwrite-cow128k-el2', '4K randwrite QD16, COW 128K+eL2',
        'wr COW eL2', lat='write',
        refs={'loop': ('randwrite-empty', 'loop'),
              'nbd': ('randwrite-cow128k-el2', 'nbd'),
              'nobacking': ('randwrite-empty', 'qcow')}),
]


def goal(issue, rowname, ref, minimum, what):
    return dict(issue=issue, row=rowname, reference=ref, goal=minimum,
                what=what)


# The issues' targets, as minimum ratios of a row's subject to a reference.
GOALS = [
    goal('#3', 'randread-qd16', 'loop', 0.90, '4K random read'),
    goal('#3', 'randread-qd16', 'nbd', 2.5, '4K random read'),
    goal('#6', 'randread-qd16', 'loop', 0.95, 'allocated 4K random read'),
    goal('#6', 'randread-qd16', 'nbd', 3.0, 'allocated 4K random read'),
    goal('#4', 'randwrite-qd16', 'loop', 0.90, '4K random write, allocated'),
    goal('#6', 'randwrite-qd16', 'loop', 0.95, 'allocated 4K random write'),
    goal('#6', 'randwrite-qd16', 'nbd', 3.0, 'allocated 4K random write'),
    goal('#4', 'randwrite-empty', 'loop', 0.70,
         '4K random write into an empty image vs sparse raw'),
    goal('#6', 'randwrite-empty', 'loop', 0.80,
         'allocating 4K writes vs sparse raw'),
    goal('#4', 'write-1m', 'loop', 0.90, '1M sequential write'),
    goal('#6', 'write-1m', 'loop', 0.95, '1M sequential write'),
    goal('#6', 'read-1m', 'loop', 0.95, '1M sequential read'),
    goal('#4', 'randwrite-cow64k', 'nbd', 2.0,
         '4K random write over a full backing file, 64K clusters'),
    goal('#6', 'randwrite-cow128k-el2', 'nobacking', 0.80,
         'COW with extended L2 vs the no-backing (empty) case'),
    goal('#6', 'randread-qd16-l2miss', 'qcow', 0.50,
         'read beyond the L2 cache vs covered'),
    goal('#6', 'randread-qd16x2', '1job', 1.7, '2 jobs over 1 job, read'),
    goal('#6', 'randwrite-qd16x2', '1job', 1.7, '2 jobs over 1 job, write'),
]

DEVICE_NAMES = {
    'qcow': 'qcow', 'qcows': 'qcow 64K L2', 'loop': 'loop (raw, dio)',
    'nbd': 'qemu-nbd', 'nbds': 'qemu-nbd 64K L2', 'file': 'raw file (fio)',
}
REF_NAMES = {'loop': 'loop', 'nbd': 'qemu-nbd',
             'qcow': 'qcow with a big L2 cache',
             'file': 'fio on the raw file', '1job': 'qcow with 1 job',
             'nobacking': 'qcow into an empty image',
             'direct': 'qcow on the backing image itself'}

KEYS = ['iops', 'bw', 'lat_p50_us', 'lat_p99_us', 'lat_mean_us',
        'cpu_cores', 'cpu_us_per_io', 'ctxt_per_io', 'l2_hit_rate',
        'write_amp', 'disk_writes_per_write', 'fio_usr_cpu', 'fio_sys_cpu']


def load_point(base, latdir, runtime):
    """One fio run: its metrics, {'na': reason} for a point that could not
    run, or None when the run is missing."""
    try:
        with open(base + '.na') as f:
            return {'na': f.read().strip() or 'n/a'}
    except OSError:
        pass
    try:
        with open(base + '.json') as f:
            fio = json.load(f)
    except (OSError, ValueError):
        return None
    job = fio['jobs'][0]
    dirs = [job[d] for d in ('read', 'write')]
    ld = job[latdir]
    pct = ld['lat_ns'].get('percentile') or ld['clat_ns'].get('percentile', {})
    p = {
        'iops': sum(d['iops'] for d in dirs),
        'bw': sum(d['bw_bytes'] for d in dirs),
        'lat_mean_us': ld['lat_ns']['mean'] / 1e3,
        'lat_p50_us': pct.get('50.000000', 0) / 1e3,
        'lat_p99_us': pct.get('99.000000', 0) / 1e3,
        'fio_usr_cpu': job['usr_cpu'],
        'fio_sys_cpu': job['sys_cpu'],
        'ios': sum(d['total_ios'] for d in dirs),
        'write_bytes': job['write']['io_bytes'],
        'job_runtime_ms': job['job_runtime'],
    }
    try:
        with open(base + '.cpu') as f:
            v = [int(x) for x in f.read().split()]
        busy0, total0, ctxt0, busy1, total1, ctxt1, ncpu = v[:7]
        if len(v) > 7:
            # From fio's start to the device's first I/O.
            p['fio_start_ms'] = v[7]
        if total1 > total0:
            # Whole guest: kworkers and qemu-nbd count, not only fio.
            p['cpu_cores'] = ncpu * (busy1 - busy0) / (total1 - total0)
            # jiffies -> seconds: total jiffies over ncpu CPUs at USER_HZ.
            secs = (total1 - total0) / ncpu / 100
            if p['iops'] > 0:
                p['cpu_us_per_io'] = p['cpu_cores'] / p['iops'] * 1e6
                p['ctxt_per_io'] = (ctxt1 - ctxt0) / secs / p['iops']
    except (OSError, ValueError):
        pass
    try:
        # Before and after: scratch disk sectors written, device sectors
        # written, device writes, L2 hits, L2 misses, scratch disk write
        # requests; then the slots.
        with open(base + '.ds') as f:
            v = [int(x) for x in f.read().split()]
        n = 6
        host, dev, writes, hits, misses, hreqs = (v[n + i] - v[i] for i in range(n))
        # Write requests the scratch disk completed per write the device
        # completed (merging shows here; the final flush is included).
        if writes > 0:
            p['disk_writes_per_write'] = hreqs / writes
        if hits + misses:
            p['l2_hit_rate'] = hits / (hits + misses)
        p['host_write_bytes'] = host * 512
        p['dev_write_bytes'] = dev * 512
        # Bytes the scratch disk took per byte the device was asked to
        # write, over the whole run (ramp and final flush included).
        if dev > 0:
            p['write_amp'] = host / dev
        if v[2 * n] and p['job_runtime_ms'] < 900 * runtime:
            # The replay log ran out before the runtime did.
            p['exhausted'] = v[2 * n]
    except (OSError, ValueError, IndexError):
        pass
    if 'exhausted' in p and (p['ios'] < 1000 or p['job_runtime_ms'] < 100):
        # Out of log just after the ramp: a few hundred I/Os over some
        # milliseconds, mostly the start and the drain of the queue, not a
        # rate.  Left out of the medians and ratios, and said so.
        return {'na': 'the replay log (%d writes) ran out %d ms (%d I/Os) '
                      'into the measured window'
                      % (p['exhausted'], p['job_runtime_ms'], p['ios']),
                'dropped': True}
    return p


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    return {'median': med, 'min': min(values), 'max': max(values),
            'spread': (max(values) - min(values)) / med if med else 0.0,
            'rounds': values}


def ok(p):
    return p is not None and 'na' not in p


def main():
    indir, outdir = sys.argv[1], sys.argv[2]
    host = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            host = json.load(f)
    with open(os.path.join(indir, 'meta.json')) as f:
        meta = json.load(f)
    rounds = range(1, meta['rounds'] + 1)
    lat_of = {r['name']: r['lat'] for r in ROWS}

    points = {}
    for r_ in ROWS:
        for rname, dev in [(r_['name'], r_['subject'])] + list(r_['refs'].values()):
            for r in rounds:
                base = os.path.join(indir, 'raw', f"{r}-{rname}-{dev}")
                p = load_point(base, lat_of[rname], meta['runtime'])
                if p is not None:
                    points[(r, rname, dev)] = p

    results = {'meta': meta, 'host': host, 'goals': [], 'rows': []}
    byname = {}
    for r_ in ROWS:
        name = r_['name']
        if name not in meta['rows']:
            continue
        devs = [r_['subject']] + [d for (rn, d) in r_['refs'].values()
                                  if rn == name and d != r_['subject']]
        out = {'name': name, 'title': r_['title'], 'short': r_['short'],
               'metric': r_['metric'], 'latency': r_['lat'],
               'subject': r_['subject'], 'devices': {}, 'ratios': {}}
        for dev in devs:
            per = [points.get((r, name, dev)) for r in rounds]
            d = {'name': r_['names'].get(dev, DEVICE_NAMES.get(dev, dev)),
                 'rounds': per}
            if any(p and 'na' in p for p in per) and not any(ok(p) for p in per):
                d['na'] = next(p['na'] for p in per if p and 'na' in p)
            for k in KEYS:
                s = summary([p.get(k) if ok(p) else None for p in per])
                if s:
                    d[k] = s
            exhausted = [p['exhausted'] for p in per if ok(p) and 'exhausted' in p]
            if exhausted:
                d['exhausted'] = exhausted
            dropped = ['round %d: %s' % (r, p['na'])
                       for r, p in zip(rounds, per) if p and p.get('dropped')]
            if dropped:
                d['dropped'] = dropped
            out['devices'][dev] = d
        for ref, (rrow, rdev) in r_['refs'].items():
            vals = []
            for r in rounds:
                a = points.get((r, name, r_['subject']))
                b = points.get((r, rrow, rdev))
                if ok(a) and ok(b) and b[r_['metric']] > 0:
                    vals.append(a[r_['metric']] / b[r_['metric']])
            s = summary(vals)
            if not s:
                continue
            s['reference'] = {'row': rrow, 'device': rdev}
            out['ratios'][ref] = s
        if '1job' in r_['refs']:
            # How every device scales, not only qcow: the machine's limit.
            one = r_['refs']['1job'][0]
            out['scaling'] = {}
            for dev in devs:
                vals = []
                for r in rounds:
                    a, b = points.get((r, name, dev)), points.get((r, one, dev))
                    if ok(a) and ok(b) and b['iops'] > 0:
                        vals.append(a['iops'] / b['iops'])
                s = summary(vals)
                if s:
                    out['scaling'][dev] = s
        results['rows'].append(out)
        byname[name] = out

    for g in GOALS:
        r_ = byname.get(g['row'])
        if r_ is None:
            continue
        s = r_['ratios'].get(g['reference'])
        res = dict(g)
        if s:
            res['ratio'] = s['median']
            res['min'] = s['min']
            res['max'] = s['max']
            res['met'] = s['median'] >= g['goal']
        else:
            res['ratio'] = None
            res['met'] = None
        results['goals'].append(res)

    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    write_chart_data(results, os.path.join(outdir, 'ratios.dat'))
    with open(os.path.join(outdir, 'title.txt'), 'w') as f:
        f.write('%s, guest kernel %s, TCG %d vCPU, %d rounds x %d s, %d MiB image%s\n'
                % (meta['date'][:10], meta['kernel'], meta['guest_ncpu'],
                   meta['rounds'], meta['runtime'], meta['image_size'] >> 20,
                   ' (quick mode)' if host.get('quick') else ''))
    print_table(results)


def write_chart_data(results, path):
    goals = {}
    for g in results['goals']:
        k = (g['row'], g['reference'])
        goals[k] = max(goals.get(k, 0), g['goal'])
    with open(path, 'w') as f:
        f.write('# workload  vs-loop median min max  vs-nbd median min max'
                '  goal-loop goal-nbd  label-loop label-nbd\n')
        for r_ in results['rows']:
            cols = ['"%s"' % r_['short']]
            labels = []
            for ref in ('loop', 'nbd'):
                s = r_['ratios'].get(ref)
                cols += (['%.4f' % s[k] for k in ('median', 'min', 'max')]
                         if s else ['NaN'] * 3)
                if s:
                    labels.append('%.0f' % s['median'] if s['median'] >= 10
                                  else '%.2f' % s['median'])
                elif r_['devices'][r_['subject']].get('na'):
                    labels.append('n/a')
                else:
                    labels.append('')
            for ref in ('loop', 'nbd'):
                g = goals.get((r_['name'], ref))
                cols.append('%.2f' % g if g else 'NaN')
            cols += ['"%s"' % lb for lb in labels]
            f.write(' '.join(cols) + '\n')


def fmt_num(v):
    if v is None:
        return '-'
    if v >= 100:
        return '%.0f' % v
    if v >= 10:
        return '%.1f' % v
    return '%.2f' % v


def fmt_ratio(s):
    if not s:
        return '-'
    return '%.2f [%.2f-%.2f]' % (s['median'], s['min'], s['max'])


def print_table(results):
    meta, host = results['meta'], results['host']
    print()
    print('qcow benchmark, %s: guest kernel %s, %d vCPU TCG, %s'
          % (meta['date'], meta['kernel'], meta['guest_ncpu'], meta['qemu']))
    print('%d rounds x %d s (after a %d s ramp) per point; %d MiB qcow2, %d KiB '
          'clusters; qcow L2 cache %d KiB (small: %d KiB)%s'
          % (meta['rounds'], meta['runtime'], meta['ramp'],
             meta['image_size'] >> 20, meta['cluster_size'] >> 10,
             meta['qcow_cache_size'] >> 10, meta['qcow_small_cache_size'] >> 10,
             '; QUICK MODE' if host.get('quick') else ''))
    if host.get('commit'):
        print('tree: %s%s' % (host['commit'],
                              ' (+ uncommitted changes)' if host.get('tree_dirty') else ''))
    if host.get('load_start'):
        print('host load average at start: %s, at end: %s; other VMs running '
              'at start: %s' % (host['load_start'], host.get('load_end', '?'),
                                host.get('other_vms', '?')))
    if host.get('scratch'):
        print('scratch disk: %s' % (
            'a file in host memory (tmpfs), %.1f GiB used'
            % (host.get('scratch_used', 0) / 2**30)
            if host['scratch'] == 'tmpfs' else 'a file on the host\'s disk'))
    if meta.get('qcow_rw_na'):
        print('qcow write rows n/a: %s' % meta['qcow_rw_na'])
    print('medians over rounds; spread = (max - min) / median; latency is fio '
          'lat (submit to completion) of the row\'s direction (reads for the '
          'mix); CPU = busy guest CPU (all processes and kworkers) per I/O; '
          'cs = guest context switches per I/O; WA = bytes written to the '
          'scratch disk per byte written to the device; dW/W = write '
          'requests of the scratch disk per write of the device')
    print()
    hdr = '%-32s %-17s %8s %8s %6s %8s %8s %9s %6s %6s %5s %6s' % (
        'workload', 'device', 'IOPS', 'MB/s', 'spread', 'p50 us', 'p99 us',
        'CPU us/IO', 'cs/IO', 'WA', 'dW/W', 'L2 hit')
    print(hdr)
    print('-' * len(hdr))
    notes = []
    for r_ in results['rows']:
        first = True
        write = r_['latency'] == 'write' or r_['name'].startswith('randrw')
        for dev, d in r_['devices'].items():
            title = r_['title'] if first else ''
            first = False
            if d.get('na'):
                # qcowctl's message without its "qcowctl: IMAGE: " prefix.
                why = d['na'].split(': ', 2)[-1]
                print('%-32s %-17s n/a (%s)' % (title, d['name'], why[:72]))
                continue
            m = r_['metric']

            def med(k):
                return d[k]['median'] if k in d else None
            hit = med('l2_hit_rate')
            wa = med('write_amp') if write else None
            dw = med('disk_writes_per_write') if write else None
            print('%-32s %-17s %8s %8s %5.0f%% %8s %8s %9s %6s %6s %5s %6s' % (
                title, d['name'],
                fmt_num(med('iops')),
                fmt_num(med('bw') / 1e6 if med('bw') is not None else None),
                100 * d[m]['spread'] if m in d else 0,
                fmt_num(med('lat_p50_us')), fmt_num(med('lat_p99_us')),
                fmt_num(med('cpu_us_per_io')), fmt_num(med('ctxt_per_io')),
                fmt_num(wa), fmt_num(dw),
                '%.0f%%' % (100 * hit) if hit is not None else '-'))
            if d.get('exhausted'):
                notes.append('%s on %s: a point wrote its whole replay log (%s '
                             'writes) before the runtime was over and stopped '
                             'early' % (r_['name'], d['name'], d['exhausted'][0]))
            for why in d.get('dropped', []):
                notes.append('%s on %s, %s: not counted' % (r_['name'], d['name'],
                                                            why))
    for n in notes:
        print('note: ' + n)
    print()
    print('ratio of qcow to its peers (IOPS or MB/s; median of per-round '
          'ratios [min-max])')
    print(('%-32s %-22s %s' % ('workload', 'vs loop', 'vs qemu-nbd')).rstrip())
    for r_ in results['rows']:
        r = r_['ratios']
        na = r_['devices'][r_['subject']].get('na')
        dash = 'n/a' if na else '-'
        print(('%-32s %-22s %s' % (
            r_['title'],
            fmt_ratio(r.get('loop')) if r.get('loop') else dash,
            fmt_ratio(r.get('nbd')) if r.get('nbd') else dash)).rstrip())
        for ref, (rrow, rdev) in ROW_REFS[r_['name']]:
            if ref in ('loop', 'nbd'):
                continue
            print('%-32s vs %s: %s' % ('', REF_NAMES[ref],
                                        fmt_ratio(r[ref]) if ref in r else dash))
        if r_.get('scaling'):
            print('%-32s 2 jobs / 1 job: %s' % ('', ', '.join(
                '%s %.2f' % (r_['devices'][d]['name'], s['median'])
                for d, s in r_['scaling'].items())))
    print()
    print('goals (issue: row, reference, minimum ratio: median [min-max], verdict)')
    for g in results['goals']:
        if g['met'] is None:
            verdict, val = 'n/a', '-'
        else:
            verdict = 'met' if g['met'] else 'MISSED'
            val = '%.2f [%.2f-%.2f]' % (g['ratio'], g['min'], g['max'])
        print('  %-3s %-22s vs %-24s >= %-4.2f %-18s %-6s  (%s)' % (
            g['issue'], g['row'], REF_NAMES[g['reference']], g['goal'], val,
            verdict, g['what']))


ROW_REFS = {r['name']: list(r['refs'].items()) for r in ROWS}

if __name__ == '__main__':
    main()
