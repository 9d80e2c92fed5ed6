"""`sealcam sim record` on both runtimes, then `sealcam verify` with the pinned key: the
same firmware, on CPython and on the MicroPython VM, leaves a store that verifies OK."""
import json
import os
import subprocess
import sys

import pytest

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
