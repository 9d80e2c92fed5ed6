# The device key: an Ed25519 seed made once, at first boot, from the HAL random source and
# kept in internal flash (never on the SD card). Only the public key and signatures leave.
import hashlib

from sealcamfw import ed25519

KEY_FILE = "key.bin"
_NEW = "key.new"


def load_or_create(hal):
    """The device's ed25519 secret object; makes and stores the seed on first boot."""
    flash = hal.flash
    seed = flash.read(KEY_FILE) if flash.size(KEY_FILE) == 32 else None
    if seed is None:
        seed = bytes(hal.random(32))
        if len(seed) != 32:
            raise OSError("random source gave %d bytes, not 32" % len(seed))
        f = flash.create(_NEW)
        f.write(seed)
        f.close()
        flash.replace(_NEW, KEY_FILE)
    sk = ed25519.secret(seed)
    seed = None
    return sk


def fingerprint(pub):
    """First 16 bytes of SHA-256(public key), as hex groups of four (SPEC §2.1)."""
    h = hashlib.sha256(pub).digest()[:16]
    hx = "".join("%02x" % b for b in h)
    return ":".join(hx[i:i + 4] for i in range(0, 32, 4))
