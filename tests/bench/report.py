#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Host side of `make bench`: turn what tests/bench/guest-bench.sh wrote
# (fio JSON and CPU samples per round, row and device) into
#   - a table on stdout (medians over rounds, spread, latency, CPU per I/O,
#     ratios of qcow to loop and to qemu-nbd with the project's goals),
#   - OUT/results.json (every per-round number and the aggregates),
#   - OUT/ratios.dat and OUT/title.txt, read by tests/bench/ratios.gp.
#
#   report.py IN_DIR OUT_DIR [HOST_JSON]
#
# Ratios are computed per round (qcow and its peer ran minutes apart at most,
# under the same TCG speed) and then summarised by their median and range;
# never as a ratio of medians.
import json
import os
import statistics
import sys

# Rows in display order.  subject: the qcow device of the row; refs: what it
# is compared with, as (row, device) -- the l2miss row borrows loop and the
# big-cache qcow from the QD16 row of the same round.
ROWS = [
    dict(name='randread-qd1', title='4K randread QD1', short='4K QD1',
         metric='iops',
         subject='qcow', refs={'loop': ('randread-qd1', 'loop'),
                               'nbd': ('randread-qd1', 'nbd')}),
    dict(name='randread-qd16', title='4K randread QD16', short='4K QD16',
         metric='iops',
         subject='qcow', refs={'loop': ('randread-qd16', 'loop'),
                               'nbd': ('randread-qd16', 'nbd'),
                               'file': ('randread-qd16', 'file')}),
    dict(name='randread-qd32x2', title='4K randread QD32 x2 jobs',
         short='4K QD32x2', metric='iops',
         subject='qcow', refs={'loop': ('randread-qd32x2', 'loop'),
                               'nbd': ('randread-qd32x2', 'nbd')}),
    dict(name='read-64k', title='64K seq read QD16', short='64K seq',
         metric='bw',
         subject='qcow', refs={'loop': ('read-64k', 'loop'),
                               'nbd': ('read-64k', 'nbd')}),
    dict(name='read-1m', title='1M seq read QD16', short='1M seq',
         metric='bw',
         subject='qcow', refs={'loop': ('read-1m', 'loop'),
                               'nbd': ('read-1m', 'nbd')}),
    dict(name='randread-qd16-l2miss', title='4K randread QD16, 64K L2 cache',
         short='4K QD16 64K-L2', metric='iops', subject='qcows',
         refs={'loop': ('randread-qd16', 'loop'),
               'nbd': ('randread-qd16-l2miss', 'nbds'),
               'qcow': ('randread-qd16', 'qcow')}),
]

# The targets, as minimum ratios of the subject to a reference.
GOALS = {('randread-qd16', 'loop'): 0.90, ('randread-qd16', 'nbd'): 2.5}

DEVICE_NAMES = {
    'qcow': 'qcow', 'qcows': 'qcow 64K L2', 'loop': 'loop (raw, dio)',
    'nbd': 'qemu-nbd', 'nbds': 'qemu-nbd 64K L2', 'file': 'raw file (fio)',
}
REF_NAMES = {'loop': 'loop', 'nbd': 'qemu-nbd', 'qcow': 'qcow with a big L2 cache',
             'file': 'fio on the raw file'}


def load_point(base):
    """One fio run: its metrics, or None when the run is missing."""
    try:
        with open(base + '.json') as f:
            fio = json.load(f)
    except (OSError, ValueError):
        return None
    job = fio['jobs'][0]
    rd = job['read']
    pct = rd['lat_ns'].get('percentile') or rd['clat_ns'].get('percentile', {})
    p = {
        'iops': rd['iops'],
        'bw': rd['bw_bytes'],
        'lat_mean_us': rd['lat_ns']['mean'] / 1e3,
        'lat_p50_us': pct.get('50.000000', 0) / 1e3,
        'lat_p99_us': pct.get('99.000000', 0) / 1e3,
        'fio_usr_cpu': job['usr_cpu'],
        'fio_sys_cpu': job['sys_cpu'],
        'ios': rd['total_ios'],
    }
    try:
        with open(base + '.cpu') as f:
            v = [int(x) for x in f.read().split()]
        busy0, total0, ctxt0, busy1, total1, ctxt1, ncpu = v[:7]
        if total1 > total0:
            # Whole guest: kworkers and qemu-nbd count, not only fio.
            p['cpu_cores'] = ncpu * (busy1 - busy0) / (total1 - total0)
            # jiffies -> seconds: total jiffies over ncpu CPUs at USER_HZ.
            secs = (total1 - total0) / ncpu / 100
            if p['iops'] > 0:
                p['cpu_us_per_io'] = p['cpu_cores'] / p['iops'] * 1e6
                p['ctxt_per_io'] = (ctxt1 - ctxt0) / secs / p['iops']
        hits = v[9] - v[7]
        misses = v[10] - v[8]
        if hits + misses:
            p['l2_hit_rate'] = hits / (hits + misses)
    except (OSError, ValueError, IndexError):
        pass
    return p


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    return {'median': med, 'min': min(values), 'max': max(values),
            'spread': (max(values) - min(values)) / med if med else 0.0,
            'rounds': values}


def main():
    indir, outdir = sys.argv[1], sys.argv[2]
    host = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as f:
            host = json.load(f)
    with open(os.path.join(indir, 'meta.json')) as f:
        meta = json.load(f)
    rounds = range(1, meta['rounds'] + 1)

    points = {}
    for row in ROWS:
        for dev in set([row['subject']] + [d for _, d in row['refs'].values()]):
            for r in rounds:
                base = os.path.join(indir, 'raw', f"{r}-{row['name']}-{dev}")
                if os.path.exists(base + '.json'):
                    points[(r, row['name'], dev)] = load_point(base)
    keys = ['iops', 'bw', 'lat_p50_us', 'lat_p99_us', 'lat_mean_us',
            'cpu_cores', 'cpu_us_per_io', 'ctxt_per_io', 'l2_hit_rate',
            'fio_usr_cpu',
            'fio_sys_cpu']

    results = {'meta': meta, 'host': host, 'goals': [], 'rows': []}
    for row in ROWS:
        name = row['name']
        if name not in meta['rows']:
            continue
        devs = [row['subject']] + [d for (rn, d) in row['refs'].values()
                                   if rn == name and d != row['subject']]
        out = {'name': name, 'title': row['title'], 'short': row['short'],
               'metric': row['metric'],
               'subject': row['subject'], 'devices': {}, 'ratios': {}}
        for dev in devs:
            per = [points.get((r, name, dev)) for r in rounds]
            d = {'rounds': per}
            for k in keys:
                s = summary([p.get(k) if p else None for p in per])
                if s:
                    d[k] = s
            out['devices'][dev] = d
        for ref, (rrow, rdev) in row['refs'].items():
            vals = []
            for r in rounds:
                a = points.get((r, name, row['subject']))
                b = points.get((r, rrow, rdev))
                if a and b and b[row['metric']] > 0:
                    vals.append(a[row['metric']] / b[row['metric']])
            s = summary(vals)
            if not s:
                continue
            s['reference'] = {'row': rrow, 'device': rdev}
            goal = GOALS.get((name, ref))
            if goal is not None:
                s['goal'] = goal
                s['met'] = s['median'] >= goal
                results['goals'].append({'row': name, 'reference': ref,
                                         'goal': goal, 'ratio': s['median'],
                                         'met': s['met']})
            out['ratios'][ref] = s
        results['rows'].append(out)

    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    write_chart_data(results, os.path.join(outdir, 'ratios.dat'))
    with open(os.path.join(outdir, 'title.txt'), 'w') as f:
        f.write('%s, guest kernel %s, TCG %d vCPU, %d rounds x %d s, %d MiB image\n'
                % (meta['date'][:10], meta['kernel'], meta['guest_ncpu'],
                   meta['rounds'], meta['runtime'], meta['image_size'] >> 20))
    print_table(results)


def write_chart_data(results, path):
    with open(path, 'w') as f:
        f.write('# workload  vs-loop median min max  vs-nbd median min max\n')
        for row in results['rows']:
            cols = ['"%s"' % row['short']]
            for ref in ('loop', 'nbd'):
                s = row['ratios'].get(ref)
                cols += (['%.4f' % s[k] for k in ('median', 'min', 'max')]
                         if s else ['NaN'] * 3)
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
    txt = '%.2f [%.2f-%.2f]' % (s['median'], s['min'], s['max'])
    if 'goal' in s:
        txt += '  goal >= %.2f: %s' % (s['goal'], 'met' if s['met'] else 'MISSED')
    return txt


def print_table(results):
    meta, host = results['meta'], results['host']
    print()
    print('qcow benchmark, %s: guest kernel %s, %d vCPU TCG, %s'
          % (meta['date'], meta['kernel'], meta['guest_ncpu'], meta['qemu']))
    print('%d rounds x %d s (after a %d s ramp) per point; %d MiB qcow2, %d KiB '
          'clusters; qcow L2 cache %d KiB (small: %d KiB)'
          % (meta['rounds'], meta['runtime'], meta['ramp'],
             meta['image_size'] >> 20, meta['cluster_size'] >> 10,
             meta['qcow_cache_size'] >> 10, meta['qcow_small_cache_size'] >> 10))
    if host.get('load_start'):
        print('host load average at start: %s, at end: %s; other VMs running '
              'at start: %s' % (host['load_start'], host.get('load_end', '?'),
                                host.get('other_vms', '?')))
    print('medians over rounds; spread = (max - min) / median; latency is fio '
          'lat (submit to completion); CPU = busy guest CPU (all processes and '
          'kworkers) per I/O; cs = guest context switches per I/O')
    print()
    hdr = '%-30s %-16s %9s %9s %7s %9s %9s %10s %6s %7s' % (
        'workload', 'device', 'IOPS', 'MB/s', 'spread', 'p50 us', 'p99 us',
        'CPU us/IO', 'cs/IO', 'L2 hit')
    print(hdr)
    print('-' * len(hdr))
    for row in results['rows']:
        first = True
        for dev, d in row['devices'].items():
            m = row['metric']

            def med(k):
                return d[k]['median'] if k in d else None
            hit = med('l2_hit_rate')
            print('%-30s %-16s %9s %9s %6.0f%% %9s %9s %10s %6s %7s' % (
                row['title'] if first else '', DEVICE_NAMES.get(dev, dev),
                fmt_num(med('iops')),
                fmt_num(med('bw') / 1e6 if med('bw') is not None else None),
                100 * d[m]['spread'] if m in d else 0,
                fmt_num(med('lat_p50_us')), fmt_num(med('lat_p99_us')),
                fmt_num(med('cpu_us_per_io')), fmt_num(med('ctxt_per_io')),
                '%.0f%%' % (100 * hit) if hit is not None else '-'))
            first = False
    print()
    print('ratio of qcow to its peers (IOPS or MB/s; median of per-round '
          'ratios [min-max])')
    print(('%-30s %-44s %s' % ('workload', 'vs loop', 'vs qemu-nbd')).rstrip())
    for row in results['rows']:
        r = row['ratios']
        print(('%-30s %-44s %s' % (row['title'], fmt_ratio(r.get('loop')),
                                   fmt_ratio(r.get('nbd')))).rstrip())
        for ref in r:
            if ref not in ('loop', 'nbd'):
                print('%-30s vs %s: %s' % ('', REF_NAMES[ref], fmt_ratio(r[ref])))
    print()
    for g in results['goals']:
        print('goal: %s qcow/%s >= %.2f: %.2f, %s' % (
            g['row'], REF_NAMES[g['reference']], g['goal'], g['ratio'],
            'met' if g['met'] else 'MISSED'))


if __name__ == '__main__':
    main()
