"""Shared by the power-cut and tamper tests: record a scripted shift on the virtual
recorder (CPython runtime, in process) and read a store's chain with cbor2."""
import glob
import io
import os

import cbor2

from sim.hal import simdevice
from sim.hal.powerfs import PowerCut

# several segments (rollover), checkpoints, stop/start, a refused delete
SHIFT = [["start"], ["run", 7], ["stop"], ["refuse", "delete", "m/00000001.mkv"],
         ["start"], ["run", 5], ["stop"]]
SETTINGS = {"chunk": 4096, "checkpoint_s": 2, "segment_s": 4, "tick_ms": 500, "prerecord_s": 0}
HAL_ARGS = {"bitrate": 40000, "fps": 2, "seed": 11}
# the officer's shift on a small card (SPEC §10): two segments, a custody receipt, then
# recording that releases them for room, an interruption, the resume and its statement
WORKFLOW = [["start"], ["run", 4], ["stop"], ["start"], ["run", 4], ["stop"],
            ["dock", {"receipt": True}],
            ["press", "record"], ["run", 3], ["hold", "record", 2], ["press", "record"],
            ["press", "record"], ["hold", "voice", 2], ["run", 3], ["press", "record"]]
WORKFLOW_SETTINGS = dict(SETTINGS, low_water=560000, prerecord_s=2, bitrate=80000)
WORKFLOW_HAL = {"capacity": 720000}   # 16 kHz audio: 32 kB/s besides the video


def record(root, steps=SHIFT, cut_at=None, model="littlefs", settings=SETTINGS, fail_at=None,
           **hal):
    """Run steps on a (possibly power-cut) virtual recorder in root/sd, root/flash.
    Returns (summary or None if power was cut, number of storage steps taken). fail_at:
    one transient I/O error at that storage step."""
    sd, flash = os.path.join(root, "sd"), os.path.join(root, "flash")
    os.makedirs(sd, exist_ok=True)
    os.makedirs(flash, exist_ok=True)
    h = simdevice.make_hal(sd, flash, model=model, cut_at=cut_at, **dict(HAL_ARGS, **hal))
    h.sd.fail_at = fail_at
    try:
        summary = simdevice.run_steps(h, steps, settings)
    except PowerCut:
        return None, h.sd.steps
    return summary, h.sd.steps


def chain(sd):
    """[(record bytes, body)] of every complete record in sd/rec/*.log, in file order."""
    out = []
    for path in sorted(glob.glob(os.path.join(sd, "rec", "*.log"))):
        data = open(path, "rb").read()
        buf = io.BytesIO(data)
        while buf.tell() < len(data):
            start = buf.tell()
            try:
                item = cbor2.CBORDecoder(buf).decode()
            except Exception:
                break  # torn tail
            out.append((data[start:buf.tell()], cbor2.loads(item.value[2])))
    return out
