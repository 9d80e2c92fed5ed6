"""Signing in and out of the desk (users.authenticate: argon2id, the user as the signed log
states it).

A session is the desk's own (web.Desk.sessions): signing in makes a random session id, kept
in Starlette's signed session cookie with the user's name, and the desk remembers it with
the user's version (the log index of its latest users event). Signing out forgets it, so
the cookie is then worth nothing; a change of the user (a new password, role, unit,
clearance, deactivated) ends every session it had; a restart ends all of them.

Lockout (kept by the process, for each archive; never in a session or a cookie):
- a user name (compared as normalize_name writes it: NFKC, no white space, case folded)
  that failed FAIL_MAX times waits LOCK_S, twice as long after each further failure (at
  most LOCK_MAX_S); only its own successful sign-in, after the wait, starts it afresh;
- a client address that failed ADDR_FAIL_MAX times within ADDR_WINDOW_S waits for the
  window, whatever names it tried.
A name that is no user is counted alike (a lock says nothing of who exists)."""
from __future__ import annotations

import math
import time
import unicodedata

from ..i18n import _, ngettext
from . import web

__all__ = ["login_page", "login", "logout", "normalize_name", "FAIL_MAX", "LOCK_S",
           "LOCK_MAX_S", "ADDR_FAIL_MAX", "ADDR_WINDOW_S", "FAIL_WINDOW_S"]

FAIL_MAX = 5                # failed sign-ins of a name before it waits
LOCK_S = 60.0               # its first wait; doubled by each further failure
LOCK_MAX_S = 3600.0         # the longest wait
FAIL_WINDOW_S = LOCK_S      # (the name of the first wait before)
ADDR_FAIL_MAX = 20          # failed sign-ins of one client address ...
ADDR_WINDOW_S = 60.0        # ... within this many seconds before it waits
TRACK_MAX = 10_000          # names (and addresses) remembered before the unlocked go
NAME_MAX = 32

_clock = time.monotonic     # (the tests move it)


class _Lockout:
    """The failures of the process: by (archive, name) [failures, locked until, last] and
    by (archive, address) [times of failures]."""

    def __init__(self):
        self.names = {}
        self.addrs = {}

    def name_wait(self, key, now):
        st = self.names.get(key)
        return max(0.0, st[1] - now) if st else 0.0

    def addr_wait(self, key, now):
        times = [t for t in self.addrs.get(key, ()) if now - t < ADDR_WINDOW_S]
        if times:
            self.addrs[key] = times
        else:
            self.addrs.pop(key, None)
        return ADDR_WINDOW_S - (now - times[0]) if len(times) >= ADDR_FAIL_MAX else 0.0

    def failed(self, name_key, addr_key, now, is_user):
        st = self.names.get(name_key)
        if st is None:
            self._room(self.names, now, is_user)
            st = self.names[name_key] = [0, 0.0, now]
        st[0] += 1
        st[2] = now
        if st[0] >= FAIL_MAX:
            st[1] = now + min(LOCK_S * 2 ** (st[0] - FAIL_MAX), LOCK_MAX_S)
        if addr_key not in self.addrs:
            self._room_addrs(now)
        self.addrs.setdefault(addr_key, []).append(now)
        del self.addrs[addr_key][:-ADDR_FAIL_MAX]

    def succeeded(self, name_key):
        self.names.pop(name_key, None)

    def _room(self, table, now, is_user):
        """Room for one more name: the unlocked names that are no user go first, then
        the unlocked least recently failed; a locked name is never forgotten."""
        if len(table) < TRACK_MAX:
            return
        unlocked = [k for k, v in table.items() if v[1] <= now]
        for k in [k for k in unlocked if not is_user(k[1])]:
            del table[k]
            if len(table) < TRACK_MAX:
                return
        for k in sorted((k for k in unlocked if k in table), key=lambda k: table[k][2]):
            del table[k]
            if len(table) < TRACK_MAX:
                return

    def _room_addrs(self, now):
        if len(self.addrs) < TRACK_MAX:
            return
        for k in list(self.addrs):
            self.addr_wait(k, now)          # drops those with no failure in the window
        while len(self.addrs) >= TRACK_MAX:
            del self.addrs[min(self.addrs, key=lambda k: self.addrs[k][-1])]


_LOCKOUT = _Lockout()


def normalize_name(name) -> str:
    """The user name as the lockout counts it: NFKC, white space removed, case folded
    ("ZHAO.LEAD", " zhao.lead " and the full-width letters are one name)."""
    return "".join(unicodedata.normalize("NFKC", name or "").split()).casefold()


def _wait_page(request, seconds, message):
    minutes = max(1, math.ceil(seconds / 60))
    return web.render(request, "login.html", status_code=429, error=message % {
        "wait": ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}},
        headers={"retry-after": str(max(1, math.ceil(seconds)))})


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
    now = _clock()
    norm = normalize_name(name)
    name_key = (desk.archive, norm)
    addr_key = (desk.archive, request.client.host if request.client else "-")
    wait = _LOCKOUT.addr_wait(addr_key, now)
    if wait > 0:
        return _wait_page(request, wait, _("too many failed sign-ins from this computer: "
                                           "try again in %(wait)s"))
    wait = _LOCKOUT.name_wait(name_key, now)
    if wait > 0:
        return _wait_page(request, wait, _("too many failed sign-ins for this user: try "
                                           "again in %(wait)s"))
    if not name or not password:        # never the OS-account sign-in (password None)
        return web.render(request, "login.html", status_code=400,
                          error=_("give your user name and password"))
    desk.cat.sync()
    with desk.cat.engine.connect() as conn:     # the user's version before it proves
        row = web.user_version(conn, norm)      # who it is: a change meanwhile ends it
    try:
        user = users.authenticate(desk.cat, norm, password)
    except users.AuthError as e:
        def is_user(n):
            with desk.cat.engine.connect() as conn:
                return web.user_version(conn, n) is not None
        _LOCKOUT.failed(name_key, addr_key, now, is_user)
        return web.render(request, "login.html", status_code=401, error=str(e), name=name)
    _LOCKOUT.succeeded(name_key)
    lang = request.session.get("lang")
    desk.end_session(request.session.get("sid"))
    request.session.clear()
    sid = desk.new_session(user.name, row["event"] if row is not None else None)
    request.session.update({"user": user.name, "sid": sid, "seen": int(time.time())})
    if lang:
        request.session["lang"] = lang
    return web.redirect(request.url_for("search"))


async def logout(request):
    request.app.state.desk.end_session(request.session.get("sid"))
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    return web.redirect(request.url_for("login"))
