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
    custody = _narrowed(desk, user, rep)
    return web.render(request, "report.html", rep=rep, problems=problems, custody=custody,
                      intr=intr, n_intr=len(rep["interruptions"]),
                      late=rep["late_offloads"][:ROWS_MAX],
                      notes=[W.sentence(n, W.NOTE) for n in rep["notes"]],
                      keep=[(k, q[k]) for k in q if q.get(k) and k != "page"][:20])



def _narrowed(desk, user, rep):
    """The report's custody section (and its no_successor problems and note) without the
    cases and holds ``user`` may not know exist (visibility.Seen: the rule of the search
    and case pages): the custody module reports the whole archive."""
    import sqlalchemy as sa
    from ..catalogue import db
    from .visibility import Seen
    custody = rep.get("custody") or None
    if not custody:
        return custody
    every = list(custody.get("without_successor") or [])
    with desk.cat.engine.connect() as conn:
        seen = Seen(conn, user)
        h = db.holds.c
        held = {}
        ids = [it["id"] for it in every if it.get("kind") == "hold"]
        if ids:
            held = {r[0]: r[1] for r in conn.execute(
                sa.select(h.id, h.recording_id).where(h.id.in_(ids)))}
        r = db.recordings.c
        recs = {}
        if any(held.values()):
            recs = {x[0]: (x[1], x[2]) for x in conn.execute(
                sa.select(r.id, r.device, r.segment).where(
                    r.id.in_([v for v in held.values() if v is not None])))}

        def visible(it):
            if it.get("kind") == "case":
                return seen.case(it.get("id"))
            if it.get("case_no") and not seen.case(it["case_no"]):
                return False
            rec = held.get(it.get("id"))
            return rec is None or (rec in recs and seen.recording(*recs[rec]))
        shown = [it for it in every if visible(it)]
    if len(shown) == len(every):
        return custody
    # the no_successor problems are made in the order of without_successor, one each
    ok = iter([visible_ for visible_ in (it in shown for it in every)])
    rep["problems"] = [p for p in rep["problems"]
                       if p.get("kind") != "no_successor" or next(ok, False)]
    rep["notes"] = [_recount(n, len(every) - len(shown)) for n in rep["notes"]]
    rep["notes"] = [n for n in rep["notes"] if n is not None]
    return dict(custody, without_successor=shown)


def _recount(note, hidden):
    """The custody note of a filtered report ("custody: N problem(s) ...") counting only
    what the user may see (None: there is none left to count)."""
    from ..report_custody import MSG_FILTERED
    head, sep, _rest = MSG_FILTERED.partition("%(n)s")
    if not sep or not note.startswith(head):
        return note
    num = note[len(head):].split(" ", 1)[0]
    if not num.isdigit():
        return note
    n = int(num) - hidden
    return MSG_FILTERED % {"n": n} if n > 0 else None
