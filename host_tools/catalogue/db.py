"""The catalogue's tables and where they live (SQLAlchemy Core; SPEC §14.3).

SQLite (the default: ARCHIVE/catalogue.sqlite, write-ahead log, synchronous=FULL) or
PostgreSQL (``postgresql+psycopg://user@host/db``, or ``postgresql:///db?host=/socket/dir``)
run the same statements: nothing here is written in a dialect of its own. The schema is
made and upgraded by Alembic (host_tools/catalogue/migrations); `open_engine` brings any
database up to the newest revision before it is used.

Every row is a projection of the station log (host_tools.catalogue.store): the ``event``
column of a clerk row is the index of the log entry that made it, so any row can be traced
back to a signed entry, and `sealcam catalogue reindex` rebuilds all of them from the log.
Names, never numbers: states and kinds are short English words (SPEC §14).
"""
from __future__ import annotations

import os

from sqlalchemy import (BigInteger, Boolean, Column, ForeignKey, Index, Integer, MetaData,
                        String, Table, Text, UniqueConstraint, create_engine, event)

__all__ = ["metadata", "cat_meta", "recordings", "tags", "archive_numbers", "number_items",
           "cases", "case_items", "documents", "holds", "disposal_requests", "users",
           "classifications", "access_requests", "access_decisions", "accesses", "copies",
           "discs", "backups", "handovers",
           "open_engine", "default_url", "CatalogueDBError", "REVISION", "describe_url"]

REVISION = "0003"
FILE = "catalogue.sqlite"

metadata = MetaData()
S = String(128)          # names, ids, numbers (events.NAME_MAX characters)
T = String(40)           # UTC ISO time stamps
W = String(32)           # short words: states, kinds, roles

cat_meta = Table(
    "cat_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False))      # archive_id, applied (log entries applied)

# one recording = one archived segment (recordings.py states each fact)
recordings = Table(
    "recordings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device", S, nullable=False),
    Column("segment", BigInteger, nullable=False),       # seq of its REC_START
    Column("start_ms", BigInteger),                      # RTC of REC_START
    Column("end_ms", BigInteger),
    Column("duration_ms", BigInteger),
    Column("officer", S),
    Column("unit", S),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("state", W, nullable=False),                  # complete | partial | disposed
    Column("interruptions", Integer, nullable=False, default=0),
    Column("statements", Integer, nullable=False, default=0),
    Column("unstated", Integer, nullable=False, default=0),
    Column("marks_important", Integer, nullable=False, default=0),
    Column("marks_notice", Integer, nullable=False, default=0),
    Column("marks_bookmark", Integer, nullable=False, default=0),
    Column("first_stored_at", T),
    UniqueConstraint("device", "segment", name="uq_recordings_device_segment"))
Index("ix_recordings_start", recordings.c.start_ms)
Index("ix_recordings_officer", recordings.c.officer, recordings.c.start_ms)
Index("ix_recordings_device", recordings.c.device, recordings.c.start_ms)

# metadata of a recording or a span of it: one row per field of a `tag` event; a later
# event on the same recording, span and field supersedes it (current = false), the row stays
tags = Table(
    "tags", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", BigInteger, nullable=False),
    Column("recording_id", Integer, ForeignKey("recordings.id"), nullable=False),
    Column("span_from_ms", BigInteger),
    Column("span_to_ms", BigInteger),
    Column("field", W, nullable=False),      # party place event_type case item_class note ...
    Column("value", Text, nullable=False),
    Column("current", Boolean, nullable=False, default=True),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False),
    Column("reason", Text))
Index("ix_tags_field_value", tags.c.field, tags.c.value)
Index("ix_tags_recording", tags.c.recording_id, tags.c.field)
# search's per-recording probe (revision 0003: three equalities, never tied with the above)
Index("ix_tags_recording_value", tags.c.recording_id, tags.c.field, tags.c.value)

archive_numbers = Table(
    "archive_numbers", metadata,
    Column("number", S, primary_key=True),
    Column("event", BigInteger, nullable=False),
    Column("agency", S, nullable=False),
    Column("day", String(10), nullable=False),           # YYYY-MM-DD of the recording
    Column("party", S, nullable=False),
    Column("step", S, nullable=False),
    Column("serial", Integer, nullable=False),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))

number_items = Table(
    "number_items", metadata,
    Column("number", S, ForeignKey("archive_numbers.number"), nullable=False),
    Column("recording_id", Integer, ForeignKey("recordings.id"), nullable=False),
    Column("span_from_ms", BigInteger),
    Column("span_to_ms", BigInteger))
Index("ix_number_items_number", number_items.c.number)
Index("ix_number_items_recording", number_items.c.recording_id)

cases = Table(
    "cases", metadata,
    Column("case_no", S, primary_key=True),
    Column("event", BigInteger, nullable=False),
    Column("title", Text, nullable=False),
    Column("unit", S),
    Column("state", W, nullable=False),                 # open | closed | archived
    Column("opened_by", S, nullable=False),
    Column("opened_at", T, nullable=False),
    Column("closed_by", S),
    Column("closed_at", T),
    Column("archived_year", Integer),
    Column("keeper", S))        # the user in charge now (handover.py; opened_by until then)

case_items = Table(
    "case_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event", BigInteger, nullable=False),
    Column("case_no", S, ForeignKey("cases.case_no"), nullable=False),
    Column("kind", W, nullable=False),                  # recording | document
    Column("recording_id", Integer, ForeignKey("recordings.id")),
    Column("document", String(64)),                     # documents.sha256
    Column("role", W),                                  # primary | angle | record | ...
    Column("current", Boolean, nullable=False, default=True),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_case_items_case", case_items.c.case_no)
Index("ix_case_items_recording", case_items.c.recording_id)

documents = Table(
    "documents", metadata,
    Column("sha256", String(64), primary_key=True),     # the archive object
    Column("event", BigInteger, nullable=False),
    Column("kind", W, nullable=False),                  # written_record | explanation | other
    Column("media_type", S, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("device", S),                                # an explanation: its INTERRUPTION
    Column("interruption_seq", BigInteger),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_documents_interruption", documents.c.device, documents.c.interruption_seq)

holds = Table(
    "holds", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("kind", W, nullable=False),                  # case | legal
    Column("case_no", S),
    Column("recording_id", Integer, ForeignKey("recordings.id")),
    Column("reason", Text, nullable=False),
    Column("placed_by", S, nullable=False),
    Column("placed_at", T, nullable=False),
    Column("released_by", S),
    Column("released_at", T),
    Column("keeper", S))        # the user in charge now (handover.py; placed_by until then)
Index("ix_holds_recording", holds.c.recording_id)
Index("ix_holds_case", holds.c.case_no)

disposal_requests = Table(
    "disposal_requests", metadata,
    Column("id", S, primary_key=True),
    Column("event", BigInteger, nullable=False),
    Column("recording_id", Integer, ForeignKey("recordings.id"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("retention_class", W, nullable=False),
    Column("expired_on", String(10), nullable=False),
    Column("requested_by", S, nullable=False),
    Column("requested_at", T, nullable=False),
    Column("state", W, nullable=False),                 # requested | approved | refused
    Column("decided_by", S),
    Column("decided_at", T))

users = Table(
    "users", metadata,
    Column("name", S, primary_key=True),
    Column("event", BigInteger, nullable=False),
    Column("display", Text, nullable=False),
    Column("role", W, nullable=False),
    Column("os_account", S),
    Column("pw_hash", Text),                 # argon2id, as the signed log states it
    Column("active", Boolean, nullable=False, default=True),
    Column("added_by", S, nullable=False),
    Column("added_at", T, nullable=False),
    Column("unit", S),                       # the enforcement unit a user belongs to
    Column("clearance", W))                  # confidentiality.LEVELS: the highest it sees

# == issue 12 (revision 0002: tables and columns added, never changed) ====================
# Each section belongs to the module named in its heading; revision 0002 creates what a
# database at 0001 lacks (tables, and columns added to its tables).

# -- confidentiality.py: a level on a recording or a case (the newest is current) --------
classifications = Table(
    "classifications", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("kind", W, nullable=False),                  # recording | case
    Column("recording_id", Integer, ForeignKey("recordings.id")),
    Column("case_no", S),
    Column("level", W, nullable=False),                 # confidentiality.LEVELS
    Column("reason", Text, nullable=False),
    Column("current", Boolean, nullable=False, default=True),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_classifications_recording", classifications.c.recording_id)
Index("ix_classifications_case", classifications.c.case_no)

# -- access.py: requests to view, copy, export or print, their decisions and each use ----
access_requests = Table(
    "access_requests", metadata,
    Column("id", S, primary_key=True),                  # the request number
    Column("event", BigInteger, nullable=False),
    Column("requester", S, nullable=False),
    Column("agency", S),                                # another agency's request
    Column("purpose", Text, nullable=False),
    Column("case_no", S),
    Column("actions", S, nullable=False),               # view,copy,export,print
    Column("target_kind", W, nullable=False),           # recording | case | number
    Column("target", S, nullable=False),
    Column("state", W, nullable=False),                 # requested | approved | refused
    Column("requested_at", T, nullable=False),
    Column("valid_until", T))
Index("ix_access_requests_requester", access_requests.c.requester)

access_decisions = Table(
    "access_decisions", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("request_id", S, ForeignKey("access_requests.id"), nullable=False),
    Column("decision", W, nullable=False),              # approved | refused
    Column("role", W, nullable=False),                  # the role it was made in
    Column("reason", Text),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_access_decisions_request", access_decisions.c.request_id)

accesses = Table(
    "accesses", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("request_id", S, ForeignKey("access_requests.id"), nullable=False),
    Column("action", W, nullable=False),                # view | copy | export | print
    Column("recording_id", Integer, ForeignKey("recordings.id")),
    Column("output", String(64)),                       # sha256 of what was handed out
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_accesses_request", accesses.c.request_id)
Index("ix_accesses_at", accesses.c.at)

# -- copies.py: viewing copies and extracts, with their provenance ------------------------
copies = Table(
    "copies", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("sha256", String(64), nullable=False),       # the derived file (an extract of
                                                        # the same media has the same hash)
    Column("request_id", S, ForeignKey("access_requests.id"), nullable=False),
    Column("kind", W, nullable=False),                  # view | extract
    Column("recording_id", Integer, ForeignKey("recordings.id")),
    Column("size", BigInteger, nullable=False),
    Column("derivation", Text, nullable=False),         # JSON: tool, version, args, watermark
    Column("sources", Text, nullable=False),            # JSON: the originals' hashes
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))
Index("ix_copies_request", copies.c.request_id)
Index("ix_copies_sha256", copies.c.sha256)

# -- discs.py (host_tools/disc): duplicate disc images made --------------------------------
discs = Table(
    "discs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("ref", S, nullable=False),                   # the case or archive number
    Column("image_sha256", String(64), nullable=False),
    Column("contents_sha256", String(64), nullable=False),
    Column("label", Text, nullable=False),              # JSON: what the label says
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))

# -- backups.py (host_tools/backup): each backup, with the checkpoint it holds -------------
backups = Table(
    "backups", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # its event index
    Column("destination", Text, nullable=False),
    Column("log_size", BigInteger, nullable=False),     # the checkpoint's tree size
    Column("root", String(64), nullable=False),         # and its root hash (hex)
    Column("snapshot", String(40)),                     # DIR/snapshots/NAME holding it
    Column("objects", BigInteger, nullable=False),
    Column("objects_new", BigInteger, nullable=False),
    Column("bytes_new", BigInteger, nullable=False),
    Column("by_user", S, nullable=False),
    Column("at", T, nullable=False))

# -- handover.py: what a user who moves on hands to a successor ----------------------------
handovers = Table(
    "handovers", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),   # the offer's event
    Column("from_user", S, nullable=False),
    Column("to_user", S, nullable=False),
    Column("items", Text, nullable=False),              # JSON: cases and holds handed over
    Column("reason", Text, nullable=False),
    Column("state", W, nullable=False),                 # offered | accepted
    Column("offered_at", T, nullable=False),
    Column("accepted_event", BigInteger),
    Column("accepted_at", T))
Index("ix_handovers_from", handovers.c.from_user)


class CatalogueDBError(Exception):
    """The catalogue's database cannot be opened or used (one line: the URL, what to do)."""


def default_url(archive_dir) -> str:
    return "sqlite:///" + os.path.join(os.path.abspath(archive_dir), FILE)


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(an unreadable database URL)"


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def open_engine(url: str, *, migrate=True):
    """An engine on ``url`` (sqlite:///PATH or postgresql+psycopg://...), its schema brought
    to REVISION by Alembic. Raises CatalogueDBError naming the URL."""
    from sqlalchemy.exc import SQLAlchemyError
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        if url.startswith("sqlite"):
            eng = create_engine(url)
            event.listen(eng, "connect", _sqlite_pragmas)
        else:
            eng = create_engine(url, pool_pre_ping=True)
        if migrate:
            from .migrations import upgrade
            upgrade(eng)
        return eng
    except SQLAlchemyError as e:
        raise CatalogueDBError("the catalogue database %s cannot be used (%s); check the URL "
                               "and that the server runs"
                               % (describe_url(url), str(e).splitlines()[0][:200])) from None
    except ImportError as e:
        raise CatalogueDBError("the catalogue database %s needs a driver that is not "
                               "installed (%s)" % (describe_url(url), e)) from None
