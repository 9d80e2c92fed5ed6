"""The clerk's desk: a local web application on the station (issue 12 item 7; Starlette,
server-rendered Jinja2 pages, no JavaScript).

    app = make_app("/srv/archive")          # then uvicorn.run(app, host="127.0.0.1")

Its first page is the sign-in. A session is the desk's own (web.Desk.sessions): a random
id in Starlette's signed cookie (itsdangerous; the secret is made at each start and never
stored; httponly, SameSite=Strict) that the desk remembers with the user's version; it ends
at sign-out, when the user changes (password, role, deactivated), after web.IDLE_S
without use and at a restart (auth.py); each form carries
starlette-csrf's token (security.FormCSRF); every response has the security headers
(security.SecurityHeaders); only the Host names of the address it serves on are
answered (no DNS rebinding). Every value is escaped by Jinja2's autoescape. A refused
request is a 400 / 403 / 404 page naming why, never a traceback.
"""
from __future__ import annotations

import contextlib
import secrets
import sys
import traceback

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..i18n import _
from . import access_pages, auth, browse, jobs, media, report_page, web
from .security import BODY_MAX, FormCSRF, SecurityHeaders

__all__ = ["make_app", "SESSION_COOKIE", "SESSION_MAX_S"]

SESSION_COOKIE = "sealcam_desk"
SESSION_MAX_S = 12 * 3600       # a session cookie lasts at most a working day


async def home(request):
    return web.redirect(request.url_for("search"))


def routes():
    return [
        Route("/", home, name="home"),
        Route("/login", auth.login_page, name="login", methods=["GET"]),
        Route("/login", auth.login, name="login_post", methods=["POST"]),
        Route("/logout", auth.logout, name="logout", methods=["POST"]),
        Route("/search", browse.search_page, name="search"),
        Route("/case/{case_no:path}", browse.case_page, name="case"),
        Route("/report", report_page.report_page, name="report"),
        Route("/access", access_pages.requests_page, name="access"),
        Route("/access/new", access_pages.request_new, name="access_new", methods=["POST"]),
        Route("/access/{rid:path}/{decision:str}", access_pages.decide, name="decide",
              methods=["POST"]),
        Route("/request/{rid:path}", access_pages.request_page, name="access_request"),
        Route("/register", access_pages.register_page, name="register"),
        Route("/register.pdf", access_pages.register_pdf, name="register_pdf"),
        Route("/view/{rid:path}/{device:str}/{segment:int}", media.view_copy, name="view",
              methods=["POST"]),
        Route("/player/{sha:str}", media.player, name="player"),
        Route("/video/{sha:str}", media.video, name="video"),
        Route("/exports", jobs.exports_page, name="exports"),
        Route("/exports/disc", jobs.start_disc, name="start_disc", methods=["POST"]),
        Route("/exports/backup", jobs.start_backup, name="start_backup", methods=["POST"]),
        Route("/jobs/{jid:str}", jobs.job_page, name="job"),
        Route("/jobs/{jid:str}/label.pdf", jobs.job_label, name="job_label"),
        Mount("/static", StaticFiles(directory=web.STATIC), name="static"),
    ]


def _error_page(request, status, message):
    try:
        web.use_lang(request)
        return web.render(request, "error.html", status_code=status, status=status,
                          message=message)
    except Exception:       # noqa: BLE001 - the error page itself failed: plain text
        from starlette.responses import PlainTextResponse
        return PlainTextResponse("%d: %s" % (status, message), status_code=status)


async def _desk_error(request, exc):
    return _error_page(request, exc.status, exc.message)


async def _login_needed(request, exc):
    return web.redirect(request.url_for("login"))


async def _http_error(request, exc):
    msg = {404: _("no such page"), 405: _("not allowed here")}.get(exc.status_code,
                                                                   str(exc.detail))
    return _error_page(request, exc.status_code, msg)


async def _refused(request, exc):
    """What the catalogue refuses: a role or an approval that does not allow it (403),
    anything else it cannot do (400)."""
    from ..catalogue.store import PermissionRefused
    from ..catalogue.users import AuthError
    return _error_page(request, 403 if isinstance(exc, (PermissionRefused, AuthError))
                       else 400, str(exc).splitlines()[0][:500] if str(exc) else
                       type(exc).__name__)


async def _internal(request, exc):
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return _error_page(request, 500, _("the desk could not do this (%(what)s); the "
                                       "station's log of the desk says more")
                       % {"what": type(exc).__name__})


def make_app(archive, db_url=None, *, hosts=("127.0.0.1", "localhost"), secret=None,
             idle_s=web.IDLE_S, export_dir=None, backup_dirs=(), lang=None):
    """The desk's ASGI app for ``archive`` (its catalogue at ``db_url``, as `sealcam
    --db`). ``hosts``: the Host names it answers; ``secret``: of the session and CSRF
    signatures (None: a new random one)."""
    from ..catalogue.events import CatalogueEventError
    from ..catalogue.search import SearchError
    from ..catalogue.store import CatalogueError
    desk = web.Desk(archive, db_url, idle_s=idle_s, export_dir=export_dir,
                    backup_dirs=backup_dirs, lang=lang)
    secret = secret or secrets.token_urlsafe(32)
    handlers = {web.DeskError: _desk_error, web.LoginNeeded: _login_needed,
                HTTPException: _http_error, CatalogueError: _refused,
                CatalogueEventError: _refused, SearchError: _refused, Exception: _internal}
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
        Middleware(FormCSRF, secret=secrets.token_urlsafe(32) if secret is None else
                   secret + ":csrf"),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                   max_age=SESSION_MAX_S, same_site="strict", https_only=False),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            desk.close()
    app = Starlette(routes=routes(), middleware=middleware, exception_handlers=handlers,
                    lifespan=lifespan, max_body_size=BODY_MAX)
    app.state.desk = desk
    return app
