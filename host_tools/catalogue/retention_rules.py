"""The rules of retention (R12; host_tools.catalogue.retention uses them): the classes, a
recording's expiry, the holds that keep it, and what its assessment says on a given day.
See host_tools/catalogue/retention.py for the whole story; nothing here writes."""
from __future__ import annotations

import calendar
import datetime as dt

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from ..records import printable

__all__ = ["CLASSES", "LONG_TERM_MONTHS", "HOLD_KINDS", "RetentionRefused", "add_months",
           "day_of", "settings", "assess_rows", "recordings_where", "assess_one", "refusal"]

CLASSES = ("ordinary", "long_term", "permanent")        # shortest first: the longest wins
LONG_TERM_MONTHS = 120      # until the station's [retention] long_term_months says otherwise
HOLD_KINDS = ("case", "legal")
_CHUNK = 500                # recording ids per IN (...) of a query


class RetentionRefused(store.CatalogueError):
    """A retention action that may not be done (one line: which recording, why)."""


# -- dates and classes ---------------------------------------------------------------------

def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` + ``months`` calendar months (the 31st becomes the month's last day)."""
    y, m = divmod(day.month - 1 + months, 12)
    y += day.year
    if y < 1:
        return dt.date.min
    if y > 9998:            # far enough: the day after stays a date
        return dt.date(9998, 12, 31)
    return dt.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def day_of(today) -> dt.date:
    if today is None:
        return dt.datetime.now(dt.timezone.utc).date()
    if isinstance(today, dt.datetime):
        return today.date()
    if isinstance(today, dt.date):
        return today
    try:
        day = dt.date.fromisoformat(str(today)[:10])
    except ValueError:
        raise RetentionRefused(_("%(day)s is not a date (YYYY-MM-DD)")
                               % {"day": printable(repr(str(today)[:40]), backslash=False)}
                               ) from None
    if not 1000 <= day.year <= 9000:
        raise RetentionRefused(_("%(day)s is out of range: a day from 1000 to 9000")
                               % {"day": day.isoformat()})
    return day


def settings(cat):
    r = cat.config.values.get("retention", {})
    months = {"ordinary": int(r.get("ordinary_months", 24)),
              "long_term": int(r.get("long_term_months", LONG_TERM_MONTHS)),
              "permanent": None}
    return months, set(r.get("permanent_event_types", ())), \
        set(r.get("long_term_event_types", ()))


def _base_day(rec):
    """The UTC day retention counts from: the recording's end, else its start, else when
    the station stored it; None if nothing dates it."""
    for k in ("end_ms", "start_ms"):
        v = rec.get(k)
        if type(v) is int and 0 < v < 1 << 47:
            return dt.datetime.fromtimestamp(v / 1000, dt.timezone.utc).date()
    s = rec.get("first_stored_at")
    try:
        return dt.date.fromisoformat(s[:10]) if isinstance(s, str) else None
    except ValueError:
        return None


def assess_rows(cat, conn, recs, today):
    """[{device, segment, recording_id, class, why, expires_on, holds, request, status}] of
    the recordings ``recs`` (recordings rows as dicts) on ``today``. status: due (may go),
    held, kept (permanent), not_yet, undated, disposed, partial."""
    months, perm_types, long_types = settings(cat)
    ids = [r["id"] for r in recs]
    tg, cases = {}, {}
    t, ci = db.tags.c, db.case_items.c
    for k in range(0, len(ids), _CHUNK):
        part = ids[k:k + _CHUNK]
        for rid, f, v, ev, by in conn.execute(sa.select(
                t.recording_id, t.field, t.value, t.event, t.by_user).where(
                t.recording_id.in_(part), t.current.is_(True),
                t.field.in_(("event_type", "retention_class", "case")))):
            tg.setdefault(rid, []).append((f, v, ev, by))
        for rid, case_no in conn.execute(sa.select(ci.recording_id, ci.case_no).where(
                ci.recording_id.in_(part), ci.current.is_(True), ci.kind == "recording")):
            cases.setdefault(rid, set()).add(case_no)
    h = db.holds.c
    active = [dict(r) for r in conn.execute(sa.select(db.holds).where(
        h.released_by.is_(None)).order_by(h.id)).mappings()]
    by_rec, by_case = {}, {}
    for x in active:
        if x["recording_id"] is not None:
            by_rec.setdefault(x["recording_id"], []).append(x)
        if x["case_no"] is not None:
            by_case.setdefault(x["case_no"], []).append(x)
    cs = db.cases.c
    open_cases = {r[0] for r in conn.execute(sa.select(cs.case_no).where(cs.state == "open"))}
    q = db.disposal_requests.c
    pending = {r[0]: r[1] for r in conn.execute(sa.select(q.recording_id, q.id).where(
        q.state == "requested"))}
    out = []
    for r in recs:
        rid = r["id"]
        klass, why = "ordinary", [_("ordinary: kept %(n)d months") % {"n": months["ordinary"]}]

        def more(c, reason):
            nonlocal klass
            why.append(reason)
            if CLASSES.index(c) > CLASSES.index(klass):
                klass = c
        my_cases = set(cases.get(rid, ()))
        for f, v, ev, by in sorted(tg.get(rid, ()), key=lambda x: x[2]):
            if f == "retention_class" and v in CLASSES and v != "ordinary":
                more(v, _("%(klass)s: proposed by %(by)s (log entry %(ev)d)")
                     % {"klass": v, "by": by, "ev": ev})
            elif f == "event_type" and v in perm_types:
                more("permanent", _("permanent: event type %(type)s (log entry %(ev)d)")
                     % {"type": v, "ev": ev})
            elif f == "event_type" and v in long_types:
                more("long_term", _("long_term: event type %(type)s (log entry %(ev)d)")
                     % {"type": v, "ev": ev})
            elif f == "case":
                my_cases.add(v)
        for c in sorted(my_cases):       # R12: case evidence is kept with its case file
            more("permanent", _("permanent: case evidence, filed in case %(case)s")
                 % {"case": c})
        if (r.get("marks_important") or 0) > 0:
            more("permanent", _("permanent: %(n)d IMPORTANT mark(s) propose it")
                 % {"n": r["marks_important"]})
        held = list(by_rec.get(rid, ()))
        for c in sorted(my_cases):
            held += by_case.get(c, [])
        held.sort(key=lambda x: x["id"])
        held += [{"kind": "case", "id": None, "case_no": c, "placed_by": None,
                  "placed_at": None, "open": True} for c in sorted(my_cases & open_cases)]
        base_day = _base_day(r)
        expires = None
        if months.get(klass) is not None and base_day is not None:
            expires = add_months(base_day, months[klass]) + dt.timedelta(days=1)
        if r["state"] == "disposed":
            status = "disposed"
        elif r["state"] != "complete":
            status = "partial"
        elif held:
            status = "held"
        elif klass == "permanent":
            status = "kept"
        elif expires is None:
            status = "undated"
        elif today < expires:
            status = "not_yet"
        else:
            status = "due"
        for x in held:
            if x.get("open"):
                why.append(_("held: filed in the open case %(case)s (kept with the case file "
                             "while the case is open)") % {"case": x["case_no"]})
            else:
                why.append(_("held: %(kind)s hold %(id)d by %(by)s at %(at)s (%(reason)s)")
                           % {"kind": x["kind"], "id": x["id"], "by": x["placed_by"],
                              "at": x["placed_at"], "reason": x["reason"]})
        out.append({"device": r["device"], "segment": r["segment"], "recording_id": rid,
                    "class": klass, "why": why,
                    "expires_on": expires.isoformat() if expires else None,
                    "holds": [x["id"] if x["id"] is not None else "case:" + x["case_no"]
                              for x in held], "request": pending.get(rid),
                    "status": status})
    return out


def recordings_where(conn, where=()):
    return [dict(r) for r in conn.execute(sa.select(db.recordings).where(*where).order_by(
        db.recordings.c.device, db.recordings.c.segment)).mappings()]



def assess_one(cat, conn, rid, day):
    return assess_rows(cat, conn, recordings_where(conn, (db.recordings.c.id == rid,)), day)[0]


def refusal(a):
    """Why the assessed recording ``a`` may not go (one line), or None."""
    name = "%s/%s" % (a["device"], a["segment"])
    if a["status"] == "due":
        return None
    if a["status"] == "held":
        return _("recording %(rec)s is held (hold %(ids)s): it cannot be disposed until the "
                 "hold is released") % {"rec": name, "ids": ", ".join(map(str, a["holds"]))}
    if a["status"] == "kept":
        return _("recording %(rec)s is kept permanently (%(why)s)") % {
            "rec": name, "why": "; ".join(a["why"][1:])}
    if a["status"] == "not_yet":
        return _("recording %(rec)s is kept until %(day)s (class %(klass)s)") % {
            "rec": name, "day": a["expires_on"], "klass": a["class"]}
    return _("recording %(rec)s cannot be disposed (%(status)s)") % {
        "rec": name, "status": a["status"]}
