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
access_refused {request, reason}, access_used {request, action, device?, segment?,
output?}.

Rules (station.toml [access] approval; 001 §21, 002 §16, 003 §11):
    head_and_unit_leader   one archive_head and one unit_leader of the case's unit
    bureau_chief           one bureau_chief
A request on behalf of another agency ("agency") also needs an archive_head (the
custodian). An approver is never the requester nor a user the requester added; a refusal
ends the request; a request is valid until its valid_until (default 7 days).

The decisions are taken on the signed station log, never on the rows: the request, its
approvals and refusals, the approvers' roles and units, the case's unit and recordings are
read from the log's entries (byte search, Catalogue.entries_with) and each entry is vetted
as when it was made; the rows only add a second condition (a recording must also be in the
case's current rows). So a row changed in the database makes no approval, and a use
appended to the log without one is refused on replay (catalogue reindex names it).
"""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from . import db, store, users
from ..i18n import _
from ..records import printable
from .events import NAME_MAX, TEXT_MAX, CatalogueEventError, base, field

__all__ = ["ACTIONS", "TARGET_KINDS", "RULES", "AccessRefused", "request_event", "request",
           "request_id", "approve", "refuse", "state", "authorize", "record_use",
           "register", "register_pdf", "settings", "requests"]

ACTIONS = ("view", "copy", "export", "print")
TARGET_KINDS = ("recording", "case", "number")
RULES = {"head_and_unit_leader": ("archive_head", "unit_leader"),     # 001 §21
         "bureau_chief": ("bureau_chief",)}                             # 002 §16
DEFAULT_RULE = "head_and_unit_leader"
CUSTODIAN = "archive_head"          # other agencies' requests go through it (003 §11)
APPROVERS = ("archive_head", "unit_leader", "bureau_chief")
DEFAULT_VALID_DAYS = 7
VALID_DAYS_MAX = 366
ID_RE = re.compile(r"AR-([0-9]{4})-([0-9]{4,9})")
SERIAL_MAX = 999_999_999
TYPES = ("access_requested", "access_approved", "access_refused", "access_used")
_HEX = re.compile(r"[0-9a-f]{64}")


class AccessRefused(store.PermissionRefused):
    """No valid approval for this access (or not the requester, not this action or
    recording, expired, refused): nothing is handed out."""


def settings(cat):
    """(rule, valid_days) of station.toml [access] (approval, valid_days), checked."""
    sec = (getattr(cat.config, "values", {}) or {}).get("access") or {}
    rule = sec.get("approval", DEFAULT_RULE)
    days = sec.get("valid_days", DEFAULT_VALID_DAYS)
    if rule not in RULES:
        raise store.CatalogueError(_("station.toml [access] approval is %(rule)r: it is one of "
                                     "%(rules)s") % {"rule": str(rule)[:40],
                                                     "rules": ", ".join(RULES)})
    if type(days) is not int or not 1 <= days <= VALID_DAYS_MAX:
        raise store.CatalogueError(_("station.toml [access] valid_days is 1 to %(max)d days")
                                   % {"max": VALID_DAYS_MAX})
    return rule, days


def _time(s):
    """A datetime (UTC) from the ISO time of an event, or None."""
    if not isinstance(s, str) or len(s) > 40:
        return None
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _now():
    from ..archive.common import utcnow
    return utcnow()


def _rec(target):
    """(device, segment) of "DEVICE:SEG" (or DEVICE/SEG), or None."""
    if not isinstance(target, str):
        return None
    for sep in (":", "/"):
        dev, s, seg = target.rpartition(sep)
        if s and dev and seg.isascii() and seg.isdigit() and len(seg) <= 18:
            return dev, int(seg)
    return None


# -- the signed log's entries that decide ---------------------------------------------------

def _logged(cat):
    """The station log's entries that access decisions read, kept per Catalogue and read
    again only where the log grew: {"events": {request: [(index, entry)]}, "cases":
    {case_no: (index, unit)}, "links": {case_no: [(index, linked?, device, segment)]},
    "numbers": {number: (index, [(device, segment)])}}."""
    memo = cat.__dict__.setdefault("_access_logged", {
        "upto": 0, "events": {}, "cases": {}, "links": {}, "numbers": {}})
    lg = cat.archive.log()
    lg._catch_up()
    if memo["upto"] < lg.size:
        for i, e in cat.entries_with(b"access_", b"case_opened", b"case_linked",
                                     b"case_unlinked", b"number_assigned",
                                     start=memo["upto"], stop=lg.size):
            t = e.get("type") if isinstance(e, dict) else None
            if t in TYPES and isinstance(e.get("request"), str):
                memo["events"].setdefault(e["request"], []).append((i, e))
            elif t == "case_opened" and isinstance(e.get("case_no"), str):
                memo["cases"].setdefault(e["case_no"], (i, e.get("unit")))
            elif t in ("case_linked", "case_unlinked") and isinstance(e.get("case_no"), str) \
                    and isinstance(e.get("device"), str) and type(e.get("segment")) is int:
                memo["links"].setdefault(e["case_no"], []).append(
                    (i, t == "case_linked", e["device"], e["segment"]))
            elif t == "number_assigned" and isinstance(e.get("number"), str) and \
                    isinstance(e.get("items"), list):
                memo["numbers"].setdefault(e["number"], (i, [
                    (x.get("device"), x.get("segment")) for x in e["items"]
                    if isinstance(x, dict)]))
        memo["upto"] = lg.size
    return memo


def _index(cat, conn, e):
    """The log index of event ``e``: the log's size while Catalogue.act checks it, else
    (a replay) the first entry equal to it not applied yet."""
    size = cat.archive.log().size
    start = cat.applied(conn)
    if start >= size:
        return size
    for i, x in _logged(cat)["events"].get(e.get("request"), ()):
        if i >= start and x == e:
            return i
    raise store.CatalogueError(_("access event not found in the station log"))


def _user_at(cat, name, i):
    """The user ``name`` as the signed log states it before entry ``i`` (None: none)."""
    return users._state_at(users._logged(cat, i + 1), name, i)


def _needed(rule, agency):
    roles = list(RULES.get(rule, ()))
    if agency and CUSTODIAN not in roles:
        roles.append(CUSTODIAN)
    return roles


def _vet_request(cat, i, e):
    """Why the access_requested entry ``e`` at index ``i`` is not a request (None: it is)."""
    try:
        users.check_actor(cat, i, e, "access_request")
        rid = field(e, "request", str, max_len=32)
        m = ID_RE.fullmatch(rid)
        at = _time(field(e, "at", str))
        until = _time(field(e, "valid_until", str))
        if m is None or at is None or m.group(1) != "%04d" % at.year:
            return _("request number %(id)s is not AR-YEAR-SERIAL of the year it was made") \
                % {"id": printable(rid)}
        if until is None or not at < until <= at + dt.timedelta(days=VALID_DAYS_MAX):
            return _("request %(id)s: valid_until is not a time within %(max)d days of it")\
                % {"id": rid, "max": VALID_DAYS_MAX}
        if field(e, "rule", str) not in RULES:
            return _("request %(id)s names no approval rule of this station") % {"id": rid}
        purpose = field(e, "purpose", str, max_len=TEXT_MAX)
        if not purpose.strip():
            return _("an access request names its purpose")
        acts = field(e, "actions", list, max_len=len(ACTIONS))
        if not acts or any(a not in ACTIONS for a in acts) or len(set(acts)) != len(acts):
            return _("an access request names its actions: %(all)s") % {
                "all": ", ".join(ACTIONS)}
        kind = field(e, "target_kind", str)
        target = field(e, "target", str)
        case_no = field(e, "case_no", str, max_len=64)
        field(e, "agency", str, optional=True)
        if kind not in TARGET_KINDS or (kind == "case" and target != case_no) or \
                (kind == "recording" and _rec(target) is None):
            return _("an access request names a recording (DEVICE:SEGMENT), its case or an "
                     "archive number")
        case = _logged(cat)["cases"].get(case_no)
        if case is None or case[0] >= i:
            return _("no case %(case)s: a request names a case of the archive") % {
                "case": printable(case_no)}
        first = [j for j, x in _logged(cat)["events"].get(rid, ())
                 if x.get("type") == "access_requested"]
        if first and first[0] != i:
            return _("request number %(id)s was given by log entry %(j)d: it is never "
                     "reused") % {"id": rid, "j": first[0]}
    except (store.CatalogueError, CatalogueEventError) as ex:
        return str(ex)
    return None


def _replay(cat, rid, upto):
    """The state of request ``rid`` made by the log's entries before ``upto``, each vetted
    (None: no valid request)."""
    evs = sorted((x for x in _logged(cat)["events"].get(rid, ()) if x[0] < upto),
                 key=lambda x: x[0])
    req = next(((i, e) for i, e in evs if e.get("type") == "access_requested"), None)
    if req is None or _vet_request(cat, *req) is not None:
        return None
    ri, e = req
    st = {"id": rid, "event": ri, "requester": e["by"], "requested_at": e["at"],
          "purpose": e["purpose"], "case_no": e["case_no"], "actions": list(e["actions"]),
          "target_kind": e["target_kind"], "target": e["target"], "agency": e.get("agency"),
          "rule": e["rule"], "valid_until": e["valid_until"],
          "case_unit": _logged(cat)["cases"][e["case_no"]][1],
          "approvals": [], "refusal": None}
    _finish(st)
    for i, d in evs:
        if i > ri and d.get("type") in ("access_approved", "access_refused") and \
                _decision_why(cat, st, i, d) is None:
            _add(st, i, d)
    return _finish(st)


def _finish(st):
    need = _needed(st["rule"], st["agency"])
    have = {a["role"] for a in st["approvals"]}
    st["missing"] = [r for r in need if r not in have]
    st["approved"] = not st["missing"] and st["refusal"] is None
    return st


def _add(st, i, d):
    if d["type"] == "access_refused":
        st["refusal"] = {"by": d["by"], "at": d["at"], "reason": d["reason"], "event": i}
    else:
        st["approvals"].append({"by": d["by"], "role": d["role"], "at": d["at"],
                                "reason": d.get("reason"), "event": i})
    _finish(st)


def _decision_why(cat, st, i, d):
    """Why the decision ``d`` at log index ``i`` on request state ``st`` does not count
    (None: it counts). The same rules when it is made and on every replay."""
    rid = st["id"]
    try:
        users.check_actor(cat, i, d, "access_approve")
        if d["type"] == "access_refused":
            if not field(d, "reason", str, max_len=TEXT_MAX).strip():
                return _("a refusal gives its reason")
        else:
            field(d, "reason", str, optional=True, max_len=TEXT_MAX)
        role = field(d, "role", str) if d["type"] == "access_approved" else None
    except (store.CatalogueError, CatalogueEventError) as ex:
        return str(ex)
    by = d["by"]
    me = _user_at(cat, by, i) or {}
    if st["refusal"] is not None:
        return _("request %(id)s was refused: a refusal ends it") % {"id": rid}
    if st["approved"]:
        return _("request %(id)s is approved already") % {"id": rid}
    at, until = _time(d.get("at")), _time(st["valid_until"])
    if at is None or until is None or at > until:
        return _("request %(id)s expired at %(until)s: ask again") % {
            "id": rid, "until": st["valid_until"]}
    if by == st["requester"]:
        return _("user %(name)s made request %(id)s and may not decide on it: another user "
                 "must") % {"name": by, "id": rid}
    if me.get("added_by") == st["requester"]:
        return _("user %(name)s was added by %(by)s, who made request %(id)s, and may not "
                 "decide on it") % {"name": by, "by": st["requester"], "id": rid}
    if any(a["by"] == by for a in st["approvals"]):
        return _("user %(name)s approved request %(id)s already") % {"name": by, "id": rid}
    need = _needed(st["rule"], st["agency"])
    mine = me.get("role")
    if role is not None and role != mine:
        return _("user %(name)s is %(mine)s, not %(role)s") % {
            "name": by, "mine": mine, "role": str(role)[:32]}
    if mine not in need or (role is not None and mine not in st["missing"]):
        return _("request %(id)s needs the approval of %(roles)s, not of user %(name)s "
                 "(%(mine)s)") % {"id": rid, "roles": " + ".join(st["missing"] or need),
                                  "name": by, "mine": mine}
    if mine == "unit_leader" and (not st["case_unit"] or me.get("unit") != st["case_unit"]):
        return _("user %(name)s leads unit %(unit)s, not %(case_unit)s of case %(case)s: "
                 "only its own unit's leader decides") % {
            "name": by, "unit": me.get("unit") or "-", "case_unit": st["case_unit"] or "-",
            "case": st["case_no"]}
    return None


def _covered(cat, st, upto):
    """The recordings (device, segment) request ``st`` covers as the log states them
    before ``upto``: of its target, those filed in its case."""
    incase = set()
    for i, linked, dev, seg in _logged(cat)["links"].get(st["case_no"], ()):
        if i < upto:
            (incase.add if linked else incase.discard)((dev, seg))
    if st["target_kind"] == "case":
        return incase
    if st["target_kind"] == "recording":
        return {_rec(st["target"])} & incase
    num = _logged(cat)["numbers"].get(st["target"])
    if num is None or num[0] >= upto:
        return set()
    return {x for x in num[1] if isinstance(x[0], str) and type(x[1]) is int} & incase


def _use_why(cat, conn, st, i, e, clearance=True):
    """Why the use ``e`` (at log index ``i``) of request ``st`` is not allowed (None: it
    is)."""
    try:
        action = field(e, "action", str)
        dev = field(e, "device", str, optional=True, max_len=64)
        seg = field(e, "segment", int, optional=True)
        out = field(e, "output", str, optional=True, max_len=64)
    except CatalogueEventError as ex:
        return str(ex)
    if st is None:
        return _("there is no access request %(id)s") % {"id": printable(str(e.get(
            "request"))[:40])}
    rid = st["id"]
    if (dev is None) != (seg is None) or (out is not None and not _HEX.fullmatch(out)):
        return _("an access names one recording (device and segment) and the SHA-256 of "
                 "what was handed out")
    if e.get("by") != st["requester"]:
        return _("request %(id)s is %(requester)s's: only its requester uses it") % {
            "id": rid, "requester": st["requester"]}
    if st["refusal"] is not None:
        return _("request %(id)s was refused by %(by)s") % {"id": rid,
                                                              "by": st["refusal"]["by"]}
    if not st["approved"]:
        return _("request %(id)s is not approved: it still needs %(roles)s") % {
            "id": rid, "roles": " + ".join(st["missing"])}
    at, until = _time(e.get("at")), _time(st["valid_until"])
    if at is None or until is None or at > until:
        return _("request %(id)s expired at %(until)s: ask again") % {
            "id": rid, "until": st["valid_until"]}
    if action not in st["actions"]:
        return _("request %(id)s allows %(actions)s, not %(action)s") % {
            "id": rid, "actions": ", ".join(st["actions"]), "action": printable(action)}
    covered = _covered(cat, st, i)
    wanted = covered if dev is None else {(dev, seg)}
    if not covered or not wanted <= covered:
        return _("request %(id)s does not cover recording %(rec)s") % {
            "id": rid, "rec": printable("%s:%s" % (dev, seg))}
    if conn is None:
        return None
    ci = db.case_items.c
    for d, s in sorted(wanted):             # and the catalogue's rows say so too
        try:
            rec = store.recording_id(conn, d, s)
        except store.CatalogueError as ex:
            return str(ex)
        if conn.execute(sa.select(ci.id).where(
                ci.case_no == st["case_no"], ci.kind == "recording", ci.recording_id == rec,
                ci.current.is_(True))).first() is None:
            return _("request %(id)s does not cover recording %(rec)s") % {
                "id": rid, "rec": printable("%s:%s" % (d, s))}
        if clearance:
            why = _visible_why(cat, conn, e["by"], i, rec)
            if why:
                return why
    return None


def _visible_why(cat, conn, name, i, rec):
    """CONF (host_tools/catalogue/confidentiality.py, when the station has it): may the
    user ``name``, as the log states it at ``i``, see recording ``rec``?"""
    import importlib
    try:
        conf = importlib.import_module("host_tools.catalogue.confidentiality")
    except ModuleNotFoundError as ex:
        if ex.name != "host_tools.catalogue.confidentiality":
            raise
        return None
    check = getattr(conf, "require_visible", None)
    if check is None:
        return None
    st = _user_at(cat, name, i) or {}
    who = users.User(name, st.get("role") or "", st.get("display") or name, "log",
                     st.get("unit"), st.get("clearance"))
    try:
        check(conn, who, rec)
    except store.CatalogueError as ex:
        return str(ex)
    return None


# -- the handlers ---------------------------------------------------------------------------

def _row(conn, rid):
    return conn.execute(sa.select(db.access_requests).where(
        db.access_requests.c.id == rid)).mappings().first()


def _next_id(cat, conn, year):
    prefix = "AR-%04d-" % year
    hi = 0
    for rid in list(_logged(cat)["events"]) + [r[0] for r in conn.execute(
            sa.select(db.access_requests.c.id).where(
                db.access_requests.c.id.like(prefix + "%")))]:
        m = ID_RE.fullmatch(rid)
        if m and m.group(1) == "%04d" % year:
            hi = max(hi, int(m.group(2)))
    if hi >= SERIAL_MAX:
        raise store.CatalogueError(_("no request number is left for %(year)d") % {"year": year})
    return "%s%04d" % (prefix, hi + 1)


@store.handles("access_requested", permission="access_request")
class _Requested:
    @staticmethod
    def check(cat, conn, e):
        i = _index(cat, conn, e)
        if i == cat.archive.log().size:          # being made: number, rule, validity
            at = _time(e["at"])
            days = e.pop("valid_days", None)
            rule, default = settings(cat)
            days = default if days is None else days
            if type(days) is not int or not 1 <= days <= VALID_DAYS_MAX:
                raise store.CatalogueError(_("a request is valid for 1 to %(max)d days")
                                           % {"max": VALID_DAYS_MAX})
            e.setdefault("request", _next_id(cat, conn, at.year))
            e.setdefault("rule", rule)
            e.setdefault("valid_until", (at + dt.timedelta(days=days)).isoformat(
                timespec="milliseconds"))
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
        why = _vet_request(cat, i, e)
        if why:
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


class _Decided:
    @staticmethod
    def check(cat, conn, e):
        rid = field(e, "request", str, max_len=32)
        i = _index(cat, conn, e)
        st = _replay(cat, rid, i)
        if st is None or _row(conn, rid) is None:
            raise store.CatalogueError(_("there is no access request %(id)s") % {
                "id": printable(rid)})
        why = _decision_why(cat, st, i, e)
        if why:
            raise AccessRefused(why)

    @staticmethod
    def apply(cat, conn, i, e):
        st = _replay(cat, e["request"], i + 1)
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


@store.handles("access_used", permission="access_use")
class _Used:
    @staticmethod
    def check(cat, conn, e):
        rid = field(e, "request", str, max_len=32)
        i = _index(cat, conn, e)
        st = _replay(cat, rid, i)
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


def state(cat, request_id, now=None):
    """Request ``request_id`` as the signed log states it (CatalogueError if there is
    none): id, requester, purpose, case_no, actions, target_kind, target, agency, rule,
    state (requested | approved | refused | expired), approvals [{by, role, at, reason}],
    refusal, missing (roles still needed), valid_until, recordings [(device, segment)]."""
    cat.sync()
    size = cat.archive.log().size
    st = _replay(cat, request_id, size) if isinstance(request_id, str) else None
    if st is None:
        raise store.CatalogueError(_("there is no access request %(id)s")
                                   % {"id": printable(str(request_id)[:40])})
    until = _time(st["valid_until"])
    at = _time(now or _now())
    st["state"] = "refused" if st["refusal"] else "expired" if at > until else \
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
    with cat.engine.connect() as conn:
        why = _use_why(cat, conn, st, cat.archive.log().size, e)
    if why:
        raise AccessRefused(why)
    return st


def record_use(cat, user, request_id, action, *, device=None, segment=None,
               output=None) -> int:
    """Put one use on the register (its handler authorizes it again under the lock);
    returns the log index. Hand nothing out unless this returns."""
    return cat.act(user, base("access_used", None, None, request=request_id, action=action,
                              device=device, segment=segment, output=output))


def requests(cat, state_=None):
    """The requests' states, newest first (``state_``: only those in it)."""
    cat.sync()
    with cat.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(db.access_requests.c.id).order_by(
            db.access_requests.c.event.desc()))]
    out = []
    for rid in ids:
        try:
            st = state(cat, rid)
        except store.CatalogueError:
            continue
        if state_ is None or st["state"] == state_:
            out.append(st)
    return out


def _day(s):
    if s is None:
        return None
    try:
        return dt.date.fromisoformat(str(s)).isoformat()
    except ValueError:
        raise store.CatalogueError(_("%(day)s is not a day (YYYY-MM-DD)")
                                   % {"day": printable(str(s)[:20])}) from None


def register(cat, since=None, until=None):
    """Every use on the station log from day ``since`` to day ``until`` (YYYY-MM-DD, both
    included, UTC):
    index, at, requester, action, target (DEVICE:SEG, or the request's target), device,
    segment, output, request_id, purpose, case_no, agency, approvals [{by, role, at,
    reason}], valid (the log's rules allow it) and problem (why not). A use the rules refuse (appended without
    them) is listed with valid False: the register hides nothing the log holds."""
    a, b = _day(since), _day(until)
    cat.sync()
    rows = []
    for rid, evs in _logged(cat)["events"].items():
        for i, e in evs:
            if e.get("type") != "access_used":
                continue
            day = str(e.get("at"))[:10]
            if (a and day < a) or (b and day > b):
                continue
            st = _replay(cat, rid, i)
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


def register_pdf(cat, path, since=None, until=None, *, printed_by=None, overwrite=True):
    """The register from ``since`` to ``until`` as a PDF a supervisor signs (see
    access_cli.write_register_pdf); returns the rows printed."""
    from .access_cli import write_register_pdf
    rows = register(cat, since, until)
    write_register_pdf(cat, path, rows, since, until, printed_by=printed_by,
                       overwrite=overwrite)
    return rows
