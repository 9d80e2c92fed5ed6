import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Firmware modules are flat (as on a board's filesystem): put them on sys.path, with the
# simulator's HAL parts and the firmware test helpers.
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "sim", "hal"),
          os.path.join(ROOT, "tests", "firmware"), os.path.join(ROOT, "tests"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)
