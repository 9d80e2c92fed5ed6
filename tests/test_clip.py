"""`sealcam clip` and `sealcam verify-clip` (SPEC §12): a verifiable extract of the archive.

The archive is made the station's way: two recorders (the reference writer, tests/
refwriter.py, with real Matroska media from the firmware's muxer, firmware/sealcamfw/mkv.py, fed by
the simulated camera and microphone) offloaded over a pty by `sealcam offload`. Device A
records a shift of officer OFC-7: a mark, an interruption (weather), then the resumed
segment with the officer's statement (VOICE_ANNOTATION); device B records one segment.
Clips are decoded with FFmpeg (PyAV), verified, and tampered with byte by byte.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys

import av
import cbor2
import pytest

import fakedev
from sealcamfw import mkv
import refwriter as rw
from host_tools import clip, clipfile, keys, station
from host_tools.cli import main as cli
from sim.hal.simcam import SimCamera
from sim.hal.simclock import SimClock
from sim.hal.simmic import SimMic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A, B = "SC-CLIPA001", "SC-CLIPB002"
CHUNK = 4096
FPS = 5


class Media:
    """A segment's media: the muxer's bytes, written to the store once per 100 ms tick,
    with block times on the store's monotonic clock (so RTC and media time agree)."""

    def __init__(self, s):
        self.s = s
        self.clock = SimClock()
        self.cam = SimCamera(self.clock, 80_000, FPS, s.device, s.officer)
        self.mic = SimMic(self.clock)
        self.buf = bytearray()
        self.origin = s.mono
        self.m = mkv.Muxer(self.buf.extend, 160, 120, FPS)
        self.m.start(self.origin)
        self.cam.start()
        self.mic.start()
        self.samples = 0
        self._pcm = bytearray(32000)
        self.flush()

    def flush(self):
        if self.buf:
            self.s.write(bytes(self.buf))
            del self.buf[:]

    def run(self, seconds):
        for _ in range(int(seconds * 10)):
            self.clock.sleep_ms(100)
            self.s.mono += 100
            frames = self.cam.poll()
            n = self.mic.readinto(self._pcm)
            blocks = [(self.s.mono, mkv.VIDEO, f) for f in frames]
            blocks.append((self.origin + self.samples * 1000 // mkv.RATE, mkv.AUDIO,
                           bytes(self._pcm[:n])))
            for t, k, d in sorted(blocks, key=lambda b: (b[0], b[1])):
                self.m.block(k, t, d)
            self.samples += n // 2
            self.flush()


def _checkpointed(s, media, seconds):
    for _ in range(int(seconds)):
        media.run(1)
        s.checkpoint()
    media.run(seconds - int(seconds))


def build_a(root):
    s = rw.RefStore(root, seed=b"\xa1" * 32, device=A, officer=None, chunk=CHUNK)
    f = {}
    s.boot()
    f["assign"] = s.assign("OFC-7", "U1").seq
    f["seg1"] = s.rec_start().seq
    m = Media(s)
    _checkpointed(s, m, 2.5)
    f["mark"] = s.mark("bookmark").seq
    _checkpointed(s, m, 2)
    f["int"] = s.interrupt("weather").seq
    f["seg2"] = s.rec_start("resume").seq
    m = Media(s)
    _checkpointed(s, m, 1.5)
    start = s.position()
    m.run(2)
    f["voice"] = s.voice_annotation(f["int"], start=start, duration=2000).seq
    _checkpointed(s, m, 2)
    s.close()
    s.rec_stop()
    f["release"] = s.assign(None).seq
    return s, f


def build_b(root):
    s = rw.RefStore(root, seed=b"\xb2" * 32, device=B, officer="OFC-8", chunk=CHUNK)
    s.boot()
    seg = s.rec_start().seq
    m = Media(s)
    _checkpointed(s, m, 2)
    mark = s.mark("important").seq
    _checkpointed(s, m, 2)
    s.close()
    s.rec_stop()
    # a second segment cut by a power loss 1.5 s after its last checkpoint: RECOVERY
    # seals its tail at the next boot (hashed then, not at capture)
    seg2 = s.rec_start().seq
    m = Media(s)
    _checkpointed(s, m, 2)
    m.run(1.5)
    mark2 = s.mark("bookmark").seq
    s.power_cut()
    s.boot()
    return s, {"seg": seg, "mark": mark, "seg2": seg2, "mark2": mark2}


def offload(store, arch):
    d = fakedev.FakeDevice(store, trust=[station.station_pub(arch)]).start()
    try:
        p = subprocess.run([sys.executable, "-m", "host_tools.cli", "offload", "--port", d.port,
                            "--archive", str(arch), "--register", "--fingerprint",
                            keys.fingerprint(store.pubkey), "--no-progress"],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
    finally:
        d.stop()
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clip")
    arch = tmp / "arch"
    station.init(arch)
    a, fa = build_a(tmp / "sd-a")
    b, fb = build_b(tmp / "sd-b")
    offload(a, arch)
    offload(b, arch)
    for s, name in ((a, "a.pub"), (b, "b.pub")):
        (tmp / name).write_text(s.pubkey.hex() + "\n")
    return {"tmp": tmp, "arch": str(arch), "a": a, "b": b, "fa": fa, "fb": fb}


def decode(path):
    """(video frames, audio seconds, first and last frame time in s) decoded by FFmpeg."""
    nv, na, ts = 0, 0, []
    with av.open(str(path)) as f:
        assert [s.type for s in f.streams] == ["video", "audio"]
        assert f.streams.video[0].codec_context.name == "mjpeg"
        assert f.streams.audio[0].codec_context.name == "pcm_s16le"
        for pkt in f.demux():
            for fr in pkt.decode():
                if pkt.stream.type == "video":
                    nv += 1
                else:
                    na += fr.samples
                ts.append(float(fr.time))
    return nv, na / 16000, min(ts), max(ts)


def verify(path, *extra):
    """(exit code, JSON result) of `sealcam verify-clip PATH --json ...`."""
    out = io.StringIO()
    real, sys.stdout = sys.stdout, out
    try:
        rc = cli(["verify-clip", str(path), "--json"] + [str(x) for x in extra])
    finally:
        sys.stdout = real
    return rc, (json.loads(out.getvalue()) if out.getvalue() else None)


@pytest.fixture(scope="module")
def statement(world):
    out = str(world["tmp"] / "statement.mkv")
    res = clip.make_clip(world["arch"], out, annotation=(A, world["fa"]["voice"]))
    (c,) = res["clips"]
    return c


# --- cutting ---------------------------------------------------------------------------

def test_statement_clip_plays_and_covers_what_was_said(world, statement):
    c = statement
    assert c["segment"] == world["fa"]["seg2"] and c["file"].endswith("statement.mkv")
    assert os.path.getsize(c["file"]) == c["bytes"] and os.path.exists(c["prov"])
    # the statement was 2 s (20 ticks) starting 1.5 s into the segment
    assert c["asked"]["from_s"] == pytest.approx(1.5, abs=0.15)
    assert c["asked"]["to_s"] - c["asked"]["from_s"] == pytest.approx(2.0, abs=0.25)
    # cut on chunk boundaries from a Cluster (every 1 s) at or before the start
    assert 0 <= c["beyond"]["before_s"] <= 1.0 and 0 <= c["beyond"]["after_s"] < 0.5
    assert c["short"] == {"before_s": 0, "after_s": 0}
    assert c["play"] == "ffplay %s" % c["file"]
    nv, audio_s, t0, t1 = decode(c["file"])
    assert t0 <= c["asked"]["from_s"] + 0.01 and t1 >= c["asked"]["to_s"] - 0.3, (t0, t1, c)
    assert nv >= 2 * FPS and audio_s >= 2.0
    # it is a prefix of chunk 0 (the header), a Void, then chunks k..m: not the whole file
    prov = clipfile.decode_prov(open(c["prov"], "rb").read())
    assert prov["first"] > 0 and prov["lead"] > 0 and prov["head_chunks"] == 1
    data = open(c["file"], "rb").read()
    assert data[prov["header"]:prov["header"] + 1] == b"\xec"
    assert data[prov["header"] + 9 + CHUNK - prov["header"] + prov["lead"]:][:4] == \
        b"\x1f\x43\xb6\x75"          # the first Cluster follows the Void


def test_interruption_seq_gives_its_statement(world, statement, tmp_path):
    res = clip.make_clip(world["arch"], str(tmp_path / "i.mkv"),
                         annotation=(A, world["fa"]["int"]))
    (c,) = res["clips"]
    assert c["chunks"] == statement["chunks"]
    assert open(c["file"], "rb").read() == open(statement["file"], "rb").read()
    assert c["subject"]["seqs"] == [world["fa"]["int"], world["fa"]["voice"]]


def test_mark_clip(world, tmp_path, capsys):
    out = tmp_path / "mark.mkv"
    rc = cli(["clip", "--archive", world["arch"], "--mark", "%s:%d" % (A, world["fa"]["mark"]),
              "--before", "1", "--after", "1.5", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "play it:    ffplay %s" % out in text and "more before" in text
    assert "sealcam verify-clip %s --archive" % out in text
    nv, audio_s, t0, t1 = decode(out)
    assert t0 <= 1.5 + 0.01 and t1 >= 4.0 - 0.3 and audio_s >= 2.4
    assert verify(out, "--archive", world["arch"])[1]["verdict"] == "OK"


def test_device_and_officer_ranges_one_clip_per_segment(world, tmp_path, capsys):
    a = world["a"]
    recs = {r.seq: rw.decode_record(r.data) for r in a.records}
    t_from = recs[world["fa"]["mark"]][4] - 1000          # in segment 1 ...
    t_to = recs[world["fa"]["voice"]][4]                  # ... to the statement's end
    iso = [_iso(t) for t in (t_from, t_to)]
    out = tmp_path / "r.mkv"
    rc = cli(["clip", "--archive", world["arch"], "--device", A, "--from", iso[0], "--to",
              iso[1], "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and [c["segment"] for c in res["clips"]] == [world["fa"]["seg1"],
                                                                 world["fa"]["seg2"]]
    assert [os.path.basename(c["file"]) for c in res["clips"]] == [
        "r-%s-%d.mkv" % (A, world["fa"]["seg1"]), "r-%s-%d.mkv" % (A, world["fa"]["seg2"])]
    for c in res["clips"]:
        decode(c["file"])
        assert verify(c["file"], "--archive", world["arch"])[1]["verdict"] == "OK"
    # the officer's shift: the same segments, the ASSIGN among the records it is of
    rc = cli(["clip", "--archive", world["arch"], "--officer", "OFC-7", "--from", iso[0],
              "--to", iso[1], "--out", str(tmp_path / "o.mkv"), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(res["clips"]) == 2
    assert all(c["subject"]["seqs"] == [world["fa"]["assign"]] for c in res["clips"])
    # a range over a whole segment: the clip is the segment's file as it is
    res = clip.make_clip(world["arch"], str(tmp_path / "w.mkv"), device=A,
                         since=recs[world["fa"]["seg2"]][4] - 1,
                         until=recs[world["fa"]["seg2"]][4] + 3_600_000)
    (c,) = res["clips"]
    seg = open(os.path.join(world["arch"], "devices", A, "m", "%08d.mkv" % c["segment"]),
               "rb").read()
    assert c["segment"] == world["fa"]["seg2"] and open(c["file"], "rb").read() == seg
    # an officer no record names, a range with nothing recorded: exit 3, one line
    rc = cli(["clip", "--archive", world["arch"], "--officer", "OFC-404", "--from", iso[0],
              "--to", iso[1], "--out", str(tmp_path / "x.mkv")])
    err = capsys.readouterr().err
    assert rc == 3 and "officer OFC-404 is not in the archive" in err
    rc = cli(["clip", "--archive", world["arch"], "--device", A, "--from",
              "2020-01-01T00:00:00Z", "--to", "2020-01-02T00:00:00Z", "--out",
              str(tmp_path / "x.mkv")])
    err = capsys.readouterr().err
    assert rc == 3 and "nothing was recorded" in err and len(err.splitlines()) == 1


def test_clip_from_the_start_is_the_file_as_it_is(world, tmp_path):
    """A mark 2.5 s into its segment, 5 s before it asked: the clip starts at chunk 0 and is
    the segment's first bytes as they are, no Void."""
    res = clip.make_clip(world["arch"], str(tmp_path / "s.mkv"), mark=(A, world["fa"]["mark"]),
                         before=5, after=0.5)
    (c,) = res["clips"]
    prov = clipfile.decode_prov(open(c["prov"], "rb").read())
    assert (prov["first"], prov["header"], prov["head_chunks"], prov["lead"]) == (0, 0, 0, 0)
    # asked: 5 s before the mark, 2.5 s before the recording began: said missing
    assert -2.6 <= c["asked"]["from_s"] <= -1.9
    assert c["beyond"]["before_s"] == 0 and c["short"]["before_s"] == -c["asked"]["from_s"]
    seg = open(os.path.join(world["arch"], "devices", A, "m", "%08d.mkv"
                            % world["fa"]["seg1"]), "rb").read()
    assert open(c["file"], "rb").read() == seg[:c["bytes"]] and c["bytes"] % CHUNK == 0
    nv, _, t0, _ = decode(c["file"])
    assert t0 == 0 and nv >= 2
    assert verify(c["file"], "--archive", world["arch"])[1]["verdict"] == "OK"


def test_media_sealed_at_recovery_is_missing_info(world, tmp_path):
    """Around a mark after the last checkpoint of a segment a power loss cut: its chunks
    are proven by the RECOVERY record, hashed at boot: OK_WITH_MISSING_INFO, said so."""
    res = clip.make_clip(world["arch"], str(tmp_path / "r.mkv"), mark=(B, world["fb"]["mark2"]),
                         before=0.5, after=0.5)
    (c,) = res["clips"]
    assert c["segment"] == world["fb"]["seg2"]
    decode(c["file"])
    rc, j = verify(c["file"], "--archive", world["arch"])
    assert rc == 0 and j["verdict"] == "OK_WITH_MISSING_INFO", j
    assert any("RECOVERY" in m and "not at capture" in m for m in j["missing"]), j


def test_an_archive_that_does_not_prove_it_gets_no_clip(world, tmp_path, capsys):
    """`sealcam clip` cuts only what verifies: a media byte changed in the archive, or a
    station log edited, is exit 1 with one line saying to run `sealcam verify`."""
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch)              # copies: the objects are not shared
    media = arch / "devices" / A / "m" / ("%08d.mkv" % world["fa"]["seg2"])
    os.chmod(media, 0o644)
    prov = clipfile.decode_prov(open(clip.make_clip(
        str(arch), str(tmp_path / "ok.mkv"), annotation=(A, world["fa"]["voice"]))["clips"][0]
        ["prov"], "rb").read())
    _flip(str(media), prov["last"] * CHUNK + 10)
    argv = ["clip", "--archive", str(arch), "--annotation", "%s:%d" % (A, world["fa"]["voice"]),
            "--out", str(tmp_path / "x.mkv")]
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert "does not match its signed hash" in err and "sealcam verify" in err
    assert len(err.splitlines()) == 1 and not os.path.exists(tmp_path / "x.mkv")
    _flip(str(media), prov["last"] * CHUNK + 10)
    _flip(str(arch / "log" / "entries"), 40)
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert "station log" in err and "sealcam verify" in err and len(err.splitlines()) == 1


def test_walk_reads_the_structure_never_the_payload():
    """A block whose payload holds a Cluster ID (hostile data) is not taken for a Cluster:
    the walk follows element sizes from the file's first byte."""
    out = bytearray()
    m = mkv.Muxer(out.extend, 16, 16, 1)
    m.start(0)
    fake = b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff\xe7\x88" + bytes(8)
    for t in range(0, 3000, 250):
        m.block(mkv.AUDIO, t, fake * 20)
    lay = clipfile.walk(io.BytesIO(bytes(out)), len(out))
    real = [i for i in range(len(out)) if out.startswith(b"\x1f\x43\xb6\x75", i)]
    assert len(real) > 3 * 20                     # the ID is in the payloads many times
    assert [t for _, t in lay.clusters] == [0, 1000, 2000]
    assert len(lay.blocks) == 12 and lay.end == len(out)
    assert all(out[off:off + 4] == b"\x1f\x43\xb6\x75" for off, _ in lay.clusters)
    # cut anywhere: the walk ends at the last whole element, never beyond the file
    for n in range(lay.header, len(out), 997):
        cut = clipfile.walk(io.BytesIO(bytes(out[:n])), n)
        assert cut.end <= n and all(b.end <= n for b in cut.blocks)
    with pytest.raises(clipfile.WalkError):
        clipfile.walk(io.BytesIO(b"RIFF" + bytes(60)), 64)


def _iso(ms):
    import datetime as dt
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat()


def test_clip_usage_errors(world, tmp_path, capsys):
    base = ["clip", "--archive", world["arch"], "--out", str(tmp_path / "x.mkv")]
    cases = [
        (base + ["--annotation", "%s:%d" % (A, world["fa"]["mark"])], "not a VOICE_ANNOTATION"),
        (base + ["--annotation", "%s:9999" % A], "no verified record seq 9999"),
        (base + ["--annotation", "SC-NOPE:1"], "device SC-NOPE is not in the archive"),
        (base + ["--annotation", "junk"], "DEVICE:SEQ"),
        (base + ["--device", A], "--from"),
        (["clip", "--archive", str(tmp_path), "--out", "x.mkv", "--mark", A + ":1"],
         "not a sealcam archive"),
    ]
    for argv, word in cases:
        assert cli(argv) == 3, argv
        err = capsys.readouterr().err
        assert word in err and "Traceback" not in err, (argv, err)
    assert not os.path.exists(tmp_path / "x.mkv")


# --- verifying -------------------------------------------------------------------------

def test_verify_clip_says_what_was_checked(world, statement, capsys):
    rc, j = verify(statement["file"], "--archive", world["arch"])
    assert rc == 0 and j["verdict"] == "OK" and j["failure"] is None, j
    assert [c["check"] for c in j["checks"]] == ["provenance", "device key", "signatures",
                                                 "bytes", "root", "layout", "subject",
                                                 "station log"]
    assert all(c["status"] == "ok" for c in j["checks"])
    # without the archive nor a key: the keys are the provenance's own: not proof (exit 4)
    rc, j = verify(statement["file"])
    assert rc == 4 and j["verdict"] == "NOT_PROVEN"
    assert any("origin not checked" in m for m in j["missing"])
    assert any("station key" in m for m in j["missing"])
    # pinned device and station keys: OK without the archive
    rc, j = verify(statement["file"], "--key", world["tmp"] / "a.pub", "--station-key",
                   os.path.join(world["arch"], "station.pub"))
    assert rc == 0 and j["verdict"] == "OK", j
    # the text form
    rc = cli(["verify-clip", statement["file"], "--archive", world["arch"]])
    out = capsys.readouterr().out
    assert rc == 0 and "verdict:     OK" in out and "the Void header at byte" in out
    assert "VOICE_ANNOTATION seq %d" % world["fa"]["voice"] in out


def _copy(c, tmp_path, name):
    dst = str(tmp_path / name)
    shutil.copyfile(c["file"], dst)
    shutil.copyfile(c["prov"], dst + ".prov")
    return dst


def _flip(path, pos):
    b = bytearray(open(path, "rb").read())
    b[pos] ^= 0x01
    open(path, "wb").write(bytes(b))


def test_one_byte_changed_anywhere_is_not_ok(world, statement, tmp_path):
    prov = clipfile.decode_prov(open(statement["prov"], "rb").read())
    size = statement["bytes"]
    h = prov["header"]
    where = {"header": 20, "void header": h + 4, "void (chunk 0's rest)": h + 9 + 100,
             "void (chunk k's lead)": h + 9 + (CHUNK - h) + prov["lead"] - 1,
             "first cluster": h + 9 + (CHUNK - h) + prov["lead"] + 2,
             "media": size // 2, "tail": size - 1}
    for name, pos in where.items():
        p = _copy(statement, tmp_path, "flip.mkv")
        _flip(p, pos)
        rc, j = verify(p, "--archive", world["arch"])
        assert rc == 1 and j["verdict"] == "NOT_OK", (name, j)
        assert j["failure"].startswith("bytes"), (name, j["failure"])
        rc, j = verify(p)             # the provenance alone catches it as well
        assert rc == 1, name


def test_truncated_or_extended_files_are_not_ok(world, statement, tmp_path):
    size = statement["bytes"]
    for n in (0, 1, 100, size // 2, size - 1):
        p = _copy(statement, tmp_path, "cut.mkv")
        with open(p, "r+b") as f:
            f.truncate(n)
        rc, j = verify(p, "--archive", world["arch"])
        assert rc == 1 and "cut short" in j["failure"], (n, j["failure"])
    p = _copy(statement, tmp_path, "long.mkv")
    with open(p, "ab") as f:
        f.write(b"\0")
    assert verify(p, "--archive", world["arch"])[0] == 1
    pdata = open(statement["prov"], "rb").read()
    for n in (0, 1, len(pdata) // 2, len(pdata) - 1):
        p = _copy(statement, tmp_path, "pcut.mkv")
        open(p + ".prov", "wb").write(pdata[:n])
        rc, j = verify(p, "--archive", world["arch"])
        assert rc == 1 and j["failure"].startswith("provenance"), (n, j)


def _edit_prov(c, tmp_path, edit):
    p = _copy(c, tmp_path, "edit.mkv")
    prov = cbor2.loads(open(p + ".prov", "rb").read())
    edit(prov)
    open(p + ".prov", "wb").write(clipfile.encode_prov(prov))
    return p


def test_edited_provenance_is_not_ok(world, statement, tmp_path):
    def flip_hash(p):
        p["hashes"][0] = bytes([p["hashes"][0][0] ^ 1]) + p["hashes"][0][1:]

    def flip_record(p):
        r = bytearray(p["records"][-1])
        r[-70] ^= 1
        p["records"][-1] = bytes(r)

    def drop_record(p):
        p["records"] = p["records"][:2]

    def later_start(p):
        p["lead"] += 1

    def other_subject(p):
        p["subject"]["seqs"] = [world["fa"]["mark"]]

    def proof(p):
        p["log"]["entries"][0][2] = p["log"]["entries"][0][2][1:]

    def entry_index(p):
        p["log"]["entries"][0][0] += 1

    def as_mark(p):
        p["subject"]["kind"] = "mark"

    def as_range(p):
        p["subject"].update(kind="range", **{"from": 1, "to": 2})

    def no_subject(p):
        p["subject"]["seqs"] = []

    for edit, word in ((flip_hash, "bytes"), (flip_record, "signatures"),
                       (drop_record, "subject"), (later_start, "bytes"),
                       (other_subject, "subject"), (entry_index, "station log"),
                       (as_mark, "subject"), (as_range, "subject"), (no_subject, "subject")):
        p = _edit_prov(statement, tmp_path, edit)
        rc, j = verify(p, "--archive", world["arch"])
        assert rc == 1 and j["failure"].startswith(word), (edit.__name__, j["failure"])
    p = _edit_prov(statement, tmp_path, proof)
    rc, j = verify(p)                   # the provenance's own proof, checked without archive
    assert rc == 1 and j["failure"].startswith("station log"), j
    # a provenance not in deterministic CBOR (an editor's re-encoding)
    p = _copy(statement, tmp_path, "nc.mkv")
    prov = cbor2.loads(open(p + ".prov", "rb").read())
    open(p + ".prov", "wb").write(cbor2.dumps(dict(reversed(list(prov.items())))))
    rc, j = verify(p)
    assert rc == 1 and "deterministic" in j["failure"]


def test_another_devices_footage_is_not_ok(world, statement, tmp_path):
    res = clip.make_clip(world["arch"], str(tmp_path / "b.mkv"), mark=(B, world["fb"]["mark"]),
                         before=1, after=1)
    (cb,) = res["clips"]
    assert verify(cb["file"], "--archive", world["arch"])[1]["verdict"] == "OK"
    # presented as device A's: with A's key pinned
    rc, j = verify(cb["file"], "--key", world["tmp"] / "a.pub")
    assert rc == 1 and "not this device's footage" in j["failure"], j
    # its provenance relabelled as A's, with A's registered key
    a_key = world["a"].pubkey

    def relabel(p):
        p["device"], p["key"] = A, a_key
    p = _edit_prov(cb, tmp_path, relabel)
    for extra in (["--archive", world["arch"]], ["--key", world["tmp"] / "a.pub"], []):
        rc, j = verify(p, *extra)
        assert rc == 1 and j["failure"].startswith("records"), (extra, j["failure"])
    # B's bytes under A's provenance
    p = _copy(statement, tmp_path, "swap.mkv")
    data = open(cb["file"], "rb").read()
    want = statement["bytes"]
    open(p, "wb").write((data * (want // len(data) + 1))[:want])
    rc, j = verify(p, "--archive", world["arch"])
    assert rc == 1 and j["failure"].startswith("bytes")


def test_hostile_files_one_line_no_traceback(world, statement, tmp_path, capsys):
    def check(argv, code, word):
        rc = cli(["verify-clip"] + argv)
        out, err = capsys.readouterr()
        assert rc == code, (argv, out, err)
        assert word in out + err and "Traceback" not in out + err, (argv, out, err)
        if code == 3:
            assert len(err.strip().splitlines()) == 1 and out == "", err

    p = _copy(statement, tmp_path, "h.mkv")
    os.remove(p + ".prov")
    os.mkfifo(p + ".prov")                         # a FIFO: refused, never waited on
    check([p], 3, "not a regular file")
    os.remove(p + ".prov")
    with open(p + ".prov", "wb") as f:             # sparse, larger than any provenance
        f.truncate(clipfile.MAX_PROV + 1)
    check([p], 1, "more than a provenance file may have")
    q = str(tmp_path / "junk.mkv")
    open(q, "wb").write(b"\x1a\x45\xdf\xa3junk")
    open(q + ".prov", "wb").write(b"\xa1\x61x\x1b" + b"\xff" * 8)
    check([q], 1, "provenance")
    check([str(tmp_path / "none.mkv")], 3, "does not exist")
    os.symlink(statement["file"], str(tmp_path / "link.mkv"))
    check([str(tmp_path / "link.mkv"), "--prov", statement["prov"]], 3, "symbolic link")
    check([statement["file"], "--archive", world["arch"], "--station-key", "x"], 3,
          "--station-key")
    check([statement["file"], "--key", str(tmp_path / "nokey.pub")], 3, "cannot read key")


def test_report_clips_dir_writes_every_statement(world, tmp_path, capsys):
    from host_tools import report
    d = tmp_path / "clips"
    rc = cli(["report", "--archive", world["arch"], "--clips", str(d), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == (1 if rep["problems"] else 0)    # (the fixture's 2023 records came late)
    (st,) = rep["statements"]
    assert st["clip_error"] is None, st
    assert st["clip_file"] == str(d / ("%s-%d.mkv" % (A, world["fa"]["voice"])))
    assert sorted(os.listdir(d)) == ["%s-%d.mkv" % (A, world["fa"]["voice"]),
                                     "%s-%d.mkv.prov" % (A, world["fa"]["voice"])]
    assert verify(st["clip_file"], "--archive", world["arch"])[1]["verdict"] == "OK"
    # the command the report prints writes the same clip
    cmd = st["clip_command"].split()
    assert cmd[:2] == ["sealcam", "clip"]
    out = tmp_path / "again.mkv"
    cmd[cmd.index("--out") + 1] = str(out)
    assert cli(cmd[1:]) == 0
    capsys.readouterr()
    assert open(out, "rb").read() == open(st["clip_file"], "rb").read()
    assert report.build_report(world["arch"], officer="OFC-8")["statements"] == []


# --- the vector and the CDDL rule (SPEC §12.3) ---------------------------------------------

VEC = os.path.join(ROOT, "protocol", "vectors", "stores")


def _cddl(data):
    pycddl = pytest.importorskip("pycddl")
    schema = open(os.path.join(ROOT, "protocol", "schema.cddl")).read()
    pycddl.Schema("root = clip-provenance\n" + schema).validate_cbor(data)


def test_vector_clip_verifies_and_matches_the_cddl():
    """protocol/vectors/stores/clip: the workflow store's statement, cut by make_vectors.py
    with a fixed station key: it verifies with the vector device key and station key
    pinned, plays as video + audio, and its provenance is a `clip-provenance`."""
    mkv_, prov = os.path.join(VEC, "clip", "statement.mkv"), os.path.join(VEC, "clip",
                                                                          "statement.mkv.prov")
    rc, j = verify(mkv_, "--key", os.path.join(VEC, "device.pub"), "--station-key",
                   os.path.join(VEC, "clip", "station.pub"))
    assert rc == 0 and j["verdict"] == "OK", j
    assert j["device_id"] == "SC-VECTOR01" and "VOICE_ANNOTATION" in j["what"]
    nv, audio_s, _, _ = decode(mkv_)
    assert nv >= 2 and audio_s >= 1.5
    _cddl(open(prov, "rb").read())
    # a provenance edited against the rule is refused by pycddl too
    p = cbor2.loads(open(prov, "rb").read())
    p["first"] = -1
    with pytest.raises(Exception):
        _cddl(cbor2.dumps(p, canonical=True))


def test_fresh_provenance_matches_the_cddl(statement):
    _cddl(open(statement["prov"], "rb").read())


def test_statement_across_a_rollover_is_one_clip_per_segment(tmp_path, capsys):
    """A statement the segment rollover cut in two (SPEC §10.3: one VOICE_ANNOTATION per
    segment): asked by its INTERRUPTION, it gives FILE-DEVICE-SEGMENT.mkv for each part."""
    s = rw.RefStore(tmp_path / "sd", seed=b"\xc3" * 32, device="SC-CLIPC003", chunk=CHUNK)
    s.boot()
    s.rec_start()
    m = Media(s)
    _checkpointed(s, m, 1.5)
    interruption = s.interrupt("place_change").seq
    seg1 = s.rec_start("resume").seq
    m = Media(s)
    _checkpointed(s, m, 1)
    start = s.position()
    m.run(1)
    end = s.position()
    s.close()
    seg2 = s.rec_start("rollover").seq
    m = Media(s)
    m.run(1)
    v1 = s.voice_annotation(interruption, span=[seg1, start[1], start[2], end[1], end[2]]).seq
    v2 = s.voice_annotation(interruption, start=[seg2, 0, 0]).seq
    _checkpointed(s, m, 1)
    s.close()
    s.rec_stop()
    arch = tmp_path / "arch"
    station.init(arch)
    offload(s, arch)
    out = tmp_path / "st.mkv"
    rc = cli(["clip", "--archive", str(arch), "--annotation", "SC-CLIPC003:%d" % interruption,
              "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [(os.path.basename(c["file"]), c["subject"]["seqs"]) for c in res["clips"]] == [
        ("st-SC-CLIPC003-%d.mkv" % seg1, [interruption, v1]),
        ("st-SC-CLIPC003-%d.mkv" % seg2, [interruption, v2])]
    for c in res["clips"]:
        decode(c["file"])
        rc, j = verify(c["file"], "--archive", str(arch))
        assert rc == 0 and j["verdict"] == "OK", j
    assert not os.path.exists(out)


# --- the layout fields are checked against the media (attack review, finding 1) ----------

def _segment_bytes(world, prov):
    d = os.path.join(world["arch"], "devices", prov["device"], "m")
    media = open(os.path.join(d, "%08d.mkv" % prov["segment"]), "rb").read()
    idx = open(os.path.join(d, "%08d.idx" % prov["segment"]), "rb").read()
    return media, [idx[i:i + 32] for i in range(0, len(idx), 32)]


def _relayout(world, c, tmp_path, name, header=None, head_chunks=None, lead=None):
    """A clip of the same chunks k..m laid out with other (unsigned) header / head_chunks /
    lead values, every byte still the recorder's and the hashes the root needs: what an
    editor of the provenance can make."""
    prov = cbor2.loads(open(c["prov"], "rb").read())
    media, hs = _segment_bytes(world, prov)
    k, m, C = prov["first"], prov["last"], CHUNK
    h = prov["header"] if header is None else header
    hc = prov["head_chunks"] if head_chunks is None else head_chunks
    ld = prov["lead"] if lead is None else lead
    n = len(media) // C + (1 if len(media) % C else 0)
    data = media[:h] + clipfile.void_header(hc * C - h + ld) + media[h:hc * C] + \
        media[k * C:min((m + 1) * C, len(media))]
    root_n = [clipfile.R.decode(r) for r in prov["records"]]
    root_n = next(r for r in root_n if r.seq == prov["root_seq"]).body[clipfile.R.K.CHUNKS]
    assert root_n <= n
    prov.update(header=h, head_chunks=hc, lead=ld, hashes=hs[hc:k] + hs[m + 1:root_n])
    p = str(tmp_path / name)
    open(p, "wb").write(data)
    open(p + ".prov", "wb").write(clipfile.encode_prov(prov))
    return p, prov


def test_layout_fields_are_checked_against_the_media(world, statement, tmp_path):
    """`header`, `head_chunks` and `lead` are not signed: an edited value that keeps every
    byte the recorder's (a header ending inside Tracks: the statement plays silent; a
    header swallowing chunks: a splice; a lead off the Cluster) is NOT_OK, named."""
    prov = clipfile.decode_prov(open(statement["prov"], "rb").read())
    h, lead = prov["header"], prov["lead"]
    p, _ = _relayout(world, statement, tmp_path, "same.mkv")      # the helper is honest
    assert open(p, "rb").read() == open(statement["file"], "rb").read()
    assert verify(p, "--archive", world["arch"])[1]["verdict"] == "OK"
    media, _ = _segment_bytes(world, prov)
    lay = clipfile.walk(io.BytesIO(media), len(media))
    k = prov["first"]
    # a splice: the header "ends" at a block boundary in chunks before k (head_chunks = k)
    bend = max(b.end for b in lay.blocks if b.end <= k * CHUNK - 1)
    cases = {"silent": dict(header=h - 44), "nothing": dict(header=100),
             "splice": dict(header=bend, head_chunks=-(-bend // CHUNK)),
             "more head chunks": dict(head_chunks=2),
             "lead 0": dict(lead=0), "lead +12": dict(lead=lead + 12)}
    for name, kw in cases.items():
        p, pv = _relayout(world, statement, tmp_path, "lay.mkv", **kw)
        for extra in (["--archive", world["arch"]], []):
            rc, j = verify(p, *extra)
            assert rc == 1 and j["failure"].startswith("layout"), (name, extra, j["failure"])


# --- a device with two shifts (attack review, findings 2 and 3) ----------------------------

D = "SC-CLIPD004"


@pytest.fixture(scope="module")
def shifts(tmp_path_factory):
    """Device D: officer OFC-7 (unit U1) records segment 1, is released; OFC-9 (unit U2)
    records segment 2."""
    tmp = tmp_path_factory.mktemp("shifts")
    s = rw.RefStore(tmp / "sd", seed=b"\xd4" * 32, device=D, officer=None, chunk=CHUNK)
    f = {}
    s.boot()
    f["assign7"] = s.assign("OFC-7", "U1").seq
    f["seg1"] = s.rec_start().seq
    _checkpointed(s, Media(s), 2)
    s.close()
    s.rec_stop()
    f["release"] = s.assign(None).seq
    f["assign9"] = s.assign("OFC-9", "U2").seq
    f["seg2"] = s.rec_start().seq
    _checkpointed(s, Media(s), 2)
    s.close()
    s.rec_stop()
    arch = tmp / "arch"
    station.init(arch)
    offload(s, arch)
    recs = {r.seq: rw.decode_record(r.data) for r in s.records}
    return {"tmp": tmp, "arch": str(arch), "s": s, "f": f,
            "rtc": {q: recs[q][4] for q in recs}}


def _add_records(arch, c, tmp_path, name, extra):
    """c's clip with the records ``extra`` (seqs, honestly logged ones) added to its
    provenance as the records it is of, with their station log entries."""
    prov = cbor2.loads(open(c["prov"], "rb").read())
    src = clip.ArchiveSource(arch, prov["device"])
    try:
        rs = [clipfile.R.decode(r) for r in prov["records"]] + [src.recs[q] for q in extra]
        prov["records"] = [r.data for r in rs]
        prov["subject"]["seqs"] = sorted(set(prov["subject"]["seqs"]) | set(extra))
        prov["log"] = src.log_part(rs)
    finally:
        src.close()
    p = _copy(c, tmp_path, name)
    open(p + ".prov", "wb").write(clipfile.encode_prov(prov))
    return p


def test_a_range_clip_is_only_the_shift_it_was_recorded_in(shifts, tmp_path):
    """Any ASSIGN of the device is signed and logged: one of another shift (another
    officer, or after the segment) added to a range clip does not make it that officer's
    footage: NOT_OK. `sealcam clip --officer` names each shift's own segments only."""
    f, rtc, arch = shifts["f"], shifts["rtc"], shifts["arch"]
    t0, t1 = rtc[f["assign7"]] - 1000, rtc[f["seg2"]] + 3_600_000
    res = clip.make_clip(arch, str(tmp_path / "o7.mkv"), officer="OFC-7", since=t0, until=t1)
    assert [(c["segment"], c["subject"]["seqs"]) for c in res["clips"]] == \
        [(f["seg1"], [f["assign7"]])]
    res = clip.make_clip(arch, str(tmp_path / "o9.mkv"), officer="OFC-9", since=t0, until=t1)
    assert [(c["segment"], c["subject"]["seqs"]) for c in res["clips"]] == \
        [(f["seg2"], [f["assign9"]])]
    assert verify(res["clips"][0]["file"], "--archive", arch)[1]["verdict"] == "OK"
    # a device range clip of each segment, relabelled as the other officer's shift
    res = clip.make_clip(arch, str(tmp_path / "d.mkv"), device=D, since=t0, until=t1)
    c1, c2 = res["clips"]
    for c, extra in ((c2, [f["assign7"]]), (c1, [f["assign9"]]),
                     (c2, [f["assign7"], f["assign9"]])):
        assert verify(c["file"], "--archive", arch)[1]["verdict"] == "OK"
        p = _add_records(arch, c, tmp_path, "forged.mkv", extra)
        rc, j = verify(p, "--archive", arch)
        assert rc == 1 and j["failure"].startswith("subject") and "not the shift" in \
            j["failure"], (extra, j["failure"])


def _damaged_copy(arch, tmp_path, *sql):
    import sqlite3
    dst = tmp_path / ("arch-%d" % len(os.listdir(tmp_path)))
    shutil.copytree(arch, dst)
    db = sqlite3.connect(str(dst / "archive.sqlite"))
    for q in sql:
        db.execute(q[0], q[1:])
    db.commit()
    db.close()
    return str(dst)


def test_records_missing_from_the_index_are_noticed(shifts, world, tmp_path, capsys):
    """The index (archive.sqlite) is not signed: records the station log holds but the index
    lacks (the release and the next officer's ASSIGN, a statement) make `sealcam clip` exit
    1 and say to run `sealcam verify`, never cut another shift as OFC-7's or say that
    nothing was said."""
    f, rtc = shifts["f"], shifts["rtc"]
    arch = _damaged_copy(shifts["arch"], tmp_path,
                         ("DELETE FROM records WHERE device = ? AND seq IN (?, ?)", D,
                          f["release"], f["assign9"]))
    t0, t1 = _iso(rtc[f["assign7"]] - 1000), _iso(rtc[f["seg2"]] + 3_600_000)
    out = tmp_path / "o7.mkv"
    rc = cli(["clip", "--archive", arch, "--officer", "OFC-7", "--from", t0, "--to", t1,
              "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "seq %d" % f["release"] in err and "missing" in err, err
    assert "sealcam verify" in err and len(err.splitlines()) == 1
    assert not [x for x in os.listdir(tmp_path) if x.startswith("o7")]
    arch = _damaged_copy(world["arch"], tmp_path,
                         ("DELETE FROM records WHERE device = ? AND seq = ?", A,
                          world["fa"]["voice"]))
    rc = cli(["clip", "--archive", arch, "--annotation", "%s:%d" % (A, world["fa"]["int"]),
              "--out", str(tmp_path / "i.mkv")])
    err = capsys.readouterr().err
    assert rc == 1 and "sealcam verify" in err and "nothing was said" not in err, err


def test_a_damaged_index_or_lost_media_is_one_line(world, tmp_path, capsys):
    """A damaged archive.sqlite (a table dropped, a column renamed) is exit 1 with one line
    saying to run `sealcam verify`, never a traceback; media the station log recorded but
    the archive lost is said so (exit 1), not "was not offloaded"."""
    argv = ["--annotation", "%s:%d" % (A, world["fa"]["voice"]), "--out",
            str(tmp_path / "x.mkv")]
    for sql in ("DROP TABLE records", "ALTER TABLE records RENAME COLUMN data TO d"):
        arch = _damaged_copy(world["arch"], tmp_path, (sql,))
        for sel in (argv, ["--officer", "OFC-7", "--from", "2000-01-01T00:00:00Z", "--to",
                           "2100-01-01T00:00:00Z", "--out", str(tmp_path / "x.mkv")]):
            rc = cli(["clip", "--archive", arch] + sel)
            out, err = capsys.readouterr()
            assert rc == 1 and "sealcam verify" in err and "Traceback" not in err, (sql, err)
            assert len(err.splitlines()) == 1, err
    arch = tmp_path / "lost"
    shutil.copytree(world["arch"], arch)
    os.remove(arch / "devices" / A / "m" / ("%08d.mkv" % world["fa"]["seg2"]))
    rc = cli(["clip", "--archive", str(arch)] + argv)
    err = capsys.readouterr().err
    assert rc == 1 and "missing from the archive" in err and "not offloaded" not in err, err
    assert not os.path.exists(tmp_path / "x.mkv")


def test_the_walk_reads_only_checked_media(world, statement, tmp_path, capsys):
    """`sealcam clip` finds Clusters by walking the media: a byte changed in a chunk the
    clip does not hold (before its first chunk) would move the cut or the times it reports;
    every chunk the walk reads is checked against its signed hash first: exit 1."""
    prov = clipfile.decode_prov(open(statement["prov"], "rb").read())
    assert prov["first"] > prov["head_chunks"]
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch)
    media = arch / "devices" / A / "m" / ("%08d.mkv" % world["fa"]["seg2"])
    os.chmod(media, 0o644)
    data = open(media, "rb").read()
    lay = clipfile.walk(io.BytesIO(data), len(data))
    # a block's size byte in a chunk before the clip's: the walk would go astray
    blk = next(b for b in lay.blocks if prov["head_chunks"] * CHUNK <= b.offset
               and b.end < prov["first"] * CHUNK)
    _flip(str(media), blk.offset + 4)
    rc = cli(["clip", "--archive", str(arch), "--annotation", "%s:%d" % (A, world["fa"]["voice"]),
              "--out", str(tmp_path / "x.mkv")])
    err = capsys.readouterr().err
    assert rc == 1 and "does not match its signed hash" in err and "sealcam verify" in err, err
    assert not os.path.exists(tmp_path / "x.mkv")


def test_a_mark_clip_always_holds_the_mark(world, tmp_path, capsys):
    """--before 0 --after 0 (or a mark at the media's end): the clip still holds the mark's
    byte and verifies; a MARK past the signed media (offloaded while recording) is exit 1,
    no clip written."""
    for dev, seq, before, after in ((A, world["fa"]["mark"], 0, 0),
                                    (B, world["fb"]["mark2"], 0.1, 0.1),
                                    (B, world["fb"]["mark2"], 0, 3),
                                    (B, world["fb"]["mark"], 0, 0)):
        out = tmp_path / ("m-%d-%s.mkv" % (seq, after))
        rc = cli(["clip", "--archive", world["arch"], "--mark", "%s:%d" % (dev, seq),
                  "--before", str(before), "--after", str(after), "--out", str(out)])
        capsys.readouterr()
        assert rc == 0, (dev, seq, before, after)
        rc, j = verify(out, "--archive", world["arch"])
        assert rc == 0 and j["failure"] is None, (dev, seq, before, after, j["failure"])
    s = rw.RefStore(tmp_path / "sd", seed=b"\xe5" * 32, device="SC-CLIPE005", officer="OFC-1",
                    chunk=CHUNK)
    s.boot()
    s.rec_start()
    m = Media(s)
    _checkpointed(s, m, 2)
    m.run(1.5)                              # after the last checkpoint: not signed yet
    mk = s.mark("important").seq
    m.run(0.5)
    arch = tmp_path / "open"
    station.init(arch)
    offload(s, arch)
    out = tmp_path / "open.mkv"
    rc = cli(["clip", "--archive", str(arch), "--mark", "SC-CLIPE005:%d" % mk, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "past the" in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(out)


def test_the_asked_range_and_what_is_missing_are_said(shifts, world, tmp_path, capsys):
    """"asked" is what was asked, not what the recording has: a mark 2.5 s into its segment
    asked with 5 s before says 2.5 s are missing; a device range from a minute before the
    first segment to an hour after the last, over two segments, lists what no segment
    covers (before, between the segments, after)."""
    out = tmp_path / "m.mkv"
    rc = cli(["clip", "--archive", world["arch"], "--mark", "%s:%d" % (A, world["fa"]["mark"]),
              "--before", "5", "--after", "0.5", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and re.search(r"\(media -2\.[0-6] s to ", text), text
    assert re.search(r"does not reach the whole range asked \(2\.[0-6] s missing before",
                     text), text
    f, rtc = shifts["f"], shifts["rtc"]
    t0, t1 = rtc[f["seg1"]] - 60_000, rtc[f["seg2"]] + 3_600_000
    res = clip.make_clip(shifts["arch"], str(tmp_path / "d.mkv"), device=D, since=t0,
                         until=t1)
    c1, c2 = res["clips"]
    assert c1["asked"]["from_s"] == pytest.approx(-60, abs=1)      # the range asked
    assert c1["asked"]["to"] == c2["asked"]["to"]
    assert c2["asked"]["to_s"] > 3000
    gaps = res["not_recorded"]
    assert len(gaps) == 3 and all(g["device"] == D for g in gaps), gaps
    assert gaps[0]["s"] == pytest.approx(60, abs=1)             # before the first segment
    assert 0 < gaps[1]["s"] < 5                                 # between the two segments
    assert gaps[2]["s"] > 3500                                  # after the last
    capsys.readouterr()
    rc = cli(["clip", "--archive", shifts["arch"], "--device", D, "--from", _iso(t0), "--to",
              _iso(t1), "--out", str(tmp_path / "e.mkv")])
    text = capsys.readouterr().out
    assert rc == 0 and text.count("not recorded:") == 3, text


# --- cost and bounds (attack review, finding 7) ----------------------------------------------

def _forge(tmp_path, name, chunks, chunk, dev="SC-FORGED01", seg=5, entries=None):
    """A whole clip (k = 0: the segment's chunks as they are) and its provenance, made with
    a forger's own device and station keys: what anyone can make."""
    import hashlib
    from host_tools import records as R
    from host_tools.tlog import merkle, note
    from host_tools.tlog.log import encode_entry

    def body(t, seq, extra):
        b = {0: t, 1: seq, 2: b"\0" * 32, 3: dev, 4: 1_700_000_000_000 + seq, 5: seq, 6: 1,
             7: None, 8: "x", 9: 1}
        b.update(extra)
        return b
    dk, sk = rw.key_from_seed(b"\x66" * 32), rw.key_from_seed(b"\x77" * 32)
    hs = [hashlib.sha256(x).digest() for x in chunks]
    start = rw.sign_record(body(R.REC_START, seg, {10: seg, 11: "m/%08d.mkv" % seg, 12: chunk,
                                                    17: "button", 23: "video/x-matroska"}), dk)
    root = rw.sign_record(body(R.SEGMENT, seg + 1, {10: seg, 13: sum(map(len, chunks)),
                                                     14: len(chunks), 15: R.chunk_root(hs),
                                                     16: [1_700_000_000_000 + seg, seg]}), dk)
    items = [[R.decode(r).seq, hashlib.sha256(r).digest(), R.decode(r).type]
             for r in (start, root)]
    origin = "sealcam-station/" + "ab" * 16
    entry = encode_entry({"type": "records", "at": "2026-01-01T00:00:00.000+00:00",
                          "device": dev, "offload": 1, "records": items})
    cp = note.sign_note(note.checkpoint_text(origin, 1, merkle.root([merkle.leaf_hash(entry)])),
                        origin, sk)
    prov = {"format": clipfile.FORMAT, "device": dev, "key": rw.raw_pub(dk), "segment": seg,
            "chunk": chunk, "header": 0, "head_chunks": 0, "first": 0,
            "last": len(chunks) - 1, "lead": 0, "hashes": [], "records": [start, root],
            "root_seq": seg + 1,
            "subject": {"kind": "range", "seqs": [], "from": 1_700_000_000_000,
                        "to": 1_700_000_100_000},
            "log": {"origin": origin, "station": rw.raw_pub(sk), "checkpoint": cp,
                    "entries": entries if entries is not None else [[0, entry, []]]}}
    p = str(tmp_path / name)
    open(p, "wb").write(b"".join(chunks))
    open(p + ".prov", "wb").write(clipfile.encode_prov(prov))
    return p, prov, (dk, sk)


def test_verify_clip_cost_is_bounded(world, statement, tmp_path):
    """The chain is folded chunk by chunk in one pass (1-byte chunks: memory does not grow
    with their count); a clip over the 64 MiB of SPEC §12.3 (a sparse file) is refused
    before a byte is hashed; a log entry carried twice is refused."""
    import time
    import tracemalloc
    from host_tools import clip_verify
    n = 1 << 16
    p, _, _ = _forge(tmp_path, "tiny.mkv", [bytes([i & 0xFF]) for i in range(n)], 1)
    tracemalloc.start()
    try:
        res = clip_verify.verify_clip(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.failure is None, res.failure
    assert peak < 4 << 20, peak                   # not a dict or a list of 2^16 hashes
    q = _copy(statement, tmp_path, "huge.mkv")
    with open(q, "r+b") as f:
        f.truncate(clipfile.MAX_CLIP + 1)
    t = time.monotonic()
    rc, j = verify(q, "--archive", world["arch"])
    assert rc == 1 and "more than" in j["failure"] and time.monotonic() - t < 5, j["failure"]
    dup = _edit_prov(statement, tmp_path,
                     lambda pv: pv["log"].update(entries=pv["log"]["entries"] * 2))
    rc, j = verify(dup, "--archive", world["arch"])
    assert rc == 1 and "carried twice" in j["failure"], j["failure"]


def test_clip_refuses_a_clip_over_the_bound(world, tmp_path, capsys, monkeypatch):
    """`sealcam clip` never writes a clip over the bound of SPEC §12.3 (lowered here so a
    few seconds of media exceed it): exit 3, ask a shorter range, nothing written."""
    monkeypatch.setattr(clipfile, "MAX_CLIP", 50_000)
    out = tmp_path / "big.mkv"
    rc = cli(["clip", "--archive", world["arch"], "--mark", "%s:%d" % (A, world["fa"]["mark"]),
              "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 3 and "shorter range" in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(out)


def test_a_forged_clip_with_no_key_pinned_is_not_proof(tmp_path, capsys):
    """Anyone can make a clip and a provenance that agree, with keys of their own: with
    neither the device key nor the station key pinned, verify-clip says NOT_PROVEN (exit 4),
    never that a byte is "the recorder's"; pinning the forger's device key gives the usual
    OK_WITH_MISSING_INFO (the station key is still the provenance's word), pinning a real
    one NOT_OK."""
    p, prov, (dk, sk) = _forge(tmp_path, "forged.mkv", [bytes(100)] * 3 + [b"x" * 7], 100)
    rc, j = verify(p)
    assert rc == 4 and j["verdict"] == "NOT_PROVEN" and j["failure"] is None, j
    details = " ".join(c["detail"] for c in j["checks"])
    assert "the recorder's" not in details and "provenance's own key (not pinned)" in details
    rc = cli(["verify-clip", p])
    out = capsys.readouterr().out
    assert rc == 4 and "verdict:     NOT_PROVEN" in out and "anyone can make" in out, out
    (tmp_path / "forger.pub").write_text(rw.raw_pub(dk).hex() + "\n")
    (tmp_path / "station.pub").write_text(rw.raw_pub(sk).hex() + "\n")
    rc, j = verify(p, "--key", tmp_path / "forger.pub")
    assert rc == 0 and j["verdict"] == "OK_WITH_MISSING_INFO", j
    rc, j = verify(p, "--station-key", tmp_path / "station.pub")
    assert rc == 0 and j["verdict"] == "OK_WITH_MISSING_INFO", j
    (tmp_path / "other.pub").write_text(rw.raw_pub(rw.key_from_seed(b"\x01" * 32)).hex())
    rc, j = verify(p, "--key", tmp_path / "other.pub")
    assert rc == 1 and j["verdict"] == "NOT_OK"


def test_out_inside_the_archive_is_refused(world, tmp_path, capsys):
    """--out naming a file inside the archive (its objects, its log, its index: by a path
    or through a symbolic link to a folder of it) is exit 3 and writes nothing."""
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch)
    before = {p: open(p, "rb").read() for p in (arch / "archive.sqlite", arch / "station.pub")}
    os.symlink(str(arch / "devices"), str(tmp_path / "link"))
    for out in (arch / "archive.sqlite", arch / "devices" / A / "x.mkv", arch / "new.mkv",
                tmp_path / "link" / "x.mkv", arch / "log" / ".." / "station.pub"):
        rc = cli(["clip", "--archive", str(arch), "--annotation",
                  "%s:%d" % (A, world["fa"]["voice"]), "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 3 and "inside the archive" in err and len(err.splitlines()) == 1, (out, err)
    assert not os.path.exists(arch / "new.mkv") and not os.path.exists(arch / "devices" / A /
                                                                         "x.mkv")
    assert before == {p: open(p, "rb").read() for p in before}


def test_clip_of_an_archive_with_users_needs_an_approved_export_request(world, tmp_path,
                                                                       capsys, monkeypatch):
    """#18: once the archive has clerk users, `sealcam clip` cuts originals only for a
    signed-in user under an approved export request covering the segment, one register line
    per clip naming its SHA-256; a refusal is one line, exit 5, nothing written. An archive
    without users (every other test here) behaves as before."""
    import hashlib
    from host_tools.catalogue import access, cases, users
    from host_tools.catalogue.store import Catalogue
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch, symlinks=True)
    assert not clip.has_users(str(arch))
    with Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", os_account="nosuch-h"))
        head = users.User("wang.head", "archive_head", how="os")
        cat.act(head, users.add_event("li.na", "clerk", password="clerk pass 2026"))
        cat.act(head, users.add_event("wu.head", "archive_head", os_account="nosuch-w"))
        cat.act(head, users.add_event("zhao.lead", "unit_leader", os_account="nosuch-l",
                                      unit="U1"))
        cat.refresh_recordings(None)
        clerk = users.User("li.na", "clerk", how="password")
        cat.act(clerk, cases.opened_event("FZ-7", "违法建设", unit="U1"))
        cat.act(clerk, cases.linked_event("FZ-7", device=A, segment=world["fa"]["seg1"]))
        rid = access.request(cat, clerk, target_kind="case", target="FZ-7", case_no="FZ-7",
                             purpose="court 法院", actions=["export"])
        pending = access.request(cat, clerk, target_kind="case", target="FZ-7",
                                 case_no="FZ-7", purpose="court", actions=["export"])
        access.approve(cat, users.User("wu.head", "archive_head", how="os"), rid)
        access.approve(cat, users.User("zhao.lead", "unit_leader", how="os", unit="U1"), rid,
                       reason="ok")
    assert clip.has_users(str(arch))
    monkeypatch.setenv("SEALCAM_PASSWORD", "clerk pass 2026")
    mark = ["--mark", "%s:%d" % (A, world["fa"]["mark"])]
    other = ["--annotation", "%s:%d" % (A, world["fa"]["voice"])]     # segment 2: not filed

    def run(out, *extra):
        rc = cli(["clip", "--archive", str(arch), "--out", str(out)] + [str(x) for x in extra])
        o, e = capsys.readouterr()
        return rc, o, e

    for n, extra in enumerate(([*mark], [*mark, "--user", "li.na"],
                               [*mark, "--user", "li.na", "--request", pending],
                               [*other, "--user", "li.na", "--request", rid])):
        d = tmp_path / ("o%d" % n)
        d.mkdir()
        rc, _o, err = run(d / "c.mkv", *extra)
        assert rc == 5, (extra, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert os.listdir(d) == [], os.listdir(d)
    d = tmp_path / "ok"
    d.mkdir()
    rc, out, err = run(d / "c.mkv", *mark, "--user", "li.na", "--request", rid)
    assert rc == 0, err
    assert sorted(os.listdir(d)) == ["c.mkv", "c.mkv.prov"]
    assert "sealcam verify-clip %s" % (d / "c.mkv") in out
    sha = hashlib.sha256((d / "c.mkv").read_bytes()).hexdigest()
    with Catalogue(arch) as cat:
        used = [(x["device"], x["segment"], x["output"], x["valid"])
                for x in access.register(cat) if x["request_id"] == rid]
    assert used == [(A, world["fa"]["seg1"], sha, True)]
    # `sealcam report --clips DIR` cuts every statement: on an archive with users it is
    # refused in one line (exit 3), nothing written; `sealcam clip --request` is the way
    d = tmp_path / "report-clips"
    rc = cli(["report", "--archive", str(arch), "--clips", str(d)])
    _o, err = capsys.readouterr()
    assert rc == 3 and not d.exists(), (rc, err)
    assert len(err.strip().splitlines()) == 1 and "--request" in err, err
