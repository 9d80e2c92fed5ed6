"""Retention (R12; issue 11 item 5; SPEC §14): how long each recording is kept, the holds that
keep it, and its disposal with a request by one user and an approval by another.

    due(cat, today)                              # what may go now, and why
    assess(cat, device, segment, today)          # one recording: class, expiry, holds, why
    rid = request(cat, clerk, device, segment, reason)      # a `disposal_requested` event
    approve(cat, head, rid)                      # Archive.dispose: `segment_disposed`
    refuse(cat, head, rid, reason)               # a `disposal_refused` event
    hid = hold(cat, leader, "case:FZ-2023-001", "case", reason)  # `hold_placed`
    release(cat, leader, hid, reason)            # `hold_released`

Classes (the station's [retention] settings, docs/station-config.md):

    ordinary    kept ordinary_months (24 by default; 6 at the least, 002 §15)
    long_term   kept long_term_months (LONG_TERM_MONTHS unless the station sets it)
    permanent   never disposed

A recording is ordinary unless something says more, and the longest class wins: a
`retention_class` tag (a clerk's proposal), an `event_type` tag of the station's
permanent_event_types (case evidence, obstruction, mass incidents, major cases, ...), an
IMPORTANT mark (it proposes permanent). Span tags count for the whole recording: a
recording is disposed whole or not at all. Its expiry is the day after the anniversary of
its last recorded time (its end; else its start; else when the station stored it), so it
is never early in any time zone. A hold (kind case or legal) on the recording, or on a case
it is filed in or tagged with, blocks its disposal until it is released; so does being
filed in a case that is still open (case evidence is kept with the case file).

Every action is one signed event of the station log naming its user; the approval is the
archive's own `segment_disposed` event (host_tools.archive.dispose), which names the
request, the requester and the approver, who must be two different users.
"""
from __future__ import annotations

import datetime as dt
import os

import sqlalchemy as sa

from . import db, store, users
from ..i18n import _
from ..records import printable
from .events import TEXT_MAX, base, field
from .retention_rules import (CLASSES, HOLD_KINDS, LONG_TERM_MONTHS, RetentionRefused,
                              add_months, assess_one, assess_rows, day_of,
                              recordings_where, refusal, settings)

__all__ = ["CLASSES", "LONG_TERM_MONTHS", "HOLD_KINDS", "due", "assess", "request",
           "approve", "refuse", "hold", "release", "requests", "holds", "apply_disposed",
           "add_months", "RetentionRefused"]

_ID_MAX = 2 ** 62          # bigger ids are none the catalogue has (SQL integers are 64-bit)


def due(cat, today=None, *, everything=False):
    """What may be disposed of on ``today`` (a date or YYYY-MM-DD; default the UTC day),
    each with its class, expiry and why (status "due": expired, not permanent, no hold;
    ``request`` names a pending request). ``everything``: every recording, whatever its
    status (due, held, kept, not_yet, undated, disposed, partial)."""
    day = day_of(today)
    cat.sync()
    months, _p, _l = settings(cat)
    r = db.recordings.c
    with cat.engine.connect() as conn:
        if everything:
            recs = recordings_where(conn)
        else:                   # the shortest class's cut-off bounds what can be due
            edge = add_months(day, -months["ordinary"])
            cut = int(dt.datetime(edge.year, edge.month, edge.day,
                                  tzinfo=dt.timezone.utc).timestamp() * 1000)
            recs = recordings_where(conn, (r.state == "complete",
                                sa.or_(r.end_ms.is_(None), r.end_ms < cut)))
        rows = assess_rows(cat, conn, recs, day)
    return rows if everything else [x for x in rows if x["status"] == "due"]


def assess(cat, device, segment, today=None):
    """The retention of one recording (as `due` gives it, whatever its status)."""
    cat.sync()
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, device, segment)
        recs = recordings_where(conn, (db.recordings.c.id == rid,))
        return assess_rows(cat, conn, recs, day_of(today))[0]


# -- events --------------------------------------------------------------------------------

def _fresh(cat, conn):
    """True while `Catalogue.act` checks an event about to be appended, False while a log
    entry is replayed (sync, reindex): the rules that depend on the day, the other rows and
    station.toml are checked when the event is made, so that a later change never drops an
    event the log holds (as catalogue.tags does)."""
    return cat.applied(conn) >= cat.archive.log().size


def _request_row(conn, rid):
    return conn.execute(sa.select(db.disposal_requests).where(
        db.disposal_requests.c.id == rid)).mappings().first()


@store.handles("disposal_requested", permission="dispose_request")
class _Requested:
    @staticmethod
    def check(cat, conn, e):
        rq = field(e, "request", str)
        dev, seg = field(e, "device", str), field(e, "segment", int)
        field(e, "reason", str, max_len=TEXT_MAX)
        if not e["reason"].strip():
            raise RetentionRefused(_("a disposal request needs a reason"))
        klass, exp = field(e, "class", str), field(e, "expired_on", str, max_len=10)
        if _request_row(conn, rq) is not None:
            raise RetentionRefused(_("disposal request %(id)s exists already")
                                   % {"id": printable(rq[:64])})
        rid = store.recording_id(conn, dev, seg)
        day = day_of(field(e, "at", str))
        if klass not in CLASSES or day_of(exp) > day:
            raise RetentionRefused(_("disposal request %(id)s: class %(klass)r or expiry "
                                     "%(day)r is not one a request can have")
                                   % {"id": printable(rq[:64]), "klass": klass[:32],
                                      "day": exp})
        if not _fresh(cat, conn):
            return      # replayed: the rules and the station's settings held when it was made
        a = assess_one(cat, conn, rid, day)
        why = refusal(a)
        if why:
            raise RetentionRefused(why)
        if a["request"] is not None:
            raise RetentionRefused(_("recording %(rec)s has a pending disposal request "
                                     "%(id)s") % {"rec": "%s/%s" % (dev, seg),
                                                  "id": a["request"]})
        if (klass, exp) != (a["class"], a["expires_on"]):
            raise RetentionRefused(_("recording %(rec)s is now of class %(klass)s, expired on "
                                     "%(day)s: ask again") % {"rec": "%s/%s" % (dev, seg),
                                                              "klass": a["class"],
                                                              "day": a["expires_on"]})

    @staticmethod
    def apply(cat, conn, i, e):
        rid = store.recording_id(conn, e["device"], e["segment"])
        conn.execute(db.disposal_requests.insert().values(
            id=e["request"], event=i, recording_id=rid,
            reason=e["reason"], retention_class=e["class"], expired_on=e["expired_on"],
            requested_by=e["by"], requested_at=e["at"], state="requested"))


@store.handles("disposal_refused", permission="dispose_approve")
class _Refused:
    @staticmethod
    def check(cat, conn, e):
        rq = field(e, "request", str)
        field(e, "reason", str, max_len=TEXT_MAX)
        row = _request_row(conn, rq)
        if row is None or row["state"] != "requested":
            raise RetentionRefused(_("there is no pending disposal request %(id)s")
                                   % {"id": printable(rq[:64])})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.disposal_requests.update().where(
            db.disposal_requests.c.id == e["request"]).values(
            state="refused", decided_by=e["by"], decided_at=e["at"]))


@store.handles("hold_placed", permission="hold")
class _Held:
    @staticmethod
    def check(cat, conn, e):
        kind = field(e, "kind", str)
        if kind not in HOLD_KINDS:
            raise RetentionRefused(_("a hold is of kind %(kinds)s, not %(kind)r")
                                   % {"kinds": " or ".join(HOLD_KINDS), "kind": kind[:32]})
        reason = field(e, "reason", str, max_len=TEXT_MAX)
        if not reason.strip():
            raise RetentionRefused(_("a hold needs a reason"))
        case = field(e, "case", str, optional=True)
        dev = field(e, "device", str, optional=True)
        seg = field(e, "segment", int, optional=True)
        if (case is None) == (dev is None) or (dev is None) != (seg is None):
            raise RetentionRefused(_("a hold is on one recording (device and segment) or on "
                                     "one case"))
        if dev is not None:
            rid = store.recording_id(conn, dev, seg)
            st = conn.execute(sa.select(db.recordings.c.state).where(
                db.recordings.c.id == rid)).scalar_one()
            if st == "disposed" and _fresh(cat, conn):
                raise RetentionRefused(_("recording %(rec)s was disposed: there is nothing "
                                         "to hold") % {"rec": "%s/%s" % (dev, seg)})

    @staticmethod
    def apply(cat, conn, i, e):
        rid = store.recording_id(conn, e["device"], e["segment"]) if "device" in e else None
        conn.execute(db.holds.insert().values(
            id=i, kind=e["kind"], case_no=e.get("case"), recording_id=rid,
            reason=e["reason"], placed_by=e["by"], placed_at=e["at"]))


@store.handles("hold_released", permission="hold")
class _Released:
    @staticmethod
    def check(cat, conn, e):
        hid = field(e, "hold", int)
        if not 0 <= hid < _ID_MAX:
            raise RetentionRefused(_("there is no active hold %(id)s") % {"id": str(hid)[:40]})
        field(e, "reason", str, max_len=TEXT_MAX)
        row = conn.execute(sa.select(db.holds).where(db.holds.c.id == hid)).mappings().first()
        if row is None or row["released_by"] is not None:
            raise RetentionRefused(_("there is no active hold %(id)d") % {"id": hid})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.holds.update().where(db.holds.c.id == e["hold"]).values(
            released_by=e["by"], released_at=e["at"]))


def apply_disposed(cat, conn, i, e):
    """A `segment_disposed` entry of the log (the archive's, SPEC §9.2) applied to the
    request it names: approved by its approver (the store's sync calls this after the
    clerk events it read, so a reindex has made the request row first)."""
    rq = e.get("request")
    if not isinstance(rq, str):
        return
    conn.execute(db.disposal_requests.update().where(
        db.disposal_requests.c.id == rq, db.disposal_requests.c.state == "requested").values(
        state="approved", decided_by=e.get("approved_by"),
        decided_at=e.get("approved_at") or e.get("at")))


# -- what users do -------------------------------------------------------------------------

def request(cat, user, device, segment, reason) -> str:
    """Ask for the disposal of recording ``device``/``segment`` (it must be due); returns
    the request's id. Another user approves or refuses it."""
    users.require(user, "dispose_request")
    a = assess(cat, device, segment)
    why = refusal(a)
    if why:
        raise RetentionRefused(why)
    rq = "DR-%s-%s" % (dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d"),
                       os.urandom(4).hex())
    cat.act(user, base("disposal_requested", None, None, request=rq, device=device,
                       segment=segment, reason=reason, **{"class": a["class"],
                                                          "expired_on": a["expires_on"]}))
    return rq


def refuse(cat, user, request_id, reason) -> int:
    """Refuse a pending request (an approver's role); returns the log index."""
    return cat.act(user, base("disposal_refused", None, None, request=request_id,
                              reason=reason))


def approve(cat, user, request_id) -> dict:
    """Approve a pending request: another user than its requester, of a role that may
    approve (archive_head, unit_leader, bureau_chief), and not one whose account the
    requester added. The recording must still be due (no hold placed since, no longer
    class). Disposes of its media (Archive.dispose: one signed `segment_disposed` event,
    then the objects leave the archive); returns that event. The decision is taken on the
    signed station log only: the catalogue is rebuilt from it, and a database that differs
    is refused (nothing is disposed). Approving an approved request again finishes a
    removal that stopped part-way and writes nothing new (SPEC §9.2)."""
    from ..archive.common import ArchiveError, utcnow
    from . import check
    users.require(user, "dispose_approve")
    if cat.readonly:
        raise store.CatalogueError(_("the catalogue is open read-only"))
    shown = printable(str(request_id)[:64])
    with cat._locked():
        cat._sync()
        fresh = check.rebuild(cat, unarchived=True)
        try:
            n = check.differences(cat, fresh)
            if n:
                raise RetentionRefused(
                    _("the catalogue database does not match the signed station log "
                      "(%(n)d differences): run `sealcam catalogue check`, then `sealcam "
                      "catalogue reindex`; nothing was disposed") % {"n": n})
            with fresh.engine.connect() as conn:
                row = _request_row(conn, request_id) if isinstance(request_id, str) else None
                if row is None or row["state"] not in ("requested", "approved"):
                    raise RetentionRefused(_("there is no pending disposal request %(id)s")
                                           % {"id": shown})
                if row["state"] == "approved":
                    return _finish(cat, conn, row, shown)
                if row["requested_by"] == user.name:
                    raise store.PermissionRefused(
                        _("user %(name)s asked for disposal %(id)s and may not approve it: "
                          "another user must") % {"name": user.name, "id": shown})
                a = assess_one(fresh, conn, row["recording_id"], day_of(None))
        finally:
            fresh.engine.dispose()
        why = refusal(a)
        if why:
            raise RetentionRefused(why)
        mine = users.logged_users(cat).get(user.name) or {}
        if mine.get("added_by") == row["requested_by"]:
            raise store.PermissionRefused(
                _("user %(name)s was added by %(by)s, who asked for disposal %(id)s, and may "
                  "not approve it: a user the requester did not add must")
                % {"name": user.name, "by": printable(row["requested_by"]), "id": shown})
        req = {"id": row["id"], "by": row["requested_by"], "at": row["requested_at"],
               "reason": row["reason"], "class": a["class"], "expired_on": a["expires_on"]}
        try:
            e = cat.archive.dispose(a["device"], a["segment"], request=req,
                                    approval={"by": user.name, "at": utcnow()})
        except ArchiveError as ex:
            raise store.CatalogueError(str(ex)) from None
        cat._sync()
        with cat.engine.begin() as conn:
            apply_disposed(cat, conn, None, e)
    return e


def _finish(cat, conn, row, shown):
    """An approved request approved again: Archive.dispose with the logged request finishes
    the removal its `segment_disposed` event names (a stop part-way), writing nothing."""
    from ..archive.common import ArchiveError
    rec = conn.execute(sa.select(db.recordings.c.device, db.recordings.c.segment).where(
        db.recordings.c.id == row["recording_id"])).first()
    if rec is None:
        raise RetentionRefused(_("there is no pending disposal request %(id)s")
                               % {"id": shown})
    st = cat.archive.disposal_state()
    done = st.disposed.get(rec.device, {}).get(rec.segment)
    if done is None or done.get("request") != row["id"]:
        raise RetentionRefused(_("there is no pending disposal request %(id)s")
                               % {"id": shown})
    if not cat.archive.disposal_leftovers(rec.device, done, st):
        raise RetentionRefused(_("there is no pending disposal request %(id)s: it was "
                                 "approved and its removal is complete")
                               % {"id": shown})
    req = {"id": row["id"], "by": row["requested_by"], "at": row["requested_at"],
           "reason": row["reason"], "class": row["retention_class"],
           "expired_on": row["expired_on"]}
    approver = done.get("approved_by") or row["decided_by"]
    try:
        return cat.archive.dispose(rec.device, rec.segment, request=req,
                                   approval={"by": approver,
                                             "at": done.get("approved_at") or "-"})
    except ArchiveError as ex:
        raise store.CatalogueError(str(ex)) from None


def _scope(scope):
    """{"case": NO} or {"device": D, "segment": S} from "case:NO", "DEVICE/SEG" or a dict."""
    if isinstance(scope, dict):
        return {k: scope[k] for k in ("case", "device", "segment") if k in scope}
    s = str(scope)
    if s.startswith("case:") and len(s) > 5:
        return {"case": s[5:]}
    dev, _sl, seg = s.rpartition("/")
    if dev and seg.isascii() and seg.isdigit() and len(seg) <= 18:
        return {"device": dev, "segment": int(seg)}
    raise RetentionRefused(_("%(scope)s is neither case:NUMBER nor DEVICE/SEGMENT")
                           % {"scope": printable(repr(s[:80]), backslash=False)})


def hold(cat, user, scope, kind, reason) -> int:
    """Place a hold (kind case or legal) on a recording or a case; returns its id (the
    index of its log entry)."""
    return cat.act(user, base("hold_placed", None, None, kind=kind, reason=reason,
                              **_scope(scope)))


def release(cat, user, hold_id, reason) -> int:
    if type(hold_id) is not int or not 0 <= hold_id < _ID_MAX:
        raise RetentionRefused(_("there is no active hold %(id)s")
                               % {"id": printable(str(hold_id)[:40])})
    return cat.act(user, base("hold_released", None, None, hold=hold_id, reason=reason))


def requests(cat, state=None):
    """The disposal requests (state: requested, approved, refused; None: all), oldest first."""
    cat.sync()
    q, r = db.disposal_requests.c, db.recordings.c
    stmt = sa.select(db.disposal_requests, r.device, r.segment).join_from(
        db.disposal_requests, db.recordings, q.recording_id == r.id).order_by(q.event)
    if state:
        stmt = stmt.where(q.state == state)
    with cat.engine.connect() as conn:
        return [dict(x) for x in conn.execute(stmt).mappings()]


def holds(cat, active=True):
    cat.sync()
    h = db.holds.c
    stmt = sa.select(db.holds).order_by(h.id)
    if active:
        stmt = stmt.where(h.released_by.is_(None))
    with cat.engine.connect() as conn:
        return [dict(x) for x in conn.execute(stmt).mappings()]
