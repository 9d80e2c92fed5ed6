"""`sealcam flash` (SPEC §13): its pieces on their own (mpy-cross compiles every module,
the manifest matches the CDDL and the firmware's own check, read-back differences are
named), then end to end against the virtual board (`sim.board`, the firmware on the
MicroPython VM behind a pty, driven by mpremote): flash, the board boots the new firmware
and its chain gets a FIRMWARE record naming the manifest's id; stock mpremote's
sha256sum agrees with the manifest; a reflash with other files is a new FIRMWARE record
and stale modules are removed; `--check` compares the board with its manifest and names a
file changed behind its back, as the recorder's next FIRMWARE record (`modified`) does; a file damaged on its way is exit 1 and no manifest; a
production-locked board gives no REPL (stock mpremote fails, flash is exit 6) while its
dock link still answers."""
import hashlib
import json
import os
import subprocess
import sys
import time

import cbor2
import pycddl
import pytest

from host_tools import flash as F
from host_tools import records as R
from host_tools.link import Client
from host_tools.verify import verify_store
from sim import vm as simvm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = open(os.path.join(ROOT, "protocol", "schema.cddl")).read()

try:
    import sim.board as simboard
    HAVE_BOARD = True
except ImportError:          # the virtual board is not there
    HAVE_BOARD = False
need_board = pytest.mark.skipif(not HAVE_BOARD, reason="no virtual board (sim/board.py)")


def sealcam(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def mpremote(port, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port] + list(args),
                          capture_output=True, text=True, timeout=timeout)


# --- the pieces, no board ------------------------------------------------------------------

@pytest.mark.parametrize("board", ["virtual", "esp32s3_cam"])
def test_plan_compiles_every_module_but_main(board):
    b = F.boards()[board]
    files = F.plan(b)
    names = [f.path for f in files]
    base = "/flash/" if board == "virtual" else "/"
    assert all(n.startswith(base) for n in names)
    pkg = base + "lib/sealcamfw/"         # the firmware package, on the board's sys.path
    assert base + "main.py" in names and base + "board.mpy" in names
    assert pkg + "fwinfo.mpy" in names and pkg + "store.mpy" in names
    assert pkg + "__init__.mpy" in names
    assert [n for n in names if n.endswith(".py")] == [base + "main.py"]
    assert all(n.startswith(pkg) or n.count("/") == base.count("/") for n in names)
    for f in files:
        if f.path.endswith(".mpy"):
            assert f.data[:1] == b"M" and f.data[1] == 6, f.path     # mpy v6 bytecode
    src = F.plan(b, compile=False)
    assert [f.path for f in src] == [n[:-4] + ".py" if n.endswith(".mpy") else n
                                     for n in names]


def test_manifest_matches_the_cddl_and_the_firmware_check():
    from sealcamfw import cbor as fwcbor      # the firmware's own strict decoder
    from sealcamfw import fwinfo
    files = F.plan(F.boards()["virtual"])
    man = F.manifest_bytes("0.1.0", 1795000000000, "virtual",
                           {f.path: f.sha256 for f in files})
    pycddl.Schema("root = fw-manifest\n" + SCHEMA).validate_cbor(man)
    assert cbor2.dumps(cbor2.loads(man), canonical=True) == man
    assert fwinfo.check(fwcbor.loads(man)) is None
    assert len(man) < fwinfo.MAX_BYTES
    # SOURCE_DATE_EPOCH makes it reproducible
    os.environ["SOURCE_DATE_EPOCH"] = "1795000000"
    try:
        assert F.build_time_ms() == 1795000000000
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]


def test_readback_errors_name_each_file():
    a, b = bytes(32), b"\x01" * 32
    assert F.readback_errors({"/flash/x.mpy": a}, {"/flash/x.mpy": a}) == []
    e = F.readback_errors({"/flash/x.mpy": a, "/flash/y.mpy": a},
                          {"/flash/x.mpy": b, "/flash/y.mpy": None})
    assert len(e) == 2 and "/flash/x.mpy" in e[0] and "0101010101010101" in e[0]
    assert "/flash/y.mpy is not on the board" in e[1]


def test_wrong_port_is_one_line_exit_3(tmp_path):
    p = sealcam("flash", "--port", tmp_path / "nope", "--board", "virtual")
    assert p.returncode == 3 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "no such port" in p.stderr and "nope" in p.stderr
    p = sealcam("flash", "--port", tmp_path, "--board", "virtual", "--json")
    assert p.returncode == 3 and json.loads(p.stdout)["exit_code"] == 3
    assert "not a serial port" in p.stderr


# --- against the virtual board -------------------------------------------------------------

def chain_firmware(sd_store):
    out = []
    for name in sorted(os.listdir(os.path.join(sd_store, "rec"))):
        data = open(os.path.join(sd_store, "rec", name), "rb").read()
        pos = 0
        while pos < len(data):
            _, end = R.decode_item(data, pos)
            rec = R.decode(data[pos:end])
            if rec.type == R.FIRMWARE:
                out.append(rec)
            pos = end
    return out


def wait_firmware(board, n, timeout=60):
    """The chain's FIRMWARE records once there are n (the board writes its folders back
    every 2 s while main.py runs)."""
    store = os.path.join(board.sd, "sealcam")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.isdir(os.path.join(store, "rec")):
            recs = chain_firmware(store)
            if len(recs) >= n:
                return recs
        time.sleep(0.5)
    raise AssertionError("no FIRMWARE record #%d in %s within %d s" % (n, store, timeout))


@need_board
def test_flash_end_to_end_on_the_virtual_board(tmp_path):
    n = len(F.plan(F.boards()["virtual"], compile=False))     # main.py, board.py, package
    # a board flashed before the firmware was a package: its flat modules must go
    (tmp_path / "board" / "flash").mkdir(parents=True)
    (tmp_path / "board" / "flash" / "store.mpy").write_bytes(b"M\x06 an old flat module")
    with simboard.start(str(tmp_path / "board")) as board:
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        res = json.loads(p.stdout)
        assert res["status"] == "ok" and res["files"] == n and not res["production"]
        assert res["removed"] == ["/flash/store.mpy"]
        fid = bytes.fromhex(res["firmware_id"])
        # the board resets, boots the firmware, and its chain names this firmware
        recs = wait_firmware(board, 1)
        assert recs[0].body[R.K.FIRMWARE] == fid
        assert recs[0].body[R.K.VERSION] == res["version"] and recs[0].body[R.K.FILES] == n
        # the manifest on the board is the one whose hash is the id, and names every file
        # with the hash stock mpremote reads back
        man_bytes = open(os.path.join(board.flash, "fw.cbor"), "rb").read()
        assert hashlib.sha256(man_bytes).digest() == fid
        man = cbor2.loads(man_bytes)
        assert man[4] == "virtual" and len(man[3]) == n
        for path, h in man[3].items():
            on_host = os.path.join(board.flash, path[len("/flash/"):])
            assert hashlib.sha256(open(on_host, "rb").read()).digest() == h, path
        s = mpremote(board.port, "fs", "sha256sum", ":/flash/lib/sealcamfw/store.mpy")
        assert s.returncode == 0, s.stdout + s.stderr
        assert man[3]["/flash/lib/sealcamfw/store.mpy"].hex() in s.stdout
        # a reflash with other files (the sources): stale .mpy removed, a new FIRMWARE
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--no-compile",
                    "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        res2 = json.loads(p.stdout)
        assert "/flash/lib/sealcamfw/store.mpy" in res2["removed"]
        assert "/flash/board.mpy" in res2["removed"]
        recs = wait_firmware(board, 2)
        assert recs[1].body[R.K.FIRMWARE] == bytes.fromhex(res2["firmware_id"]) != fid
        assert not [f for f in os.listdir(board.flash) if f.endswith(".mpy")]
        assert sorted(os.listdir(os.path.join(board.flash, "lib", "sealcamfw"))) == sorted(
            f for f in os.listdir(simvm.FW_PKG) if f.endswith(".py"))
        # --check: the board against its own manifest; then a file changed behind its back
        p = sealcam("flash", "--port", board.port, "--check", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        chk = json.loads(p.stdout)
        assert chk["firmware_id"] == res2["firmware_id"] and chk["files"] == n
        changed = tmp_path / "main.py"
        changed.write_bytes(open(os.path.join(board.flash, "main.py"), "rb").read()
                            + b"# changed\n")
        s = mpremote(board.port, "fs", "cp", str(changed), ":/flash/main.py")
        assert s.returncode == 0, s.stdout + s.stderr
        p = sealcam("flash", "--port", board.port, "--check")
        assert p.returncode == 1, p.stdout + p.stderr
        assert "/flash/main.py on the board has SHA-256" in p.stderr
        # ... and the recorder itself noticed at its next boot (the check resets it)
        recs = wait_firmware(board, 3)
        assert recs[2].body[R.K.REASON] == "modified"
        assert recs[2].body[R.K.CHANGED] == ["/flash/main.py"]
        assert recs[2].body[R.K.FIRMWARE] == bytes.fromhex(res2["firmware_id"])
    # the whole chain verifies, and says which firmware made which records
    rep = verify_store(os.path.join(board.sd, "sealcam"), None, progress=False)
    assert rep.verdict in ("OK", "OK_WITH_MISSING_INFO"), rep.reasons    # no pinned key
    assert not [r for r in rep.records if r.verdict == "NOT_OK"]
    notes = [n for n in rep.notes if n.startswith("FIRMWARE")]
    assert len(notes) == 3 and res2["firmware_id"][:16] in notes[1]
    assert "WARNING" in notes[2] and "/flash/main.py" in notes[2]


class _Damaging(F.Repl):
    """A copy that loses one byte of one file on its way (what a bad cable or a failing
    flash chip does): the read-back must catch it."""

    def write(self, path, data):
        if path.endswith("/store.mpy"):
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        super().write(path, data)


@need_board
def test_a_file_damaged_on_its_way_is_exit_1_and_no_manifest(tmp_path):
    with simboard.start(str(tmp_path / "board")) as board:
        with pytest.raises(F.FlashError) as e:
            F.run_flash(board.port, "virtual", repl=_Damaging, reset=False)
        assert e.value.code == 1
        assert "/flash/lib/sealcamfw/store.mpy on the board has SHA-256" in e.value.message
        assert "no firmware manifest" in e.value.message
        s = mpremote(board.port, "fs", "ls", ":/flash/lib/sealcamfw")
        assert s.returncode == 0 and "store.mpy" in s.stdout
        s = mpremote(board.port, "fs", "ls", ":/flash")
        assert s.returncode == 0 and "fw.cbor" not in s.stdout


@need_board
def test_production_lock(tmp_path):
    with simboard.start(str(tmp_path / "board")) as board:
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--production")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "PRODUCTION-LOCKED" in p.stdout
        recs = wait_firmware(board, 1)
        man = cbor2.loads(open(os.path.join(board.flash, "fw.cbor"), "rb").read())
        assert "/flash/production" in man[3]          # the lock is part of the firmware id
        assert recs[0].body[R.K.FIRMWARE] == hashlib.sha256(
            open(os.path.join(board.flash, "fw.cbor"), "rb").read()).digest()
        # no REPL: stock mpremote cannot get one, sealcam flash says why (exit 6)
        try:
            s = mpremote(board.port, "exec", "print('repl')", timeout=5)
            assert s.returncode != 0 and "repl\n" not in s.stdout, s.stdout
        except subprocess.TimeoutExpired:
            # mpremote waits for a raw REPL prompt that never comes. (5 s: its Ctrl-C and
            # Ctrl-A have reached the board by then; an unlocked board too slow to answer
            # within it would still fail below: flash would get its REPL, not exit 6, and
            # the HELLO after them shows the Ctrl-C did not take the port from the link.)
            pass
        p = sealcam("flash", "--port", board.port, "--board", "virtual")
        assert p.returncode == 6, p.stdout + p.stderr
        assert "production-locked" in p.stderr and "bootloader" in p.stderr
        # ... while the dock link answers: HELLO names the device
        with Client(board.port, timeout=5) as c:
            hello = c.hello("test-station")
        assert hello[1].startswith("SC-") and hello[12] == 2
        assert board.alive()


@need_board
def test_a_locked_board_whose_firmware_fails_resets_instead_of_a_repl(tmp_path):
    """main.py on a locked board never ends at the REPL: a module that does not import
    (here: device.mpy damaged on the flash) resets the board, again and again, and the
    port shows no REPL prompt (an unlocked board would print its traceback and '>>>')."""
    import serial
    d = str(tmp_path / "board")
    with simboard.start(d) as board:
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--production")
        assert p.returncode == 0, p.stdout + p.stderr
        wait_firmware(board, 1)
    with open(os.path.join(d, "flash", "lib", "sealcamfw", "device.mpy"), "wb") as f:
        f.write(b"M\x06 not bytecode")
    with simboard.start(d) as board:
        with serial.Serial(board.port, timeout=0.2) as ser:
            seen = b""
            end = time.monotonic() + 60
            while time.monotonic() < end and board.boots < 3:
                seen += ser.read(4096)
            seen += ser.read(4096)
        assert board.boots >= 3, "the locked board did not reset after the failed import"
        assert b">>>" not in seen and b"raw REPL" not in seen, seen[-300:]



# --- attack5: code the manifest does not list; a board that never ends; hostile strings ---

@need_board
def test_unlisted_module_or_package_is_modified_and_removed_by_flash(tmp_path):
    """F4/F4b: a workflow.py beside the package's workflow.mpy, or a package folder the
    manifest does not list, would shadow workflow.mpy: `--check` names it (exit 1), the recorder's next FIRMWARE record
    says "modified", and `sealcam flash` removes both. F12: a hostile manifest's paths and
    version are printed escaped."""
    with simboard.start(str(tmp_path / "board")) as board:
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        wait_firmware(board, 1)
        evil = tmp_path / "workflow.py"     # the real module, and a line of its own
        evil.write_bytes(open(os.path.join(simvm.FW_PKG, "workflow.py"), "rb").read()
                         + b"\nPLANTED = True\n")
        for args in (("fs", "cp", str(evil), ":/flash/lib/sealcamfw/workflow.py"),
                     ("fs", "mkdir", ":/flash/spare"),
                     ("fs", "cp", str(evil), ":/flash/spare/__init__.py")):
            s = mpremote(board.port, *args)
            assert s.returncode == 0, s.stdout + s.stderr
        p = sealcam("flash", "--port", board.port, "--check", "--json")
        assert p.returncode == 1, p.stdout + p.stderr
        chk = json.loads(p.stdout)
        assert sorted(chk["unlisted"]) == ["/flash/lib/sealcamfw/workflow.py", "/flash/spare/"]
        assert any("/flash/lib/sealcamfw/workflow.py" in e and "not in its manifest" in e
                   for e in chk["errors"])
        recs = wait_firmware(board, 2)          # the check reset it: the recorder noticed
        assert recs[1].body[R.K.REASON] == "modified"
        assert sorted(recs[1].body[R.K.CHANGED]) == ["/flash/lib/sealcamfw/workflow.py",
                                                     "/flash/spare/"]
        p = sealcam("flash", "--port", board.port, "--board", "virtual", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        assert sorted(json.loads(p.stdout)["removed"]) == [
            "/flash/lib/sealcamfw/workflow.py", "/flash/spare/"]
        wait_firmware(board, 3)
        p = sealcam("flash", "--port", board.port, "--check", "--no-reset", "--json")
        assert p.returncode == 0, p.stdout + p.stderr
        assert json.loads(p.stdout)["unlisted"] == []
        # F12: a manifest naming paths with terminal controls: printed escaped
        man = tmp_path / "fw.cbor"
        man.write_bytes(cbor2.dumps({1: "0.1\u202e", 2: 0, 4: "vir\x9btual",
                                     3: {"/flash/\x1b[2Jx.mpy": b"\x00" * 32,
                                         "/flash/main.py": b"\x00" * 32}}))
        s = mpremote(board.port, "fs", "cp", str(man), ":/flash/fw.cbor")
        assert s.returncode == 0, s.stdout + s.stderr
        p = sealcam("flash", "--port", board.port, "--check", "--no-reset")
        assert p.returncode == 1
        out = p.stdout + p.stderr
        assert "\\x1b[2Jx.mpy" in out and "\x1b" not in out and "\u202e" not in out, out


def _hostile_board(mode):
    """A 'MicroPython board' on a pty that enters its raw REPL, then answers every command
    with output that never ends (a byte every 2 s, or a flood)."""
    import pty
    import select
    import threading
    import tty
    m, s = pty.openpty()
    tty.setraw(m)
    tty.setraw(s)
    stop = threading.Event()
    banner = b"raw REPL; CTRL-B to exit\r\n>"

    def serve():
        buf, state, last = b"", "init", 0.0
        while not stop.is_set():
            r, _, _ = select.select([m], [], [], 0.05)
            if r:
                try:
                    buf += os.read(m, 4096)
                except OSError:
                    return
            try:
                if state == "init" and b"\x01" in buf:
                    buf, state = buf.split(b"\x01", 1)[1], "banner"
                    os.write(m, banner)
                elif state == "banner" and b"\x04" in buf:
                    buf, state = buf.split(b"\x04", 1)[1], "ready"
                    os.write(m, b"soft reboot\r\n" + banner)
                elif state == "ready" and b"\x05A\x01" in buf:
                    buf, state = buf.split(b"\x05A\x01", 1)[1], "cmd"
                    os.write(m, b"R\x00")
                elif state == "cmd" and b"\x04" in buf:
                    buf, state = b"", "out"
                    os.write(m, b"OK")
                elif state == "out":
                    if mode == "flood":
                        os.write(m, b"y" * 4096)
                    elif time.monotonic() - last > 2:
                        os.write(m, b"x")
                        last = time.monotonic()
            except OSError:
                time.sleep(0.01)
    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(5)
        os.close(m)
        os.close(s)
    return os.ttyname(s), close


@pytest.mark.parametrize("mode", ["dribble", "flood"])
def test_a_board_that_never_ends_its_answer_is_stopped(mode, monkeypatch):
    """F5: a hostile board that drip-feeds or floods bytes forever: `flash --check` ends
    within its overall deadline (exit 6, one line), and takes at most OUTPUT_MAX bytes."""
    from host_tools import flash_repl
    monkeypatch.setattr(flash_repl, "EXEC_DEADLINE", 2.5)   # the dribble still sends mid-way
    port, close = _hostile_board(mode)
    try:
        t0 = time.monotonic()
        with pytest.raises(F.FlashError) as e:
            F.check_board(port, reset=False)
        took = time.monotonic() - t0
    finally:
        close()
    assert e.value.code == 6 and took < 30, took
    assert ("no end after 2 s" in e.value.message or "more than" in e.value.message), \
        e.value.message
