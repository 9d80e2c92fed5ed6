# Serial port of the virtual recorder (the dock link's USB CDC port, hal.serial).
#
# Interface the firmware uses:
#   read(n)    -> up to n bytes received, b"" when nothing (never blocks)
#   write(buf) -> len(buf); never blocks and never loses bytes: what the line cannot take
#                 now is queued and sent by later calls (pump())
# and the serve loop (sim/hal/simserve.py):
#   busy()     -> True while so much output is queued that the device should stop taking
#                 new requests (flow control)
#   pump()     -> push queued output now; returns True if bytes moved
#   rx, tx     -> byte counters (the serve loop sees activity from them)
#
# PtySerial: CPython; the master side of a pty whose slave is what the host opens. While no
#            host has the slave open, the master reads EIO: the port is "undocked", output
#            is dropped (a USB CDC port without a host drops it too) and reading returns b"".
# VMSerial:  the MicroPython WebAssembly VM; /dev/serial, a device the runner
#            (sim/mpvm/run.mjs --serial) backs with the Node process's stdin/stdout, so
#            bytes cross the VM boundary as whole buffers (no per-byte calls).
# Runs on MicroPython and CPython (each class on its runtime).
import os

EIO = 5
EAGAIN = 11
LIMIT = 1 << 20    # queued output above which busy() is True


class PtySerial:
    def __init__(self, fd, limit=LIMIT):
        self.fd = fd
        os.set_blocking(fd, False)
        self.limit = limit
        self._out = bytearray()
        self._pos = 0
        self.connected = False   # a host has the port open (as far as the last I/O showed)
        self.rx = 0
        self.tx = 0
        self.dropped = 0         # output dropped while no host had the port open
        self.connects = 0

    def _up(self):
        if not self.connected:
            self.connected = True
            self.connects += 1

    def _down(self):
        # the host closed the port: what was queued for it is gone with it
        self.connected = False
        self.dropped += len(self._out) - self._pos
        self._out = bytearray()
        self._pos = 0

    def read(self, n):
        if self._pos < len(self._out):
            self.pump()
        try:
            data = os.read(self.fd, n)
        except OSError as e:
            if e.errno == EAGAIN:
                self._up()
                return b""
            if e.errno == EIO:
                if self.connected:
                    self._down()
                return b""
            raise
        if data:
            self._up()
            self.rx += len(data)
        return data

    def write(self, buf):
        n = len(buf)
        if not self.connected:
            self.dropped += n
            return n
        self._out += buf
        self.pump()
        return n

    def pending(self):
        return len(self._out) - self._pos

    def busy(self):
        return self.pending() > self.limit

    def pump(self):
        moved = False
        while self._pos < len(self._out):
            try:
                k = os.write(self.fd, memoryview(self._out)[self._pos:self._pos + 65536])
            except OSError as e:
                if e.errno == EAGAIN:
                    break
                if e.errno == EIO:
                    self._down()
                    return moved
                raise
            self._pos += k
            self.tx += k
            moved = True
        if self._pos and self._pos == len(self._out):
            self._out = bytearray()
            self._pos = 0
        elif self._pos > 1 << 20:
            del self._out[:self._pos]
            self._pos = 0
        return moved


class VMSerial:
    def __init__(self, path="/dev/serial"):
        import jshal
        self._js = jshal
        self.f = open(path, "r+b")
        self.rx = 0
        self.tx = 0

    def read(self, n):
        data = self.f.read(n)
        if not data:
            return b""
        self.rx += len(data)
        return data

    def write(self, buf):
        n = len(buf)
        self.f.write(buf)
        self.tx += n
        return n

    def pending(self):
        return self._js.serial_pending()

    def busy(self):
        return self._js.serial_busy()

    def pump(self):
        return False
