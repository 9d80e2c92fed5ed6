"""Signing in and out of the desk (users.authenticate: argon2id, the user as the signed log
states it). A session holds the user's name and when it was last used (web.IDLE_S), in
Starlette's signed session cookie; signing in starts a new session. A user name that fails
FAIL_MAX times within FAIL_WINDOW_S waits that long before the next try."""
from __future__ import annotations

import time

from ..i18n import _
from . import web

__all__ = ["login_page", "login", "logout", "FAIL_MAX", "FAIL_WINDOW_S"]

FAIL_MAX = 5
FAIL_WINDOW_S = 60.0
NAME_MAX = 32


async def login_page(request):
    web.use_lang(request)
    if web.user_of(request) is not None:
        return web.redirect(request.url_for("search"))
    expired = request.session.pop("expired", False)
    return web.render(request, "login.html", notice=_(
        "your session ended after a time without use; sign in again") if expired else None)


async def login(request):
    from ..catalogue import users
    desk = request.app.state.desk
    web.use_lang(request)
    form = await request.form()
    name = web.field(form, "name", max_len=NAME_MAX, label=_("user"))
    password = form.get("password") or ""
    if len(password) > users.PASSWORD_MAX:
        raise web.DeskError(400, _("a password has %(min)d to %(max)d characters")
                            % {"min": users.PASSWORD_MIN, "max": users.PASSWORD_MAX})
    now = time.monotonic()
    fails = [t for t in desk.failures.get(name or "", []) if now - t < FAIL_WINDOW_S]
    if len(fails) >= FAIL_MAX:
        return web.render(request, "login.html", status_code=429, error=_(
            "too many failed sign-ins for this user: wait a minute and try again"))
    if not name or not password:        # never the OS-account sign-in (password None)
        return web.render(request, "login.html", status_code=400,
                          error=_("give your user name and password"))
    try:
        user = users.authenticate(desk.cat, name, password)
    except users.AuthError as e:
        fails.append(now)
        desk.failures[name] = fails[-FAIL_MAX:]
        if len(desk.failures) > 10_000:
            desk.failures.clear()
        return web.render(request, "login.html", status_code=401, error=str(e), name=name)
    desk.failures.pop(name, None)
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"user": user.name, "seen": int(time.time())})
    if lang:
        request.session["lang"] = lang
    return web.redirect(request.url_for("search"))


async def logout(request):
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return web.redirect(request.url_for("login"))
