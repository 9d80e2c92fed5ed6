# Boots the firmware's main.py with the esp32s3_cam board port on the FAKE machine API of
# this folder and plays a short shift as the hardware would: buttons pressed (with contact
# bounce), timers and I2S callbacks fired, time passing for real. Prints one line
# "RESULT {json}" of what the fake hardware saw, for tests/test_board_port.py. Runs on
# CPython and on the MicroPython VM (sim/vm.py): arguments CARD PREFIX, where CARD is the
# folder behind the fake SD card and PREFIX goes before the board's mount points ("" on the
# VM, whose file system is the board's; a host folder on CPython).
import json

import board
from sealcamfw import device
import machine
import main

try:
    import jshal                       # the VM's runner
    ARGS = list(jshal.argv())
except ImportError:
    import sys
    ARGS = sys.argv[1:]

CARD, PREFIX = ARGS[0], ARGS[1]
machine.SDCard.backing = CARD
if "nocard" in ARGS[2:]:
    machine.SDCard.present = False     # the slot is empty
if "nocamera" in ARGS[2:]:
    import camera
    camera.FAIL = "no sensor found"    # the camera does not answer at boot

if PREFIX:
    h, s, rec, wf, lnk = main.boot(board.make_hal(PREFIX))
else:
    h, s, rec, wf, lnk = main.boot()   # main's own choice: board.make_hal()

clock = h.clock
edges = []                             # what the board's buttons reported, in order
_poll = h.buttons.poll


def _logged_poll():
    e = _poll()
    edges.extend(e)
    return e


h.buttons.poll = _logged_poll
tick = rec.cfg["tick_ms"]
ticks = [0]


def run(ms):
    """The board's main loop (device.serve_forever) for ms of real time, with the fake
    hardware's callbacks fired between passes."""
    end = clock.mono_ms() + ms
    due = clock.mono_ms() + tick
    while True:
        lnk.service()
        machine.run_irqs()
        now = clock.mono_ms()
        if now >= end:
            return
        if now >= due:
            wf.tick()
            ticks[0] += 1
            due = now + tick
        else:
            clock.sleep_ms(min(5, due - now))


def press(name, ms, bounce=True):
    pin = machine.pins[dict(board.BUTTONS)[name]]
    pin.drive(0)
    if bounce:                         # contact bounce: three edges within a millisecond
        pin.drive(1)
        pin.drive(0)
    run(ms)
    pin.drive(1)
    if bounce:
        pin.drive(0)
        pin.drive(1)


boot_seq = s.seq
t_rtc = 1796000000123
clock.set_rtc(t_rtc)
rtc_back = clock.rtc_ms()
run(400)                               # standby: the pre-record ring fills
press("record", 150)                   # RECORD: a segment starts
# (with no card or no camera the start is refused or interrupted at once: nothing records,
# so half a second shows as much as the 2.2 s of a working board's segment)
run(500 if "nocard" in ARGS[2:] or "nocamera" in ARGS[2:] else 2200)
press("mark", 120)                     # MARK: a bookmark
run(300)
press("notice", 100)                   # NOTICE: a mark, and the phrase on the speaker
run(300)
press("record", 150)                   # RECORD again: the segment ends
run(400)
device.shutdown(s, rec)

mic = machine.i2s.get(0)
spk = machine.i2s.get(1)
cam = h.camera
led = [px[0] for px in h.ui.pixel.shown] if h.ui is not None else []
out = {
    "device": h.device, "reset_cause": h.reset_cause, "board": h.board,
    "boot_seq": boot_seq, "seq": s.seq, "card_error": getattr(s, "card_error", None),
    "events": wf.events, "edges": [[e[0], bool(e[1]), e[2]] for e in edges],
    "ticks": ticks[0], "mono_end": clock.mono_ms(),
    "rtc_set": t_rtc, "rtc_back": rtc_back, "rtc_tuple": list(machine.RTC().datetime()),
    "mic": None if mic is None else {"kw": {k: (v if isinstance(v, int) else None)
                                            for k, v in mic.kw.items()},
                                     "read": machine.read_total.get(0, 0),
                                     "opened": machine.opened.get(0, 0), "open": mic.open},
    "mic_hal": h.mic is not None,
    "speaker": None if spk is None else {"written": spk.written, "writes": spk.writes},
    "camera": {"frames": cam.cam.frames, "freed": cam.cam.freed, "kw": cam.cam.kw,
               "width": cam.WIDTH, "height": cam.HEIGHT} if hasattr(cam, "cam") else
              {"why": cam.why},
    "sdcard": machine.SDCard.made,
    "store_root": getattr(h.sd, "root", None), "card_why": getattr(h.sd, "why", None),
    "flash_root": h.flash.root,
    "led": led,
    "motor": machine.pins[board.MOTOR].history,
    "battery": h.battery(), "temperature": h.temperature(),
    "ui_text": h.ui.text if h.ui is not None else None,
    "missing_phrase": h.ui.speaker.missing if h.ui is not None else None,
}
print("RESULT " + json.dumps(out))
