# Pre-record ring (SPEC §10.2): the last prerecord_s seconds of camera frames and
# microphone audio, in one preallocated bytearray, so that a start keeps what happened just
# before the press. Pieces (a frame, a run of samples) are kept whole with their track and
# capture time; the oldest fall out by age or when the bytes would not fit.
from array import array

_MASK = 0xFFFFFFFF


class Ring:
    def __init__(self, cap, max_ms, max_frames=4096):
        self.buf = bytearray(cap)
        self.cap = cap
        self.max_ms = max_ms
        self.nmax = max_frames
        z = bytearray(4 * max_frames)   # raw zeros: max_frames entries on both runtimes
        self.start = array("I", z)
        self.size = array("I", z)
        self.when = array("I", z)
        self.track = bytearray(max_frames)
        self.head = 0              # index of the oldest frame
        self.n = 0                 # frames held
        self.w = 0                 # next write position in buf
        self.used = 0              # bytes held
        self.dropped = 0           # frames that fell out (age or room)

    def _drop(self):
        i = self.head
        self.used -= self.size[i]
        self.head = (i + 1) % self.nmax
        self.n -= 1
        self.dropped += 1

    def add(self, track, t, frame):
        """Keep frame (bytes: a video frame or audio samples) of track, captured at mono
        ms t (the signature of capture.Capture.pull's out)."""
        ln = len(frame)
        if ln > self.cap:
            while self.n:
                self._drop()
            return
        t &= _MASK            # times kept modulo 2**32 ms (49 days of uptime), compared
        while self.n and (self.used + ln > self.cap or self.n == self.nmax or  # wrap-safe
                          (t - self.when[self.head]) & _MASK > self.max_ms):
            self._drop()
        if not self.n:
            self.w = 0
        w = self.w
        first = ln if w + ln <= self.cap else self.cap - w
        mv = memoryview(frame)
        self.buf[w:w + first] = mv[:first]
        if first < ln:
            self.buf[0:ln - first] = mv[first:]
        i = (self.head + self.n) % self.nmax
        self.start[i] = w
        self.size[i] = ln
        self.when[i] = t
        self.track[i] = track
        self.w = (w + ln) % self.cap
        self.used += ln
        self.n += 1

    def span_ms(self, now):
        """ms of picture held: from the oldest frame to now (0 if empty)."""
        return (now - self.when[self.head]) & _MASK if self.n else 0

    def drain(self, write):
        """Pass every piece, oldest first, to write(track, mono ms, memoryview, rest) (rest:
        None, or the second part of a piece that wrapped), then empty the ring."""
        mv = memoryview(self.buf)
        cap = self.cap
        for k in range(self.n):
            i = (self.head + k) % self.nmax
            s = self.start[i]
            ln = self.size[i]
            if s + ln <= cap:
                write(self.track[i], self.when[i], mv[s:s + ln], None)
            else:
                write(self.track[i], self.when[i], mv[s:cap], mv[0:ln - (cap - s)])
        self.clear()

    def clear(self):
        self.head = self.n = self.w = self.used = 0
