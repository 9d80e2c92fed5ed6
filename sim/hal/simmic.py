# Simulated microphone for the virtual recorder: 16 kHz mono s16le PCM, driven by the
# simulated clock, the interface of hal.py's `mic` (start(), readinto(buf) -> bytes).
# Ambient noise is one pre-generated block (made once, at about -48 dBFS), repeated at a
# moving offset; say(pcm) queues speech (s16le, 16 kHz) that replaces the ambient from
# the next sample captured on. Copies are slices: no per-sample Python on the data path.
# What is said comes from sim/hal/voicepcm.py (made by sim/make_voice_assets.py): the
# officer's statements, put in by simdevice.py while VOICE is held, and the notice phrase
# the speaker plays (simui.SimUI.say). See docs/simulator.md.
# Runs on MicroPython and CPython.
RATE = 16000
_NOISE_SAMPLES = 4093           # a prime: the repeat does not line up with blocks


def _noise(seed):
    # int8 values sign-extended into s16le: small, zero-mean noise (made once)
    out = bytearray(2 * _NOISE_SAMPLES)
    x = seed & 0x7FFFFFFF or 1
    for i in range(_NOISE_SAMPLES):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        v = (x >> 16) & 0xFF
        out[2 * i] = v
        out[2 * i + 1] = 0xFF if v & 0x80 else 0
    return bytes(out)


class SimMic:
    RATE = RATE

    def __init__(self, clock, seed=1):
        self.clock = clock
        self.noise = _noise(seed)
        self._t0 = None          # mono ms at start()
        self._pos = 0            # samples handed out since start()
        self._speech = []        # queued speech pieces (bytes, s16le)
        self._sp = 0             # bytes of _speech[0] already handed out
        self.said = []           # (sample position, samples) of each say(), for tests

    def start(self):
        self._t0 = self.clock.mono_ms()
        self._pos = 0

    def say(self, pcm):
        """Speech (s16le mono 16 kHz bytes) into the microphone, from the next sample on."""
        if len(pcm) & 1:
            pcm = pcm[:-1]
        if pcm:
            self._speech.append(bytes(pcm))
            self.said.append((self._pos, len(pcm) // 2))

    def speaking(self):
        return bool(self._speech)

    def readinto(self, buf):
        """Fill buf with the samples captured since the last call (at most len(buf) bytes);
        returns the byte count (even)."""
        if self._t0 is None:
            self.start()
        due = (self.clock.mono_ms() - self._t0) * RATE // 1000 - self._pos
        n = min(2 * due, len(buf) & ~1)
        if n <= 0:
            return 0
        mv = memoryview(buf)
        nz = len(self.noise)
        w = 0
        off = (2 * self._pos) % nz
        while w < n:                         # ambient: slices of the noise block
            k = min(n - w, nz - off)
            mv[w:w + k] = self.noise[off:off + k]
            w += k
            off = 0
        w = 0
        while w < n and self._speech:        # speech replaces the ambient
            sp = self._speech[0]
            k = min(n - w, len(sp) - self._sp)
            mv[w:w + k] = sp[self._sp:self._sp + k]
            w += k
            self._sp += k
            if self._sp == len(sp):
                self._speech.pop(0)
                self._sp = 0
        self._pos += n // 2
        return n
