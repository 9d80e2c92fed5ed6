# FAKE of MicroPython's `machine` module, for tests/test_board_port.py: no board runs
# here, so the board port (firmware/boards/esp32s3_cam) is wired to this instead. It is
# NOT a simulation of an ESP32-S3: it keeps the calls and arguments the port makes, gives
# plausible data back, and lets the test act as the hardware (press a button, fire the
# timers and I2S callbacks). Runs on CPython and on the MicroPython WebAssembly VM.
#
# What it stands for, and what the test can do with it (names with "drive"/"run" and the
# module-level registries exist only in this fake):
#   Pin       levels, pulls, irq(handler, trigger); pins[id] is the last Pin made on an id;
#             Pin.drive(level) sets an input's level and runs its handler on a matching
#             edge at once (as a soft IRQ would soon after)
#   I2S       RX: readinto(buf) fills buf with 32-bit (or 16-bit) slots whose top 16 bits are
#             a sawtooth (SAW_STEP a sample, starting at -32000, wrapping below 32000) and
#             whose low bytes are 0x5A noise, continuing across reads and re-opens.
#             opened[id] / read_total[id]: instances made, bytes read, on each id.
#             TX: write() after irq() is non-blocking: the bytes are counted and the
#             callback waits for run_irqs(). i2s[id] is the last I2S made on an id.
#   SDCard    a card in a host folder: the object is a MicroPython VFS (mount, open,
#             ilistdir, stat, ...) over SDCard.backing, so vfs.mount(card, "/sd") mounts
#             the folder at /sd (on CPython, see vfs.py). SDCard.present = False: no card.
#   RTC       datetime() as on esp32 (subseconds in µs), kept as an offset to time.time()
#   Timer     init(period, mode, callback) / deinit(); callbacks fire in run_irqs()
#   ADC       read_uv() -> ADC.uv (settable)
#   unique_id(), reset_cause() and the reset constants (esp32's values)
# run_irqs() fires the timers that are due and the I2S callbacks that wait.
import os
import time

IRQ_WAKE = 0
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
_cause = PWRON_RESET


def reset_cause():
    return _cause


def unique_id():
    return b"\x24\x6f\x28\x5e\xa1\x07"


def _ms():
    return int(time.time() * 1000)


# ------------------------------------------------------------------ Pin
pins = {}


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.level = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self.level = 1 if value else 0
        self.handler = None
        self.trigger = 0
        self.history = []           # levels written by the firmware (outputs)
        pins[id] = self

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        self.history.append(self.level)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3):
        self.handler = handler
        self.trigger = trigger

    def drive(self, level):
        """(fake only) The outside world sets this input's level."""
        old = self.level
        self.level = 1 if level else 0
        if self.handler is None or old == self.level:
            return
        if self.trigger & (Pin.IRQ_RISING if self.level else Pin.IRQ_FALLING):
            self.handler(self)


# ------------------------------------------------------------------ I2S
i2s = {}
opened = {}             # id -> I2S objects made on it
read_total = {}         # id -> bytes read on it, across instances
SAW_STEP = 400
_saw = [0]              # the microphone's sample counter, across instances


_PERIOD = 64000 // SAW_STEP      # samples in one tooth
_tables = {}


def _slots(bits, k0, n):
    # n slots of the sawtooth from sample k0: top 16 bits the sample, low bytes 0x5A
    # (one tooth is built once per slot width; a read is a slice of it repeated)
    t = _tables.get(bits)
    if t is None:
        out = bytearray()
        for k in range(_PERIOD):
            v = (-32000 + k * SAW_STEP) & 0xFFFF
            out += bytes((0x5A, 0x5A, v & 0xFF, v >> 8)) if bits == 32 else bytes((v & 0xFF, v >> 8))
        t = _tables[bits] = bytes(out)
    size = bits // 8
    ph = k0 % _PERIOD
    big = t * ((ph + n) // _PERIOD + 1)
    return big[ph * size:(ph + n) * size]


class I2S:
    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    def __init__(self, id, sck=None, ws=None, sd=None, mode=0, bits=16, format=0, rate=16000,
                 ibuf=20000):
        self.id = id
        self.kw = {"sck": sck, "ws": ws, "sd": sd, "mode": mode, "bits": bits, "format": format,
                   "rate": rate, "ibuf": ibuf}
        self.mode = mode
        self.bits = bits
        self.open = True
        self.read_bytes = 0
        self.written = 0
        self.writes = 0
        self.cb = None
        self.waiting = False
        i2s[id] = self
        opened[id] = opened.get(id, 0) + 1

    def readinto(self, buf):
        if not self.open:
            raise OSError(9, "I2S deinitialised")
        size = self.bits // 8
        n = len(buf) // size
        mv = memoryview(buf)
        mv[:n * size] = _slots(self.bits, _saw[0], n)
        _saw[0] += n
        self.read_bytes += n * size
        read_total[self.id] = read_total.get(self.id, 0) + n * size
        return n * size

    def irq(self, handler):
        self.cb = handler

    def write(self, buf):
        if not self.open:
            raise OSError(9, "I2S deinitialised")
        self.written += len(buf)
        self.writes += 1
        if self.cb is not None:
            self.waiting = True     # non-blocking: the callback comes from run_irqs()
        return len(buf)

    def deinit(self):
        self.open = False


# ------------------------------------------------------------------ SDCard
class SDCard:
    backing = None          # (fake only) the host folder holding the card's files
    present = True
    made = []               # the arguments of every SDCard made

    def __init__(self, slot=1, width=1, **kw):
        if not SDCard.present or SDCard.backing is None:
            raise OSError(116, "no card")   # ETIMEDOUT, as esp32 reports an empty slot
        made = {"slot": slot, "width": width}
        for k in kw:            # pins as their numbers
            v = kw[k]
            made[k] = v.id if isinstance(v, Pin) else \
                [p.id for p in v] if isinstance(v, (list, tuple)) else v
        SDCard.made.append(made)
        self.root = SDCard.backing.rstrip("/")
        self.mounted = 0

    def _p(self, path):
        return self.root + ("" if path.startswith("/") else "/") + path

    # the VFS protocol (os.mount / vfs.mount of a Python object)
    def mount(self, readonly, mkfs):
        self.mounted += 1

    def umount(self):
        self.mounted -= 1

    def open(self, path, mode):
        return open(self._p(path), mode)

    def ilistdir(self, path):
        return os.ilistdir(self._p(path))

    def stat(self, path):
        return os.stat(self._p(path))

    def statvfs(self, path):
        return os.statvfs(self._p(path))

    def mkdir(self, path):
        os.mkdir(self._p(path))

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def remove(self, path):
        os.remove(self._p(path))

    def rename(self, a, b):
        os.rename(self._p(a), self._p(b))

    def chdir(self, path):
        pass

    def getcwd(self):
        return "/"


# ------------------------------------------------------------------ RTC, Timer, ADC
class RTC:
    _offset = 0             # ms, shared: the RTC is one clock however often it is made

    def datetime(self, t=None):
        if t is None:
            ms = _ms() + RTC._offset
            g = time.gmtime(ms // 1000)
            return (g[0], g[1], g[2], g[6], g[3], g[4], g[5], (ms % 1000) * 1000)
        y, m, d, wd, hh, mm, ss, us = t
        days = _days(y, m, d)
        ms = ((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000) + us // 1000
        RTC._offset = ms - _ms()


def _days(y, m, d):
    # days since 1970-01-01 by counting (the fake's own arithmetic, not the port's)
    n = 0
    for yy in range(1970, y):
        n += 366 if (yy % 4 == 0 and yy % 100 != 0) or yy % 400 == 0 else 365
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    for mm in range(1, m):
        n += (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[mm - 1]
    return n + d - 1


timers = {}


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id):
        self.id = id
        self.cb = None
        self.due = None
        self.fired = 0
        timers[id] = self

    def init(self, mode=1, period=-1, callback=None, freq=-1):
        self.mode = mode
        self.period = period
        self.cb = callback
        self.due = _ms() + period

    def deinit(self):
        self.due = None


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3
    uv = 1950000            # (fake only) what read_uv() gives: 3.9 V through a 1:2 divider

    def __init__(self, pin, atten=0):
        self.pin = pin
        self.atten = atten

    def read_uv(self):
        return ADC.uv


def run_irqs():
    """(fake only) Run what the hardware would have called back by now: timers that are
    due, and I2S transmit callbacks waiting for their buffer to be taken."""
    now = _ms()
    for t in list(timers.values()):
        if t.due is not None and now >= t.due and t.cb is not None:
            t.due = now + t.period if t.mode == Timer.PERIODIC else None
            t.fired += 1
            t.cb(t)
    for dev in list(i2s.values()):
        if dev.waiting and dev.cb is not None:
            dev.waiting = False
            dev.cb(dev)
