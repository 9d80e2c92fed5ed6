"""Case files (卷宗; R11, R22; 000 §8(2), 001 §16, 004 §19): recordings of several officers,
devices and days, and documents, filed together.

    cat.act(clerk, opened_event("FZ-2023-001", "违法建设 五一路 12号", unit="U-1"))
    cat.act(clerk, linked_event("FZ-2023-001", device="SC-0001", segment=2))
    cat.act(clerk, linked_event("FZ-2023-001", device="SC-0002", segment=5, role="angle"))
    cat.act(clerk, linked_event("FZ-2023-001", document=sha256))
    cat.act(clerk, closed_event("FZ-2023-001"))
    cat.act(head, archived_event("FZ-2023-001", 2023))       # at year end
    show(cat, "FZ-2023-001")          # recordings, documents, numbers, state history
    incident(cat, "SC-0001", 2)       # every recording of the same incident

Events (SPEC §14):
    case_opened    {case_no, title, unit?}            a case number is never reused
    case_linked    {case_no, device, segment, role}   role: primary | angle | other
                   {case_no, document}                a document of the archive
    case_unlinked  {case_no, device, segment | document, reason}
    case_closed    {case_no, reason?}                 the case has ended
    case_archived  {case_no, year}                    filed at the end of ``year``: only a
                                                      closed case, year >= the year it
                                                      closed, and not a year still to come
Links and unlinks change only an open case. A case's state goes open -> closed ->
archived. Each state change is kept as a case_items row of kind "state" (role: opened,
closed, archived), and an unlink as a row of role "unlinked", so `show` gives the whole
history with who and when; the reasons are read from the signed log entries they name.
"""
from __future__ import annotations

import sqlalchemy as sa

from . import confidentiality, db, store
from ..i18n import N_, _
from .events import TEXT_MAX, bad_char, base, field

__all__ = ["ROLES", "opened_event", "linked_event", "unlinked_event", "closed_event",
           "archived_event", "show", "incident", "require_open", "CASE_NO_MAX"]

ROLES = ("primary", "angle", "other")
CASE_NO_MAX = 64
TITLE_MAX = 500
_KINDS = {"recording": N_("recording"), "document": N_("document")}   # named in messages


def _check_case_no(v):
    """``v`` if it is a case number: 1 to CASE_NO_MAX characters in NFKC form, each an
    ASCII letter or digit, a CJK ideograph or one of - _ . / ( ) (attack13 #04: no
    look-alike of another case's number, e.g. U+2010 hyphens or full-width letters)."""
    import unicodedata

    def allowed(c):
        if c.isascii():
            return c.isalnum() or c in "-_./()"
        return unicodedata.name(c, "").startswith(("CJK UNIFIED IDEOGRAPH",
                                                   "CJK COMPATIBILITY IDEOGRAPH"))
    if not isinstance(v, str) or not 1 <= len(v) <= CASE_NO_MAX or v != v.strip() or \
            bad_char(v) is not None or "\u200b" in v or \
            unicodedata.normalize("NFKC", v) != v or not all(allowed(c) for c in v):
        raise store.CatalogueError(
            _("case number %(case)r is not allowed: 1 to %(max)d characters, each a letter "
              "A-Z a-z, a digit 0-9, a Chinese character or - _ . / ( ) (half-width)")
            % {"case": str(v)[:60], "max": CASE_NO_MAX})
    return v


def _case(conn, case_no):
    return conn.execute(sa.select(db.cases).where(db.cases.c.case_no == case_no)
                        ).mappings().first()


_ANYONE = object()      # require_open without a viewer: no R16 check (the caller's own)


def _no_case(case_no):
    return _("no case %(case)s: open it first (`sealcam case open`)") % {"case": case_no}


def require_open(conn, case_no, viewer=_ANYONE):
    """The cases row of ``case_no`` if the case is open, else CatalogueError. With
    ``viewer`` (a users.User, a clearance, None: the default clearance), a case it may not
    see is refused exactly as one that does not exist (R16), before its state is said."""
    _check_case_no(case_no)
    c = _case(conn, case_no)
    if c is None:
        raise store.CatalogueError(_no_case(case_no))
    if viewer is not _ANYONE:
        confidentiality.require_case_visible_to(conn, viewer, case_no, _no_case(case_no))
    if c["state"] != "open":
        raise store.CatalogueError(_("case %(case)s is %(state)s: only an open case changes")
                                   % {"case": case_no, "state": c["state"]})
    return c


def _state_row(conn, i, e, state):
    conn.execute(db.case_items.insert().values(
        event=i, case_no=e["case_no"], kind="state", role=state, current=False,
        by_user=e["by"], at=e["at"]))


# -- events ------------------------------------------------------------------------------

def opened_event(case_no, title, unit=None):
    _check_case_no(case_no)
    return base("case_opened", None, None, case_no=case_no, title=title, unit=unit)


def linked_event(case_no, *, device=None, segment=None, role="primary", document=None):
    if document is not None:
        return base("case_linked", None, None, case_no=case_no, document=document)
    return base("case_linked", None, None, case_no=case_no, device=device, segment=segment,
                role=role)


def unlinked_event(case_no, reason, *, device=None, segment=None, document=None):
    return base("case_unlinked", None, None, case_no=case_no, device=device,
                segment=segment, document=document, reason=reason)


def closed_event(case_no, reason=None):
    return base("case_closed", None, None, case_no=case_no, reason=reason)


def archived_event(case_no, year):
    return base("case_archived", None, None, case_no=case_no, year=year)


@store.handles("case_opened", permission="case")
class _Opened:
    @staticmethod
    def check(cat, conn, e):
        case_no = _check_case_no(field(e, "case_no", str, max_len=CASE_NO_MAX))
        title = field(e, "title", str, max_len=TITLE_MAX)
        if not title.strip() or "\n" in title or "\t" in title:
            raise store.CatalogueError(_("a case needs a title of one line"))
        field(e, "unit", str, optional=True, max_len=64)
        if _case(conn, case_no) is not None:
            # one wording for every number in use, whether the actor may see its case or
            # not (R16): it says the number is taken, never that a hidden case holds it
            raise store.CatalogueError(_("case number %(case)s exists already (a case "
                                         "number is never reused, and not every case is "
                                         "shown to every user): choose another")
                                       % {"case": case_no})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.cases.insert().values(
            case_no=e["case_no"], event=i, title=e["title"], unit=e.get("unit"),
            state="open", opened_by=e["by"], opened_at=e["at"]))
        _state_row(conn, i, e, "opened")


def _target(conn, e):
    """("recording", recording_id) or ("document", sha256) of a link event, checked."""
    doc = field(e, "document", str, optional=True, max_len=64)
    if doc is not None:
        if "device" in e or "segment" in e:
            raise store.CatalogueError(_("a link names a recording or a document, not both"))
        if conn.execute(sa.select(db.documents.c.sha256).where(
                db.documents.c.sha256 == doc)).first() is None:
            raise store.CatalogueError(_("no document %(sha)s in the archive (`sealcam doc "
                                         "add` stores it)") % {"sha": doc[:16]})
        return "document", doc
    return "recording", store.recording_id(conn, field(e, "device", str, max_len=64),
                                           field(e, "segment", int))


def _target_seen(cat, conn, e, who):
    """_target, a recording ``who`` may not see refused as one that does not exist (R16)."""
    kind, ref = _target(conn, e)
    if kind == "recording":
        confidentiality.require_visible_as_missing(conn, who, ref)
    return kind, ref


def _link_where(case_no, kind, ref):
    ci = db.case_items.c
    return sa.and_(ci.case_no == case_no, ci.kind == kind, ci.current.is_(True),
                   ci.recording_id == ref if kind == "recording" else ci.document == ref)


@store.handles("case_linked", permission="case")
class _Linked:
    @staticmethod
    def check(cat, conn, e):
        case_no = field(e, "case_no", str, max_len=CASE_NO_MAX)
        who = confidentiality.log_actor(cat, conn, e)      # R16, as the log states him
        require_open(conn, case_no, who)
        kind, ref = _target_seen(cat, conn, e, who)
        if kind == "recording" and field(e, "role", str, max_len=16) not in ROLES:
            raise store.CatalogueError(_("a recording's role in a case is one of %(roles)s")
                                       % {"roles": ", ".join(ROLES)})
        if conn.execute(sa.select(db.case_items.c.id).where(
                _link_where(case_no, kind, ref))).first() is not None:
            raise store.CatalogueError(_("that %(kind)s is in case %(case)s already")
                                       % {"kind": _(_KINDS[kind]), "case": case_no})

    @staticmethod
    def apply(cat, conn, i, e):
        kind, ref = _target(conn, e)
        if kind == "document":
            role = conn.execute(sa.select(db.documents.c.kind).where(
                db.documents.c.sha256 == ref)).scalar()
        else:
            role = e["role"]
        conn.execute(db.case_items.insert().values(
            event=i, case_no=e["case_no"], kind=kind, role=role, current=True,
            recording_id=ref if kind == "recording" else None,
            document=ref if kind == "document" else None, by_user=e["by"], at=e["at"]))


@store.handles("case_unlinked", permission="case")
class _Unlinked:
    @staticmethod
    def check(cat, conn, e):
        case_no = field(e, "case_no", str, max_len=CASE_NO_MAX)
        who = confidentiality.log_actor(cat, conn, e)      # R16, as the log states him
        require_open(conn, case_no, who)
        reason = field(e, "reason", str, max_len=TEXT_MAX)
        if not reason.strip():
            raise store.CatalogueError(_("taking something out of a case needs a reason"))
        kind, ref = _target_seen(cat, conn, e, who)
        if conn.execute(sa.select(db.case_items.c.id).where(
                _link_where(e["case_no"], kind, ref))).first() is None:
            raise store.CatalogueError(_("that %(kind)s is not in case %(case)s")
                                       % {"kind": _(_KINDS[kind]), "case": case_no})

    @staticmethod
    def apply(cat, conn, i, e):
        kind, ref = _target(conn, e)
        conn.execute(db.case_items.update().where(_link_where(e["case_no"], kind, ref))
                     .values(current=False))
        conn.execute(db.case_items.insert().values(
            event=i, case_no=e["case_no"], kind=kind, role="unlinked", current=False,
            recording_id=ref if kind == "recording" else None,
            document=ref if kind == "document" else None, by_user=e["by"], at=e["at"]))


@store.handles("case_closed", permission="case")
class _Closed:
    @staticmethod
    def check(cat, conn, e):
        require_open(conn, field(e, "case_no", str, max_len=CASE_NO_MAX),
                     confidentiality.log_actor(cat, conn, e))
        field(e, "reason", str, optional=True, max_len=TEXT_MAX)

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.cases.update().where(db.cases.c.case_no == e["case_no"]).values(
            state="closed", closed_by=e["by"], closed_at=e["at"]))
        _state_row(conn, i, e, "closed")


@store.handles("case_archived", permission="case")
class _Archived:
    @staticmethod
    def check(cat, conn, e):
        case_no = _check_case_no(field(e, "case_no", str, max_len=CASE_NO_MAX))
        year = field(e, "year", int)
        c = _case(conn, case_no)
        if c is None or not confidentiality.case_visible(
                conn, confidentiality.log_actor(cat, conn, e), case_no):    # R16
            raise store.CatalogueError(_("no case %(case)s") % {"case": case_no})
        if c["state"] != "closed":
            raise store.CatalogueError(_("case %(case)s is %(state)s: only a closed case is "
                                         "archived (close it first)")
                                       % {"case": case_no, "state": c["state"]})
        closed = int(str(c["closed_at"])[:4])
        now = int(str(e.get("at"))[:4]) if str(e.get("at", ""))[:4].isdigit() else None
        if year < closed or now is None or year > now:
            raise store.CatalogueError(
                _("case %(case)s closed in %(closed)d: it is archived at the end of %(closed)d "
                  "or a later year that has come, not %(year)d")
                % {"case": case_no, "closed": closed, "year": year})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.cases.update().where(db.cases.c.case_no == e["case_no"]).values(
            state="archived", archived_year=e["year"]))
        _state_row(conn, i, e, "archived")


# -- reading ------------------------------------------------------------------------------

def _reason(cat, index):
    e = cat.entry(index)
    r = e.get("reason") if isinstance(e, dict) else None
    return r if isinstance(r, str) else None


def show(cat, case_no, viewer=None):
    """Everything about case ``case_no`` that ``viewer`` (a users.User or a clearance;
    None: the default clearance) may see, or None (no such case, or one above its
    clearance: the same answer, R16): the cases row, "recordings" (device,
    segment, role, start_ms, end_ms, officer, unit, state, numbers, by_user, at),
    "documents" (sha256, kind, name, media_type, size, device, interruption_seq),
    "numbers" (the archive numbers of its recordings), "history" (state changes, links
    and unlinks in log order: event, what, role, device, segment, document, by_user, at,
    reason)."""
    cat.sync()
    ci, r, d, ni = db.case_items.c, db.recordings.c, db.documents.c, db.number_items.c
    with cat.engine.connect() as conn:
        row = _case(conn, case_no)
        if row is None or not confidentiality.case_visible(conn, viewer, case_no):
            return None
        seen = confidentiality.visible_clause(viewer, conn)
        out = dict(row)
        recs = [dict(x) for x in conn.execute(
            sa.select(r.id, r.device, r.segment, ci.role, r.start_ms, r.end_ms, r.officer,
                      r.unit, r.state, ci.by_user, ci.at)
            .join(db.recordings, r.id == ci.recording_id)
            .where(ci.case_no == case_no, ci.kind == "recording", ci.current.is_(True),
                   seen)
            .order_by(r.start_ms, r.device, r.segment)).mappings()]
        nums = set()
        for x in recs:
            x["numbers"] = [n[0] for n in conn.execute(
                sa.select(ni.number).where(ni.recording_id == x.pop("id"))
                .distinct().order_by(ni.number))]
            nums.update(x["numbers"])
        out["recordings"] = recs
        out["numbers"] = sorted(nums)
        out["documents"] = [dict(x) for x in conn.execute(
            sa.select(d.sha256, d.kind, d.name, d.media_type, d.size, d.device,
                      d.interruption_seq, ci.by_user, ci.at)
            .join(db.documents, d.sha256 == ci.document)
            .where(ci.case_no == case_no, ci.kind == "document", ci.current.is_(True))
            .order_by(ci.event)).mappings()]
        hist = [dict(x) for x in conn.execute(
            sa.select(ci.event, ci.kind, ci.role, r.device, r.segment, ci.document,
                      ci.by_user, ci.at)
            .outerjoin(db.recordings, r.id == ci.recording_id)
            .where(ci.case_no == case_no, sa.or_(ci.recording_id.is_(None), seen))
            .order_by(ci.event, ci.id)).mappings()]
    for h in hist:
        h["what"] = h.pop("role") if h["kind"] == "state" else (
            "unlinked" if h["role"] == "unlinked" else "linked")
        h["reason"] = _reason(cat, h["event"]) if h["what"] in ("unlinked", "closed") else None
    out["history"] = hist
    return out


def incident(cat, device, segment, viewer=None):
    """The recordings of the same incident as ``device``/``segment`` (R22) that ``viewer``
    (a users.User or a clearance; None: the default) may see; a recording it may not see
    is refused as one that does not exist (R16). Itself
    excluded: those filed in a case it is filed in, those whose current `case` tag names
    one of its cases, and those overlapping it in time whose current party or place (of
    the whole recording) is the same. Each: device, segment, start_ms, end_ms, officer,
    why (["case FZ-1", "same time and party"])."""
    cat.sync()
    ci, r, t = db.case_items.c, db.recordings.c, db.tags.c
    found = {}

    def add(rows, why):
        for x in rows:
            k = (x["device"], x["segment"])
            if k != (device, segment):
                found.setdefault(k, dict(x, why=[]))["why"].append(why)

    cols = (r.device, r.segment, r.start_ms, r.end_ms, r.officer)
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, device, segment)
        try:
            confidentiality.require_visible(conn, viewer, rid)
        except store.PermissionRefused as e:
            raise store.CatalogueError(str(e)) from None
        me = conn.execute(sa.select(r.start_ms, r.end_ms).where(r.id == rid)).first()
        linked = {x[0] for x in conn.execute(sa.select(ci.case_no).where(
            ci.recording_id == rid, ci.kind == "recording", ci.current.is_(True)))}
        tagged = {x[0] for x in conn.execute(sa.select(t.value).where(
            t.recording_id == rid, t.field == "case", t.current.is_(True)))}
        for case_no in sorted(linked | tagged):
            add(conn.execute(sa.select(*cols).join(db.case_items, ci.recording_id == r.id)
                             .where(ci.case_no == case_no, ci.kind == "recording",
                                    ci.current.is_(True))).mappings(), "case " + case_no)
            add(conn.execute(sa.select(*cols).join(db.tags, t.recording_id == r.id)
                             .where(t.field == "case", t.value == case_no,
                                    t.current.is_(True))).mappings(), "case " + case_no)
        if me is not None and me[0] is not None:
            start, end = me[0], me[1] if me[1] is not None else me[0]
            for f in ("party", "place"):
                mine = [x[0] for x in conn.execute(sa.select(t.value).where(
                    t.recording_id == rid, t.field == f, t.current.is_(True),
                    t.span_from_ms.is_(None)))]
                if not mine:
                    continue
                add(conn.execute(
                    sa.select(*cols).join(db.tags, t.recording_id == r.id).where(
                        t.field == f, t.value.in_(mine), t.current.is_(True),
                        t.span_from_ms.is_(None), r.start_ms <= end,
                        sa.func.coalesce(r.end_ms, r.start_ms) >= start)).mappings(),
                    "same time and " + f)
        hide = [k for k in found if not confidentiality.may_see(
            confidentiality.clearance_of(viewer), confidentiality.level_of_recording(
                conn, store.recording_id(conn, *k)))]
    for k in hide:
        del found[k]
    for v in found.values():
        v["why"] = sorted(set(v["why"]))
    return [found[k] for k in sorted(found, key=lambda k: (found[k]["start_ms"] or 0, k))]
