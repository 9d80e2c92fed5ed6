"""The station archive (SPEC §9).

    DIR/station.key             the station's Ed25519 seed (32 raw bytes, mode 0600)
    DIR/station.pub             its public key, 64 hex digits + newline
    DIR/archive.sqlite          index: meta, devices, records, segments, receipts, offloads
    DIR/objects/ab/cdef…        content-addressed files (name = SHA-256 of the content), 0444
    DIR/devices/ID/             each device's store in the layout of SPEC §5.1; every file
                                is a hard link to an object: rec/NNNNNNNN.log, head.cbor,
                                m/S.mjpg, m/S.idx
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
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import os
import re
import sqlite3
import stat

import cbor2

__all__ = ["Archive", "ArchiveError", "NotAnArchive", "ArchiveUnwritable", "StationLogError",
           "DeviceLocked",
           "SCHEMA_VERSION",
           "valid_device_id", "safe_rel", "record_body", "utcnow"]

SCHEMA_VERSION = 1
ZERO = bytes(32)
LOG_MAX = 256 * 1024          # a view log file rolls over past this size (as on the card)
REC_START, CHECKPOINT, SEGMENT, RECOVERY, RECEIPT = 2, 3, 4, 7, 8

_SCHEMA = """
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
    media TEXT NOT NULL,              -- path relative to the store root (m/S.mjpg)
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


class ArchiveError(Exception):
    pass


class NotAnArchive(ArchiveError):
    pass


class DeviceLocked(ArchiveError):
    pass


class ArchiveUnwritable(NotAnArchive):
    """The archive cannot be written (read-only file system, permissions): exit 3."""


class StationLogError(ArchiveError):
    """The station log cannot be appended to (it no longer matches its signed checkpoint,
    or it cannot be written): nothing more is stored until `sealcam verify` is run."""


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def valid_device_id(device_id) -> bool:
    """A device id must be usable as a folder name."""
    return isinstance(device_id, str) and bool(_DEVICE_RE.match(device_id))


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


def _H(b) -> bytes:
    return hashlib.sha256(b).digest()


def _unwritable(root, db_path, dirs):
    """Why the archive cannot be written (a read-only file system, no permission), or
    None. Checked before SQLite is asked to write, so that a busy archive is not taken for
    a read-only one."""
    try:
        if os.statvfs(root).f_flag & getattr(os, "ST_RDONLY", 1):
            return "read-only file system"
    except OSError as e:
        return e.strerror or str(e)
    for p in (root, db_path) + tuple(d for d in dirs if os.path.isdir(d)):
        if os.path.exists(p) and not os.access(p, os.W_OK):
            return "no write permission on %s" % p
    return None


class _ImmutableDb:
    """A connection opened with immutable=1 (it cannot see a write-ahead log)."""
    _sealcam_immutable = True

    def __init__(self, db):
        self._db = db

    def __getattr__(self, name):
        return getattr(self._db, name)

def _connect_ro(path):
    """SQLite opened for reading only: mode=ro, or immutable=1 where even the WAL index
    cannot be made (a read-only file system or folder)."""
    from urllib.parse import quote
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


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(path):
    """makedirs, fsyncing each parent whose entry list changed."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        _fsync_dir(os.path.dirname(d))


class Archive:
    """An open archive. ``Archive(dir)`` opens an existing one (NotAnArchive otherwise);
    ``Archive.create(dir)`` makes the database and folders (station.init makes the key)."""

    def __init__(self, root, *, _create=False, readonly=False):
        self.root = os.path.abspath(os.fspath(root))
        self.db_path = os.path.join(self.root, "archive.sqlite")
        self.readonly = readonly
        self.unread_wal = False     # read-only, and the index has a WAL it could not read
        self._log = None
        self.db = None
        if not _create and not os.path.isfile(self.db_path):
            raise NotAnArchive("%s is not a sealcam archive (no archive.sqlite); make one with "
                               "`sealcam station init --archive %s`" % (self.root, root))
        self.objects = os.path.join(self.root, "objects")
        self.devices_dir = os.path.join(self.root, "devices")
        self.staging = os.path.join(self.root, "staging")
        if readonly:
            self.db = _connect_ro(self.db_path)
            wal = self.db_path + "-wal"
            self.unread_wal = bool(getattr(self.db, "_sealcam_immutable", False)
                                   and os.path.exists(wal) and os.path.getsize(wal) > 0)
        else:
            why = _unwritable(self.root, self.db_path,
                              (self.objects, self.devices_dir, self.staging))
            try:
                if why is None:
                    self.db = sqlite3.connect(self.db_path, timeout=30.0,
                                              isolation_level=None)
                    self.db.row_factory = sqlite3.Row
                    self.db.execute("PRAGMA journal_mode=WAL")
                    self.db.execute("PRAGMA synchronous=FULL")
                    self.db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.OperationalError as e:
                if self.db is not None:
                    self.db.close()
                    self.db = None
                m = str(e).lower()
                if not any(k in m for k in ("readonly", "read-only", "unable to open",
                                            "attempt to write", "disk i/o")):
                    raise ArchiveError("cannot open the archive index %s: %s"
                                       % (self.db_path, e)) from None
                why = str(e)
            if why is not None:
                raise ArchiveUnwritable(
                    "the archive %s cannot be written (%s): check that its file system is "
                    "mounted read-write and that this user owns it; `sealcam verify` and "
                    "`sealcam report` can still read it" % (self.root, why))
        if _create:
            self.db.executescript(_SCHEMA)
            cur = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            with self.tx():
                if "archive_id" not in cur:
                    self.db.execute("INSERT INTO meta VALUES ('archive_id', ?)",
                                    (os.urandom(16).hex(),))
                    self.db.execute("INSERT INTO meta VALUES ('created', ?)", (utcnow(),))
                    self.db.execute("INSERT INTO meta VALUES ('schema', ?)",
                                    (str(SCHEMA_VERSION),))
            for d in (self.objects, self.devices_dir, self.staging):
                _makedirs(d)
        elif not readonly:
            self.db.executescript(_SCHEMA)      # tables added since (CREATE IF NOT EXISTS)
        self.meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if int(self.meta.get("schema", "0")) != SCHEMA_VERSION:
            raise NotAnArchive("%s: archive schema %s is not supported (expected %d)"
                               % (self.root, self.meta.get("schema"), SCHEMA_VERSION))
        self.archive_id = self.meta["archive_id"]
        if not readonly and not _create:
            self._adopt_if_needed()

    @classmethod
    def create(cls, root):
        os.makedirs(root, exist_ok=True)
        return cls(root, _create=True)

    def close(self):
        self._log = None
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transactions ------------------------------------------------------------------
    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, et, ev, tb):
            self.db.execute("COMMIT" if et is None else "ROLLBACK")

    def tx(self):
        if self.readonly:
            raise ArchiveError("the archive %s is open read-only" % self.root)
        return Archive._Tx(self.db)

    # -- station log (SPEC §11) ----------------------------------------------------------
    def log(self):
        """The station log (read-only without the station key or when opened read-only)."""
        if self._log is None:
            from .tlog.log import Log, origin_for
            signer = None
            if not self.readonly and os.path.exists(os.path.join(self.root, "station.key")):
                signer = self.station_key()
            self._log = Log(self.root, origin_for(self.archive_id), signer=signer,
                            readonly=self.readonly)
        return self._log

    def _adopt_if_needed(self):
        """An archive made before the station log: state what the index holds in the log
        (once, with the station key), so that from now on it is signed (SPEC §11.5)."""
        p = os.path.join(self.root, "log", "entries")
        if os.path.exists(p) and os.path.getsize(p) > 0:
            return
        if not os.path.exists(os.path.join(self.root, "station.key")):
            return
        if self.db.execute("SELECT COUNT(*) FROM devices").fetchone()[0] == 0:
            return
        from .tlog.adopt import adopt_entries
        with self.tx():
            entries = adopt_entries(self, utcnow())
            lg = self.log()
            if lg.size == 0:
                try:
                    lg.append(entries)
                except Exception as e:
                    raise StationLogError("the station log of %s cannot be started (%s)"
                                          % (self.root, e)) from None

    def _log_event(self, entry):
        """Append an event to the station log (durable and signed before returning)."""
        from .tlog.log import LogError
        try:
            self.log().append([entry])
        except LogError as e:
            raise StationLogError("station log of %s: %s" % (self.root, e)) from None
        except OSError as e:
            raise StationLogError("the station log of %s cannot be written (%s)"
                                  % (self.root, e.strerror or e)) from None

    # -- station key -------------------------------------------------------------------
    def station_key(self):
        from . import station
        return station.load_station_key(self.root)

    # -- devices -----------------------------------------------------------------------
    def device(self, device_id):
        row = self.db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        return dict(row) if row else None

    def devices(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM devices ORDER BY id")]

    def register(self, device_id, pubkey: bytes):
        """Register a device with its public key. Returns (row, created). Raises
        ArchiveError if it is registered with another key or the id is not usable."""
        from . import keys
        if not valid_device_id(device_id):
            raise ArchiveError("not a usable device id: %r (letters, digits, '.', '_', '-'; "
                               "at most 64)" % (device_id,))
        pubkey = bytes(pubkey)
        if len(pubkey) != 32:
            raise ArchiveError("a device key is 32 bytes, got %d" % len(pubkey))
        fp = keys.fingerprint(pubkey)
        with self.tx():
            row = self.device(device_id)
            if row is not None:
                if row["pubkey"] != pubkey:
                    raise ArchiveError(
                        "device %s is already registered with another key (fingerprint %s, "
                        "not %s)" % (device_id, row["fingerprint"], fp))
                return row, False
            now = utcnow()
            self.db.execute("INSERT INTO devices (id, pubkey, fingerprint, registered_at) "
                            "VALUES (?, ?, ?, ?)", (device_id, pubkey, fp, now))
            self._log_event({"type": "register", "at": now, "device": device_id,
                             "key": pubkey})
        _makedirs(self.view_dir(device_id))
        return self.device(device_id), True

    def view_dir(self, device_id):
        return os.path.join(self.devices_dir, device_id)

    def staging_dir(self, device_id):
        return os.path.join(self.staging, device_id)

    def lock_device(self, device_id):
        """An exclusive lock on the device's part of the archive (one offload at a time)."""
        d = self.staging_dir(device_id)
        _makedirs(d)
        fd = os.open(os.path.join(d, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeviceLocked("device %s is being offloaded by another process" % device_id)
        return fd

    @staticmethod
    def unlock(fd):
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- objects -----------------------------------------------------------------------
    def object_path(self, hexdigest):
        return os.path.join(self.objects, hexdigest[:2], hexdigest[2:])

    def _install(self, tmp, hexdigest):
        """Move the (fsynced) temp file ``tmp`` to its object path, read-only."""
        dst = self.object_path(hexdigest)
        d = os.path.dirname(dst)
        if not os.path.isdir(d):
            _makedirs(d)
        if os.path.exists(dst):
            os.unlink(tmp)              # the same content is there already
            return dst
        os.chmod(tmp, 0o444)
        os.replace(tmp, dst)
        _fsync_dir(d)
        return dst

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` as an object; return its SHA-256 (hex)."""
        h = hashlib.sha256(data).hexdigest()
        if os.path.exists(self.object_path(h)):
            return h
        tmp = os.path.join(self.objects, ".tmp-%d-%s" % (os.getpid(), h[:16]))
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._install(tmp, h)
        return h

    def put_file(self, path, *, move=False, limit=None) -> str:
        """Store a file's content (its first ``limit`` bytes) as an object. ``move``: the
        file itself becomes the object (renamed; it must be on the archive's filesystem)."""
        hs = hashlib.sha256()
        left = limit
        with open(path, "rb") as f:
            while left is None or left > 0:
                b = f.read(1 << 20 if left is None else min(1 << 20, left))
                if not b:
                    break
                hs.update(b)
                if left is not None:
                    left -= len(b)
        h = hs.hexdigest()
        if os.path.exists(self.object_path(h)):
            if move:
                os.unlink(path)
            return h
        tmp = os.path.join(self.objects, ".tmp-%d-%s" % (os.getpid(), h[:16]))
        if move and limit is None:
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(path, tmp)
        else:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                left = limit
                while left is None or left > 0:
                    b = src.read(1 << 20 if left is None else min(1 << 20, left))
                    if not b:
                        break
                    dst.write(b)
                    if left is not None:
                        left -= len(b)
                dst.flush()
                os.fsync(dst.fileno())
            if move:
                os.unlink(path)
        self._install(tmp, h)
        return h

    def link(self, device_id, rel, hexdigest):
        """Make devices/ID/rel a hard link to the object (replacing what was there)."""
        if not safe_rel(rel):
            raise ArchiveError("unsafe path in device %s: %r" % (device_id, rel))
        obj = self.object_path(hexdigest)
        dst = os.path.join(self.view_dir(device_id), *rel.split("/"))
        d = os.path.dirname(dst)
        if not os.path.isdir(d):
            _makedirs(d)
        if os.path.exists(dst) and os.path.samefile(dst, obj):
            return dst
        tmp = dst + ".tmp-link"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.link(obj, tmp)
        self._log_event({"type": "object", "at": utcnow(), "device": device_id, "path": rel,
                         "sha256": bytes.fromhex(hexdigest)})
        os.replace(tmp, dst)
        _fsync_dir(d)
        return dst

    # -- records -------------------------------------------------------------------------
    def max_seq(self, device_id):
        """Highest seq held (None if none); records are held without gaps from 0."""
        r = self.db.execute("SELECT MAX(seq) FROM records WHERE device = ?",
                            (device_id,)).fetchone()[0]
        return r

    def record(self, device_id, seq):
        row = self.db.execute("SELECT * FROM records WHERE device = ? AND seq = ?",
                              (device_id, seq)).fetchone()
        return dict(row) if row else None

    def record_count(self, device_id):
        return self.db.execute("SELECT COUNT(*) FROM records WHERE device = ?",
                               (device_id,)).fetchone()[0]

    def add_records(self, device_id, recs, offload_id=None):
        """Store records durably: ``recs`` is a list of (seq, data, body) in seq order,
        continuing the held chain. Also tracks segments (REC_START, CHECKPOINT, SEGMENT,
        RECOVERY). Returns the media paths of segments started here."""
        now = utcnow()
        logged = []
        with self.tx():
            for seq, data, body in recs:
                rtype = body.get(0)
                logged.append([seq, _H(data), rtype if isinstance(rtype, int) else -1])
                seg = seq if rtype == REC_START else body.get(10)
                if not isinstance(seg, int):
                    seg = None
                rtc = body.get(4) if isinstance(body.get(4), int) else None
                self.db.execute(
                    "INSERT INTO records (device, seq, type, hash, size, rtc, segment, "
                    "stored_at, data, offload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (device_id, seq, rtype if isinstance(rtype, int) else -1, _H(data),
                     len(data), rtc, seg, now, data, offload_id))
                self._track_segment(device_id, seq, rtype, body, now)
            if logged:
                self._log_event({"type": "records", "at": now, "device": device_id,
                                 "offload": offload_id, "records": logged})

    def _track_segment(self, device_id, seq, rtype, body, now):
        db = self.db
        if rtype == REC_START:
            media, chunk = body.get(11), body.get(12)
            if not (safe_rel(media) and isinstance(chunk, int) and chunk > 0):
                return        # the verifier reports it; nothing to transfer
            db.execute("INSERT OR IGNORE INTO segments (device, segment, media, chunk, root, "
                       "staged_root, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (device_id, seq, media, chunk, ZERO, ZERO, now))
            return
        if rtype not in (CHECKPOINT, SEGMENT, RECOVERY):
            return
        seg, L, n, root = body.get(10), body.get(13), body.get(14), body.get(15)
        if not (isinstance(seg, int) and isinstance(L, int) and isinstance(n, int)
                and isinstance(root, bytes) and len(root) == 32):
            return
        row = db.execute("SELECT chunks, closed_by FROM segments WHERE device = ? AND "
                         "segment = ?", (device_id, seg)).fetchone()
        if row is None or row["closed_by"] is not None:
            return
        if rtype == CHECKPOINT:
            if n >= row["chunks"]:
                db.execute("UPDATE segments SET length = ?, chunks = ?, root = ?, "
                           "updated_at = ? WHERE device = ? AND segment = ?",
                           (L, n, root, now, device_id, seg))
        else:
            db.execute("UPDATE segments SET length = ?, chunks = ?, root = ?, closed_by = ?, "
                       "updated_at = ? WHERE device = ? AND segment = ?",
                       (L, n, root, seq, now, device_id, seg))

    def records_after(self, device_id, seq):
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM records WHERE device = ? AND seq > ? ORDER BY seq",
            (device_id, -1 if seq is None else seq))]

    # -- segments ------------------------------------------------------------------------
    def segments(self, device_id, state=None):
        q = "SELECT * FROM segments WHERE device = ?"
        a = [device_id]
        if state:
            q += " AND state = ?"
            a.append(state)
        return [dict(r) for r in self.db.execute(q + " ORDER BY segment", a)]

    def segment(self, device_id, seg):
        row = self.db.execute("SELECT * FROM segments WHERE device = ? AND segment = ?",
                              (device_id, seg)).fetchone()
        return dict(row) if row else None

    def staging_path(self, device_id, seg_row):
        return os.path.join(self.staging_dir(device_id),
                            os.path.basename(seg_row["media"]) + ".part")

    def open_staging(self, device_id, seg_row):
        """The staging file of an unfinished segment, opened for appending at the verified
        length persisted in the database (bytes written after it are dropped)."""
        _makedirs(self.staging_dir(device_id))
        p = self.staging_path(device_id, seg_row)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        f = os.fdopen(fd, "r+b")
        size = os.fstat(fd).st_size
        want = seg_row["staged_length"]
        if size < want:
            # the verified prefix is gone (staging was tampered with or lost): start over
            f.truncate(0)
            self.set_staged(device_id, seg_row["segment"], 0, 0, ZERO)
            seg_row.update(staged_length=0, staged_chunks=0, staged_root=ZERO)
        elif size > want:
            f.truncate(want)
        f.seek(0, 2)
        return f

    def set_staged(self, device_id, seg, length, chunks, root, error=None):
        with self.tx():
            self.db.execute("UPDATE segments SET staged_length = ?, staged_chunks = ?, "
                            "staged_root = ?, error = ?, updated_at = ? WHERE device = ? AND "
                            "segment = ?", (length, chunks, root, error, utcnow(), device_id,
                                            seg))

    def set_segment_error(self, device_id, seg, error):
        with self.tx():
            self.db.execute("UPDATE segments SET error = ?, updated_at = ? WHERE device = ? "
                            "AND segment = ?", (error, utcnow(), device_id, seg))

    def finish_segment(self, device_id, seg_row, idx_bytes):
        """A closed segment whose every chunk is staged and verified: move its media into
        objects/, store the index, link both into the view, mark it complete."""
        p = self.staging_path(device_id, seg_row)
        if not os.path.exists(p) and seg_row["length"] == 0:
            open(p, "wb").close()
        if os.path.getsize(p) != seg_row["length"]:
            raise ArchiveError("segment %d: staged %d bytes, signed %d" % (
                seg_row["segment"], os.path.getsize(p), seg_row["length"]))
        h = self.put_file(p, move=True)
        ih = self.put_bytes(idx_bytes)
        media = seg_row["media"]
        self.link(device_id, media, h)
        self.link(device_id, os.path.splitext(media)[0] + ".idx", ih)
        with self.tx():
            self.db.execute("UPDATE segments SET state = 'complete', object = ?, idx_object = ?, "
                            "error = NULL, updated_at = ? WHERE device = ? AND segment = ?",
                            (h, ih, utcnow(), device_id, seg_row["segment"]))
        _fsync_dir(self.staging_dir(device_id))
        return h

    def publish_partial(self, device_id, seg_row, idx_bytes):
        """An open segment: link the verified prefix (copied into an object) into the view,
        so that the view is a consistent store; the staging file stays for the rest."""
        if seg_row["staged_length"] == 0 and seg_row["length"] == 0:
            return None
        p = self.staging_path(device_id, seg_row)
        h = self.put_file(p, limit=seg_row["staged_length"])
        ih = self.put_bytes(idx_bytes[:32 * seg_row["staged_chunks"]])
        media = seg_row["media"]
        self.link(device_id, media, h)
        self.link(device_id, os.path.splitext(media)[0] + ".idx", ih)
        with self.tx():
            self.db.execute("UPDATE segments SET object = ?, idx_object = ?, updated_at = ? "
                            "WHERE device = ? AND segment = ?",
                            (h, ih, utcnow(), device_id, seg_row["segment"]))
        return h

    # -- the view ----------------------------------------------------------------------
    def commit_view(self, device_id, head: bytes | None):
        """Write the records not yet in the view as log files (in seq order, each file named
        by its first seq, rolled over past 256 KiB), then head.cbor from ``head`` (a record
        the device signed as its last) if it is held and not older than the view's head.
        Returns the number of changes: records written, plus one if the head moved."""
        rows = self.db.execute("SELECT seq, data FROM records WHERE device = ? AND log IS NULL "
                               "ORDER BY seq", (device_id,)).fetchall()
        n = 0
        i = 0
        while i < len(rows):
            first = rows[i]["seq"]
            name = "rec/%08d.log" % first
            k = 0
            while os.path.lexists(os.path.join(self.view_dir(device_id), *name.split("/"))):
                k += 1
                name = "rec/%08d_%d.log" % (first, k)
            parts, offsets, size = [], [], 0
            while i < len(rows) and (size == 0 or size + len(rows[i]["data"]) <= LOG_MAX):
                offsets.append((rows[i]["seq"], size))
                parts.append(rows[i]["data"])
                size += len(rows[i]["data"])
                i += 1
            h = self.put_bytes(b"".join(parts))
            self.link(device_id, name, h)
            with self.tx():
                self.db.executemany("UPDATE records SET log = ?, offset = ? WHERE device = ? "
                                    "AND seq = ?", [(name, off, device_id, s)
                                                    for s, off in offsets])
            n += len(offsets)
        if head is not None and self.set_head(device_id, head):
            n += 1
        return n

    def view_head_seq(self, device_id):
        p = os.path.join(self.view_dir(device_id), "head.cbor")
        try:
            with open(p, "rb") as f:
                h = cbor2.loads(f.read())
            return record_body(h[3]).get(1)
        except Exception:
            return None

    def set_head(self, device_id, head: bytes):
        """head.cbor of the view := {1: log, 2: offset past it, 3: head}; only if the record
        is held byte for byte and the head does not go back. Returns True if it changed."""
        body = record_body(head)
        if body is None or not isinstance(body.get(1), int):
            return False
        seq = body[1]
        rec = self.record(device_id, seq)
        if rec is None or rec["data"] != head or rec["log"] is None:
            return False
        cur = self.view_head_seq(device_id)
        if cur is not None and cur > seq:
            return False
        data = cbor2.dumps({1: rec["log"], 2: rec["offset"] + rec["size"], 3: head},
                           canonical=True)
        try:
            with open(os.path.join(self.view_dir(device_id), "head.cbor"), "rb") as f:
                if f.read() == data:
                    return False            # already this head
        except FileNotFoundError:
            pass
        self.link(device_id, "head.cbor", self.put_bytes(data))
        with self.tx():
            dev = self.device(device_id)
            if dev["last_head_seq"] is None or dev["last_head_seq"] <= seq:
                self.db.execute("UPDATE devices SET last_head_seq = ?, last_head_hash = ?, "
                                "last_head = ? WHERE id = ?", (seq, _H(head), head, device_id))
                self._log_event({"type": "head", "at": utcnow(), "device": device_id,
                                 "seq": seq, "hash": _H(head)})
        return True

    # -- receipts ------------------------------------------------------------------------
    def last_receipt(self, device_id, status=None):
        q = "SELECT * FROM receipts WHERE device = ?"
        a = [device_id]
        if status:
            q += " AND status = ?"
            a.append(status)
        row = self.db.execute(q + " ORDER BY number DESC LIMIT 1", a).fetchone()
        return dict(row) if row else None

    def next_receipt_number(self, device_id):
        """Greater than every receipt number this archive used for the device and every
        number in a RECEIPT record of its chain (receipts of other stations)."""
        n = self.db.execute("SELECT MAX(number) FROM receipts WHERE device = ?",
                            (device_id,)).fetchone()[0] or 0
        for (data,) in self.db.execute("SELECT data FROM records WHERE device = ? AND "
                                       "type = ?", (device_id, RECEIPT)):
            b = record_body(data) or {}
            if isinstance(b.get(27), int):
                n = max(n, b[27])
        return n + 1

    def add_receipt(self, device_id, number, covered, covered_hash, receipt):
        now = utcnow()
        with self.tx():
            self.db.execute("INSERT INTO receipts (device, number, covered, covered_hash, "
                            "sent_at, status, receipt, receipt_hash) VALUES (?, ?, ?, ?, ?, "
                            "'sent', ?, ?)", (device_id, number, covered, covered_hash,
                                              now, receipt, _H(receipt)))
            self._log_event({"type": "receipt", "at": now, "device": device_id,
                             "number": number, "covered": covered,
                             "covered_hash": bytes(covered_hash), "receipt": bytes(receipt)})

    def update_receipt(self, device_id, number, status, record_seq=None, message=None):
        with self.tx():
            self.db.execute("UPDATE receipts SET status = ?, record_seq = ?, message = ? "
                            "WHERE device = ? AND number = ?",
                            (status, record_seq, message, device_id, number))
            self._log_event({"type": "receipt_status", "at": utcnow(), "device": device_id,
                             "number": number, "status": status, "record_seq": record_seq,
                             "message": message})

    def receipts(self, device_id):
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM receipts WHERE device = ? ORDER BY number", (device_id,))]

    # -- offloads ------------------------------------------------------------------------
    def start_offload(self, device_id, port):
        with self.tx():
            cur = self.db.execute("INSERT INTO offloads (device, port, started, status) "
                                  "VALUES (?, ?, ?, 'running')", (device_id, port, utcnow()))
            return cur.lastrowid

    def update_offload(self, offload_id, **fields):
        if not fields:
            return
        cols = ", ".join("%s = ?" % k for k in fields)
        with self.tx():
            self.db.execute("UPDATE offloads SET %s WHERE id = ?" % cols,
                            list(fields.values()) + [offload_id])

    OFFLOAD_LOGGED = ("device", "port", "started", "finished", "records", "bytes", "status",
                      "verdict", "error", "head_went_back", "head_seq", "receipt_number")

    def finish_offload(self, offload_id, **fields):
        fields.setdefault("finished", utcnow())
        self.update_offload(offload_id, **fields)
        row = self.db.execute("SELECT * FROM offloads WHERE id = ?", (offload_id,)).fetchone()
        if row is not None:
            e = {"type": "offload", "at": fields["finished"], "id": offload_id}
            e.update((k, row[k]) for k in self.OFFLOAD_LOGGED)
            self._log_event(e)

    def offloads(self, device_id=None):
        if device_id is None:
            return [dict(r) for r in self.db.execute("SELECT * FROM offloads ORDER BY id")]
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM offloads WHERE device = ? ORDER BY id", (device_id,))]

    # -- quarantine ----------------------------------------------------------------------
    QUARANTINE_MAX = 1 << 30

    def quarantine(self, device_id: str, reason: str, records: list, info: dict | None = None
                   ) -> str:
        """Keep what a session that failed verification brought, apart from every device's
        history: quarantine/<id>/records.log (the records byte for byte, concatenated; each
        is one CBOR item) and info.json; a row in the quarantine table and an event in the
        station log. Nothing of it reaches records, segments, a view or a receipt. Returns
        the quarantine id."""
        import json
        recs = [bytes(r) for r in records]
        total = sum(len(r) for r in recs)
        if total > self.QUARANTINE_MAX:
            raise ArchiveError("quarantine of %d bytes refused (at most %d)"
                               % (total, self.QUARANTINE_MAX))
        now = utcnow()
        qid = "%s-%s" % (now[:19].replace("-", "").replace(":", ""), os.urandom(4).hex())
        qdir = os.path.join(self.root, "quarantine", qid)
        _makedirs(qdir)
        blob = b"".join(recs)
        meta = {"id": qid, "device": str(device_id), "reason": str(reason), "created": now,
                "records": len(recs), "sha256": hashlib.sha256(blob).hexdigest(),
                "info": info or {}}
        for name, data in (("records.log", blob),
                           ("info.json", json.dumps(meta, indent=2, ensure_ascii=True,
                                                    default=repr).encode() + b"\n")):
            with open(os.path.join(qdir, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(os.path.join(qdir, name), 0o444)
        _fsync_dir(qdir)
        with self.tx():
            self.db.execute("INSERT INTO quarantine (id, device, reason, created, records, "
                            "sha256, info) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (qid, str(device_id), str(reason), now, len(recs),
                             hashlib.sha256(blob).digest(),
                             json.dumps(info or {}, ensure_ascii=True, default=repr)))
            self._log_event({"type": "quarantine", "at": now, "id": qid,
                             "device": str(device_id), "reason": str(reason),
                             "records": len(recs), "sha256": hashlib.sha256(blob).digest()})
        return qid

    def quarantines(self):
        return [dict(r) for r in self.db.execute("SELECT * FROM quarantine ORDER BY created")]

    # -- checks ------------------------------------------------------------------------
    def check_objects(self):
        """Objects whose content does not hash to their name, or that are writable."""
        bad = []
        for dirpath, _, files in os.walk(self.objects):
            for fn in files:
                if fn.startswith(".tmp-"):
                    continue
                p = os.path.join(dirpath, fn)
                name = os.path.basename(dirpath) + fn
                hs = hashlib.sha256()
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        hs.update(b)
                if hs.hexdigest() != name:
                    bad.append((p, "content does not match its name"))
                elif os.stat(p).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                    bad.append((p, "writable"))
        return bad
