# Ed25519 / SHA-512 speed: the firmware's versions (firmware/sealcamfw/ed25519.py, sha512.py) next to
# a textbook one (tests/bench/ed25519_textbook.py), same runtime, same message: the COSE
# Sig_structure of a checkpoint record, as the device builds it.
# Runs on the MicroPython VM (node sim/mpvm/run.mjs --lib firmware/sealcamfw=sealcamfw
# --lib tests/bench tests/bench/crypto_vm.py) and on CPython (python tests/bench/crypto_vm.py
# in the set-up venv). Prints machine-readable lines "BENCH <name> <value>".
#
# Method: every figure is the mean over several batches of runs; fast and textbook
# batches alternate, and between batches the script lets the garbage collector run. On
# the MicroPython WebAssembly VM gc.collect() only flags a collection, which happens
# when control returns to JavaScript: hence the asyncio task and the
# `await asyncio.sleep_ms(1)` between batches (outside the timed parts). Without it the
# heap only grows and every allocation gets slower as the run goes on.
import asyncio
import gc
import sys
import time

try:
    _ticks_us, _ticks_diff = time.ticks_us, time.ticks_diff
    _ticks_ms = time.ticks_ms
except AttributeError:                     # CPython
    def _ticks_us():
        return int(time.perf_counter() * 1000000)

    def _ticks_ms():
        return int(time.perf_counter() * 1000)

    def _ticks_diff(a, b):
        return a - b

import ed25519_textbook as tb    # beside this script (/lib on the VM)
from sealcamfw import ed25519
from sealcamfw import sha512

SEED = bytes(range(1, 33))


def make_message():
    # The Sig_structure the device signs for a checkpoint record, built with the
    # firmware's own cbor/cose modules, with realistic field values (SPEC §3.1).
    from sealcamfw import cbor
    from sealcamfw import cose
    body = {0: 3, 1: 1234, 2: bytes(range(32)), 3: "SC-00A1B2C3", 4: 1795000123456,
            5: 3600123, 6: 17, 7: "PC-0042", 8: "0.1.0", 10: 1200, 13: 150 * 65536,
            14: 150, 15: bytes(range(32, 64))}
    return cose.sig_structure(cose.protected(b"SC-00A1B2C3"), cbor.dumps(body))


MSG = make_message()


async def settle():
    """Let the garbage collector run (on the WebAssembly VM: by yielding to JavaScript;
    twice, as a timer that is already due may resume the task without a yield)."""
    for _ in range(2):
        gc.collect()
        if hasattr(asyncio, "sleep_ms"):
            await asyncio.sleep_ms(1)
        else:
            await asyncio.sleep(0.001)


async def live_heap():
    """Bytes allocated after collections (None where gc.mem_alloc is missing)."""
    if not hasattr(gc, "mem_alloc"):
        return None
    best = None
    for _ in range(3):
        await settle()
        m = gc.mem_alloc()
        best = m if best is None or m < best else best
    return best


async def timed(cases, batches, per_batch):
    """cases: {name: fn}; runs fn per_batch[name] times per batch, batches times,
    alternating names; returns {name: mean ms per call}."""
    tot = {}
    cnt = {}
    for _ in range(batches):
        for name in cases:
            fn = cases[name]
            n = per_batch[name]
            await settle()
            t = _ticks_us()
            for _ in range(n):
                fn()
            dt = _ticks_diff(_ticks_us(), t)
            tot[name] = tot.get(name, 0) + dt
            cnt[name] = cnt.get(name, 0) + n
    return {name: tot[name] / cnt[name] / 1000 for name in cases}


def out(name, value):
    if isinstance(value, float):
        print("BENCH %s %.4f" % (name, value))
    else:
        print("BENCH %s %s" % (name, value))


async def main():
    quick = "--quick" in sys.argv
    on_vm = sys.implementation.name == "micropython"
    scale = 1 if on_vm else 10
    batches = 2 if quick else 6
    out("message_bytes", len(MSG))

    # first secret(): builds the [r]B table and computes A; memory of both tables
    m0 = await live_heap()
    t = _ticks_us()
    sk = ed25519.secret(SEED)
    out("secret_first_ms", _ticks_diff(_ticks_us(), t) / 1000)
    t = _ticks_us()
    ed25519._base_odd_table()
    out("verify_table_build_ms", _ticks_diff(_ticks_us(), t) / 1000)
    m1 = await live_heap()
    if m0 is not None:
        out("tables_bytes", m1 - m0)

    pub = ed25519.public(sk)
    sig = ed25519.sign(sk, MSG)
    tb_sig = tb.sign(SEED, MSG)
    assert sig == tb_sig, "fast and textbook signatures differ"
    assert ed25519.verify(pub, MSG, sig) and tb.verify(pub, MSG, sig)
    bad = bytearray(sig)
    bad[5] ^= 4
    assert not ed25519.verify(pub, MSG, bytes(bad)) and not tb.verify(pub, MSG, bytes(bad))

    # bytes allocated by one call (garbage after it): on the WebAssembly VM nothing is
    # collected until control returns to JavaScript, so this is the heap a call needs
    if m0 is not None:
        for name, fn in (("sign_fast", lambda: ed25519.sign(sk, MSG)),
                         ("verify_fast", lambda: ed25519.verify(pub, MSG, sig)),
                         ("sign_textbook", lambda: tb.sign(SEED, MSG))):
            await settle()
            a0 = gc.mem_alloc()
            fn()
            out(name + "_alloc_bytes", gc.mem_alloc() - a0)

    def verify_cold():
        ed25519._acache[0] = None            # decode A and build its table every time
        ed25519.verify(pub, MSG, sig)

    r = await timed({
        "sign_fast": lambda: ed25519.sign(sk, MSG),
        "sign_textbook": lambda: tb.sign(SEED, MSG),
        "verify_fast": verify_cold,
        "verify_fast_samekey": lambda: ed25519.verify(pub, MSG, sig),
        "verify_textbook": lambda: tb.verify(pub, MSG, sig),
    }, batches, {"sign_fast": 8 * scale, "sign_textbook": 2 * scale, "verify_fast": 4 * scale,
                 "verify_fast_samekey": 4 * scale, "verify_textbook": 2 * scale})
    for name in ("sign_fast", "sign_textbook", "verify_fast", "verify_fast_samekey",
                 "verify_textbook"):
        out(name + "_ms", r[name])
    out("sign_ratio", r["sign_textbook"] / r["sign_fast"])
    out("verify_ratio", r["verify_textbook"] / r["verify_fast"])

    # SHA-512 per 128-byte block: 64 blocks of data (8175 bytes + 17 bytes of padding)
    data = bytes(range(256)) * 31 + bytes(range(239))
    assert sha512.sha512_py(data) == tb.sha512(data)
    r = await timed({
        "fast": lambda: sha512.sha512_py(data),
        "textbook": lambda: tb.sha512(data),
    }, batches, {"fast": scale, "textbook": scale})
    out("sha512_block_fast_ms", r["fast"] / 64)
    out("sha512_block_textbook_ms", r["textbook"] / 64)
    out("sha512_ratio", r["textbook"] / r["fast"])

    # where a fast signature's time goes: 5 SHA-512 blocks + [r]B + encoding
    r = await timed({
        "base_mul": lambda: ed25519._base_mul(ed25519._L - 12345),
        "sha_2x190": lambda: (sha512.sha512_parts(sk.prefix, MSG),
                              sha512.sha512_parts(sig[:32], pub, MSG)),
    }, batches, {"base_mul": 8 * scale, "sha_2x190": 8 * scale})
    out("sign_part_base_mul_ms", r["base_mul"])
    out("sign_part_sha512_ms", r["sha_2x190"])
    print("BENCH-DONE")


async def _task():
    try:
        await main()
    except Exception as e:
        if hasattr(sys, "print_exception"):
            sys.print_exception(e)
        else:
            import traceback
            traceback.print_exc()
        try:
            import jshal
            jshal.exit(1)
        except ImportError:
            sys.exit(1)


if hasattr(asyncio, "run"):
    asyncio.run(_task())
else:
    # MicroPython WebAssembly VM: no asyncio.run; the task runs on Node's event loop
    # after this script returns (the runner keeps Node alive until it is done).
    asyncio.create_task(_task())
