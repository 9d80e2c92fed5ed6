# FAKE of MicroPython's `neopixel` module (WS2812 LEDs), for tests/test_board_port.py.
# write() keeps what was shown: shown[-1] is what the LED shows now.
class NeoPixel:
    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.buf = [(0, 0, 0)] * n
        self.shown = []

    def __setitem__(self, i, rgb):
        self.buf[i] = tuple(rgb)

    def __getitem__(self, i):
        return self.buf[i]

    def __len__(self):
        return len(self.buf)

    def write(self):
        self.shown.append(list(self.buf))
        if len(self.shown) > 256:
            self.shown.pop(0)
