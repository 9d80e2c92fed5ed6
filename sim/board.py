"""`sealcam sim board`: the virtual board, the firmware's board on the MicroPython
WebAssembly VM behind a serial port (a pty) that stock mpremote drives.

    python -m sim.board --dir DIR [--install] [--runtime micropython]

prints ``PORT <path>`` first on stdout, then serves until SIGTERM/SIGINT. DIR/flash is the
board's internal flash and DIR/sd its SD card: host folders copied into the VM's memory
filesystem at every boot and written back after each REPL command, every 2 s while a
program runs, and before every reset and exit (only changed files; a file removed on the
board is removed from the folder). DIR/board.json keeps what a chip keeps outside its
files: its unique id and the RTC's setting (the RTC's backup domain).

The board (sim/mpvm/board.mjs) speaks MicroPython's friendly REPL, raw REPL and raw-paste
mode on the pty. At boot it runs /flash/boot.py and /flash/main.py, as a board does. With
the firmware installed (install() or --install: the firmware modules, main.py and the
virtual board's board.py, sim/hal/vboard.py) main.py runs the recorder and the dock link
on the same port, so `sealcam offload --port PORT` works; a Ctrl-C (0x03) that arrives
outside a dock frame interrupts main.py and gives the REPL, unless /flash/production
exists (the production lock). Ctrl-D in the friendly REPL (a soft reset: boot.py and main.py
run again), Ctrl-D on an empty raw REPL line (mpremote's soft-reset: the raw REPL again,
main.py does not run) and machine.reset() (a hard reset: the fake machine module, see
sim/hal/vboardmachine.py) restart the VM with the files kept, on the same pty, so
mpremote carries on. It is not hardware: `machine` is a fake that says so (machine.FAKE).

Python API (tests, hw_tests/conftest.py):

    board = sim.board.start(dir, install=False, boot_timeout=60, log=None,
                            max_bytes=MAX_BYTES) -> Board
        starts the board on folder `dir` (created if missing; DIR/flash, DIR/sd,
        DIR/board.json), installing the firmware first if asked; returns once the VM has
        loaded the files (before boot.py/main.py run). log(line) gets the VM's stderr
        lines. BoardError (one line: why) if it cannot start; vm.VMUnavailable without
        node/npm.
    board.port            the pty path (what `mpremote connect PORT` opens); the same
                          across resets
    board.dir, board.flash, board.sd   the board folder and its two file folders
    board.uid             the chip's unique id (12 hex digits, kept in DIR/board.json)
    board.boots           how many times the VM has started (resets included)
    board.resets          "soft" / "hard" for each reset so far, in order
    board.error           why the VM stopped on its own, or None
    board.alive()         True while the board is served
    board.wait_boots(n, timeout=30) -> bool   until the VM has started n times
    board.stop(timeout=20)  writes the files back and stops (idempotent)
    `with sim.board.start(dir) as board:` stops it at the end.

    sim.board.install(dir, firmware=True) -> [names written to DIR/flash]
        main.py, the firmware package as lib/sealcamfw/ (firmware/sealcamfw/*.py) and
        board.py (sim/hal/vboard.py), as sources (`sealcam flash --board virtual` compiles them and
        writes the firmware manifest instead).
    sim.board.firmware_files() -> [(host path, name on the flash)]

Edit DIR/flash and DIR/sd only while the board is stopped: while it runs, the VM's copy is
the board's (a host file it never had is left alone, and not seen until the next boot).

The lead wires the CLI with ``add_arguments(parser)`` and ``run_board(args)``.
"""
import argparse
import binascii
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tty

from sim import vm

ROOT = vm.ROOT
BOARD_JS = os.path.join(vm.MPVM_DIR, "board.mjs")
VBOARD = os.path.join(vm.SIM_HAL, "vboard.py")
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 3
MAX_BYTES = 512 << 20          # flash + SD the VM holds in memory at most
# exit status of board.mjs -> (what happened, the mode the VM restarts in)
_RESTARTS = {10: ("soft", "boot"), 12: ("soft", "raw"), 11: ("hard", "boot")}


class BoardError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- install

def firmware_files():
    """(host path, name on the flash) of every firmware file a board gets: main.py, the
    firmware package as lib/sealcamfw/*.py (/flash/lib is on the board's sys.path) and the
    virtual board's board.py."""
    out = [(os.path.join(vm.FIRMWARE, "main.py"), "main.py")]
    for name in sorted(os.listdir(vm.FW_PKG)):
        p = os.path.join(vm.FW_PKG, name)
        if name.endswith(".py") and os.path.isfile(p):
            out.append((p, "lib/sealcamfw/" + name))
    out.append((VBOARD, "board.py"))
    return out


def install(dir, firmware=True):
    """Copy the firmware and the virtual board's board.py into DIR/flash (what `sealcam
    flash` does over mpremote on a real board, without compiling). Returns the names."""
    flash = os.path.join(dir, "flash")
    os.makedirs(flash, exist_ok=True)
    os.makedirs(os.path.join(dir, "sd"), exist_ok=True)
    names = []
    if firmware:
        for src, name in firmware_files():
            dst = os.path.join(flash, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.islink(dst):
                os.unlink(dst)
            shutil.copyfile(src, dst)
            names.append(name)
    return names


_install = install


# ----------------------------------------------------------------------------- the board

def _state(dir):
    """DIR/board.json: the chip's unique id (made once) and the RTC setting."""
    p = os.path.join(dir, "board.json")
    try:
        with open(p) as f:
            st = json.load(f)
        if isinstance(st, dict) and isinstance(st.get("uid"), str) and len(st["uid"]) == 12:
            binascii.unhexlify(st["uid"])
            return p, st
    except (OSError, ValueError):
        pass
    st = {"uid": binascii.hexlify(os.urandom(6)).decode(), "rtc_offset_ms": 0}
    with open(p + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(p + ".tmp", p)
    return p, st


def open_pty():
    """(master fd, slave path): a raw pty whose master is non-blocking."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    return master, path


class Board:
    def __init__(self, dir, log=None, max_bytes=MAX_BYTES):
        self.dir = os.path.abspath(dir)
        self.flash = os.path.join(self.dir, "flash")
        self.sd = os.path.join(self.dir, "sd")
        for d in (self.dir, self.flash, self.sd):
            if os.path.islink(d):
                raise BoardError("%s is a symbolic link: give the board a real folder" % d)
            os.makedirs(d, exist_ok=True)
        self.state_path, st = _state(self.dir)
        self.uid = st["uid"]
        self.max_bytes = max_bytes
        self.log = log or (lambda line: None)
        self.master, self.port = open_pty()
        self.boots = 0
        self.resets = []          # "soft" / "hard", in order
        self.error = None
        self._proc = None
        self._ctl = None
        self._pending = None      # hex of input the last VM had not taken when it reset
        self._stop = threading.Event()
        self._booted = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # -- the VM process, restarted on every reset
    def _command(self, mode, cause, ctl_fd):
        cmd = ["node", BOARD_JS, "--fd", str(self.master), "--ctl", str(ctl_fd),
               "--flash", self.flash, "--sd", self.sd, "--state", self.state_path,
               "--mode", mode, "--cause", cause, "--uid", self.uid,
               "--max-bytes", str(self.max_bytes)]
        if self._pending:
            cmd += ["--pending", self._pending]
            self._pending = None
        # the chip's frozen modules: the simulated parts as the package sim.hal (board.py,
        # sim/hal/vboard.py, imports them), and machine, vboardboot, vboardos, vboardtime
        # by name
        cmd += ["--rom", "%s=sim/hal" % vm.SIM_HAL]
        cmd += ["--rom", "%s=machine.py" % os.path.join(vm.SIM_HAL, "vboardmachine.py"),
                "--rom", "%s=vboardboot.py" % os.path.join(vm.SIM_HAL, "vboardboot.py"),
                "--rom", "%s=vboardos.py" % os.path.join(vm.SIM_HAL, "vboardos.py"),
                "--rom", "%s=vboardtime.py" % os.path.join(vm.SIM_HAL, "vboardtime.py")]
        return cmd

    def _spawn(self, mode, cause):
        r, w = os.pipe()
        self._ctl = w
        os.set_blocking(r, False)
        try:
            proc = subprocess.Popen(self._command(mode, cause, r), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    pass_fds=(self.master, r), cwd=vm.MPVM_DIR,
                                    start_new_session=True)
        finally:
            os.close(r)
        return proc

    def _stderr(self, proc):
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("BOARD-READY "):
                with self._booted:
                    self.boots += 1
                    self._booted.notify_all()
            elif line.startswith("BOARD-PENDING "):
                self._pending = line[len("BOARD-PENDING "):].strip()[:1 << 17]
            elif line.startswith("BOARD-ERROR "):
                self.error = line[len("BOARD-ERROR "):]
                self.log(self.error)
            else:
                self.log(line)

    def _run(self):
        mode, cause = "boot", "power-on"
        while not self._stop.is_set():
            proc = self._proc = self._spawn(mode, cause)
            t = threading.Thread(target=self._stderr, args=(proc,), daemon=True)
            t.start()
            rc = proc.wait()
            t.join(5)
            ctl, self._ctl = self._ctl, None
            if ctl is not None:
                os.close(ctl)
            if self._stop.is_set() or rc not in _RESTARTS:
                if not self._stop.is_set():
                    self.error = self.error or "the board's VM stopped (exit status %s)" % rc
                    self.log(self.error)
                break
            what, mode = _RESTARTS[rc]
            cause = what
            self.resets.append(what)
        self._stop.set()
        with self._booted:
            self._booted.notify_all()

    def start(self, boot_timeout=60):
        vm.ensure_vm()
        self._thread.start()
        if not self.wait_boots(1, boot_timeout):
            self.stop()
            raise BoardError(self.error or "the virtual board did not boot within %d s"
                             % boot_timeout)
        return self

    def wait_boots(self, n, timeout=30):
        """True once the VM has started n times (False on timeout or when it stopped)."""
        end = time.monotonic() + timeout
        with self._booted:
            while self.boots < n and not self._stop.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._booted.wait(left)
            return self.boots >= n

    def alive(self):
        return not self._stop.is_set()

    def stop(self, timeout=20):
        """Write the files back and stop the VM (closing its control pipe; then SIGTERM,
        then SIGKILL if it does not end)."""
        self._stop.set()
        proc, ctl = self._proc, self._ctl
        if proc is not None and proc.poll() is None:
            if ctl is not None:
                try:
                    os.close(ctl)
                except OSError:
                    pass
                self._ctl = None
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(dir, install=False, boot_timeout=60, log=None, max_bytes=MAX_BYTES):
    """Start the virtual board on folder dir (see the module's docstring)."""
    if install:
        _install(dir)
    return Board(dir, log=log, max_bytes=max_bytes).start(boot_timeout)


# ----------------------------------------------------------------------------- CLI

def add_arguments(p):
    """The arguments of `sealcam sim board` on an argparse parser."""
    p.add_argument("--dir", metavar="DIR", required=True,
                   help="the board's folder: DIR/flash (internal flash) and DIR/sd (SD card) "
                        "persist across resets and runs; created if missing")
    p.add_argument("--install", action="store_true",
                   help="copy the firmware and the virtual board's board.py into DIR/flash "
                        "first (main.py then runs the recorder and the dock link at boot)")
    p.add_argument("--runtime", choices=("micropython",), default="micropython",
                   help="the board runs on the MicroPython WebAssembly VM (the only one)")
    p.add_argument("--max-mb", type=int, default=MAX_BYTES >> 20, metavar="MIB",
                   help="largest flash + SD content the VM holds in memory (default: %(default)s)")
    return p


def _say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _log(msg):
    sys.stderr.write("sealcam sim board: %s\n" % msg)
    sys.stderr.flush()


def run_board(args):
    stop = threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda s, f: stop.set())
    try:
        try:
            if args.install:
                names = install(args.dir)
                _log("installed %d firmware files into %s" % (len(names),
                                                             os.path.join(args.dir, "flash")))
            board = start(args.dir, log=lambda line: _log(line), max_bytes=args.max_mb << 20)
        except (BoardError, vm.VMUnavailable, OSError) as e:
            _log("%s: %s" % (args.dir, e))
            return EXIT_FAIL
        _say("PORT %s" % board.port)
        _log("board %s serving on %s (flash %s, SD card %s); stop with Ctrl-C"
             % (board.uid, board.port, board.flash, board.sd))
        try:
            while not stop.is_set() and board.alive():
                stop.wait(0.2)
        finally:
            board.stop()
        if board.error and not stop.is_set():
            _log(board.error)
            return EXIT_FAIL
        _log("stopped; files written back to %s" % board.dir)
        return EXIT_OK
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def main(argv=None):
    p = argparse.ArgumentParser(prog="sealcam sim board", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_board(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
