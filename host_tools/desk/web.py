"""What every page of the desk shares: the archive's catalogue, the signed-in user, the
language, bounded form fields, the error pages (400/403/404 as pages, never a traceback).

The pages run one at a time on the server's event loop (async handlers that do their
catalogue work in place): the one Catalogue of the desk and the process-wide language of
host_tools.i18n are never used by two requests at once. Long work (a disc, a backup) runs
in a thread with a Catalogue of its own (jobs.py).
"""
from __future__ import annotations

import datetime as _dt
import importlib
import os
import time

from starlette.responses import RedirectResponse

from .. import i18n
from ..i18n import _

__all__ = ["Desk", "DeskError", "LoginNeeded", "user_of", "field", "number", "day",
           "render", "lazy", "function", "redirect", "need_user", "need_permission",
           "choose_lang", "use_lang", "iso", "local_path", "IDLE_S", "PAGE"]

IDLE_S = 30 * 60            # a session idle this long is signed out
SESSIONS_MAX = 10_000       # sessions the desk keeps (the least recently used go first)
FIELD_MAX = 256             # characters of a form field unless told
PAGE = 50                   # rows of a results page
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


class DeskError(Exception):
    """A request the desk refuses: ``status`` (400, 403, 404, 409) and one line saying why
    (shown on the error page)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Desk:
    """The state of one running desk: the archive, its catalogue, the templates, the jobs."""

    def __init__(self, archive, db_url=None, *, idle_s=IDLE_S, export_dir=None,
                 backup_dirs=(), lang=None):
        from starlette.templating import Jinja2Templates
        import jinja2
        from ..catalogue.store import Catalogue
        self.archive = os.path.abspath(archive)
        self.db_url = db_url
        Catalogue(self.archive, db_url).close()     # refuse a bad archive or database now
        self._cat = None
        self.idle_s = idle_s
        # disc images are written outside the archive (the disc module refuses inside)
        self.export_dir = os.path.abspath(export_dir or self.archive.rstrip(os.sep) + "-discs")
        self.backup_dirs = [os.path.abspath(d) for d in backup_dirs]
        self.default_lang = i18n.normalize(lang) if lang else None
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                 autoescape=True, extensions=["jinja2.ext.i18n"])
        env.install_gettext_callables(i18n._, i18n.ngettext, newstyle=True)
        env.policies["ext.i18n.trimmed"] = True
        self.templates = Jinja2Templates(env=env)
        self.jobs = {}               # job id -> jobs.Job
        # the sessions signed in, by the random id their signed cookie holds: {"user",
        # "version" (the users row's event when it signed in), "seen" (time of last use)}.
        # Signing out, a change of the user (password, role, state: a new event) and a
        # restart end them; a cookie alone is no session.
        self.sessions = {}

    def new_session(self, name, version):
        """A new session id for user ``name`` as of its users event ``version``."""
        import secrets
        now = time.time()
        if len(self.sessions) >= SESSIONS_MAX:
            for sid in [k for k, v in self.sessions.items()
                        if now - v["seen"] > self.idle_s]:
                del self.sessions[sid]
            while len(self.sessions) >= SESSIONS_MAX:        # the least recently used go
                del self.sessions[min(self.sessions, key=lambda k: self.sessions[k]["seen"])]
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = {"user": name, "version": version, "seen": now}
        return sid

    def end_session(self, sid):
        if isinstance(sid, str):
            self.sessions.pop(sid, None)

    @property
    def cat(self):
        """The pages' Catalogue, opened in the thread that serves them (the event loop's:
        an archive's SQLite connection belongs to the thread that made it)."""
        if self._cat is None:
            from ..catalogue.store import Catalogue
            self._cat = Catalogue(self.archive, self.db_url)
        return self._cat

    def new_catalogue(self):
        """A Catalogue of its own (for a thread)."""
        from ..catalogue.store import Catalogue
        return Catalogue(self.archive, self.db_url)

    def close(self):
        if self._cat is not None:
            self._cat.close()
            self._cat = None


def lazy(name):
    """The module ``host_tools.<name>`` or None when it is not there (yet): a page then
    says "not available"."""
    try:
        return importlib.import_module("host_tools." + name)
    except ModuleNotFoundError as e:
        if e.name and (e.name == "host_tools." + name or
                       ("host_tools." + name).startswith(e.name + ".")):
            return None
        raise


def function(*places):
    """The first of ``places`` ("module:name", under host_tools) that exists, or None."""
    for place in places:
        mod, name = place.split(":")
        m = lazy(mod)
        if m is not None and callable(getattr(m, name, None)):
            return getattr(m, name)
    return None


def build_disc():
    return function("disc:build_disc", "disc.build:build_disc")


def backup_fn():
    return function("backup:backup", "backup.backup:backup")


def backup_status():
    return function("backup:backup_status", "catalogue.backups:backup_status",
                    "backup.backup:backup_status")


# -- language -----------------------------------------------------------------------------

def choose_lang(request):
    """'zh_CN' or 'en': ?lang= (kept in the session), else the session's, else the
    desk's --lang, else Accept-Language."""
    q = request.query_params.get("lang")
    if q is not None:
        n = i18n.normalize(q[:32])
        if n in i18n.LANGUAGES:
            request.session["lang"] = n
    s = request.session.get("lang")
    if s in i18n.LANGUAGES:
        return s
    desk = request.app.state.desk
    if desk.default_lang in i18n.LANGUAGES:
        return desk.default_lang
    for part in request.headers.get("accept-language", "")[:256].split(","):
        n = i18n.normalize(part.split(";")[0].strip())
        if n in i18n.LANGUAGES:
            return n
    return "en"


def use_lang(request):
    lang = choose_lang(request)
    if i18n.current() != lang:
        i18n.setup(lang)
    request.state.lang = lang
    return lang


# -- the user -----------------------------------------------------------------------------

def user_version(conn, name):
    """The users row of ``name`` (None: no such user). Its ``event`` is the log index of
    the user's latest event: a session signed in at another is over."""
    import sqlalchemy as sa
    from ..catalogue import db
    return conn.execute(sa.select(db.users).where(db.users.c.name == name)).mappings().first()


def user_of(request):
    """The signed-in users.User of the session, or None (no session the desk holds, idle
    too long, or the user is no longer active or changed since it signed in: the session
    then ends)."""
    from ..catalogue import users
    s = request.session
    name = s.get("user")
    if not isinstance(name, str):
        return None
    desk = request.app.state.desk
    sid = s.get("sid")
    rec = desk.sessions.get(sid) if isinstance(sid, str) else None
    if rec is None or rec["user"] != name:      # signed out, or another process's cookie
        s.clear()
        return None
    now = time.time()
    seen = s.get("seen")
    if not isinstance(seen, (int, float)) or now - rec["seen"] > desk.idle_s or \
            now - seen > desk.idle_s or seen > now + 60:
        desk.end_session(sid)
        s.clear()
        s["expired"] = True
        return None
    desk.cat.sync()
    with desk.cat.engine.connect() as conn:
        row = user_version(conn, name)
    # the user as the signed log states it, its row agreeing (an edited row ends the
    # session: role, unit and clearance never come from the database alone)
    u = users.as_logged(desk.cat, name) if row is not None else None
    if u is None or not row["active"] or row["event"] != rec["version"]:
        desk.end_session(sid)
        s.clear()
        return None
    rec["seen"] = now
    s["seen"] = int(now)
    return u


def need_user(request):
    """The signed-in user; else a DeskError the app turns into the sign-in page."""
    use_lang(request)
    u = user_of(request)
    if u is None:
        raise LoginNeeded()
    request.state.user = u
    return u


def need_permission(user, permission):
    from ..catalogue import users
    if user.role not in users.PERMISSIONS.get(permission, ()):
        raise DeskError(403, _("user %(name)s (%(role)s) may not do this: it needs the role "
                               "%(roles)s") % {"name": user.name, "role": user.role,
                                               "roles": " / ".join(
                                                   users.PERMISSIONS.get(permission, ()))})


class LoginNeeded(Exception):
    """No signed-in user: the app redirects to /login."""


# -- forms --------------------------------------------------------------------------------

def field(values, name, *, max_len=FIELD_MAX, required=False, choices=None, label=None):
    """The stripped text of form or query field ``name`` (None when empty), bounded: a
    value longer than ``max_len``, with control characters, or not one of ``choices``
    is a 400."""
    v = values.get(name)
    if v is None or not str(v).strip():
        if required:
            raise DeskError(400, _("%(field)s: a value is needed") % {"field": label or name})
        return None
    v = str(v).strip()
    if len(v) > max_len:
        raise DeskError(400, _("%(field)s: at most %(n)d characters")
                        % {"field": label or name, "n": max_len})
    if any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in v):
        raise DeskError(400, _("%(field)s: control characters are not allowed")
                        % {"field": label or name})
    if choices is not None and v not in choices:
        raise DeskError(400, _("%(field)s: not one of %(allowed)s")
                        % {"field": label or name, "allowed": ", ".join(choices)})
    return v


def number(values, name, *, lo=0, hi=10**9, default=None):
    v = field(values, name, max_len=12)
    if v is None:
        return default
    if not v.isascii() or not v.isdigit() or not lo <= int(v) <= hi:
        raise DeskError(400, _("%(field)s: a whole number from %(lo)d to %(hi)d")
                        % {"field": name, "lo": lo, "hi": hi})
    return int(v)


def day(values, name):
    v = field(values, name, max_len=10)
    if v is None:
        return None
    try:
        return _dt.date.fromisoformat(v)
    except ValueError:
        raise DeskError(400, _("%(field)s: a day YYYY-MM-DD") % {"field": name}) from None


# -- pages --------------------------------------------------------------------------------

def render(request, template, status_code=200, headers=None, **ctx):
    desk = request.app.state.desk
    lang = getattr(request.state, "lang", None) or use_lang(request)
    ctx.setdefault("user", getattr(request.state, "user", None))
    other = "en" if lang == "zh_CN" else "zh_CN"
    ctx.update(request=request, lang=lang, csrf_token=request.scope.get("csrf_token", ""),
               other_lang=other, path=request.url.path,
               lang_href=local_path(request.scope.get("path")) + "?lang=" + other)
    return desk.templates.TemplateResponse(request, template, ctx, status_code=status_code,
                                           headers={"cache-control": "no-store",
                                                    **(headers or {})})


def local_path(path):
    """``path`` (percent-encoded) when it is a path of this site: "/..." but not "//...",
    no backslash, no scheme, no control character; else "/". A link or a redirect made
    from what a request says never leaves the desk."""
    import urllib.parse
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") \
            or "\\" in path or len(path) > 2048 or \
            any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in path):
        return "/"
    out = urllib.parse.quote(path, safe="/")
    if not out.startswith("/") or out.startswith("//") or urllib.parse.urlsplit(out).netloc:
        return "/"
    return out


def redirect(url):
    return RedirectResponse(url, status_code=303)


def iso(ms):
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S")
