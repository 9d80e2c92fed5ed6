# The virtual recorder in the dock: boots the real firmware on the simulated board (with
# recovery as usual), optionally records a scripted shift as fast as possible (simulated
# time), then serves the dock link (firmware/sealcamfw/link.py) in real time until told to stop.
# Shared by both runtimes: sim/serve.py drives it on CPython (serve_blocking), and
# simservemain.py on the MicroPython VM (serve_async, under the runner's asyncio).
#
# A job is a dict: sd, flash (store and internal flash roots), device, model, capacity,
# drift_ppm, rtc_ms (RTC at mono 0), record (seconds to record first), settings, bitrate,
# fps, seed, officer, battery (percent at boot), max_frame (the device's offer), card_dir
# (the store's folder on the host: given, the recorder offers its card as a read-only disk,
# SPEC §8.8, and that folder stands in for the mounted volume), and for the VM sync_ms
# (mirror period). Runs on MicroPython and CPython.
import binascii
import gc
import time

from sealcamfw import device
from sealcamfw import ed25519
from sim.hal import simdevice
from sealcamfw import store as st
from sealcamfw import workflow
from sim.hal.simclock import SimClock

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    _ticks_ms = None

DEVICE = "SC-SIM0001"


def now_ms():
    if _ticks_ms:
        return _ticks_ms()
    return int(time.monotonic() * 1000)


def since_ms(t0):
    if _ticks_ms:
        return _ticks_diff(_ticks_ms(), t0)
    return int(time.monotonic() * 1000) - t0


MAX_FRAME = 1048576   # the virtual recorder offers more than a board (SPEC §7)


def make_link(h, s, rec, max_frame=None, wf=None):
    """firmware/sealcamfw/link.py's Link on this HAL, offering max_frame (default MAX_FRAME)."""
    from sealcamfw import link
    h.max_frame = max_frame or MAX_FRAME
    return link.Link(h, s, rec, max_frame=h.max_frame, workflow=wf)


class CardDir:
    """hal.msc of the virtual recorder (SPEC §8.8): a real board brings up USB mass storage
    on EXPOSE; here the card's folder on the host stands in for the mounted volume. On the
    VM the card lives in the VM's memory and is mirrored to that folder: expose() mirrors
    it first (nothing changes it while exposed: the store writes nothing then)."""

    def __init__(self, path, sync=None):
        self.path = path
        self.sync = sync
        self.up = False

    def expose(self):
        if self.sync is not None:
            self.sync()
        self.up = True
        return "dir", self.path

    def hide(self):
        self.up = False


class Server:
    def __init__(self, job, serial):
        self.job = job
        self.serial = serial
        self.clock = SimClock(job.get("rtc_ms") or 1795000000000, job.get("drift_ppm") or 0)
        self.h = simdevice.make_hal(job["sd"], job["flash"], job.get("device") or DEVICE,
                                    job.get("model") or "littlefs", None, job.get("capacity"),
                                    job.get("bitrate") or 2000000, job.get("fps") or 10,
                                    job.get("seed"), clock=self.clock, officer=job.get("officer"),
                                    serial=serial, battery=job.get("battery", 87))
        self.s = None
        self.rec = None
        self.lnk = None
        self.wf = None
        self.full = None         # why recording stopped early (storage full)
        self.ticks = 0
        self.service_ms = 0      # time spent in busy lnk.service() calls
        self._was_up = False
        self._next_tick = 0
        self._tick = 100

    def boot(self):
        self.s, self.rec = device.boot(self.h, self.job.get("settings"), self.job.get("officer"))
        self._tick = self.rec.cfg["tick_ms"]
        pub = binascii.hexlify(ed25519.public(self.s.sk)).decode()
        with open(self.job["flash"] + "/device.pub", "w") as f:
            f.write(pub + "\n")
        self.pubkey = pub

    def record(self, seconds=None):
        """A generator: record `seconds` of a shift in simulated time, one tick per yield."""
        if seconds is None:
            seconds = self.job.get("record") or 0
        if seconds <= 0:
            return
        self.rec.start("button")
        try:
            for _ in self.rec.ticks(int(seconds * 1000)):
                yield
        except st.StoreFull as e:
            self.full = str(e)     # the card is full: recording stops, the link serves on
            try:
                self.rec.stop("storage full")
            except st.StoreFull:
                pass
            return
        self.rec.stop("button")

    def go_live(self):
        """Real time from here on; the dock link starts."""
        self.clock.go_realtime()
        # the officer workflow runs the capture loop while docked (STATUS reports its state);
        # no pre-record at the dock
        self.rec.cfg["prerecord_s"] = 0
        self.wf = workflow.Workflow(self.h, self.s, self.rec, self.rec.cfg)
        if self.job.get("card_dir"):
            self.h.msc = CardDir(self.job["card_dir"], getattr(self, "sync", None))
        self.lnk = make_link(self.h, self.s, self.rec, self.job.get("max_frame"), self.wf)
        self._next_tick = self.clock.mono_ms() + self._tick

    def info(self):
        return {"device": self.h.device, "pubkey": self.pubkey, "records": self.s.seq,
                "boot": self.s.boot, "recovered": self.s.recovered, "full": self.full}

    def stats(self):
        """What the link did: bytes in/out, time spent answering."""
        out = {"records": self.s.seq if self.s else None, "rx": self.serial.rx,
               "tx": self.serial.tx, "service_ms": self.service_ms}
        if self.lnk is not None:
            out.update(self.lnk.stats)
        return out

    def step(self):
        """One pass of the device loop: the link, and the capture tick when it is due.
        Returns True if bytes moved (the caller idles briefly otherwise)."""
        ser = self.serial
        before = ser.rx + ser.tx
        moved = ser.pump()
        up = getattr(ser, "connected", True)
        if self._was_up and not up:
            self.lnk.end_session()   # undocked: the next host must HELLO and AUTH again
        self._was_up = up
        busy = False
        if not ser.busy():   # flow control: no new requests while output is backed up
            t0 = now_ms()
            busy = self.lnk.service()
            if busy:
                self.service_ms += since_ms(t0)
        now = self.clock.mono_ms()
        if now >= self._next_tick:
            self.wf.tick()
            self.ticks += 1
            self._next_tick = now + self._tick
        return busy or moved or ser.rx + ser.tx != before

    def shutdown(self):
        if self.s is not None:
            try:
                device.shutdown(self.s, self.rec)
            except st.StoreFull:
                self.s.close()     # the segment stays open: the next boot seals it
            self.s = None


def serve_blocking(srv, stop, idle):
    """CPython: serve until stop() is true; idle(seconds) waits for input when nothing
    moved (say, select on the port)."""
    while not stop():
        if not srv.step():
            idle(0.002)


def _stop_js(js):
    try:
        return js.serial_stopping()
    except Exception:
        return False


async def serve_async(srv, js, log=print):
    """MicroPython VM: boot, record, serve until the runner says stop (stdin closed,
    SIGTERM), mirroring the filesystem to the host every sync_ms. `js` is jshal."""
    import asyncio
    job = srv.job
    sync_ms = job.get("sync_ms") or 3000
    srv.sync = js.sync       # the card mirrored to the host before it is exposed (CardDir)
    srv.boot()
    n = 0
    for _ in srv.record():
        n += 1
        if n % 5 == 0:
            gc.collect()
            await asyncio.sleep_ms(0)
            if _stop_js(js):
                break
    srv.go_live()
    js.sync()
    log("SERVE-READY " + _json(srv.info()))
    last_sync = now_ms()
    next_io = getattr(js, "next_io", None)
    idle = 0
    busy = 0
    while not _stop_js(js):
        if srv.step():
            idle = 0
            busy += 1
            if busy % 256 == 0:
                gc.collect()
            if next_io:
                await next_io()      # let stdin data in (Node's I/O poll), ~0.05 ms
            else:
                await asyncio.sleep_ms(0)
        else:
            idle += 1
            if idle % 64 == 0:
                gc.collect()
            if next_io and idle < 2000:
                await next_io()      # a host mid-transfer: poll the line again at once
            else:
                await asyncio.sleep_ms(1)
        if since_ms(last_sync) >= sync_ms:
            js.sync()
            last_sync = now_ms()
    stats = srv.stats()
    srv.shutdown()
    js.sync()
    log("SERVE-STOPPED " + _json(stats))


async def raw_copy_async(serial, js, mb, log=print):
    """Benchmark source: after the host sends a byte, write mb MiB of raw bytes through
    the serial port as fast as it takes them, then idle until stopped."""
    import asyncio
    log("SERVE-READY {}")
    while not serial.read(64):
        if _stop_js(js):
            return
        await asyncio.sleep_ms(1)
    chunk = bytes(range(256)) * 256
    left = mb * (1 << 20)
    next_io = getattr(js, "next_io", None)
    while left > 0 and not _stop_js(js):
        if serial.busy():
            await asyncio.sleep_ms(1)
            continue
        k = min(left, len(chunk))
        serial.write(chunk if k == len(chunk) else chunk[:k])
        left -= k
        if next_io:
            await next_io()
        else:
            await asyncio.sleep_ms(0)
    while not _stop_js(js):
        await asyncio.sleep_ms(5)


def raw_copy_blocking(serial, mb, stop, idle):
    while not stop():
        if serial.read(64):
            break
        idle(0.002)
    chunk = bytes(range(256)) * 256
    left = mb * (1 << 20)
    while left > 0 and not stop():
        if serial.busy():
            idle(0.01)
            serial.pump()
            continue
        k = min(left, len(chunk))
        serial.write(chunk if k == len(chunk) else chunk[:k])
        left -= k
    while not stop():
        serial.pump()
        idle(0.005)


def _json(obj):
    try:
        import json
        return json.dumps(obj)
    except Exception:
        return str(obj)
