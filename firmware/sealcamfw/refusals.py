# Refused delete/modify requests, coalesced (protocol/SPEC.md §5.3): no host can fill the
# card with REFUSAL records.
#
# The first refusal after a quiet spell is recorded at once. Later ones within
# `refusal_interval_ms` of the last REFUSAL record are counted in RAM; the next record
# (written by the next refusal after the interval, or by due() which the link calls as it
# serves) names the first of them and carries `count` (key 44) = how many refusals it
# stands for. A REFUSAL record is never written into the evidence reserve
# (`evidence_reserve` bytes, SPEC §10.8): what cannot be written stays counted.
# A power cut loses the counted refusals of at most one interval.

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_REFUSAL = const(6)
_K_REASON = const(17)
_K_OP = const(19)
_K_TARGET = const(20)
_K_SOURCE = const(21)
_K_COUNT = const(44)
_TARGET_MAX = const(64)  # characters of a refused target kept in the record
_COUNT_MAX = const(0xFFFFFFFF)


def clean(text, limit=_TARGET_MAX):
    """text with every control character (C0, DEL, C1) replaced by "?", cut to limit
    characters (the last three "..." when cut)."""
    cut = len(text) > limit
    if cut:
        text = text[:limit - 3]     # first: the loop below never sees more than limit
    out = []
    for c in text:
        o = ord(c)
        out.append("?" if o < 0x20 or 0x7F <= o < 0xA0 else c)
    if cut:
        out.append("...")
    return "".join(out)


def has_control(text):
    """True if text holds a control character (C0, DEL or C1)."""
    for c in text:
        o = ord(c)
        if o < 0x20 or 0x7F <= o < 0xA0:
            return True
    return False


class Refusals:
    def __init__(self, store, interval_ms, reserve):
        self.store = store
        self.interval_ms = interval_ms
        self.reserve = reserve
        self.pending = None     # [op, target, source, count] not yet recorded
        self.last_ms = None     # mono time of the last REFUSAL record

    def refuse(self, op, target, source):
        """Count one refused request; record it (with the ones counted before it) unless a
        REFUSAL record was written less than interval_ms ago. The seq of the record
        written, or None if the refusal is counted for the next one. OSError if the record
        was due but could not be written (it stays counted)."""
        p = self.pending
        if p is None:
            p = self.pending = [op, clean(target), source, 0]
        if p[3] < _COUNT_MAX:
            p[3] += 1
        now = self.store.clock.mono_ms()
        if self.last_ms is not None and now - self.last_ms < self.interval_ms:
            return None
        return self._write(now)

    def due(self):
        """Write the counted refusals if the interval has passed (cheap when not)."""
        if self.pending is None:
            return None
        now = self.store.clock.mono_ms()
        if self.last_ms is not None and now - self.last_ms < self.interval_ms:
            return None
        try:
            return self._write(now)
        except OSError:
            return None     # still counted; tried again at the next call

    def flush(self):
        """Write the counted refusals now (shutdown), whatever the interval."""
        if self.pending is not None:
            self._write(self.store.clock.mono_ms())

    def _write(self, now):
        s = self.store
        op, target, source, n = self.pending
        if s.fs.free() < self.reserve + 4096 + 512:
            self.last_ms = now   # try again after the interval, not at every request
            raise s.full_error("storage kept for evidence: REFUSAL (%d refusals) not written"
                               % n)
        fields = {_K_REASON: "evidence is append-only", _K_OP: op, _K_TARGET: target,
                  _K_SOURCE: source}
        if n > 1:
            fields[_K_COUNT] = n
        seq0 = s.seq
        try:
            s.record(_REFUSAL, fields)
        except Exception:
            self.last_ms = now
            if s.seq != seq0:        # the record is there; only what followed it failed
                self.pending = None
            raise
        self.pending = None
        self.last_ms = now
        return s.seq - 1
