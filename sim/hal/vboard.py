# The virtual board's board.py (`sealcam sim board --install` copies it to the board's
# flash as board.py; main.py does `import board` and calls make_hal()). The parts are the
# simulator's (sim/hal: camera, microphone, buttons nobody presses, LED/display log,
# battery); the clock is hal.BoardClock on the fake machine.RTC (sim/hal/vboardmachine.py),
# the internal flash is /flash, the SD card /sd with the store in /sd/sealcam (as the
# esp32s3_cam port), and the dock link is the board's one serial port (the pty of
# sim/board.py: the REPL's port, as a board's USB CDC), /dev/vbserial on the VM.
# Runs on the MicroPython WebAssembly VM under sim/mpvm/board.mjs only.
from sealcamfw import hal
import machine
import vboardjs

NAME = "vboard"
FLASH_DIR = "/flash"
SD_MOUNT = "/sd"
STORE_DIR = "/sealcam"
DEVICE_ID_FILE = "device_id"
BITRATE = 1000000            # the simulated camera's bit rate (bits/s): mpremote fetches ~30 KB/s
FPS = 10
_CAUSES = {machine.PWRON_RESET: "power-on", machine.HARD_RESET: "hard-reset",
           machine.SOFT_RESET: "soft-reset"}


class Clock(hal.BoardClock):
    """hal.BoardClock on the RTC; sleeping hands the time to the host (no busy wait)."""

    def sleep_ms(self, ms):
        if ms > 0:
            vboardjs.sleep_ms(int(ms))


class Port:
    """The board's serial port as a stream for hal.BoardSerial: any(), read(n) (never
    waits; stops after a Ctrl-C so what follows it stays for the REPL), write(buf),
    isconnected() (a host has the pty open)."""

    def __init__(self, path="/dev/vbserial"):
        self.f = open(path, "r+b")

    def any(self):
        return vboardjs.serial_any()

    def read(self, n):
        return self.f.read(n) or b""

    def write(self, buf):
        self.f.write(buf)
        return len(buf)

    def isconnected(self):
        return bool(vboardjs.serial_connected())


def random(n):
    return bytes(vboardjs.random(n))


def _mkdir(p):
    import os
    try:
        os.mkdir(p)
    except OSError:
        pass


def device_id(flash):
    """The id set at provisioning (flash file device_id), else SC- and the chip's id."""
    if flash.size(DEVICE_ID_FILE) > 0:
        t = bytes(flash.read(DEVICE_ID_FILE, 0, 64)).decode().strip()
        if t:
            return t
    import binascii
    return "SC-" + binascii.hexlify(machine.unique_id()).decode().upper()


def make_hal():
    """The virtual board's HAL (firmware/sealcamfw/hal.py)."""
    from sim.hal.simcam import SimCamera
    from sim.hal.simdevice import SimBattery
    from sim.hal.simmic import SimMic
    from sim.hal.simui import SimButtons, SimSensors, SimUI
    clock = Clock(machine.RTC())
    _mkdir(FLASH_DIR)
    _mkdir(SD_MOUNT)
    _mkdir(SD_MOUNT + STORE_DIR)
    flash = hal.PosixFS(FLASH_DIR)
    sd = hal.PosixFS(SD_MOUNT + STORE_DIR)
    dev = device_id(flash)
    mic = SimMic(clock)
    h = hal.HAL(clock, random, sd, flash, SimCamera(clock, BITRATE, FPS, dev), dev,
                _CAUSES.get(machine.reset_cause(), "power-on"), mic=mic)
    h.board = NAME
    h.buttons = SimButtons(clock)     # nobody presses them: the recorder waits in standby
    h.ui = SimUI(clock, mic)
    h.sensors = SimSensors()
    h.temperature = h.sensors.temperature
    h.battery = SimBattery(clock, 87).percent
    h.serial = hal.BoardSerial(Port())
    return h
