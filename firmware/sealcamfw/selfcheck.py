# Pre-shift self-check (SPEC §10.6, R6): battery, storage left at the configured bitrate,
# estimated clock error since the last calibration, age of the oldest record no receipt
# covers. Writes a SELF_CHECK record and shows READY / NOT_READY on the LED and display.
from sealcamfw import store as st


def _ui(hal):
    return getattr(hal, "ui", None)


def run(hal, s, cfg):
    """Run the check on store s; returns {1: ready, 2: reasons, 3: facts, 4: seq}. On
    another device's card (s.foreign) it is NOT_READY, reason foreign_card, and writes no
    record (seq None): nothing is written to that card; the same with reason card_error
    when boot could not open the card's store (s.card_error)."""
    reasons = []
    facts = {}
    if s.foreign:
        reasons.append("foreign_card")
    if getattr(s, "card_error", None):
        reasons.append("card_error")
    bat = getattr(hal, "battery", None)
    bat = int(bat()) if bat is not None else 100
    facts[1] = bat
    if bat < cfg["battery_min"]:
        reasons.append("battery")
    rate = cfg["bitrate"] // 8                     # bytes per second
    free = s.fs.free()
    if free < cfg["storage_min_min"] * 60 * rate:
        free += s.releasable()   # media a receipt covers, released when space runs out
    minutes = free // rate // 60 if free > 0 else 0
    facts[2] = minutes
    if minutes < cfg["storage_min_min"]:
        reasons.append("storage")
    now = hal.clock.rtc_ms()
    cal = s.calibration()
    if cal is None:
        reasons.append("clock_uncalibrated")
    else:
        since = now - cal[0]
        if since < 0:
            since = 0
        est = cal[1] * since // 86400000 if cal[1] >= 0 else -((-cal[1]) * since // 86400000)
        facts[3] = est
        facts[5] = since
        if abs(est) > cfg["clock_max_ms"]:
            reasons.append("clock")
    first = s.covered + 1
    if first < s.seq:
        rec = s.find(first)
        if rec is not None:
            age = (now - st._body_of(rec)[4]) // 1000
            facts[4] = age if age > 0 else 0
            if age > cfg["offload_max_h"] * 3600:
                reasons.append("offload_overdue")
    ready = not reasons
    if s.foreign or getattr(s, "card_error", None):
        seq = None
    else:
        s.record(st.SELF_CHECK, {st.K_READY: ready, st.K_REASONS: reasons, st.K_FACTS: facts})
        seq = s.seq - 1
    result = {1: ready, 2: reasons, 3: facts, 4: seq}
    s.last_check = result
    ui = _ui(hal)
    if ui is not None:
        ui.led("green" if ready else "red")
        ui.show("READY" if ready else "NOT READY: " + ", ".join(reasons))
    return result
