# The virtual recorder: the real firmware on a simulated board (clock, camera, power-cut
# storage). Runs the same on MicroPython (the WebAssembly VM) and CPython.
#
# A shift is a list of steps, each a list: ["start"], ["run", seconds], ["stop"],
# ["refuse", op, target], ["reboot"], ["officer", id]. run_shift() boots the device,
# runs the steps and shuts down cleanly; a PowerCut from the storage model ends it early.
import binascii
import hashlib

import device
import ed25519
import hal
import store as st
from powerfs import PowerCut, PowerFS
from simcam import SimCamera
from simclock import SimClock


def seeded_random(seed):
    state = [0]

    def random(n):
        out = b""
        while len(out) < n:
            out += hashlib.sha256(b"sealcam-sim-rng" + str(seed).encode() + str(state[0]).encode()).digest()
            state[0] += 1
        return out[:n]
    return random


class SimBattery:
    """A battery that drains slowly with (device) time: `percent()` -> int 0..100."""

    def __init__(self, clock, percent=87, drain_per_hour=6):
        self.clock = clock
        self.start = percent
        self.drain = drain_per_hour
        self.mono0 = clock.mono_ms()

    def percent(self):
        used = (self.clock.mono_ms() - self.mono0) * self.drain // 3600000
        p = self.start - used
        return 0 if p < 0 else (100 if p > 100 else int(p))


def make_hal(sd_root, flash_root, device_id="SC-SIM0001", model="littlefs", cut_at=None,
             capacity=None, bitrate=2000000, fps=10, seed=None, clock=None, officer=None,
             serial=None, battery=None, drift_ppm=0):
    """The simulated board. Optional parts for the dock link: `serial` (a serial port
    object with read(n)/write(buf), see simserial.py) becomes hal.serial; `battery` (a
    start percentage, or an object with percent()) becomes hal.battery() -> percent;
    `drift_ppm` sets the RTC drift of the default clock."""
    clock = clock or SimClock(drift_ppm=drift_ppm)
    rnd = seeded_random(seed) if seed is not None else hal.board_random
    sd = PowerFS(sd_root, model, cut_at, capacity)
    flash = PowerFS(flash_root, model)
    cam = SimCamera(clock, bitrate, fps, device_id, officer)
    h = hal.HAL(clock, rnd, sd, flash, cam, device_id)
    if serial is not None:
        h.serial = serial
    if battery is not None:
        if not hasattr(battery, "percent"):
            battery = SimBattery(clock, battery)
        h.battery = battery.percent
    return h


def shift(h, steps, settings=None, officer=None, log=None, summary=None):
    """Boot, run steps, shut down; a generator that yields after every capture tick.
    Fills `summary` (a dict). PowerCut propagates."""
    s, rec = device.boot(h, settings, officer)
    summary.update({"boots": 1, "recovered": [], "refused": 0})
    if s.recovered:
        summary["recovered"].append(s.recovered)
    for step in steps:
        op = step[0]
        if op == "start":
            rec.start("button")
        elif op == "run":
            for _ in rec.ticks(int(step[1] * 1000)):
                yield
        elif op == "stop":
            rec.stop("button")
        elif op == "refuse":
            try:
                s.request(step[1], step[2], "api")
            except st.Refused as e:
                summary["refused"] += 1
                if log:
                    log(str(e))
        elif op == "officer":
            s.officer = step[1]
            h.camera.officer = step[1]
        elif op == "reboot":
            device.shutdown(s, rec)
            h.clock.reboot()
            s, rec = device.boot(h, settings, s.officer)
            summary["boots"] += 1
            if s.recovered:
                summary["recovered"].append(s.recovered)
        else:
            raise ValueError("unknown step: %r" % (step,))
    device.shutdown(s, rec)
    summary["records"] = s.seq
    summary["device"] = h.device
    summary["pubkey"] = binascii.hexlify(ed25519.public(s.sk)).decode()


def run_steps(h, steps, settings=None, officer=None, log=None):
    """Boot, run steps, shut down. Returns a summary dict. PowerCut propagates."""
    summary = {}
    for _ in shift(h, steps, settings, officer, log, summary):
        pass
    return summary

