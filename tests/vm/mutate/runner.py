#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest side of the mutation tests: attach, read, write, snapshot, detach.

    runner.py run --bases DIR --work DIR --seed S --count N [--first J]
                  [--jobs K --shard I] [--seeds S1,S2...] --results FILE
                  [--out DIR]
    runner.py summary [--batch N] FILE...

`run` tests images J..J+N-1 of run seed S (those with index % K == I; the
image seed of index j is mutate.image_seed(S, j), or --seeds lists image
seeds directly).  For each mutant (mutate.py), in its own directory
WORK/wI/ between two canary files:

  1. attach it read-write through a bare QCOW_CTL_ATTACH ioctl (the
     kernel's own checks; one image in 8 goes through `qcowctl attach`
     first), with the layout's backing file (WORK/backing/) when the
     header still names one; read-only if read-write is refused;
  2. read the whole disk with O_DIRECT (first 32 MiB and last 4 MiB of a
     disk larger than 64 MiB), counting EIO;
  3. read-write only: write a few blocks (where the mutation hit, in the
     layout's data, at the start and the end of the disk), each read back
     at once; fsync; `qcowctl snapshot create`; one more write over a
     block the snapshot now shares, read back; fsync;
  4. detach.

Outcome classes: refused (no attach at all), eio (some read failed with
EIO), clean.  A failure is: a kernel warning (BUG, WARNING, KASAN, oops,
hung task: found in /dev/kmsg after the image; an oops panics the VM,
then the last "qcow-mutate:" line on the console names the image), a
changed canary or backing file, an image file changed by a refused or
read-only attach, a write that succeeded but reads back different data, a
write that succeeded after the disk had reported corruption, an EIO on a
read without the corrupt flag, a read error other than EIO, a failed
detach, and a corruption: the image was written, the kernel did not mark
it corrupt (sysfs nor header bit), and `qemu-img check` finds corruption
(or cannot open it) although it found none in the mutant before our
writes.  Leaks are allowed.  A failing image is kept in OUT/fail-SEED/
(the mutant as generated, the image afterwards, the kernel log, a README
with the seed, layout and mutations).

`summary` merges the result files (JSON lines) and prints "PASS|FAIL
mutate/batch-K" per batch of N images, the failures, and the tally line
    mutate: N images: R refused, E with EIO, C clean, O oopses, X corruptions
Exit status 0 iff nothing failed.
"""

import argparse
import ctypes
import errno
import fcntl
import hashlib
import json
import mmap
import os
import random
import re
import struct
import subprocess
import sys
import threading
import traceback
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutate  # noqa: E402

QCOW_CTL_ATTACH = 0xC040A701
QCOW_CTL_DETACH = 0x4020A702
QCOW_ATTACH_READ_ONLY = 1
QCOW_FMT = {'qcow2': 1, 'raw': 2}
BLKGETSIZE64 = 0x80081272
BLKDISCARD = 0x1277
BLKZEROOUT = 0x127F

BAD_KMSG = re.compile(r'BUG:|Oops|WARNING:|KASAN|UBSAN|hung_task|lockdep|'
                      r'general protection|Call Trace')
BIG = 64 << 20
CHUNK = 256 << 10


def ename(e):
    return errno.errorcode.get(e, str(e))


class Kmsg:
    """New kernel log records since the last call."""

    def __init__(self):
        self.fd = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.EPIPE:   # overwritten: go on
                    continue
                raise
            line = rec.decode(errors='replace').rstrip('\n')
            meta, _, text = line.partition(';')
            out.append(text.split('\n')[0])

    @staticmethod
    def mark(text):
        try:
            with open('/dev/kmsg', 'w') as f:
                f.write('<5>qcow-mutate: %s\n' % text)
        except OSError:
            pass


def ctl_check(ctl, path):
    """(rc, json dict or None) of qcowctl check --json."""
    try:
        p = subprocess.run([ctl, 'check', '--json', path], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=300)
    except subprocess.TimeoutExpired:
        return -1, None
    try:
        res = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        res = None
    return p.returncode, res


def qemu_check(path):
    """(rc, json dict or None) of qemu-img check, backing files ignored."""
    spec = json.dumps({'driver': 'qcow2', 'file': {'driver': 'file', 'filename': path},
                       'backing': None})
    try:
        p = subprocess.run(['qemu-img', 'check', '--output=json', 'json:' + spec],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    except subprocess.TimeoutExpired:
        return -1, None
    try:
        res = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        res = None
    return p.returncode, res


def check_summary(rc, res):
    if res is None:
        return 'qemu-img check could not check it (exit %d)' % rc
    return 'qemu-img check: %d corruptions, %d leaks, %d check errors (exit %d)' % (
        res.get('corruptions', 0), res.get('leaks', 0), res.get('check-errors', 0), rc)


def corrupt_count(rc, res):
    """Corruptions qemu-img check found, None if it could not check."""
    if res is None or rc == 1:
        return None
    return res.get('corruptions', 0) + res.get('check-errors', 0)


def sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


class Runner:
    def __init__(self, a):
        self.a = a
        self.bases = mutate.Bases(a.bases, os.environ.get('QCOW_MUTATE_LAYOUTS'))
        self.work = os.path.abspath(a.work)
        self.dir = os.path.join(self.work, 'w%d' % a.shard)
        os.makedirs(self.dir, exist_ok=True)
        self.ctl = os.environ.get('QCOW_CTL', 'qcowctl')
        self.out = a.out
        self.kmsg = Kmsg()
        self.rbuf = mmap.mmap(-1, CHUNK)
        self.wbuf = mmap.mmap(-1, 1 << 16)
        self.cbuf = mmap.mmap(-1, 1 << 16)
        self.res = open(a.results, 'a')
        # The backing files every worker shares, and their checksums.
        self.backing = os.path.join(self.work, 'backing')
        self.backing_sums = {}
        for f in sorted(os.listdir(self.backing)):
            p = os.path.join(self.backing, f)
            st = os.stat(p)
            self.backing_sums[f] = (sha(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        self.nimg = 0
        # 1 in QCOW_MUTATE_QEMU_CHECK written images gets qemu-img check
        # even when qcowctl check calls it clean (1: all; 0: none).
        self.qemu_rate = int(os.environ.get('QCOW_MUTATE_QEMU_CHECK', '4'))
        # 1 in QCOW_MUTATE_QEMU_CMP images: the reads are compared with
        # what qemu-img convert reads from the mutant (0: never).
        self.cmp_rate = int(os.environ.get('QCOW_MUTATE_QEMU_CMP', '8'))
        # Images with notes (no failure: e.g. a corrupt mutant that got
        # worse) kept in OUT/note-SEED/, at most this many per worker.
        self.keep_notes = int(os.environ.get('QCOW_MUTATE_KEEP_NOTES', '5'))
        self.kept_notes = 0

    def qemu_convert(self, img, r):
        """qemu-img convert of the mutant to raw, or None."""
        raw = os.path.join(self.dir, 'qemu.raw')
        try:
            p = subprocess.run(['qemu-img', 'convert', '-U', '-f', 'qcow2', '-O', 'raw',
                                '-S', '4k', img, raw], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=300)
        except subprocess.TimeoutExpired:
            r['notes'].append('qemu-img convert timed out')
            return None
        if p.returncode:
            r['qemu_convert'] = p.stderr.decode(errors='replace').strip().split('\n')[0][:200]
            return None
        if os.path.getsize(raw) > BIG:
            os.unlink(raw)
            return None
        r['qemu_convert'] = 'ok'
        return raw

    def fast_check(self, img):
        return ctl_check(self.ctl, img)

    # -- I/O helpers -------------------------------------------------------
    def pread(self, fd, off, n, buf=None):
        buf = buf or self.rbuf
        mv = memoryview(buf)[:n]
        try:
            got = os.preadv(fd, [mv], off)
        except OSError as e:
            return e.errno, None
        return 0, bytes(mv[:got])

    def pwrite(self, fd, off, data):
        mv = memoryview(self.wbuf)[:len(data)]
        mv[:] = data
        try:
            n = os.pwritev(fd, [mv], off)
        except OSError as e:
            return e.errno
        return 0 if n == len(data) else errno.EIO

    def read_direct(self, path, n):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            e, data = self.pread(fd, 0, n, self.cbuf)
        finally:
            os.close(fd)
        return data if not e else None

    # -- attach/detach -------------------------------------------------------
    def ioctl_attach(self, img, layers, ro):
        ctl = os.open('/dev/qcow-control', os.O_RDWR)
        fds = []
        try:
            fd = os.open(img, os.O_RDONLY if ro else os.O_RDWR)
            fds.append(fd)
            desc = ctypes.create_string_buffer(16 * max(1, len(layers)))
            for i, (fmt, path) in enumerate(layers):
                lfd = os.open(path, os.O_RDONLY)
                fds.append(lfd)
                struct.pack_into('=IIQ', desc, 16 * i, lfd, QCOW_FMT[fmt], 0)
            arg = bytearray(struct.pack('=IIQII Q I 28x', fd, QCOW_ATTACH_READ_ONLY if ro else 0,
                                        ctypes.addressof(desc), len(layers), 0, 0, 0))
            try:
                fcntl.ioctl(ctl, QCOW_CTL_ATTACH, arg)
            except OSError as e:
                return None, ename(e.errno)
            return struct.unpack_from('=I', arg, 32)[0], None
        finally:
            for fd in fds:
                os.close(fd)
            os.close(ctl)

    def ioctl_detach(self, index):
        ctl = os.open('/dev/qcow-control', os.O_RDWR)
        try:
            for _ in range(50):
                try:
                    fcntl.ioctl(ctl, QCOW_CTL_DETACH, struct.pack('=II24x', index, 0))
                    return None
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        return ename(e.errno)
                time.sleep(0.1)
            return 'EBUSY'
        finally:
            os.close(ctl)

    def ctl_run(self, *args):
        try:
            p = subprocess.run([self.ctl] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=300)
        except subprocess.TimeoutExpired:
            return -1000, '', 'timed out'
        return p.returncode, p.stdout.decode(errors='replace').strip(), \
            p.stderr.decode(errors='replace').strip()

    # -- one image --------------------------------------------------------------
    def one(self, j, seed):
        t0 = time.monotonic()
        tm = {}

        def lap(what, t=[t0]):
            now = time.monotonic()
            tm[what] = round(now - t[0], 2)
            t[0] = now
        name, data, descs, hot = mutate.generate(self.bases, seed)
        lay = self.bases.layouts[name]
        rng = random.Random('qcow-mutate-run-%d' % seed)
        r = {'index': j, 'seed': seed, 'layout': name, 'mutations': descs, 'fail': [],
             'notes': []}
        fail, note = r['fail'].append, r['notes'].append
        self.nimg += 1
        self.tags = set()
        self.first = {}      # offset -> (length, crc32) of what the first reads gave
        self.touched = []    # (offset, length) we wrote, discarded or zeroed
        Kmsg.mark('w%d #%d seed=%d layout=%s' % (self.a.shard, j, seed, name))
        self.kmsg.new()

        d = self.dir
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        canary = hashlib.sha256(b'canary-%d' % seed).digest() * 2048
        ca, cb = os.path.join(d, 'canary-a'), os.path.join(d, 'canary-b')
        img = os.path.join(d, 'image.qcow2')
        with open(ca, 'wb') as f:
            f.write(canary)
        mutate.write_sparse(img, data)
        with open(cb, 'wb') as f:
            f.write(canary)
        lap('gen')

        # Backing layers, when the header still names a backing file.
        layers = []
        if lay['layers'] and len(data) >= 16 and struct.unpack_from('>Q', data, 8)[0]:
            layers = [(fmt, os.path.join(self.backing, f)) for fmt, f in lay['layers']]

        # For comparing reads: what qemu makes of the mutant, when it can.
        self.qraw = None
        if self.cmp_rate and seed % self.cmp_rate == 1 % self.cmp_rate:
            self.qraw = self.qemu_convert(img, r)
        lap('qemu')

        self.layers = layers

        # 1. attach
        index, mode = None, None
        r['via'] = 'qcowctl' if rng.random() < 0.125 else 'ioctl'
        if r['via'] == 'qcowctl':
            rc, out, err = self.ctl_run('attach', img)
            if rc < 0:
                fail('qcowctl attach died (%d): %s' % (rc, err))
            if rc == 0 and out.startswith('/dev/qcow'):
                index, mode = int(out[len('/dev/qcow'):]), 'rw'
            else:
                r['ctl_refused'] = err.split('\n')[0][:200]
        if index is None:
            index, e = self.ioctl_attach(img, layers, False)
            mode = 'rw' if index is not None else None
            r['rw_errno'] = e
            if index is None:
                index, e = self.ioctl_attach(img, layers, True)
                mode = 'ro' if index is not None else None
                r['ro_errno'] = e
                if e == 'ENOMEM':
                    fail('attach failed with ENOMEM: an allocation sized by the image?')
        r['attach'] = mode or 'refused'
        lap('attach')
        stats = {'read_eio': 0, 'reads': 0, 'writes': 0, 'write_ok': 0, 'write_eio': 0}
        r.update(stats)
        if index is not None:
            self.exercise(r, index, mode, rng, hot, lay, lap)
            err = self.ioctl_detach(index)
            if err:
                fail('detach failed: %s' % err)
            lap('detach')

        # Kernel log.
        klog = self.kmsg.new()
        bad = [x for x in klog if BAD_KMSG.search(x)]
        if bad:
            fail('kernel warning: ' + ' | '.join(bad[:5]))
            r['oops'] = True
        r['klog'] = [x for x in klog if x.startswith('qcow')][:20]

        # Canaries, backing files, the image of a refused/read-only attach.
        for p in (ca, cb):
            if self.read_direct(p, len(canary)) != canary:
                fail('canary %s changed' % os.path.basename(p))
        if layers:
            for f in os.listdir(self.backing):
                st = os.stat(os.path.join(self.backing, f))
                if (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != self.backing_sums[f][1:]:
                    fail('backing file %s changed (size/mtime/ctime)' % f)
        if mode != 'rw':
            if os.path.getsize(img) != len(data):
                fail('image size changed by a %s attach' % (mode or 'refused'))
            else:
                with open(img, 'rb') as f:
                    if f.read() != data:
                        fail('image changed by a %s attach' % (mode or 'refused'))
        lap('verify')
        if mode == 'rw':
            self.verify_image(r, img, data)
            lap('check')
        r['secs'] = round(time.monotonic() - t0, 2)
        r['times'] = tm
        if r['fail']:
            self.keep(r, img, data, klog)
        elif r['notes'] and self.kept_notes < self.keep_notes:
            self.kept_notes += 1
            self.keep(r, img, data, klog, 'note')
        self.res.write(json.dumps(r, sort_keys=True) + '\n')
        self.res.flush()
        if r['fail']:
            print('mutate: FAIL image %d seed %d layout %s: %s' % (j, seed, name,
                                                                 '; '.join(r['fail'])))
            sys.stdout.flush()

    def exercise(self, r, index, mode, rng, hot, lay, lap):
        fail = r['fail'].append
        dev = '/dev/qcow%d' % index
        sysc = '/sys/block/qcow%d/qcow/corrupt' % index

        def corrupt():
            try:
                with open(sysc) as f:
                    return f.read().strip() not in ('', '0')
            except OSError:
                return False

        fd = os.open(dev, (os.O_RDONLY if mode == 'ro' else os.O_RDWR) | os.O_DIRECT)
        try:
            size = struct.unpack('=Q', fcntl.ioctl(fd, BLKGETSIZE64, bytes(8)))[0]
            r['dev_size'] = size
            # 2. read it all (or its start and its end)
            ranges = [(0, size)] if size <= BIG else [(0, 32 << 20), (size - (4 << 20), size)]
            ref = None
            if self.qraw:
                if os.path.getsize(self.qraw) == size:
                    ref = open(self.qraw, 'rb')
                    r['qemu_compared'] = 0
                else:
                    r['notes'].append('qemu-img sees %d bytes, the device %d: not compared' %
                                      (os.path.getsize(self.qraw), size))
            for a, b in ranges:
                off = a
                while off < b:
                    n = min(CHUNK, b - off)
                    e, got = self.pread(fd, off, n)
                    r['reads'] += 1
                    if e == errno.EIO:
                        r['read_eio'] += 1
                    elif e:
                        fail('read of %d bytes at 0x%x: %s' % (n, off, ename(e)))
                    else:
                        self.first[off] = (n, zlib.crc32(got))
                    if not e and ref:
                        ref.seek(off)
                        want = ref.read(n)
                        r['qemu_compared'] += 1
                        if got != want and 'qemu_differs' not in r:
                            i = next(k for k in range(n) if got[k] != want[k])
                            r['qemu_differs'] = off + i
                            fail('reading 0x%x..0x%x gives other data than qemu-img '
                                 'convert, from 0x%x on' % (off, off + n, off + i))
                    off += n
            if ref:
                ref.close()
            r['corrupt_after_reads'] = corrupt()
            lap('read')
            if r['read_eio'] and not r['corrupt_after_reads']:
                fail('%d reads failed with EIO but the disk is not marked corrupt' %
                     r['read_eio'])
            if mode != 'rw':
                return
            # 3. writes, each read back at once
            targets = [h for h in hot if h < size][:2]
            for a, ln in rng.sample(lay['data'], min(2, len(lay['data']))):
                if a < size:
                    targets.append(a + rng.randrange(max(1, min(ln, size - a))))
            targets += [0, max(0, size - 4096)]
            done = []
            for k, t in enumerate(targets):
                ln = rng.choice([512, 4096, 4096, 65536])
                t = min(t & ~(ln - 1), max(0, size - ln) & ~511)
                if ln > size:
                    continue
                done.append((t, ln))
                self.write_check(r, fd, t, ln, (r['seed'], k), corrupt)
            self.discard_zero(r, fd, size, targets, rng, corrupt)
            self.burst(r, fd, size, targets, rng)
            try:
                os.fsync(fd)
            except OSError as e:
                r['fsync'] = ename(e.errno)
                if e.errno not in (errno.EIO, errno.ENOSPC):
                    fail('fsync: %s' % ename(e.errno))
        finally:
            os.close(fd)
        lap('write')
        # snapshot, then overwrite a block the snapshot shares
        rc, _, err = self.ctl_run('snapshot', 'create', dev, 'mutant-%d' % r['seed'])
        r['snapshot'] = 'ok' if rc == 0 else err.split('\n')[0][:200]
        if rc < 0:
            fail('qcowctl snapshot create died (%d): %s' % (rc, err))
        lap('snapshot')
        if not done:
            return
        fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
        try:
            t, ln = rng.choice(done)
            self.write_check(r, fd, t, ln, (r['seed'], 99), corrupt)
            try:
                os.fsync(fd)
            except OSError as e:
                if e.errno not in (errno.EIO, errno.ENOSPC):
                    fail('fsync after snapshot: %s' % ename(e.errno))
        finally:
            os.close(fd)
        r['corrupt_at_detach'] = corrupt()

    def discard_zero(self, r, fd, size, targets, rng, corrupt):
        """BLKDISCARD and BLKZEROOUT where the mutation hit (or in the data):
        a freed cluster that is really metadata must not be punched out."""
        for op, num in (('discard', BLKDISCARD), ('zeroout', BLKZEROOUT)):
            t = rng.choice(targets)
            ln = rng.choice([4096, 65536, 1 << 20])
            t = min(t & ~(ln - 1), max(0, size - ln) & ~511)
            if ln > size:
                continue
            self.touched.append((t, ln))
            was_corrupt = corrupt()
            try:
                fcntl.ioctl(fd, num, struct.pack('=QQ', t, ln))
            except OSError as e:
                r.setdefault(op, []).append(ename(e.errno))
                if e.errno not in (errno.EIO, errno.ENOSPC, errno.EOPNOTSUPP):
                    r['fail'].append('%s of %d bytes at 0x%x: %s' % (op, ln, t, ename(e.errno)))
                continue
            r.setdefault(op, []).append('ok')
            if was_corrupt:
                r['fail'].append('%s at 0x%x succeeded on a disk marked corrupt' % (op, t))
            if op == 'zeroout':
                n = min(ln, CHUNK)
                e, back = self.pread(fd, t, n)
                if e == 0 and back.count(0) != n:
                    r['fail'].append('zeroout of %d bytes at 0x%x succeeded but reads back '
                                     'non-zero data' % (ln, t))

    def burst(self, r, fd, size, targets, rng):
        """A few 4 KiB writes at once, from threads (errors allowed)."""
        offs = [min(t & ~4095, max(0, size - 4096)) for t in targets]
        offs += [rng.randrange(max(1, size // 4096)) * 4096 for _ in range(4)]
        offs = [o for o in offs if o + 4096 <= size]
        errs = []

        def one(k, off):
            buf = mmap.mmap(-1, 4096)
            buf.write(struct.pack('>QQ', r['seed'], 200 + k) * 256)
            try:
                os.pwritev(fd, [buf], off)
            except OSError as e:
                errs.append(e.errno)
            buf.close()
        ts = [threading.Thread(target=one, args=(k, o)) for k, o in enumerate(offs)]
        for k, o in enumerate(offs):
            self.tags.add(struct.pack('>QQ', r['seed'], 200 + k))
            self.touched.append((o, 4096))
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        r['burst'] = '%d writes, %d failed' % (len(offs), len(errs))
        for e in set(errs) - {errno.EIO, errno.ENOSPC}:
            r['fail'].append('concurrent write: %s' % ename(e))

    def compare_again(self, r, img, layers):
        """Attach the detached image again (read-only) and read it: what
        we never wrote must read as it did at first."""
        index, e = self.ioctl_attach(img, layers, True)
        if index is None:
            r['fail'].append('the image, checked clean after our writes, no longer '
                             'attaches: %s' % e)
            return
        fd = os.open('/dev/qcow%d' % index, os.O_RDONLY | os.O_DIRECT)
        bad = 0
        try:
            for off, (n, crc) in sorted(self.first.items()):
                if any(t < off + n and off < t + ln for t, ln in self.touched):
                    continue
                e, got = self.pread(fd, off, n)
                r['compared_again'] = r.get('compared_again', 0) + 1
                if e or zlib.crc32(got) != crc:
                    bad += 1
                    if bad <= 3:
                        r['fail'].append('after our writes and a detach, 0x%x+0x%x %s' %
                                         (off, n, 'fails: %s' % ename(e) if e else
                                          'reads other data than before them'))
        finally:
            os.close(fd)
            err = self.ioctl_detach(index)
            if err:
                r['fail'].append('detach after the second reading failed: %s' % err)

    def write_check(self, r, fd, off, ln, tag, corrupt):
        self.touched.append((off, ln))
        was_corrupt = corrupt()
        self.tags.add(struct.pack('>QQ', *tag))
        pat = struct.pack('>QQ', *tag) * (ln // 16)
        r['writes'] += 1
        e = self.pwrite(fd, off, pat)
        if e == errno.EIO:
            r['write_eio'] += 1
            return
        if e:
            if e != errno.ENOSPC:
                r['fail'].append('write of %d bytes at 0x%x: %s' % (ln, off, ename(e)))
            return
        r['write_ok'] += 1
        if was_corrupt:
            r['fail'].append('write at 0x%x succeeded on a disk marked corrupt' % off)
        e, back = self.pread(fd, off, ln)
        if e == 0 and back != pat:
            r['fail'].append('write of %d bytes at 0x%x reads back different data' % (ln, off))
        elif e:
            r['notes'].append('read-back at 0x%x: %s' % (off, ename(e)))

    def verify_image(self, r, img, data):
        """After a read-write attach: no guest data over metadata, no new
        corruption unless the kernel flagged it."""
        view = mutate.FileView(img)
        ovl = []
        try:
            hdr = view[0:80]
            meta = mutate.live_metadata(view)
            # Guest data in a sector of live metadata: a write that should
            # have hit the overlap check.  Our writes start every sector
            # with their own 16-byte tag.
            for base_off, chunk in view.extents():
                for tag in self.tags:
                    i = chunk.find(tag)
                    while i >= 0:
                        if i % 512:
                            i = chunk.find(tag, i + 1)
                            continue
                        at = base_off + i
                        for what, off, ln in meta:
                            if off <= at < off + ln:
                                ovl.append('guest data (write %d) at 0x%x, in the %s at 0x%x' %
                                           (struct.unpack('>QQ', tag)[1], at, what, off))
                                break
                        i = chunk.find(tag, (i // 512 + 1) * 512)
            # Metadata the kernel put on top of other metadata: overlaps the
            # image has after our writes that the mutant did not have.
            before = mutate.overlaps(mutate.live_metadata(data))
            for k, (wa, wb) in sorted(mutate.overlaps(meta).items()):
                if k not in before:
                    (a, la), (b, lb) = k
                    ovl.append('the %s at 0x%x+0x%x overlaps the %s at 0x%x+0x%x, '
                               'which the mutant did not have' % (wa, a, la, wb, b, lb))
            r['image_size'] = len(view)
        finally:
            view.close()
        if ovl:
            # A failure if the mutant was consistent.  In a mutant whose
            # refcounts already lie, a cluster still in use can reach
            # refcount 0 and be handed out again: noted, kept, not failed.
            pre_path = os.path.join(self.dir, 'pre.qcow2')
            mutate.write_sparse(pre_path, data)
            prc, pres = self.fast_check(pre_path)
            pre = corrupt_count(prc, pres)
            if pre is None:
                prc, pres = qemu_check(pre_path)
                pre = corrupt_count(prc, pres)
            os.unlink(pre_path)
            if pre == 0:
                r['fail'] += ovl[:5]
                r['corruption'] = True
            else:
                r['notes'] += ['overlap in a corrupt mutant (%s): %s' %
                               (check_summary(prc, pres), x) for x in ovl[:5]]
        v3 = len(hdr) >= 80 and struct.unpack_from('>I', hdr, 4)[0] >= 3
        r['hdr_corrupt'] = bool(v3 and struct.unpack_from('>Q', hdr, 72)[0] & 2)
        flagged = r['hdr_corrupt'] or r.get('corrupt_at_detach') or \
            r.get('corrupt_after_reads')
        r['flagged'] = bool(flagged)
        if flagged:
            return
        # qcowctl check (fast, C) sorts the images out; qemu-img check, the
        # independent one, has the last word on a suspected corruption (the
        # mutant checked clean, the image after our writes does not) and
        # checks a sample of the others too.
        frc, fres = self.fast_check(img)
        fpost = corrupt_count(frc, fres)
        r['post_fast'] = check_summary(frc, fres).replace('qemu-img', 'qcowctl')
        sampled = self.qemu_rate > 0 and r['seed'] % self.qemu_rate == 0
        if fpost == 0:
            self.compare_again(r, img, self.layers)
        if fpost == 0 and not sampled:
            return
        pre_path = os.path.join(self.dir, 'pre.qcow2')
        mutate.write_sparse(pre_path, data)
        try:
            if fpost != 0 and not sampled:
                prc, pres = self.fast_check(pre_path)
                fpre = corrupt_count(prc, pres)
                r['pre_fast'] = check_summary(prc, pres).replace('qemu-img', 'qcowctl')
                if fpre:
                    # A corrupt mutant stayed corrupt.
                    if fpost is None or fpost > fpre:
                        r['notes'].append('grew: %s before, %s after' %
                                          (r['pre_fast'], r['post_fast']))
                    return
            rc, res = qemu_check(img)
            r['post_check'] = check_summary(rc, res)
            post = corrupt_count(rc, res)
            if (post == 0) != (fpost == 0):
                r['notes'].append('checkers disagree on the image after our writes: %s; %s' %
                                  (r['post_fast'], r['post_check']))
            if post == 0:
                return
            prc, pres = qemu_check(pre_path)
        finally:
            os.unlink(pre_path)
        r['pre_check'] = check_summary(prc, pres)
        pre = corrupt_count(prc, pres)
        if pre == 0:
            r['fail'].append('corruption: the mutant checked clean, after our writes: %s' %
                             r['post_check'])
            r['corruption'] = True
        elif pre is None:
            r['notes'].append('qemu-img could not check the mutant; after our writes: %s' %
                              r['post_check'])
        elif post is None or post > pre:
            r['notes'].append('grew: %s before, %s after' % (r['pre_check'], r['post_check']))

    def keep(self, r, img, data, klog, kind='fail'):
        if not self.out:
            return
        d = os.path.join(self.out, '%s-%d' % (kind, r['seed']))
        os.makedirs(d, exist_ok=True)
        mutate.write_sparse(os.path.join(d, 'mutant.qcow2'), data)
        try:
            mutate.copy_sparse(img, os.path.join(d, 'after.qcow2'))
        except OSError:
            pass
        with open(os.path.join(d, 'kernel.log'), 'w') as f:
            f.write('\n'.join(klog) + '\n')
        with open(os.path.join(d, 'README'), 'w') as f:
            f.write('image %d of run seed %s: image seed %d, layout %s (%s)\n' %
                    (r['index'], self.a.seed, r['seed'], r['layout'],
                     self.bases.layouts[r['layout']]['opts']))
            f.write('re-make: tests/vm/mutate/mutate.py gen BASES %d OUT.qcow2\n' % r['seed'])
            f.write('re-run:  QCOW_MUTATE_SEEDS=%d tests/vm/run-tests.sh mutate\n' % r['seed'])
            f.write('mutations:\n' + ''.join('  %s\n' % x for x in r['mutations']))
            f.write('failures:\n' + ''.join('  %s\n' % x for x in r['fail']))
            f.write('notes:\n' + ''.join('  %s\n' % x for x in r['notes']))
            f.write(json.dumps(r, indent=1, sort_keys=True) + '\n')

    def run(self):
        a = self.a
        if a.seeds:
            todo = list(enumerate(int(s) for s in a.seeds.replace(',', ' ').split()))
        else:
            todo = [(j, mutate.image_seed(a.seed, j)) for j in range(a.first, a.first + a.count)]
        for j, seed in todo:
            if j % a.jobs != a.shard:
                continue
            if a.deadline and time.time() > a.deadline:
                print('mutate: worker %d stopped at the time budget before image %d' %
                      (a.shard, j))
                return
            try:
                self.one(j, seed)
            except Exception:   # a bug here: report it, clean up, go on
                tb = traceback.format_exc()
                print('mutate: FAIL image %d seed %d: runner error:\n%s' % (j, seed, tb))
                self.cleanup()
                r = {'index': j, 'seed': seed, 'layout': '?', 'mutations': [],
                     'fail': ['runner error: ' + tb.strip().split('\n')[-1]], 'notes': [],
                     'attach': 'refused', 'read_eio': 0, 'reads': 0, 'writes': 0,
                     'write_ok': 0, 'runner_error': True}
                self.res.write(json.dumps(r, sort_keys=True) + '\n')
                self.res.flush()

    def cleanup(self):
        """Detach whatever still has an image of this worker attached."""
        for d in os.listdir('/sys/block'):
            try:
                with open('/sys/block/%s/qcow/image' % d) as f:
                    path = f.read().strip()
            except OSError:
                continue
            if os.path.dirname(path).endswith('/w%d' % self.a.shard):
                self.ioctl_detach(int(d[len('qcow'):]))


def summary(files, batch):
    rs = []
    for p in files:
        with open(p) as f:
            rs += [json.loads(x) for x in f if x.strip()]
    rs.sort(key=lambda x: x['index'])
    nfail = 0
    batches = {}
    for r in rs:
        batches.setdefault(r['index'] // batch, []).append(r)
    for b in sorted(batches):
        bad = [r for r in batches[b] if r['fail']]
        lo, hi = b * batch, b * batch + batch - 1
        print('%s mutate/batch-%d (images %d-%d: %d tested, %d failed)' %
              ('FAIL' if bad else 'PASS', b, lo, hi, len(batches[b]), len(bad)))
        for r in bad:
            nfail += 1
            print('    image %d seed %d layout %s' % (r['index'], r['seed'], r['layout']))
            for x in r['mutations']:
                print('      mutation: ' + x)
            for x in r['fail']:
                print('      FAILED: ' + x)
    n = len(rs)
    refused = sum(r['attach'] == 'refused' for r in rs)
    eio = sum(r['attach'] != 'refused' and r['read_eio'] > 0 for r in rs)
    clean = n - refused - eio
    oops = sum(bool(r.get('oops')) for r in rs)
    corr = sum(bool(r.get('corruption')) for r in rs)
    other = nfail - oops - corr
    rw = sum(r['attach'] == 'rw' for r in rs)
    ro = sum(r['attach'] == 'ro' for r in rs)
    wr = sum(r['writes'] for r in rs)
    wok = sum(r['write_ok'] for r in rs)
    snap = sum(r.get('snapshot') == 'ok' for r in rs)
    flagged = sum(bool(r.get('flagged')) for r in rs)
    fast = sum('post_fast' in r for r in rs)
    cmpd = sum('qemu_compared' in r for r in rs)
    again = sum('compared_again' in r for r in rs)
    disc = [x for r in rs for x in r.get('discard', []) + r.get('zeroout', [])]
    checked = sum('post_check' in r for r in rs)
    grew = sum(any(x.startswith('grew') for x in r['notes']) for r in rs)
    ovl = sum(any(x.startswith('overlap in') for x in r['notes']) for r in rs)
    secs = sum(r.get('secs', 0) for r in rs)
    print('mutate: attached %d read-write, %d read-only; %d of %d writes succeeded; '
          '%d snapshots taken; %d marked corrupt; %d others checked after detach '
          '(qcowctl check; %d also by qemu-img check); corrupt mutants: %d got worse, '
          '%d got metadata or data over metadata; '
          '%d of %d discards/zeroouts succeeded; %d read again after detach; '
          'reads of %d compared with qemu-img convert; %.2f s per image' %
          (rw, ro, wok, wr, snap, flagged, fast, checked, grew, ovl, disc.count('ok'), len(disc),
           again, cmpd, secs / max(1, n)))
    per = {}
    for r in rs:
        k = per.setdefault(r['layout'], [0, 0, 0])
        k[0 if r['attach'] == 'refused' else 1 if r['read_eio'] else 2] += 1
    print('mutate: per layout (refused/eio/clean): ' +
          ', '.join('%s %d/%d/%d' % (k, *v) for k, v in sorted(per.items())))
    print('mutate: %d images: %d refused, %d with EIO, %d clean, %d oopses, %d corruptions%s' %
          (n, refused, eio, clean, oops, corr,
           ', %d other failures' % other if other else ''))
    return 1 if nfail else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run')
    r.add_argument('--bases', required=True)
    r.add_argument('--work', required=True)
    r.add_argument('--seed', type=int, default=1)
    r.add_argument('--first', type=int, default=0)
    r.add_argument('--count', type=int, default=300)
    r.add_argument('--jobs', type=int, default=1)
    r.add_argument('--shard', type=int, default=0)
    r.add_argument('--seeds', default='')
    r.add_argument('--results', required=True)
    r.add_argument('--out', default='')
    r.add_argument('--deadline', type=float, default=0,
                   help='start no image after this time (seconds since the epoch)')
    s = sub.add_parser('summary')
    s.add_argument('--batch', type=int, default=50)
    s.add_argument('files', nargs='+')
    a = p.parse_args()
    if a.cmd == 'summary':
        return summary(a.files, a.batch)
    Runner(a).run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
