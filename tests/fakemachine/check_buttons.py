# The esp32s3_cam port's button debouncing (boardio.Buttons) on fake pins, in real time:
# prints one line "RESULT {json}" of the edges each case gave, for tests/test_board_port.py.
# Runs on CPython and on the MicroPython VM.
import json

import boardio
from sealcamfw import hal
import machine

clock = hal.BoardClock()
P = machine.Pin
rec = P(45, P.IN, P.PULL_UP)
mark = P(46, P.IN, P.PULL_UP)
b = boardio.Buttons([("record", rec), ("mark", mark)], clock)
out = {}


def wait(ms):
    clock.sleep_ms(ms)


# a glitch shorter than the debounce time: no edge at all
rec.drive(0)
wait(5)
rec.drive(1)
wait(40)
out["glitch"] = b.poll()

# a whole press between two polls (down 40 ms), each level held past the debounce time
t0 = clock.mono_ms()
rec.drive(0)
wait(40)
rec.drive(1)
wait(40)
out["short_press"] = [[n, d, t - t0] for n, d, t in b.poll()]

# a level still settling is left for the next poll
mark.drive(0)
out["settling"] = b.poll()
wait(40)
out["settled"] = [[n, d] for n, d, t in b.poll()]

# a chattering contact overflows the edge ring: the pins are read instead
for _ in range(40):
    rec.drive(0)
    rec.drive(1)
rec.drive(0)
wait(40)
out["chatter"] = [[n, d] for n, d, t in b.poll()]
out["chatter_later"] = b.poll()
print("RESULT " + json.dumps(out))
