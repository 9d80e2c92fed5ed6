"""A fault-injecting relay for the dock link: a bad cable, a flaky USB hub, an undock.

    with Relay("/dev/pts/7", rate=0.05, seed=1) as r:   # the device's port (sim serve's PORT)
        host = serial.Serial(r.port, timeout=1)         # the host opens r.port instead
        ...
        print(r.stats)

The relay opens the device's port like a host would, and makes a new pty for the host;
``port`` is a stable path (a symlink to the current pty's slave). A background thread
forwards bytes both ways, cutting the stream into SPEC §7 frames (MAGIC, LEN, payload,
CRC; the CRC is not checked, bytes between frames pass as they are). Each frame, with
probability ``rate``, gets one fault picked from ``faults``:

  drop        the frame is lost
  corrupt     one byte after LEN (payload or CRC) is flipped: the receiver sees a bad CRC
  duplicate   the frame is sent twice
  truncate    only a prefix of the frame is sent
  stall       the line freezes: the frame (and what follows it in that direction) is
              held until 0.2-1 s after it arrived
  disconnect  the frame is lost and the host's pty is closed and made anew (the symlink
              is re-pointed): the host's port fails (read EOF / EIO) and it must open
              ``port`` again, as after an undock

Decisions come from one random.Random per direction, seeded from ``seed``: the same
traffic meets the same faults. ``stats`` counts frames, bytes and each injected fault;
``events`` lists (direction, frame number, fault).
"""
import collections
import errno
import os
import random
import select
import shutil
import tempfile
import termios
import threading
import time
import tty

MAGIC = b"\xc5\x1a"
FAULTS = ("drop", "corrupt", "duplicate", "truncate", "stall", "disconnect")
TO_HOST, TO_DEVICE = "to_host", "to_device"


def _raw_open(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIOFLUSH)
    except termios.error:
        pass
    return fd


class _Framer:
    """Cuts a byte stream into units: ("frame", bytes) for MAGIC LEN PAYLOAD CRC,
    ("raw", bytes) for anything else. A partial frame is held until it completes, or
    passed on raw when nothing arrives for `patience` seconds (a garbage LEN)."""

    def __init__(self, max_payload, patience=0.5):
        self.buf = bytearray()
        self.max_payload = max_payload
        self.patience = patience
        self.last = 0.0

    def feed(self, data, now):
        self.buf += data
        self.last = now

    def units(self, now):
        out = []
        buf = self.buf
        while buf:
            i = buf.find(MAGIC)
            if i < 0:
                keep = 1 if buf[-1] == MAGIC[0] else 0
                if len(buf) > keep:
                    out.append(("raw", bytes(buf[:len(buf) - keep])))
                    del buf[:len(buf) - keep]
                break
            if i:
                out.append(("raw", bytes(buf[:i])))
                del buf[:i]
            if len(buf) < 6:
                break
            n = int.from_bytes(buf[2:6], "big")
            if n > self.max_payload:
                out.append(("raw", bytes(buf[:1])))
                del buf[:1]
                continue
            if len(buf) < 10 + n:
                break
            out.append(("frame", bytes(buf[:10 + n])))
            del buf[:10 + n]
        if buf and now - self.last > self.patience:
            out.append(("raw", bytes(buf)))
            del buf[:]
        return out

    def deadline(self):
        return self.last + self.patience if self.buf else None

    def clear(self):
        del self.buf[:]


class _Out:
    """One direction's output queue, with a hold (stall) time."""

    def __init__(self):
        self.q = collections.deque()
        self.hold = 0.0

    def put(self, data):
        if data:
            self.q.append(memoryview(data))

    def clear(self):
        self.q.clear()

    def ready(self, now):
        return bool(self.q) and now >= self.hold

    def write(self, fd):
        """Write what the fd takes; returns bytes written. Raises OSError (not EAGAIN)."""
        n = 0
        while self.q:
            mv = self.q[0]
            try:
                k = os.write(fd, mv)
            except BlockingIOError:
                break
            n += k
            if k == len(mv):
                self.q.popleft()
            else:
                self.q[0] = mv[k:]
                break
        return n


class Relay:
    def __init__(self, device_port_path, rate=0.01, faults=FAULTS, seed=None, port=None,
                 directions=(TO_HOST, TO_DEVICE), max_payload=16 << 20,
                 stall=(0.2, 1.0)):
        for f in faults:
            if f not in FAULTS:
                raise ValueError("unknown fault %r (one of %s)" % (f, ", ".join(FAULTS)))
        self.device_path = device_port_path
        self.rate = float(rate)
        self.faults = tuple(faults)
        self.directions = tuple(directions)
        self.seed = seed
        self.stall = stall
        self._tmp = None
        if port is None:
            self._tmp = tempfile.mkdtemp(prefix="sealcam-relay-")
            port = os.path.join(self._tmp, "tty")
        self.port = port
        base = seed if seed is not None else random.randrange(1 << 30)
        self._rng = {TO_HOST: random.Random(base * 2), TO_DEVICE: random.Random(base * 2 + 1)}
        self._framer = {TO_HOST: _Framer(max_payload), TO_DEVICE: _Framer(max_payload)}
        self._out = {TO_HOST: _Out(), TO_DEVICE: _Out()}
        self.stats = {"frames_to_host": 0, "frames_to_device": 0, "bytes_to_host": 0,
                      "bytes_to_device": 0, "faults": 0, "host_opens": 0, "device_losses": 0}
        for f in FAULTS:
            self.stats[f] = 0
        self.events = []
        self._lock = threading.Lock()
        self._dev = None
        self._master = None
        self._host = False
        self._host_probe = 0.0
        self._dev_probe = 0.0
        self._stop = False
        self._thread = None
        self.error = None

    # ------------------------------------------------------------------ life cycle
    def start(self):
        self._dev = _raw_open(self.device_path)
        self._new_host_pty()
        self._thread = threading.Thread(target=self._run, name="sealcam-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread:
            self._thread.join(5)
            self._thread = None
        for fd in (self._dev, self._master):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._dev = self._master = None
        try:
            os.unlink(self.port)
        except OSError:
            pass
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def pending(self):
        """Bytes held in the relay (queued output, partial frames)."""
        return sum(len(m) for o in self._out.values() for m in list(o.q)) + \
            sum(len(f.buf) for f in self._framer.values())

    @property
    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ host side
    def _new_host_pty(self):
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        old, self._master = self._master, master
        self._host = False
        tmp = self.port + ".new"
        try:
            os.unlink(tmp)
        except OSError:
            pass
        os.symlink(name, tmp)
        os.replace(tmp, self.port)
        if old is not None:
            os.close(old)   # after the new one exists: the pts number is not reused at once

    def _disconnect(self):
        self._out[TO_HOST].clear()
        self._framer[TO_DEVICE].clear()
        self._new_host_pty()

    # ------------------------------------------------------------------ forwarding
    def _fault(self, direction):
        rng = self._rng[direction]
        if self.rate <= 0 or direction not in self.directions or not self.faults:
            return None
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.faults)

    def _frame(self, direction, frame, now):
        key = "frames_" + direction
        self.stats[key] += 1
        fault = self._fault(direction)
        out = self._out[direction]
        if fault is None:
            out.put(frame)
            return
        rng = self._rng[direction]
        with self._lock:
            self.stats[fault] += 1
            self.stats["faults"] += 1
            self.events.append((direction, self.stats[key], fault))
        if fault == "drop":
            return
        if fault == "corrupt":
            b = bytearray(frame)
            i = rng.randrange(6, len(b))
            b[i] ^= rng.randrange(1, 256)
            out.put(bytes(b))
        elif fault == "duplicate":
            out.put(frame)
            out.put(frame)
        elif fault == "truncate":
            out.put(frame[:rng.randrange(1, len(frame))])
        elif fault == "stall":
            out.hold = max(out.hold, now + rng.uniform(*self.stall))
            out.put(frame)
        elif fault == "disconnect":
            self._disconnect()

    def _take(self, direction, data, now):
        fr = self._framer[direction]
        if data:
            fr.feed(data, now)
        for kind, unit in fr.units(now):
            if kind == "frame":
                self._frame(direction, unit, now)
            else:
                self._out[direction].put(unit)

    def _read_host(self, now):
        try:
            data = os.read(self._master, 1 << 16)
        except BlockingIOError:
            self._host_up()
            return
        except OSError as e:
            if e.errno == errno.EIO:    # no host has the port open
                if self._host:
                    self._host = False
                    self._out[TO_HOST].clear()
                    self._framer[TO_DEVICE].clear()
                return
            raise
        self._host_up()
        if data:
            self._take(TO_DEVICE, data, now)

    def _host_up(self):
        if not self._host:
            self._host = True
            self.stats["host_opens"] += 1

    def _read_device(self, now):
        try:
            data = os.read(self._dev, 1 << 16)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if data:
            self._take(TO_HOST, data, now)
        else:          # the device's side of its pty closed (sim serve stopped)
            self._device_gone(now)

    def _device_gone(self, now):
        if self._dev is not None:
            os.close(self._dev)
            self._dev = None
            self.stats["device_losses"] += 1
        self._out[TO_DEVICE].clear()
        self._framer[TO_HOST].clear()
        self._dev_probe = now + 0.5

    def _reopen_device(self, now):
        self._dev_probe = now + 0.5
        try:
            self._dev = _raw_open(self.device_path)
        except OSError:
            self._dev = None

    def _run(self):
        try:
            self._loop()
        except Exception as e:   # pragma: no cover - reported through .error
            self.error = e

    def _loop(self):
        while not self._stop:
            now = time.monotonic()
            if not self._host and now >= self._host_probe:
                self._host_probe = now + 0.01
                self._read_host(now)
            if self._dev is None and now >= self._dev_probe:
                self._reopen_device(now)
            dev = self._dev
            r = ([dev] if dev is not None else []) + ([self._master] if self._host else [])
            w = []
            if dev is not None and self._out[TO_DEVICE].ready(now):
                w.append(dev)
            if self._host and self._out[TO_HOST].ready(now):
                w.append(self._master)
            timeout = 0.05
            for d in (TO_HOST, TO_DEVICE):
                dl = self._framer[d].deadline()
                if dl is not None:
                    timeout = min(timeout, max(0.0, dl - now + 0.001))
                o = self._out[d]
                if o.q and o.hold > now:
                    timeout = min(timeout, o.hold - now)
            if not self._host:
                timeout = min(timeout, 0.01)
            if dev is None:
                timeout = min(timeout, 0.1)
            try:
                rr, ww, _ = select.select(r, w, [], timeout)
            except InterruptedError:
                continue
            now = time.monotonic()
            if dev is not None and dev in rr:
                self._read_device(now)
            if self._master in rr:
                self._read_host(now)
            for d in (TO_HOST, TO_DEVICE):
                if self._framer[d].buf:
                    self._take(d, b"", now)   # a partial frame whose patience ran out
            if self._dev is None:
                self._out[TO_DEVICE].clear()
            elif self._out[TO_DEVICE].ready(now):
                try:
                    self.stats["bytes_to_device"] += self._out[TO_DEVICE].write(self._dev)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    self._device_gone(now)
            if self._host and self._out[TO_HOST].ready(now):
                try:
                    self.stats["bytes_to_host"] += self._out[TO_HOST].write(self._master)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    self._host = False
                    self._out[TO_HOST].clear()
            elif not self._host:
                self._out[TO_HOST].clear()   # nobody to deliver to (undocked)


def main(argv=None):
    """python -m sim.relay DEVICE_PORT [--rate R] [--faults a,b] [--seed N] [--port PATH]:
    prints "PORT <path>" (the stable path a host opens), relays until SIGTERM/SIGINT, then
    prints the fault counts (JSON) on stderr."""
    import argparse
    import json
    import signal
    import sys
    ap = argparse.ArgumentParser(prog="python -m sim.relay", description=__doc__.split("\n")[0])
    ap.add_argument("device_port", metavar="DEVICE_PORT", help="the device's port (sim serve's PORT)")
    ap.add_argument("--rate", type=float, default=0.01, help="fault probability per frame")
    ap.add_argument("--faults", default=",".join(FAULTS),
                    help="comma-separated faults (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--port", default=None, help="the stable path to make (default: a temp dir)")
    ap.add_argument("--directions", default="to_host,to_device")
    a = ap.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    faults = tuple(f for f in a.faults.split(",") if f)
    with Relay(a.device_port, a.rate, faults, a.seed, a.port,
               tuple(d for d in a.directions.split(",") if d)) as r:
        sys.stdout.write("PORT %s\n" % r.port)
        sys.stdout.flush()
        while not stop.wait(0.2) and r.alive:
            pass
        sys.stderr.write(json.dumps(r.stats) + "\n")
        if r.error:
            sys.stderr.write("relay failed: %r\n" % (r.error,))
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
