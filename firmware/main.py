# Board entry point (a real board runs this at power-on). The virtual recorder does not
# use this file; it builds its HAL in sim/hal/simdevice.py.
import hal
import device
import link
import selfcheck
import workflow


def _board_hal():
    # A board port fills in its camera driver, buttons, feedback and mount points here.
    import camera_driver  # provided by the board port
    h = hal.HAL(hal.BoardClock(), hal.board_random, hal.PosixFS("/sd/sealcam"),
                hal.PosixFS("/flash"), camera_driver.Camera(), camera_driver.DEVICE_ID)
    for part in ("buttons", "ui", "battery", "temperature"):
        if hasattr(camera_driver, part):
            setattr(h, part, getattr(camera_driver, part))
    # the dock link: the port's serial (a UART, USB CDC) or the USB REPL's stdin/stdout
    h.serial = getattr(camera_driver, "serial", None) or hal.BoardSerial()
    return h


def main():
    h = _board_hal()
    s, rec = device.boot_or_fail(h)       # a card boot cannot open: NOT_READY, link up
    try:
        selfcheck.run(h, s, rec.cfg)      # READY / NOT_READY on the LED (SPEC §10.6)
    except Exception:
        pass                              # the station's CHECK runs it again
    wf = workflow.Workflow(h, s, rec, rec.cfg)
    if getattr(h, "buttons", None) is None:
        wf.start("button")                # no buttons on this board: record from power-on
    lnk = link.Link(h, s, rec, workflow=wf)
    lnk.start()                           # 0x03 on the line is data from now on
    device.serve_forever(h, s, rec, lnk, wf=wf)   # the workflow ticks; the dock answers


if __name__ == "__main__":
    main()
