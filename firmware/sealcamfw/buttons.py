# Officer buttons (SPEC §10.1): raw edges from the HAL into presses, holds and the voice
# button's down/up. A hold is reported once, when it has lasted long_press_ms, while the
# button is still down; its release is then not a press.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

NAMES = ("record", "mark", "voice", "notice")
PRESS = "press"
HOLD = "hold"
DOWN = "down"
UP = "up"


class Buttons:
    def __init__(self, src, long_ms):
        self.src = src              # hal.buttons: poll() -> [(name, down, mono_ms)]
        self.long_ms = long_ms
        self.t_down = {}            # name -> mono_ms it went down (absent: up)
        self.held = {}              # name -> a hold was reported for this press

    def events(self, now):
        """[(name, kind, mono_ms)]: kind PRESS / HOLD, and DOWN / UP for every edge."""
        out = []
        for name, down, t in self.src.poll():
            if name not in NAMES:
                continue
            if down:
                if name not in self.t_down:
                    self.t_down[name] = t
                    self.held[name] = False
                    out.append((name, DOWN, t))
            elif name in self.t_down:
                t0 = self.t_down.pop(name)
                out.append((name, UP, t))
                if not self.held.pop(name, False):
                    out.append((name, HOLD if t - t0 >= self.long_ms else PRESS, t))
        for name in self.t_down:
            if not self.held[name] and now - self.t_down[name] >= self.long_ms:
                self.held[name] = True
                out.append((name, HOLD, now))
        return out

    def down_since(self, name):
        return self.t_down.get(name)
