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
import sqlite3

from . import keys
from .archive import ArchiveError, valid_device_id
from .link import AUTH, HELLO, DeviceProofError, LinkError, LinkTimeout, NotARecorder

__all__ = ["SessionError", "Revoked", "RetiredKey", "hello_step", "auth_step", "check_new_key",
           "firmware_id", "firmware_text", "note_firmware",
           "EXIT_OK", "EXIT_NOT_OK", "EXIT_USAGE", "EXIT_UNKNOWN_DEVICE", "EXIT_AUTH",
           "EXIT_LINK", "EXIT_REVOKED", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_NOT_OK, EXIT_USAGE, EXIT_UNKNOWN_DEVICE, EXIT_AUTH, EXIT_LINK = 0, 1, 3, 4, 5, 6
EXIT_REVOKED = 7                # the recorder proved its key, and `station revoke` revoked it
EXIT_INTERRUPTED = 130          # Ctrl-C (128 + SIGINT), as a shell reports it


class SessionError(Exception):
    def __init__(self, code, message, status, device=None):
        super().__init__(message)
        self.code, self.message, self.status, self.device = code, message, status, device


class RetiredKey(SessionError):
    """The recorder proved a key `station rekey` retired (exit 5, not authenticated as the
    recorder): ``pinned`` (the retired key), ``res`` and ``history`` (the archive device
    ``ID.keyN`` of that key) let `offload` keep what it holds in quarantine, so that
    records it made with the old key after the last offload are not stranded."""
    def __init__(self, message, device, pinned, res, history):
        super().__init__(EXIT_AUTH, message, "auth_failed", device)
        self.pinned, self.res, self.history = pinned, res, history


class Revoked(SessionError):
    """The recorder proved its registered key, but it is revoked (`sealcam station
    revoke`): ``pinned`` and ``res`` (the AUTH result) let `offload` quarantine what it
    sends; every other verb stops here (exit 7)."""
    def __init__(self, message, device, pinned, res):
        super().__init__(EXIT_REVOKED, message, "revoked", device)
        self.pinned, self.res = pinned, res


def revoked_text(a, dev_id):
    e = ([x for x in a.device_events(dev_id) if x.get("type") == "device_revoked"]
         or [{}])[-1]
    return ("the recorder %s is REVOKED (revoked %s by %s: %s): do not hand it out; keep it "
            "and tell the supervisor" % (dev_id, e.get("at", "?"), _safe(e.get("by", "?")),
                                        _safe(e.get("reason", "?"))))


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
    if row is not None and a.device_status(dev_id) == "retired":
        raise SessionError(EXIT_AUTH, "the device on %s calls itself %s, the name the archive "
                           "keeps a retired key's history under: not a recorder to offload; "
                           "have it inspected" % (c.port, dev_id), "auth_failed", dev_id)
    if row is None and not register:
        raise SessionError(EXIT_UNKNOWN_DEVICE, unknown_text(dev_id, a.root), "unknown_device",
                           dev_id)
    return dev_id, row


def unknown_text(dev_id, archive_dir):
    return ("unknown device %s; a technician registers it first: `sealcam provision --port "
            "PORT --archive %s --device-id %s --technician NAME` (or `sealcam offload "
            "--register --fingerprint FP` with the fingerprint from its label, or `sealcam "
            "station register --archive %s --device %s --key KEY`)"
            % (dev_id, archive_dir, dev_id, archive_dir, dev_id))


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


def auth_step(c, a, dev_id, row, host_name, *, expect=None):
    """AUTH with the station key and the recorder's proof checked (SPEC §8.3). Returns
    (the key it proved: the registered one, or for a new device the one it presented;
    the AUTH result). SessionError: 5 the station is not trusted, or the recorder did not
    prove the registered key, or presents a key retired by `station rekey`; 1 it presents
    another key than the registered one; 6 no answer; 7 (Revoked) it proved its key but
    is revoked. ``expect``: for a device being registered (``row`` None), the fingerprint
    from its label that the key it proves must have (`offload --register --fingerprint`)."""
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
        if expect is not None and keys.fingerprint(pub) != expect:
            raise SessionError(
                EXIT_AUTH, "device %s presents a key with fingerprint %s, not %s as given "
                "(from its label): not registered, nothing stored; check the label and the "
                "recorder in the dock" % (dev_id, keys.fingerprint(pub), expect),
                "auth_failed", dev_id)
        pinned = pub
    else:
        pinned = row["pubkey"]
        retired = [e for k, e in a.retired_keys(dev_id) if k == pub]
        if retired:
            msg = ("device %s presents its RETIRED key (fingerprint %s, retired %s by %s with "
                   "`sealcam station rekey`): that key no longer authenticates; nothing is "
                   "added to its history; have the recorder inspected" % (
                       dev_id, keys.fingerprint(pub), retired[-1].get("at"),
                       _safe(retired[-1].get("by"))))
            try:
                c.check_device_proof(pub, res)
            except DeviceProofError:
                raise SessionError(EXIT_AUTH, msg, "auth_failed", dev_id) from None
            raise RetiredKey(msg, dev_id, pub, res, retired[-1].get("retired_as"))
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
    if row is not None and a.device_status(dev_id) == "revoked":
        raise Revoked(revoked_text(a, dev_id), dev_id, pinned, res)
    return pinned, res


# --- the firmware the recorder runs (AUTH result key 15, SPEC §13) -------------------------

def firmware_id(res):
    """The firmware id (``H(fw.cbor)``, SPEC §13.1) a recorder reported in its AUTH result
    (key 15): 32 bytes, or None. Key 15 is outside the recorder's signature (a relay can
    change it): it is shown, compared with the chain, never logged as the truth."""
    fw = res.get(15) if isinstance(res, dict) else None
    return fw if isinstance(fw, bytes) and len(fw) == 32 else None


def firmware_text(res):
    """One line's worth on the recorder's firmware as it reports it: version and id, or
    why there is none."""
    ver = res.get(13) if isinstance(res, dict) else None
    ver = _safe(ver, 32) if isinstance(ver, str) else "?"
    fid = firmware_id(res)
    if fid is not None:
        return "%s, id %s" % (ver, fid.hex()[:16])
    if isinstance(res, dict) and 15 in res and res[15] is None:
        return "%s, unmanaged (no firmware manifest: flash it with `sealcam flash`)" % ver
    return "%s (the recorder does not report a firmware id)" % ver


def chain_firmware(a, dev_id, pinned):
    """(seq, firmware id or None) of the last FIRMWARE record the archive holds for the
    recorder, signed by ``pinned`` (its key): what the device's own signature says it
    runs; None if there is none."""
    from . import records as R
    try:
        rows = a.db.execute("SELECT seq, data FROM records WHERE device = ? AND type = ? "
                            "ORDER BY seq DESC LIMIT 4", (dev_id, R.FIRMWARE)).fetchall()
    except sqlite3.Error:
        return None
    for r in rows:
        try:
            rec = R.parse(bytes(r["data"]))
        except (R.RecordError, ValueError):
            continue
        if rec.seq != r["seq"] or rec.body.get(R.K.DEVICE) != dev_id \
                or not R.check_signature(pinned, rec):
            continue
        fid = rec.body.get(R.K.FIRMWARE)
        return rec.seq, (bytes(fid) if isinstance(fid, bytes) and len(fid) == 32 else None)
    return None


def note_firmware(a, dev_id, res, pinned):
    """After an offload stored the recorder's records: log `firmware_seen` with the
    firmware id of the last FIRMWARE record of its chain (signed by the device), if it is
    not the last one the station log holds for it (archive.firmware_seen). The id the
    recorder reported in AUTH (key 15, not signed) is only compared with it: returns a
    line saying they differ, or None. Never fails the session."""
    got = chain_firmware(a, dev_id, pinned)
    if got is None:
        return None
    seq, fid = got
    if fid is not None and hasattr(a, "firmware_seen"):
        try:
            a.firmware_seen(dev_id, fid)
        except (ArchiveError, sqlite3.Error, OSError):
            pass        # e.g. an archive opened read-only
    said = firmware_id(res)
    if said is not None and said != fid:
        return ("the recorder %s reported firmware id %s in AUTH, but the last FIRMWARE "
                "record of its chain (seq %d, signed by it) says %s: the AUTH value is not "
                "signed and is not believed; the station log keeps the chain's; have a "
                "technician check the recorder (`sealcam flash --check`)"
                % (dev_id, said.hex()[:16], seq, fid.hex()[:16] if fid else "none"))
    return None


# a revoked recorder's session: what it sends is kept in quarantine, bounded
REVOKED_MAX_RECORDS = 100_000
REVOKED_MAX_BYTES = 256 << 20


def quarantine_revoked(off, dev_id, e: Revoked):
    """`offload` of a revoked recorder (SPEC §9.1): it proved its key, so we know who it is;
    the records it holds past what the archive has (at most REVOKED_MAX_RECORDS and
    REVOKED_MAX_BYTES, never checked into its history) are kept in quarantine, nothing is
    receipted, no media is pulled. Raises SessionError (exit 7) always. ``off`` is the
    offload (needs .a, .c, .sm, .oid, .port, .window)."""
    off.sm.receipt_skipped = "the recorder is revoked: nothing it sends is receipted"
    qid, n = _quarantine_session(off, dev_id, dev_id, e, "revoked recorder")
    raise SessionError(EXIT_REVOKED, "%s; the %d record%s it sent are kept in quarantine %s, "
                       "not in its history, and no receipt was sent"
                       % (e.message, n, "" if n == 1 else "s", qid), "revoked", dev_id)


def quarantine_retired(off, dev_id, e: RetiredKey):
    """`offload` of a recorder that proved a RETIRED key (SPEC §9.1): the records its old
    chain holds past what the archive holds of that key's history (``ID.keyN``) were made
    after the last offload and would be stranded; they are kept in quarantine under that
    history (bounded as for a revoked recorder), nothing is receipted. Raises SessionError
    (exit 5) always."""
    hist = e.history if isinstance(e.history, str) and off.a.device(e.history) else dev_id
    off.sm.receipt_skipped = "the recorder presents a retired key: nothing is receipted"
    qid, n = _quarantine_session(off, dev_id, hist, e, "retired key")
    raise SessionError(EXIT_AUTH, "%s; the %d record%s its old chain holds past what the "
                       "archive has of %s are kept in quarantine %s (not in any history, no "
                       "receipt): a supervisor reviews them" % (
                           e.message, n, "" if n == 1 else "s", hist, qid),
                       "auth_failed", dev_id)


def _quarantine_session(off, dev_id, hist, e, reason):
    """Quarantine what the session's recorder holds past the archive's records of ``hist``;
    (quarantine id, number of records)."""
    from . import records as R
    from .link import GET
    a, c, sm = off.a, off.c, off.sm
    sm.verdict = "NOT_OK"
    sm.fingerprint = keys.fingerprint(e.pinned)
    head = e.res.get(5) if isinstance(e.res, dict) else None
    recs, hs, since = [], None, None
    try:
        if isinstance(head, bytes) and len(head) <= R.MAX_RECORD:
            hs = R.parse(head).seq
    except (R.RecordError, ValueError):
        hs = None
    if hs is not None:
        held = a.max_seq(hist)
        since = 0 if held is None else held + 1
        upto = min(hs, since + REVOKED_MAX_RECORDS - 1)
        total = 0
        if upto >= since:
            got = {}
            for seq, res in c.read_many(((s, {1: s}) for s in range(since, upto + 1)),
                                        max(1, off.window), op=GET, missing_ok=True):
                data = res.get(1) if isinstance(res, dict) else None
                if not isinstance(data, bytes):
                    continue            # a seq the recorder no longer has
                data = data[:R.MAX_RECORD]
                total += len(data)
                if total > REVOKED_MAX_BYTES:
                    break
                got[seq] = data
                sm.record_bytes += len(data)
                sm.bytes += len(data)
            recs = [got[k] for k in sorted(got)]      # in seq order, as the card holds them
    if not recs and isinstance(head, bytes):
        recs = [head[:R.MAX_RECORD]]
    qid = a.quarantine(hist, reason, recs,
                       {"offload": off.oid, "port": off.port, "head_seq": hs,
                        "from_seq": since, "recorder": dev_id})
    sm.quarantine = qid
    return qid, len(recs)
