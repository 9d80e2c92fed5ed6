"""`sealcam provision` (SPEC §9.1): no trust on first use. The recorder proves its key in a
dock session; the station registers it as provisioned by the named technician
(device_provisioned in the signed station log) and prints a label with a QR code.

Against the virtual recorder (`python -m sim.serve`, the real firmware) over a real pty.
The whole path (mpremote writes /flash/device_id and /flash/trust.cbor, resets the board,
which boots its firmware and makes its key) runs against the virtual board (`sealcam sim
board`, sim/board.py, with stock mpremote). The other tests use `sim serve`, whose flash
folder is prepared directly (trust.cbor, device_id) with provision --installed; `sim
serve` takes its id from --device.
"""
import json
import os
import subprocess
import sys

import png
import pytest

from host_tools import keys, station
from host_tools.archive import Archive
from host_tools.archive_verify import verify_archive
from host_tools.label import normalize_fingerprint, parse_qr_payload, qr_payload, \
    write_label_png
from host_tools.provision import trust_list

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEALCAM = [sys.executable, "-m", "host_tools.cli"]
DEV = "SC-PROV0001"
HAVE_BOARD = os.path.exists(os.path.join(ROOT, "sim", "board.py"))


def sealcam(*args, timeout=120):
    return subprocess.run(SEALCAM + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def arch(tmp_path):
    station.init(tmp_path / "arch")
    return tmp_path / "arch"


def prepared(tmp_path, arch, device=DEV, trusted=True):
    """The virtual recorder's flash as provisioning leaves it (the install step done by
    hand): its id and a trust list holding this station's key."""
    sd = tmp_path / "card"
    flash = tmp_path / "card.flash"
    flash.mkdir()
    (flash / "device_id").write_text(device + "\n")
    if trusted:
        (flash / "trust.cbor").write_bytes(trust_list(station.station_pub(arch)))
    return sd


def log_entries(arch):
    with Archive(arch, readonly=True) as a:
        return [e for _, _, e in a.log().entries(0, a.log().size)]


def test_provision_registers_the_proven_key_under_the_technician(tmp_path, arch):
    from test_offload import Sim, _device_pub
    sd = prepared(tmp_path, arch)
    label = tmp_path / "label.png"
    sim = Sim(sd, record=3, extra=["--device", DEV, "--battery", "77"])
    try:
        p = sealcam("provision", "--port", sim.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--installed", "--label", label)
        assert p.returncode == 0, p.stdout + p.stderr
        devpub = _device_pub(sd)            # what the firmware made at first boot
        fp = keys.fingerprint(devpub)
        assert "device id:       %s" % DEV in p.stdout and fp in p.stdout
        assert "Wang Li" in p.stdout and str(label) in p.stdout
        # a second provisioning of the same id is refused, naming rekey
        p2 = sealcam("provision", "--port", sim.port, "--archive", arch, "--device-id", DEV,
                     "--technician", "Wang Li", "--installed", "--label", "-")
        assert p2.returncode == 3 and "station rekey" in p2.stderr, p2.stderr
        # the provisioned recorder offloads without --register
        o = sealcam("offload", "--port", sim.port, "--archive", arch, "--json")
        assert o.returncode == 0, o.stdout + o.stderr
        assert json.loads(o.stdout)["fingerprint"] == fp
        # before it: battery unknown; a check-out's SELF_CHECK, offloaded, gives it
        j = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
        assert j["devices"][0]["battery"] == "unknown"
        c = sealcam("checkout", "--port", sim.port, "--archive", arch, "--officer", "PC-0042",
                    "--unit", "U2", "--json")
        assert c.returncode in (0, 2), c.stdout + c.stderr
        assert sealcam("offload", "--port", sim.port, "--archive", arch).returncode == 0
    finally:
        assert sim.stop() == 0
    with Archive(arch) as a:
        assert a.device(DEV)["pubkey"] == devpub
    ev = [e for e in log_entries(arch) if e["type"] in ("register", "device_provisioned")]
    assert ev == [{"type": "device_provisioned", "at": ev[0]["at"], "device": DEV,
                   "key": devpub, "technician": "Wang Li", "fingerprint": fp}]
    # the label: a PNG whose QR code holds the id and the fingerprint
    w, h, rows, info = png.Reader(filename=str(label)).read()
    assert w == h and w >= 21 * 6 and info["greyscale"] or info.get("bitdepth") == 1
    again = write_label_png(tmp_path / "again.png", DEV, fp)
    assert open(again, "rb").read() == label.read_bytes()
    assert parse_qr_payload(qr_payload(DEV, fp)) == (DEV, fp)
    j = json.loads(sealcam("station", "devices", "--archive", arch, "--json").stdout)
    dv = j["devices"][0]
    assert dv["provisioned"]["technician"] == "Wang Li" and dv["status"] == "active"
    assert dv["battery"]["percent"] in (76, 77)         # --battery 77, draining slowly
    assert dv["firmware"] == "unknown" or len(dv["firmware"]) == 64     # HELLO fw (B4)
    assert dv["last_offload"]["status"] == "ok" and dv["last_head"]["seq"] > 0
    txt = sealcam("station", "devices", "--archive", arch).stdout
    assert "provisioned" in txt and "Wang Li" in txt and "battery      7" in txt
    assert verify_archive(arch)["verdict"] == "OK"


def test_provision_refuses_another_id_or_an_untrusted_station(tmp_path, arch):
    from test_offload import Sim
    sd = prepared(tmp_path, arch, device="SC-OTHER01")
    sim = Sim(sd, record=2, extra=["--device", "SC-OTHER01"])
    try:
        p = sealcam("provision", "--port", sim.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--installed", "--label", "-")
        assert p.returncode == 1 and "reports the id SC-OTHER01" in p.stderr, p.stderr
    finally:
        sim.stop()
    sd2 = prepared(tmp_path / "b", arch, trusted=False) if (tmp_path / "b").mkdir() is None \
        else None
    sim = Sim(sd2, record=2, extra=["--device", DEV])
    try:
        p = sealcam("provision", "--port", sim.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--installed", "--label", "-")
        assert p.returncode == 5 and "does not trust this station" in p.stderr, p.stderr
    finally:
        sim.stop()
    with Archive(arch) as a:
        assert a.devices() == []
    assert not [e for e in log_entries(arch) if e["type"] != "adopt"]


def test_provision_usage_errors(tmp_path, arch):
    p = sealcam("provision", "--port", "/dev/null", "--archive", arch, "--device-id",
                "SC-1.key2", "--technician", "W", "--installed")
    assert p.returncode == 3 and "not a usable device id" in p.stderr
    p = sealcam("provision", "--port", "/dev/null", "--archive", arch, "--device-id", DEV,
                "--technician", " ", "--installed")
    assert p.returncode == 3 and "--technician" in p.stderr
    assert normalize_fingerprint("8B81 C862 681B 712B 3541 770F CAE7 48A9") == \
        "8b81:c862:681b:712b:3541:770f:cae7:48a9"
    assert normalize_fingerprint("8b81:c862") is None


@pytest.mark.skipif(not HAVE_BOARD, reason="the virtual board (sim/board.py, `sealcam sim "
                                           "board`) is not there yet")
def test_provision_a_virtual_board_through_mpremote(tmp_path, arch):
    """The whole path: mpremote writes the id and trust list to the board's flash, the board
    resets into its firmware, makes its key, and proves it."""
    from sim import board
    b = board.start(str(tmp_path / "board"), install=True)
    try:
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id", DEV,
                    "--technician", "Wang Li", "--label", tmp_path / "l.png", timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        # the provisioned board offloads (its BOOT record and what followed) without
        # --register, pinned to the key it proved
        o = sealcam("offload", "--port", b.port, "--archive", arch, "--json", timeout=300)
        assert o.returncode == 0, o.stdout + o.stderr
        j = json.loads(o.stdout)
        assert j["device"] == DEV and j["verdict"] == "OK" and j["records_pulled"] > 0
        # a provisioned board keeps its id: provisioning it as another is refused
        p2 = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id",
                     "SC-OTHER01", "--technician", "Wang Li", "--label", "-", timeout=300)
        assert p2.returncode == 3 and "provisioned already, as %s" % DEV in p2.stderr, \
            p2.stderr
    finally:
        b.stop()
    # the store its firmware made before it had an id was moved aside on the card, whole
    moved = tmp_path / "board" / "sd" / "sealcam.unprovisioned-0"
    assert "moved aside" in p.stderr and (moved / "head.cbor").exists()
    flash = tmp_path / "board" / "flash"
    assert (flash / "device_id").read_text().strip() == DEV
    assert (flash / "trust.cbor").read_bytes() == trust_list(station.station_pub(arch))
    ev = [e for e in log_entries(arch) if e["type"] == "device_provisioned"]
    assert len(ev) == 1 and ev[0]["technician"] == "Wang Li" and ev[0]["device"] == DEV
    # the firmware it reported at provisioning (`sealcam flash` wrote no manifest here:
    # then none is logged)
    fw = [e for e in log_entries(arch) if e["type"] == "firmware_seen"]
    assert all(e["device"] == DEV and len(e["fw"]) == 32 for e in fw) and len(fw) <= 1
    assert keys.fingerprint(ev[0]["key"]) == j["fingerprint"] in p.stdout
    assert verify_archive(arch)["verdict"] == "OK"


@pytest.mark.skipif(not HAVE_BOARD, reason="the virtual board (sim/board.py) is not there")
def test_provision_never_moves_a_real_recorders_store(tmp_path, arch):
    """attack5 F3/F3b: a provisioned board whose id file was removed, and a fresh board
    holding a registered recorder's card, are refused (naming the recorder and what to
    do): the store is not moved aside, the remembered head is not dropped, no key is
    registered under a second id."""
    import shutil
    import time
    from sim import board
    b1d, b2d = tmp_path / "board1", tmp_path / "board2"
    B = "SC-BBBB0001"
    b = board.start(str(b1d), install=True)
    try:
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id", B,
                    "--technician", "T", "--label", "-", timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        time.sleep(3)           # the board writes its folders back
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", b.port, "rm",
                            ":/flash/device_id"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id",
                    "SC-CCCC0002", "--technician", "T", "--label", "-", timeout=300)
        assert p.returncode == 3 and B in p.stderr and "rekey" in p.stderr, p.stderr
    finally:
        b.stop()
    assert (b1d / "flash" / "lasthead.cbor").exists()
    assert not [n for n in os.listdir(b1d / "sd") if "unprovisioned" in n
                and n != "sealcam.unprovisioned-0"]
    # B's card in a fresh board being provisioned as C
    os.makedirs(b2d)
    board.install(str(b2d))
    shutil.copytree(b1d / "sd" / "sealcam", b2d / "sd" / "sealcam")
    b = board.start(str(b2d))
    try:
        p = sealcam("provision", "--port", b.port, "--archive", arch, "--device-id",
                    "SC-CCCC0002", "--technician", "T", "--label", "-", timeout=300)
        assert p.returncode == 3 and "evidence of %s" % B in p.stderr, p.stderr
    finally:
        b.stop()
    assert sorted(os.listdir(b2d / "sd")) == ["sealcam"]
    with Archive(arch) as a:
        assert [d["id"] for d in a.devices()] == [B]
