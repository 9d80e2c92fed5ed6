"""`sealcam status` gives storage in MB (10^6 bytes) and in minutes at the configured
bitrate (ARCHIVE/station.toml [recorder] bitrate_bps, default 8 Mbit/s), rounded down, the
same numbers in the text and the JSON. Against the virtual recorder over a real pty: with
the station's bitrate set to the recorder's, the minutes match the recorder's own
self-check count (same formula, firmware/sealcamfw/selfcheck.py).
"""
import os
import re

import pytest

from host_tools import station, stationconfig
from test_dock import register, run_json, sealcam
from test_offload import HAVE_SIM, Sim

pytestmark = pytest.mark.skipif(not HAVE_SIM, reason="no virtual recorder")

CAPACITY = 64_000_000              # bytes of the simulated card


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


def _floor_tenth_mb(n):
    return (n // 100_000) / 10


def _text_numbers(out):
    m = re.search(r"^storage  (\d+\.\d) MB free of (\d+\.\d) MB \(MB = 10\^6 bytes; rounded "
                  r"down\)\n {9}(\d+) min of recording at ([\d.]+) Mbit/s", out, re.M)
    assert m, out
    return float(m[1]), float(m[2]), int(m[3]), float(m[4])


def test_status_storage_mb_and_minutes(tmp_path, arch):
    card = tmp_path / "card"
    sim = Sim(card, trust=arch / "station.pub", record=2,
              extra=["--capacity", str(CAPACITY), "--setting", "bitrate=2000000"])
    try:
        register(arch, card)
        # the default bitrate (8 Mbit/s): text and JSON agree, rounded down
        rc, st, err = run_json("status", "--port", sim.port, "--archive", arch)
        sto = st["storage"]
        assert set(sto) == {"free_bytes", "total_bytes", "free_mb", "total_mb", "free_minutes",
                            "bitrate_bps", "bitrate_source"}
        assert sto["bitrate_bps"] == 8_000_000 and sto["bitrate_source"] == "default"
        free = sto["free_bytes"]
        assert 0 < free < sto["total_bytes"] <= CAPACITY
        assert sto["free_mb"] == _floor_tenth_mb(free)
        assert sto["total_mb"] == _floor_tenth_mb(sto["total_bytes"])
        assert sto["free_minutes"] == free // 1_000_000 // 60
        p = sealcam("status", "--port", sim.port, "--archive", arch)
        assert p.returncode in (0, 2), p.stdout + p.stderr
        fmb, tmb, mins, mbit = _text_numbers(p.stdout)
        # the recorder wrote nothing between the two: the same numbers
        assert (fmb, tmb, mins, mbit) == (sto["free_mb"], sto["total_mb"],
                                          sto["free_minutes"], 8.0)
        assert "(the default: set [recorder] bitrate_bps in ARCHIVE/station.toml" in p.stdout

        # the station set to the recorders' bitrate (2 Mbit/s): the minutes are the
        # recorder's own count (a fresh card: nothing releasable)
        conf = os.path.join(arch, "station.toml")
        with open(conf, "w") as f:
            f.write("[recorder]\nbitrate_bps = 2000000\n")
        rc, co, err = run_json("checkout", "--port", sim.port, "--archive", arch, "--officer",
                               "012345", "--unit", "U1", "--force", want=0)
        assert co["check"]["reasons"] == ["storage"]      # a small card: NOT_READY
        rc, st, err = run_json("status", "--port", sim.port, "--archive", arch)
        sto = st["storage"]
        assert sto["bitrate_bps"] == 2_000_000 and sto["bitrate_source"] == os.path.abspath(conf)
        assert sto["free_minutes"] == sto["free_bytes"] // 250_000 // 60
        mine = co["check"]["facts"]["storage_minutes"]
        # the SELF_CHECK measured its free space before writing its own record and the
        # ASSIGN after it: at most one minute's boundary apart
        assert sto["free_minutes"] in (mine, mine - 1), (sto, mine)
        assert st["last_check"]["facts"]["storage_minutes"] == mine
        p = sealcam("status", "--port", sim.port, "--archive", arch)
        fmb, tmb, mins, mbit = _text_numbers(p.stdout)
        assert (fmb, mins, mbit) == (sto["free_mb"], sto["free_minutes"], 2.0)
        assert "bitrate_bps of %s" % os.path.abspath(conf) in p.stdout
        assert "storage %d min by the recorder's count" % mine in p.stdout

        # a bad station.toml: one line naming it, exit 3, before the port
        with open(conf, "w") as f:
            f.write("[recorder]\nbitrate_bps = \"2M\"\n")
        p = sealcam("status", "--port", sim.port, "--archive", arch)
        assert p.returncode == 3 and p.stdout == ""
        (line,) = p.stderr.strip().splitlines()
        assert os.path.abspath(conf) in line and "bitrate_bps must be a whole number" in line
    finally:
        assert sim.stop() == 0


def test_units_round_down_exactly():
    big = (1 << 63) - 1
    assert stationconfig.fmt_mb(big) == "9223372036854.7 MB"
    assert stationconfig.mb_down(big) == 9223372036854.7
    assert stationconfig.fmt_mb(99_999) == "0.0 MB" and stationconfig.fmt_mb(100_000) == "0.1 MB"
    assert stationconfig.fmt_mb(1_999_999, 2) == "1.99 MB"
    # 60 s at 8 Mbit/s is 60,000,000 bytes: one byte less is 0 whole minutes
    assert stationconfig.minutes_down(60_000_000, 8_000_000) == 1
    assert stationconfig.minutes_down(59_999_999, 8_000_000) == 0
    assert stationconfig.minutes_down(0, 8_000_000) == 0
    assert stationconfig.fmt_bitrate(8_000_000) == "8 Mbit/s"
    assert stationconfig.fmt_bitrate(2_500_000) == "2.5 Mbit/s"
