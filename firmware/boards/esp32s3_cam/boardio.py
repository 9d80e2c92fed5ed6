# The officer-facing parts of the esp32s3_cam board on MicroPython's machine API: four
# buttons (debounced edges with monotonic times), the status LED, the vibration motor, the
# speaker, and the battery gauge. board.py builds them with the board's pins.
import struct

from sealcamfw import hal

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_EDGES = const(32)          # edges the interrupt handler can hold between two polls
_DEBOUNCE_MS = const(20)    # a level must hold this long to count (contacts bounce < 10 ms)


class Buttons:
    """hal.buttons: poll() -> [(name, down, mono_ms)], the debounced edges since the last
    poll, each with the monotonic time (hal.clock.mono_ms) its level began.

    pins: [(name, machine.Pin)], buttons to ground with the pin's pull-up (pressed reads
    0). Every raw edge is caught by a pin interrupt (Pin.irq, both edges) into a ring
    preallocated here (the handler allocates nothing: a ticks_ms value and a byte), so a
    press shorter than the poll interval is not missed. poll() walks the edges of each
    button in order: a level counts once it has held for _DEBOUNCE_MS (contact bounce is
    shorter), and a level that bounced back to the last one counted is no edge at all. A
    level still settling is left for the next poll. If the ring overflows (a chattering
    contact), poll() reads the pins themselves."""

    def __init__(self, pins, clock, active_low=True):
        from array import array
        self.names = [p[0] for p in pins]
        self.pins = [p[1] for p in pins]
        self.clock = clock
        self.low = active_low
        n = len(pins)
        self.t = array("I", bytes(4 * _EDGES))   # raw ticks_ms of each edge
        self.b = bytearray(_EDGES)               # button index << 1 | level
        self.r = 0                               # ring read and write counts
        self.w = 0
        self.over = False
        self.state = bytearray(n)                # debounced: 1 down
        self.pend = bytearray(n)                 # 1 + level of an unsettled edge, 0: none
        self.pend_t = array("I", bytes(4 * n))
        self._out = []
        for i in range(n):
            self.state[i] = self._down(self.pins[i].value())
            p = self.pins[i]
            p.irq(handler=self._handler(i), trigger=p.IRQ_FALLING | p.IRQ_RISING)

    def _down(self, level):
        return (level == 0) if self.low else (level != 0)

    def _handler(self, i):
        ring = self

        def edge(pin):
            w = ring.w
            if w - ring.r >= _EDGES:
                ring.over = True
                return
            k = w % _EDGES
            ring.t[k] = hal.ticks_ms()
            ring.b[k] = (i << 1) | (1 if pin.value() else 0)
            ring.w = w + 1
        return edge

    def _settle(self, i, now_ticks, upto):
        # the pending edge of button i counts if its level held until `upto` (ticks)
        p = self.pend[i]
        if p and hal.ticks_diff(upto, self.pend_t[i]) >= _DEBOUNCE_MS:
            self.pend[i] = 0
            down = self._down(p - 1)
            if down != self.state[i]:
                self.state[i] = down
                t = self.pend_t[i]
                self._out.append((self.names[i], bool(down),
                                  self.clock.mono_ms() - hal.ticks_diff(now_ticks, t)))

    def poll(self):
        self._out = []
        now = hal.ticks_ms()
        while self.r < self.w:
            k = self.r % _EDGES
            i = self.b[k] >> 1
            t = self.t[k]
            self._settle(i, now, t)           # the level before this edge held until t
            self.pend[i] = 1 + (self.b[k] & 1)
            self.pend_t[i] = t
            self.r += 1
        if self.over:                         # edges were lost: trust the pins now
            self.over = False
            for i in range(len(self.pins)):
                self.pend[i] = 1 + (1 if self.pins[i].value() else 0)
                self.pend_t[i] = (now - _DEBOUNCE_MS) & 0x3FFFFFFF
        for i in range(len(self.pins)):
            self._settle(i, now, now)
        return self._out


_COLOURS = {"off": (0, 0, 0), "green": (0, 48, 0), "red": (48, 0, 0), "amber": (48, 20, 0),
            "amber-blink": (48, 20, 0)}
_BLINK_MS = const(300)


class Feedback:
    """hal.ui: the status LED (one WS2812 through `neopixel`; amber-blink toggles from a
    periodic machine.Timer), the vibration motor (a pin through a MOSFET, switched off by a
    one-shot machine.Timer), the speaker (Speaker below) and the display, which this board
    does not have: show() keeps the text (self.text) and shows nothing. Nothing here prints:
    the USB serial port is the dock link."""

    def __init__(self, pixel, motor, blink_timer, motor_timer, speaker=None):
        self.pixel = pixel          # neopixel.NeoPixel(Pin, 1)
        self.motor = motor          # machine.Pin, OUT, 0 at boot
        self.blink_timer = blink_timer
        self.motor_timer = motor_timer
        self.speaker = speaker
        self.colour = "off"
        self.text = ""
        self._lit = False
        self._blink_cb = self._blink
        self._motor_off_cb = self._motor_off
        self.led("off")

    def _set(self, rgb):
        self.pixel[0] = rgb
        self.pixel.write()

    def _blink(self, t):
        self._lit = not self._lit
        self._set(_COLOURS["amber"] if self._lit else (0, 0, 0))

    def led(self, colour):
        rgb = _COLOURS.get(colour)
        if rgb is None:
            return
        self.colour = colour
        self.blink_timer.deinit()
        self._set(rgb)
        self._lit = True
        if colour == "amber-blink":
            t = self.blink_timer
            t.init(period=_BLINK_MS, mode=t.PERIODIC, callback=self._blink_cb)

    def _motor_off(self, t):
        self.motor.value(0)

    def vibrate(self, ms):
        self.motor_timer.deinit()
        self.motor.value(1)
        t = self.motor_timer
        t.init(period=max(1, int(ms)), mode=t.ONE_SHOT, callback=self._motor_off_cb)

    def beep(self, n):
        if self.speaker is not None:
            self.speaker.beep(n)

    def say(self, phrase):
        if self.speaker is not None:
            self.speaker.say(phrase)

    def show(self, text):
        self.text = text


_RATE = const(16000)
_TONE_MS = const(80)
_PIECE = const(4096)        # bytes of a phrase file read at a time
_AMP = const(6000)


def _tone():
    # _TONE_MS of a 1 kHz square wave, 16 kHz s16le mono: one period repeated (no loop)
    period = struct.pack("<16h", *([_AMP] * 8 + [-_AMP] * 8))
    return period * (_TONE_MS * _RATE // 1000 // 16)


class Speaker:
    """The speaker: an I2S amplifier (MAX98357A) on a machine.I2S in transmit mode (16 kHz,
    16-bit, mono), written without blocking: i2s.irq(callback) makes write() return at
    once, and the callback, run when the driver has taken a buffer, writes the next piece.
    beep(n): n tones of _TONE_MS with gaps, from one tone buffer made at start-up.
    say(phrase): plays flash file phrases/<phrase>.pcm (raw 16 kHz s16le mono, put there
    when the board is set up) through one preallocated piece buffer; a missing phrase file
    gives two beeps instead. A new sound replaces the one playing."""

    def __init__(self, i2s, flash_root):
        self.i2s = i2s
        self.root = flash_root
        self.tone = _tone()
        self.gap = bytes(len(self.tone))
        self.buf = bytearray(_PIECE)
        self.mv = memoryview(self.buf)
        self.left = 0               # tone/gap pieces still to write
        self.f = None               # the phrase file being played
        self.busy = False           # a write is in the driver's hands
        self.missing = None         # the last phrase that had no file
        i2s.irq(self._more)

    def _more(self, i2s=None):
        if self.left:
            self.left -= 1
            self.i2s.write(self.tone if self.left % 2 == 0 else self.gap)
            return
        f = self.f
        if f is not None:
            n = f.readinto(self.buf)
            if n:
                self.i2s.write(self.mv[:n])
                return
            f.close()
            self.f = None
        self.busy = False

    def _play(self):
        if not self.busy:
            self.busy = True
            self._more()

    def _stop_file(self):
        if self.f is not None:
            self.f.close()
            self.f = None

    def beep(self, n):
        self._stop_file()
        self.left = 2 * max(1, min(int(n), 5)) - 1   # tone, gap, tone, ...
        self._play()

    def say(self, phrase):
        self._stop_file()
        self.left = 0
        ok = phrase.replace("_", "").isalpha() and len(phrase) <= 24
        try:
            if not ok:
                raise OSError(2, phrase)
            self.f = open("%s/phrases/%s.pcm" % (self.root, phrase), "rb")
        except OSError:
            self.missing = phrase
            self.beep(2)
            return
        self._play()


_CURVE = ((3300, 0), (3600, 8), (3700, 25), (3800, 50), (3900, 70), (4000, 85), (4200, 100))


class Battery:
    """hal.battery: charge in percent from the cell voltage, read through a 1:2 divider on
    an ADC1 pin (machine.ADC, 11 dB attenuation, read_uv). A Li-ion discharge curve turns
    millivolts into percent; an exponential average steadies it, so one noisy reading
    never stops a recording (battery_stop)."""

    def __init__(self, adc, divider=2):
        self.adc = adc
        self.div = divider
        self.mv = 0

    def millivolts(self):
        mv = self.adc.read_uv() * self.div // 1000
        self.mv = mv if not self.mv else (self.mv * 7 + mv) // 8
        return self.mv

    def percent(self):
        mv = self.millivolts()
        lo = _CURVE[0]
        if mv <= lo[0]:
            return 0
        for hi in _CURVE[1:]:
            if mv <= hi[0]:
                return lo[1] + (mv - lo[0]) * (hi[1] - lo[1]) // (hi[0] - lo[0])
            lo = hi
        return 100
