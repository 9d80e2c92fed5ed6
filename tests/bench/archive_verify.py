"""`sealcam verify ARCHIVE` throughput next to `openssl dgst -sha256` over the same object
files (page cache warm for both, measured one after the other in one run).

The archive is built through the Archive API (register, add_records, staging,
finish_segment, commit_view: what an offload does) from a reference store of a few
large segments, so that it has a real station log, views and objects."""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import cbor2

from host_tools import station
from host_tools.archive import Archive
from host_tools.archive_verify import verify_archive
from tests import refwriter as rw

GOAL = 0.9


def build(root, mib=384, segments=4, chunk=65536):
    arch = os.path.join(root, "arch")
    station.init(arch)
    s = rw.RefStore(os.path.join(root, "sd"), chunk=chunk)
    rnd = random.Random(3)
    block = bytearray(rnd.randbytes(1 << 20))
    s.boot()
    per = mib // segments
    for _ in range(segments):
        s.rec_start()
        for i in range(per):
            block[:8] = rnd.randbytes(8)
            s.write(bytes(block))
            if i % 16 == 15:
                s.checkpoint()
        s.close()
    s.rec_stop()
    dev = s.device
    with Archive(arch) as a:
        a.register(dev, s.pubkey)
        a.add_records(dev, [(r.seq, r.data, rw.decode_record(r.data)) for r in s.records])
        for row in a.segments(dev):
            f = a.open_staging(dev, row)
            with open(s.path(row["media"]), "rb") as src:
                shutil.copyfileobj(src, f, 1 << 22)
            f.close()
            idx = open(s.path(row["media"][:-5] + ".idx"), "rb").read()
            a.set_staged(dev, row["segment"], row["length"], row["chunks"], row["root"])
            a.finish_segment(dev, a.segment(dev, row["segment"]), idx)
        head = cbor2.loads(open(s.path("head.cbor"), "rb").read())[3]
        a.commit_view(dev, head)
    return arch


def objects(arch):
    return [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(arch, "objects"))
            for f in fs]


def main(mib=384):
    tmp = tempfile.mkdtemp(prefix="sealcam-bench-av-")
    try:
        arch = build(tmp, mib)
        objs = objects(arch)
        total = sum(os.path.getsize(p) for p in objs)
        for p in objs:                      # warm the page cache for both
            with open(p, "rb") as f:
                while f.read(1 << 22):
                    pass
        best_o, best_v = None, None
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(["openssl", "dgst", "-sha256"] + objs, check=True,
                           stdout=subprocess.DEVNULL)
            o = time.perf_counter() - t
            t = time.perf_counter()
            res = verify_archive(arch, progress=False)
            v = time.perf_counter() - t
            if res["verdict"] != "OK":
                raise SystemExit("bench archive did not verify OK: %s" % res["reasons"])
            best_o = o if best_o is None else min(best_o, o)
            best_v = v if best_v is None else min(best_v, v)
        mo, mv = total / best_o / 1e6, total / best_v / 1e6
        print("verify ARCHIVE over %d objects (%.0f MB, %d media segments, %d cores): "
              "%.0f MB/s; openssl dgst -sha256 over the same files: %.0f MB/s; ratio %.2f"
              % (len(objs), total / 1e6, 4, os.cpu_count() or 1, mv, mo, mv / mo))
        print("  goal: ratio >= %.1f (hashing-bound): %s" % (GOAL, "met" if mv / mo >= GOAL
                                                               else "NOT met"))
        print("BENCH archive_verify_MBps %.1f" % mv)
        print("BENCH openssl_sha256_MBps %.1f" % mo)
        return mv / mo
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 384)
