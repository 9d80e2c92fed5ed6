"""make bench: measured side by side in one run, printed as ratios.

1. Ed25519 sign/verify on the MicroPython VM: the firmware's fast version next to a
   textbook one (same VM, same message: a checkpoint's COSE Sig_structure), and OpenSSL
   through `cryptography` on the host.
2. SHA-256 chunk hashing on the VM against an 8 Mbit/s video stream.
3. A recording on the VM at 8 Mbit/s with 16 kHz audio into Matroska: peak heap
   (gc.mem_alloc) and capture cost as a share of real time;
   the same after a standby with the pre-record ring filling.
4. The bulk offload (card exposed as a disk) next to cp + sha256sum of the same files,
   and the serial path against a raw copy through the same pty (tests/bench/bulk.py).
   Offload over the pty next to a raw copy through the same path, both runtimes.
5. `verify ARCHIVE` next to `openssl dgst -sha256` over the same objects.
6. `sealcam search` on a catalogue of 1,000,000 recordings: p50 / p95 per filter kind
   (tests/bench/search.py; goal p95 < 50 ms).
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time

from sim import vm
from sim.record import run_job

HERE = os.path.dirname(os.path.abspath(__file__))
FW_TESTS = os.path.join(os.path.dirname(HERE), "firmware")


def bench_lines(out):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^BENCH (\S+) ([-\d.e]+)", out, re.M)}


def run_vm(script, libs):
    proc = vm.run(os.path.join(HERE, script), libs=libs)
    if proc.returncode != 0:
        raise SystemExit("bench %s failed on the VM:\n%s" % (script, proc.stdout + proc.stderr))
    return bench_lines(proc.stdout)


def openssl_ms(msg, n=2000):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    k = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    pub = k.public_key()
    t = time.perf_counter()
    for _ in range(n):
        sig = k.sign(msg)
    s = (time.perf_counter() - t) * 1000 / n
    t = time.perf_counter()
    for _ in range(n):
        pub.verify(sig, msg)
    return s, (time.perf_counter() - t) * 1000 / n


def main():
    print("sealcam bench (MicroPython 1.27 WebAssembly VM under Node, and CPython %s)\n"
          % sys.version.split()[0])
    c = run_vm("crypto_vm.py", (vm.FW_PKG, FW_TESTS, HERE))
    msg_len = int(c.get("message_bytes", 0))
    o_sign, o_verify = openssl_ms(bytes(msg_len or 190))
    print("Ed25519 on the VM, signing a checkpoint record's Sig_structure (%d bytes):" % msg_len)
    print("  sign    fast %8.2f ms   textbook %8.2f ms   ratio %5.1fx   (OpenSSL on host %.3f ms)"
          % (c["sign_fast_ms"], c["sign_textbook_ms"], c["sign_textbook_ms"] / c["sign_fast_ms"], o_sign))
    print("  verify  fast %8.2f ms   textbook %8.2f ms   ratio %5.1fx   (OpenSSL on host %.3f ms)"
          % (c["verify_fast_ms"], c["verify_textbook_ms"], c["verify_textbook_ms"] / c["verify_fast_ms"], o_verify))
    if "sha512_block_fast_ms" in c:
        print("  SHA-512 one block  fast %.3f ms   textbook %.3f ms   ratio %.1fx"
              % (c["sha512_block_fast_ms"], c["sha512_block_textbook_ms"],
                 c["sha512_block_textbook_ms"] / c["sha512_block_fast_ms"]))
    print("  target: sign at least 3x the textbook: %s\n"
          % ("met" if c["sign_textbook_ms"] / c["sign_fast_ms"] >= 3 else "NOT met"))

    s = run_vm("sha256_vm.py", (HERE,))
    need = 8e6 / 8 / 1e6
    print("SHA-256 chunk hashing on the VM: %.1f MB/s = %.1fx an 8 Mbit/s stream (%.1f MB/s)\n"
          % (s["sha256_MBps"], s["sha256_MBps"] / need, need))

    tmp = tempfile.mkdtemp(prefix="sealcam-bench-")
    try:
        seconds = 30
        runs = {}
        for name, pre, steps in (
                ("no pre-record", 0, [["start"], ["run", seconds], ["stop"]]),
                ("pre-record", 30, [["run", seconds], ["start"], ["run", seconds], ["stop"]])):
            job = {"sd_host": os.path.join(tmp, name, "sd"),
                   "flash_host": os.path.join(tmp, name, "flash"), "steps": steps,
                   "bitrate": 8000000, "fps": 25, "seed": 1,
                   "settings": {"checkpoint_s": 10, "segment_s": 300, "prerecord_s": pre,
                                "prerecord_ram": 8 << 20}}
            t = time.perf_counter()
            r = run_job(job, "micropython")
            runs[name] = (time.perf_counter() - t, r)
        wall, r = runs["no pre-record"]
        print("Recording %d s at 8 Mbit/s + 16 kHz audio (Matroska) on the VM: %.1f s wall, "
              "%.0f%% of real time (incl. VM start and copying the SD card out)"
              % (seconds, wall, 100 * wall / seconds))
        print("  peak heap: %.1f KiB live (after collection), %.1f KiB allocated between collections"
              % (r["heap_live_peak"] / 1024, r["heap_alloc_peak"] / 1024))
        wall2, r2 = runs["pre-record"]
        print("The same after %d s of standby with the pre-record ring (8 MiB: %.1f s of 8 Mbit/s):"
              " %.1f s wall, %.2fx the time of the run without; peak heap %.1f KiB live"
              % (seconds, (8 << 20) / 1e6, wall2, wall2 / wall, r2["heap_live_peak"] / 1024))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    from tests.bench import bulk
    bulk.main()
    print()
    from tests.bench import offload
    offload.main()
    print()
    from tests.bench import archive_verify
    archive_verify.main()
    print()
    from tests.bench import search
    search.main()


if __name__ == "__main__":
    main()
