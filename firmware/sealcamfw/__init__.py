# sealcam's recorder firmware as a MicroPython package (firmware/manifest.py): on a board it
# lives in /lib/sealcamfw/ (or is frozen into the image) and main.py, at the board's root,
# imports it as `from sealcamfw import device`. The modules import each other the same way.
