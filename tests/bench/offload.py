"""Offload throughput over the pty next to a raw copy of the same number of bytes through
the same path (device-side hal.serial, the pty; on the VM also Node's stdout and the
bridge), measured one after the other in one run, for both recorder runtimes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from sim import vm
from sim.serve import raw_copy_mbps

ROOT = vm.ROOT


def _sealcam(*args):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def offload_mbps(runtime, seconds=60, bitrate=8000000, frame=66560, window=8):
    """Record `seconds` at `bitrate` on the virtual recorder, offload it; returns the
    offload summary (transfer MB/s and bytes)."""
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-")
    try:
        arch = os.path.join(tmp, "archive")
        p = _sealcam("station", "init", "--archive", arch)
        if p.returncode:
            raise SystemExit(p.stderr)
        srv = subprocess.Popen(
            [sys.executable, "-m", "sim.serve", "--store", os.path.join(tmp, "sd"), "--runtime",
             runtime, "--trust", os.path.join(arch, "station.pub"), "--record", str(seconds),
             "--bitrate", str(bitrate), "--max-frame", str(frame), "--seed", "1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            if not line.startswith("PORT "):
                raise SystemExit("sim serve did not start: " + srv.stderr.read())
            p = _sealcam("offload", "--port", line.split()[1], "--archive", arch, "--register",
                         "--json", "--no-progress", "--window", window)
            if p.returncode:
                raise SystemExit("offload failed: %s %s" % (p.stdout, p.stderr))
            return json.loads(p.stdout)
        finally:
            srv.terminate()
            srv.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    print("Offload over the pty vs a raw copy through the same path (8 Mbit/s recording, "
          "64 KiB chunks, one chunk per READ frame):")
    for runtime in ("cpython", "micropython"):
        s = offload_mbps(runtime)
        mb = s["bytes"] / 1e6
        raw = raw_copy_mbps(runtime, mb=max(8, int(mb / 1.048576)))
        print("  recorder on %-11s offload %6.1f MB/s (%.0f MB, transfer only; %.1f MB/s whole run "
              "with verification and receipt)   raw copy %6.1f MB/s   ratio %.2f (target 0.9)"
              % (runtime, s["transfer_mb_per_s"], mb, s["mb_per_s"], raw,
                 s["transfer_mb_per_s"] / raw))


if __name__ == "__main__":
    main()
