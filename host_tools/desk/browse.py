"""The search page (the filters of `sealcam search`, a page of results at a time) and the
case page (cases.show). A record the user's clearance does not reach is not listed at
all (confidentiality, when that module is there)."""
from __future__ import annotations

import sqlalchemy as sa

from ..i18n import _
from . import web

__all__ = ["search_page", "case_page", "FILTERS", "visible_ids"]

TEXT_FILTERS = ("device", "officer", "party", "place", "event_type", "case",
                "archive_number", "item_class", "note")
MAX_PAGE = 10_000


def _choices():
    from ..catalogue import search
    return {"interruption": search.INTERRUPTION, "mark": tuple(search.MARKS),
            "state": search.STATES, "retention": search.RETENTION}


FILTERS = TEXT_FILTERS + ("from", "to", "interruption", "mark", "state", "retention")


def filters_of(q):
    """search.Filters from the query string (bounded like the command's options)."""
    from ..catalogue import search
    kw = {k: web.field(q, k, max_len=search.MAX_TEXT) for k in TEXT_FILTERS}
    for k, allowed in _choices().items():
        kw[k] = web.field(q, k, choices=allowed)
    dev = kw.pop("device")
    f = search.Filters(device=[dev] if dev else [], date_from=web.day(q, "from"),
                       date_to=web.day(q, "to"), **kw)
    try:
        return f.checked()
    except search.SearchError as e:
        raise web.DeskError(400, str(e)) from None


def visible_ids(conn, user, ids):
    """The ids among ``ids`` (recordings) ``user`` may know exist (all of them when the
    confidentiality module is not there)."""
    from ..catalogue import db
    conf = web.lazy("catalogue.confidentiality")
    if conf is None or not ids or not hasattr(conf, "visible_clause"):
        return set(ids)
    return {r[0] for r in conn.execute(sa.select(db.recordings.c.id).where(
        db.recordings.c.id.in_(list(ids)), conf.visible_clause(user, conn)))}


def visible_recordings(conn, user):
    """{(device, segment)} of the recordings ``user`` may see, or None when nothing is
    hidden from it (the report then needs no narrowing)."""
    from ..catalogue import db
    conf = web.lazy("catalogue.confidentiality")
    if conf is None or not hasattr(conf, "visible_clause"):
        return None
    cond = conf.visible_clause(user, conn)
    if cond is sa.true() or str(cond) == "true":
        return None
    r = db.recordings.c
    return {(d, s) for d, s in conn.execute(sa.select(r.device, r.segment).where(cond))}


async def search_page(request):
    from ..catalogue import search
    user = web.need_user(request)
    desk = request.app.state.desk
    q = request.query_params
    f = filters_of(q)
    page = web.number(q, "page", lo=1, hi=MAX_PAGE, default=1)
    desk.cat.sync()
    with desk.cat.engine.connect() as conn:
        rows = search.search(conn, f, web.PAGE + 1, (page - 1) * web.PAGE,
                             retention_types=search.retention_types(desk.cat), viewer=user)
        more = len(rows) > web.PAGE
        rows = rows[:web.PAGE]
        seen = visible_ids(conn, user, [r["id"] for r in rows])
    rows = [r for r in rows if r["id"] in seen]
    keep = [(k, q[k]) for k in FILTERS if q.get(k)]
    return web.render(request, "search.html", rows=rows, page=page, more=more,
                      given={k: v for k, v in keep}, keep=keep, choices=_choices(),
                      text_filters=TEXT_FILTERS, iso=web.iso,
                      filters_used=bool(f.given()))


async def case_page(request):
    from ..catalogue import cases
    user = web.need_user(request)
    desk = request.app.state.desk
    case_no = request.path_params["case_no"]
    if len(case_no) > 64:
        raise web.DeskError(400, _("a case number has at most %(n)d characters") % {"n": 64})
    c = cases.show(desk.cat, case_no, viewer=user)
    conf = web.lazy("catalogue.confidentiality")
    if c is not None and conf is not None and hasattr(conf, "level_of_case"):
        from ..catalogue.confidentiality_levels import may_see
        with desk.cat.engine.connect() as conn:
            level = conf.level_of_case(conn, case_no)
        if not may_see(user.clearance, level):
            c = None
    if c is None:
        raise web.DeskError(404, _("no case %(case)s") % {"case": case_no})
    with desk.cat.engine.connect() as conn:
        from ..catalogue import store
        ids = {}
        for r in c["recordings"]:
            try:
                ids[(r["device"], r["segment"])] = store.recording_id(conn, r["device"],
                                                                      r["segment"])
            except store.CatalogueError:
                pass
        seen = visible_ids(conn, user, list(ids.values()))
    c["recordings"] = [r for r in c["recordings"]
                       if ids.get((r["device"], r["segment"])) in seen]
    return web.render(request, "case.html", case=c, iso=web.iso)
