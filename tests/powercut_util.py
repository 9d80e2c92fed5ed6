"""Shared by the power-cut and tamper tests: record a scripted shift on the virtual
recorder (CPython runtime, in process) and read a store's chain with cbor2."""
import glob
import io
import os
import random

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
           trace=None, **hal):
    """Run steps on a (possibly power-cut) virtual recorder in root/sd, root/flash.
    Returns (summary or None if power was cut, number of storage steps taken). fail_at:
    one transient I/O error at that storage step. trace: a list that gets (kind, path) of
    every storage step on the card, in order."""
    sd, flash = os.path.join(root, "sd"), os.path.join(root, "flash")
    os.makedirs(sd, exist_ok=True)
    os.makedirs(flash, exist_ok=True)
    h = simdevice.make_hal(sd, flash, model=model, cut_at=cut_at, **dict(HAL_ARGS, **hal))
    h.sd.fail_at = fail_at
    if trace is not None:
        step = h.sd._step

        def traced(kind, path):
            trace.append((kind, path))
            return step(kind, path)
        h.sd._step = traced
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


def _is_media(kind, path):
    return kind in ("write", "flush") and path.startswith("m/")


def cut_points(trace, seed, near=3, every=8):
    """The storage steps a sweep faults, from the trace of the full run (record(trace=)).
    Each fault at step k is a full run from boot, so faulting all ~1000 steps of a shift
    took minutes; about 85% of them are the .mkv/.idx write/flush cycle repeating chunk
    after chunk in the middle of a segment, cases that differ only in how many chunks came
    before. Kept, so every distinct case is still cut:
    - every step on the record log and the head, and every remove and rename: each record
      boundary (BOOT, REC_START, CHECKPOINT, SEGMENT, RECEIPT, RELEASE...), each head update;
    - every media step within `near` steps of one of those: the chunks on both sides of each
      record boundary (a segment's first chunk, the last before a checkpoint or the close,
      the first after it);
    - for each position in the chunk cycle (the step's kind and file type and those of the
      `near` steps before it) its first two occurrences;
    - of the other media steps, every `every`-th on average, drawn with `seed` (random per
      run and printed on failure, so runs together cover every step; SEALCAM_POWERCUT_SEED
      repeats a run's draw, SEALCAM_POWERCUT_ALL=1 faults every step)."""
    if os.environ.get("SEALCAM_POWERCUT_ALL"):
        return list(range(len(trace)))
    n = len(trace)
    media = [_is_media(*t) for t in trace]
    keep = set()
    for i in range(n):
        if not media[i]:
            keep.update(range(max(0, i - near), min(n, i + near + 1)))
    kinds = [(k, p.rsplit(".", 1)[-1]) for k, p in trace]
    seen = {}
    rnd = random.Random(seed)
    for i in range(n):
        if i in keep:
            continue
        sig = tuple(kinds[max(0, i - near):i + 1])
        seen[sig] = seen.get(sig, 0) + 1
        if seen[sig] <= 2 or rnd.randrange(every) == 0:
            keep.add(i)
    return sorted(keep)


def sweep_seed():
    """The sample's seed: SEALCAM_POWERCUT_SEED, or a new one each run."""
    env = os.environ.get("SEALCAM_POWERCUT_SEED")
    return int(env) if env else random.randrange(1 << 32)
