"""The bulk offload (SPEC §8.8) next to `cp` + `sha256sum` of the same files, in one run.

A scaled shift: SEALCAM_BENCH_BULK_MB (default 1024) MB of segment files at the
configured chunk size (64 KiB), bitrate (8 Mbit/s) and segment length (300 s), written by
the reference writer (tests/refwriter.py: real chunk hashes, chain roots and signed
CHECKPOINT/SEGMENT records, with the device key the virtual recorder then boots with). The
virtual recorder (CPython runtime, `--msc`) serves that card; the card folder stands in for
the USB disk. Timed, one after the other, each from the page cache (the files were just
written and `sync`ed before each clock starts):

- `cp` of the segment files to a fresh folder, then `sha256sum` of the copies;
- `sealcam offload` (in process, the same code as the command, into a new archive each
  time): HELLO to receipt,
  records and chunk indexes over the pty, media from the volume, every chunk checked
  against its signed hash before it is staged, the archive's objects written and fsynced,
  the archived store verified (`verify_store`) and the receipt sent.

Both are timed ROUNDS times, alternating; the best of each is compared (the machine is
shared: one slow run says little). Then the serial path's own line: offload over the pty against a raw copy through the same
pty (tests/bench/offload.py), at a smaller size.

    python -m tests.bench.bulk          (make bench runs it too)
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from sim import vm

ROOT = vm.ROOT
HERE = os.path.dirname(os.path.abspath(__file__))
DEVICE = "SC-SIM0001"
SEED = bytes(range(100, 132))       # the device key of the scaled shift
CHUNK = 65536                       # firmware/sealcamfw/config.py defaults
BITRATE = 8_000_000
SEGMENT_S = 300
CHECKPOINT_S = 10
GOAL = 1.2
ROUNDS = 2                          # each side timed this often, alternating; the best counts


def make_shift(sd, flash, mb):
    """A card of ``mb`` MB of media in segments of SEGMENT_S at BITRATE, checkpointed
    every CHECKPOINT_S, and the flash holding the device key that signed it."""
    from tests import refwriter as rw
    s = rw.RefStore(sd, seed=SEED, device=DEVICE, chunk=CHUNK, officer=None)
    s.boot()
    rnd = random.Random(1)
    per_s = BITRATE // 8
    left = mb * 1_000_000
    while left > 0:
        s.rec_start()
        for _ in range(SEGMENT_S // CHECKPOINT_S):
            for _ in range(CHECKPOINT_S):
                n = min(per_s, left)
                s.write(rnd.randbytes(n))
                left -= n
                if not left:
                    break
            s.checkpoint()
            if not left:
                break
        s.close()
    s.rec_stop()
    os.makedirs(flash, exist_ok=True)
    with open(os.path.join(flash, "key.bin"), "wb") as f:
        f.write(SEED)
    return s.pubkey


def cp_sha256sum(sd, dst):
    """Seconds of `cp` of the segment files into dst, then `sha256sum` of the copies."""
    names = sorted(n for n in os.listdir(os.path.join(sd, "m")) if n.endswith(".mkv"))
    os.makedirs(dst)
    t = time.perf_counter()
    subprocess.run(["cp"] + [os.path.join(sd, "m", n) for n in names] + [dst], check=True)
    t_cp = time.perf_counter() - t
    subprocess.run(["sha256sum"] + [os.path.join(dst, n) for n in names], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t, t_cp, len(names)


def bulk_offload(sd, arch, pub):
    from host_tools import station
    from host_tools.archive import Archive
    from host_tools.offload import offload
    station.init(arch)
    a = Archive(arch)
    try:
        a.register(DEVICE, pub)
    finally:
        a.close()
    srv = subprocess.Popen(
        [sys.executable, "-m", "sim.serve", "--store", sd, "--runtime", "cpython", "--msc",
         "--trust", os.path.join(arch, "station.pub"), "--device", DEVICE, "--seed", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit("sim serve did not start: " + srv.stderr.read()[-3000:])
        os.sync()                  # the card's boot writes on disk before the clock starts
        # the virtual recorder names its card folder as the volume: the station reads a
        # folder a recorder names only when its operator opted in (SPEC §8.8)
        os.environ["SEALCAM_SIM_VOLUME"] = "1"
        sm = offload(line.split()[1], arch, progress=False, say=lambda m: None)
    finally:
        srv.terminate()
        srv.wait(60)
    if sm.exit_code != 0 or sm.media_path != "bulk" or sm.bulk_fallbacks:
        raise SystemExit("bulk offload failed: exit %d, %s, %s, %s" % (
            sm.exit_code, sm.media_path, sm.bulk_fallbacks, sm.errors))
    return sm


def main(mb=None):
    mb = mb or int(os.environ.get("SEALCAM_BENCH_BULK_MB", "1024"))
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-bulk-")
    try:
        sd = os.path.join(tmp, "sd")
        t = time.perf_counter()
        pub = make_shift(sd, sd + ".flash", mb)
        made = time.perf_counter() - t
        cps, bulks = [], []
        for r in range(ROUNDS):        # alternating, each from the page cache, synced first
            os.sync()
            cps.append(cp_sha256sum(sd, os.path.join(tmp, "copy")))
            shutil.rmtree(os.path.join(tmp, "copy"))
            os.sync()
            bulks.append(bulk_offload(sd, os.path.join(tmp, "archive%d" % r), pub))
            shutil.rmtree(os.path.join(tmp, "archive%d" % r))
        base, t_cp, nseg = min(cps)
        sm = min(bulks, key=lambda x: x.seconds)
        ratio = sm.seconds / base
        media = sm.media_bytes / 1e6
        shift = 8 * 3600 * BITRATE / 8 / 1e9
        print("Bulk offload (card exposed as a disk) vs cp + sha256sum of the same files: a "
              "scaled shift of %.0f MB, %d segments of %d s at %.0f Mbit/s, %d KiB chunks "
              "(made in %.1f s):" % (media, nseg, SEGMENT_S, BITRATE / 1e6, CHUNK >> 10,
                                      made))
        print("  cp + sha256sum   %6.2f s  (cp %.2f s)   %6.1f MB/s   (best of %s s)"
              % (base, t_cp, media / base, ", ".join("%.2f" % c[0] for c in cps)))
        print("  bulk offload     %6.2f s  (HELLO to receipt: transfer with every chunk "
              "checked %.2f s, the rest verification and receipt)   %6.1f MB/s   (best of %s s)"
              % (sm.seconds, sm.transfer_seconds, media / sm.seconds,
                 ", ".join("%.2f" % b.seconds for b in bulks)))
        print("  ratio %.2f (goal <= %.1f: %s); a full shift (8 h at %.0f Mbit/s, %.1f GB) at "
              "these rates: cp + sha256sum %.0f s, bulk offload %.0f s"
              % (ratio, GOAL, "met" if ratio <= GOAL else "NOT met", BITRATE / 1e6, shift,
                 shift * 1e3 / (media / base), shift * 1e3 / (media / sm.seconds)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    serial_line()


def serial_offload(seconds, frame=66560):
    """Record ``seconds`` at BITRATE on the virtual recorder (CPython, no disk offered),
    offload it over the pty (READ, one chunk per frame); the summary."""
    from host_tools import keys, station
    from host_tools.archive import Archive
    from host_tools.offload import offload
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-serial-")
    try:
        arch, sd = os.path.join(tmp, "archive"), os.path.join(tmp, "sd")
        station.init(arch)
        srv = subprocess.Popen(
            [sys.executable, "-m", "sim.serve", "--store", sd, "--runtime", "cpython",
             "--trust", os.path.join(arch, "station.pub"), "--record", str(seconds),
             "--bitrate", str(BITRATE), "--max-frame", str(frame), "--seed", "1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            if not line.startswith("PORT "):
                raise SystemExit("sim serve did not start: " + srv.stderr.read()[-3000:])
            a = Archive(arch)
            try:
                a.register(DEVICE, keys.load_public_key(sd + ".flash/device.pub"))
            finally:
                a.close()
            sm = offload(line.split()[1], arch, progress=False, say=lambda m: None,
                         bulk=False)
        finally:
            srv.terminate()
            srv.wait(60)
        if sm.exit_code != 0 or sm.media_path != "serial":
            raise SystemExit("serial offload failed: %s" % sm.errors)
        return sm
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def serial_line(seconds=None):
    """The serial path alone: offload over the pty against a raw copy of as many bytes
    through the same pty (sim.serve.raw_copy_mbps), recorder on CPython."""
    from sim.serve import raw_copy_mbps
    seconds = seconds or int(os.environ.get("SEALCAM_BENCH_SERIAL_S", "30"))
    sm = serial_offload(seconds)
    mb = sm.bytes / 1e6
    raw = raw_copy_mbps("cpython", mb=max(8, int(mb / 1.048576)))
    print("  serial path (no disk: READ over the pty, %d s at %.0f Mbit/s, %.0f MB): %.1f MB/s "
          "transfer against a raw copy through the same pty %.1f MB/s: ratio %.2f"
          % (seconds, BITRATE / 1e6, mb, sm.transfer_mb_per_s, raw,
             sm.transfer_mb_per_s / raw))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
