"""What every part of the archive shares: its errors, time stamps, the record types and
body fields it indexes, and the checks on names that come from a device."""
from __future__ import annotations

import datetime as _dt
import re

import cbor2

from ..records import CHECKPOINT, REC_START, RECEIPT, RECOVERY, SEGMENT, ZERO, H

__all__ = ["ArchiveError", "NotAnArchive", "DeviceLocked", "ArchiveUnwritable",
           "ArchiveTampered", "StationLogError", "StationLogMissing", "StationLogRefused",
           "utcnow", "valid_device_id", "safe_rel", "record_body",
           "record_columns", "H", "ZERO", "REC_START", "CHECKPOINT", "SEGMENT", "RECOVERY",
           "RECEIPT"]


class ArchiveError(Exception):
    pass


class NotAnArchive(ArchiveError):
    pass


class DeviceLocked(ArchiveError):
    pass


class ArchiveUnwritable(NotAnArchive):
    """The archive cannot be written (read-only file system, permissions): exit 3."""


class ArchiveTampered(ArchiveUnwritable):
    """Something an editor planted stops the station from writing (a symbolic link in a
    device view, an edited segments row): one line naming it, exit 3."""


class StationLogError(ArchiveError):
    """The station log cannot be appended to (it no longer matches its signed checkpoint,
    or it cannot be written): nothing more is stored until `sealcam verify` is run."""


class StationLogRefused(StationLogError, NotAnArchive):
    """Found when the archive is opened for writing: its station log holds entries the
    station cannot account for, or no longer matches its checkpoint (exit 3)."""


class StationLogMissing(StationLogRefused):
    """The archive holds history but no station log: it is not written until a person runs
    `sealcam station adopt` (exit 3)."""


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


_DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def valid_device_id(device_id) -> bool:
    """A device id must be usable as a folder name."""
    return isinstance(device_id, str) and _DEVICE_RE.fullmatch(device_id) is not None


def safe_rel(rel) -> bool:
    """A relative path inside a store (media paths come from signed but untrusted records)."""
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or "\\" in rel \
            or ":" in rel or "\x00" in rel:
        return False
    parts = rel.split("/")
    return all(p not in ("", ".", "..") for p in parts)


def record_body(data: bytes):
    """The body map of a record (tagged COSE_Sign1 bytes), or None if it is not one."""
    try:
        item = cbor2.loads(data)
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 18):
            return None
        body = cbor2.loads(item.value[2])
        return body if isinstance(body, dict) else None
    except Exception:
        return None


def record_columns(seq: int, rtype, body: dict):
    """(rtc, segment) of a records row: the body's rtc (key 4) and segment (key 10; a
    REC_START is its own segment), each None unless an integer."""
    rtc = body.get(4) if isinstance(body.get(4), int) else None
    seg = seq if rtype == REC_START else body.get(10)
    return rtc, (seg if isinstance(seg, int) else None)
