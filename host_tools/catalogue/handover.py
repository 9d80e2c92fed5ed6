"""Handover (R9, R21; SPEC §14.13): when an officer or a clerk moves on, the open cases and
the holds they keep go to a named successor, both signing.

    hid = offer(cat, leaving, "zhao.lead", "transferred to another unit")
    accept(cat, successor, hid)         # keeper of each item becomes the successor
    pending(cat)                        # offers not accepted yet
    without_successor(cat)              # items whose keeper is no longer active

Events:
    handover_offered  {from, to, reason, cases: [case_no], holds: [hold id]}
    handover_accepted {handover}        # the offer's log index
    handover_withdrawn {handover, reason}   # a wrong offer taken back before acceptance

Who keeps what: a case's keeper is cases.keeper, its opener (opened_by) until a handover
changes it; a hold's is holds.keeper, its placer (placed_by) until then. An offer lists
open cases and active holds ``from`` keeps, none of them in another pending offer. It is
signed by the one who leaves (``by`` = ``from``); when that user was made inactive without
handing over, an archive head or the bureau chief signs it on their behalf (``by`` names
them, ``from`` the one who left). The successor (``to``) is another active user whose role
may keep what is offered (cases: a role with the `case` permission; holds: `hold`); only
the successor accepts, and acceptance moves to them each listed item its ``from`` still
keeps. An offer not accepted yet is withdrawn by the one who signed it (or ``from``) or
an archive head, with a reason: its items are free to be offered again and it can no
longer be accepted. Every rule is checked again when the log is replayed.

What had no successor: the open cases and active holds whose keeper is an inactive user
(`user set NAME --active no`): the report lists them (host_tools/report_custody.py).
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .events import TEXT_MAX, base, field

__all__ = ["offer_event", "accept_event", "withdraw_event", "offer", "accept", "withdraw",
           "pending", "kept_by",
           "without_successor", "handovers", "ON_BEHALF_ROLES", "ITEMS_MAX"]

ON_BEHALF_ROLES = ("archive_head", "bureau_chief")
ITEMS_MAX = 1000                # cases and holds in one offer
_ID_MAX = (1 << 63) - 1


class HandoverRefused(store.CatalogueError):
    pass


def offer_event(from_user, to_user, reason, cases, holds):
    return base("handover_offered", None, None, **{"from": from_user, "to": to_user,
                                                    "reason": reason, "cases": list(cases),
                                                    "holds": list(holds)})


def accept_event(handover_id):
    return base("handover_accepted", None, None, handover=handover_id)


def withdraw_event(handover_id, reason):
    return base("handover_withdrawn", None, None, handover=handover_id, reason=reason)


def _user(conn, name):
    return conn.execute(sa.select(db.users).where(db.users.c.name == name)).mappings().first()


def _case_keeper():
    return sa.func.coalesce(db.cases.c.keeper, db.cases.c.opened_by)


def _hold_keeper():
    return sa.func.coalesce(db.holds.c.keeper, db.holds.c.placed_by)


def _kept(conn, name):
    """(open case numbers, active hold ids) ``name`` keeps."""
    c, h = db.cases.c, db.holds.c
    cases = [r[0] for r in conn.execute(sa.select(c.case_no).where(
        c.state == "open", _case_keeper() == name).order_by(c.case_no))]
    holds = [r[0] for r in conn.execute(sa.select(h.id).where(
        h.released_by.is_(None), _hold_keeper() == name).order_by(h.id))]
    return cases, holds


def _pending_items(conn, from_user):
    """(cases, holds) of ``from_user``'s offers not accepted yet whose successor is still
    active (an offer to someone who has left since can be made again to another)."""
    cases, holds = set(), set()
    hv, u = db.handovers.c, db.users.c
    for (items,) in conn.execute(
            sa.select(hv["items"]).join(db.users, u.name == hv.to_user).where(
                hv.from_user == from_user, hv.state == "offered", u.active.is_(True))):
        it = json.loads(items)
        cases.update(it.get("cases", ()))
        holds.update(it.get("holds", ()))
    return cases, holds


def _hidden_from(conn, clearance, cases, holds):
    """The first case or hold (named) that a user of ``clearance`` may not see, or None: a
    successor keeps only what it may see (R16)."""
    from . import confidentiality as C
    for x in cases:
        if not C.case_visible(conn, clearance or None, x):
            return _("case %(case)s") % {"case": x}
    h = db.holds.c
    for x in holds:
        r = conn.execute(sa.select(h.case_no, h.recording_id).where(h.id == x)).first()
        if r is None:
            continue
        if r.case_no and not C.case_visible(conn, clearance or None, r.case_no) or \
                r.recording_id is not None and not C.may_see(
                    C.clearance_of(clearance or None), C.level_of_recording(conn, r.recording_id)):
            return _("hold %(hold)d") % {"hold": x}
    return None


def _may_keep(role, cases, holds):
    from .users import PERMISSIONS
    need = ([("case", _("cases"))] if cases else []) + ([("hold", _("holds"))] if holds else [])
    for perm, what in need:
        if role not in PERMISSIONS.get(perm, ()):
            return what
    return None


@store.handles("handover_offered", permission="handover")
class _Offered:
    @staticmethod
    def check(cat, conn, e):
        frm, to = field(e, "from", str), field(e, "to", str)
        reason = field(e, "reason", str, max_len=TEXT_MAX)
        if not reason.strip():
            raise HandoverRefused(_("a handover needs a reason (e.g. transferred, retired)"))
        cases = field(e, "cases", list, max_len=ITEMS_MAX)
        holds = field(e, "holds", list, max_len=ITEMS_MAX)
        if not all(isinstance(x, str) and 0 < len(x) <= 64 for x in cases) or \
                not all(type(x) is int and 0 <= x <= _ID_MAX for x in holds):
            raise HandoverRefused(_("a handover lists case numbers and hold ids"))
        if len(set(cases)) != len(cases) or len(set(holds)) != len(holds):
            raise HandoverRefused(_("a handover lists each case and hold once"))
        if not cases and not holds:
            raise HandoverRefused(_("%(user)s keeps no open case and no active hold: there is "
                                    "nothing to hand over") % {"user": frm})
        leaving = _user(conn, frm)
        if leaving is None:
            raise HandoverRefused(_("no user %(user)s") % {"user": frm})
        by = e.get("by")
        if by != frm:
            signer = _user(conn, by)
            if signer is None or signer["role"] not in ON_BEHALF_ROLES:
                raise store.PermissionRefused(
                    _("only %(user)s hands over what %(user)s keeps (or, once %(user)s is "
                      "inactive, an archive head or the bureau chief on their behalf)")
                    % {"user": frm})
            if leaving["active"]:
                raise store.PermissionRefused(
                    _("%(user)s is still active: %(user)s signs the handover (`sealcam "
                      "handover offer --user %(user)s`)") % {"user": frm})
        succ = _user(conn, to)
        if to == frm or succ is None or not succ["active"]:
            raise HandoverRefused(_("the successor %(to)s must be another active user of this "
                                    "archive") % {"to": to})
        what = _may_keep(succ["role"], cases, holds)
        if what is not None:
            raise HandoverRefused(_("%(to)s (%(role)s) may not keep %(what)s: choose a "
                                    "successor whose role may") % {"to": to,
                                                                   "role": succ["role"],
                                                                   "what": what})
        hidden = _hidden_from(conn, succ.get("clearance"), cases, holds)
        if hidden is not None:
            raise HandoverRefused(_("%(to)s's clearance does not reach %(what)s: a successor "
                                    "must be cleared for what is handed over (`sealcam user "
                                    "set %(to)s --clearance LEVEL`)") % {"to": to,
                                                                         "what": hidden})
        kc, kh = _kept(conn, frm)
        pc, ph = _pending_items(conn, frm)
        for x in cases:
            if x not in kc:
                raise HandoverRefused(_("%(user)s does not keep an open case %(case)s")
                                      % {"user": frm, "case": x})
            if x in pc:
                raise HandoverRefused(_("case %(case)s is in a handover not accepted yet")
                                      % {"case": x})
        for x in holds:
            if x not in kh:
                raise HandoverRefused(_("%(user)s does not keep an active hold %(hold)d")
                                      % {"user": frm, "hold": x})
            if x in ph:
                raise HandoverRefused(_("hold %(hold)d is in a handover not accepted yet")
                                      % {"hold": x})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.handovers.insert().values(
            id=i, from_user=e["from"], to_user=e["to"], reason=e["reason"],
            items=json.dumps({"cases": e["cases"], "holds": e["holds"]}, sort_keys=True),
            state="offered", offered_at=e["at"]))


def _handover(conn, hid):
    return conn.execute(sa.select(db.handovers).where(db.handovers.c.id == hid)
                        ).mappings().first()


def _still_offered(row, hid):
    if row["state"] == "withdrawn":
        raise HandoverRefused(_("handover %(id)d was withdrawn: it can no longer be accepted "
                                "(ask for a new offer)") % {"id": hid})
    if row["state"] != "offered":
        raise HandoverRefused(_("handover %(id)d was accepted already") % {"id": hid})


@store.handles("handover_accepted", permission="handover")
class _Accepted:
    @staticmethod
    def check(cat, conn, e):
        hid = field(e, "handover", int)
        row = _handover(conn, hid) if 0 <= hid <= _ID_MAX else None
        if row is None:
            raise HandoverRefused(_("there is no handover %(id)s") % {"id": str(hid)[:24]})
        _still_offered(row, hid)
        if e.get("by") != row["to_user"]:
            raise store.PermissionRefused(_("only %(to)s, the named successor, accepts "
                                            "handover %(id)d") % {"to": row["to_user"],
                                                                 "id": hid})
        items = json.loads(row["items"])
        kc, kh = _kept(conn, row["from_user"])
        if not set(items["cases"]) & set(kc) and not set(items["holds"]) & set(kh):
            raise HandoverRefused(_("nothing of handover %(id)d is kept by %(user)s any more "
                                    "(closed, released or handed over since)")
                                  % {"id": hid, "user": row["from_user"]})
        succ = _user(conn, row["to_user"])
        what = _may_keep(succ["role"] if succ else None, items["cases"], items["holds"])
        if what is not None:
            raise HandoverRefused(_("%(to)s may no longer keep %(what)s (the role changed)")
                                  % {"to": row["to_user"], "what": what})

    @staticmethod
    def apply(cat, conn, i, e):
        row = _handover(conn, e["handover"])
        items = json.loads(row["items"])
        frm, to = row["from_user"], row["to_user"]
        if items["cases"]:
            conn.execute(db.cases.update().where(
                db.cases.c.case_no.in_(items["cases"]), _case_keeper() == frm)
                .values(keeper=to))
        if items["holds"]:
            conn.execute(db.holds.update().where(
                db.holds.c.id.in_(items["holds"]), db.holds.c.released_by.is_(None),
                _hold_keeper() == frm).values(keeper=to))
        conn.execute(db.handovers.update().where(db.handovers.c.id == e["handover"]).values(
            state="accepted", accepted_event=i, accepted_at=e["at"]))


@store.handles("handover_withdrawn", permission="handover")
class _Withdrawn:
    @staticmethod
    def check(cat, conn, e):
        hid = field(e, "handover", int)
        if not field(e, "reason", str, max_len=TEXT_MAX).strip():
            raise HandoverRefused(_("withdrawing a handover needs a reason (e.g. wrong "
                                    "successor)"))
        row = _handover(conn, hid) if 0 <= hid <= _ID_MAX else None
        if row is None:
            raise HandoverRefused(_("there is no handover %(id)s") % {"id": str(hid)[:24]})
        _still_offered(row, hid)
        by = e.get("by")
        offer_e = cat.entry(hid) or {}
        signer = _user(conn, by)
        if by not in (offer_e.get("by"), row["from_user"]) and (
                signer is None or signer["role"] != "archive_head"):
            raise store.PermissionRefused(
                _("only %(by)s, who offered handover %(id)d, or an archive head withdraws "
                  "it") % {"by": offer_e.get("by") or row["from_user"], "id": hid})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.handovers.update().where(db.handovers.c.id == e["handover"]).values(
            state="withdrawn"))


# -- acting and reading -------------------------------------------------------------------

_EVERY = object()       # the list functions' default: no R16 filter (the caller's own)


def _seen(conn, viewer):
    """(case_ok(case_no), hold_ok(hold id)): what ``viewer`` (a users.User, a clearance,
    None: the default clearance; _EVERY: everything) may see (R16): a case above its
    clearance, and a hold on such a case or on a recording it may not see, do not exist
    for it."""
    if viewer is _EVERY:
        return (lambda _c: True), (lambda _h: True)
    from . import confidentiality
    memo = {}

    def case_ok(case_no):
        if case_no not in memo:
            memo[case_no] = confidentiality.case_visible(conn, viewer, case_no)
        return memo[case_no]

    h, rec = db.holds.c, db.recordings.c
    hidden_recs = sa.select(rec.id).where(sa.not_(confidentiality.visible_clause(viewer,
                                                                                 conn)))
    bad = {r[0] for r in conn.execute(sa.select(h.id).where(
        h.recording_id.is_not(None), h.recording_id.in_(hidden_recs)))}
    cases_of = dict(conn.execute(sa.select(h.id, h.case_no).where(h.case_no.is_not(None))
                                 ).all())

    def hold_ok(hid):
        return hid not in bad and (hid not in cases_of or case_ok(cases_of[hid]))
    return case_ok, hold_ok


def kept_by(cat, name, viewer=_EVERY) -> dict:
    """{"cases": [open case numbers], "holds": [active hold ids]} ``name`` keeps now;
    with ``viewer`` (a users.User, a clearance, None: the default clearance) only what it
    may see (R16)."""
    cat.sync()
    with cat.engine.connect() as conn:
        cases, holds = _kept(conn, name)
        case_ok, hold_ok = _seen(conn, viewer)
        return {"cases": [c for c in cases if case_ok(c)],
                "holds": [x for x in holds if hold_ok(x)]}


def offer(cat, user, to_user, reason, *, from_user=None, cases=None, holds=None) -> int:
    """Offer what ``from_user`` (default: ``user`` itself) keeps to ``to_user``: every open
    case and active hold, or the ``cases`` and ``holds`` given. Returns the handover id
    (the offer's log index)."""
    frm = from_user or user.name
    if cases is None and holds is None:
        k = kept_by(cat, frm)
        with cat.engine.connect() as conn:
            pc, ph = _pending_items(conn, frm)
        cases = [c for c in k["cases"] if c not in pc]
        holds = [h for h in k["holds"] if h not in ph]
    return cat.act(user, offer_event(frm, to_user, reason, cases or [], holds or []))


def accept(cat, user, handover_id) -> int:
    if type(handover_id) is not int or not 0 <= handover_id <= _ID_MAX:
        raise HandoverRefused(_("there is no handover %(id)s") % {"id": str(handover_id)[:24]})
    return cat.act(user, accept_event(handover_id))


def withdraw(cat, user, handover_id, reason) -> int:
    """Withdraw the offer ``handover_id`` (not accepted yet); returns the event's index."""
    if type(handover_id) is not int or not 0 <= handover_id <= _ID_MAX:
        raise HandoverRefused(_("there is no handover %(id)s") % {"id": str(handover_id)[:24]})
    return cat.act(user, withdraw_event(handover_id, reason))


def _rows(cat, where=None, viewer=_EVERY):
    cat.sync()
    stmt = sa.select(db.handovers).order_by(db.handovers.c.id)
    if where is not None:
        stmt = stmt.where(where)
    with cat.engine.connect() as conn:
        out = [dict(r) for r in conn.execute(stmt).mappings()]
        case_ok, hold_ok = _seen(conn, viewer)
        for r in out:
            it = json.loads(r["items"])
            r["items"] = it
            if viewer is not _EVERY:
                it["cases"] = [x for x in it.get("cases", ()) if case_ok(x)]
                it["holds"] = [x for x in it.get("holds", ()) if hold_ok(x)]
    if viewer is not _EVERY:        # a handover of hidden items only is not shown either
        out = [r for r in out if r["items"]["cases"] or r["items"]["holds"]]
    return out


def pending(cat, viewer=_EVERY):
    """The offers not accepted yet (each: id, from_user, to_user, items, reason, ...);
    with ``viewer`` (a users.User, a clearance, None: the default clearance) only the
    items it may see, and no offer of none of them (R16)."""
    return _rows(cat, db.handovers.c.state == "offered", viewer)


def handovers(cat, viewer=_EVERY):
    """Every handover, oldest first; ``viewer`` as for pending."""
    return _rows(cat, viewer=viewer)


def without_successor(cat, viewer=_EVERY) -> list:
    """The open cases and active holds whose keeper is not an active user, each {"kind":
    "case" | "hold", "id", "keeper", "title" (case) | "reason" (hold), "offered_to": the
    successor of a pending offer or None, "handover": its id or None}; with ``viewer`` (as
    for pending) only those it may see (R16)."""
    out = _without_successor(cat)
    if viewer is _EVERY:
        return out
    with cat.engine.connect() as conn:
        case_ok, hold_ok = _seen(conn, viewer)
        return [r for r in out if (case_ok(r["id"]) if r["kind"] == "case"
                                   else hold_ok(r["id"]))]


def _without_successor(cat) -> list:
    cat.sync()
    c, h, u = db.cases.c, db.holds.c, db.users.c
    out = []
    with cat.engine.connect() as conn:
        active = {r[0] for r in conn.execute(sa.select(u.name).where(u.active.is_(True)))}
        offered = {}
        for r in conn.execute(sa.select(db.handovers).where(
                db.handovers.c.state == "offered").order_by(db.handovers.c.id)).mappings():
            if r["to_user"] not in active:      # the successor left too: no successor
                continue
            it = json.loads(r["items"])
            for x in it.get("cases", ()):
                offered[("case", x)] = (r["to_user"], r["id"])
            for x in it.get("holds", ()):
                offered[("hold", x)] = (r["to_user"], r["id"])
        for r in conn.execute(sa.select(c.case_no, c.title, _case_keeper().label("k")).where(
                c.state == "open").order_by(c.case_no)):
            if r[2] not in active:
                to, hid = offered.get(("case", r[0]), (None, None))
                out.append({"kind": "case", "id": r[0], "keeper": r[2], "title": r[1],
                            "offered_to": to, "handover": hid})
        for r in conn.execute(sa.select(h.id, h.reason, h.case_no, _hold_keeper().label("k"))
                              .where(h.released_by.is_(None)).order_by(h.id)):
            if r[3] not in active:
                to, hid = offered.get(("hold", r[0]), (None, None))
                out.append({"kind": "hold", "id": r[0], "keeper": r[3], "reason": r[1],
                            "case_no": r[2], "offered_to": to, "handover": hid})
    return out
