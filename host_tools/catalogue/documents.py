"""Documents of the archive (R3 written part; 001 §16): the `document_added` event.

    sha = add_document(cat, clerk, "/scans/explanation.pdf", "explanation",
                       device="SC-0001", interruption_seq=9, case_no="FZ-2023-001")
    explanations(cat, "SC-0001", 9)         # the written explanations of that INTERRUPTION

A document is a scanned PDF or image (JPEG, PNG) of at most MAX_BYTES: a written record
(笔录), the written explanation of an interruption (R3: when recording truly cannot go on,
the officer explains in writing afterwards), or another paper of a case. Its bytes become a
content-addressed object of the archive (ARCHIVE/objects, SPEC §9: put with the archive's
own function, never written anywhere else), named in the event by its SHA-256. The file is
read without following a symbolic link (host_tools.safeio), at most MAX_BYTES, and its
type is what its bytes are: the magic at its start and the end marker of its format, never
its name.

The event (SPEC §14): {sha256, kind: written_record | explanation | other, media_type, size,
name, device?, interruption_seq?, case_no?}. An explanation names an INTERRUPTION record of
the archive's verified records (the same reading as `sealcam report`:
report_items.load_dev) by its device and seq; other kinds name none. ``case_no`` files the
document into that open case at once (a case_items row, as `case_linked` would).
"""
from __future__ import annotations

import hashlib
import os

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .events import bad_char, base, field

__all__ = ["KINDS", "MEDIA_TYPES", "MAX_BYTES", "sniff", "read_document", "document_event",
           "add_document", "explanations", "document", "interruption_ok"]

KINDS = ("written_record", "explanation", "other")
MAX_BYTES = 50_000_000          # a scanned document, not a recording
MIN_BYTES = 64
NAME_MAX = 128
MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png")
_TAIL = 1024


class _NoObject(store.CatalogueError):
    """The event names an object the archive does not hold (yet)."""


def sniff(data: bytes):
    """The media type of ``data`` if it is a whole PDF, JPEG or PNG (its magic and its end
    marker), else None."""
    tail = data[-_TAIL:]
    if data.startswith(b"%PDF-1.") or data.startswith(b"%PDF-2."):
        return "application/pdf" if b"%%EOF" in tail else None
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg" if b"\xff\xd9" in tail else None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return "image/png" if b"IEND\xaeB`\x82" in data[-64:] else None
    return None


def read_document(path):
    """(bytes, media type, name) of the scanned document at ``path``: a regular file (not a
    symbolic link, not a FIFO or device), MIN_BYTES to MAX_BYTES, a PDF, JPEG or PNG by its
    bytes. Raises CatalogueError naming the file and what to do."""
    from .. import safeio
    path = os.path.abspath(os.fspath(path))
    root, name = os.path.split(path)
    try:
        data = safeio.read_capped(root, name, MAX_BYTES, "document")
    except FileNotFoundError:
        raise store.CatalogueError(_("%(path)s does not exist") % {"path": path}) from None
    except safeio.StoreFileError as e:
        raise store.CatalogueError(
            _("%(path)s is not read: %(why)s; give the scanned file itself, a regular file "
              "of at most %(max)d MB") % {"path": path, "why": e, "max": MAX_BYTES // 10**6}
        ) from None
    except OSError as e:
        raise store.CatalogueError(_("%(path)s cannot be read (%(why)s)")
                                   % {"path": path, "why": e.strerror or e}) from None
    if len(data) < MIN_BYTES:
        raise store.CatalogueError(_("%(path)s is %(n)d bytes: too small to be a scanned "
                                     "document") % {"path": path, "n": len(data)})
    mt = sniff(data)
    if mt is None:
        raise store.CatalogueError(
            _("%(path)s is not a whole PDF, JPEG or PNG file (its bytes, whatever its name "
              "says): scan the paper to PDF, JPEG or PNG") % {"path": path})
    return data, mt, name


def _check_name(name):
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or \
            bad_char(name) is not None or "/" in name or "\\" in name:
        raise store.CatalogueError(
            _("the document name %(name)r is not allowed: 1 to %(max)d characters, no "
              "control characters or slashes (give --name)")
            % {"name": str(name)[:60], "max": NAME_MAX})


_ANYONE = object()


def _hidden_segment(cat, device, segment, viewer, conn=None):
    """Whether ``viewer`` may not see recording ``device``/``segment`` (R16; no such
    recording: nothing to hide)."""
    import contextlib
    from . import confidentiality
    if segment is None:
        return False
    with (contextlib.nullcontext(conn) if conn is not None else cat.engine.connect()) \
            as conn:
        r = conn.execute(sa.select(db.recordings.c.id).where(
            db.recordings.c.device == device, db.recordings.c.segment == segment)).first()
        return r is not None and not confidentiality.may_see(
            confidentiality.clearance_of(viewer),
            confidentiality.level_of_recording(conn, r[0]))


def interruption_ok(cat, device, seq, viewer=_ANYONE, conn=None):
    """None if ``device``'s record ``seq`` is an INTERRUPTION of the archive's verified
    records, else why not (one line). With ``viewer`` (a users.User, a clearance, None:
    the default), a record of a recording it may not see is answered as one that does not
    exist (R16)."""
    from ..records import INTERRUPTION
    types = _record_types(cat, device)
    if isinstance(types, str):
        return types
    t, seg = types.get(seq, (None, None))
    if t is None or (viewer is not _ANYONE and
                      _hidden_segment(cat, device, seg, viewer, conn)):
        return _("%(device)s has no verified record %(seq)d") % {"device": device, "seq": seq}
    if t != INTERRUPTION:
        return _("record %(seq)d of %(device)s is not an INTERRUPTION") % {"device": device,
                                                                           "seq": seq}
    return None


def _record_types(cat, device):
    """{seq: (record type, the segment it belongs to: report_items.record_segments)} of
    ``device``'s verified records, or why they cannot be read.
    Read once per device while the station log does not grow (a reindex reads each device
    once, not once per explanation)."""
    import sqlite3
    from ..records import K
    from ..report import _open_ro, _station_facts
    from ..report_items import ReportError, load_dev, record_segments
    lg = cat.archive.log()
    lg._catch_up()
    memo = cat.__dict__.get("_record_types_memo")
    if memo is None or memo["size"] != lg.size:
        memo = cat.__dict__["_record_types_memo"] = {"size": lg.size, "facts": None,
                                                     "devices": {}}
    if device in memo["devices"]:
        return memo["devices"][device]
    try:
        root, rdb, _notes = _open_ro(cat.archive_dir)
    except ReportError as e:
        return str(e)
    try:
        if rdb.execute("SELECT 1 FROM devices WHERE id = ?", (device,)).fetchone() is None:
            out = _("device %(device)s is not in the archive") % {"device": device}
        else:
            if memo["facts"] is None:
                memo["facts"] = (_station_facts(root)[0],)
            d = load_dev(rdb, device, memo["facts"][0])
            segof = record_segments(d)
            out = {seq: (b.get(K.TYPE), segof.get(seq)) for seq, b in d.recs}
    except sqlite3.DatabaseError as e:
        return _("the records of %(device)s cannot be read (%(why)s)") % {"device": device,
                                                                          "why": e}
    finally:
        rdb.close()
    if len(memo["devices"]) < 256:
        memo["devices"][device] = out
    return out


def document_event(sha256, kind, media_type, size, name, *, device=None,
                   interruption_seq=None, case_no=None):
    if kind not in KINDS:
        raise store.CatalogueError(_("unknown document kind %(kind)r (kinds: %(kinds)s)")
                                   % {"kind": str(kind)[:40], "kinds": ", ".join(KINDS)})
    _check_name(name)
    return base("document_added", None, None, sha256=sha256, kind=kind,
                media_type=media_type, size=size, name=name, device=device,
                interruption_seq=interruption_seq, case_no=case_no)


@store.handles("document_added", permission="document")
class _Added:
    @staticmethod
    def check(cat, conn, e):
        sha = field(e, "sha256", str, max_len=64)
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise store.CatalogueError(_("a document is named by its SHA-256 (64 hex digits)"))
        kind = field(e, "kind", str, max_len=32)
        if kind not in KINDS:
            raise store.CatalogueError(_("unknown document kind %(kind)r (kinds: %(kinds)s)")
                                       % {"kind": kind, "kinds": ", ".join(KINDS)})
        if field(e, "media_type", str, max_len=64) not in MEDIA_TYPES:
            raise store.CatalogueError(_("a document is a PDF, JPEG or PNG"))
        size = field(e, "size", int)
        if not MIN_BYTES <= size <= MAX_BYTES:
            raise store.CatalogueError(_("a document is %(min)d bytes to %(max)d MB")
                                       % {"min": MIN_BYTES, "max": MAX_BYTES // 10**6})
        _check_name(field(e, "name", str, max_len=NAME_MAX))
        dev = field(e, "device", str, optional=True, max_len=64)
        seq = field(e, "interruption_seq", int, optional=True)
        from . import confidentiality
        who = confidentiality.log_actor(cat, conn, e)   # R16, as the log states the user
        if kind == "explanation":
            if dev is None or seq is None:
                raise store.CatalogueError(_("a written explanation names its INTERRUPTION "
                                             "record: --device and --interruption SEQ"))
            why = interruption_ok(cat, dev, seq, who, conn)
            if why:
                raise store.CatalogueError(_("the explanation cannot be linked: %(why)s")
                                           % {"why": why})
        elif dev is not None or seq is not None:
            raise store.CatalogueError(_("only a written explanation names an interruption"))
        case_no = field(e, "case_no", str, optional=True, max_len=64)
        if case_no is not None:
            from .cases import require_open
            require_open(conn, case_no, who)
        try:        # the size of its content (an object may be encrypted at rest)
            n = cat.archive.object_size(sha)
        except FileNotFoundError:
            raise _NoObject(_("document %(sha)s is not among the archive's objects")
                            % {"sha": sha[:16]}) from None
        if n != size:
            raise store.CatalogueError(_("document %(sha)s: the object is %(n)d bytes, the "
                                         "event says %(size)d") %
                                       {"sha": sha[:16], "n": n, "size": size})
        had = conn.execute(sa.select(db.documents.c.name, db.documents.c.kind).where(
            db.documents.c.sha256 == sha)).first()
        if had is not None:
            raise store.CatalogueError(_("this document is in the archive already (%(kind)s "
                                         "%(name)s): link it with `sealcam case link`")
                                       % {"kind": had[1], "name": had[0]})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.documents.insert().values(
            sha256=e["sha256"], event=i, kind=e["kind"], media_type=e["media_type"],
            size=e["size"], name=e["name"], device=e.get("device"),
            interruption_seq=e.get("interruption_seq"), by_user=e["by"], at=e["at"]))
        if e.get("case_no") is not None:
            conn.execute(db.case_items.insert().values(
                event=i, case_no=e["case_no"], kind="document", document=e["sha256"],
                role=e["kind"], current=True, by_user=e["by"], at=e["at"]))


def add_document(cat, user, path, kind, *, name=None, device=None, interruption_seq=None,
                 case_no=None):
    """Read the scanned file ``path``, check the event for ``user`` against the catalogue,
    store the bytes as an archive object and append `document_added`; returns the SHA-256."""
    from . import users
    data, mt, fname = read_document(path)
    sha = hashlib.sha256(data).hexdigest()
    e = document_event(sha, kind, mt, len(data), name or fname, device=device,
                       interruption_seq=interruption_seq, case_no=case_no)
    users.require(user, _Added.permission, e)
    cat.sync()
    with cat.engine.connect() as conn:        # refused before anything is stored
        try:
            _Added.check(cat, conn, dict(e, by=user.name))
        except _NoObject:
            pass                                  # stored next
    got = cat.archive.put_bytes(data)
    if got != sha:
        raise store.CatalogueError(_("the archive stored %(got)s, not %(sha)s") %
                                   {"got": got[:16], "sha": sha[:16]})
    cat.act(user, e)
    return sha


def document(cat, sha256):
    """The documents row of ``sha256`` (a dict) with its cases, or None."""
    cat.sync()
    with cat.engine.connect() as conn:
        r = conn.execute(sa.select(db.documents).where(db.documents.c.sha256 == sha256)
                         ).mappings().first()
        if r is None:
            return None
        out = dict(r)
        ci = db.case_items.c
        out["cases"] = [x[0] for x in conn.execute(sa.select(ci.case_no).where(
            ci.document == sha256, ci.current.is_(True)).order_by(ci.event))]
    return out


def explanations(cat, device, seq, viewer=None):
    """The written explanations of ``device``'s INTERRUPTION ``seq``, oldest first: dicts of
    sha256, name, media_type, size, by_user, at, event, path (the archive object's file:
    read its content with cat.archive.open_object(sha256), never from the path, which may
    be encrypted at rest). ``viewer`` (a users.User or a clearance; None: the default):
    none of an interruption of a recording it may not see, as for one without (R16)."""
    cat.sync()
    d = db.documents.c
    with cat.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.select(d.sha256, d.name, d.media_type, d.size, d.by_user, d.at, d.event)
            .where(d.kind == "explanation", d.device == device, d.interruption_seq == seq)
            .order_by(d.event)).mappings()]
        if rows:
            types = _record_types(cat, device)
            seg = types.get(seq, (None, None))[1] if isinstance(types, dict) else None
            if _hidden_segment(cat, device, seg, viewer, conn):
                rows = []
    for r in rows:
        r["path"] = cat.archive.object_path(r["sha256"])
    return rows
