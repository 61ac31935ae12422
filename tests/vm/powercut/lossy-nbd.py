#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A disk with a volatile write cache, served over NBD, for power cuts.

    lossy-nbd.py FILE SOCKET SEED [--report FILE]

Serves FILE (raw) on the unix socket SOCKET to one client (qemu's
virtio-blk scratch disk, see QCOW_VM_SCRATCH_NBD in tests/vm/run-vm.sh) and
behaves like a disk with a write-back cache that a power cut empties:

- a write is acknowledged at once but only held in memory, per 4 KiB block
  (a later write to the block replaces it, as in a real cache);
- FLUSH writes every held block to FILE; a write with FUA goes to FILE at
  once (its blocks only);
- reads see the held blocks;
- when the client goes away -- qemu killed by the power cut, or qemu
  exiting -- each block still held reaches FILE or is lost, independently,
  with a probability drawn from SEED (uniform in [0, 1], so some cuts keep
  everything, some lose everything), like a cache destaging in any order.

So a completed write the guest did not flush may be lost, and two such
writes may survive in either order: what a missing flush between dependent
writes looks like after a real power cut.  A 4 KiB block is the unit, so a
write that spans two blocks and was not flushed may be torn: on images with
clusters under 4 KiB a guest block is not one aligned host block, and the
workloads verify those per cluster (their init's atom=).

Prints one line on exit (and appends it to --report): how many blocks were
held at the cut, kept and dropped.  Protocol: NBD fixed newstyle,
NBD_OPT_GO/INFO/EXPORT_NAME, simple replies; READ, WRITE (+FUA), FLUSH,
DISC.
"""
import os
import random
import socket
import struct
import sys

BLK = 4096

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
CFLAG_NO_ZEROES = 2
TFLAGS = 1 | 4 | 8          # HAS_FLAGS | SEND_FLUSH | SEND_FUA

OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO = 1, 3
REP_ERR_UNSUP = (1 << 31) | 1
INFO_EXPORT = 0

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
CMD_FLAG_FUA = 1
EINVAL, ENOSPC = 22, 28


class Disk:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.held = {}  # block number -> bytearray(BLK)

    def _block(self, b):
        data = self.held.get(b)
        if data is None:
            data = bytearray(os.pread(self.fd, BLK, b * BLK).ljust(BLK, b'\0'))
        return data

    def read(self, off, length):
        if not self.held:
            return os.pread(self.fd, length, off)
        out = bytearray()
        end = off + length
        pos = off
        while pos < end:
            b = pos // BLK
            boff = pos - b * BLK
            n = min(BLK - boff, end - pos)
            data = self.held.get(b)
            if data is None:
                # a run of blocks nobody holds: one read
                run_end = pos + n
                while run_end < end and (run_end // BLK) not in self.held:
                    run_end = min((run_end // BLK + 1) * BLK, end)
                out += os.pread(self.fd, run_end - pos, pos)
                pos = run_end
                continue
            out += data[boff:boff + n]
            pos += n
        return bytes(out)

    def write(self, off, data, fua):
        end = off + len(data)
        pos = off
        touched = []
        while pos < end:
            b = pos // BLK
            boff = pos - b * BLK
            n = min(BLK - boff, end - pos)
            if boff == 0 and n == BLK:
                blk = bytearray(data[pos - off:pos - off + BLK])
            else:
                blk = self._block(b)
                blk[boff:boff + n] = data[pos - off:pos - off + n]
            self.held[b] = blk
            touched.append(b)
            pos += n
        if fua:
            for b in touched:
                self._store(b)

    def _store(self, b):
        data = self.held.pop(b)
        end = min(BLK, self.size - b * BLK)
        os.pwrite(self.fd, bytes(data[:end]), b * BLK)

    def flush(self):
        for b in sorted(self.held):
            self._store(b)

    def cut(self, rng):
        """The power goes: each held block reaches the file or not."""
        p = rng.random()
        held = sorted(self.held)
        kept = 0
        for b in held:
            if rng.random() < p:
                self._store(b)
                kept += 1
        self.held.clear()
        os.fsync(self.fd)
        return len(held), kept, p


def recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def opt_reply(conn, opt, rtype, data=b''):
    conn.sendall(struct.pack('>QIII', REPLY_MAGIC, opt, rtype, len(data)) + data)


def negotiate(conn, disk):
    """Fixed newstyle handshake; True once in transmission phase."""
    conn.sendall(struct.pack('>QQH', NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
    (cflags,) = struct.unpack('>I', recv_exact(conn, 4))
    while True:
        magic, opt, length = struct.unpack('>QII', recv_exact(conn, 16))
        if magic != IHAVEOPT:
            return False
        data = recv_exact(conn, length)
        if opt == OPT_EXPORT_NAME:
            msg = struct.pack('>QH', disk.size, TFLAGS)
            if not cflags & CFLAG_NO_ZEROES:
                msg += b'\0' * 124
            conn.sendall(msg)
            return True
        if opt in (OPT_INFO, OPT_GO):
            opt_reply(conn, opt, REP_INFO, struct.pack('>HQH', INFO_EXPORT, disk.size, TFLAGS))
            opt_reply(conn, opt, REP_ACK)
            if opt == OPT_GO:
                return True
        elif opt == OPT_ABORT:
            opt_reply(conn, opt, REP_ACK)
            return False
        else:
            opt_reply(conn, opt, REP_ERR_UNSUP)


def serve(conn, disk):
    """Transmission phase until the client disconnects or dies."""
    while True:
        try:
            hdr = recv_exact(conn, 28)
        except (EOFError, ConnectionError):
            return
        magic, flags, cmd, handle, off, length = struct.unpack('>IHHQQI', hdr)
        if magic != REQ_MAGIC:
            return
        err = 0
        payload = b''
        if cmd == CMD_WRITE:
            try:
                data = recv_exact(conn, length)
            except (EOFError, ConnectionError):
                return
            if off + length > disk.size:
                err = ENOSPC
            else:
                disk.write(off, data, flags & CMD_FLAG_FUA)
        elif cmd == CMD_READ:
            if off + length > disk.size:
                err = EINVAL
            else:
                payload = disk.read(off, length)
        elif cmd == CMD_FLUSH:
            disk.flush()
        elif cmd == CMD_DISC:
            return
        else:
            err = EINVAL
        try:
            conn.sendall(struct.pack('>IIQ', SIMPLE_REPLY, err, handle) + (payload if not err else b''))
        except (ConnectionError, OSError):
            return


def main():
    args = sys.argv[1:]
    report = None
    if '--report' in args:
        i = args.index('--report')
        report = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__.split('\n\n')[1])
    path, sock_path, seed = args
    disk = Disk(path)
    rng = random.Random(int(seed))
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    conn, _ = srv.accept()
    srv.close()
    os.unlink(sock_path)
    try:
        if negotiate(conn, disk):
            serve(conn, disk)
    except (EOFError, ConnectionError):
        pass
    finally:
        conn.close()
        held, kept, p = disk.cut(rng)
        line = f'lossy-nbd: at the cut {held} written blocks were not flushed: ' \
               f'{kept} kept, {held - kept} lost (p={p:.2f})'
        print(line, flush=True)
        if report:
            with open(report, 'a') as f:
                f.write(line + '\n')


if __name__ == '__main__':
    main()
