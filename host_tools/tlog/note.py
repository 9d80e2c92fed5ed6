"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and checkpoints
(c2sp.org/tlog-checkpoint) carried in them.

A signed note is a text ending in a newline, a blank line, and signature lines
"— <key name> <base64(key id || signature)>\\n". For Ed25519 (signature type 0x01) the
key id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key) and the
signature is over the text (with its final newline). A checkpoint's text is

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[extension lines]
"""
from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["NoteError", "key_id", "sign_note", "open_note", "verifier_key",
           "checkpoint_text", "parse_checkpoint", "MAX_NOTE"]

ED25519 = 0x01
DASH = "\u2014 "
MAX_NOTE = 1 << 20          # bytes: a checkpoint note is a few hundred


class NoteError(ValueError):
    pass


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name) and \
        all(ord(c) >= 0x20 for c in name)


def _raw(pub) -> bytes:
    if isinstance(pub, Ed25519PublicKey):
        return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bytes(pub)


def key_id(name: str, pub) -> bytes:
    """The 4-byte key id of an Ed25519 key called ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + _raw(pub)).digest()[:4]


def verifier_key(name: str, pub) -> str:
    """The verifier key string <name>+<hex key id>+<base64(0x01 || public key)>."""
    return "%s+%s+%s" % (name, key_id(name, pub).hex(),
                         base64.b64encode(bytes([ED25519]) + _raw(pub)).decode())


def sign_note(text: str, name: str, sk: Ed25519PrivateKey) -> bytes:
    """The signed note (UTF-8 bytes) of ``text`` under the key ``name``."""
    if not _valid_name(name):
        raise NoteError("not a usable key name: %r" % name)
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text ends in a newline and holds no control characters")
    pub = sk.public_key()
    sig = sk.sign(text.encode())
    line = DASH + name + " " + base64.b64encode(key_id(name, pub) + sig).decode() + "\n"
    return (text + "\n" + line).encode()


def open_note(data: bytes, name: str, pub) -> str:
    """The text of a signed note if it carries a valid signature by the Ed25519 key
    ``name``/``pub``; NoteError otherwise. Other signatures are ignored."""
    if len(data) > MAX_NOTE:
        raise NoteError("note of %d bytes is too long" % len(data))
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in s):
        raise NoteError("note holds control characters")
    i = s.rfind("\n\n")
    if i < 0 or not s.endswith("\n"):
        raise NoteError("note has no signature block")
    text, sigs = s[:i + 1], s[i + 2:]
    kid = key_id(name, pub)
    pk = Ed25519PublicKey.from_public_bytes(_raw(pub))
    found = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError("malformed signature line %r" % line[:80])
        parts = line[len(DASH):].split(" ")
        if len(parts) != 2:
            raise NoteError("malformed signature line %r" % line[:80])
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("signature line is not base64: %r" % line[:80]) from None
        if len(blob) < 5:
            raise NoteError("signature too short")
        if parts[0] != name or blob[:4] != kid:
            continue
        found = True
        try:
            pk.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise NoteError("the signature by %s does not verify" % name) from None
        return text
    raise NoteError("no signature by %s (key id %s)%s" % (
        name, kid.hex(), "" if found else " on the note"))


def checkpoint_text(origin: str, size: int, root_hash: bytes, extensions=()) -> str:
    lines = [origin, str(int(size)), base64.b64encode(root_hash).decode()]
    lines.extend(extensions)
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str):
    """(origin, size, root hash, extension lines) of a checkpoint's text."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("empty checkpoint origin")
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")) or len(size_s) > 20:
        raise NoteError("checkpoint size %r is not a decimal number" % size_s[:40])
    try:
        root_hash = base64.b64decode(root_s, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("checkpoint root hash is not base64") from None
    if len(root_hash) != 32:
        raise NoteError("checkpoint root hash is %d bytes, not 32" % len(root_hash))
    return origin, int(size_s), root_hash, lines[3:-1]
