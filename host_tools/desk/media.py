"""Viewing copies played in the page (the COPIES and ACCESS contracts of issue 12).

POST /view/{rid}/{device}/{segment} (a form of the request's page, with its CSRF token):
asks copies.make_view_copy for the request's viewing copy of that recording (it
authorizes copies.view_action (view, else copy) under the approved request, derives or
reuses the watermarked MP4 and records the hand-out with access.record_use: one register
entry per hand-out), grants
this session that copy for GRANT_S seconds, and sends the browser to the player page,
GET /player/{sha256} (which hands nothing out: it shows the granted copy).

GET /video/{sha256}: the copy's bytes, with HTTP Range (Starlette's FileResponse) so the
browser can play and seek; only for a session granted it by the player page, for the
user it was granted to, whose request still authorizes the copy's action
(copies.view_action; access.authorize; no new register entry for each range the browser
asks for), and only a file copies.copy_path
vouches for (its copy_made row and hash). The originals are never served.
"""
from __future__ import annotations

import re
import time

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from ..i18n import _
from . import web
from .access_pages import RID_RE

__all__ = ["view_copy", "player", "video", "GRANT_S"]

GRANT_S = 2 * 3600
GRANTS_MAX = 16
SHA_RE = re.compile(r"[0-9a-f]{64}")
DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _modules():
    access = web.lazy("catalogue.access")
    copies = web.lazy("catalogue.copies")
    if access is None or copies is None:
        raise web.DeskError(503, _("viewing copies are not available on this station yet "
                                   "(host_tools/catalogue/access.py or copies.py is "
                                   "missing)"))
    return access, copies


async def view_copy(request):
    user = web.need_user(request)
    desk = request.app.state.desk
    rid, dev = request.path_params["rid"], request.path_params["device"]
    seg = request.path_params["segment"]
    if not RID_RE.fullmatch(rid) or not DEVICE_RE.fullmatch(dev) or not 0 <= seg < 2**31:
        raise web.DeskError(400, _("not a request and recording"))
    access, copies = _modules()
    await request.form()            # the CSRF token was checked on the way in

    def make():                     # FFmpeg may take seconds: off the pages' event loop,
        cat = desk.new_catalogue()  # with a Catalogue of the thread's own
        try:
            return copies.make_view_copy(cat, user, rid, dev, seg)
        finally:
            cat.close()
    c = await run_in_threadpool(make)
    sha = c["sha256"]
    grants = {k: v for k, v in (request.session.get("grants") or {}).items()
              if isinstance(v, list) and len(v) == 5 and v[4] > time.time()}
    grants[sha] = [user.name, rid, dev, seg, int(time.time()) + GRANT_S]
    while len(grants) > GRANTS_MAX:
        grants.pop(min(grants, key=lambda k: grants[k][4]))
    request.session["grants"] = grants
    return web.redirect(request.url_for("player", sha=sha))


def _grant(request, user, sha):
    g = (request.session.get("grants") or {}).get(sha) if SHA_RE.fullmatch(sha) else None
    if not (isinstance(g, list) and len(g) == 5 and g[0] == user.name
            and isinstance(g[4], int) and g[4] > time.time()):
        raise web.DeskError(403, _("open this copy from its request's page: a copy is "
                                   "handed out under an approved request"))
    return g


async def player(request):
    user = web.need_user(request)
    sha = request.path_params["sha"]
    _who, rid, dev, seg, _until = _grant(request, user, sha)
    return web.render(request, "view.html", sha=sha, rid=rid, device=dev, segment=seg,
                      src=request.url_for("video", sha=sha))


async def video(request):
    user = web.need_user(request)
    desk = request.app.state.desk
    sha = request.path_params["sha"]
    g = _grant(request, user, sha)
    access, copies = _modules()
    # the action the copy was handed out under (view, or copy for a request without
    # view): the one copies.make_view_copy authorized and put on the register
    access.authorize(desk.cat, user, g[1], copies.view_action(desk.cat, g[1]),
                     device=g[2], segment=g[3])
    path = copies.copy_path(desk.cat, sha)
    return FileResponse(path, media_type="video/mp4",
                        headers={"cache-control": "private, no-store"})
