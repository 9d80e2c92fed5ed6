# FAKE of MicroPython's `esp32` module, for tests/test_board_port.py: only the chip's
# temperature sensor the board port reads (esp32.mcu_temperature() on ESP32-S2/S3/C3).
TEMP = 41               # (fake only) deg C mcu_temperature() gives


def mcu_temperature():
    return TEMP
