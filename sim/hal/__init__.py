# The simulated board parts (sim.hal): the virtual recorder's HAL, camera, microphone,
# clock, buttons and power-cut file system, and the virtual board's machine module. They
# run on CPython and on the MicroPython VM, where sim/vm.py copies this folder to
# /lib/sim/hal/ (sim/board.py: /rom/sim/hal/), so `from sim.hal import simdevice` works on both.
