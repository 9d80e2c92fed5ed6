"""The start of every station session with a docked recorder (SPEC §8.3): HELLO, the
device must be registered, AUTH both ways, the recorder's proof checked with the key the
archive registered for it. Used by `sealcam offload`, `dock`, `checkout` and `status`.

    dev_id, row = hello_step(c, a, host_name, register=False)     # SessionError if unknown
    pinned, res = auth_step(c, a, dev_id, row, host_name)         # res: the AUTH result

Nothing the recorder says is believed before its proof: the AUTH result's key, head and
status are used only after the device signature over the session's transcript verified
with the registered key (or, for a device being registered now, with the key it presents,
after refusing a weak key).
"""
from __future__ import annotations

import os

from . import keys
from .archive import valid_device_id
from .link import AUTH, HELLO, DeviceProofError, LinkError, LinkTimeout, NotARecorder

__all__ = ["SessionError", "hello_step", "auth_step", "check_new_key",
           "EXIT_OK", "EXIT_NOT_OK", "EXIT_USAGE", "EXIT_UNKNOWN_DEVICE", "EXIT_AUTH",
           "EXIT_LINK", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_NOT_OK, EXIT_USAGE, EXIT_UNKNOWN_DEVICE, EXIT_AUTH, EXIT_LINK = 0, 1, 3, 4, 5, 6
EXIT_INTERRUPTED = 130          # Ctrl-C (128 + SIGINT), as a shell reports it


class SessionError(Exception):
    def __init__(self, code, message, status, device=None):
        super().__init__(message)
        self.code, self.message, self.status, self.device = code, message, status, device


def _safe(s, n=80):
    """A peer's string for a message: printable ASCII only, cut."""
    r = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(s))
    return r if len(r) <= n else r[:n] + "..."


def hello_step(c, a, host_name, *, register=False):
    """HELLO; returns (device id, its archive row or None if ``register``). SessionError:
    3 not a sealcam recorder, 6 no answer, 4 unknown device (not ``register``)."""
    try:
        with c.deadline(c.budget(HELLO)):
            hello = c.hello(host_name)
    except NotARecorder as e:
        raise SessionError(EXIT_USAGE, str(e), "not_a_recorder") from None
    except LinkTimeout as e:
        raise SessionError(EXIT_LINK, "no answer from %s to HELLO (%s): is the recorder docked "
                           "and serving the dock link?" % (c.port, e), "link_broken") from None
    except LinkError as e:
        raise SessionError(EXIT_LINK, "the recorder on %s refused HELLO (%s)" % (c.port, e),
                           "link_broken") from None
    dev_id = hello.get(1)
    if not valid_device_id(dev_id):
        raise SessionError(EXIT_USAGE, "the device on %s is not a sealcam recorder (its device "
                           "id %r is not one): check the port" % (c.port, _safe(dev_id)),
                           "not_a_recorder")
    row = a.device(dev_id)
    if row is None and not register:
        raise SessionError(EXIT_UNKNOWN_DEVICE, unknown_text(dev_id, a.root), "unknown_device",
                           dev_id)
    return dev_id, row


def unknown_text(dev_id, archive_dir):
    return ("unknown device %s; register it first (`sealcam offload --register`, which "
            "trusts the key it proves, or `sealcam station register --archive %s --device %s "
            "--key KEY`)" % (dev_id, archive_dir, dev_id))


def check_new_key(pub):
    """Why a key presented by a device being registered is refused, or None: not 32 bytes,
    non-canonical, not a curve point, or of small order (keys.check_public_key)."""
    if not isinstance(pub, bytes) or len(pub) != 32:
        return "its key is not 32 bytes"
    try:
        keys.check_public_key(pub)
    except ValueError as e:
        return str(e)
    return None


def auth_step(c, a, dev_id, row, host_name):
    """AUTH with the station key and the recorder's proof checked (SPEC §8.3). Returns
    (the key it proved: the registered one, or for a new device the one it presented;
    the AUTH result). SessionError: 5 the station is not trusted, or the recorder did not
    prove the registered key; 1 it presents another key than the registered one; 6 no
    answer."""
    sk = a.station_key()
    try:
        with c.deadline(c.budget(HELLO) + c.budget(AUTH)):
            res = c.auth(sk, host_name)
    except LinkError as e:
        from cryptography.hazmat.primitives import serialization
        spub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        if e.status == 403:
            why = ("the recorder %s does not trust this station (station key fingerprint %s): "
                   "add %s to its trusted station keys" % (
                       dev_id, keys.fingerprint(spub), os.path.join(a.root, "station.pub")))
        elif e.status == 409:
            why = ("the recorder %s refused AUTH as a replay (stale nonce: another station or "
                   "program talked to it in between); try again" % dev_id)
        else:
            why = "AUTH failed on %s" % dev_id
        raise SessionError(EXIT_AUTH, "%s (%s)" % (why, e), "auth_failed") from None
    except NotARecorder as e:
        raise SessionError(EXIT_USAGE, str(e), "not_a_recorder") from None
    pub = res.get(3)
    if row is None:
        why = check_new_key(pub)
        if why is not None:
            raise SessionError(EXIT_NOT_OK, "device %s cannot be registered: %s; nothing "
                               "stored" % (dev_id, why), "not_ok")
        pinned = pub
    else:
        pinned = row["pubkey"]
        if isinstance(pub, bytes) and len(pub) == 32 and pub != pinned:
            raise SessionError(
                EXIT_NOT_OK, "device %s presents another key than the registered one "
                "(fingerprint %s, registered %s): not its registered recorder, or it was "
                "re-keyed; nothing stored" % (dev_id, keys.fingerprint(pub), row["fingerprint"]),
                "not_ok")
    try:
        c.check_device_proof(pinned, res)
    except DeviceProofError as e:
        raise SessionError(EXIT_AUTH, "%s; nothing stored" % e, "device_not_proven") from None
    return pinned, res
