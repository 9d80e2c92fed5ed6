"""The bulk offload (SPEC §8.8): EXPOSE on the firmware (nothing is written to an exposed
card, recording refused, the exposure ends with the session), and `sealcam offload` reading
media from the card as a disk against the virtual recorder over a real pty: the same
archive as the serial path, a hostile volume (flipped byte, short file, missing file,
symlink) caught and read over the link instead, a damaged card never archived.

The bench of its speed is `make bench` (tests/bench/bulk.py), not here.
"""
import hashlib
import json
import os
import shutil
import sqlite3

import pytest

from sealcamfw import device
from sealcamfw import ed25519
import fwtest
from sealcamfw import link
from sealcamfw import store as st
from sealcamfw import workflow
from sim.hal.simserve import CardDir
from test_link import SMALL, STATION_SEED, Host, make_receipt

from test_offload import Sim
from host_tools import keys, offload_bulk, station
from host_tools.archive import Archive
from host_tools.offload import offload
from host_tools.verify import OK, verify_store


@pytest.fixture(autouse=True)
def _sim_volume(monkeypatch):
    """The operator's opt-in to the virtual recorder's "dir" answer (SPEC §8.8)."""
    monkeypatch.setenv(offload_bulk.SIM_ENV, "1")


# --- the firmware: EXPOSE and the store's write lock (in process, CPython) --------------


class Dev:
    def __init__(self, msc=True, record_ms=3000):
        self.h, self.sd, self.flash = fwtest.sim()
        self.s, self.rec = device.boot(self.h, SMALL)
        self.rec.start()
        self.rec.run_ms(record_ms)
        self.rec.stop()
        self.station = ed25519.secret(STATION_SEED)
        link.add_trusted(self.h.flash, ed25519.public(self.station))
        self.ser = fwtest.Loop()
        self.h.serial = self.ser
        if msc:
            self.h.msc = CardDir(self.sd)
        self.wf = workflow.Workflow(self.h, self.s, self.rec, self.rec.cfg)
        self.lnk = link.Link(self.h, self.s, self.rec, workflow=self.wf)
        self.host = Host(self.lnk, self.ser)
        r = self.host.auth(self.station)
        assert r[1] == 0, r

    def call(self, op, args=None):
        return self.host.call(op, args)

    def card(self):
        """Every file of the card with its bytes' hash."""
        return {k: hashlib.sha256(v).hexdigest() for k, v in fwtest.files(self.sd).items()}


def _cddl(rule, value):
    """``value`` matches ``rule`` of protocol/schema.cddl (pycddl)."""
    pycddl = pytest.importorskip("pycddl")
    import cbor2
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "protocol", "schema.cddl")) as f:
        schema = f.read()
    pycddl.Schema("root = %s\n" % rule + schema).validate_cbor(cbor2.dumps(value))


def test_expose_answers_the_card_folder_and_locks_every_write():
    d = Dev()
    r = d.call(link.EXPOSE, {1: True})
    assert r[1] == 0 and r[2] == {1: True, 2: "dir", 3: d.sd}, r
    _cddl("expose-result", r[2])
    assert d.s.exposed and d.h.msc.up
    before = d.card()
    seq0 = d.s.seq
    # the ops that would write answer 423, nothing changed
    last = d.s.last
    rc = make_receipt(d.station, d.s.device, seq0 - 1, hashlib.sha256(last).digest(), 1)
    for op, args in ((link.TIME_SET, {1: 1796000000000}), (link.ASSIGN, {1: "P-1", 2: None}),
                     (link.CHECK, {}), (link.RECEIPT, {1: rc})):
        r = d.call(op, args)
        assert r[1] == link.LOCKED, (op, r)
        assert "EXPOSE off" in r[3]
    # a refused DELETE is counted, not recorded (the card takes no REFUSAL record now)
    r = d.call(link.DELETE, {1: "m/00000001.mkv"})
    assert r[1] in (link.REFUSED, link.DEVICE_ERROR), r
    # reads go on: STATUS, LIST, GET, READ
    assert d.call(link.STATUS)[1] == 0
    assert d.call(link.GET, {1: 0})[1] == 0
    # the officer presses RECORD: refused as card_exposed, no record, no media
    assert d.wf.start() is None
    assert d.wf.state == workflow.STANDBY
    # every write path of the store refuses
    with pytest.raises(st.CardExposed):
        d.s.record(st.MARK, {})
    with pytest.raises(st.CardExposed):
        d.s.start_segment("button", "video/x-matroska", "mkv")
    assert d.s.release_covered(1 << 40) == 0
    # time passes (refusal interval, ticks): the counted refusal is not written either
    for _ in range(30):
        d.h.clock.sleep_ms(500)
        d.wf.tick()
        d.lnk.service()
        d.call(link.STATUS)
    assert d.s.seq == seq0
    assert d.card() == before, "the card changed while it was exposed"
    # EXPOSE off: writes again; the counted refusal reaches the chain
    r = d.call(link.EXPOSE, {1: False})
    assert r[1] == 0 and r[2] == {1: False}
    _cddl("expose-result", r[2])
    assert not d.s.exposed and not d.h.msc.up
    r = d.call(link.CHECK)
    assert r[1] == 0 and r[2][4] is not None, r
    d.h.clock.sleep_ms(11000)       # the refusal interval after the last failed try
    d.call(link.STATUS)
    types = [b[0] for _, b in fwtest.read_chain(d.sd)]
    assert st.REFUSAL in types[seq0:], types[seq0:]
    assert d.card() != before


def test_expose_is_refused_while_recording_and_unsupported_without_mass_storage():
    d = Dev()
    d.rec.start()
    r = d.call(link.EXPOSE, {1: True})
    assert r[1] == 0 and r[2][1] is False and "recording" in r[2][4], r
    assert not d.s.exposed
    d.rec.stop()
    n = Dev(msc=False)
    r = n.call(link.EXPOSE, {1: True})
    assert r[1] == 0 and r[2][1] is False and "no USB mass storage" in r[2][4], r
    _cddl("expose-result", r[2])
    assert not n.s.exposed
    r = n.call(link.EXPOSE, {1: "yes"})
    assert r[1] == link.BAD_REQUEST


def test_exposure_ends_with_hello_and_with_the_idle_timeout():
    d = Dev()
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    d.host.hello()                       # a new session: the exposure is over
    assert not d.s.exposed and not d.h.msc.up
    d.host.auth(d.station)
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    d.h.clock.sleep_ms(16000)           # quiet past session_idle_ms (15 s)
    d.ser.rx += d.host.req(link.STATUS)
    d.host.pump()
    assert not d.s.exposed and not d.h.msc.up
    assert d.s.record(st.MARK, {}) is not None      # writable again
    # EXPOSE needs AUTH
    r = d.call(link.EXPOSE, {1: True})
    assert r[1] == 401


# --- the host: `sealcam offload` against the virtual recorder over a pty ---------------

SETTINGS = ["--setting", "segment_s=4", "--setting", "checkpoint_s=1",
            "--bitrate", "4000000"]


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    """A recorded card (several segments, two boots), kept clean: tests copy it."""
    root = tmp_path_factory.mktemp("bulkcard")
    sd = root / "sd"
    flash = root / "sd.flash"
    for _ in range(2):
        sim = Sim(sd, record=10, extra=SETTINGS)
        assert sim.stop() == 0, sim.p.stderr.read()[-2000:]
    return sd, flash


@pytest.fixture(scope="module")
def short_card(tmp_path_factory):
    """One boot, 8 s recorded: two whole ~2 MB segments (for the slow-volume test, whose
    time is the card's size over the volume's rate)."""
    root = tmp_path_factory.mktemp("bulkshort")
    sd = root / "sd"
    sim = Sim(sd, record=8, extra=SETTINGS)
    assert sim.stop() == 0, sim.p.stderr.read()[-2000:]
    return sd, root / "sd.flash"


def _copy(card, dst):
    sd, flash = card
    shutil.copytree(sd, dst / "sd", symlinks=True)
    shutil.copytree(flash, dst / "sd.flash", symlinks=True)
    return dst / "sd"


def _register(arch, sd):
    a = Archive(arch)
    try:
        a.register("SC-SIM0001", keys.load_public_key(str(sd) + ".flash/device.pub"))
    finally:
        a.close()


def _offload(tmp, card, extra_sim=(), **kw):
    """Offload a copy of the card from the virtual recorder into a new archive (the
    device registered with its key first): (exit code, summary as JSON, archive, card)."""
    arch = tmp / "arch"
    station.init(arch)
    sd = _copy(card, tmp)
    _register(arch, sd)
    sim = Sim(sd, trust=arch / "station.pub", extra=tuple(extra_sim))
    try:
        sm = offload(sim.port, str(arch), progress=False, say=lambda m: None, **kw)
    finally:
        sim.stop()
    return sm.exit_code, sm.to_json(), arch, sd


def _archived(arch, dev="SC-SIM0001"):
    db = sqlite3.connect(str(arch / "archive.sqlite"))
    try:
        recs = db.execute("SELECT seq, hash FROM records WHERE device = ? ORDER BY seq",
                          (dev,)).fetchall()
        segs = db.execute("SELECT segment, state, object, idx_object FROM segments WHERE "
                          "device = ? ORDER BY segment", (dev,)).fetchall()
    finally:
        db.close()
    return recs, segs


def _segments(sd):
    return sorted(n for n in os.listdir(sd / "m") if n.endswith(".mkv"))


def test_bulk_gives_the_same_archive_as_the_serial_path(tmp_path, card):
    (tmp_path / "s").mkdir()
    (tmp_path / "b").mkdir()
    ps, ss, arch_s, _ = _offload(tmp_path / "s", card)                    # no mass storage
    pb, sb, arch_b, sd = _offload(tmp_path / "b", card, ["--msc"])        # a disk
    assert ps == 0 and pb == 0, (ss["errors"], sb["errors"])
    assert ss["media_path"] == "serial" and "no USB mass storage" in ss["bulk_note"]
    assert sb["media_path"] == "bulk" and sb["volume"] == str(sd)
    assert sb["bulk_fallbacks"] == []
    assert sb["bulk_segments"] == ss["segments_completed"] == sb["segments_completed"] >= 4
    assert sb["bulk_bytes"] == sb["media_bytes"] == ss["media_bytes"] > 1_000_000
    assert sb["verdict"] == OK and ss["verdict"] == OK and sb["receipt"]
    rs, gs = _archived(arch_s)
    rb, gb = _archived(arch_b)
    # the card's records are the same in both; after them each copy's serving BOOT (its own
    # time) and each station's RECEIPT differ
    n = len(fwtest.read_chain(str(card[0])))
    assert len(rs) > n and len(rb) > n
    assert rs[:n] == rb[:n]
    assert gs == gb and all(g[1] == "complete" for g in gb)
    for arch in (arch_s, arch_b):
        a = Archive(arch)
        try:
            view = a.view_dir("SC-SIM0001")
        finally:
            a.close()
        rep = verify_store(view, keys.load_public_key(str(sd) + ".flash/device.pub"),
                           progress=False)
        assert rep.verdict == OK, rep.reasons
    # the archived media is the card's, byte for byte
    for name in _segments(sd):
        with open(sd / "m" / name, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        assert any(g[2] == want for g in gb), name


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "read_write"])
def test_a_hostile_volume_is_caught_and_read_over_the_link(tmp_path, card, monkeypatch,
                                                           kernel_copy):
    """--volume names a copy of the card with a flipped byte, a short file, a missing file
    and a symlink: each such segment is read over the link instead, nothing wrong is
    archived, the offload is OK. Both ways of copying a block (the kernel's
    copy_file_range, or read + write where the volume's filesystem has none)."""
    monkeypatch.setattr(offload_bulk.Bulk, "_kernel_copy", kernel_copy)
    vol = tmp_path / "vol"
    shutil.copytree(card[0], vol)
    segs = _segments(vol)
    assert len(segs) >= 4, segs
    flip, short, gone, link_ = segs[:4]
    with open(vol / "m" / flip, "r+b") as f:
        f.seek(70_000)
        b = f.read(1)
        f.seek(70_000)
        f.write(bytes([b[0] ^ 0x40]))
    with open(vol / "m" / short, "r+b") as f:
        f.truncate(os.path.getsize(vol / "m" / short) - 1000)
    os.unlink(vol / "m" / gone)
    os.unlink(vol / "m" / link_)
    os.symlink(card[0] / "m" / link_, vol / "m" / link_)   # right bytes, but a symlink
    p, sm, arch, sd = _offload(tmp_path, card, ["--msc"], volume=str(vol))
    assert p == 0, sm["errors"]
    assert sm["media_path"] == "bulk" and sm["volume"] == str(vol)
    why = "\n".join(sm["bulk_fallbacks"])
    assert len(sm["bulk_fallbacks"]) == 4, why
    assert "does not match its signed hash" in why
    assert "are signed" in why, why
    assert "is not on the volume" in why
    assert "symbolic link" in why or "symlink" in why
    assert sm["verdict"] == OK and sm["receipt"]
    _, gb = _archived(arch)
    assert all(g[1] == "complete" for g in gb)
    for name in _segments(sd):
        with open(sd / "m" / name, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        assert any(g[2] == want for g in gb), name


def test_a_byte_flipped_on_the_card_itself_is_never_archived(tmp_path, card):
    """The virtual recorder on CPython: the volume is the card; the link reads the same
    flipped byte, so the segment is not stored and there is no receipt."""
    dst = tmp_path / "c"
    dst.mkdir()
    sd = _copy(card, dst)
    name = _segments(sd)[1]
    with open(sd / "m" / name, "r+b") as f:
        f.seek(5000)
        b = f.read(1)
        f.seek(5000)
        f.write(bytes([b[0] ^ 1]))
    arch = tmp_path / "arch"
    station.init(arch)
    _register(arch, sd)
    sim = Sim(sd, trust=arch / "station.pub", extra=("--msc",))
    try:
        sm = offload(sim.port, str(arch), progress=False, say=lambda m: None).to_json()
    finally:
        sim.stop()
    assert sm["exit_code"] == 1, sm
    assert sm["verdict"] == "NOT_OK" and sm["receipt"] is None
    assert any(name.split(".")[0].lstrip("0") in x for x in sm["bulk_fallbacks"])
    _, gb = _archived(arch)
    bad = int(name.split(".")[0])
    assert [g for g in gb if g[0] == bad][0][1] != "complete"


def test_no_bulk_reads_over_the_link_though_a_disk_is_offered(tmp_path, card):
    p, sm, arch, _ = _offload(tmp_path, card, ["--msc"], bulk=False)
    assert p == 0, sm["errors"]
    assert sm["media_path"] == "serial" and sm["bulk_bytes"] == 0 and sm["verdict"] == OK


def test_bulk_on_the_micropython_vm(tmp_path, card):
    """The firmware on the VM: the card lives in the VM's memory and is mirrored to the
    host folder when it is exposed; the offload reads it there."""
    p, sm, arch, _ = _offload(tmp_path, card, ["--msc", "--runtime", "micropython"])
    assert p == 0, sm["errors"]
    assert sm["media_path"] == "bulk" and sm["bulk_fallbacks"] == [], sm
    assert sm["verdict"] == OK and sm["receipt"]


def test_dock_offloads_from_the_disk_then_sets_the_clock_and_checks(tmp_path, card):
    """`sealcam dock` on a recorder offering its disk: the offload reads the media from
    it and ends the exposure, so TIME_SET, ASSIGN and CHECK that follow are not refused
    (423), and the final pass receipts the records they wrote."""
    from host_tools.dock import dock
    arch = tmp_path / "arch"
    station.init(arch)
    sd = _copy(card, tmp_path)
    _register(arch, sd)
    sim = Sim(sd, trust=arch / "station.pub", extra=("--msc",))
    try:
        r = dock(sim.port, str(arch), progress=False, say=lambda m: None)
    finally:
        sim.stop()
    assert r.offload["media_path"] == "bulk" and r.offload["bulk_segments"] >= 4, r.offload
    assert r.exit_code in (0, 2), (r.status, r.errors if hasattr(r, "errors") else r)
    assert r.final_offload is not None and r.final_offload["verdict"] == OK, r.final_offload
    assert "423" not in json.dumps(r.__dict__, default=str)


# --- attack 4 (review of the bulk offload): regressions ---------------------------------

def _refusals(sd):
    return [b for _, b in fwtest.read_chain(sd) if b[0] == st.REFUSAL]


def test_refusals_counted_while_exposed_are_written_at_shutdown():
    """The shutdown ends the exposure before it writes the counted refusals (SPEC §5.3)."""
    d = Dev()
    n0 = len(_refusals(d.sd))
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    for i in range(3):
        r = d.call(link.DELETE, {1: "m/00000001.mkv#%d" % i})
        assert r[1] in (link.REFUSED, link.DEVICE_ERROR), r
    device.shutdown(d.s, d.rec)
    got = _refusals(d.sd)[n0:]
    assert sum(b.get(44, 1) for b in got) == 3, got
    assert not d.s.exposed and not d.h.msc.up


def test_a_long_exposure_ends_itself_so_a_power_cut_loses_at_most_the_hold():
    """Exposed for 10 minutes with a DELETE every minute: once the exposure has lasted
    expose_hold_ms (60 s) the recorder ends it itself and writes the due REFUSAL, so a power
    cut after 10 minutes loses at most the last interval's, not all ten."""
    d = Dev()
    n0 = len(_refusals(d.sd))
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    for i in range(10):
        d.call(link.DELETE, {1: "m/00000001.mkv#%d" % i})
        for _ in range(12):
            d.h.clock.sleep_ms(5000)
            d.lnk.service()
            d.call(link.STATUS)
    # the power is cut here: nothing else runs; what is on the card is what boot finds
    got = _refusals(d.sd)[n0:]
    assert sum(b.get(44, 1) for b in got) >= 9, got
    assert not d.s.exposed and not d.h.msc.up
    # no refusal pending: an exposure is not ended by time alone
    r = d.call(link.EXPOSE, {1: True})
    assert r[2][1] is True, r
    for _ in range(30):
        d.h.clock.sleep_ms(5000)
        d.lnk.service()
        d.call(link.STATUS)
    assert d.s.exposed


def test_annotation_missing_due_while_exposed_is_written_after_the_exposure():
    d = Dev()
    wf = d.wf
    wf.start()
    list(wf.ticks(3000))
    q = wf.interrupt("weather")
    list(wf.ticks(1000))
    wf.start()                   # resume: the voice prompt runs (annotation_s)
    list(wf.ticks(5000))
    wf.stop()                    # stopped before the reason was stated
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    for _ in range(150):         # docked, exposed, past annotation_s
        list(wf.ticks(1000))
        d.lnk.service()
        d.call(link.STATUS)
    assert d.call(link.STATUS)[2][5] == [q]       # still waiting, not dropped
    assert d.call(link.EXPOSE, {1: False})[1] == 0
    list(wf.ticks(2000))
    miss = [b for _, b in fwtest.read_chain(d.sd) if b[0] == st.ANNOTATION_MISSING]
    assert [b[st.K_REFERS] for b in miss] == [q], miss
    assert wf.pending == []


def test_a_hello_answered_400_ends_the_session_and_the_exposure():
    d = Dev()
    assert d.call(link.EXPOSE, {1: True})[2][1] is True
    r = d.call(link.HELLO, {1: 1, 2: "x", 3: b"\0" * 16})      # max_frame below the minimum
    assert r[1] == link.BAD_REQUEST, r
    assert not d.s.exposed and not d.h.msc.up
    assert d.call(link.STATUS)[1] == 401


REF_SEED = bytes(range(100, 132))


def _ref_offload(tmp, make, **kw):
    """Offload a card made by the reference writer (a recorder that holds its key signs
    what it likes) from the virtual recorder offering its disk: the summary as JSON."""
    import refwriter as rw
    sd = tmp / "sd"
    s = rw.RefStore(sd, seed=REF_SEED, device="SC-SIM0001", chunk=kw.pop("chunk", 100),
                    officer=None)
    make(rw, s)
    os.makedirs(str(sd) + ".flash", exist_ok=True)
    with open(str(sd) + ".flash/key.bin", "wb") as f:
        f.write(REF_SEED)
    arch = tmp / "arch"
    station.init(arch)
    a = Archive(arch)
    try:
        a.register("SC-SIM0001", s.pubkey)
    finally:
        a.close()
    sim = Sim(sd, trust=arch / "station.pub", extra=("--msc", "--device", "SC-SIM0001"))
    try:
        return offload(sim.port, str(arch), progress=False, say=lambda m: None,
                       **kw).to_json()
    finally:
        sim.stop()


def _short_segment(length, chunks):
    def make(rw, s):
        s.boot()
        s.rec_start()
        data = os.urandom(length)
        s.write(data)                       # less than a chunk: nothing signed yet
        seg = s.seg
        entries = [rw.H(data)] + [rw.H(b"x%d" % i) for i in range(1, chunks)]
        with open(s.path(s._idx(seg.media)), "wb") as f:
            f.write(b"".join(entries))
        seg.root = rw.chunk_root(entries)
        seg.chunks, seg.pending = chunks, b""
        s.close()                           # SEGMENT {length, chunks, root}: signed
        s.rec_stop()
    return make


@pytest.mark.parametrize("length,chunks", [(50, 10), (0, 1)])
@pytest.mark.parametrize("bulk", ["auto", False], ids=["bulk", "link"])
def test_a_signed_length_short_of_its_chunks_ends_not_ok_on_both_paths(tmp_path, length,
                                                                       chunks, bulk):
    """A signed SEGMENT whose length ends before its last chunk (length <= (chunks-1) x
    chunk) is not read, over the disk or the link: NOT_OK naming it, no traceback."""
    sm = _ref_offload(tmp_path, _short_segment(length, chunks), bulk=bulk)
    assert sm["exit_code"] == 1 and sm["verdict"] == "NOT_OK" and sm["receipt"] is None, sm
    assert "too short for %d chunks" % chunks in json.dumps(sm), sm["errors"]


def test_tiny_chunks_keep_the_bulk_blocks_small(tmp_path, monkeypatch):
    """Chunk size 1 (a setting the firmware accepts): a block of the bulk path is bounded
    by chunk count as well as bytes, and each hash is compared as it is made, so what it
    holds does not grow with BULK_BLOCK / chunk (before: one hash object per chunk).
    96 Ki chunks: six blocks of BLOCK_CHUNKS; one unbounded block would hold ~10 MB, five
    times the bound (the run's time is the chunk count, traced allocation by allocation)."""
    import tracemalloc
    size = 96 << 10
    assert size >= 4 * offload_bulk.BLOCK_CHUNKS

    def make(rw, s):
        s.boot()
        s.rec_start()
        s.write(os.urandom(size))
        s.checkpoint()
        s.close()
        s.rec_stop()

    peaks = []
    real = offload_bulk.Bulk._bulk_segment

    def measured(self, *a):
        tracemalloc.start()
        try:
            return real(self, *a)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()

    monkeypatch.setattr(offload_bulk.Bulk, "_bulk_segment", measured)
    sm = _ref_offload(tmp_path, make, chunk=1)
    assert sm["exit_code"] == 0 and sm["media_path"] == "bulk", sm
    assert sm["bulk_bytes"] == size and sm["bulk_fallbacks"] == [], sm
    assert peaks and max(peaks) < 2 << 20, peaks      # one hash object per chunk: ~10 MB


def test_a_folder_named_by_the_recorder_is_read_only_when_the_operator_opted_in(
        tmp_path, card, monkeypatch):
    """Without SEALCAM_SIM_VOLUME=1 (and no --volume) the station does not read the folder a
    recorder's EXPOSE answer names: media over the link, the reason in the summary."""
    monkeypatch.delenv(offload_bulk.SIM_ENV)
    p, sm, arch, sd = _offload(tmp_path, card, ["--msc"])
    assert p == 0, sm["errors"]
    assert sm["media_path"] == "serial" and sm["bulk_bytes"] == 0, sm
    assert offload_bulk.SIM_ENV in sm["bulk_note"] and str(sd) in sm["bulk_note"]
    assert sm["verdict"] == OK and sm["receipt"]


def _slow_volume(monkeypatch, per_s):
    """The volume gives per_s bytes a second (a slow SD card behind USB mass storage): the
    kernel copy is slowed in the station; nothing else changes."""
    real = os.copy_file_range

    def slow(fin, fout, n, a, b):
        import time
        k = real(fin, fout, min(n, 256 << 10), a, b)
        time.sleep(k / per_s)
        return k

    monkeypatch.setattr(offload_bulk.Bulk, "_kernel_copy", True)
    monkeypatch.setattr(os, "copy_file_range", slow)
    monkeypatch.setattr(offload_bulk, "KEEPALIVE_S", 0.3)


IDLE = ["--setting", "session_idle_ms=1500"]


def test_a_slow_volume_keeps_the_session_alive_within_a_block(tmp_path, short_card,
                                                              monkeypatch):
    """A block (a whole ~2 MB segment here) takes longer than the session's idle timeout to
    read: the keep-alive goes between the copy steps of a block, not only between blocks,
    so the session and the exposure last and every segment is read from the disk."""
    _slow_volume(monkeypatch, 1e6)               # 256 KiB a quarter second
    p, sm, arch, _ = _offload(tmp_path, short_card, ["--msc"] + IDLE)
    assert p == 0, sm["errors"]
    assert sm["media_path"] == "bulk" and sm["bulk_fallbacks"] == [], sm
    assert sm["bulk_bytes"] > 2 * 1.5e6, sm      # blocks that each outlast the idle timeout
    assert sm["verdict"] == OK and sm["receipt"]


def test_a_volume_slower_than_the_session_falls_back_to_the_link(tmp_path, card, monkeypatch):
    """One copy step takes longer than session_idle_ms: the session (and the exposure) ends,
    STATUS gets 401; the station starts a new session and reads the rest over the link,
    instead of failing the run (exit 6)."""
    _slow_volume(monkeypatch, 1.5e5)             # 256 KiB in 1.7 s, the session idles at 1.5 s
    p, sm, arch, _ = _offload(tmp_path, card, ["--msc"] + IDLE)
    assert p == 0, sm["errors"]
    assert sm["bulk_fallbacks"] and "session ended" in sm["bulk_fallbacks"][0], sm
    assert sm["verdict"] == OK and sm["receipt"]
    _, gb = _archived(arch)
    assert all(g[1] == "complete" for g in gb)


def test_a_fifo_on_the_volume_is_refused_without_being_opened(tmp_path):
    """safeio looks at the directory entry before it opens anything: opening a FIFO's read
    end would release a writer blocked on it (a device node's open has effects too)."""
    import threading
    from host_tools import safeio
    (tmp_path / "m").mkdir()
    fifo = tmp_path / "m" / "00000001.mkv"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer():
        fd = os.open(fifo, os.O_WRONLY)       # blocks until a reader opens the FIFO
        opened.set()
        os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    import time
    time.sleep(0.3)                           # the writer is blocked in open()
    with pytest.raises(safeio.StoreFileError, match="FIFO"):
        safeio.open_regular(str(tmp_path), "m/00000001.mkv")
    assert not opened.wait(0.5), "the station opened the FIFO"
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # release the writer
    t.join(5)
    os.close(fd)


def test_the_exposure_ends_though_the_disk_fails_to_hide():
    d = Dev()
    assert d.call(link.EXPOSE, {1: True})[2][1] is True

    def broken():
        raise OSError(5, "USB stack error")
    d.h.msc.hide = broken
    r = d.call(link.EXPOSE, {1: False})
    assert r[1] == 0 and r[2] == {1: False}, r
    assert not d.s.exposed
    assert d.s.record(st.MARK, {}) is not None
