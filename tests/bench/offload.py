"""Offload throughput over the pty next to a raw copy of the same number of bytes through
the same path (device-side hal.serial, the pty; on the VM also Node's stdout and the
bridge), measured one after the other in one run, for both recorder runtimes; and the cost
of the 50th offload of a device against its 1st, both of the same size (an offload's cost
must not grow with what the archive already holds for the device)."""
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


def _label_fp(store):
    """The key fingerprint on the virtual recorder's label (`offload --register
    --fingerprint`): its public key, written to its flash folder at boot."""
    from host_tools import keys
    return keys.fingerprint(keys.load_public_key(store + ".flash/device.pub"))


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
                         "--fingerprint", _label_fp(os.path.join(tmp, "sd")),
                         "--json", "--no-progress", "--window", window)
            if p.returncode:
                raise SystemExit("offload failed: %s %s" % (p.stdout, p.stderr))
            return json.loads(p.stdout)
        finally:
            srv.terminate()
            srv.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _serve(store, arch, seconds, bitrate, seed):
    return subprocess.Popen(
        [sys.executable, "-m", "sim.serve", "--store", store, "--runtime", "cpython",
         "--trust", os.path.join(arch, "station.pub"), "--record", str(seconds),
         "--bitrate", str(bitrate), "--max-frame", "66560", "--seed", str(seed)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def growth(n=50, seconds=30, bitrate=8000000):
    """The whole run (HELLO to receipt, verification included) of the 1st and the n-th
    offload of one recorder, each bringing one shift of `seconds` at `bitrate`."""
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-growth-")
    try:
        arch = os.path.join(tmp, "archive")
        store = os.path.join(tmp, "sd")
        p = _sealcam("station", "init", "--archive", arch)
        if p.returncode:
            raise SystemExit(p.stderr)
        runs = []
        for k in range(n):
            srv = _serve(store, arch, seconds, bitrate, k + 1)
            try:
                line = srv.stdout.readline()
                if not line.startswith("PORT "):
                    raise SystemExit("sim serve did not start: " + srv.stderr.read())
                # the previous offload's page cache written back first: otherwise its
                # writeback lands on the next run's clock, and grows with the archive
                os.sync()
                p = _sealcam("offload", "--port", line.split()[1], "--archive", arch,
                             "--register", "--fingerprint", _label_fp(store), "--json",
                             "--no-progress")
                if p.returncode:
                    raise SystemExit("offload %d failed: %s %s" % (k + 1, p.stdout, p.stderr))
                runs.append(json.loads(p.stdout))
            finally:
                srv.terminate()
                srv.wait(30)
        return runs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main_growth(n=None):
    n = n or int(os.environ.get("SEALCAM_BENCH_OFFLOADS", "50"))
    runs = growth(n)
    first, last = runs[0], runs[-1]
    k = min(3, n // 2) or 1

    def med(rs, key):
        v = sorted(key(r) for r in rs)
        return v[len(v) // 2]

    whole = lambda r: r["seconds"]                            # noqa: E731
    rest = lambda r: r["seconds"] - r["transfer_seconds"]     # noqa: E731
    ratio = med(runs[-k:], whole) / med(runs[:k], whole)
    print("Offload %d of one recorder against its 1st, each one 30 s shift at 8 Mbit/s "
          "(%.1f MB), whole run HELLO to receipt:" % (n, first["bytes"] / 1e6))
    print("  1st %.2f s, %dth %.2f s (the archive held %d records and %d shifts before it): "
          "ratio %.2f" % (first["seconds"], n, last["seconds"],
                          (last["archive_head_seq"] or 0) + 1, n - 1,
                          last["seconds"] / first["seconds"]))
    print("  median of the last %d against the first %d: ratio %.2f (goal <= 1.2: %s); "
          "verification and receipt alone %.3f s against %.3f s"
          % (k, k, ratio, "met" if ratio <= 1.2 else "NOT met", med(runs[-k:], rest),
             med(runs[:k], rest)))


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
    print()
    main_growth()


if __name__ == "__main__":
    main()
