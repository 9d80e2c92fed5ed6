"""Pinned device public keys (SPEC §2.1).

A pinned key file may hold the 32-byte Ed25519 public key in one of these forms:

- raw: exactly 32 bytes;
- hex: 64 hexadecimal digits (whitespace, including newlines, is ignored);
- PEM (``-----BEGIN PUBLIC KEY-----``) or DER SubjectPublicKeyInfo of an Ed25519 key.

``fingerprint(pubkey)`` is the key fingerprint clerks compare with the registered one:
the first 16 bytes of SHA-256(pubkey) as 32 lowercase hex digits in groups of four
separated by ``:``.

``check_public_key(raw)`` refuses what no recorder's key can be and what OpenSSL would
still accept: a non-canonical encoding (y >= p, or x = 0 with the sign bit set), bytes
that are not a point of the curve, and a point of small order (8P = identity: under such
a key one 64-byte "signature" verifies for every message, no secret needed). Points of
mixed order are not refused (the firmware does not refuse them either). Every parse and
load function here checks the key, so `--key`, registration and the verifier refuse them.
"""
from __future__ import annotations

import hashlib
import os
import stat
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["KeyFileError", "load_public_key", "parse_public_key", "fingerprint",
           "public_key_object", "check_public_key", "WeakKeyError"]


class KeyFileError(ValueError):
    """The key file cannot be read as an Ed25519 public key."""


class WeakKeyError(KeyFileError):
    """32 bytes that are not a usable Ed25519 public key (small order, non-canonical)."""


# --- the curve, only to judge a public key once (RFC 8032 §5.1) ------------------------
_P = 2 ** 255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(raw: bytes):
    """(x, y) of a canonical point encoding; raises WeakKeyError naming what is wrong."""
    y = int.from_bytes(raw, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        raise WeakKeyError("not a canonical Ed25519 public key (y >= p): no recorder makes "
                           "such a key")
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P:
        x = x * _SQRT_M1 % _P
        if (v * x * x - u) % _P:
            raise WeakKeyError("not an Ed25519 public key: the 32 bytes are not a point of "
                               "the curve")
    if x == 0 and sign:
        raise WeakKeyError("not a canonical Ed25519 public key (x = 0 with the sign bit "
                           "set): no recorder makes such a key")
    if x & 1 != sign:
        x = _P - x
    return x, y


def _double(pt):
    x, y = pt
    xx, yy, xy = x * x % _P, y * y % _P, x * y % _P
    dxy = _D * xx * yy % _P
    return (2 * xy * pow(1 + dxy, _P - 2, _P) % _P,
            (yy + xx) * pow(1 - dxy, _P - 2, _P) % _P)


def check_public_key(raw) -> bytes:
    """Return the 32 raw bytes of a usable Ed25519 public key, or raise WeakKeyError (a
    ValueError) saying why it is refused: wrong length, non-canonical encoding, not a curve
    point, or small order (8P = identity)."""
    raw = bytes(raw)
    if len(raw) != 32:
        raise WeakKeyError("an Ed25519 public key is 32 bytes, got %d" % len(raw))
    pt = _decode_point(raw)
    for _ in range(3):
        pt = _double(pt)
    if pt == (0, 1):
        raise WeakKeyError("refused Ed25519 public key of small order (8P = identity): "
                           "under it one 64-byte signature verifies for every message, no "
                           "secret needed; no recorder makes such a key")
    return raw


def fingerprint(pubkey: bytes) -> str:
    """SPEC §2.1: first 16 bytes of H(pubkey), lowercase hex, groups of 4 joined by ':'."""
    pubkey = _raw(pubkey)
    h = hashlib.sha256(pubkey).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def _raw(pubkey) -> bytes:
    if isinstance(pubkey, Ed25519PublicKey):
        return pubkey.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pubkey = bytes(pubkey)
    if len(pubkey) != 32:
        raise KeyFileError("an Ed25519 public key is 32 bytes, got %d" % len(pubkey))
    return pubkey


def public_key_object(pubkey) -> Ed25519PublicKey:
    """An Ed25519PublicKey from 32 raw bytes (or an Ed25519PublicKey); raises WeakKeyError
    for a key check_public_key refuses."""
    return Ed25519PublicKey.from_public_bytes(check_public_key(_raw(pubkey)))


_HEX = set(string.hexdigits)


def parse_public_key(data: bytes) -> bytes:
    """Return the raw 32-byte Ed25519 public key held in ``data`` (see module doc)."""
    data = bytes(data)
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped)
        except (ValueError, TypeError) as e:
            raise KeyFileError("not a PEM public key: %s" % e) from None
        return _check_ed25519(key)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        compact = "".join(text.split())
        if len(compact) == 64 and set(compact) <= _HEX:
            return check_public_key(bytes.fromhex(compact))
    if len(data) == 32:
        return check_public_key(data)
    if data[:1] == b"\x30":  # DER SEQUENCE
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError) as e:
            raise KeyFileError("not a DER public key: %s" % e) from None
        return _check_ed25519(key)
    raise KeyFileError("not an Ed25519 public key (expected 32 raw bytes, 64 hex digits, "
                    "or a PEM/DER SubjectPublicKeyInfo)")


def _check_ed25519(key) -> bytes:
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("the key is not an Ed25519 key (%s)" % type(key).__name__)
    return check_public_key(_raw(key))


def load_public_key(path: str | os.PathLike) -> bytes:
    """Read a pinned key file; return the raw 32-byte public key.

    Raises OSError if the file cannot be read and KeyFileError if it holds no Ed25519 key.
    """
    # O_NONBLOCK: a FIFO named as the key file must not hang the command (attack2 X0)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise KeyFileError("%s is not a regular file (a FIFO, device or directory): name "
                               "the key file" % _printable_path(path))
        with os.fdopen(fd, "rb") as f:
            fd = None
            data = f.read(1 << 16)
    finally:
        if fd is not None:
            os.close(fd)
    return parse_public_key(data)


def _printable_path(path) -> str:
    s = os.fsdecode(path)
    return "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256
                   else "\\u%04x" % ord(c) for c in s)
