# The virtual board's `machine` module (installed in the VM's /rom as machine.py by
# sim/mpvm/board.mjs): a FAKE of MicroPython's machine API, only what the virtual board
# needs. It is not hardware: reset() restarts the VM (sim/board.py keeps the files),
# unique_id() is the id sim/board.py made for the board folder, RTC keeps its setting in
# a host file across resets (the RTC's backup domain). Runs on the MicroPython VM only.
import vboardjs

FAKE = "sealcam virtual board: a fake machine module on the MicroPython WebAssembly VM"

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_CAUSES = {"power-on": PWRON_RESET, "hard": HARD_RESET, "soft": SOFT_RESET}


def reset():
    """Hard reset: the VM restarts, boot.py and main.py run again; files are kept."""
    vboardjs.reset()


def soft_reset():
    raise SystemExit   # the REPL's Ctrl-D does the soft reset; a program just ends


def reset_cause():
    return _CAUSES.get(vboardjs.reset_cause(), PWRON_RESET)


def unique_id():
    import binascii
    return binascii.unhexlify(vboardjs.unique_id())


def freq():
    return 240000000


def idle():
    vboardjs.sleep_ms(1)


def _days(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil(days):
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


class RTC:
    """datetime() -> (year, month, day, weekday, hours, minutes, seconds, subseconds µs),
    UTC, as on esp32; datetime(tuple) sets it. The setting survives reset() and restarts."""

    def __init__(self, id=0):
        pass

    def init(self, t):
        self.datetime(t)

    def datetime(self, t=None):
        if t is None:
            ms = int(vboardjs.rtc_ms())     # a string: JS numbers past 2**31 do not cross as ints
            s = ms // 1000
            days = s // 86400
            y, m, d = _civil(days)
            rem = s - days * 86400
            return (y, m, d, (days + 3) % 7, rem // 3600, rem // 60 % 60, rem % 60,
                    (ms % 1000) * 1000)
        sub = t[7] if len(t) > 7 else 0
        ms = ((_days(t[0], t[1], t[2]) * 86400 + t[4] * 3600 + t[5] * 60 + t[6]) * 1000
              + sub // 1000)
        vboardjs.set_rtc_ms(str(ms))
