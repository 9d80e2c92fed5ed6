"""The label a technician sticks on a provisioned recorder (`sealcam provision`): its id,
its device key fingerprint (SPEC §2.1) and a QR code of both, as a PNG (the `qrcode`
library with pypng, no Pillow needed).

    text = label_text(device_id, fingerprint)
    write_label_png(path, device_id, fingerprint)

The QR code holds one line: ``sealcam-device:<id>:<fingerprint>``. A station that offloads
the recorder for the first time without its provisioning record checks the key the
recorder proves against this fingerprint (`sealcam offload --register --fingerprint FP`).
"""
from __future__ import annotations

import os

__all__ = ["qr_payload", "label_text", "write_label_png", "parse_qr_payload",
           "normalize_fingerprint"]

PREFIX = "sealcam-device:"


def qr_payload(device_id, fingerprint) -> str:
    return "%s%s:%s" % (PREFIX, device_id, fingerprint)


def parse_qr_payload(text):
    """(device id, fingerprint) from a scanned label, or None."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX):]
    dev, sep, fp = rest.partition(":")
    return (dev, fp) if sep and dev and fp else None


def label_text(device_id, fingerprint) -> str:
    return ("sealcam recorder\n"
            "device id:       %s\n"
            "key fingerprint: %s\n" % (device_id, fingerprint))


def write_label_png(path, device_id, fingerprint, *, box=6) -> str:
    """Write the QR code PNG (the id and fingerprint) to ``path``, never through a symbolic
    link and never over an existing file. Returns the path."""
    import qrcode
    from qrcode.image.pure import PyPNGImage
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box,
                       border=4, image_factory=PyPNGImage)
    qr.add_data(qr_payload(device_id, fingerprint))
    qr.make(fit=True)
    img = qr.make_image()
    path = os.fspath(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644)
    with os.fdopen(fd, "wb") as f:
        img.save(f)
    return path


def normalize_fingerprint(text):
    """A fingerprint as the label and the station print it (8 groups of 4 hex digits joined
    by ':'), from 32 hex digits with or without colons or spaces; None if it is not one."""
    if not isinstance(text, str):
        return None
    hx = "".join(ch for ch in text.strip().lower() if ch not in ": -")
    if len(hx) != 32 or any(ch not in "0123456789abcdef" for ch in hx):
        return None
    return ":".join(hx[i:i + 4] for i in range(0, 32, 4))
