"""The virtual board (sim/board.py, sim/mpvm/board.mjs): stock mpremote drives it, its
flash and SD card persist across resets and runs, with the firmware installed it runs
main.py (recorder + dock link) and a Ctrl-C brings the REPL back; and hw_tests pass
against it (tests/../hw_tests, the same suite a technician runs on a real board)."""
import hashlib
import json
import os
import subprocess
import sys
import time

from sim import board as vboard
from sim import vm

ROOT = vm.ROOT


def mpremote(port, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port] + list(args),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def ok(port, *args, timeout=60):
    r = mpremote(port, *args, timeout=timeout)
    assert r.returncode == 0, "mpremote %s: exit %d\n%s%s" % (args, r.returncode, r.stdout,
                                                              r.stderr)
    return r.stdout


def test_mpremote_drives_the_board_and_files_persist(tmp_path):
    d = str(tmp_path / "b")
    data = os.urandom(5000) + bytes(range(256)) * 20          # binary, every byte value
    local = tmp_path / "x.bin"
    local.write_bytes(data)
    (tmp_path / "note.txt").write_text("hello sealcam\n")
    with vboard.start(d) as b:
        assert b.port.startswith("/dev/pts/")
        assert ok(b.port, "exec", "print(6*7)").strip() == "42"
        script = tmp_path / "s.py"
        script.write_text("import sys\nprint('ran', sys.implementation.name)\n")
        assert ok(b.port, "run", str(script)).strip() == "ran micropython"
        # a failing exec gives mpremote's error: exit 1 and the board's traceback
        r = mpremote(b.port, "exec", "1/0")
        assert r.returncode == 1 and "ZeroDivisionError" in r.stdout + r.stderr
        ok(b.port, "fs", "cp", str(local), ":x.bin", "+", "fs", "cp",
           str(tmp_path / "note.txt"), ":/sd/note.txt")
        out = ok(b.port, "fs", "sha256sum", ":x.bin")
        assert hashlib.sha256(data).hexdigest() in out.split()
        ls = ok(b.port, "fs", "ls", ":")
        assert any(line.split() == [str(len(data)), "x.bin"] for line in ls.splitlines()), ls
        assert "hello sealcam" in ok(b.port, "fs", "cat", ":/sd/note.txt")
        # mpremote's files are written back to the host folders
        time.sleep(0.5)
        with open(os.path.join(b.flash, "x.bin"), "rb") as f:
            assert f.read() == data
        with open(os.path.join(b.sd, "note.txt")) as f:
            assert f.read() == "hello sealcam\n"
        # soft reset (mpremote's Ctrl-D in the raw REPL) and hard reset (machine.reset):
        # a fresh VM on the same pty, the files kept
        boots = b.boots
        ok(b.port, "soft-reset")
        assert "fake machine" in ok(b.port, "exec", "import machine\nprint(machine.FAKE)")
        ok(b.port, "reset")           # mpremote: machine.reset() without waiting for an answer
        assert b.wait_boots(boots + 1)
        out = ok(b.port, "fs", "sha256sum", ":x.bin", "+", "exec",
                 "import machine\nprint('cause', machine.reset_cause())")
        assert hashlib.sha256(data).hexdigest() in out.split()
        assert "soft" in b.resets and "hard" in b.resets
        # a file removed on the board goes from the folder too
        ok(b.port, "fs", "rm", ":/sd/note.txt")
        time.sleep(0.5)
        assert not os.path.exists(os.path.join(b.sd, "note.txt"))
        # the friendly REPL answers on the same port
        import serial
        with serial.Serial(b.port, timeout=2) as s:
            s.write(b"\r\x03\r\x02")          # Ctrl-C, then Ctrl-B: the friendly REPL
            time.sleep(0.5)
            s.reset_input_buffer()
            s.write(b"print(7*6)\r")
            got = b""
            end = time.monotonic() + 10
            while b">>> " not in got and time.monotonic() < end:
                got += s.read(64)
            # (the VM's print ends lines with \n where a board's REPL sends \r\n)
            assert b"\n42" in got and got.rstrip().endswith(b">>>"), got
            # a Ctrl-C interrupts a sleeping program (the sleep does not busy-wait)
            s.write(b"import time\rtime.sleep(60)\r")
            time.sleep(1)
            t0 = time.monotonic()
            s.write(b"\x03")
            got = b""
            while b"KeyboardInterrupt" not in got and time.monotonic() - t0 < 10:
                got += s.read(64)
            assert b"KeyboardInterrupt" in got and time.monotonic() - t0 < 5, got
    assert not b.alive()
    # the next run of the board finds the files where the last one left them
    with vboard.start(d) as b:
        out = ok(b.port, "fs", "sha256sum", ":x.bin")
        assert hashlib.sha256(data).hexdigest() in out.split()


def test_the_firmware_runs_the_dock_link_and_ctrl_c_gives_the_repl(tmp_path):
    from host_tools import keys, station
    from sim import serve
    arch = str(tmp_path / "arch")
    station.init(arch)
    d = str(tmp_path / "b")
    names = vboard.install(d)
    assert {"main.py", "board.py", "lib/sealcamfw/link.py"} <= set(names)
    serve.add_trust(os.path.join(d, "flash"), [station.station_pub(arch)])
    with vboard.start(d) as b:
        key = os.path.join(b.flash, "key.bin")
        end = time.monotonic() + 60
        while not os.path.exists(key) and time.monotonic() < end:
            time.sleep(0.2)             # main.py makes the device key at first boot
        with open(key, "rb") as f:
            seed = f.read()
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        r = subprocess.run([sys.executable, "-m", "host_tools.cli", "offload", "--port",
                            b.port, "--archive", arch, "--register", "--fingerprint",
                            keys.fingerprint(pub), "--json", "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        j = json.loads(r.stdout)
        assert j["verdict"] == "OK" and j["device"].startswith("SC-")
        # main.py served the dock; mpremote's Ctrl-C (outside any frame) ends it: the REPL
        out = ok(b.port, "exec", "import sys\nprint('repl', 'link' in sys.modules)")
        assert "repl" in out
        # with the production lock the Ctrl-C is data: no REPL, the dock still answers
        flag = tmp_path / "production"
        flag.write_text("locked by test_sim_board\n")
        ok(b.port, "fs", "cp", str(flag), ":production", "+", "reset")
        time.sleep(3)
        try:
            r = mpremote(b.port, "exec", "print(6*7)", timeout=4)
            assert r.returncode != 0 and "42" not in r.stdout
        except subprocess.TimeoutExpired:
            pass                            # mpremote waits without a timeout on a pty
            # (a REPL given too slowly for 4 s would still fail the offload below)
        r = subprocess.run([sys.executable, "-m", "host_tools.cli", "offload", "--port",
                            b.port, "--archive", arch, "--json", "--no-progress"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # unlocking is the "bootloader's" job: here, the host folder while the board is off
    os.remove(os.path.join(d, "flash", "production"))


def test_a_ctrl_c_sent_while_the_board_resets_reaches_the_next_boot(tmp_path):
    # mpremote's reset runs "time.sleep_ms(100); machine.reset()" and leaves; the next
    # mpremote's Ctrl-C can arrive in that sleep (a loaded machine, a host that does not wait
    # for the reset). The sleep takes it as a KeyboardInterrupt that the VM raises only at a
    # jump, so machine.reset() ran first and the Ctrl-C was lost: the new board ran main.py
    # and the next mpremote waited forever. The sleep is widened here so the race is certain.
    d = str(tmp_path / "b")
    vboard.install(d)
    with vboard.start(d) as b:
        key = os.path.join(b.flash, "key.bin")
        end = time.monotonic() + 120
        while not os.path.exists(key) and time.monotonic() < end:
            time.sleep(0.2)             # main.py is up (it makes the device key first)
        hard = b.resets.count("hard")
        ok(b.port, "exec", "--no-follow",
           "import time, machine; time.sleep_ms(1500); machine.reset()")
        out = ok(b.port, "exec", "print('up', 6*7)", timeout=60)   # sent during the sleep
        assert "up 42" in out
        assert b.resets.count("hard") == hard + 1      # it did reset in between


def test_bad_board_folder_is_one_line(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    (d / "flash").symlink_to(tmp_path)
    r = subprocess.run([sys.executable, "-m", "sim.board", "--dir", str(d)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 1 and r.stdout == ""
    assert "symbolic link" in r.stderr and "Traceback" not in r.stderr


def test_hw_tests_pass_on_the_virtual_board():
    """`pytest hw_tests` with no --port: the suite starts the virtual board itself."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "hw_tests"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


def test_link_gives_the_repl_a_ctrl_c_only_outside_a_frame(tmp_path):
    """firmware/sealcamfw/link.py on CPython: on a port that is also the REPL's (repl=True), 0x03
    before any frame ends serving with KeyboardInterrupt; a 0x03 inside a frame (whole or
    split across reads) is data; a plain dock port, or a production-locked board, never
    yields."""
    from sealcamfw import cbor
    from sealcamfw import device
    from sealcamfw import frame
    import fwtest
    from sealcamfw import link

    def board(repl=True, locked=False):
        root = tmp_path / ("b%d%d" % (repl, locked))
        root.mkdir()
        h, _, _ = fwtest.sim(str(root))
        if locked:
            f = h.flash.create(link.PRODUCTION_FLAG)
            f.write(b"locked\n")
            f.close()
        s, rec = device.boot(h)
        ser = fwtest.Loop()
        if repl:
            ser.repl = True
        h.serial = ser
        lnk = link.Link(h, s, rec)
        lnk.start()
        return lnk, ser

    def serve(lnk):
        try:                                   # (pytest would take it for the user's Ctrl-C)
            return lnk.service()
        except KeyboardInterrupt:
            raise AssertionError("the link gave up the port for a 0x03 that is data")

    req = frame.encode(cbor.dumps({0: 3, 1: link.STATUS}))      # id 3: a 0x03 byte inside
    assert b"\x03" in req[2:]
    lnk, ser = board()
    ser.rx += req
    assert serve(lnk) and ser.tx            # answered (401: no AUTH), no interrupt
    ser.tx.clear()
    ser.rx += req[:4]
    serve(lnk)
    ser.rx += req[4:]                          # the rest, 0x03 included, in a later read
    serve(lnk)
    assert ser.tx
    ser.rx += b"\r\x03\r\x01"                  # mpremote: Ctrl-C, then Ctrl-A
    try:
        lnk.service()
        raise AssertionError("no KeyboardInterrupt")
    except KeyboardInterrupt:
        pass
    assert not lnk.serving
    for repl, locked in ((False, False), (True, True)):
        lnk, ser = board(repl, locked)
        assert lnk.repl is False
        ser.rx += b"\r\x03\r\x01" + req
        serve(lnk)                             # garbage, then the request: answered
        assert ser.tx and lnk.serving
