# The virtual board's `time` (installed in the VM's /rom; board.mjs puts it in sys.modules
# as `time` at boot): the VM's own time module, except that sleeping hands the time to the
# host (sim/mpvm/board.mjs waits without burning a core) and watches the port meanwhile,
# so a Ctrl-C interrupts a sleeping program as on a board. The VM's own sleep busy-waits
# and sees no input. Runs on the MicroPython VM only.
import time as _time
from time import *  # noqa: F401,F403

import vboardjs


def sleep_ms(ms):
    if ms > 0:
        vboardjs.sleep_ms(int(ms))


def sleep(s):
    sleep_ms(int(s * 1000))


def sleep_us(us):
    if us >= 1000:
        sleep_ms(us // 1000)
        us %= 1000
    if us > 0:
        _time.sleep_us(us)
