"""`sealcam sim serve`: the virtual recorder in its dock, on a serial port (a pty).

    python -m sim.serve --store DIR [--flash DIR.flash] [--trust STATION.pub ...]
                        [--runtime cpython|micropython] [--fs littlefs|fat] [--record SECONDS]
                        [--capacity BYTES] [--drift-ppm N] [--max-frame N] [--device ID]
                        [--officer ID] [--bitrate BPS] [--battery PERCENT] [--seed N] [--msc]

Boots the firmware on the store (recovery as usual), records SECONDS of a scripted shift
first if asked (simulated time, as fast as possible), then serves the dock link in real
time until SIGTERM/SIGINT, when it shuts the device down cleanly (the VM's filesystem is
mirrored back to DIR). Once the link is up it prints ``PORT <path>`` as the first line on
stdout: the slave side of a pty that a host opens like /dev/ttyACM0
(``serial.Serial(path, timeout=...)``); everything else goes to stderr.

- cpython runtime: the device runs in this process; hal.serial is the pty master
  (non-blocking; while no host has the port open, output is dropped, as on an undocked
  USB CDC port).
- micropython runtime: the same firmware on the MicroPython VM (``run.mjs --serial``):
  the Node process's stdin/stdout are the device's serial port (/dev/serial in the VM);
  this process relays them to and from the pty master with two threads, whole buffers
  at a time. The VM's memory filesystem is mirrored to DIR every few seconds and at exit.

``--msc``: the recorder offers its card as a read-only disk on EXPOSE (SPEC §8.8), like a
board with USB mass storage; DIR, the store's folder, stands in for the mounted volume
(the station reads the media there, every chunk checked against its signed hash).

``--trust`` adds station public keys (64 hex digits, as ``station.pub``) to the device's
trust list in internal flash (``trust.cbor``) before it boots. The device's public key is
written to FLASH/device.pub.

The lead wires the CLI with ``add_arguments(parser)`` and ``run_serve(args)``;
``raw_copy_mbps(runtime)`` measures the raw byte rate device -> host through the same path.
"""
import argparse
import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty

from host_tools import argtypes
from sim import vm

ROOT = vm.ROOT
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 3


# ----------------------------------------------------------------------------- arguments




def _setting(text):
    k, eq, v = text.partition("=")
    if not eq or not k:
        raise argparse.ArgumentTypeError("%r is not KEY=VALUE" % text)
    if v in ("true", "false"):
        return k, v == "true"
    try:
        return k, int(v)
    except ValueError:
        raise argparse.ArgumentTypeError("%s: %r is not an integer, true or false" % (k, v))


def add_arguments(p):
    """The arguments of `sealcam sim serve` on an argparse parser."""
    p.add_argument("--store", metavar="DIR", required=True,
                   help="the store directory (the virtual SD card); created if missing")
    p.add_argument("--flash", metavar="DIR", default=None,
                   help="the recorder's internal flash (device key, trust list) "
                        "(default: DIR.flash)")
    p.add_argument("--trust", metavar="STATION.pub", action="append", default=[],
                   help="add a station public key (64 hex digits) to the device's trust "
                        "list before it boots; may be repeated")
    argtypes.add_runtime_fs(p)
    p.add_argument("--record", type=argtypes.nonneg_float, default=0, metavar="SECONDS",
                   help="first record SECONDS of a shift in simulated time, as fast as "
                        "possible (default: none)")
    p.add_argument("--capacity", type=argtypes.positive_int, default=None, metavar="BYTES",
                   help="size of the virtual SD card (default: practically unlimited)")
    p.add_argument("--drift-ppm", type=argtypes.integer, default=0, metavar="N",
                   help="the device RTC runs N ppm fast (negative: slow) (default: 0)")
    p.add_argument("--max-frame", type=argtypes.positive_int, default=None, metavar="N",
                   help="largest frame payload the device offers in HELLO; the firmware "
                        "caps it at 1 MiB (default: 1048576, a board offers 65536)")
    p.add_argument("--device", metavar="ID", default="SC-SIM0001",
                   help="device id (default: %(default)s)")
    p.add_argument("--officer", metavar="ID", default=None,
                   help="officer assigned to the recorder (default: none)")
    p.add_argument("--bitrate", type=argtypes.positive_int, default=2000000, metavar="BPS",
                   help="video bit rate of the recording (default: %(default)s)")
    p.add_argument("--battery", type=argtypes.integer, default=87, metavar="PERCENT",
                   help="battery charge at boot; it drains slowly (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed the device's random source (default: the host's randomness)")
    p.add_argument("--setting", metavar="KEY=VALUE", action="append", default=[],
                   type=_setting, help="a firmware setting (firmware/sealcamfw/config.py), e.g. "
                   "drift_min_s=1; may be repeated")
    p.add_argument("--msc", action="store_true",
                   help="offer the card as a read-only disk on EXPOSE (SPEC §8.8), like a "
                   "board with USB mass storage: the store directory stands in for the "
                   "mounted volume (default: no mass storage, media over the link only)")
    p.add_argument("--raw-copy", type=argtypes.positive_int, default=None, metavar="MIB",
                   help=argparse.SUPPRESS)
    return p


def _job(args, sd, flash):
    record = float(args.record or 0)
    return {"sd": sd, "flash": flash, "device": args.device, "model": args.fs,
            "capacity": args.capacity, "drift_ppm": args.drift_ppm,
            "rtc_ms": int(time.time() * 1000) - int(record * 1000), "record": record,
            "max_frame": args.max_frame, "bitrate": args.bitrate, "seed": args.seed,
            "officer": args.officer, "battery": args.battery, "raw_copy_mb": args.raw_copy,
            "settings": dict(args.setting) or None,
            "card_dir": sd if getattr(args, "msc", False) else None}


# ----------------------------------------------------------------------------- trust list

def add_trust(flash_dir, pubs):
    """Add station public keys (32 bytes each) to trust.cbor in the flash folder, with the
    firmware's link.add_trusted when it has one (else: the same CBOR array, written by
    create + replace)."""
    from sim.hal import powerfs
    flash = powerfs.PowerFS(flash_dir)
    try:
        from sealcamfw import link
        add = getattr(link, "add_trusted", None)
    except ImportError:
        add = None
    for pub in pubs:
        if add is not None:
            add(flash, pub)
            continue
        from sealcamfw import cbor
        keys = cbor.loads(flash.read("trust.cbor")) if flash.size("trust.cbor") > 0 else []
        if pub in keys:
            continue
        keys.append(pub)
        f = flash.create("trust.new")
        f.write(cbor.dumps(keys))
        f.close()
        flash.replace("trust.new", "trust.cbor")


def _load_trust(paths):
    from host_tools import keys
    out = []
    for p in paths:
        try:
            out.append(keys.load_public_key(p))
        except OSError as e:
            raise ValueError("%s: %s" % (p, e.strerror or e)) from None
        except ValueError as e:
            raise ValueError("%s: %s" % (p, e)) from None
    return out


# ----------------------------------------------------------------------------- pty

def open_pty():
    """(master fd, slave path): a raw pty; the slave is closed here (a host opens it)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


class _Stop:
    def __init__(self):
        self.flag = False
        self.old = {}

    def __call__(self):
        return self.flag

    def _handler(self, signum, frame):
        self.flag = True

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.old[sig] = signal.signal(sig, self._handler)

    def restore(self):
        for sig, h in self.old.items():
            signal.signal(sig, h)


def _summary(st):
    return "%s records; link: %s requests, %s bytes in, %s bytes out, %.1f s answering" % (
        st.get("records"), st.get("requests", 0), st.get("rx", 0), st.get("tx", 0),
        (st.get("service_ms") or 0) / 1000)


def _say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _log(msg):
    sys.stderr.write("sealcam sim serve: %s\n" % msg)
    sys.stderr.flush()


# ----------------------------------------------------------------------------- cpython

def _serve_cpython(args, job, stop):
    from sim.hal import simserial
    from sim.hal import simserve
    master, path = open_pty()
    serial = simserial.PtySerial(master)

    def idle(t):
        if not serial.connected:
            time.sleep(max(t, 0.005))   # no host: the master reads EIO at once
            return
        w = [master] if serial.pending() else []
        try:
            select.select([master], w, [], t)
        except InterruptedError:
            pass

    try:
        if job.get("raw_copy_mb"):
            _say("PORT %s" % path)
            simserve.raw_copy_blocking(serial, job["raw_copy_mb"], stop, idle)
            return EXIT_OK
        srv = simserve.Server(job, serial)
        srv.boot()
        for _ in srv.record():
            if stop():
                break
        srv.go_live()
        info = srv.info()
        if not stop():
            _say("PORT %s" % path)
            if info.get("full"):
                _log("recording stopped early: %s" % info["full"])
            _log("%s serving on %s (cpython runtime): %d records, device key %s"
                 % (info["device"], path, info["records"],
                    os.path.join(job["flash"], "device.pub")))
        try:
            simserve.serve_blocking(srv, stop, idle)
        finally:
            st = srv.stats()
            srv.shutdown()
        _log("stopped cleanly: %s" % _summary(st))
        return EXIT_OK
    finally:
        os.close(master)


# ----------------------------------------------------------------------------- micropython

class VMBridge:
    """Relays bytes between a pty master and a VM process's stdin/stdout (two threads,
    whole buffers). While no host has the pty open, the device's output is dropped."""

    def __init__(self, master, proc):
        self.master = master
        self.proc = proc
        self.host = False
        self.closed = False
        self.to_vm = self.to_host = self.dropped = 0
        os.set_blocking(master, False)
        self.threads = [threading.Thread(target=self._host_to_vm, daemon=True),
                        threading.Thread(target=self._vm_to_host, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _host_to_vm(self):
        out = self.proc.stdin.fileno()
        while not self.closed:
            try:
                r, _, _ = select.select([self.master], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = os.read(self.master, 1 << 16)
            except BlockingIOError:
                self.host = True
                continue
            except OSError as e:
                if e.errno == errno.EIO:       # no host has the port open
                    self.host = False
                    time.sleep(0.005)
                    continue
                return
            self.host = True
            try:
                _write_all(out, data)
            except OSError:                    # the VM is gone
                return
            self.to_vm += len(data)

    def _vm_to_host(self):
        src = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(src, 1 << 16)
            except OSError:
                return
            if not data:
                return
            if not self.host:
                self.dropped += len(data)
                continue
            mv = memoryview(data)
            while mv and self.host and not self.closed:
                try:
                    k = os.write(self.master, mv)
                except BlockingIOError:
                    select.select([], [self.master], [], 0.05)
                    continue
                except OSError as e:
                    if e.errno == errno.EIO:
                        self.host = False
                        break
                    return
                mv = mv[k:]
                self.to_host += k
            if mv:
                self.dropped += len(mv)

    def join(self, timeout=5):
        self.closed = True
        for t in self.threads:
            t.join(timeout)


def _write_all(fd, data):
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


def vm_command(job, sd=None, flash=None):
    cmd = ["node", vm.RUNNER, "--serial"]
    for lib in vm.LIBS:
        cmd += ["--lib", vm.lib_arg(lib)]
    if sd:
        cmd += ["--mount", "%s=/sd" % sd]
    if flash:
        cmd += ["--mount", "%s=/flash" % flash]
    return cmd + [os.path.join(vm.SIM_HAL, "simservemain.py"), json.dumps(job)]


def _serve_micropython(args, job, stop):
    vm.ensure_vm()
    raw = bool(job.get("raw_copy_mb"))
    j = dict(job, sd="/sd", flash="/flash")
    cmd = vm_command(j, None if raw else job["sd"], None if raw else job["flash"])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
    ready, info, tail = threading.Event(), {}, []

    def stderr_reader():
        for raw_line in iter(proc.stderr.readline, b""):
            line = raw_line.decode("utf-8", "replace").rstrip("\n")
            for key in ("SERVE-READY ", "SERVE-STOPPED "):
                if line.startswith(key):
                    try:
                        info[key.strip()] = json.loads(line[len(key):])
                    except ValueError:
                        info[key.strip()] = {}
                    if key == "SERVE-READY ":
                        ready.set()
                    break
            else:
                tail.append(line)
                del tail[:-50]
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    terr = threading.Thread(target=stderr_reader, daemon=True)
    terr.start()
    master, path = open_pty()
    bridge = VMBridge(master, proc).start()
    rc = EXIT_OK
    try:
        while not ready.is_set() and proc.poll() is None and not stop():
            ready.wait(0.05)
        if ready.is_set() and not stop():
            _say("PORT %s" % path)
            d = info.get("SERVE-READY", {})
            if d.get("full"):
                _log("recording stopped early: %s" % d["full"])
            if not raw:
                _log("%s serving on %s (micropython runtime): %s records, device key %s"
                     % (d.get("device"), path, d.get("records"),
                        os.path.join(job["flash"], "device.pub")))
        while proc.poll() is None and not stop():
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)   # the VM winds down, mirrors, exits
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                _log("the VM did not stop within 40 s; killed")
                proc.kill()
                proc.wait()
                rc = EXIT_FAIL
        terr.join(5)
        if proc.returncode != 0 or (not raw and "SERVE-STOPPED" not in info):
            _log("the virtual recorder on the MicroPython VM failed (exit %s)" % proc.returncode)
            rc = EXIT_FAIL
        elif not raw:
            _log("stopped cleanly: %s" % _summary(info["SERVE-STOPPED"]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        bridge.join()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        os.close(master)
    return rc


# ----------------------------------------------------------------------------- entry

def run_serve(args):
    """`sealcam sim serve`: returns the exit code (0 after a clean shutdown)."""
    sd = os.path.abspath(args.store)
    flash = os.path.abspath(args.flash or sd.rstrip("/") + ".flash")
    try:
        pubs = _load_trust(args.trust)
    except (OSError, ValueError) as e:
        _log("cannot read a station key: %s" % e)
        return EXIT_USAGE
    try:
        os.makedirs(sd, exist_ok=True)
        os.makedirs(flash, exist_ok=True)
    except OSError as e:
        _log("cannot make the store: %s" % e)
        return EXIT_USAGE
    if pubs:
        add_trust(flash, pubs)
    job = _job(args, sd, flash)
    stop = _Stop()
    stop.install()
    try:
        if args.runtime == "micropython":
            return _serve_micropython(args, job, stop)
        return _serve_cpython(args, job, stop)
    except vm.VMUnavailable as e:
        _log(str(e))
        return EXIT_FAIL
    finally:
        stop.restore()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.serve",
                                description="Serve the virtual recorder's dock link on a pty.")
    add_arguments(p)
    return run_serve(p.parse_args(argv))


# ----------------------------------------------------------------------------- benchmark

def raw_copy_mbps(runtime="cpython", mb=16, timeout=120, check=True):
    """Raw byte rate (MB/s, 10^6 bytes) from the device side to a pyserial host through
    the same path `sim serve` uses: hal.serial (PtySerial on CPython; /dev/serial, Node's
    stdout and the bridge threads on the VM) and the pty. The host sends one byte, then
    counts `mb` MiB arriving (and, with check, that every byte is the one sent); the time
    runs from that byte to the last one."""
    import serial
    tmp = tempfile.mkdtemp(prefix="sealcam-rawcopy-")
    proc = subprocess.Popen([sys.executable, "-m", "sim.serve", "--store", os.path.join(tmp, "sd"),
                             "--runtime", runtime, "--raw-copy", str(mb)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("sim serve did not start: %r %s" % (line, proc.stderr.read()))
        ser = serial.Serial(line.split(None, 1)[1].strip(), timeout=1)
        want = mb << 20
        got = 0
        fd = ser.fd
        pattern = bytes(range(256)) * ((1 << 20) // 256 + 1)   # the stream is 0..255 repeated
        t0 = time.perf_counter()
        ser.write(b"G")
        end = t0 + timeout
        while got < want and time.perf_counter() < end:
            r, _, _ = select.select([fd], [], [], 1)
            if r:
                data = os.read(fd, 1 << 20)
                if check and data != pattern[got % 256:got % 256 + len(data)]:
                    raise RuntimeError("raw copy: bytes changed on the way at offset %d" % got)
                got += len(data)
        dt = time.perf_counter() - t0
        ser.close()
        if got != want:
            raise RuntimeError("%d bytes arrived, not %d" % (got, want))
        return got / dt / 1e6
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
