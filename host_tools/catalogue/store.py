"""The Catalogue: the clerk's view of an archive, kept in step with its station log.

    cat = Catalogue(archive_dir)                # url=None: [catalogue] url of station.toml,
                                                # else ARCHIVE/catalogue.sqlite
    user = users.authenticate(cat, "li.na", password="...")
    index = cat.act(user, tags.tag_event(...))  # checked, signed into the log, applied
    cat.sync()                                  # apply what others appended since
    cat.reindex()                               # rebuild every row from the log

`act` is the only way a clerk changes anything: under the catalogue lock it brings the
tables up to the log, checks the event against them (the module that owns the event type
says how), appends it to the station log (durable and signed by the station key before
anything relies on it), then applies it. An event read back from the log that its module
refuses is skipped and named in ``problems`` (verify reports it); a row is never the only
truth: each names the log entry that made it (column ``event``).

Each clerk module registers its event types with `handles`:

    @store.handles("tag", permission="tag")
    class _Tag:
        def check(cat, conn, event): ...     # raise CatalogueError (one line) to refuse
        def apply(cat, conn, index, event): ...
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib
import os

import sqlalchemy as sa

from . import db
from ..i18n import _
from .events import CLERK_TYPES, CatalogueEventError, bad_char

__all__ = ["Catalogue", "CatalogueError", "PermissionRefused", "handles", "HANDLERS",
           "recording_id", "MODULES"]

# the modules that own clerk event types (imported when a Catalogue opens)
MODULES = ("users", "tags", "numbers", "cases", "documents", "retention", "confidentiality",
           "access", "copies", "discs", "backups", "handover")
HANDLERS: dict = {}     # event type -> handler class (check, apply, permission)
_CUSTODY_TOUCH = ("records", "object", "head", "segment_disposed")   # refresh recordings


class CatalogueError(Exception):
    """A clerk action refused or impossible: one line naming what and what to do."""


class PermissionRefused(CatalogueError):
    """The user's role may not do this (exit 5)."""


def handles(type_, permission=None):
    """Register a handler class for the clerk event ``type_`` (events.CLERK_TYPES);
    ``permission`` is the users.PERMISSIONS action a user needs to cause it."""
    if type_ not in CLERK_TYPES:
        raise ValueError("%r is not a clerk event type (events.CLERK_TYPES)" % type_)

    def deco(cls):
        cls.type = type_
        cls.permission = permission
        HANDLERS[type_] = cls
        return cls
    return deco


def _load_modules():
    for m in MODULES:
        try:
            importlib.import_module("host_tools.catalogue." + m)
        except ModuleNotFoundError as e:
            if e.name != "host_tools.catalogue." + m:   # a module being written: skipped
                raise


SEGMENT_MAX = (1 << 63) - 1     # a segment's seq fits an SQL BIGINT
DEVICE_MAX = 64                 # characters of a device id


def recording_id(conn, device, segment):
    """The catalogue id of recording ``device``/``segment``, or CatalogueError."""
    if not isinstance(device, str) or not 0 < len(device) <= DEVICE_MAX or bad_char(device):
        raise CatalogueError(_("a device id has 1 to %(max)d characters, none of them a "
                               "control character") % {"max": DEVICE_MAX})
    if type(segment) is not int or not 0 <= segment <= SEGMENT_MAX:
        raise CatalogueError(_("a segment is a whole number from 0 to %(max)d, not %(seg)s")
                             % {"max": SEGMENT_MAX, "seg": str(segment)[:40]})
    r = conn.execute(sa.select(db.recordings.c.id).where(
        db.recordings.c.device == device, db.recordings.c.segment == segment)).first()
    if r is None:
        raise CatalogueError(_("no recording %(device)s/%(segment)d in the archive: `sealcam "
                               "search` lists them (a recording is a device and the seq of "
                               "its segment)") % {"device": device, "segment": segment})
    return r[0]


_BY_ENGINE = {}              # id(engine) -> weakref to its Catalogue (catalogue_of)


def catalogue_of(conn):
    """The open Catalogue whose engine ``conn`` belongs to, or None: for rules that are
    handed only a connection but must read the signed log (confidentiality's levels)."""
    eng = getattr(conn, "engine", None)
    r = _BY_ENGINE.get(id(eng))
    cat = r() if r is not None else None
    return cat if cat is not None and cat.engine is eng else None


class Catalogue:
    def __init__(self, archive_dir, url=None, *, readonly=False):
        from ..archive import Archive
        from .. import stationconfig
        self.archive_dir = os.path.abspath(os.fspath(archive_dir))
        self.archive = Archive(self.archive_dir, readonly=readonly)
        self.readonly = readonly
        self.config = stationconfig.load(self.archive_dir)
        self.url = url or os.environ.get("SEALCAM_CATALOGUE_URL") or \
            self.config.values.get("catalogue", {}).get("url") or db.default_url(
                self.archive_dir)
        self.engine = db.open_engine(self.url)
        self._register()
        self.problems = []          # log entries the catalogue could not apply
        _load_modules()
        with self.engine.begin() as conn:
            meta = {k: v for k, v in conn.execute(sa.select(db.cat_meta.c.key,
                                                             db.cat_meta.c.value))}
            if not meta:
                conn.execute(db.cat_meta.insert(), [
                    {"key": "archive_id", "value": self.archive.archive_id},
                    {"key": "applied", "value": "0"}])
            elif meta.get("archive_id") != self.archive.archive_id:
                raise CatalogueError(
                    "the catalogue database %s belongs to another archive (%s, not %s): give "
                    "each archive its own database" % (db.describe_url(self.url),
                                                       meta.get("archive_id"),
                                                       self.archive.archive_id))

    def _register(self):
        """Make catalogue_of find this Catalogue by its engine (also one made by
        check.rebuild, which sets its own engine: _sync registers again)."""
        import weakref
        _BY_ENGINE[id(self.engine)] = weakref.ref(self)

    def close(self):
        r = _BY_ENGINE.get(id(self.engine))
        if r is not None and r() is self:
            del _BY_ENGINE[id(self.engine)]
        self.engine.dispose()
        self.archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the lock: one writer of the catalogue at a time ------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        fd = os.open(os.path.join(self.archive_dir, "catalogue.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- reading the log ---------------------------------------------------------------------
    def applied(self, conn) -> int:
        return int(conn.execute(sa.select(db.cat_meta.c.value).where(
            db.cat_meta.c.key == "applied")).scalar_one())

    def entry(self, index):
        """The station log's entry ``index`` (a dict), or None."""
        lg = self.archive.log()
        for _, _, e in lg.entries(index, index + 1):
            return e
        return None

    def entries_with(self, *needles, start=0, stop=None):
        """[(index, entry)] of the station log's entries in [start, stop) (default: every
        indexed one) whose bytes hold one of ``needles`` (bytes, e.g. an event type): a byte
        search over log/entries, only the entries found are decoded, so a log of millions of
        custody entries is read in about a second. An entry that does not decode is left
        out (sync names it)."""
        import bisect
        import mmap
        from ..tlog.log import ENTRY_MAX, decode_entry
        lg = self.archive.log()
        stop = lg.size if stop is None else min(stop, lg.size)
        if start >= stop or not needles:
            return []
        f, size = lg._open(lg.entries_path)
        with f:
            lo = lg.offsets[start]
            hi = min(lg.offsets[stop] if stop < lg.size else lg.end, size)
            if hi <= lo:
                return []
            hits = set()
            out = []
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    hi = min(hi, len(m))
                    for needle in needles:
                        pos = m.find(needle, lo, hi)
                        while pos >= 0:
                            i = bisect.bisect_right(lg.offsets, pos) - 1
                            if start <= i < stop:
                                hits.add(i)
                            pos = m.find(needle, pos + 1, hi)
                    for i in sorted(hits):
                        at = lg.offsets[i]
                        n = int.from_bytes(m[at:at + 4], "big")
                        if n > ENTRY_MAX or at + 4 + n > len(m):
                            continue
                        try:
                            e = decode_entry(m[at + 4:at + 4 + n])
                        except Exception:       # noqa: BLE001 - hostile bytes: sync says
                            continue
                        out.append((i, e))
            except (ValueError, OSError):       # the file shrank under us: read nothing
                return []
        return out

    def sync(self) -> int:
        """Apply the log's entries not applied yet; returns how many were read."""
        if self.readonly:
            return self._sync()
        with self._locked():
            return self._sync()

    def _sync(self, refresh=True) -> int:
        self._register()
        lg = self.archive.log()
        lg._catch_up()
        with self.engine.connect() as conn:
            start = self.applied(conn)
        stop = lg.size
        if start >= stop:
            return 0
        touched = set()
        clerk = []
        disposed = []
        for i, _, e in lg.entries(start, stop):
            t = e.get("type")
            if t in _CUSTODY_TOUCH and isinstance(e.get("device"), str):
                touched.add(e["device"])
                if t == "segment_disposed" and type(e.get("segment")) is int:
                    disposed.append((i, e))
            elif t in CLERK_TYPES:
                clerk.append((i, e))
        if touched and refresh:
            self.refresh_recordings(sorted(touched))
        if disposed:
            rec = db.recordings.c
            with self.engine.begin() as conn:
                for _i, e in disposed:           # irreversible: refresh keeps it
                    conn.execute(db.recordings.update().where(
                        rec.device == e["device"], rec.segment == e["segment"]).values(
                            state="disposed"))
        for i, e in clerk:
            self._apply(i, e)
        if disposed:        # after the clerk events: a reindex makes the request rows first
            from . import retention
            with self.engine.begin() as conn:
                for i, e in disposed:
                    retention.apply_disposed(self, conn, i, e)
        with self.engine.begin() as conn:
            conn.execute(db.cat_meta.update().where(db.cat_meta.c.key == "applied")
                         .values(value=str(stop)))
        return stop - start

    def _apply(self, i, e):
        h = HANDLERS.get(e.get("type"))
        if h is None:
            self.problems.append("log entry %d (%s): no catalogue module applies it"
                                 % (i, e.get("type")))
            return
        from . import users
        try:
            users.check_actor(self, i, e, h.permission)
            with self.engine.begin() as conn:
                h.check(self, conn, e)
                h.apply(self, conn, i, e)
        except (CatalogueError, CatalogueEventError) as ex:
            self.problems.append("log entry %d (%s) is not applied: %s" % (i, e.get("type"),
                                                                           ex))

    def refresh_recordings(self, devices=None):
        """Bring the recordings rows of ``devices`` (all: None) up to the archive's verified
        records (host_tools.catalogue.recordings)."""
        try:
            from . import recordings
        except ModuleNotFoundError:
            return
        rows = recordings.collect(self.archive_dir, devices)
        cols = [c.name for c in db.recordings.columns if c.name != "id"]
        with self.engine.begin() as conn:
            for r in rows:
                vals = {k: r.get(k) for k in cols}
                rec = db.recordings.c
                old = conn.execute(sa.select(rec.id, rec.state).where(
                    rec.device == r["device"], rec.segment == r["segment"])).first()
                if old is None:
                    conn.execute(db.recordings.insert().values(**vals))
                else:
                    if old[1] == "disposed":        # an approved disposal is final
                        vals["state"] = "disposed"
                    conn.execute(db.recordings.update().where(rec.id == old[0]).values(**vals))

    # -- acting ------------------------------------------------------------------------------
    def act(self, user, event) -> int:
        """Check ``event`` (a clerk event built by its module) for ``user``, append it to the
        station log, apply it; returns its log index."""
        from ..archive.common import utcnow
        from ..tlog.log import LogError
        from . import users
        if self.readonly:
            raise CatalogueError("the catalogue is open read-only")
        h = HANDLERS.get(event.get("type"))
        if h is None:
            raise CatalogueError("%r is not a clerk action this station knows"
                                 % event.get("type"))
        users.require(user, h.permission, event)
        event = dict(event, by=user.name, at=utcnow())     # the station's clock, its user
        with self._locked():
            self._sync()
            users.check_actor(self, self.archive.log().size, event, h.permission)
            with self.engine.begin() as conn:
                try:
                    h.check(self, conn, event)
                except CatalogueEventError as ex:
                    raise CatalogueError(str(ex)) from None
            try:
                index = self.archive.log().append([event])
            except (LogError, OSError) as ex:
                raise CatalogueError("the station log of %s cannot be written (%s); nothing "
                                     "was changed" % (self.archive_dir, ex)) from None
            with self.engine.begin() as conn:
                h.apply(self, conn, index, event)
                conn.execute(db.cat_meta.update().where(db.cat_meta.c.key == "applied")
                             .values(value=str(index + 1)))
        return index

    def reindex(self) -> int:
        """Rebuild every row from the station log and the archive's records."""
        with self._locked():
            with self.engine.begin() as conn:
                for t in reversed(db.metadata.sorted_tables):
                    if t is not db.cat_meta:
                        conn.execute(t.delete())
                conn.execute(db.cat_meta.update().where(db.cat_meta.c.key == "applied")
                             .values(value="0"))
            self.problems = []
            self.refresh_recordings(None)
            return self._sync(refresh=False)
