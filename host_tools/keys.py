"""Pinned device public keys (SPEC §2.1).

A pinned key file may hold the 32-byte Ed25519 public key in one of these forms:

- raw: exactly 32 bytes;
- hex: 64 hexadecimal digits (whitespace, including newlines, is ignored);
- PEM (``-----BEGIN PUBLIC KEY-----``) or DER SubjectPublicKeyInfo of an Ed25519 key.

``fingerprint(pubkey)`` is the key fingerprint clerks compare with the registered one:
the first 16 bytes of SHA-256(pubkey) as 32 lowercase hex digits in groups of four
separated by ``:``.
"""
from __future__ import annotations

import hashlib
import os
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["KeyFileError", "load_public_key", "parse_public_key", "fingerprint",
           "public_key_object"]


class KeyFileError(ValueError):
    """The key file cannot be read as an Ed25519 public key."""


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
    """An Ed25519PublicKey from 32 raw bytes (or an Ed25519PublicKey)."""
    if isinstance(pubkey, Ed25519PublicKey):
        return pubkey
    return Ed25519PublicKey.from_public_bytes(_raw(pubkey))


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
            return bytes.fromhex(compact)
    if len(data) == 32:
        return data
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
    return _raw(key)


def load_public_key(path: str | os.PathLike) -> bytes:
    """Read a pinned key file; return the raw 32-byte public key.

    Raises OSError if the file cannot be read and KeyFileError if it holds no Ed25519 key.
    """
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    return parse_public_key(data)
