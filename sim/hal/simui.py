# The virtual recorder's officer-facing parts (SPEC §10.1): four buttons driven by a
# script, and feedback (LED, vibration, beeps, display, speaker) kept as a log.
# Runs on MicroPython and CPython.


class SimButtons:
    """hal.buttons: edges scheduled at simulated times, delivered by poll() when due."""

    def __init__(self, clock):
        self.clock = clock
        self.queue = []        # [(mono_ms, name, down)], kept in time order

    def press(self, name, ms=100, at=None):
        """Push `name` down at `at` (default now) and let it go ms later."""
        t = self.clock.mono_ms() if at is None else at
        self.queue.append((t, name, True))
        self.queue.append((t + ms, name, False))
        self.queue.sort()

    def poll(self):
        now = self.clock.mono_ms()
        out = []
        while self.queue and self.queue[0][0] <= now:
            t, name, down = self.queue.pop(0)
            out.append((name, down, t))
        return out


class SimUI:
    """hal.ui: remembers what the officer would see, feel and hear. With a microphone
    (simmic.SimMic), a phrase the speaker says (say("notice"), R5) is also picked up by
    it: the phrase's samples (sim/hal/voicepcm.py) go into the recording."""

    def __init__(self, clock, mic=None):
        self.clock = clock
        self.mic = mic
        self.log = []          # [(mono_ms, what, value)], the last 256
        self.led_colour = "off"
        self.text = ""

    def _add(self, what, value):
        self.log.append((self.clock.mono_ms(), what, value))
        if len(self.log) > 256:
            self.log.pop(0)

    def led(self, colour):
        self.led_colour = colour
        self._add("led", colour)

    def vibrate(self, ms):
        self._add("vibrate", ms)

    def beep(self, n):
        self._add("beep", n)

    def show(self, text):
        self.text = text
        self._add("show", text)

    def say(self, phrase):
        self._add("say", phrase)
        if self.mic is not None:
            from sim.hal import voicepcm     # loaded on first use: the assets are large
            if phrase in voicepcm.TEXT:
                self.mic.say(voicepcm.pcm(phrase))


class SimSensors:
    """Battery percentage and temperature the script can set."""

    def __init__(self, battery=None, temperature=25):
        self.battery_pct = battery
        self.temp = temperature

    def battery(self):
        return self.battery_pct

    def temperature(self):
        return self.temp
