"""The compliance report (host_tools.report.build_report, the same as `sealcam report`)
as a page: its problems first, highlighted, then the summary per device and the
interruptions and late offloads (a problem row highlighted), in the user's language
(report_words). The filters are the search page's."""
from __future__ import annotations

from ..i18n import _
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
    try:
        rep = build_report(desk.archive, device=f.device or None, officer=f.officer,
                           since=f.date_from, until=f.date_to, keep=keep)
    except ReportError as e:
        raise web.DeskError(400, str(e)) from None
    problems = [W.sentence(p["message"], W.PROBLEM.get(p["kind"], []))
                for p in rep["problems"]]
    intr = [dict(it, status_word=W.word(it["status"]), reason_word=W.word(it["reason"]),
                 explanation_text=W.sentence(it["explanation"], W.EXPLANATION),
                 bad=it["status"] in BAD) for it in rep["interruptions"][:ROWS_MAX]]
    extra = []
    status_fn = web.backup_status()
    if status_fn is not None:
        try:
            st = status_fn(desk.cat)
            if st.get("overdue"):
                extra.append(_("the last backup is overdue (%(days)s days ago)")
                             % {"days": st.get("days_since", "?")} if st.get("last") else
                             _("no backup has been made"))
        except Exception as e:      # noqa: BLE001 - the report still shows
            extra.append(_("backup status cannot be read: %(error)s") % {"error": str(e)[:200]})
    handover = web.lazy("catalogue.handover")
    if handover is not None and hasattr(handover, "without_successor"):
        try:
            for it in handover.without_successor(desk.cat)[:ROWS_MAX]:
                extra.append(_("no successor: %(item)s") % {"item": _describe(it)})
        except Exception as e:      # noqa: BLE001
            extra.append(_("handovers cannot be read: %(error)s") % {"error": str(e)[:200]})
    return web.render(request, "report.html", rep=rep, problems=problems + extra,
                      intr=intr, n_intr=len(rep["interruptions"]),
                      late=rep["late_offloads"][:ROWS_MAX],
                      notes=[W.sentence(n, W.NOTE) for n in rep["notes"]],
                      keep=[(k, q[k]) for k in q if q.get(k) and k != "page"][:20])


def _describe(it):
    if isinstance(it, dict):
        return ", ".join("%s %s" % (k, v) for k, v in it.items() if v is not None)[:300]
    return str(it)[:300]
