# Mutual authentication on the dock link (protocol/SPEC.md §8.3), device side.
#
# Both sides sign one transcript hash that binds the device id, both 16-byte nonces and
# the station's public key:
#
#   th = SHA-256("sealcam-auth-v2" || 0x00 || device id || 0x00 || device nonce
#                || station nonce || station public key)
#   the station signs "sealcam-auth-v2 station" || th, the device "sealcam-auth-v2 device" || th
#
# Station trust lives in internal flash: trust.cbor, a CBOR array of 32-byte Ed25519
# public keys (add_trusted() writes it, flashkv: replaced whole).
import hashlib

from sealcamfw import ed25519
from sealcamfw import flashkv

CONTEXT = b"sealcam-auth-v2"
STATION_ROLE = b"sealcam-auth-v2 station"
DEVICE_ROLE = b"sealcam-auth-v2 device"
NONCE_SIZE = 16

TRUST = "trust.cbor"


def transcript(device, device_nonce, station_nonce, station_pub):
    """th of SPEC §8.3 (32 bytes)."""
    h = hashlib.sha256(CONTEXT)
    h.update(b"\x00")
    h.update(device.encode())
    h.update(b"\x00")
    h.update(bytes(device_nonce))
    h.update(bytes(station_nonce))
    h.update(bytes(station_pub))
    return h.digest()


def station_message(th):
    return STATION_ROLE + th


def device_message(th):
    return DEVICE_ROLE + th


def verify_station(pub, th, sig):
    """True if sig is the station's signature (key pub) over station_message(th)."""
    return ed25519.verify(pub, station_message(th), sig)


def device_proof(sk, th):
    """The device's signature over device_message(th) (64 bytes)."""
    return ed25519.sign(sk, device_message(th))


def load_trusted(flash):
    """The trusted station keys (32-byte Ed25519 public keys) from trust.cbor; [] if none.
    A trust.new left by a cut between remove and rename (FAT) is used if trust.cbor is
    gone (flashkv.read)."""
    v = flashkv.read(flash, TRUST)
    if type(v) is list:
        return [k for k in v if type(k) is bytes and len(k) == 32]
    return []


def add_trusted(flash, pub):
    """Add a station public key to trust.cbor (written whole: create + replace). Returns
    False if it was there already."""
    pub = bytes(pub)
    if len(pub) != 32:
        raise ValueError("a station public key is 32 bytes, not %d" % len(pub))
    keys = load_trusted(flash)
    if pub in keys:
        return False
    keys.append(pub)
    flashkv.write(flash, TRUST, keys)
    return True
