"""Viewing copies played in the page (the COPIES and ACCESS contracts of issue 12).

POST /view/{rid}/{device}/{segment} (a form of the request's page, with its CSRF token):
asks copies.make_view_copy for the request's viewing copy of that recording (it
authorizes copies.view_action (view, else copy) under the approved request, derives or
reuses the watermarked MP4 and records the hand-out with access.record_use: one register
entry per hand-out), grants
this session that copy for GRANT_S seconds, and sends the browser to the player page,
GET /player/{sha256} (which hands nothing out: it shows the granted copy).

GET /video/{sha256}: the copy's bytes, with HTTP Range (one range: 206; none, several or
an If-Range that is not the copy's ETag: the whole copy, 200; past its end: 416) so the
browser can play and seek; only for a session granted it by the player page, for the
user it was granted to, whose request still authorizes the copy's action
(copies.view_action; access.authorize; no new register entry for each range the browser
asks for), and only as copies.open_copy hands it out (its copy_made row and hash
checked; the bytes checked are the bytes read). A copy sealed at rest is decrypted as it
is read: no plaintext file is written to serve it. The originals are never served.
"""
from __future__ import annotations

import re
import time

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ..i18n import _
from . import web
from .access_pages import RID_RE

__all__ = ["view_copy", "player", "video", "GRANT_S"]

GRANT_S = 2 * 3600
GRANTS_MAX = 16
SHA_RE = re.compile(r"[0-9a-f]{64}")
DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})\s*")
BLOCK = 256 * 1024


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
            return copies.make_view_copy(cat, user, rid, dev, seg, plaintext=False)
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
    f, size = copies.open_copy(desk.cat, sha)
    try:
        return _ranged(request, f, size, sha)
    except BaseException:
        f.close()
        raise


def _range(request, size, etag):
    """(start, end) inclusive of the one byte range the request asks for; None for the
    whole copy (no Range, several ranges, another unit, or an If-Range that does not
    name this copy); "unsatisfiable" for a range past its end."""
    h = request.headers.get("range")
    if h is None or len(h) > 100:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    m = RANGE_RE.fullmatch(h)
    if m is None or (not m.group(1) and not m.group(2)):
        return None                     # several ranges, or not bytes: the whole copy
    if not m.group(1):                  # bytes=-N: the last N bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else None
    if end is not None and end < start:
        return None                     # not a valid range: ignored (RFC 9110 14.2)
    if start >= size:
        return "unsatisfiable"
    end = size - 1 if end is None else end
    return start, min(end, size - 1)


def _ranged(request, f, size, sha):
    """The response of copy ``f`` (a readable, seekable file of ``size`` bytes, closed
    when the response ends) for the request's Range."""
    etag = '"%s"' % sha
    headers = {"cache-control": "private, no-store", "accept-ranges": "bytes",
               "etag": etag}
    r = _range(request, size, etag)
    if r == "unsatisfiable":
        f.close()
        return Response(status_code=416, headers={**headers,
                                                  "content-range": "bytes */%d" % size})
    start, end = r if r is not None else (0, size - 1)
    n = end - start + 1 if size else 0
    if r is not None:
        headers["content-range"] = "bytes %d-%d/%d" % (start, end, size)
    headers["content-length"] = str(n)

    def body():         # in the thread pool: a sealed copy is decrypted as it is read
        try:
            f.seek(start)
            left = n
            while left > 0:
                block = f.read(min(BLOCK, left))
                if not block:
                    break
                left -= len(block)
                yield block
        finally:
            f.close()
    if request.method == "HEAD":
        f.close()
        return Response(status_code=206 if r is not None else 200, headers=headers,
                        media_type="video/mp4")
    return StreamingResponse(body(), status_code=206 if r is not None else 200,
                             headers=headers, media_type="video/mp4",
                             background=BackgroundTask(f.close))
