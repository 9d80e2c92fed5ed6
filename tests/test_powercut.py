"""Power cuts at every storage step (write, flush, remove, rename), under the littlefs and
the FAT model: after each cut and a reboot the store verifies OK or OK_WITH_MISSING_INFO,
every record flushed before the cut is still there, and a segment that was open when the
power went has a RECOVERY record. And one transient I/O error at every step of an
officer's shift: nothing escapes the recorder's loop and the card still verifies.

Which steps: every record boundary and head update, the chunks around each, each position of
the chunk cycle, and a seeded sample of the rest (powercut_util.cut_points says why that
is every distinct case; SEALCAM_POWERCUT_ALL=1 faults every step)."""
import os
import tempfile
import traceback

import pytest

from host_tools.verify import verify_store
from powercut_util import (SETTINGS, SHIFT, WORKFLOW, WORKFLOW_HAL, WORKFLOW_SETTINGS, chain,
                           cut_points, record, sweep_seed)

# Each sweep makes thousands of small stores; the cuts are modelled in memory by powerfs
# (sim/hal/powerfs.py), not by the disk, so a RAM folder changes nothing they test and
# spares the disk's sync latency.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

OPEN_TYPES = {2}          # REC_START
CLOSE_TYPES = {4, 7}      # SEGMENT, RECOVERY


def open_segments(records):
    segs = set()
    for _, b in records:
        if b[0] in OPEN_TYPES:
            segs.add(b[1])
        elif b[0] in CLOSE_TYPES:
            segs.discard(b[10])
    return segs


SHIFTS = {"shift": (SHIFT, SETTINGS, {}),
          "workflow": (WORKFLOW, WORKFLOW_SETTINGS, WORKFLOW_HAL)}


@pytest.mark.parametrize("model", ["littlefs", "fat"])
@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_cut_at_every_storage_step(model, name):
    steps, settings, hal = SHIFTS[name]
    trace = []
    with tempfile.TemporaryDirectory(dir=SCRATCH) as t:
        summary, total = record(os.path.join(t, "full"), steps, model=model,
                                settings=settings, trace=trace, **hal)
        assert summary is not None and total > 100 and len(trace) == total
        if name == "workflow":   # the script does what it is for
            types = [b[0] for _, b in chain(os.path.join(t, "full", "sd"))]
            assert {8, 10, 11, 16} <= set(types), types   # RECEIPT, INTERR., VOICE, RELEASE
    seed = sweep_seed()
    cuts = cut_points(trace, seed)
    failures = []
    recovered = 0
    for k in cuts:
        with tempfile.TemporaryDirectory(dir=SCRATCH) as t:
            summary, _ = record(t, steps, cut_at=k, model=model, settings=settings, **hal)
            assert summary is None, "step %d did not cut the power" % k
            sd = os.path.join(t, "sd")
            before = chain(sd) if os.path.isdir(os.path.join(sd, "rec")) else []
            was_open = open_segments(before)
            record(t, [], model=model, settings=settings, **hal)  # reboot, recovery, stop
            after = chain(sd)
            rep = verify_store(sd)
            if rep.verdict not in ("OK", "OK_WITH_MISSING_INFO"):
                failures.append((k, rep.verdict, rep.reasons[:2]))
                continue
            if [r for r, _ in after[:len(before)]] != [r for r, _ in before]:
                failures.append((k, "records flushed before the cut changed or vanished"))
            rec_segs = {b[10] for _, b in after[len(before):] if b[0] == 7}
            if was_open - rec_segs:
                failures.append((k, "open segment(s) %s not recovered" % sorted(was_open - rec_segs)))
            recovered += len(rec_segs)
    assert not failures, "%d of %d cuts (of %d steps; SEALCAM_POWERCUT_SEED=%d) failed, " \
        "first: %r" % (len(failures), len(cuts), total, seed, failures[:3])
    assert recovered > 0  # the script does cut inside open segments


def test_one_io_error_at_every_storage_step():
    steps, settings, hal = SHIFTS["workflow"]
    trace = []
    with tempfile.TemporaryDirectory(dir=SCRATCH) as t:
        _, total = record(os.path.join(t, "full"), steps, settings=settings, trace=trace, **hal)
    seed = sweep_seed()
    cuts = cut_points(trace, seed)
    failures = []
    interrupted = 0
    for k in cuts:
        with tempfile.TemporaryDirectory(dir=SCRATCH) as t:
            try:
                summary, _ = record(t, steps, settings=settings, fail_at=k, **hal)
            except OSError as e:
                # boot itself may fail (the board then restarts); nothing after it may
                if "boot" not in [f.name for f in traceback.extract_tb(e.__traceback__)]:
                    failures.append((k, "escaped: %r" % e))
                    continue
            except Exception as e:
                failures.append((k, "escaped: %r" % e))
                continue
            record(t, [], settings=settings, **hal)    # reboot: recovery if needed
            sd = os.path.join(t, "sd")
            rep = verify_store(sd)
            if rep.verdict not in ("OK", "OK_WITH_MISSING_INFO"):
                failures.append((k, rep.verdict, rep.reasons[:2]))
            interrupted += any(b[0] == 10 and b[17] == "device_fault" for _, b in chain(sd))
    assert not failures, "%d of %d faulted steps (of %d; SEALCAM_POWERCUT_SEED=%d) failed, " \
        "first: %r" % (len(failures), len(cuts), total, seed, failures[:3])
    assert interrupted > 0      # some errors hit the media while recording
