"""The station archive (SPEC §9).

    DIR/station.key             the station's Ed25519 seed (32 raw bytes, mode 0600)
    DIR/station.pub             its public key, 64 hex digits + newline
    DIR/archive.sqlite          index: meta, devices, records, segments, receipts, offloads
    DIR/objects/ab/cdef…        content-addressed files (name = SHA-256 of the content), 0444
    DIR/devices/ID/             each device's store in the layout of SPEC §5.1; every file
                                is a hard link to an object: rec/NNNNNNNN.log, head.cbor,
                                m/S.mkv, m/S.idx
    DIR/staging/ID/             media being transferred: the verified prefix of each
                                unfinished segment (resumable), and the device's lock file

Records are kept in SQLite as they arrive (durable at once, so a broken link loses nothing
already pulled) and written to the device's store view as log files when an offload has
all their media: a view is always a consistent copy that `sealcam verify` can check like a
card. Media chunks are appended to staging only after their hash matched the chunk index
(whose chain root matched the signed root), with the verified length persisted; a
finished segment moves into objects/ and is linked into the view.

Every write that a receipt relies on is fsynced (files, their directories, the database
with synchronous=FULL) before the receipt is sent.

The archive is a package, one role per module:

    common      errors, time stamps, record types, checks on device ids and paths
    durable     fsynced files and folders
    schema      the SQLite schema; opening it for writing or read-only
    core        Archive: open / create, modes, transactions (made of the parts below)
    stationlog  the station log hooks: each change is a signed log event (SPEC §11)
    devices     registered devices, their folders and their offload lock
    objects     content-addressed objects
    views       device views: log files, head.cbor, links to objects
    chain       the records of each device's chain
    segments    media segments and their resumable staging
    ledger      receipts and offload rows
    quarantine  what a session that failed verification brought
"""
from __future__ import annotations

from .common import (CHECKPOINT, REC_START, RECEIPT, RECOVERY, SEGMENT, ZERO, ArchiveError,
                     ArchiveTampered,
                     ArchiveUnwritable, DeviceLocked, NotAnArchive, StationLogError,
                     StationLogMissing, StationLogRefused,
                     record_body, record_columns, safe_rel, utcnow, valid_device_id)
from .core import Archive
from .schema import SCHEMA, SCHEMA_VERSION, connect_ro
from .views import LOG_MAX

__all__ = ["Archive", "ArchiveError", "ArchiveTampered", "NotAnArchive", "ArchiveUnwritable",
           "StationLogError",
           "StationLogMissing", "StationLogRefused", "DeviceLocked",
           "SCHEMA_VERSION", "SCHEMA", "connect_ro",
           "valid_device_id", "safe_rel", "record_body", "record_columns", "utcnow",
           "ZERO", "LOG_MAX", "REC_START", "CHECKPOINT", "SEGMENT", "RECOVERY", "RECEIPT"]
