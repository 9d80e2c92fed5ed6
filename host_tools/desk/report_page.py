"""The compliance report (host_tools.report.build_report, the same as `sealcam report`)
as a page: its problems first, highlighted, then the summary per device and the
interruptions and late offloads (a problem row highlighted), and the custody section
(the last backup, what has no successor), in the user's language (report_words). The
filters are the search page's; a user sees only what its clearance reaches (R16)."""
from __future__ import annotations

import inspect

from ..i18n import _  # noqa: F401 - the pages' words are in the template
from . import web
from .browse import filters_of, visible_recordings

__all__ = ["report_page"]

ROWS_MAX = 500          # rows of a section shown (the count says how many there are)
BAD = ("unexplained", "missing")


async def report_page(request):
    from ..catalogue import search
    from .. import report_words as W
    from ..report import build_report
    from ..report_items import ReportError
    user = web.need_user(request)
    desk = request.app.state.desk
    q = request.query_params
    f = filters_of(q)
    keep = None
    catalogue_only = {k: v for k, v in f.given().items()
                      if k not in ("device", "officer", "date_from", "date_to")}
    desk.cat.sync()
    if catalogue_only:
        keep = search.matching(desk.cat.engine, f,
                               retention_types=search.retention_types(desk.cat))
    with desk.cat.engine.connect() as conn:     # R16: what is hidden from the user is
        seen = visible_recordings(conn, user)   # not reported to it either
    if seen is not None:
        keep = seen if keep is None else keep & seen
    kw = {}
    if "catalogue_url" in inspect.signature(build_report).parameters:
        kw["catalogue_url"] = desk.db_url       # the custody section (backups, handover)
    try:
        rep = build_report(desk.archive, device=f.device or None, officer=f.officer,
                           since=f.date_from, until=f.date_to, keep=keep, **kw)
    except ReportError as e:
        raise web.DeskError(400, str(e)) from None
    problems = [W.sentence(p["message"], W.PROBLEM.get(p["kind"], []))
                for p in rep["problems"]]
    intr = [dict(it, status_word=W.word(it["status"]), reason_word=W.word(it["reason"]),
                 explanation_text=W.sentence(it["explanation"], W.EXPLANATION),
                 bad=it["status"] in BAD) for it in rep["interruptions"][:ROWS_MAX]]
    custody = rep.get("custody") or None
    return web.render(request, "report.html", rep=rep, problems=problems, custody=custody,
                      intr=intr, n_intr=len(rep["interruptions"]),
                      late=rep["late_offloads"][:ROWS_MAX],
                      notes=[W.sentence(n, W.NOTE) for n in rep["notes"]],
                      keep=[(k, q[k]) for k in q if q.get(k) and k != "page"][:20])

