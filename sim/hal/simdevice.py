# The virtual recorder: the real firmware on a simulated board (clock, camera, power-cut
# storage, buttons, LED/display). Runs the same on MicroPython (the WebAssembly VM) and
# CPython.
#
# A shift is a list of steps, each a list:
#   ["start"], ["stop"]              the officer starts / ends recording (the workflow's calls)
#   ["run", s]                       s seconds of device time pass (the workflow ticks)
#   ["press", button]                a short press (record, mark, voice, notice), then 0.3 s
#   ["hold", button, s]              the button held for s seconds, then 0.3 s; holding
#                                    VOICE, the officer speaks: the statement for the reason
#                                    of each interruption waiting for one (sim/hal/voicepcm.py)
#                                    goes into the microphone from the press, cut to end
#                                    0.2 s before the release; nothing is said if none waits
#   ["battery", pct], ["temp", c]    sensor readings from now on
#   ["fault"], ["heal"]              the camera fails / works again
#   ["powercut"]                     power is pulled: nothing is shut down, RAM is lost,
#                                    the device boots again
#   ["dock", {...}]                  the station, in-process through the firmware's dock-link
#                                    code: "receipt": true (a signed custody receipt up to
#                                    the last record), "time": ms (TIME_SET to that RTC, or
#                                    "true" for the simulator's true time), "assign":
#                                    [officer, unit] or null, "check": true
#   ["refuse", op, target], ["reboot"], ["officer", id]
# run_shift() boots the device, runs the steps and shuts down cleanly; a PowerCut from the
# storage model ends it early.
import binascii
import hashlib

from sealcamfw import cbor
from sealcamfw import cose
from sealcamfw import device
from sealcamfw import devkey
from sealcamfw import ed25519
from sealcamfw import hal
from sealcamfw import link
from sealcamfw import logread
from sealcamfw import selfcheck
from sealcamfw import store as st
from sealcamfw import workflow
from sim.hal.powerfs import PowerCut, PowerFS
from sim.hal.simcam import SimCamera
from sim.hal.simmic import SimMic
from sim.hal.simclock import SimClock
from sim.hal.simui import SimButtons, SimSensors, SimUI

STATION_SEED = b"sealcam-sim-station-key-seed-001"[:32]   # the in-process dock's key


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
             serial=None, battery=None, drift_ppm=0, rtc_ms=None):
    """The simulated board. Optional parts for the dock link: `serial` (a serial port
    object with read(n)/write(buf), see simserial.py) becomes hal.serial; `battery` (a
    start percentage, or an object with percent()) becomes hal.battery() -> percent;
    `drift_ppm` sets the RTC drift of the default clock."""
    clock = clock or SimClock(rtc_ms or 1795000000000, drift_ppm)
    rnd = seeded_random(seed) if seed is not None else hal.board_random
    sd = PowerFS(sd_root, model, cut_at, capacity)
    flash = PowerFS(flash_root, model)
    cam = SimCamera(clock, bitrate, fps, device_id, officer)
    mic = SimMic(clock, seed or 1)
    h = hal.HAL(clock, rnd, sd, flash, cam, device_id, mic=mic)
    h.buttons = SimButtons(clock)
    h.ui = SimUI(clock, mic)        # the speaker's phrases reach the microphone
    h.sensors = SimSensors()
    h.temperature = h.sensors.temperature
    if serial is not None:
        h.serial = serial
    if battery is not None:
        if not hasattr(battery, "percent"):
            battery = SimBattery(clock, battery)
        h.battery = battery.percent
    return h


def dock(h, s, rec, opts, summary, wf=None):
    """The station's side of a dock cycle, in-process: the firmware's own receipt check
    (link.Link), TIME_SET, ASSIGN and self-check (SPEC §10.7)."""
    sk = ed25519.secret(STATION_SEED)
    pub = ed25519.public(sk)
    link.add_trusted(h.flash, pub)
    if opts.get("receipt") and not rec.recording:
        lnk = link.Link(h, s, rec, workflow=wf)
        covered = s.seq - 1
        body = {1: h.device, 2: covered, 3: hashlib.sha256(s.find(covered)).digest(),
                4: lnk.last_receipt + 1, 5: h.clock.rtc_ms(), 6: "sim-archive"}
        kid = devkey.fingerprint(pub)
        r = cose.sign1(sk, cose.protected(kid.encode()), cbor.dumps(body))
        res = lnk._receipt({1: r})
        summary.setdefault("receipts", []).append([covered, res[1]])
    t = opts.get("time")
    if t is not None:
        if t == "true":
            t = h.clock.true_rtc_ms()
        r = s.set_time(int(t))
        summary.setdefault("time_sets", []).append([r[0], r[1], r[3], r[5]])
    if "assign" in opts:
        a = opts["assign"]
        s.assign(a[0] if a else None, a[1] if a else None, devkey.fingerprint(pub))
        h.camera.officer = s.officer
    if opts.get("check"):
        c = selfcheck.run(h, s, rec.cfg)
        summary.setdefault("checks", []).append([c[1], c[2]])


STATEMENT_END_MS = 200      # the officer stops speaking this long before letting go


def statement(h, s, wf, hold_ms, summary):
    """The officer, pressing VOICE for hold_ms, states the reason of each interruption
    waiting for a statement, in order (the reasons as the chain records them), into the
    microphone; cut to end STATEMENT_END_MS before the release. Returns the reasons."""
    reasons = []
    for q in wf.waiting():
        rec = s.find(q)
        r = logread.body_of(rec).get(st.K_REASON) if rec is not None else None
        if r is not None:
            reasons.append(r)
    if not reasons:
        return reasons
    from sim.hal import voicepcm             # loaded on first use: the assets are large
    pcm = b"".join(voicepcm.pcm(r if r in voicepcm.TEXT else "other") for r in reasons)
    room = 2 * (hold_ms - STATEMENT_END_MS) * voicepcm.RATE // 1000
    pcm = pcm[:room] if room > 0 else b""
    h.mic.say(pcm)
    summary.setdefault("statements", []).append([h.clock.mono_ms(), reasons, len(pcm) // 2])
    return reasons


def shift(h, steps, settings=None, officer=None, log=None, summary=None):
    """Boot, run steps, shut down; a generator that yields after every capture tick.
    Fills `summary` (a dict). PowerCut propagates."""
    s, rec = device.boot(h, settings, officer)
    wf = workflow.Workflow(h, s, rec, rec.cfg)
    summary.update({"boots": 1, "recovered": [], "refused": 0})
    if s.recovered:
        summary["recovered"].append(s.recovered)
    for step in steps:
        op = step[0]
        if op == "start":
            wf.start("button")
        elif op == "run":
            for _ in wf.ticks(int(step[1] * 1000)):
                yield
        elif op == "stop":
            wf.stop("button")
        elif op == "press" or op == "hold":
            ms = 100 if op == "press" else int(step[2] * 1000)
            h.buttons.press(step[1], ms)
            if op == "hold" and step[1] == "voice" and h.mic is not None:
                statement(h, s, wf, ms, summary)
            for _ in wf.ticks(ms + 300):
                yield
        elif op == "battery":
            h.sensors.battery_pct = step[1]
            h.battery = h.sensors.battery
        elif op == "temp":
            h.sensors.temp = step[1]
        elif op == "fault":
            h.camera.fault = True
        elif op == "heal":
            h.camera.fault = False
        elif op == "dock":
            try:
                dock(h, s, rec, step[1], summary, wf)
            except (OSError, link.LinkError) as e:   # the link would answer 500 / 4xx
                summary.setdefault("dock_errors", []).append(str(e))
        elif op == "refuse":
            try:
                s.request(step[1], step[2], "api")
            except st.Refused as e:
                summary["refused"] += 1
                if log:
                    log(str(e))
        elif op == "officer":
            s.officer = officer = step[1]
            h.camera.officer = step[1]
        elif op == "reboot" or op == "powercut":
            if op == "reboot":
                device.shutdown(s, rec)
            else:
                h.sd.power_cycle()     # unflushed writes are lost with the RAM
            h.clock.reboot()
            s, rec = device.boot(h, settings, officer)
            wf = workflow.Workflow(h, s, rec, rec.cfg)
            summary["boots"] += 1
            if s.recovered:
                summary["recovered"].append(s.recovered)
        else:
            raise ValueError("unknown step: %r" % (step,))
    device.shutdown(s, rec)
    summary["records"] = s.seq
    summary["device"] = h.device
    summary["pubkey"] = binascii.hexlify(ed25519.public(s.sk)).decode()
    summary["events"] = wf.events
    summary["waiting"] = wf.waiting()
    summary["ui"] = [list(e) for e in h.ui.log]


def run_steps(h, steps, settings=None, officer=None, log=None):
    """Boot, run steps, shut down. Returns a summary dict. PowerCut propagates."""
    summary = {}
    for _ in shift(h, steps, settings, officer, log, summary):
        pass
    return summary

