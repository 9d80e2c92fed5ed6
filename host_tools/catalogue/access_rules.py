"""The rules of access requests (R15; SPEC §14.9), decided on the signed station log:
the log's entries that decide (requests, decisions, the cases' units and recordings, the
archive numbers' items) read once per Catalogue by a byte search, each vetted as when it
was made. host_tools.catalogue.access makes and applies the events; this module says what
counts.

    st = replay(cat, "AR-2026-0001", upto)      # the request as the entries before upto
    why = decision_why(cat, st, i, event)        # None: the decision at i counts
    why = use_why(cat, conn, st, i, event)       # None: the use at i is allowed
"""
from __future__ import annotations

import datetime as dt
import re
import threading

import sqlalchemy as sa

from . import db, store, users
from ..i18n import N_, _
from ..records import printable
from .events import TEXT_MAX, CatalogueEventError, field

__all__ = ["ACTIONS", "TARGET_KINDS", "RULES", "DEFAULT_RULE", "CUSTODIAN", "APPROVERS",
           "DEFAULT_VALID_DAYS", "VALID_DAYS_MAX", "RECENT_DAYS", "ID_RE", "SERIAL_MAX", "TYPES",
           "AccessRefused", "settings", "needed", "replay", "decision_why", "use_why",
           "covered", "visible_why", "logged", "index_of", "parse_time", "parse_recording"]

ACTIONS = ("view", "copy", "export", "print")
TARGET_KINDS = ("recording", "case", "number")
RULES = {"head_and_unit_leader": ("archive_head", "unit_leader"),     # 001 §21
         "bureau_chief": ("bureau_chief",)}                             # 002 §16
DEFAULT_RULE = "head_and_unit_leader"
CUSTODIAN = "archive_head"          # other agencies' requests go through it (003 §11)
APPROVERS = ("archive_head", "unit_leader", "bureau_chief")
DEFAULT_VALID_DAYS = 7
VALID_DAYS_MAX = 90                 # station.toml [access] valid_days at most (a quarter)
RECENT_DAYS = 30    # a user set up by an approver or the requester this many days before
                    # the request (or after it) approves nothing with that approver / for
                    # that requester (_crony_why)
ID_RE = re.compile(r"AR-([0-9]{4})-([0-9]{4,9})")
SERIAL_MAX = 999_999_999
TYPES = ("access_requested", "access_approved", "access_refused", "access_used",
         "access_revoked")
_HEX = re.compile(r"[0-9a-f]{64}")
_MEMO_LOCK = threading.RLock()


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
    """(device, segment) of "DEVICE:SEG" (or DEVICE/SEG), or None (recref's reading)."""
    from .recref import split
    return split(target)


# -- the signed log's entries that decide ---------------------------------------------------

def _logged(cat):
    """The station log's entries that access decisions read, kept per Catalogue and read
    again only where the log grew: {"events": {request: [(index, entry)]}, "cases":
    {case_no: (index, unit)}, "links": {case_no: [(index, linked?, device, segment)]},
    "held": {(device, segment): [(index, linked?, case_no)]}, "numbers": {number: (index,
    [(device, segment)])}}."""
    memo = cat.__dict__.setdefault("_access_logged", {
        "upto": 0, "events": {}, "cases": {}, "links": {}, "held": {}, "numbers": {}})
    lg = cat.archive.log()
    with _MEMO_LOCK:            # the desk's threads share a Catalogue
        lg._catch_up()
        if memo["upto"] < lg.size:
            _scan(cat, memo, lg.size)
    return memo


def _scan(cat, memo, stop):
    """Read the entries [memo["upto"], stop) into ``memo``."""
    for i, e in cat.entries_with(b"access_", b"case_opened", b"case_linked",
                                 b"case_unlinked", b"number_assigned",
                                 start=memo["upto"], stop=stop):
        t = e.get("type") if isinstance(e, dict) else None
        if t in _OTHERS and not _made_by_a_user(cat, i, e, _OTHERS[t]):
            continue
        if t in TYPES and isinstance(e.get("request"), str):
            memo["events"].setdefault(e["request"], []).append((i, e))
        elif t == "case_opened" and isinstance(e.get("case_no"), str):
            memo["cases"].setdefault(e["case_no"], (i, e.get("unit")))
        elif t in ("case_linked", "case_unlinked") and isinstance(e.get("case_no"), str) \
                and isinstance(e.get("device"), str) and type(e.get("segment")) is int:
            memo["links"].setdefault(e["case_no"], []).append(
                (i, t == "case_linked", e["device"], e["segment"]))
            memo["held"].setdefault((e["device"], e["segment"]), []).append(
                (i, t == "case_linked", e["case_no"]))
        elif t == "number_assigned" and isinstance(e.get("number"), str) and \
                isinstance(e.get("items"), list):
            memo["numbers"].setdefault(e["number"], (i, [
                (x.get("device"), x.get("segment")) for x in e["items"]
                if isinstance(x, dict)]))
    memo["upto"] = stop


# the other modules' entries read here, and the permission their user needed
_OTHERS = {"case_opened": "case", "case_linked": "case", "case_unlinked": "case",
           "number_assigned": "number"}


def _made_by_a_user(cat, i, e, permission):
    """Whether the entry's user could make it at ``i`` (an entry appended past
    Catalogue.act by no user of the log, or one without the role, decides nothing)."""
    try:
        users.check_actor(cat, i, e, permission)
    except (store.CatalogueError, CatalogueEventError):
        return False
    return True


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
        rule = field(e, "rule", str)
        if rule not in RULES:
            return _("request %(id)s names no approval rule of this station") % {"id": rid}
        station_rule = settings(cat)[0]     # the station's, never the requester's (#14)
        if rule != station_rule:
            return _("request %(id)s names the approval rule %(rule)s, not this station's "
                     "(%(station)s): it counts for nothing, ask again") % {
                "id": rid, "rule": rule, "station": station_rule}
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


def _replay(cat, rid, upto, conn=None):
    """The state of request ``rid`` made by the log's entries before ``upto``, each vetted
    (None: no valid request). ``conn``: the catalogue connection of a handler (the
    recordings' units are read with it; else with one of its own)."""
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
          "approvals": [], "refusal": None, "revocation": None}
    st["units"] = _units(cat, st, conn)
    _finish(st)
    for i, d in evs:
        if i <= ri:
            continue
        if d.get("type") in ("access_approved", "access_refused") and \
                _decision_why(cat, st, i, d) is None:
            _add(st, i, d, (_user_at(cat, d["by"], i) or {}).get("unit"))
        elif d.get("type") == "access_revoked" and _revoke_why(cat, st, i, d) is None:
            st["revocation"] = {"by": d["by"], "at": d["at"], "reason": d["reason"],
                                "event": i}
            _finish(st)
    return _finish(st)


def _finish(st):
    need = _needed(st["rule"], st["agency"])
    have = {a["role"] for a in st["approvals"]}
    led = {a.get("unit") for a in st["approvals"] if a["role"] == "unit_leader"}
    st["units_missing"] = [u for u in st["units"] if u not in led] \
        if "unit_leader" in need else []
    st["missing"] = [r for r in need if r not in have or (
        r == "unit_leader" and st["units_missing"])]
    st["approved"] = not st["missing"] and st["refusal"] is None and \
        st.get("revocation") is None
    return st


def _add(st, i, d, unit=None):
    if d["type"] == "access_refused":
        st["refusal"] = {"by": d["by"], "at": d["at"], "reason": d["reason"], "event": i}
    else:
        st["approvals"].append({"by": d["by"], "role": d["role"], "at": d["at"],
                                "reason": d.get("reason"), "event": i, "unit": unit})
    _finish(st)


def needs_text(st):
    """The roles request ``st`` still needs, as a message names them: "archive_head +
    unit_leader (U-1, U-2)"."""
    return " + ".join(
        "%s (%s)" % (r, ", ".join(st["units_missing"])) if r == "unit_leader" and
        st.get("units_missing") else r for r in st["missing"])


def _held_at(cat, rec, upto):
    """The cases holding recording ``rec`` (device, segment) by the log's links before
    ``upto``."""
    held = set()
    for j, linked, case_no in _logged(cat)["held"].get(rec, ()):
        if j < upto:
            (held.add if linked else held.discard)(case_no)
    return held


def _units(cat, st, conn=None):
    """The units whose leaders approve request ``st`` (attack13 #04; never the requester's
    choice): the unit of its case, and of each recording it covered when it was made the
    recording's own unit (recordings.unit: the REC_START's, from the recorder's signed
    ASSIGN; none: only the cases') and the unit of every case that held it then."""
    ri = st["event"]
    recs = _covered(cat, st, ri)
    opened = _logged(cat)["cases"]
    units = {st["case_unit"]}
    for rec in recs:
        for c in _held_at(cat, rec, ri):
            if c in opened and opened[c][0] < ri:
                units.add(opened[c][1])
    if recs:
        r = db.recordings.c
        q = sa.select(r.device, r.segment, r.unit).where(
            r.device.in_(sorted({d for d, _s in recs})))
        if conn is None:
            with cat.engine.connect() as c:
                rows = c.execute(q).all()
        else:
            rows = conn.execute(q).all()
        units |= {u for d, sg, u in rows if (d, sg) in recs}
    return sorted(u for u in units if isinstance(u, str) and u)


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
    if st.get("revocation") is not None:
        return _("request %(id)s was revoked by %(by)s: ask again") % {
            "id": rid, "by": st["revocation"]["by"]}
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
                 "(%(mine)s)") % {"id": rid, "roles": needs_text(st) or " + ".join(need),
                                  "name": by, "mine": mine}
    if mine == "unit_leader" and me.get("unit") not in st["units"]:
        return _("user %(name)s leads unit %(unit)s, not %(units)s (the units of case "
                 "%(case)s, of its recordings and of the cases holding them): only their "
                 "leaders decide") % {
            "name": by, "unit": me.get("unit") or "-", "units": ", ".join(st["units"]) or "-",
            "case": st["case_no"]}
    if mine == "unit_leader" and role is not None and \
            me.get("unit") not in st["units_missing"]:
        return _("request %(id)s has the approval of a leader of unit %(unit)s already: it "
                 "still needs %(roles)s") % {"id": rid, "unit": me.get("unit"),
                                             "roles": needs_text(st)}
    if d["type"] == "access_approved":
        return _crony_why(cat, st, i, by)
    return None


_USER_WHAT = {"user_added": N_("added"), "user_changed": N_("changed (role, unit, clearance, "
                                                             "state or OS account)"),
              "user_password": N_("given a new password")}


_SET_WHAT = {"user_added": N_("added"), "user_changed": N_("changed"),
             "user_password": N_("set the password of")}


def _set_by(cat, st, name, setters, upto, added_ever=False):
    """(setter, log index, event type) of the first user event on user ``name`` before log
    index ``upto`` made by one of ``setters``, after request ``st`` or at most RECENT_DAYS
    before it (``added_ever``: a user_added at any time) (None: none)."""
    if not setters:
        return None
    memo = users._logged(cat, upto)
    made = _time(st["requested_at"])
    since = made - dt.timedelta(days=RECENT_DAYS) if made is not None else None
    for j in memo["idx"].get(name, ()):
        if j >= upto:
            break
        e = cat.entry(j)
        if not isinstance(e, dict) or e.get("by") not in setters:
            continue
        t = _time(e.get("at"))
        if j > st["event"] or since is None or t is None or t >= since or (
                added_ever and e.get("type") == "user_added"):
            return e["by"], j, e.get("type")
    return None


def _crony_why(cat, st, i, by):
    """Why the approval of user ``by`` at log index ``i`` does not count because one
    person could hold two approvals (#01): ``by`` was added, changed or given a password
    by the requester or by another approver of the request, or ``by`` did so to another
    approver, after the request or less than RECENT_DAYS before it (None: it counts).
    The same on every replay: it reads the users' events of the signed log. Nor does it
    count when ``by`` added the requester (at any time) or changed it or gave it a password
    after the request or less than RECENT_DAYS before it (attack13 #01: a sock-puppet
    requester), under every rule."""
    hit = _set_by(cat, st, st["requester"], {by}, i, added_ever=True)
    if hit is not None:
        return _("user %(by)s %(what)s requester %(name)s of request %(id)s (log entry "
                 "%(j)d): an approver never sets up the requester, another user must "
                 "approve") % {
            "by": by, "what": _(_SET_WHAT.get(hit[2], "changed")), "name": st["requester"],
            "id": st["id"], "j": hit[1]}
    others = [a for a in st["approvals"] if a["by"] != by]
    hit = _set_by(cat, st, by, {st["requester"]} | {a["by"] for a in others}, i)
    name = by
    for a in others if hit is None else ():
        hit = _set_by(cat, st, a["by"], {by}, a["event"])
        if hit is not None:
            name = a["by"]
            break
    if hit is None:
        return None
    return _("user %(name)s was %(what)s by %(by)s (log entry %(j)d, less than %(days)d "
             "days before request %(id)s or after it), and %(by)s made or approved that "
             "request: this approval does not count, another user must give it") % {
        "name": name, "what": _(_USER_WHAT.get(hit[2], "changed")), "by": hit[0],
        "j": hit[1], "days": RECENT_DAYS, "id": st["id"]}


def _revoke_why(cat, st, i, d):
    """Why the revocation ``d`` at log index ``i`` of request ``st`` does not count (None:
    it does): made by one whose approval of it counted, or by an archive head, with a
    reason, on a request not refused or revoked already."""
    rid = st["id"]
    try:
        users.check_actor(cat, i, d, "access_approve")
        if not field(d, "reason", str, max_len=TEXT_MAX).strip():
            return _("a revocation gives its reason (--reason)")
    except (store.CatalogueError, CatalogueEventError) as ex:
        return str(ex)
    if st["refusal"] is not None:
        return _("request %(id)s was refused: a refusal ends it") % {"id": rid}
    if st.get("revocation") is not None:
        return _("request %(id)s was revoked by %(by)s already") % {
            "id": rid, "by": st["revocation"]["by"]}
    me = _user_at(cat, d["by"], i) or {}
    if me.get("role") != CUSTODIAN and not any(a["by"] == d["by"] for a in st["approvals"]):
        return _("user %(name)s neither approved request %(id)s nor is an archive head: "
                 "only they revoke it") % {"name": d["by"], "id": rid}
    return None


def _links_at(cat, case_no, upto):
    incase = set()
    for i, linked, dev, seg in _logged(cat)["links"].get(case_no, ()):
        if i < upto:
            (incase.add if linked else incase.discard)((dev, seg))
    return incase


def _covered(cat, st, upto):
    """The recordings (device, segment) request ``st`` covers as the log states them
    before ``upto``: of its target, those filed in its case when the request was made
    (its log entry, st["event"]) and still filed there (#05: a recording filed later is
    not covered by an approval given for the case as it was)."""
    incase = _links_at(cat, st["case_no"], upto)
    if st.get("event") is not None:
        incase &= _links_at(cat, st["case_no"], st["event"])
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
    if st.get("revocation") is not None:
        return _("request %(id)s was revoked by %(by)s: ask again") % {
            "id": rid, "by": st["revocation"]["by"]}
    if not st["approved"]:
        return _("request %(id)s is not approved: it still needs %(roles)s") % {
            "id": rid, "roles": needs_text(st)}
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


def _log_user(cat, name, i):
    """users.User ``name`` as the signed log states it before ``i`` (role, unit, clearance)."""
    st = _user_at(cat, name, i) or {}
    return users.User(name, st.get("role") or "", st.get("display") or name, "log",
                      st.get("unit"), st.get("clearance"))


def _case_hidden_why(cat, conn, name, i, case_no):
    """#02: the refusal of a case that does not exist if user ``name`` (as the log states
    it at ``i``) may not see case ``case_no``, else None."""
    from .confidentiality import case_visible
    if case_visible(conn, _log_user(cat, name, i), case_no):
        return None
    return _("no case %(case)s: a request names a case of the archive") % {
        "case": printable(case_no)}


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


# the names the access module (and copies.py) call these by
replay, decision_why, use_why, covered, visible_why = (_replay, _decision_why, _use_why,
                                                       _covered, _visible_why)
revoke_why = _revoke_why
logged, index_of, parse_time, parse_recording, needed = (_logged, _index, _time, _rec,
                                                         _needed)
