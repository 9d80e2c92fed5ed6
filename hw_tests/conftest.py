"""hw_tests: one suite for a real recorder board and the virtual board (README.md here).

    pytest hw_tests --port /dev/ttyACM0 [--archive ARCHIVE] [--production]
    pytest hw_tests                      # starts the virtual board itself (sim/board.py)

Everything goes through stock mpremote (the CLI, `python -m mpremote`) and the dock link
(`sealcam offload`), so the same code tests both. With no --port the suite makes a
station archive, starts `sim.board` on a fresh folder whose flash trusts that station,
and installs the firmware with `sealcam flash --board virtual` (or, before that tool
exists, by copying the sources); a second board, flashed with --production, is made for
the lock test.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "HWT "          # board code prints its result as one line: HWT <json>


def pytest_addoption(parser):
    g = parser.getgroup("hw_tests")
    g.addoption("--port", default=None, metavar="PORT",
                help="the board's serial port (/dev/ttyACM0); default: start the virtual board")
    g.addoption("--archive", default=None, metavar="DIR",
                help="a station archive whose key the board trusts (sealcam provision): "
                     "the dock test offloads into it (default with a real board: skip it)")
    g.addoption("--production", action="store_true",
                help="the board at --port is production-locked (sealcam flash --production): "
                     "check that the REPL stays shut and the dock link answers")


def mpremote(port, *args, timeout=120):
    """Run stock mpremote against port; CompletedProcess (text)."""
    cmd = [sys.executable, "-m", "mpremote", "connect", port] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def sealcam(*args, timeout=300):
    cmd = [sys.executable, "-m", "host_tools.cli"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


class Target:
    """The board under test: port, virtual (bool), archive (or None), and helpers that
    run mpremote against it."""

    def __init__(self, port, virtual, archive=None, vboard=None):
        self.port = port
        self.virtual = virtual
        self.archive = archive
        self.vboard = vboard           # sim.board.Board when virtual

    def mp(self, *args, timeout=120, check=True):
        r = mpremote(self.port, *args, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("mpremote %s failed (exit %d): %s%s" % (
                " ".join(args)[:200], r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        return r

    def exec(self, code, timeout=120):
        """Run code on the board (mpremote exec); its stdout."""
        return self.mp("exec", code, timeout=timeout).stdout

    def result(self, code, timeout=120):
        """Run code that prints one line `HWT <json>`; that JSON."""
        out = self.exec(code, timeout)
        for line in out.splitlines():
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise AssertionError("no result line from the board: %r" % out[-2000:])

    def cp_from(self, remote, local, timeout=300):
        self.mp("fs", "cp", ":" + remote, local, timeout=timeout)

    def sealcam(self, *args, timeout=300):
        """Run the sealcam CLI (python -m host_tools.cli); CompletedProcess (text)."""
        return sealcam(*args, timeout=timeout)

    def sha256(self, *remote):
        """{path: hex SHA-256} of files on the board, hashed there (mpremote fs sha256sum,
        one connection for all of them)."""
        out = self.mp("fs", "sha256sum", *[":" + r for r in remote]).stdout.split()
        got = {}
        for i, w in enumerate(out[:-1]):
            if w == "sha256sum" and out[i + 1].startswith(":"):
                got[out[i + 1][1:]] = out[i + 2] if i + 2 < len(out) else None
        return got

    def reset(self, timeout=60):
        """Hard reset (machine.reset through mpremote), then wait until the board answers
        mpremote again (a USB port comes back; main.py boots and yields to Ctrl-C)."""
        hard = self.vboard.resets.count("hard") if self.vboard else 0
        self.mp("reset", timeout=30)
        end = time.monotonic() + timeout
        if self.vboard is not None:
            # `mpremote reset` soft-resets into the raw REPL (a VM start of its own), runs
            # "time.sleep_ms(100); machine.reset()" and leaves without waiting for it: wait
            # for the hard reset itself and the VM it starts, not for the next boot (the
            # soft reset's), or the next mpremote talks to the board that is resetting
            while self.vboard.resets.count("hard") <= hard and time.monotonic() < end \
                    and self.vboard.alive():
                time.sleep(0.05)
            assert self.vboard.resets.count("hard") > hard, "the virtual board did not reset"
            assert self.vboard.wait_boots(len(self.vboard.resets) + 1,
                                          max(1, end - time.monotonic())), \
                "the virtual board did not restart"
        last = None
        while time.monotonic() < end:
            if os.path.exists(self.port):
                last = mpremote(self.port, "exec", "print('up')", timeout=30)
                if last.returncode == 0 and "up" in last.stdout:
                    return
            time.sleep(1)
        raise AssertionError("the board did not come back after reset: %r" % (last,))


def _flash_tool():
    """True when `sealcam flash` (host_tools/flash.py) exists: the virtual board is then
    flashed the way a real one is (compiled modules, firmware manifest, production lock)."""
    try:
        from host_tools import flash  # noqa: F401
        return True
    except ImportError:
        return False


def _virtual(tmp, name, production=False):
    """A virtual board with the firmware and a station it trusts: (sim.board.Board,
    station archive)."""
    from host_tools import station
    from sim import board as vboard
    from sim import serve
    arch = os.path.join(tmp, name + "-archive")
    station.init(arch)
    d = os.path.join(tmp, name)
    flashed = _flash_tool()
    vboard.install(d, firmware=not flashed)
    serve.add_trust(os.path.join(d, "flash"), [station.station_pub(arch)])
    if production and not flashed:
        with open(os.path.join(d, "flash", "production"), "w") as f:
            f.write("locked by hw_tests (virtual board)\n")
    b = vboard.start(d, log=lambda line: sys.stderr.write("vboard: %s\n" % line))
    try:
        if flashed:
            r = sealcam("flash", "--port", b.port, "--board", "virtual",
                        *(["--production"] if production else []))
            if r.returncode != 0:
                raise RuntimeError("sealcam flash failed on the virtual board (exit %d): %s%s"
                                   % (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
            b.wait_boots(2, 60)
        # main.py makes the device key at first boot: wait until it is written back
        key = os.path.join(d, "flash", "key.bin")
        end = time.monotonic() + 120
        while not os.path.exists(key) and time.monotonic() < end and b.alive():
            time.sleep(0.2)
        if not os.path.exists(key):
            raise RuntimeError("the virtual board did not boot its firmware (no %s)" % key)
    except BaseException:
        b.stop()
        raise
    return b, arch


@pytest.fixture(scope="session")
def board(request, tmp_path_factory):
    port = request.config.getoption("--port")
    if port:
        yield Target(port, False, request.config.getoption("--archive"))
        return
    tmp = str(tmp_path_factory.mktemp("hwboard"))
    b, arch = _virtual(tmp, "board")
    try:
        yield Target(b.port, True, arch, b)
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def locked(request, tmp_path_factory):
    """A production-locked board: --port with --production, or a locked virtual board."""
    port = request.config.getoption("--port")
    if port:
        if not request.config.getoption("--production"):
            pytest.skip("the production lock is checked only on a locked board: flash it with "
                        "`sealcam flash --production` and run with --production")
        yield Target(port, False, request.config.getoption("--archive"))
        return
    tmp = str(tmp_path_factory.mktemp("hwlocked"))
    b, arch = _virtual(tmp, "locked", production=True)
    try:
        yield Target(b.port, True, arch, b)
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
