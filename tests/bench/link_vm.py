# Dock-link READ throughput on the device side: frames produced by link.Link.service() for
# a window of READ requests, next to a raw copy of the same bytes (file read + serial write,
# no framing) on the same runtime. The serial port is a sink that counts bytes, so only the
# device's work is timed.
# Runs on the MicroPython VM (node sim/mpvm/run.mjs --lib firmware/sealcamfw=sealcamfw
# --lib sim/hal=sim/hal --lib tests/firmware tests/bench/link_vm.py) and on CPython
# (PYTHONPATH=tests/firmware python tests/bench/link_vm.py). Prints "BENCH <name> <value>".
import asyncio
import gc
import time

try:
    _ticks_us, _ticks_diff = time.ticks_us, time.ticks_diff
except AttributeError:                     # CPython
    def _ticks_us():
        return int(time.perf_counter() * 1000000)

    def _ticks_diff(a, b):
        return a - b

import fwtest    # tests/firmware/ (/lib on the VM)
from sealcamfw import cbor
from sealcamfw import device
from sealcamfw import frame
from sealcamfw import link

MEDIA = 8 << 20
CHUNK = 65536


class Sink:
    def __init__(self):
        self.rx = bytearray()
        self.n = 0

    def read(self, n):
        d = bytes(self.rx[:n])
        self.rx[0:len(d)] = b""
        return d

    def write(self, buf):
        self.n += len(buf)
        return len(buf)


class Station:
    def seed(self):
        return bytes(range(32))


def setup():
    h, sd, flash = fwtest.sim()
    s, rec = device.boot(h, {"chunk": CHUNK})
    seg = s.start_segment("bench", "video/x-matroska", "mkv")
    block = bytes(range(256)) * 256
    for i in range(MEDIA // len(block)):
        s.write(block)
    s.close_segment()
    from sealcamfw import ed25519
    sk = ed25519.secret(bytes(range(32)))
    link.add_trusted(h.flash, ed25519.public(sk))
    h.serial = Sink()
    return h, s, rec, seg, sk


def session(h, s, rec, sk, offer, host_max):
    lnk = link.Link(h, s, rec, max_frame=offer)
    ser = h.serial
    sn = bytes(16)
    ser.rx += frame.encode(cbor.dumps({0: 1, 1: link.HELLO, 2: {1: host_max, 2: "bench",
                                                               3: sn}}))
    out = bytearray()
    w = ser.write
    ser.write = lambda b: out.extend(b) or len(b)
    while lnk.service():
        pass
    d = frame.Decoder(1 << 20)
    d.feed(bytes(out))
    hello = cbor.loads(d.next())[2]
    from sealcamfw import ed25519
    from sealcamfw import auth
    th = auth.transcript(hello[1], hello[9], sn, ed25519.public(sk))
    sig = ed25519.sign(sk, auth.station_message(th))
    out[:] = b""
    ser.rx += frame.encode(cbor.dumps({0: 2, 1: link.AUTH, 2: {1: ed25519.public(sk), 2: sig}}))
    while lnk.service():
        pass
    d.feed(bytes(out))
    assert cbor.loads(d.next())[1] == 0
    ser.write = w
    return lnk, hello[10]


def link_run(lnk, h, seg, per_read, window=8):
    # READ every byte of the segment in per_read pieces, window requests in flight
    ser = h.serial
    reqs = []
    pos = 0
    rid = 10
    while pos < MEDIA:
        reqs.append(frame.encode(cbor.dumps({0: rid, 1: link.READ,
                                             2: {1: seg, 2: pos // CHUNK, 3: pos % CHUNK,
                                                 4: per_read}})))
        pos += per_read
        rid += 1
    ser.n = 0
    t = _ticks_us()
    i = 0
    while i < len(reqs) or ser.rx:
        while i < len(reqs) and len(ser.rx) < 40 * window:
            ser.rx += reqs[i]
            i += 1
        lnk.service()
    us = _ticks_diff(_ticks_us(), t)
    return ser.n, us


def raw_run(h, s, seg, per_read):
    ser = h.serial
    fs = s.fs
    path = s.segment_files(seg)[0]
    ser.n = 0
    t = _ticks_us()
    pos = 0
    while pos < MEDIA:
        ser.write(fs.read(path, pos, per_read))
        pos += per_read
    return ser.n, _ticks_diff(_ticks_us(), t)


async def _idle():
    # let the VM's garbage collector run (it only does when control returns to JS)
    gc.collect()
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(1)
    else:
        await asyncio.sleep(0.001)


async def main():
    h, s, rec, seg, sk = setup()
    for offer in (65536, 1 << 20):
        lnk, agreed = session(h, s, rec, sk, offer, 1 << 20)
        per = agreed - 32
        best_link = best_raw = 0
        for _ in range(3):
            await _idle()
            n, us = raw_run(h, s, seg, per)
            best_raw = max(best_raw, n / us)
            await _idle()
            n, us = link_run(lnk, h, seg, per)
            best_link = max(best_link, n / us)
        print("BENCH read_frames_MBps_%d %.1f" % (agreed, best_link))
        print("BENCH raw_copy_MBps_%d %.1f" % (agreed, best_raw))
        print("BENCH ratio_%d %.3f" % (agreed, best_link / best_raw))


if hasattr(asyncio, "run"):
    asyncio.run(main())
else:
    # MicroPython WebAssembly VM: no asyncio.run; the task runs on Node's event loop
    # after this script returns (the runner keeps Node alive until it is done)
    asyncio.create_task(main())
