"""Access requests, approvals and the register (host_tools.catalogue.access, the ACCESS
contract of issue 12): the request form, the list (one's own requests; for approvers,
those waiting for a decision), a request's page with approve / refuse for approvers,
revoke (with its reason) for one who approved it or an archive head, and the
viewing-copy links for its requester, and the register (a table, and its PDF).

Each act is one signed event through the access module; what it refuses (the wrong role,
a request not one's own, an approval the rules do not allow) comes back as a 403 or 400
page naming why."""
from __future__ import annotations

import datetime as _dt
import os
import re
import tempfile

from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from ..i18n import N_, _
from . import web

__all__ = ["requests_page", "request_new", "request_page", "decide", "register_page",
           "register_pdf", "ACTIONS", "TARGET_KINDS"]

ACTIONS = ("view", "copy", "export", "print")
TARGET_KINDS = ("recording", "case", "number")
PURPOSE_MAX = 500
REASON_MAX = 500
RID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
LIST_MAX = 200


def access_module():
    a = web.lazy("catalogue.access")
    if a is None:
        raise web.DeskError(503, _("access requests are not available on this station yet "
                                   "(host_tools/catalogue/access.py is missing)"))
    return a


def _rid(request):
    rid = request.path_params["rid"]
    if not RID_RE.fullmatch(rid):
        raise web.DeskError(400, _("not a request number: %(rid)s") % {"rid": rid[:64]})
    return rid


def _list(desk, user):
    """(mine, waiting): the user's own requests, and (for approvers) those waiting for a
    decision, newest first, each as the access module states it on the log for the user
    (access.requests(viewer=): the requests and recordings it may see); and, of those,
    only what the desk's own rule lets it know exists (visibility.Seen: its clearance, a
    unit leader's unit)."""
    from ..catalogue import users
    from .visibility import Seen
    a = access_module()
    desk.cat.sync()
    every = a.requests(desk.cat, viewer=user)
    mine = [st for st in every if st.get("requester") == user.name][:LIST_MAX]
    waiting = []
    if user.role in users.PERMISSIONS["access_approve"]:
        waiting = [st for st in every if st.get("state") == "requested"][:LIST_MAX]
    with desk.cat.engine.connect() as conn:
        seen = Seen(conn, user)
        mine = [st for st in mine if seen.request(st)]
        waiting = [st for st in waiting if seen.request(st)]
    return mine, waiting


async def requests_page(request, *, status_code=200, error=None):
    from ..catalogue import users
    user = web.need_user(request)
    desk = request.app.state.desk
    mine, waiting = _list(desk, user)
    q = request.query_params
    prefill = {"target_kind": web.field(q, "target_kind", choices=TARGET_KINDS) or
               "recording", "target": web.field(q, "target", max_len=64) or "",
               "case_no": web.field(q, "case_no", max_len=64) or ""}
    return web.render(request, "access.html", status_code=status_code, mine=mine,
                      waiting=waiting, prefill=prefill, actions=ACTIONS,
                      target_kinds=TARGET_KINDS, error=error,
                      max_days=_max_days(desk),
                      approver=user.role in users.PERMISSIONS["access_approve"])


def _max_days(desk):
    """The most days a request may ask for: the station's [access] valid_days (its
    default when the setting is not usable: the access module then refuses the request
    in its own words)."""
    from ..catalogue.store import CatalogueError
    a = access_module()
    try:
        return a.settings(desk.cat)[1]
    except CatalogueError:          # a bad station.toml: a request says why
        return getattr(a, "DEFAULT_VALID_DAYS", 7)


async def request_new(request):
    user = web.need_user(request)
    desk = request.app.state.desk
    a = access_module()
    form = await request.form()
    kind = web.field(form, "target_kind", required=True, choices=TARGET_KINDS,
                     label=_("what"))
    target = web.field(form, "target", max_len=64, label=_("recording, case or number"))
    purpose = web.field(form, "purpose", required=True, max_len=PURPOSE_MAX,
                        label=_("purpose"))
    case_no = web.field(form, "case_no", max_len=64, label=_("case"))
    agency = web.field(form, "agency", max_len=64, label=_("agency"))
    # any whole number: the access module refuses one past the station's [access]
    # valid_days in its own words (the form's max says it beforehand)
    valid = web.number(form, "valid_days", lo=0, hi=99_999)
    actions = [x for x in form.getlist("actions")[:len(ACTIONS)] if x in ACTIONS]
    if not actions:
        raise web.DeskError(400, _("say what you need: view, copy, export or print"))
    if kind == "case":
        target = target or case_no
    if not target:
        raise web.DeskError(400, _("name the recording (DEVICE:SEGMENT), the case or the "
                                   "archive number"))
    _no_hidden_case(desk, user, case_no, target if kind == "case" else None)
    kw = dict(target_kind=kind, target=target, purpose=purpose, case_no=case_no,
              actions=tuple(actions), agency=agency, valid_days=valid)
    if hasattr(a, "request"):
        rid = a.request(desk.cat, user, **kw)
    else:
        rid = a.request_id(desk.cat, desk.cat.act(user, a.request_event(**kw)))
    return web.redirect(request.url_for("access_request", rid=rid))


def _no_hidden_case(desk, user, *case_nos):
    """A case the user may not see is refused as the access module refuses one that does
    not exist (R16: its existence does not leak)."""
    from ..records import printable
    from .visibility import Seen
    with desk.cat.engine.connect() as conn:
        seen = Seen(conn, user)
        for case_no in case_nos:
            if case_no and not seen.case(case_no):
                raise web.DeskError(400, _("no case %(case)s: a request names a case of "
                                           "the archive") % {"case": printable(case_no)})


def _visible_state(desk, user, rid):
    """Request ``rid`` as access.state says for the user (viewer=), if the user may
    know it exists (and visibility.Seen agrees); else the 404 of a request that does not
    exist."""
    from ..catalogue.store import CatalogueError
    from .visibility import Seen
    a = access_module()
    desk.cat.sync()
    try:        # one the user may not see is, to it, one that does not exist
        st = a.state(desk.cat, rid, viewer=user)
    except (CatalogueError, KeyError, LookupError):     # the module's "no such request"
        st = None
    if st is not None:
        with desk.cat.engine.connect() as conn:
            if not Seen(conn, user).request(st):
                st = None
    if st is None:
        raise web.DeskError(404, _("no request %(rid)s") % {"rid": rid})
    return st


def _recordings_of(desk, user, st):
    """The request's recordings the user may see, with what each has."""
    from ..catalogue import store
    from .browse import visible_ids
    out = []
    with desk.cat.engine.connect() as conn:
        ids = {}
        for dev, seg in st.get("recordings") or []:
            try:
                ids[(dev, seg)] = store.recording_id(conn, dev, int(seg))
            except (store.CatalogueError, ValueError, TypeError):
                continue
        seen = visible_ids(conn, user, list(ids.values()))
    for (dev, seg), rid in ids.items():
        if rid in seen:
            out.append({"device": dev, "segment": int(seg)})
    return out


async def request_page(request):
    from ..catalogue import users
    user = web.need_user(request)
    desk = request.app.state.desk
    rid = _rid(request)
    st = _visible_state(desk, user, rid)
    approver = user.role in users.PERMISSIONS["access_approve"]
    if st.get("requester") != user.name and not approver and user.role != "auditor":
        raise web.DeskError(403, _("request %(rid)s is not yours") % {"rid": rid})
    recs = _recordings_of(desk, user, st) if st.get("requester") == user.name else []
    return web.render(request, "request.html", st=st, approver=approver, recs=recs,
                      mine=st.get("requester") == user.name,
                      may_revoke=_may_revoke(user, st))


def _may_revoke(user, st):
    """Whether the page offers ``user`` to revoke request ``st``: one whose approval of it
    counted, or an archive head, while it is neither refused nor revoked (the access
    module judges it again on the log)."""
    from ..catalogue import users
    if user.role not in users.PERMISSIONS["access_approve"]:
        return False
    if st.get("refusal") is not None or st.get("revocation") is not None or \
            st.get("state") in ("refused", "revoked"):
        return False
    return user.role == "archive_head" or any(
        isinstance(ap, dict) and ap.get("by") == user.name for ap in st.get("approvals") or ())


async def decide(request):
    user = web.need_user(request)
    desk = request.app.state.desk
    web.need_permission(user, "access_approve")
    a = access_module()
    rid = _rid(request)
    form = await request.form()
    _visible_state(desk, user, rid)     # one it may not see is no request to decide on
    what = request.path_params["decision"]
    reason = web.field(form, "reason", max_len=REASON_MAX, label=_("reason"))
    if what == "approve":
        a.approve(desk.cat, user, rid, reason)
    elif what == "refuse":
        if not reason:
            raise web.DeskError(400, _("a refusal says why: give a reason"))
        a.refuse(desk.cat, user, rid, reason)
    elif what == "revoke":
        if not reason:
            raise web.DeskError(400, _("a revocation says why: give a reason"))
        a.revoke(desk.cat, user, rid, reason)
    else:
        raise web.DeskError(404, _("no such page"))
    return web.redirect(request.url_for("access_request", rid=rid))


def _register_rows(request, user):
    """The register's entries of the period asked for that ``user`` may know exist
    (access.register(viewer=), then visibility.Seen: its clearance, a unit leader's
    unit)."""
    from .visibility import Seen
    a = access_module()
    desk = request.app.state.desk
    q = request.query_params
    since, until = web.day(q, "from"), web.day(q, "until") or web.day(q, "to")
    desk.cat.sync()
    rows = a.register(desk.cat, since, until, viewer=user)
    with desk.cat.engine.connect() as conn:
        seen = Seen(conn, user)
        rows = [r for r in rows if seen.register_row(r)]
    return rows, since, until


REGISTER_COLUMNS = (("index", N_("log entry")), ("at", N_("time (UTC)")),
                    ("request_id", N_("request")), ("requester", N_("requester")),
                    ("action", N_("action")), ("target", N_("record")),
                    ("purpose", N_("purpose")), ("case_no", N_("case")),
                    ("agency", N_("agency")), ("approvals", N_("approved by")),
                    ("output", N_("handed out (SHA-256)")), ("problem", N_("problem")))


def _word(w):
    """An action or role word as the user's language says it (the catalog knows each of
    them; anything else, e.g. from a hostile row, is shown as it is)."""
    return _(w) if w in _WORDS else str(w)


_WORDS = {"view", "copy", "export", "print", "extract", "archive_head", "unit_leader",
          "bureau_chief", "custodian"}


def _cell(k, v):
    if v is None or v == "":
        return "-"
    if k == "approvals" and isinstance(v, (list, tuple)):
        return ", ".join("%s (%s)" % (a.get("by"), _word(a.get("role")))
                         if isinstance(a, dict) else str(a) for a in v) or "-"
    if k == "action" and isinstance(v, str):
        return _word(v)
    if k == "target" and isinstance(v, str):
        from ..catalogue.recref import show, split
        r = split(v)
        return show(*r) if r else v[:500]
    if k == "output" and isinstance(v, str) and len(v) == 64:
        return v[:12] + "…"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) or "-"
    return str(v)[:500]


def _table(rows):
    return [{"cells": [_cell(k, r.get(k)) for k, _t in REGISTER_COLUMNS],
             "valid": r.get("valid", True) is not False} for r in rows]


async def register_page(request):
    user = web.need_user(request)
    rows, since, until = _register_rows(request, user)
    from ..i18n import ngettext
    return web.render(request, "register.html", cols=REGISTER_COLUMNS, rows=_table(rows),
                      since=since, until=until, count=len(rows),
                      entries=ngettext("%(n)d entry", "%(n)d entries", len(rows))
                      % {"n": len(rows)})


async def register_pdf(request):
    from ..i18n import ngettext
    user = web.need_user(request)
    rows, since, until = _register_rows(request, user)
    desk = request.app.state.desk
    fd, path = tempfile.mkstemp(prefix="sealcam-register-", suffix=".pdf")
    os.close(fd)
    period = "%s - %s" % (since or "...", until or _dt.date.today().isoformat())
    write = web.function("catalogue.access_cli:write_register_pdf")
    if write is not None:       # the rows this user may see, not the module's whole period
        write(desk.cat, path, rows, since, until, printed_by=user.name, overwrite=True)
    else:
        pdfdoc = web.lazy("pdfdoc")
        if pdfdoc is None:
            raise web.DeskError(503, _("PDF output is not available (host_tools/pdfdoc.py "
                                       "is missing)"))
        cols = REGISTER_COLUMNS
        pdfdoc.write_table_pdf(
            path, _("Access register"),
            [_("archive: %(archive)s") % {"archive": desk.archive},
             _("period: %(period)s") % {"period": period},
             _("printed by %(user)s at %(at)s UTC") % {
                 "user": user.name, "at": _dt.datetime.now(_dt.timezone.utc).strftime(
                     "%Y-%m-%d %H:%M")}],
            [_(t) for _k, t in cols], [x["cells"] for x in _table(rows)],
            [ngettext("%(n)d entry", "%(n)d entries", len(rows)) % {"n": len(rows)}],
            signature_lines=(_("checked by (supervisor):"), _("date:")))
    return FileResponse(path, media_type="application/pdf",
                        filename="access-register.pdf",
                        background=BackgroundTask(os.unlink, path))
