"""The firmware as a whole: the dock link offloads a short recording, the firmware manifest
matches the files on the board, the production lock holds. Same code for a real board
(--port, --archive, --production) and the virtual board (conftest.py)."""
import json
import os
import subprocess
import time

import pytest

RECORD_MS = 3000

PUB = """import board, binascii, json
from sealcamfw import devkey, ed25519, hal
class H: pass
h = H(); h.flash = hal.PosixFS(board.FLASH_DIR)
print("HWT " + json.dumps(binascii.hexlify(ed25519.public(devkey.load_or_create(h))).decode()))"""

RECORD = """import board, json
from sealcamfw import device, workflow
h = board.make_hal()
s, rec = device.boot_or_fail(h)
wf = workflow.Workflow(h, s, rec, rec.cfg)
wf.start("button")
t0 = h.clock.mono_ms()
while h.clock.mono_ms() - t0 < %d:
    wf.tick()
    h.clock.sleep_ms(rec.cfg["tick_ms"])
wf.stop("button")
device.shutdown(s, rec)
print("HWT " + json.dumps({"device": h.device, "records": s.seq}))"""


def _boot_firmware(target, timeout=60):
    """Reset the board and leave main.py running (no mpremote after it: that would take the
    port back to the REPL)."""
    boots = target.vboard.boots if target.vboard else 0
    target.mp("reset", timeout=30)
    if target.vboard is not None:
        assert target.vboard.wait_boots(boots + 1, timeout)
    else:
        end = time.monotonic() + timeout
        time.sleep(2)
        while not os.path.exists(target.port) and time.monotonic() < end:
            time.sleep(0.5)
    time.sleep(3)          # main.py: the store opens, the dock link starts


def _fingerprint(target):
    """The fingerprint of the board's device key (read through mpremote: the REPL)."""
    from host_tools import keys
    return keys.fingerprint(bytes.fromhex(target.result(PUB)))


def _offload(target, fp):
    return target.sealcam("offload", "--port", target.port, "--archive", target.archive,
                          "--register", "--fingerprint", fp, "--json", "--no-progress",
                          timeout=300)


def test_dock_link_offloads_a_short_recording(board):
    if not board.archive:
        pytest.skip("give --archive, a station archive the board trusts (sealcam provision), "
                    "to test the dock link")
    fp = _fingerprint(board)
    made = board.result(RECORD % RECORD_MS, timeout=180)
    _boot_firmware(board)
    r = _offload(board, fp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["verdict"] == "OK", j
    assert j["device"] == made["device"]
    assert j.get("segments_completed", j.get("media", {}).get("segments_completed", 1)) >= 1, j
    # the port is the REPL's again after a Ctrl-C outside a frame (mpremote sends one)
    assert "42" in board.exec("print(6*7)")


def test_firmware_manifest_matches(board, tmp_path):
    try:
        from host_tools import flash
    except ImportError:
        pytest.skip("host_tools/flash.py (sealcam flash) is not there yet")
    import cbor2
    has = board.result("import os, json\ntry:\n    os.stat(%r)\n    ok = True\nexcept OSError:\n"
                       "    ok = False\nprint('HWT ' + json.dumps(ok))" % flash.MANIFEST)
    if not has:
        pytest.skip("no firmware manifest on the board (%s): it was not installed with "
                    "`sealcam flash`" % flash.MANIFEST)
    local = str(tmp_path / "fw.cbor")
    board.cp_from(flash.MANIFEST, local)
    with open(local, "rb") as f:
        m = cbor2.loads(f.read())
    files = m[3]
    assert files, "the manifest lists no files"
    where = {b.name: b.code_dir for b in flash.boards().values()}.get(m.get(4), flash.DATA_DIR)
    paths = {name: name if name.startswith("/") else where.rstrip("/") + "/" + name
             for name in files}
    got = board.sha256(*sorted(paths.values()))
    bad = ["%s: board %s, manifest %s" % (name, got.get(paths[name]), digest.hex())
           for name, digest in sorted(files.items()) if got.get(paths[name]) != digest.hex()]
    assert not bad, "files differ from the firmware manifest:\n" + "\n".join(bad)


def test_production_lock_holds(locked):
    # the REPL stays shut: mpremote's Ctrl-C and Ctrl-A get no raw REPL
    # (mpremote gives up with "could not enter raw repl" on a USB port; on a pty, where
    # it reads without a timeout, it waits: both mean the REPL is shut)
    # (4 s on the virtual board: mpremote's Ctrl-C and Ctrl-A are there by then; a board
    # that gave them a REPL too slowly for that would still fail the offload below)
    resets = list(locked.vboard.resets) if locked.vboard is not None else None
    try:
        r = locked.mp("exec", "print(6*7)", timeout=4 if locked.virtual else 30, check=False)
    except subprocess.TimeoutExpired:
        r = None
    if r is not None:
        assert r.returncode != 0 and "42" not in r.stdout, r.stdout + r.stderr
        assert "raw repl" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    if locked.vboard is not None:
        assert locked.vboard.resets == resets, "the locked board was reset"
    # and the dock protocol still answers on the same port
    if not locked.archive:
        pytest.skip("the REPL is shut; give --archive to check that the dock link answers")
    fp = None
    if locked.vboard is not None:     # the virtual board is not provisioned: register it
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from host_tools import keys
        with open(os.path.join(locked.vboard.flash, "key.bin"), "rb") as f:
            seed = f.read()
        pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        fp = keys.fingerprint(pub)
    args = ["offload", "--port", locked.port, "--archive", locked.archive, "--json",
            "--no-progress"]
    if fp:
        args += ["--register", "--fingerprint", fp]
    r = locked.sealcam(*args, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads(r.stdout)["verdict"] == "OK"
