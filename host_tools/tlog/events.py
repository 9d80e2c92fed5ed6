"""The station log's entries (SPEC §11): one builder per event type, so that the archive
as it writes (host_tools.archive) and an adoption of an older index (adopt) state each
event with the same fields; replay reads them back.

Every entry is a map with a "type" and an "at" (UTC time stamp); byte fields are bytes.
"""
from __future__ import annotations

__all__ = ["OFFLOAD_FIELDS", "LIFECYCLE", "adopt", "register", "records", "object_", "head",
           "receipt", "receipt_status", "offload", "quarantine", "device_provisioned",
           "device_revoked", "device_rekeyed", "firmware_seen", "segment_disposed",
           "DISPOSAL_FIELDS", "disposal_text"]

# the device lifecycle events (SPEC §11.1): each is also a row of the index's
# device_events table (host_tools.archive.devices), which verify compares with the log
LIFECYCLE = ("device_provisioned", "device_revoked", "device_rekeyed", "firmware_seen")

# the columns of an offloads row that its `offload` event states
OFFLOAD_FIELDS = ("device", "port", "started", "finished", "records", "bytes", "status",
                  "verdict", "error", "head_went_back", "head_seq", "receipt_number")


def adopt(at, devices: int) -> dict:
    return {"type": "adopt", "at": at, "devices": devices}


def register(at, device, key) -> dict:
    return {"type": "register", "at": at, "device": device, "key": bytes(key)}


def records(at, device, offload, items: list) -> dict:
    """``items``: [[seq, H(record), type], ...]."""
    return {"type": "records", "at": at, "device": device, "offload": offload,
            "records": items}


def object_(at, device, path, sha256: bytes) -> dict:
    return {"type": "object", "at": at, "device": device, "path": path,
            "sha256": bytes(sha256)}


def head(at, device, seq, hash_: bytes) -> dict:
    return {"type": "head", "at": at, "device": device, "seq": seq, "hash": bytes(hash_)}


def receipt(at, device, number, covered, covered_hash, receipt_: bytes) -> dict:
    return {"type": "receipt", "at": at, "device": device, "number": number,
            "covered": covered, "covered_hash": bytes(covered_hash),
            "receipt": bytes(receipt_)}


def receipt_status(at, device, number, status, record_seq, message) -> dict:
    return {"type": "receipt_status", "at": at, "device": device, "number": number,
            "status": status, "record_seq": record_seq, "message": message}


def offload(at, offload_id, row) -> dict:
    """The event of a finished offload: ``row`` is its offloads row."""
    e = {"type": "offload", "at": at, "id": offload_id}
    e.update((k, row[k]) for k in OFFLOAD_FIELDS)
    return e


def quarantine(at, qid, device, reason, records_: int, sha256: bytes) -> dict:
    return {"type": "quarantine", "at": at, "id": qid, "device": device, "reason": reason,
            "records": records_, "sha256": bytes(sha256)}


# -- the device lifecycle (SPEC §9.1, §11.1) -----------------------------------------------

def device_provisioned(at, device, key, technician, fingerprint) -> dict:
    """A technician provisioned the recorder (`sealcam provision`): its id, the key it proved
    holding in a session, who vouched for it, and the fingerprint printed on its label. It
    registers the device like `register`."""
    return {"type": "device_provisioned", "at": at, "device": device, "key": bytes(key),
            "technician": technician, "fingerprint": fingerprint}


def device_revoked(at, device, reason, by) -> dict:
    """The recorder is lost or stolen (`sealcam station revoke`): from now on what it sends
    is quarantined, never receipted."""
    return {"type": "device_revoked", "at": at, "device": device, "reason": reason, "by": by}


def device_rekeyed(at, device, old_key, new_key, retired_as, retired_seq, retired_hash, by
                   ) -> dict:
    """A new device key after a repair (`sealcam station rekey`). The old key's history
    (records up to ``retired_seq``, its last head ``retired_hash``; None if nothing was
    offloaded) is kept as the archive device ``retired_as``, verified with the old key;
    ``device`` starts again with ``new_key`` (a new chain)."""
    return {"type": "device_rekeyed", "at": at, "device": device, "old_key": bytes(old_key),
            "new_key": bytes(new_key), "retired_as": retired_as, "retired_seq": retired_seq,
            "retired_hash": None if retired_hash is None else bytes(retired_hash), "by": by}


def firmware_seen(at, device, fw: bytes) -> dict:
    """The recorder reported a firmware manifest hash (HELLO `fw`) other than the last one
    the log holds for it."""
    return {"type": "firmware_seen", "at": at, "device": device, "fw": bytes(fw)}


def device_status(retired, lifecycle, d):
    """'active', 'revoked' or 'retired' (the history of a re-keyed device's old key), from
    the ids retired by re-keys and each device's lifecycle events in log order: the last
    revocation or re-key decides."""
    if d in retired:
        return "retired"
    st = "active"
    for e in lifecycle.get(d, ()):
        if e.get("type") == "device_revoked":
            st = "revoked"
        elif e.get("type") == "device_rekeyed":
            st = "active"
    return st


# -- disposal (SPEC §9.2, §11.1) -------------------------------------------------------------

# the fields of a `segment_disposed` entry besides type, at, device, segment and objects
DISPOSAL_FIELDS = ("request", "requested_by", "approved_by", "approved_at", "reason", "class",
                   "expired_on")


def segment_disposed(at, device, segment, objects, *, request, requested_by, approved_by,
                     approved_at, reason, class_, expired_on) -> dict:
    """The approved disposal of one segment's media (host_tools.archive.dispose): the only
    event after which an object leaves the archive. ``objects``: [{"path": "m/S.mkv",
    "sha256": bytes}, ...], every object the log ever linked at the segment's media and
    index paths (the complete files first, then earlier prefixes). Written, durable and
    signed, before anything is removed; the segment's signed records stay."""
    return {"type": "segment_disposed", "at": at, "device": device, "segment": segment,
            "objects": [{"path": o["path"], "sha256": bytes(o["sha256"])} for o in objects],
            "request": request, "requested_by": requested_by, "approved_by": approved_by,
            "approved_at": approved_at, "reason": reason, "class": class_,
            "expired_on": expired_on}


def disposal_text(info) -> str:
    """How verify, clip and the report name a disposed segment: ``info`` is a replayed
    disposal (host_tools.tlog.replay State.disposed) or a `segment_disposed` entry."""
    from ..i18n import _
    from ..records import printable
    at = info.get("approved_at") or info.get("at")
    return _("disposed with approval (request %(request)s by %(by)s, approved by "
             "%(approver)s at %(at)s; class %(klass)s, expired on %(expired)s)") % {
        "request": printable(info.get("request")), "by": printable(info.get("requested_by")),
        "approver": printable(info.get("approved_by")), "at": printable(at),
        "klass": printable(info.get("class")), "expired": printable(info.get("expired_on"))}
