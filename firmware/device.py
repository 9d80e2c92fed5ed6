# Boot sequence: device key, evidence store (with power-loss recovery), capture loop.
import config
import devkey
import recorder
import store


def boot(hal, settings=None, officer=None):
    """(store, recorder) of a booted device; the store has written its BOOT record, and an
    INTERRUPTION (power_loss) record if it recovered a segment (SPEC §10.3). The officer
    and unit are those of the last record in the chain (SPEC §10.5) unless officer is
    given (the simulator's shortcut, with no unit)."""
    cfg = config.make(settings)
    sk = devkey.load_or_create(hal)
    s = store.Store(hal, sk, config.FW_VERSION, cfg, officer)
    s.open(hal.reset_cause)
    s.load_coverage()
    if s.recovered:
        rv = s.recovered
        s.record(store.INTERRUPTION, {store.K_REASON: "power_loss", store.K_SEGMENT: rv["segment"],
                                      store.K_REFERS: rv["seq"]})
        rv["interruption"] = s.seq - 1
    return s, recorder.Recorder(hal, s, cfg)


def boot_or_fail(hal, settings=None):
    """boot() for a board (main.py): a store that raises while it opens (an unreadable or
    edited card, out of memory) does not stop the device. It comes up with a store that
    writes nothing (Store.fail: self-check NOT_READY, reason card_error; an alert after
    AUTH) so the dock link stays up. An exception from the device key (internal flash)
    still passes: there is no device without it."""
    try:
        return boot(hal, settings)
    except Exception as e:
        cfg = config.make(settings)
        sk = devkey.load_or_create(hal)
        s = store.Store(hal, sk, config.FW_VERSION, cfg)
        s.fail(e)
        return s, recorder.Recorder(hal, s, cfg)


def shutdown(s, rec, reason="shutdown"):
    if rec.recording:
        rec.stop(reason)
    s.close()


def serve_forever(hal, s, rec, lnk, tick_ms=None, idle_ms=2, wf=None):
    """A board's main loop while docked: answer the dock link (lnk: link.Link), run the
    capture loop (or the officer workflow wf, which runs it) every tick_ms, sleep idle_ms
    when the line is quiet."""
    tick = tick_ms or rec.cfg["tick_ms"]
    clock = hal.clock
    due = clock.mono_ms() + tick
    step = wf.tick if wf is not None else rec.tick
    while True:
        busy = lnk.service()
        now = clock.mono_ms()
        if now >= due:
            step()
            due = now + tick
        elif not busy:
            clock.sleep_ms(min(idle_ms, due - now))
