"""firmware/sealcamfw/ed25519.py and sha512.py against OpenSSL (through `cryptography`) and hashlib,
on CPython: 1,000 random keys and messages, both directions, plus SHA-512 at every
length around the block and padding boundaries. The textbook baseline of the benchmark
(tests/bench/ed25519_textbook.py) is checked too, so the benchmark compares equal work.

Reproducible: the random generator is seeded (ED25519_CROSSCHECK_SEED overrides it)."""
import hashlib
import os
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sealcamfw import ed25519
from sealcamfw import sha512

SEED = int(os.environ.get("ED25519_CROSSCHECK_SEED", "20261122"))
L = 2**252 + 27742317777372353535851937790883648493


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def openssl_verify(pub, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def flip_bit(data, bit):
    b = bytearray(data)
    b[bit >> 3] ^= 1 << (bit & 7)
    return bytes(b)


def test_ed25519_matches_openssl_1000_random():
    rng = random.Random(SEED)
    for i in range(1000):
        seed = rng.randbytes(32)
        msg = rng.randbytes(rng.randint(0, 300))
        theirs = Ed25519PrivateKey.from_private_bytes(seed)
        sk = ed25519.secret(seed)
        pub = ed25519.public(sk)
        ctx = "case %d seed %s len %d" % (i, seed.hex(), len(msg))
        assert pub == raw_public(theirs), ctx

        sig = ed25519.sign(sk, msg)
        their_sig = theirs.sign(msg)
        assert sig == their_sig, ctx                       # Ed25519 is deterministic
        assert openssl_verify(pub, msg, sig), ctx          # they accept ours
        assert ed25519.verify(pub, msg, their_sig), ctx    # we accept theirs

        bad_sig = flip_bit(sig, rng.randrange(512))
        assert not ed25519.verify(pub, msg, bad_sig), ctx
        assert not openssl_verify(pub, msg, bad_sig), ctx
        if msg:
            bad_msg = flip_bit(msg, rng.randrange(8 * len(msg)))
            assert not ed25519.verify(pub, bad_msg, sig), ctx
        bad_pub = flip_bit(pub, rng.randrange(256))
        assert not ed25519.verify(bad_pub, msg, sig), ctx


def test_ed25519_noncanonical_s_rejected_like_openssl():
    rng = random.Random(SEED + 1)
    for _ in range(50):
        seed = rng.randbytes(32)
        msg = rng.randbytes(rng.randint(0, 300))
        sk = ed25519.secret(seed)
        pub = ed25519.public(sk)
        sig = ed25519.sign(sk, msg)
        s = int.from_bytes(sig[32:], "little")
        bad = sig[:32] + (s + L).to_bytes(32, "little")
        assert not ed25519.verify(pub, msg, bad)
        assert not openssl_verify(pub, msg, bad)


@pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 110, 111, 112, 113, 127, 128, 129,
                               200, 238, 239, 240, 241, 255, 256, 257, 383, 384, 385, 1000,
                               4096, 10000])
def test_sha512_matches_hashlib_at_boundaries(n):
    data = random.Random(SEED + n).randbytes(n)
    want = hashlib.sha512(data).digest()
    assert sha512.sha512_py(data) == want
    assert sha512.sha512(data) == want
    assert sha512.sha512_py(bytearray(data)) == want
    assert sha512.sha512_py(memoryview(data)) == want


def test_sha512_random_lengths_and_splits():
    rng = random.Random(SEED + 2)
    for _ in range(300):
        data = rng.randbytes(rng.randint(0, 700))
        want = hashlib.sha512(data).digest()
        assert sha512.sha512_py(data) == want
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 4)))
        parts, last = [], 0
        for c in cuts + [len(data)]:
            parts.append(data[last:c])
            last = c
        assert sha512.sha512_parts_py(*parts) == want
        assert sha512.sha512_parts(*parts) == want


def test_textbook_baseline_matches_openssl():
    from bench import ed25519_textbook as tb     # tests/bench/ (pytest's pythonpath: tests)
    rng = random.Random(SEED + 3)
    for _ in range(20):
        seed = rng.randbytes(32)
        msg = rng.randbytes(rng.randint(0, 300))
        theirs = Ed25519PrivateKey.from_private_bytes(seed)
        sig = tb.sign(seed, msg)
        assert sig == theirs.sign(msg)
        assert tb.verify(raw_public(theirs), msg, sig)
        assert not tb.verify(raw_public(theirs), msg, flip_bit(sig, rng.randrange(512)))
        assert tb.sha512(msg) == hashlib.sha512(msg).digest()


def _edge_scalars(rng):
    out = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 255, 256, L - 1, L - 2, L - 8, 2**252, 2**252 - 1,
           2**252 + 1, (2**253 - 1) % L, int("10" * 126, 2), int("01" * 126, 2),
           int("1000" * 63, 2), int("0111" * 63, 2)]
    for k in range(0, 253, 9):
        out += [2**k % L, (2**k - 1) % L, (2**k + 1) % L]
    out += [rng.randrange(L) for _ in range(20)]
    return out


def test_scalar_multiplications_against_textbook():
    """The table-driven [n]B and the joint [s]B + [k](-A) against the textbook's
    bit-by-bit double-and-add, at scalars with long runs of ones and zeros (carries in
    the signed digits and in the wNAF)."""
    from bench import ed25519_textbook as tb     # tests/bench/ (pytest's pythonpath: tests)
    rng = random.Random(SEED + 4)
    scalars = _edge_scalars(rng)
    for n in scalars:
        assert ed25519._encode(*ed25519._base_mul(n)) == tb.point_compress(tb.point_mul(n, tb.G)), n
    seed = rng.randbytes(32)
    pub = ed25519.public(ed25519.secret(seed))
    A = tb.point_decompress(pub)
    neg_a = ((-A[0]) % tb.p, A[1], A[2], (-A[3]) % tb.p)
    atab = ed25519._neg_a_table(pub)
    for _ in range(60):
        s, k = rng.choice(scalars), rng.choice(scalars)
        want = tb.point_compress(tb.point_add(tb.point_mul(s, tb.G), tb.point_mul(k, neg_a)))
        assert ed25519._encode(*ed25519._double_scalarmult(s, k, atab)) == want, (s, k)


# --- the host's key check (host_tools.keys) agrees with the firmware's ----------------------

def test_host_refuses_exactly_the_keys_the_firmware_refuses():
    """keys.check_public_key (host) and ed25519 (firmware) are written apart: every
    small-order point, non-canonical encodings, off-curve bytes and random real keys get
    the same answer from both (a key the host accepts makes firmware verify usable)."""
    from host_tools import keys
    rng = random.Random(SEED)
    cands = list(ed25519._SMALL_ORDER)
    cands += [b"\xec" + b"\xff" * 30 + b"\x7f", b"\xed" + b"\xff" * 30 + b"\x7f",
              b"\xee" + b"\xff" * 30 + b"\x7f", b"\x01" + bytes(30) + b"\x80",
              b"\xee" + b"\xff" * 30 + b"\xff"]
    cands += [raw_public(Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))
              for _ in range(40)]
    cands += [rng.randbytes(32) for _ in range(40)]           # about half are off the curve
    for pub in cands:
        try:
            keys.check_public_key(pub)
            host_ok = True
        except keys.WeakKeyError:
            host_ok = False
        fw_ok = ed25519._decode(pub) is not None and pub not in ed25519._SMALL_ORDER
        assert host_ok == fw_ok, pub.hex()
    for pub in ed25519._SMALL_ORDER:
        # OpenSSL accepts the identity key with the constant signature; neither side does
        sig = bytes.fromhex("01" + "00" * 63)
        assert not ed25519.verify(pub, b"any message", sig)
