# The recorder's clock in the evidence store (protocol/SPEC.md §8.7): TIME_SET from the
# dock, with the drift rate measured over the corrections since a measurement base, and
# the calibration state kept in internal flash (clock.cbor).
#
# These functions work on a Store (store.py): its clock, its settings (store.cfg) and its
# chain, which set_time extends through store._append.
from sealcamfw import flashkv
from sealcamfw.logread import body_of
from sealcamfw.storedefs import F_DRIFT, K_DRIFT, K_ERROR, K_NEW, K_OLD, K_SINCE, K_TYPE, TIME_SET

CLOCK_FILE = "clock.cbor"      # in internal flash: {1: rtc set, 2: drift ms/day, 3: measurement
                               # base rtc, 4: error summed since the base} (SPEC §8.7)


def set_time(store, new_ms):
    """Set the RTC and write a TIME_SET record (its own rtc is the new time); the clock
    is set back if the record cannot be written. The drift rate is measured over at
    least drift_min_s of RTC time: the corrections since the measurement base are summed
    (`error`) and divided by the time since it (`since`); flagged DRIFT past the limit
    (SPEC §8.7). Returns (old, new, seq, drift ms/day or None, since ms or None,
    flagged)."""
    c = store.clock
    cfg = store.cfg
    flash = store.hal.flash
    old = c.rtc_ms()
    last = kept_state(store)
    fields = {K_OLD: old, K_NEW: new_ms}
    drift = since = None
    flags = 0
    state = {1: new_ms, 2: 0, 3: new_ms, 4: 0}     # a new measurement base
    if last is not None:
        base = last.get(3, last[1])
        acc = last.get(4, 0) + old - new_ms
        if new_ms - base >= cfg.get("drift_min_s", 3600) * 1000:
            since = new_ms - base
            drift = acc * 86400000 // since if acc >= 0 else -((-acc) * 86400000 // since)
            fields[K_DRIFT] = drift
            fields[K_SINCE] = since
            fields[K_ERROR] = acc
            if abs(drift) > cfg.get("drift_limit_ms", 3000):
                flags = F_DRIFT
            state[2] = drift
        else:                                    # too soon to tell: keep summing
            state = {1: new_ms, 2: last.get(2, 0), 3: base, 4: acc}
    # the state first, naming the record it belongs to and keeping the one before: a
    # cut or a failure between the two leaves a state that names no such record, and
    # the one before is used (SPEC §8.7)
    state[5] = store.seq
    if last is not None:
        last.pop(6, None)
        state[6] = last
    flashkv.write(flash, CLOCK_FILE, state)
    c.set_rtc(new_ms)
    seq0 = store.seq
    try:
        store._append(TIME_SET, fields, flags, (new_ms, c.mono_ms()))
    except Exception:
        if store.seq == seq0:    # no record: the clock goes back too
            c.set_rtc(old)
        raise
    return old, new_ms, store.seq - 1, drift, since, bool(flags)


def kept_state(store):
    """clock.cbor if the TIME_SET it names is in the chain with its `new`, else the
    state before it (or None)."""
    v = flashkv.read(store.hal.flash, CLOCK_FILE)
    for _ in range(2):
        if type(v) is not dict or type(v.get(1)) is not int:
            return None
        q = v.get(5)
        if type(q) is not int:
            return v        # written before states named their record
        rec = store.find(q) if q < store.seq else None
        if rec is not None:
            b = body_of(rec)
            if b[K_TYPE] == TIME_SET and b[K_NEW] == v[1]:
                return v
        v = v.get(6)
    return None


def calibration(store):
    """(rtc of the last calibration, drift ms/day measured then), or None."""
    v = kept_state(store)
    return (v[1], v.get(2) or 0) if v is not None else None
