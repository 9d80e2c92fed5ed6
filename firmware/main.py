# Board entry point (a real board runs this at power-on). The virtual recorder does not
# use this file; it builds its HAL in sim/hal/simdevice.py.
import hal
import device


def _board_hal():
    # A board port fills in its camera driver and mount points here.
    import camera_driver  # provided by the board port
    return hal.HAL(hal.BoardClock(), hal.board_random, hal.PosixFS("/sd/sealcam"),
                   hal.PosixFS("/flash"), camera_driver.Camera(), camera_driver.DEVICE_ID)


def main():
    h = _board_hal()
    s, rec = device.boot(h)
    rec.start("button")
    while True:
        h.clock.sleep_ms(rec.cfg["tick_ms"])
        rec.tick()


if __name__ == "__main__":
    main()
