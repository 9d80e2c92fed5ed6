# Simulated clock for the virtual recorder: runs as fast as the CPU allows; sleeping
# advances it. The RTC can drift (ppm) and be set; monotonic time restarts at each boot.
# Runs on MicroPython and CPython.


class SimClock:
    def __init__(self, rtc_ms=1795000000000, drift_ppm=0):
        self._rtc0 = rtc_ms      # RTC reading at mono 0
        self._mono = 0
        self.drift_ppm = drift_ppm

    def mono_ms(self):
        return self._mono

    def rtc_ms(self):
        return self._rtc0 + self._mono + self._mono * self.drift_ppm // 1000000

    def set_rtc(self, ms):
        self._rtc0 = ms - self._mono - self._mono * self.drift_ppm // 1000000

    def sleep_ms(self, ms):
        self._mono += ms

    def reboot(self):
        """Power cycle: monotonic time starts again at 0, the RTC keeps running."""
        self._rtc0 = self.rtc_ms()
        self._mono = 0
