"""Access by approval, on a register (R15; issue 12 item 1; SPEC §14.9): a view, copy,
export or print of recordings needs a request naming its purpose and a case, approved by
the roles the station's rule names; each use is a signed entry of the register.

    rid = request(cat, clerk, target_kind="case", target="FZ-1", case_no="FZ-1",
                  purpose="court hearing", actions=("view",))      # AR-2026-0001
    approve(cat, head, rid); approve(cat, leader, rid)             # the rule is met
    authorize(cat, clerk, rid, "view", "SC-1", 3)                  # or AccessRefused
    record_use(cat, clerk, rid, "view", device="SC-1", segment=3, output=sha256)
    register(cat, "2026-12-01", "2026-12-31")                      # who saw what, why

Events (SPEC §14.9): access_requested {request, purpose, case_no, actions, target_kind,
target, agency?, rule, valid_until}, access_approved {request, role, reason?},
access_refused {request, reason}, access_revoked {request, reason}, access_used {request,
action, device?, segment?, output?}.

Rules (station.toml [access] approval; 001 §21, 002 §16, 003 §11):
    head_and_unit_leader   one archive_head and a unit_leader of each of its units: its
                           case's, and of each recording it covers the recording's own
                           (its REC_START's) and that of each case holding it then
    bureau_chief           one bureau_chief
A request on behalf of another agency ("agency") also needs an archive_head (the
custodian). An approver is never the requester nor a user the requester added, nor one the
requester or the other approver added, changed or gave a password less than RECENT_DAYS
(30) before the request or after it (one person never holds two approvals); a refusal or
a revocation (one who approved it, or an archive head) ends the request; a request is
valid until its valid_until (station.toml [access] valid_days, default 7, at most 90,
never chosen longer by the requester); the station, not the requester, sets its rule and
number; it covers the recordings its case held when it was made (and still holds). A
case the requester may not see (R16) is refused as one that does not exist, and
state/requests/register show a ``viewer`` only the requests and recordings it may see.

The decisions are taken on the signed station log, never on the rows: the request, its
approvals and refusals, the approvers' roles and units, the case's unit and recordings are
read from the log's entries (byte search, Catalogue.entries_with) and each entry is vetted
as when it was made; the rows only add a second condition (a recording must also be in the
case's current rows). So a row changed in the database makes no approval, and a use
appended to the log without one is refused on replay (catalogue reindex names it).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from . import db, store, users
from ..i18n import _
from ..records import printable
from .access_rules import (ACTIONS, APPROVERS, CUSTODIAN, DEFAULT_RULE,  # noqa: F401
                           DEFAULT_VALID_DAYS, ID_RE, RULES, SERIAL_MAX, TARGET_KINDS,
                           TYPES, VALID_DAYS_MAX, AccessRefused, _case_hidden_why, _covered,
                           _decision_why, _index, _logged, _needed, _now, _replay,
                           _revoke_why, _time, _use_why, _rec, _user_at, _vet_request,
                           _visible_why, settings)
from .events import base, field

__all__ = ["ACTIONS", "TARGET_KINDS", "RULES", "AccessRefused", "request_event", "request",
           "request_id", "approve", "refuse", "revoke", "state", "authorize", "record_use",
           "register", "register_pdf", "settings", "requests"]


ID_TRIES = 1000            # request numbers tried past the log's highest

# -- the handlers ---------------------------------------------------------------------------

def _row(conn, rid):
    return conn.execute(sa.select(db.access_requests).where(
        db.access_requests.c.id == rid)).mappings().first()


def _next_id(cat, conn, year):
    """AR-YEAR-NNNN: one more than the highest serial of the year the log's requests
    gave (a number is never given twice, whatever the rows say), past any row that holds
    the number already (a row made in the database alone blocks nothing)."""
    prefix = "AR-%04d-" % year
    hi = 0
    for rid, evs in _logged(cat)["events"].items():
        m = ID_RE.fullmatch(rid)
        if m and m.group(1) == "%04d" % year and any(
                e.get("type") == "access_requested" for _i, e in evs):
            hi = max(hi, int(m.group(2)))
    for serial in range(hi + 1, min(hi + 1 + ID_TRIES, SERIAL_MAX + 1)):
        rid = "%s%04d" % (prefix, serial)
        if _row(conn, rid) is None:
            return rid
    raise store.CatalogueError(_("no request number is free for %(year)d: run `sealcam "
                                 "catalogue check`") % {"year": year})


@store.handles("access_requested", permission="access_request")
class _Requested:
    @staticmethod
    def check(cat, conn, e):
        i = _index(cat, conn, e)
        if i == cat.archive.log().size:          # being made: number, rule, validity
            at = _time(e["at"])
            days = e.pop("valid_days", None)
            rule, most = settings(cat)
            days = most if days is None else days
            if type(days) is not int or not 1 <= days <= most:
                raise store.CatalogueError(_("a request is valid for 1 to %(max)d days "
                                             "(station.toml [access] valid_days)")
                                           % {"max": most})
            given = sorted(k for k in ("request", "rule", "valid_until") if k in e)
            if given:       # the station gives them, never the requester (#14)
                raise store.CatalogueError(_("an access request does not name its %(keys)s: "
                                             "the station gives them") % {
                    "keys": ", ".join(given)})
            e["request"] = _next_id(cat, conn, at.year)
            e["rule"] = rule
            e["valid_until"] = (at + dt.timedelta(days=days)).isoformat(
                timespec="milliseconds")
            if not isinstance(e.get("case_no"), str) or not e["case_no"].strip():
                raise store.CatalogueError(_("an access request names a case (--case)"))
            if not isinstance(e.get("purpose"), str) or not e["purpose"].strip():
                raise store.CatalogueError(_("an access request names its purpose "
                                             "(--purpose)"))
            if not isinstance(e.get("target"), str) or e.get("target_kind") not in \
                    TARGET_KINDS:
                raise store.CatalogueError(_("an access request names a recording "
                                             "(DEVICE:SEGMENT), its case or an archive "
                                             "number"))
        why = _vet_request(cat, i, e) or _case_hidden_why(cat, conn, e["by"], i,
                                                          e["case_no"])
        if why:             # a case the requester may not see: as one that does not exist
            raise store.CatalogueError(why)
        if _row(conn, e["request"]) is not None:
            raise store.CatalogueError(_("request %(id)s exists already") % {
                "id": e["request"]})
        case = conn.execute(sa.select(db.cases.c.unit).where(
            db.cases.c.case_no == e["case_no"])).first()
        if case is None:
            raise store.CatalogueError(_("no case %(case)s: a request names a case of the "
                                         "archive") % {"case": printable(e["case_no"])})
        unit = _logged(cat)["cases"][e["case_no"]][1]
        if "unit_leader" in _needed(e["rule"], e.get("agency")) and not unit:
            raise store.CatalogueError(_("case %(case)s names no unit, so no unit leader can "
                                         "approve access to it (001 §21)")
                                       % {"case": e["case_no"]})
        st = {"target_kind": e["target_kind"], "target": e["target"], "case_no": e["case_no"]}
        if e["target_kind"] == "recording":     # one the requester may not see: none
            why = _visible_why(cat, conn, e["by"], i, store.recording_id(
                conn, *_rec(e["target"])))
            if why:
                raise store.CatalogueError(why)
        if not _covered(cat, st, i):
            raise store.CatalogueError(_("%(kind)s %(target)s has no recording filed in case "
                                         "%(case)s: a request covers the case's recordings")
                                       % {"kind": _(e["target_kind"]),
                                          "target": printable(e["target"]),
                                          "case": e["case_no"]})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.access_requests.insert().values(
            id=e["request"], event=i, requester=e["by"], agency=e.get("agency"),
            purpose=e["purpose"], case_no=e["case_no"], actions=",".join(e["actions"]),
            target_kind=e["target_kind"], target=e["target"], state="requested",
            requested_at=e["at"], valid_until=e["valid_until"]))


def _hidden_now(cat, conn, e, i, st):
    """#02: while a decision is made (not on replay: the levels are the rows'), a request
    on a case its user may not see is, to that user, no request."""
    return i == cat.archive.log().size and _case_hidden_why(
        cat, conn, e["by"], i, st["case_no"]) is not None


def _decided_request(cat, conn, e):
    """(log index, replayed state) of the request a decision or revocation ``e`` names;
    'no access request' when there is none, or none its user may see (#02)."""
    rid = field(e, "request", str, max_len=32)
    i = _index(cat, conn, e)
    st = _replay(cat, rid, i, conn)
    if st is None or _row(conn, rid) is None or _hidden_now(cat, conn, e, i, st):
        raise store.CatalogueError(_("there is no access request %(id)s") % {
            "id": printable(rid)})
    return i, st


class _Decided:
    @staticmethod
    def check(cat, conn, e):
        i, st = _decided_request(cat, conn, e)
        why = _decision_why(cat, st, i, e)
        if why:
            raise AccessRefused(why)

    @staticmethod
    def apply(cat, conn, i, e):
        st = _replay(cat, e["request"], i + 1, conn)
        conn.execute(db.access_decisions.insert().values(
            id=i, request_id=e["request"], decision="refused" if e["type"] ==
            "access_refused" else "approved", role=e.get("role") or (
                _user_at(cat, e["by"], i) or {}).get("role") or "-",
            reason=e.get("reason"), by_user=e["by"], at=e["at"]))
        new = "refused" if st["refusal"] else "approved" if st["approved"] else "requested"
        conn.execute(db.access_requests.update().where(
            db.access_requests.c.id == e["request"]).values(state=new))


store.handles("access_approved", permission="access_approve")(
    type("_Approved", (_Decided,), {}))
store.handles("access_refused", permission="access_approve")(
    type("_Refused", (_Decided,), {}))


@store.handles("access_revoked", permission="access_approve")
class _Revoked:
    """An approval withdrawn (#17): the request uses nothing from here on."""
    @staticmethod
    def check(cat, conn, e):
        i, st = _decided_request(cat, conn, e)
        why = _revoke_why(cat, st, i, e)
        if why:
            raise AccessRefused(why)

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.access_decisions.insert().values(
            id=i, request_id=e["request"], decision="revoked",
            role=(_user_at(cat, e["by"], i) or {}).get("role") or "-",
            reason=e.get("reason"), by_user=e["by"], at=e["at"]))
        conn.execute(db.access_requests.update().where(
            db.access_requests.c.id == e["request"]).values(state="revoked"))


@store.handles("access_used", permission="access_use")
class _Used:
    @staticmethod
    def check(cat, conn, e):
        rid = field(e, "request", str, max_len=32)
        i = _index(cat, conn, e)
        st = _replay(cat, rid, i, conn)
        if st is not None and _row(conn, rid) is None:
            st = None
        why = _use_why(cat, conn, st, i, e)
        if why:
            raise AccessRefused(why)

    @staticmethod
    def apply(cat, conn, i, e):
        rec = store.recording_id(conn, e["device"], e["segment"]) if "device" in e else None
        conn.execute(db.accesses.insert().values(
            id=i, request_id=e["request"], action=e["action"], recording_id=rec,
            output=e.get("output"), by_user=e["by"], at=e["at"]))


# -- what users do --------------------------------------------------------------------------

def request_event(*, target_kind, target, purpose, case_no, actions, agency=None,
                  valid_days=None):
    """An `access_requested` event; Catalogue.act gives it its number (AR-YEAR-SERIAL),
    the station's rule and its valid_until."""
    if isinstance(actions, str):
        actions = [a.strip() for a in actions.split(",") if a.strip()]
    return base("access_requested", None, None, target_kind=target_kind, target=target,
                purpose=purpose, case_no=case_no or None, actions=list(actions or ()),
                agency=agency or None, valid_days=valid_days)


def request_id(cat, index):
    """The request number of the `access_requested` entry at log ``index``."""
    e = cat.entry(index)
    if not isinstance(e, dict) or e.get("type") != "access_requested":
        raise store.CatalogueError(_("log entry %(i)s is not an access request")
                                   % {"i": index})
    return e["request"]


def request(cat, user, **kw):
    """Make a request (request_event's arguments); returns its number."""
    return request_id(cat, cat.act(user, request_event(**kw)))


def approve(cat, user, request_id, reason=None) -> int:
    """Approve request ``request_id`` in the user's role; returns the log index."""
    return cat.act(user, base("access_approved", None, None, request=request_id,
                              role=getattr(user, "role", None), reason=reason or None))


def refuse(cat, user, request_id, reason) -> int:
    return cat.act(user, base("access_refused", None, None, request=request_id,
                              reason=reason))


def revoke(cat, user, request_id, reason) -> int:
    """Withdraw request ``request_id`` (one who approved it, or an archive head; with a
    reason): nothing is used under it from then on. Returns the log index."""
    return cat.act(user, base("access_revoked", None, None, request=request_id,
                              reason=reason))


SEE_ALL = ("archive_head", "bureau_chief", "auditor")    # the register's readers (R15, R17)


def _sees(cat, conn, viewer, st):
    """Whether ``viewer`` (a users.User) may see request ``st`` (#03b, #02): its
    requester, one who decided on it, a leader of one of its units, an archive head,
    bureau chief or auditor; and only if its case is one the viewer's clearance may see."""
    from .confidentiality import case_visible
    if st is None or not case_visible(conn, viewer, st["case_no"]):
        return False
    if viewer.role in SEE_ALL or viewer.name == st["requester"]:
        return True
    if viewer.role == "unit_leader" and viewer.unit and viewer.unit in st["units"]:
        return True
    return any(x and x["by"] == viewer.name
               for x in st["approvals"] + [st["refusal"], st["revocation"]])


def _rec_visible(conn, viewer, dev, seg):
    from .confidentiality import level_of_recording, may_see, clearance_of
    try:
        rec = store.recording_id(conn, dev, seg)
    except store.CatalogueError:
        return False
    return may_see(clearance_of(viewer), level_of_recording(conn, rec))


def _for(cat, conn, viewer, st):
    """``st`` as ``viewer`` may see it (None: not at all): the recordings it may see."""
    if viewer is None:
        return st
    users.require(viewer, "read")
    if not _sees(cat, conn, viewer, st):
        return None
    st["recordings"] = [r for r in st["recordings"] if _rec_visible(conn, viewer, *r)]
    return st


def state(cat, request_id, now=None, viewer=None):
    """Request ``request_id`` as the signed log states it (CatalogueError if there is
    none): id, requester, purpose, case_no, actions, target_kind, target, agency, rule,
    state (requested | approved | refused | expired), approvals [{by, role, at, reason}],
    refusal, missing (roles still needed), valid_until, recordings [(device, segment)]."""
    cat.sync()
    st = _state(cat, request_id, cat.archive.log().size, _time(now or _now()))
    if viewer is not None:          # one it may not see: as one that does not exist
        with cat.engine.connect() as conn:
            st = _for(cat, conn, viewer, st)
    if st is None:
        raise store.CatalogueError(_("there is no access request %(id)s")
                                   % {"id": printable(str(request_id)[:40])})
    return st


def _state(cat, request_id, size, at):
    st = _replay(cat, request_id, size) if isinstance(request_id, str) else None
    if st is None:
        return None
    st["state"] = "refused" if st["refusal"] else "revoked" if st["revocation"] else \
        "expired" if at is None or at > _time(st["valid_until"]) else \
        "approved" if st["approved"] else "requested"
    st["recordings"] = sorted(_covered(cat, st, size))
    return st


def authorize(cat, user, request_id, action, device=None, segment=None) -> dict:
    """The request's state if ``user`` may now ``action`` recording device/segment (None:
    its whole target) under it, else AccessRefused (one line saying why)."""
    users.require(user, "access_use")
    try:
        st = state(cat, request_id)
    except AccessRefused:
        raise
    except store.CatalogueError as ex:
        raise AccessRefused(str(ex)) from None
    e = {"type": "access_used", "request": request_id, "action": action, "by": user.name,
         "at": _now(), "device": device, "segment": segment}
    e = {k: v for k, v in e.items() if v is not None}
    size = cat.archive.log().size
    try:
        users.check_actor(cat, size, e, "access_use")       # an active user, as the log says
    except store.CatalogueError as ex:
        raise AccessRefused(str(ex)) from None
    with cat.engine.connect() as conn:
        why = _use_why(cat, conn, st, size, e)
    if why:
        raise AccessRefused(why)
    return st


def record_use(cat, user, request_id, action, *, device=None, segment=None,
               output=None) -> int:
    """Put one use on the register (its handler authorizes it again under the lock);
    returns the log index. Hand nothing out unless this returns."""
    return cat.act(user, base("access_used", None, None, request=request_id, action=action,
                              device=device, segment=segment, output=output))


def requests(cat, state_=None, limit=None, viewer=None):
    """The requests as the signed log states them, newest first (``state_``: only those
    in that state; ``limit``: at most that many; ``viewer``: only those it may see)."""
    cat.sync()
    size, at = cat.archive.log().size, _time(_now())
    made = sorted(((i, rid) for rid, evs in _logged(cat)["events"].items()
                   for i, e in evs if e.get("type") == "access_requested"), reverse=True)
    out = []
    for _i, rid in made:
        st = _state(cat, rid, size, at)
        if st is not None and st["event"] == _i and (state_ is None or st["state"] == state_):
            if viewer is not None:
                with cat.engine.connect() as conn:
                    st = _for(cat, conn, viewer, st)
                if st is None:
                    continue
            out.append(st)
            if limit is not None and len(out) >= limit:
                break
    return out


def _day(s):
    if s is None:
        return None
    try:
        return dt.date.fromisoformat(str(s)).isoformat()
    except ValueError:
        raise store.CatalogueError(_("%(day)s is not a day (YYYY-MM-DD)")
                                   % {"day": printable(str(s)[:20])}) from None


def register(cat, since=None, until=None, viewer=None):
    """Every use on the station log from day ``since`` to day ``until`` (YYYY-MM-DD, both
    included, UTC), in log order: index, at, requester, action, target (DEVICE:SEG, or
    the request's target), device, segment, output, request_id, purpose, case_no, agency,
    approvals [{by, role, at, reason}] (those that counted before the use), valid (the
    log's rules allow it) and problem (why not). A use the rules refuse (appended past
    them) is listed with valid False: the register hides nothing the log holds (but from
    ``viewer``, a users.User: the uses of requests it may not see, on recordings its
    clearance may not see, or of no request unless it reads the whole register)."""
    a, b = _day(since), _day(until)
    cat.sync()
    if viewer is None:
        return _register(cat, a, b, None, None)
    users.require(viewer, "read")
    with cat.engine.connect() as conn:
        return _register(cat, a, b, viewer, conn)


def _register(cat, a, b, viewer, conn):
    rows = []
    for rid, evs in _logged(cat)["events"].items():
        for i, e in evs:
            if e.get("type") != "access_used":
                continue
            day = str(e.get("at"))[:10]
            if (a and day < a) or (b and day > b):
                continue
            st = _replay(cat, rid, i, conn)
            if viewer is not None and not (
                    _sees(cat, conn, viewer, st) if st is not None else
                    viewer.role in SEE_ALL) or viewer is not None and "device" in e and \
                    not _rec_visible(conn, viewer, e.get("device"), e.get("segment")):
                continue
            why = _use_why(cat, None, st, i, e)
            what = "%s:%s" % (e.get("device"), e.get("segment")) if "device" in e else (
                st and st["target"])
            rows.append({
                "index": i, "at": e.get("at"), "requester": e.get("by"),
                "action": e.get("action"), "target": what, "device": e.get("device"),
                "segment": e.get("segment"), "output": e.get("output"), "request_id": rid,
                "purpose": st and st["purpose"], "case_no": st and st["case_no"],
                "agency": st and st["agency"],
                "approvals": [{k: x[k] for k in ("by", "role", "at", "reason")}
                              for x in (st["approvals"] if st else [])],
                "valid": why is None, "problem": why})
    rows.sort(key=lambda r: r["index"])
    return rows


def register_pdf(cat, path, since=None, until=None, *, printed_by=None, overwrite=True,
                 viewer=None):
    """The register from ``since`` to ``until`` as a PDF a supervisor signs (see
    access_cli.write_register_pdf); returns the rows printed."""
    from .access_cli import write_register_pdf
    rows = register(cat, since, until, viewer=viewer)
    write_register_pdf(cat, path, rows, since, until, printed_by=printed_by,
                       overwrite=overwrite)
    return rows
