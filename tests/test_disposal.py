"""Approved disposal (SPEC §9.2; issue 11 item 5; R1, R12): the only code path that removes an
archived object. A real archive made by real offloads over a pty; the disposal appends one
signed `segment_disposed` event, then removes the segment's media and index; verify says
the segment was disposed with approval (not missing, not NOT_OK) while its signed records
still verify; any other removal is still NOT_OK."""
import json
import os
import random
import subprocess
import sys

import pytest

from host_tools import station
from host_tools.archive import Archive, ArchiveError, DeviceLocked
from host_tools.archive.dispose import DisposalRefused
from host_tools.archive_verify import verify_archive
from host_tools.offload import offload
from host_tools.tlog.replay import replay
from host_tools.verify import NOT_OK, OK

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import fakedev  # noqa: E402
import refwriter as rw  # noqa: E402

DEV = "SC-00A1B2C3"
REQ = {"id": "R-2029-0001", "by": "clerk1", "at": "2029-01-02T08:00:00Z",
       "reason": "retention of 24 months ended", "class": "ordinary",
       "expired_on": "2028-12-31"}
OK_BY = {"by": "head1", "at": "2029-01-03T09:00:00Z"}


def sealcam(*args):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An archive after one real offload: two closed segments (an interruption between),
    the first also with a partial prefix linked by an earlier offload; a receipt."""
    base = tmp_path_factory.mktemp("disp")
    arch = base / "arch"
    station.init(arch)
    s = rw.RefStore(base / "sd", chunk=65536)
    rnd = random.Random(11)
    s.boot()
    s.rec_start()
    s.write(rnd.randbytes(140_000))
    s.checkpoint()
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        sm = offload(d.port, arch, register=True)     # segment 1 open: its prefix linked
        assert sm.exit_code in (0, 4, 5) or sm.errors == [], sm.errors
        s.write(rnd.randbytes(60_000))
        s.checkpoint()
        s.interrupt("weather")
        s.rec_start()
        s.write(rnd.randbytes(50_000))
        s.close()
        s.rec_stop()
        sm = offload(d.port, arch)
        assert sm.exit_code == 0, sm.errors
    finally:
        d.stop()
    return base


@pytest.fixture
def arch(made, tmp_path):
    subprocess.run(["cp", "-a", str(made / "arch"), str(tmp_path / "arch")], check=True)
    return tmp_path / "arch"


def segs(arch):
    with Archive(arch, readonly=True) as a:
        return {s["segment"]: s for s in a.segments(DEV)}


def first_seg(arch):
    return min(segs(arch))


def media_of(arch, seg):
    return os.path.join(arch, "devices", DEV, *segs(arch)[seg]["media"].split("/"))


def dev_entry(res):
    return next(e for e in res["devices"] if e["device"] == DEV)


def test_dispose_then_verify_ok_with_disposed_marks(arch):
    assert verify_archive(arch)["verdict"] == OK
    seg = first_seg(arch)
    row = segs(arch)[seg]
    media = media_of(arch, seg)
    obj = os.path.join(arch, "objects", row["object"][:2], row["object"][2:])
    assert os.path.exists(media) and os.path.exists(obj)
    with Archive(arch) as a:
        before = a.log().size
        e = a.dispose(DEV, seg, request=REQ, approval=OK_BY)
        after = a.log().size
    assert after == before + 1                          # ONE signed event
    assert e["type"] == "segment_disposed" and e["segment"] == seg
    assert {o["path"] for o in e["objects"]} == {row["media"], row["media"][:-4] + ".idx"}
    assert len([o for o in e["objects"] if o["path"] == row["media"]]) >= 2   # + the prefix
    assert not os.path.lexists(media) and not os.path.lexists(media[:-4] + ".idx")
    for o in e["objects"]:                              # every object named left the archive
        h = o["sha256"].hex()
        assert not os.path.exists(os.path.join(arch, "objects", h[:2], h[2:]))
    # the records stay: rec/ logs and head.cbor untouched
    assert os.listdir(os.path.join(arch, "devices", DEV, "rec"))
    assert os.path.exists(os.path.join(arch, "devices", DEV, "head.cbor"))
    res = verify_archive(arch)
    assert res["verdict"] == OK, res["reasons"] + dev_entry(res)["reasons"]
    ent = dev_entry(res)
    row = next(r for r in ent["report"].segments if r.segment == seg)
    assert row.verdict == OK and set(row.marks) == {"D"}
    assert "disposed with approval (request R-2029-0001 by clerk1, approved by head1 at " \
           "2029-01-03T09:00:00Z" in row.reason
    assert ent["disposed"][0]["request"] == "R-2029-0001" and ent["disposed"][0]["finished"]
    # the other segment is verified as before
    other = [r for r in ent["report"].segments if r.segment != seg]
    assert other and all(r.verdict == OK and set(r.marks) == {"."} for r in other)
    p = sealcam("verify", arch)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "disposed with approval" in p.stdout and "D disposed with approval" in p.stdout
    p = sealcam("verify", arch, "--json")
    j = json.loads(p.stdout)
    assert j["verdict"] == OK and j["devices"][0]["disposed"][0]["segment"] == seg


def test_event_is_signed_and_replayed(arch):
    seg = first_seg(arch)
    with Archive(arch) as a:
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    p = sealcam("station", "checkpoint", "--archive", arch, "--out", arch / "cp.txt")
    assert p.returncode == 0, p.stderr
    with Archive(arch, readonly=True) as a:
        lg = a.log()
        acc = lg.account(station.station_pub(arch))
        assert acc.problem is None and acc.signed == lg.size   # under the signed checkpoint
        last = list(lg.entries(lg.size - 1, lg.size))[0][2]
        assert last["type"] == "segment_disposed" and last["requested_by"] == "clerk1"
        assert last["approved_by"] == "head1" and last["request"] == "R-2029-0001"
        assert last["class"] == "ordinary" and last["expired_on"] == "2028-12-31"
        st = replay(lg)
    assert not st.problems
    info = st.disposed[DEV][seg]
    assert info["approved_by"] == "head1" and info["entry"] == lg.size - 1
    assert not any(p in st.objects[DEV] for p, _h in info["objects"])


def test_object_removed_by_hand_without_event_is_not_ok(arch):
    seg = first_seg(arch)
    media = media_of(arch, seg)
    os.unlink(media)
    row = segs(arch)[seg]
    os.unlink(os.path.join(arch, "objects", row["object"][:2], row["object"][2:]))
    res = verify_archive(arch)
    assert res["verdict"] == NOT_OK
    text = " ".join(dev_entry(res)["reasons"])
    assert "missing" in text and "disposed" not in text


def test_crash_after_event_before_unlink_is_finished(arch):
    seg = first_seg(arch)
    media = media_of(arch, seg)
    with Archive(arch) as a:
        orig = a._remove_disposed

        def cut(*args, **kw):
            raise KeyboardInterrupt("power cut after the event")
        a._remove_disposed = cut
        with pytest.raises(KeyboardInterrupt):
            a.dispose(DEV, seg, request=REQ, approval=OK_BY)
        a._remove_disposed = orig
    assert os.path.exists(media)                        # the event is there, nothing removed
    res = verify_archive(arch)                          # never called tampered
    assert res["verdict"] == OK, res["reasons"] + dev_entry(res)["reasons"]
    assert any("is not finished" in n for n in dev_entry(res)["notes"])
    assert dev_entry(res)["disposed"][0]["finished"] is False
    # half-finished too: the view link gone, the object still there
    os.unlink(media)
    assert verify_archive(arch)["verdict"] == OK
    with Archive(arch) as a:
        done = a.finish_disposals()
        assert done == [(DEV, seg)]
        assert a.finish_disposals() == []               # idempotent
        e = a.dispose(DEV, seg, request=REQ, approval=OK_BY)    # a retry: the same event
        assert e["request"] == REQ["id"]
        n = a.log().size
    with Archive(arch, readonly=True) as a:
        assert a.log().size == n
        st = a.disposal_state()
        assert not a.disposal_leftovers(DEV, st.disposed[DEV][seg], st)
    res = verify_archive(arch)
    assert res["verdict"] == OK and dev_entry(res)["disposed"][0]["finished"]


def test_a_pending_disposal_with_another_file_in_its_place_is_not_ok(arch):
    seg = first_seg(arch)
    media = media_of(arch, seg)
    with Archive(arch) as a:
        a._remove_disposed = lambda *x: None
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    os.unlink(media)
    with open(media, "wb") as f:
        f.write(b"not the recording")
    assert verify_archive(arch)["verdict"] == NOT_OK
    with Archive(arch) as a, pytest.raises(ArchiveError, match="left in place"):
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    assert os.path.exists(media)


def test_refusals(arch, made):
    seg = first_seg(arch)
    with Archive(arch) as a:
        n = a.log().size
        with pytest.raises(DisposalRefused, match="may not approve"):
            a.dispose(DEV, seg, request=REQ, approval={"by": "clerk1", "at": "x"})
        with pytest.raises(DisposalRefused, match="no such segment"):
            a.dispose(DEV, 9999, request=REQ, approval=OK_BY)
        with pytest.raises(DisposalRefused, match="never registered"):
            a.dispose("SC-FFFFFFFF", seg, request=REQ, approval=OK_BY)
        with pytest.raises(DisposalRefused, match="reason"):
            a.dispose(DEV, seg, request=dict(REQ, reason="a\x1b[2Jb"), approval=OK_BY)
        with pytest.raises(DisposalRefused, match="not a device id"):
            a.dispose("../x", seg, request=REQ, approval=OK_BY)
        # an open segment and one not fully offloaded
        a.db.execute("UPDATE segments SET closed_by = NULL WHERE device = ? AND segment = ?",
                     (DEV, seg))
        with pytest.raises(DisposalRefused, match="still open"):
            a.dispose(DEV, seg, request=REQ, approval=OK_BY)
        a.db.execute("UPDATE segments SET closed_by = ?, state = 'partial' WHERE device = ? "
                     "AND segment = ?", (segs(arch)[seg]["segment"] + 5, DEV, seg))
        with pytest.raises(DisposalRefused, match="not fully offloaded"):
            a.dispose(DEV, seg, request=REQ, approval=OK_BY)
        assert a.log().size == n                        # nothing logged
    # restore the rows, then a device under an offload's lock
    subprocess.run(["rm", "-rf", str(arch)], check=True)
    subprocess.run(["cp", "-a", str(made / "arch"), str(arch)], check=True)
    with Archive(arch) as a:
        lock = a.lock_device(DEV)
        try:
            with Archive(arch) as b, pytest.raises(DeviceLocked, match="being offloaded"):
                b.dispose(DEV, seg, request=REQ, approval=OK_BY)
        finally:
            a.unlock(lock)
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
        with pytest.raises(DisposalRefused, match="disposed already"):
            a.dispose(DEV, seg, request=dict(REQ, id="R-other"), approval=OK_BY)
    assert os.path.exists(media_of(arch, max(segs(arch))))


def test_symlinked_view_folder_is_never_followed(arch, tmp_path):
    seg = first_seg(arch)
    m = os.path.join(arch, "devices", DEV, "m")
    elsewhere = tmp_path / "elsewhere"
    os.rename(m, elsewhere)
    os.symlink(elsewhere, m)
    with Archive(arch) as a, pytest.raises(ArchiveError, match="symbolic"):
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    assert len(os.listdir(elsewhere)) == 4              # nothing removed through the link


def test_clip_of_a_disposed_segment_says_disposed(arch, tmp_path):
    seg = first_seg(arch)
    with Archive(arch) as a:
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    p = sealcam("clip", "--archive", arch, "--device", DEV, "--out", tmp_path / "c.mkv",
                "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
    assert p.returncode != 0
    assert "disposed with approval (request R-2029-0001" in p.stderr + p.stdout


def test_reindex_keeps_a_disposed_segment_complete(arch):
    seg = first_seg(arch)
    with Archive(arch) as a:
        a.dispose(DEV, seg, request=REQ, approval=OK_BY)
    p = sealcam("station", "reindex", "--archive", arch)
    assert p.returncode == 0, p.stderr
    row = segs(arch)[seg]
    assert row["state"] == "complete"                   # never transferred again
    assert verify_archive(arch)["verdict"] == OK


def test_forged_disposal_event_without_the_key_is_not_ok(arch):
    """A disposal event appended by hand (no station key to sign it) is not part of the
    signed log: the removed media is missing, NOT_OK."""
    import cbor2
    seg = first_seg(arch)
    row = segs(arch)[seg]
    e = {"type": "segment_disposed", "at": "2029", "device": DEV, "segment": seg,
         "objects": [{"path": row["media"], "sha256": bytes.fromhex(row["object"])}],
         "request": "R", "requested_by": "a", "approved_by": "b", "approved_at": "t",
         "reason": "r", "class": "ordinary", "expired_on": None}
    b = cbor2.dumps(e, canonical=True)
    with open(os.path.join(arch, "log", "entries"), "ab") as f:
        f.write(len(b).to_bytes(4, "big") + b)
    os.unlink(media_of(arch, seg))
    assert verify_archive(arch)["verdict"] == NOT_OK


def test_a_signed_disposal_naming_a_record_log_is_reported_and_removes_nothing(arch):
    """Replay accepts a disposal only of a segment's media and index, objects the log
    linked there: an entry naming rec/ (even signed by the station) is a problem, and
    nothing it names is ever removed."""
    from host_tools.tlog import events
    seg = first_seg(arch)
    with Archive(arch) as a:
        st = a.disposal_state()
        rel, sha = next((p, h) for p, h in st.objects[DEV].items() if p.startswith("rec/"))
        a._log_event(events.segment_disposed(
            "2029-01-03T09:00:00.000+00:00", DEV, seg, [{"path": rel, "sha256": sha}],
            request="R-bad", requested_by="x", approved_by="y", approved_at="t",
            reason="r", class_="ordinary", expired_on=None))
        assert a.finish_disposals() == []
    assert os.path.exists(os.path.join(arch, "devices", DEV, *rel.split("/")))
    res = verify_archive(arch)
    assert res["verdict"] == NOT_OK
    assert any("not the media or index of segment %d" % seg in r for r in res["reasons"])
