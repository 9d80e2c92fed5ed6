"""The docking station's identity and archive set-up (SPEC §9).

    init(DIR)                      station.key (32-byte seed, 0600), station.pub (hex), archive
    register(DIR, device_id, key)  a device and its public key (what `offload` pins)
    load_station_key(DIR)          the Ed25519PrivateKey
"""
from __future__ import annotations

import os
import stat

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import keys
from .archive import Archive, ArchiveError

__all__ = ["init", "register", "load_station_key", "station_pub", "StationError"]

KEY_FILE, PUB_FILE = "station.key", "station.pub"


class StationError(Exception):
    pass


def _raw_pub(sk: Ed25519PrivateKey) -> bytes:
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)


def init(root) -> dict:
    """Make the station key pair and an empty archive in ``root``. Refuses to overwrite an
    existing key. Returns {archive, key, pub, fingerprint, archive_id}."""
    root = os.path.abspath(os.fspath(root))
    kp, pp = os.path.join(root, KEY_FILE), os.path.join(root, PUB_FILE)
    for p in (kp, pp):
        if os.path.lexists(p):
            raise StationError("%s already exists: refusing to overwrite a station key (a new "
                               "key would not be trusted by the recorders)" % p)
    if os.path.exists(root) and not os.path.isdir(root):
        raise StationError("%s is not a directory" % root)
    os.makedirs(root, exist_ok=True)
    sk = Ed25519PrivateKey.generate()
    seed = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    pub = _raw_pub(sk)
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)       # whatever the umask
        os.write(fd, seed)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(pp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (pub.hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    with Archive.create(root) as a:
        aid = a.archive_id
    dfd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return {"archive": root, "key": kp, "pub": pp, "fingerprint": keys.fingerprint(pub),
            "archive_id": aid}


def load_station_key(root) -> Ed25519PrivateKey:
    """The station's private key from ROOT/station.key (32 raw bytes). Refuses a key file
    that others can read."""
    kp = os.path.join(os.fspath(root), KEY_FILE)
    try:
        st = os.stat(kp)
        with open(kp, "rb") as f:
            seed = f.read(64)
    except FileNotFoundError:
        raise StationError("no station key %s (make one with `sealcam station init "
                           "--archive %s`)" % (kp, root)) from None
    except OSError as e:
        raise StationError("cannot read the station key %s: %s" % (kp, e.strerror or e)) \
            from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StationError("the station key %s is accessible by other users (mode %o); "
                           "chmod 600 it" % (kp, stat.S_IMODE(st.st_mode)))
    if len(seed) != 32:
        raise StationError("the station key %s is not a 32-byte Ed25519 seed (%d bytes)"
                           % (kp, len(seed)))
    return Ed25519PrivateKey.from_private_bytes(seed)


def station_pub(root) -> bytes:
    return _raw_pub(load_station_key(root))


def register(root, device_id, key) -> tuple:
    """Register ``device_id`` with ``key``: a key file (raw, hex or PEM/DER), 64 hex
    digits, or 32 raw bytes. Returns (device row, created)."""
    if isinstance(key, (bytes, bytearray)):
        pub = keys.parse_public_key(bytes(key))
    else:
        key = os.fspath(key)
        if os.path.exists(key):
            pub = keys.load_public_key(key)
        else:
            try:
                pub = keys.parse_public_key(key.encode())
            except keys.KeyFileError:
                raise StationError("the key %r is neither a key file nor 64 hex digits"
                                   % key) from None
    with Archive(root) as a:
        try:
            return a.register(device_id, pub)
        except ArchiveError as e:
            raise StationError(str(e)) from None
