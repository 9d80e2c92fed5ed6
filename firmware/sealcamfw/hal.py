# Hardware abstraction: the only module that knows what board it runs on.
#
# A HAL is a plain object with these attributes (the simulator builds one from sim/hal/):
#   clock   rtc_ms() -> int; mono_ms() -> int; sleep_ms(ms); set_rtc(ms)
#   random  random(n) -> n bytes from the hardware random source
#   sd      the evidence store medium (SD card): see PosixFS below for the interface
#   flash   the internal flash (device key, settings); same interface
#   camera  start(); poll() -> list of JPEG frames (bytes) due since the last poll; fps;
#           WIDTH, HEIGHT (pixels); optionally stamps (after poll: the mono ms each frame
#           was captured at, else the poll's time is used) and officer (the id it burns
#           into the picture: the capture loop sets it to the store's assigned officer)
#   mic     the microphone, or None (no microphone: segments then have no audio track and
#           REC_START's mime says "audio=none", SPEC §4.3): start() starts capture;
#           readinto(buf) -> bytes of 16 kHz mono s16le samples captured since the last
#           call (at most len(buf), even, never waits). See BoardMic.
#   device  device id (text, set at manufacture)
#   reset_cause  text, e.g. "power-on"
#   serial  the dock link (SPEC §7), optional: read(n) -> up to n bytes that have arrived,
#           b"" when none (never waits); write(buf) sends all of buf; optionally busy() ->
#           True while output is backed up (the link then takes no new request);
#           optionally connected, a bool or a method returning one: False once the host
#           has gone (USB unplugged, DTR dropped), which ends the link's session (SPEC
#           §8.3). See BoardSerial: a port that cannot tell relies on session_idle_ms.
#   battery optional: battery() -> charge in percent (HELLO reports 100 without it)
#
# Storage interface (both `sd` and `flash`):
#   open_append(path) -> file with write(buf), flush(), close()   (creates if missing)
#   create(path) -> file   (a new scratch file; only the head uses it)
#   replace(src, dst)      (atomic on littlefs; remove-then-rename on FAT)
#   read(path, offset=0, n=-1) -> bytes; size(path) -> int (-1 if missing)
#   readinto(path, offset, buf) -> bytes read into buf (optional; boot uses it if present)
#   exists(path); listdir(path) -> sorted names; mkdir(path); free() -> bytes free
#   release(path)          removes a file: only Store.release_covered calls it, for media a
#                          custody receipt covers, after writing a RELEASE record (SPEC §10.8)
# There is no other delete and no truncate: evidence is append-only (SPEC §5.3).
#
# Officer inputs and feedback (SPEC §10.1), optional (a HAL without them records on start):
#   buttons poll() -> list of (button, down, mono_ms) edges since the last poll; buttons are
#           "record", "mark", "voice", "notice"
#   ui      led(colour) ("off", "green", "red", "amber", "amber-blink"); vibrate(ms);
#           beep(n); show(text) on the display; say(phrase) plays a stored phrase
#   temperature optional: temperature() -> deg C
import os
import struct
import time

_ticks_ms = getattr(time, "ticks_ms", None)      # MicroPython; None on CPython
_ticks_diff = getattr(time, "ticks_diff", None)
_TICKS_MASK = 0x3FFFFFFF                          # MicroPython's ticks period is 2**30


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def ticks_ms():
    """A raw millisecond tick (wraps at 2**30), cheap and safe in an interrupt handler:
    time.ticks_ms() on MicroPython, the monotonic clock on CPython."""
    if _ticks_ms:
        return _ticks_ms()
    return int(time.monotonic() * 1000) & _TICKS_MASK


def ticks_diff(a, b):
    """a - b of two ticks_ms() values, wrap-safe (time.ticks_diff on MicroPython)."""
    if _ticks_diff:
        return _ticks_diff(a, b)
    d = (a - b) & _TICKS_MASK
    return d - (_TICKS_MASK + 1) if d > (_TICKS_MASK >> 1) else d


def _days(y, m, d):
    # days since 1970-01-01 of a civil date (proleptic Gregorian), integer arithmetic only
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil(days):
    # (year, month, day) of days since 1970-01-01
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


class BoardClock:
    """Monotonic ms from ticks_ms() (wrap-safe; time.monotonic on CPython); the RTC (UTC ms)
    from a machine.RTC when one is given, else time.time() plus an offset kept in RAM.

    With rtc (machine.RTC()): rtc_ms() reads rtc.datetime() (year, month, day, weekday,
    hours, minutes, seconds, subseconds in µs as on esp32) and set_rtc() writes it, so the
    setting lives in the RTC and survives a reset (and a power cut, on a board whose RTC has
    its own supply). Dates are converted with integer arithmetic of our own, so the port's
    time epoch (1970 or 2000) does not matter."""

    def __init__(self, rtc=None):
        self._offset = 0
        self.rtc = rtc
        self._t0 = ticks_ms()
        self._mono = 0

    def mono_ms(self):
        # ticks_ms() summed up (wrap-safe as long as it is read once every few days, which
        # every tick of the firmware does), so mono_of() of an interrupt's ticks is exact
        now = ticks_ms()
        self._mono += ticks_diff(now, self._t0)
        self._t0 = now
        return self._mono

    def mono_of(self, ticks):
        """The mono_ms() of a ticks_ms() value taken a little earlier (an interrupt's)."""
        return self.mono_ms() - ticks_diff(ticks_ms(), ticks)

    def rtc_ms(self):
        if self.rtc is not None:
            t = self.rtc.datetime()
            return ((_days(t[0], t[1], t[2]) * 86400 + t[4] * 3600 + t[5] * 60 + t[6]) * 1000
                    + t[7] // 1000)
        return int(time.time() * 1000) + self._offset

    def set_rtc(self, ms):
        if self.rtc is not None:
            s = ms // 1000
            days = s // 86400
            y, m, d = _civil(days)
            rem = s - days * 86400
            # weekday: 0 Monday (1970-01-01 was a Thursday)
            self.rtc.datetime((y, m, d, (days + 3) % 7, rem // 3600, rem // 60 % 60, rem % 60,
                               (ms % 1000) * 1000))
            return
        self._offset = ms - int(time.time() * 1000)

    def sleep_ms(self, ms):
        time.sleep(ms / 1000)


def board_random(n):
    try:
        return os.urandom(n)
    except AttributeError:
        import jshal  # the WebAssembly VM: crypto.getRandomValues through the runner
        return bytes(jshal.random(n))


class _PosixFile:
    def __init__(self, path):
        self.f = open(path, "ab")

    def write(self, buf):
        return self.f.write(buf)

    def flush(self):
        self.f.flush()
        if hasattr(os, "fsync"):
            os.fsync(self.f.fileno())

    def close(self):
        self.f.close()


class PosixFS:
    """The storage interface on a real filesystem (a board's VFS, or a host folder)."""

    def __init__(self, root):
        self.root = root.rstrip("/")

    def _p(self, path):
        return self.root + "/" + path

    def open_append(self, path):
        return _PosixFile(self._p(path))

    def create(self, path):
        p = self._p(path)
        if _exists(p):
            os.remove(p)  # scratch file only (head.new); never evidence
        return _PosixFile(p)

    def replace(self, src, dst):
        os.rename(self._p(src), self._p(dst))

    def read(self, path, offset=0, n=-1):
        with open(self._p(path), "rb") as f:
            if offset:
                f.seek(offset)
            return f.read() if n < 0 else f.read(n)

    def readinto(self, path, offset, buf):
        """Read into buf (a bytearray or memoryview) from offset: the bytes read, 0 at the
        end. Optional in a HAL: boot scans logs through it into one buffer when present."""
        with open(self._p(path), "rb") as f:
            if offset:
                f.seek(offset)
            return f.readinto(buf) or 0

    def size(self, path):
        try:
            return os.stat(self._p(path))[6]
        except OSError:
            return -1

    def exists(self, path):
        return _exists(self._p(path))

    def listdir(self, path=""):
        try:
            return sorted(os.listdir(self._p(path) if path else self.root))
        except OSError:
            return []

    def mkdir(self, path):
        if not _exists(self._p(path)):
            os.mkdir(self._p(path))

    def release(self, path):
        os.remove(self._p(path))

    def free(self):
        try:
            st = os.statvfs(self.root)
            return st[0] * st[4]
        except (AttributeError, OSError):
            return 1 << 40


class BoardSerial:
    """The dock link on a board: a stream with any() and a non-blocking read (a UART,
    pyb.USB_VCP), or by default the USB REPL's sys.stdin/sys.stdout, polled (select.poll)
    so read() never waits. Serve with micropython.kbd_intr(-1) (link.Link does).

    The port is the REPL's too: `repl` (default True) lets the dock link hand it back to
    the REPL on a Ctrl-C (0x03) that arrives outside a frame (link.Link.service raises
    KeyboardInterrupt), unless the board is production-locked (flash file "production")."""

    def __init__(self, stream=None, repl=True):
        import sys
        self.repl = repl
        self.stream = stream
        self.rx = stream or sys.stdin.buffer
        self.tx = stream or sys.stdout.buffer
        self.poll = None
        self._isconn = None
        if stream is not None:
            self._isconn = getattr(stream, "isconnected", None)    # pyb.USB_VCP
            if self._isconn is None and hasattr(stream, "dtr"):
                # micropython-lib usb.device.cdc.CDCInterface (esp32-s2/s3, rp2, samd...):
                # `dtr` is set while a host holds the port open
                opened = getattr(stream, "is_open", None)
                self._isconn = lambda: bool(stream.dtr) and (opened is None or opened())
        if stream is None:
            try:
                import pyb   # the USB REPL of an STM32 board: DTR through USB_VCP
                self._isconn = pyb.USB_VCP().isconnected
            except (ImportError, AttributeError):
                pass
        if stream is None or not hasattr(stream, "any"):
            try:
                import select
                self.poll = select.poll()
                self.poll.register(self.rx, select.POLLIN)
            except (ImportError, AttributeError, OSError):
                self.poll = None

    def read(self, n):
        s = self.stream
        if s is not None and hasattr(s, "any"):
            k = s.any()
            return (s.read(min(n, k)) or b"") if k else b""
        if self.poll is None:
            return b""
        out = bytearray()
        # stdin.read(k) waits for all k bytes: take one byte per poll that says one is there
        while len(out) < n and self.poll.poll(0):
            b = self.rx.read(1)
            if not b:
                break
            out += b
        return bytes(out)

    def connected(self):
        """False once the host has gone: a port with isconnected() (pyb.USB_VCP: DTR set
        by an open port) or a `dtr` flag (usb.device.cdc.CDCInterface) says so; any other
        port (a UART, the stdio of esp32/rp2 builds) counts as connected, and the session
        then ends by the idle timeout or the station's closing HELLO (SPEC §8.3)."""
        f = self._isconn
        return bool(f()) if f is not None else True

    def write(self, buf):
        mv = memoryview(buf)
        while len(mv):
            k = self.tx.write(mv)
            if k is None:  # would block
                continue
            mv = mv[k:]
        if hasattr(self.tx, "flush"):
            self.tx.flush()


_CONV = 256                        # samples one struct call converts (32-bit to 16-bit)
_FMT32 = "<" + "2xh" * _CONV       # the top 16 bits of each little-endian 32-bit slot
_FMT16 = "<%dh" % _CONV


def top16(raw, out, n):
    """out[:2n] = the top 16 bits of the n little-endian 32-bit samples in raw: what a
    24-bit I2S microphone (INMP441, ICS-43434) gives in 32-bit slots, as s16le. Whole runs
    of samples go through struct in C: no per-sample Python loop."""
    i = 0
    while i + _CONV <= n:
        struct.pack_into(_FMT16, out, 2 * i, *struct.unpack_from(_FMT32, raw, 4 * i))
        i += _CONV
    k = n - i
    if k:
        struct.pack_into("<%dh" % k, out, 2 * i, *struct.unpack_from("<" + "2xh" * k, raw, 4 * i))


class BoardMic:
    """An I2S microphone (machine.I2S in receive mode, 16 kHz mono), giving 16-bit samples.

    open_i2s() returns a new machine.I2S set up for the microphone, e.g.
    lambda: machine.I2S(0, sck=Pin(..), ws=Pin(..), sd=Pin(..), mode=machine.I2S.RX,
    bits=32, format=machine.I2S.MONO, rate=16000, ibuf=40000). start() opens it afresh
    (deinit of the previous one), so no audio from before start() waits in the driver's
    buffer and the first sample read is the one captured at start(): audio keeps its
    place on the clock. readinto() takes only the samples the clock says have arrived since
    start(), which the I2S DMA buffer (ibuf, preallocated by the driver, >= 2 capture ticks
    of audio) already holds, so the blocking readinto returns at once.

    bits: the I2S slot width. 16 for a microphone that works with 16-bit slots; 32 for the
    usual 24-bit MEMS microphones (INMP441, ICS-43434, SPH0645), which need 64 clocks a
    frame: their top 16 bits are kept (top16), through a raw buffer preallocated here
    (raw_bytes: twice the largest read; Capture reads at most 0.5 s, 16000 bytes)."""
    RATE = 16000

    def __init__(self, open_i2s, clock, bits=16, raw_bytes=32000):
        self.open_i2s = open_i2s
        self.i2s = None
        self.clock = clock
        self.bits = bits
        self.raw = bytearray(raw_bytes) if bits == 32 else None
        self._t0 = 0
        self._got = 0              # bytes (16-bit samples) handed out since start()

    def start(self):
        if self.i2s is not None:
            self.i2s.deinit()
            self.i2s = None
        self.i2s = self.open_i2s()
        self._t0 = self.clock.mono_ms()
        self._got = 0

    def readinto(self, buf):
        if self.i2s is None:
            return 0
        due = (self.clock.mono_ms() - self._t0) * 32 - self._got   # 32 bytes a ms
        n = min(due, len(buf)) & ~1
        if self.raw is not None:
            n = min(n, len(self.raw) // 2)
        if n <= 0:
            return 0
        if self.raw is None:
            k = self.i2s.readinto(memoryview(buf)[:n])
            k = n if k is None else k
        else:
            k = self.i2s.readinto(memoryview(self.raw)[:2 * n])
            k = (2 * n if k is None else k) // 4 * 2   # whole 32-bit samples, as 16-bit bytes
            top16(self.raw, buf, k // 2)
        self._got += k
        return k


class HAL:
    def __init__(self, clock, random, sd, flash, camera, device, reset_cause="power-on",
                 serial=None, mic=None):
        self.clock = clock
        self.random = random
        self.sd = sd
        self.flash = flash
        self.camera = camera
        self.mic = mic
        self.device = device
        self.reset_cause = reset_cause
        self.serial = serial
