"""`sealcam sim record` on both runtimes, then `sealcam verify` with the pinned key: the
same firmware, on CPython and on the MicroPython VM, leaves a store that verifies OK."""
import json
import os
import subprocess
import sys

import pytest

import mkvdecode

SEALCAM = [sys.executable, "-m", "host_tools.cli"]


def sealcam(*args):
    return subprocess.run(SEALCAM + list(args), capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("runtime,fs", [("cpython", "littlefs"), ("micropython", "fat")])
def test_sim_record_then_verify(tmp_path, runtime, fs):
    sd = tmp_path / "card"
    p = sealcam("sim", "record", str(sd), "--seconds", "25", "--runtime", runtime, "--fs", fs,
                "--checkpoint", "5", "--segment", "10", "--bitrate", "500000")
    assert p.returncode == 0, p.stdout + p.stderr
    pub = tmp_path / "card.flash" / "device.pub"
    assert pub.exists() and "sealcam verify" in p.stdout
    # the private seed is in the flash folder, and nowhere on the card
    seed = (tmp_path / "card.flash" / "key.bin").read_bytes()
    for root, _, files in os.walk(sd):
        for f in files:
            assert seed not in open(os.path.join(root, f), "rb").read()
    v = sealcam("verify", str(sd), "--key", str(pub), "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    rep = json.loads(v.stdout)
    assert rep["verdict"] == "OK"
    assert len(rep["segments"]) == 3      # 25 s in 10 s segments
    assert all(s["verdict"] == "OK" for s in rep["segments"])
    types = [r["type"] for r in rep["records"]]
    assert types[0] == "BOOT" and types[-1] == "REC_STOP" and "CHECKPOINT" in types


def test_cli_names_a_missing_store(tmp_path):
    v = sealcam("verify", str(tmp_path / "nope"))
    assert v.returncode == 3
    assert "nope" in v.stderr


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_segments_decode_as_video_and_audio_and_survive_cuts(tmp_path, runtime):
    """Every segment the recorder wrote decodes as MJPEG video at the configured rate and
    16 kHz audio; one cut at every chunk boundary and at random bytes still decodes up to
    the cut (what a power cut leaves: chunks are what checkpoints sign)."""
    import random

    import av
    sd = tmp_path / "card"
    p = sealcam("sim", "record", str(sd), "--seconds", "12", "--runtime", runtime,
                "--checkpoint", "5", "--segment", "6", "--bitrate", "400000")
    assert p.returncode == 0, p.stdout + p.stderr
    media = sorted(n for n in os.listdir(sd / "m") if n.endswith(".mkv"))
    assert len(media) >= 2, media
    for k, name in enumerate(media):
        path = str(sd / "m" / name)
        with av.open(path) as f:
            assert f.format.name.startswith("matroska")
            v, a = f.streams.video[0], f.streams.audio[0]
            assert v.guessed_rate == 10 and a.rate == 16000 and a.channels == 1
        nv, na = mkvdecode.decode(open(path, "rb").read())
        assert nv > 0 and (na > 0 or k == len(media) - 1), name   # the last may be an instant
        if k == 0:                      # a whole 6 s segment: 10 fps, 16 kHz, in step
            assert 59 <= nv <= 61 and abs(na - 6 * 16000) <= 1600, (name, nv, na)
    data = open(str(sd / "m" / media[0]), "rb").read()
    full_v, full_a = mkvdecode.decode(data)
    chunk = 65536
    rnd = random.Random(3)
    cuts = list(range(chunk, len(data), chunk)) + [rnd.randrange(20000, len(data))
                                                    for _ in range(12)]
    last = (0, 0)
    for cut in sorted(cuts):
        nv, na = mkvdecode.decode(data[:cut])
        assert nv > 0 and na > 0, cut                    # both streams up to the cut
        assert nv >= last[0] and na >= last[1], cut      # more bytes, more media
        # the cut loses only what lies past it (a frame is 5000 bytes at 400 kbit/s and
        # 10 fps; the one the cut goes through is lost, and at most 0.5 s of audio)
        assert (full_v - nv - 1) * 5000 <= len(data) - cut, (cut, nv, full_v)
        assert (full_a - na) * 2 <= len(data) - cut + 16000, (cut, na, full_a)
        last = (nv, na)
