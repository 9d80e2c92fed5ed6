# Simulated clock for the virtual recorder: runs as fast as the CPU allows; sleeping
# advances it. The RTC can drift (ppm) and be set; monotonic time restarts at each boot.
#
# Real-time mode (`go_realtime()`, or RealClock): from then on monotonic time follows real
# elapsed time (time.ticks_ms on MicroPython, time.monotonic on CPython), continuing from
# where simulated time stood, so a device can record a shift as fast as possible and then
# serve its dock link in real time within one boot. The RTC keeps drifting and can be set
# (TIME_SET). Runs on MicroPython and CPython.
import time

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    _ticks_ms = None


class SimClock:
    def __init__(self, rtc_ms=1795000000000, drift_ppm=0):
        self._rtc0 = rtc_ms      # RTC reading at mono 0
        self._true0 = rtc_ms     # true (UTC) time at mono 0: the station's clock
        self._mono = 0
        self.drift_ppm = drift_ppm
        self._real = False       # real-time mode
        self._t0 = None          # last real reading (ticks_ms or monotonic seconds)

    # ---- real-time mode
    def go_realtime(self):
        """From now on monotonic time follows real time (never goes back)."""
        if not self._real:
            self._real = True
            self._t0 = _ticks_ms() if _ticks_ms else time.monotonic()

    @property
    def realtime(self):
        return self._real

    def _advance(self):
        # fold real elapsed time into _mono (ticks_ms wraps: read often, diff each time)
        if _ticks_ms:
            now = _ticks_ms()
            d = _ticks_diff(now, self._t0)
            if d > 0:
                self._mono += d
                self._t0 = now
        else:
            now = time.monotonic()
            d = int((now - self._t0) * 1000)
            if d > 0:
                self._mono += d
                self._t0 += d / 1000

    def mono_ms(self):
        if self._real:
            self._advance()
        return self._mono

    def rtc_ms(self):
        m = self.mono_ms()
        return self._rtc0 + m + m * self.drift_ppm // 1000000

    def true_rtc_ms(self):
        """What a correct clock reads now (the RTC drifts away from it)."""
        return self._true0 + self.mono_ms()

    def set_rtc(self, ms):
        m = self.mono_ms()
        self._rtc0 = ms - m - m * self.drift_ppm // 1000000

    def sleep_ms(self, ms):
        if self._real:
            if ms > 0:
                if _ticks_ms:
                    time.sleep_ms(ms)
                else:
                    time.sleep(ms / 1000)
        else:
            self._mono += ms

    def reboot(self):
        """Power cycle: monotonic time starts again at 0, the RTC keeps running."""
        self._rtc0 = self.rtc_ms()
        self._true0 = self.true_rtc_ms()
        self._mono = 0
        if self._real:
            self._t0 = _ticks_ms() if _ticks_ms else time.monotonic()


class RealClock(SimClock):
    """A SimClock in real-time mode from the start; rtc_ms defaults to the host's time."""

    def __init__(self, rtc_ms=None, drift_ppm=0):
        if rtc_ms is None:
            rtc_ms = int(time.time() * 1000)
        SimClock.__init__(self, rtc_ms, drift_ppm)
        self.go_realtime()
