# Boot sequence: device key, evidence store (with power-loss recovery), capture loop.
from sealcamfw import config
from sealcamfw import devkey
from sealcamfw import fwinfo
from sealcamfw import recorder
from sealcamfw import store


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
    _firmware(hal, s)     # FIRMWARE after BOOT when the firmware changed (SPEC §13.2)
    if s.recovered:
        rv = s.recovered
        s.record(store.INTERRUPTION, {store.K_REASON: "power_loss", store.K_SEGMENT: rv["segment"],
                                      store.K_REFERS: rv["seq"]})
        rv["interruption"] = s.seq - 1
    return s, recorder.Recorder(hal, s, cfg)


def _firmware(hal, s):
    # the firmware id for AUTH (s.fwid), and a FIRMWARE record unless the chain's last
    # one names this firmware. A manifest that cannot be read is a bad_manifest record,
    # never a boot failure; a record that cannot be written (a full card) waits for the
    # next boot.
    try:
        info = fwinfo.read(hal.flash)
    except Exception:
        info = (None, None, None, "bad_manifest", None, None)
    s.fwid = info[0]
    try:
        fwinfo.note(s, hal.flash, info)
    except store.StoreFull:
        pass


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
        try:
            s.fwid = fwinfo.read(hal.flash)[0]
        except Exception:
            s.fwid = None
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
