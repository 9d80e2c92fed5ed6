# Board entry point (a real board runs this at power-on). It imports the board module of
# the board it was built for: `board`, frozen into the image by the board's manifest
# (firmware/boards/<board>/manifest.py) or copied beside the firmware, whose make_hal()
# builds the HAL from the board's pins. The virtual board (`sealcam sim board`) runs it
# too; the in-process virtual recorder builds its HAL in sim/hal/simdevice.py instead.
#
# Production lock (SPEC §13.3): on a board flashed with `sealcam flash --production`
# (/flash/production exists) the first thing main.py does is turn keyboard interrupts
# off, so no Ctrl-C on the serial port reaches the REPL; the port then speaks only the
# dock protocol, and main.py never returns to the REPL: any exception resets the board.
try:
    import os
    os.stat("/flash/production")
    LOCKED = True
except (ImportError, OSError):
    LOCKED = False
if LOCKED:
    try:
        import micropython
        micropython.kbd_intr(-1)
    except (ImportError, AttributeError):
        pass


def _reset():
    import machine
    machine.reset()


try:
    import board
    from sealcamfw import device
    from sealcamfw import fwinfo
    from sealcamfw import link
    from sealcamfw import selfcheck
    from sealcamfw import workflow
except BaseException:     # noqa: B036 (a module that does not import: never the REPL)
    if LOCKED:
        _reset()
    raise


def boot(h=None):
    """Bring the recorder up on HAL h (default: board.make_hal()): the store (a card boot
    cannot open gives NOT_READY and keeps the link up), the self-check, the officer
    workflow and the dock link. Returns (hal, store, recorder, workflow, link)."""
    h = h or board.make_hal()
    h.production = LOCKED or fwinfo.locked(h.flash)
    s, rec = device.boot_or_fail(h)
    try:
        selfcheck.run(h, s, rec.cfg)      # READY / NOT_READY on the LED (SPEC §10.6)
    except Exception:
        pass                              # the station's CHECK runs it again
    wf = workflow.Workflow(h, s, rec, rec.cfg)
    if getattr(h, "buttons", None) is None:
        wf.start("button")                # no buttons on this board: record from power-on
    lnk = link.Link(h, s, rec, workflow=wf)
    lnk.start()                           # 0x03 on the line is data from now on
    return h, s, rec, wf, lnk


def main():
    if LOCKED:
        locked_main()
        return
    h, s, rec, wf, lnk = boot()
    device.serve_forever(h, s, rec, lnk, wf=wf)   # the workflow ticks; the dock answers


def locked_main(h=None):
    """A production-locked board: serve until power goes; whatever ends that (an error,
    out of memory) resets the board instead of leaving it at the REPL."""
    try:
        h, s, rec, wf, lnk = boot(h)
        device.serve_forever(h, s, rec, lnk, wf=wf)
    except BaseException:         # noqa: B036 (KeyboardInterrupt too: never the REPL)
        pass
    _reset()


if __name__ == "__main__":
    main()
