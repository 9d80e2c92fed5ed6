"""The archive's index: its SQLite schema and how it is opened (SPEC §9).

Written by the station with synchronous=FULL and a write-ahead log; read by `verify` and
`report` with mode=ro, or immutable=1 where even the WAL index cannot be made (a
read-only file system or folder). A read-only archive is named as such before SQLite is
asked to write, so that a busy archive is not taken for a read-only one.
"""
from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

from .common import ArchiveError, ArchiveUnwritable, NotAnArchive

__all__ = ["SCHEMA_VERSION", "SCHEMA", "STRICT", "connect_ro", "connect_rw"]

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    pubkey BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_head_seq INTEGER,            -- seq of the last signed head seen (never goes back)
    last_head_hash BLOB,              -- H(that head record)
    last_head BLOB);                  -- the head record's bytes
CREATE TABLE IF NOT EXISTS records (
    device TEXT NOT NULL REFERENCES devices(id),
    seq INTEGER NOT NULL,
    type INTEGER NOT NULL,
    hash BLOB NOT NULL,               -- H(record)
    size INTEGER NOT NULL,
    rtc INTEGER,
    segment INTEGER,                  -- key 10, or its own seq for REC_START
    stored_at TEXT NOT NULL,
    data BLOB NOT NULL,               -- the record, byte for byte as the device sent it
    log TEXT,                         -- view log file holding it (NULL: not yet in the view)
    offset INTEGER,
    offload INTEGER,
    PRIMARY KEY (device, seq));
CREATE TABLE IF NOT EXISTS segments (
    device TEXT NOT NULL REFERENCES devices(id),
    segment INTEGER NOT NULL,         -- seq of its REC_START
    media TEXT NOT NULL,              -- path relative to the store root (m/S.mkv)
    chunk INTEGER NOT NULL,           -- chunk size
    length INTEGER NOT NULL DEFAULT 0,   -- bytes signed so far (closing record or checkpoint)
    chunks INTEGER NOT NULL DEFAULT 0,
    root BLOB NOT NULL,               -- chunk chain root signed for `chunks`
    closed_by INTEGER,                -- seq of its SEGMENT / RECOVERY record
    staged_length INTEGER NOT NULL DEFAULT 0,  -- verified bytes held (staging or object)
    staged_chunks INTEGER NOT NULL DEFAULT 0,
    staged_root BLOB NOT NULL,        -- chain root over the staged chunks
    state TEXT NOT NULL DEFAULT 'partial' CHECK (state IN ('partial', 'complete')),
    object TEXT,                      -- SHA-256 (hex) of the media object (complete, or the
                                      -- signed prefix of an open segment)
    idx_object TEXT,
    error TEXT,                       -- why the last transfer of it failed
    updated_at TEXT,
    PRIMARY KEY (device, segment));
CREATE TABLE IF NOT EXISTS receipts (
    device TEXT NOT NULL REFERENCES devices(id),
    number INTEGER NOT NULL,
    covered INTEGER NOT NULL,
    covered_hash BLOB NOT NULL,
    sent_at TEXT NOT NULL,
    record_seq INTEGER,               -- seq of the device's RECEIPT record
    status TEXT NOT NULL,             -- sent | accepted | refused
    receipt BLOB NOT NULL,            -- the COSE_Sign1 bytes
    receipt_hash BLOB NOT NULL,
    message TEXT,
    PRIMARY KEY (device, number));
CREATE TABLE IF NOT EXISTS offloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT,
    port TEXT,
    started TEXT NOT NULL,
    finished TEXT,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,             -- running | ok | not_ok | link_broken | auth_failed |
                                      -- unknown_device | error
    verdict TEXT,
    error TEXT,
    head_went_back INTEGER NOT NULL DEFAULT 0,
    head_seq INTEGER,
    receipt_number INTEGER);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,              -- quarantine/<id>/ holds what the session brought
    device TEXT NOT NULL,             -- the id the peer claimed (not necessarily registered)
    reason TEXT NOT NULL,
    created TEXT NOT NULL,
    records INTEGER NOT NULL,
    sha256 BLOB NOT NULL,             -- H(records.log)
    info TEXT);                       -- JSON
"""

# New archives' tables are STRICT where SQLite has it (3.37+): a value of the wrong type
# is refused when written. Older archives keep their tables; readers check the types
# (host_tools.archive.typed) either way.
STRICT = sqlite3.sqlite_version_info >= (3, 37, 0)
SCHEMA = _TABLES.replace(");", ") STRICT;") if STRICT else _TABLES


def _unwritable(root, db_path, dirs):
    """Why the archive cannot be written (a read-only file system, no permission), or
    None."""
    try:
        if os.statvfs(root).f_flag & getattr(os, "ST_RDONLY", 1):
            return "read-only file system"
    except OSError as e:
        return e.strerror or str(e)
    for p in (root, db_path) + tuple(d for d in dirs if os.path.isdir(d)):
        if os.path.exists(p) and not os.access(p, os.W_OK):
            return "no write permission on %s" % p
    return None


def connect_rw(root, db_path, dirs):
    """The index opened for writing (WAL, synchronous=FULL, foreign keys);
    ArchiveUnwritable if ``root``, ``db_path`` or one of ``dirs`` cannot be written."""
    why = _unwritable(root, db_path, dirs)
    db = None
    try:
        if why is None:
            db = sqlite3.connect(db_path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
    except sqlite3.OperationalError as e:
        if db is not None:
            db.close()
            db = None
        m = str(e).lower()
        if not any(k in m for k in ("readonly", "read-only", "unable to open",
                                    "attempt to write", "disk i/o")):
            raise ArchiveError("cannot open the archive index %s: %s" % (db_path, e)) \
                from None
        why = str(e)
    if why is not None:
        raise ArchiveUnwritable(
            "the archive %s cannot be written (%s): check that its file system is "
            "mounted read-write and that this user owns it; `sealcam verify` and "
            "`sealcam report` can still read it" % (root, why))
    return db


class _ImmutableDb:
    """A connection opened with immutable=1 (it cannot see a write-ahead log)."""
    sealcam_immutable = True

    def __init__(self, db):
        self._db = db

    def __getattr__(self, name):
        return getattr(self._db, name)


def connect_ro(path):
    """SQLite opened for reading only: mode=ro, or immutable=1 where even the WAL index
    cannot be made (a read-only file system or folder). Such a connection has a true
    ``sealcam_immutable`` attribute."""
    base = "file:%s?" % quote(path)
    for q in ("mode=ro", "mode=ro&immutable=1"):
        db = None
        try:
            db = sqlite3.connect(base + q, uri=True, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("SELECT COUNT(*) FROM meta").fetchone()
            if "immutable" in q:
                db = _ImmutableDb(db)
            return db
        except sqlite3.OperationalError as e:
            if db is not None:
                db.close()
            err = e
        except sqlite3.DatabaseError as e:
            if db is not None:
                db.close()
            raise NotAnArchive("%s is not a readable SQLite archive index (%s)" % (path, e)) \
                from None
    raise NotAnArchive("cannot read %s (%s)" % (path, err))
