# The esp32s3_cam board's firmware image (a MicroPython manifest,
# https://docs.micropython.org/en/latest/reference/manifest.html): the port's own frozen
# modules (neopixel among them), every sealcam firmware module with main.py, and this
# board's modules, so main.py's `import board` finds this board. Build (README.md):
#   make BOARD=ESP32_GENERIC_S3 BOARD_VARIANT=SPIRAM_OCT \
#        USER_C_MODULES=/path/to/micropython-camera-API/src/micropython.cmake \
#        FROZEN_MANIFEST=/path/to/sealcam/firmware/boards/esp32s3_cam/manifest.py
# tests/test_board_port.py checks that this lists exactly the .py modules of this folder.
include("$(PORT_DIR)/boards/manifest.py")
include("../../manifest.py")          # firmware/manifest.py (main=True: main.py too)

module("board.py")
module("boardcam.py")
module("boardio.py")
