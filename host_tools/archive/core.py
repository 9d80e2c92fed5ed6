"""The Archive: opening and creating one, its modes and its transactions. What it does is
in its parts (one role each): stationlog, devices, objects, views, chain, segments,
ledger, quarantine, dispose."""
from __future__ import annotations

import os

from .chain import ChainMixin
from .common import ArchiveError, NotAnArchive, utcnow
from .devices import DevicesMixin
from .dispose import DisposeMixin
from .durable import makedirs
from .ledger import LedgerMixin
from .objects import ObjectsMixin
from .quarantine import QuarantineMixin
from .schema import SCHEMA, SCHEMA_VERSION, connect_ro, connect_rw
from .segments import SegmentsMixin
from .stationlog import StationLogMixin
from .typed import shadow
from .views import ViewsMixin

__all__ = ["Archive"]


class Archive(StationLogMixin, DevicesMixin, ObjectsMixin, ViewsMixin, ChainMixin,
              SegmentsMixin, LedgerMixin, QuarantineMixin, DisposeMixin):
    """An open archive. ``Archive(dir)`` opens an existing one (NotAnArchive otherwise);
    ``Archive.create(dir)`` makes the database and folders (station.init makes the key).
    ``readonly=True`` opens it for reading only (on a read-only file system too)."""

    def __init__(self, root, *, _create=False, readonly=False, _adopting=False):
        self.root = os.path.abspath(os.fspath(root))
        self.db_path = os.path.join(self.root, "archive.sqlite")
        self.readonly = readonly
        self.unread_wal = False     # read-only, and the index has a WAL it could not read
        self.index_problems = []    # read-only: rows of archive.sqlite of the wrong type
        self._log = None
        self.db = None
        if not _create and not os.path.isfile(self.db_path):
            raise NotAnArchive("%s is not a sealcam archive (no archive.sqlite); make one with "
                               "`sealcam station init --archive %s`" % (self.root, root))
        self.objects = os.path.join(self.root, "objects")
        self.devices_dir = os.path.join(self.root, "devices")
        self.staging = os.path.join(self.root, "staging")
        if readonly:
            self.db = connect_ro(self.db_path)
            wal = self.db_path + "-wal"
            self.unread_wal = bool(getattr(self.db, "sealcam_immutable", False)
                                   and os.path.exists(wal) and os.path.getsize(wal) > 0)
            self.index_problems = shadow(self.db)   # rows of the wrong type: named, left out
        else:
            self.db = connect_rw(self.root, self.db_path,
                                 (self.objects, self.devices_dir, self.staging))
        if _create:
            self.db.executescript(SCHEMA)
            cur = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            with self.tx():
                if "archive_id" not in cur:
                    self.db.execute("INSERT INTO meta VALUES ('archive_id', ?)",
                                    (os.urandom(16).hex(),))
                    self.db.execute("INSERT INTO meta VALUES ('created', ?)", (utcnow(),))
                    self.db.execute("INSERT INTO meta VALUES ('schema', ?)",
                                    (str(SCHEMA_VERSION),))
                    self.db.execute("INSERT INTO meta VALUES ('log', 'signed')")
            for d in (self.objects, self.devices_dir, self.staging):
                makedirs(d)
        elif not readonly:
            self.db.executescript(SCHEMA)       # tables added since (CREATE IF NOT EXISTS)
        self.meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if int(self.meta.get("schema", "0")) != SCHEMA_VERSION:
            raise NotAnArchive("%s: archive schema %s is not supported (expected %d)"
                               % (self.root, self.meta.get("schema"), SCHEMA_VERSION))
        self.archive_id = self.meta["archive_id"]
        if not readonly and not _create and not _adopting:
            self._require_log()

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
