# The esp32s3_cam board: an ESP32-S3 camera board (Freenove ESP32-S3-WROOM CAM layout,
# N8R8/N16R8: octal PSRAM) with an SD card, an I2S microphone, an I2S speaker amplifier,
# four buttons, a status LED, a vibration motor and a battery gauge. main.py does
# `import board` and calls make_hal(): this module is the only one that knows the pins.
# Wiring and the firmware build it needs: README.md beside this file. Nothing here has run
# on a real board yet (tests/test_board_port.py runs it on a fake `machine`).
from sealcamfw import hal
import machine

import boardcam
import boardio

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

NAME = "esp32s3_cam"

# camera (DVP, on the board's camera connector; esp32-camera's ESP32S3_EYE layout)
CAM_DATA = (11, 9, 8, 10, 12, 18, 17, 16)   # D0..D7 (Y2..Y9)
CAM_XCLK = const(15)
CAM_PCLK = const(13)
CAM_VSYNC = const(6)
CAM_HREF = const(7)
CAM_SDA = const(4)
CAM_SCL = const(5)
CAM_FPS = const(10)
# SD card (the board's slot, SDMMC 1-bit)
SD_CLK = const(39)
SD_CMD = const(38)
SD_D0 = const(40)
SD_FREQ = const(40000000)
# microphone: INMP441 on I2S0, receive (L/R to GND: left slot)
MIC_SCK = const(41)
MIC_WS = const(42)
MIC_SD = const(2)
MIC_IBUF = const(40000)     # driver buffer: 0.6 s of 32-bit slots at 16 kHz
# speaker: MAX98357A on I2S1, transmit
SPK_BCLK = const(21)
SPK_WS = const(47)
SPK_DIN = const(14)
# buttons to GND (internal pull-ups). 45 and 46 are strapping pins whose boot value is
# low, which a pressed button also gives; 43/44 are UART0's, free because the build
# turns the UART REPL off (README.md)
BUTTONS = (("record", 45), ("mark", 46), ("voice", 44), ("notice", 43))
LED_PIXEL = const(48)       # the board's WS2812
MOTOR = const(3)            # vibration motor through a MOSFET (gate pulled down)
BAT_ADC = const(1)          # ADC1_CH0, battery through a 100k/100k divider

SD_MOUNT = "/sd"
STORE_DIR = "/sealcam"      # on the card
FLASH_DIR = "/flash"        # a folder on the internal flash's file system
DEVICE_ID_FILE = "device_id"

_RESETS = {"PWRON_RESET": "power-on", "HARD_RESET": "hard-reset", "WDT_RESET": "watchdog",
           "DEEPSLEEP_RESET": "deep-sleep", "SOFT_RESET": "soft-reset"}


class NoCard:
    """The storage interface when the SD card did not mount: every write raises, so the
    store cannot open (device.boot_or_fail: NOT_READY, reason card_error) and nothing lands
    on the internal flash by mistake; reads find nothing."""

    def __init__(self, why):
        self.why = why

    def _no(self, *a):
        raise OSError(19, "no SD card: " + self.why)

    open_append = create = replace = read = readinto = mkdir = release = _no

    def size(self, path):
        return -1

    def exists(self, path):
        return False

    def listdir(self, path=""):
        return []

    def free(self):
        return 0


def _isdir(path):
    import os
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _mkdir(path):
    import os
    if not _isdir(path):
        os.mkdir(path)


def mount_card(prefix=""):
    """Mount the SD card at prefix + SD_MOUNT; returns the storage for the store (a
    hal.PosixFS on prefix + SD_MOUNT + STORE_DIR), or NoCard saying why not."""
    try:
        import vfs
    except ImportError:
        import os as vfs            # MicroPython before 1.23 mounts through os
    where = prefix + SD_MOUNT
    try:
        P = machine.Pin
        card = machine.SDCard(slot=1, width=1, sck=P(SD_CLK), cmd=P(SD_CMD), data=(P(SD_D0),),
                              freq=SD_FREQ)
        try:
            vfs.mount(card, where)
        except OSError as e:
            if not (e.args and e.args[0] == 1 and _isdir(where)):   # EPERM: mounted already
                raise
        _mkdir(where + STORE_DIR)
    except Exception as e:
        return NoCard("%s: %s" % (type(e).__name__, e))
    return hal.PosixFS(where + STORE_DIR)


def camera(clock):
    """The board's camera (boardcam.Camera), or a DeadCamera saying why not."""
    try:
        import camera as cm
        cam = cm.Camera(data_pins=list(CAM_DATA), pclk_pin=CAM_PCLK, vsync_pin=CAM_VSYNC,
                        href_pin=CAM_HREF, sda_pin=CAM_SDA, scl_pin=CAM_SCL,
                        xclk_pin=CAM_XCLK, xclk_freq=20000000, powerdown_pin=-1,
                        reset_pin=-1, pixel_format=cm.PixelFormat.JPEG,
                        frame_size=cm.FrameSize.VGA, jpeg_quality=80, fb_count=2,
                        grab_mode=cm.GrabMode.LATEST)
        return boardcam.Camera(cam, clock, CAM_FPS)
    except Exception as e:
        return boardcam.DeadCamera("%s: %s" % (type(e).__name__, e))


def open_mic():
    P = machine.Pin
    return machine.I2S(0, sck=P(MIC_SCK), ws=P(MIC_WS), sd=P(MIC_SD), mode=machine.I2S.RX,
                       bits=32, format=machine.I2S.MONO, rate=16000, ibuf=MIC_IBUF)


def microphone(clock):
    """hal.BoardMic on the INMP441, or None (segments then say audio=none) when its I2S
    cannot be opened."""
    try:
        open_mic().deinit()
    except Exception:
        return None
    return hal.BoardMic(open_mic, clock, bits=32)


def random(n):
    """n bytes from the ESP32-S3's hardware RNG (os.urandom). The RNG draws on RF noise
    only while a radio is on, so the Wi-Fi radio is switched on for the draw (it joins no
    network) and off again: the device key made at first boot comes from true noise."""
    wlan = None
    try:
        import network
        wlan = network.WLAN(network.STA_IF)
        was = wlan.active()
        if not was:
            wlan.active(True)
        else:
            wlan = None
    except Exception:
        wlan = None
    try:
        return hal.board_random(n)
    finally:
        if wlan is not None:
            wlan.active(False)


def device_id(flash):
    """The id set at provisioning (flash file device_id), else SC- and the chip's id."""
    if flash.size(DEVICE_ID_FILE) > 0:
        t = bytes(flash.read(DEVICE_ID_FILE, 0, 64)).decode().strip()
        if t:
            return t
    import binascii
    return "SC-" + binascii.hexlify(machine.unique_id()).decode().upper()


def reset_cause():
    c = machine.reset_cause()
    for name in _RESETS:
        if getattr(machine, name, None) == c:
            return _RESETS[name]
    return "reset-%d" % c


def _optional(make):
    try:
        return make()
    except Exception:
        return None


def make_hal(prefix=""):
    """The board's HAL (firmware/sealcamfw/hal.py). prefix goes before every mount point and folder
    (/sd, /flash): "" on the board; a host folder when the port's wiring is tested on
    CPython, which has no mount table (tests/test_board_port.py)."""
    P = machine.Pin
    clock = hal.BoardClock(machine.RTC())
    fdir = prefix + FLASH_DIR
    _mkdir(fdir)
    flash = hal.PosixFS(fdir)
    sd = mount_card(prefix)
    h = hal.HAL(clock, random, sd, flash, camera(clock), device_id(flash), reset_cause(),
                mic=microphone(clock))
    h.board = NAME
    h.buttons = boardio.Buttons([(name, P(pin, P.IN, P.PULL_UP)) for name, pin in BUTTONS],
                                clock)

    def speaker():
        return boardio.Speaker(machine.I2S(1, sck=P(SPK_BCLK), ws=P(SPK_WS), sd=P(SPK_DIN),
                                           mode=machine.I2S.TX, bits=16,
                                           format=machine.I2S.MONO, rate=16000, ibuf=8192),
                               fdir)

    def pixel():
        import neopixel
        return neopixel.NeoPixel(P(LED_PIXEL, P.OUT), 1)

    h.ui = _optional(lambda: boardio.Feedback(pixel(), P(MOTOR, P.OUT, value=0),
                                              machine.Timer(0), machine.Timer(1),
                                              _optional(speaker)))
    bat = _optional(lambda: boardio.Battery(machine.ADC(P(BAT_ADC), atten=machine.ADC.ATTN_11DB)))
    if bat is not None:
        h.battery = bat.percent
    try:
        import esp32
        if hasattr(esp32, "mcu_temperature"):
            h.temperature = esp32.mcu_temperature   # the chip's own sensor (ESP32-S2/S3/C3)
    except ImportError:
        pass
    h.serial = hal.BoardSerial()    # the dock link: the USB CDC port (the REPL's stdio)
    return h
