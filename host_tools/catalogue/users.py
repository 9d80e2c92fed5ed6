"""Named users of the station, their roles, and how each proves who it is (SPEC §14.2).

Roles (what each may do is PERMISSIONS below):
    clerk          files recordings: metadata, archive numbers, cases, documents, requests
    archive_head   the custodian: what a clerk does, plus users, holds, approving disposals
    unit_leader    leads an enforcement unit: cases, holds, approving disposals
    bureau_chief   heads the bureau: approves disposals, manages users
    technician     provisions and flashes recorders; reads the catalogue
    auditor        reads everything, changes nothing
    officer        an officer at check-in: metadata of the recordings he or she made

A user proves who it is by a password (argon2id, argon2-cffi; the log keeps only the hash,
salted and memory-hard, never the password) or by the operating-system account it was
bound to (`--os-account`: the login running the command). A row of the users table is
trusted only as far as the signed log entry it names says the same.

The first user of an archive is added by whoever holds the station key (the operating-system
account that can read ARCHIVE/station.key): the event names it "os:LOGIN".
"""
from __future__ import annotations

import bisect
import dataclasses
import os
import pwd
import re

import sqlalchemy as sa

from . import confidentiality_levels, db, store
from ..i18n import _
from .events import CatalogueEventError, bad_char, base, field

__all__ = ["ROLES", "PERMISSIONS", "User", "AuthError", "add_event", "change_event",
           "password_event", "authenticate", "require", "hash_password", "os_login",
           "bootstrap_user", "list_users", "logged_users", "added_by", "check_actor"]

ROLES = ("clerk", "archive_head", "unit_leader", "bureau_chief", "technician", "auditor",
         "officer")
_FILERS = ("clerk", "archive_head")
PERMISSIONS = {
    "tag": _FILERS + ("officer",),
    "number": _FILERS,
    "case": _FILERS + ("unit_leader",),
    "document": _FILERS,
    "hold": ("archive_head", "unit_leader", "bureau_chief"),
    "dispose_request": _FILERS,
    "dispose_approve": ("archive_head", "unit_leader", "bureau_chief"),
    "users": ("archive_head", "bureau_chief"),
    "read": ROLES,
    # issue 12
    "classify": ("archive_head", "bureau_chief"),
    "access_request": ROLES,                # anyone asks; approvers decide (access.py)
    "access_approve": ("archive_head", "unit_leader", "bureau_chief"),
    "access_use": ROLES,                    # the requester, under an approved request
    "disc": _FILERS,
    "backup": ("archive_head", "technician"),
    "handover": ROLES,                      # the one who leaves, or the successor accepting
}
UNIT_MAX = 64
NAME_RE = re.compile(r"[a-z][a-z0-9._-]{1,31}")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024


class AuthError(store.CatalogueError):
    """Who is asking could not be established (exit 5)."""


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    role: str
    display: str = ""
    how: str = "password"          # password | os | station (the station key's holder)
    unit: str | None = None        # the enforcement unit (a unit leader approves its cases)
    clearance: str | None = None   # confidentiality.LEVELS: the highest level it may see


def os_login() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "uid%d" % os.geteuid()


def _hasher():
    """argon2id with argon2-cffi's RFC 9106 low-memory profile; SEALCAM_ARGON2=cheapest
    (the tests set it: hundreds of sign-ins) takes its cheapest profile instead. The
    parameters are in each hash, so a hash verifies whatever the setting is now."""
    from argon2 import PasswordHasher, profiles
    if os.environ.get("SEALCAM_ARGON2") == "cheapest":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AuthError(_("a password has %(min)d to %(max)d characters")
                        % {"min": PASSWORD_MIN, "max": PASSWORD_MAX})
    return _hasher().hash(password)


def _check_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise store.CatalogueError(
            _("user name %(name)r is not allowed: 2 to 32 characters, lower-case letters, "
              "digits, '.', '_' or '-', starting with a letter") % {"name": str(name)[:40]})


def _check_role(role):
    if role not in ROLES:
        raise store.CatalogueError(_("unknown role %(role)r (roles: %(roles)s)")
                                   % {"role": str(role)[:40], "roles": ", ".join(ROLES)})


# -- events ------------------------------------------------------------------------------

def _check_unit(unit):
    if unit is not None and (not isinstance(unit, str) or not 1 <= len(unit) <= UNIT_MAX
                             or bad_char(unit) is not None or unit != unit.strip()):
        raise store.CatalogueError(_("a unit is 1 to %(max)d characters, no control "
                                     "characters or surrounding spaces") % {"max": UNIT_MAX})


def _check_clearance(level):
    from .confidentiality_levels import LEVELS
    if level is not None and level not in LEVELS:
        raise store.CatalogueError(_("unknown clearance %(level)r (levels: %(levels)s)")
                                   % {"level": str(level)[:40], "levels": ", ".join(LEVELS)})


def add_event(name, role, display="", *, password=None, os_account=None, at=None,
              unit=None, clearance=None):
    _check_name(name)
    _check_role(role)
    _check_unit(unit)
    _check_clearance(clearance)
    if password is None and os_account is None:
        raise store.CatalogueError(_("user %(name)s needs a password or an OS account to "
                                     "sign in with") % {"name": name})
    return base("user_added", at, None, user=name, role=role, display=display or name,
                pw_hash=hash_password(password) if password is not None else None,
                os_account=os_account, unit=unit, clearance=clearance)


def change_event(name, *, role=None, active=None, os_account=None, at=None, unit=None,
                 clearance=None):
    _check_name(name)
    if role is not None:
        _check_role(role)
    _check_unit(unit)
    _check_clearance(clearance)
    return base("user_changed", at, None, user=name, role=role, active=active,
                os_account=os_account, unit=unit, clearance=clearance)


def password_event(name, password, at=None):
    _check_name(name)
    return base("user_password", at, None, user=name, pw_hash=hash_password(password))


def _row(conn, name):
    return conn.execute(sa.select(db.users).where(db.users.c.name == name)).mappings().first()


@store.handles("user_added", permission="users")
class _Added:
    @staticmethod
    def check(cat, conn, e):
        name = field(e, "user", str)
        _check_name(name)
        _check_role(field(e, "role", str))
        field(e, "display", str)
        field(e, "pw_hash", str, optional=True, max_len=512)
        field(e, "os_account", str, optional=True, max_len=64)
        _check_unit(field(e, "unit", str, optional=True, max_len=UNIT_MAX))
        _check_clearance(field(e, "clearance", str, optional=True))
        if _row(conn, name) is not None:
            raise store.CatalogueError(_("user %(name)s exists already (names are never "
                                         "reused)") % {"name": name})

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.users.insert().values(
            name=e["user"], event=i, display=e["display"], role=e["role"],
            os_account=e.get("os_account"), pw_hash=e.get("pw_hash"), active=True,
            added_by=e["by"], added_at=e["at"], unit=e.get("unit"),
            clearance=e.get("clearance")))


def _chain(conn, e, name):
    """A change names the user's previous event ("prev"): set when it is made, checked
    when it is read back, so that a sign-in can walk the user's events in the log."""
    row = _row(conn, name)
    if row is None:
        raise store.CatalogueError(_("no user %(name)s") % {"name": name})
    prev = e.setdefault("prev", row["event"])
    if prev != row["event"]:
        raise store.CatalogueError(_("the event does not follow user %(name)s's last one")
                                   % {"name": name})


@store.handles("user_changed", permission="users")
class _Changed:
    @staticmethod
    def check(cat, conn, e):
        name = field(e, "user", str)
        _chain(conn, e, name)
        r = field(e, "role", str, optional=True)
        if r is not None:
            _check_role(r)
        field(e, "active", bool, optional=True)
        field(e, "os_account", str, optional=True, max_len=64)
        _check_unit(field(e, "unit", str, optional=True, max_len=UNIT_MAX))
        _check_clearance(field(e, "clearance", str, optional=True))

    @staticmethod
    def apply(cat, conn, i, e):
        vals = {k: e[k] for k in _CHANGED if k in e}
        conn.execute(db.users.update().where(db.users.c.name == e["user"])
                     .values(event=i, **vals))


@store.handles("user_password", permission="users")
class _Password:
    @staticmethod
    def check(cat, conn, e):
        name = field(e, "user", str)
        field(e, "pw_hash", str, max_len=512)
        _chain(conn, e, name)

    @staticmethod
    def apply(cat, conn, i, e):
        conn.execute(db.users.update().where(db.users.c.name == e["user"])
                     .values(event=i, pw_hash=e["pw_hash"]))


# -- who is asking -----------------------------------------------------------------------

def require(user, permission, event=None):
    """Refuse (PermissionRefused) unless ``user`` may do ``permission``."""
    if not isinstance(user, User):
        raise AuthError(_("this needs a signed-in user (--user NAME)"))
    if user.how == "station":
        if permission == "users" and event is not None and event.get("type") == "user_added":
            return
        raise store.PermissionRefused(_("the station key's holder may only add the first "
                                        "user; sign in as a user (--user NAME)"))
    allowed = PERMISSIONS.get(permission, ())
    if user.role not in allowed:
        raise store.PermissionRefused(
            _("user %(name)s (%(role)s) may not do this: it needs the role %(roles)s")
            % {"name": user.name, "role": user.role, "roles": " / ".join(allowed)})


# -- the users as the signed log states them -----------------------------------------------

USER_TYPES = ("user_added", "user_changed", "user_password")
_NEEDLES = tuple(t.encode() for t in USER_TYPES)
_STATE = ("role", "active", "os_account", "pw_hash", "unit", "clearance")
_CHANGED = ("role", "active", "os_account", "unit", "clearance")   # what user_changed sets


def _logged(cat, need):
    """The users of the station log's entries before index ``need`` (at least), replayed
    with every check an event must pass (`_vet`): {"users": {name: state}, "idx"/"states":
    {name: [log index], [state after it]}, "first": index of the first user_added,
    "refused": {index: why}, "upto": entries read}. Read once per Catalogue by a byte
    search for the user_* types (Catalogue.entries_with), then only what was appended."""
    memo = cat.__dict__.setdefault("_users_logged", {
        "upto": 0, "users": {}, "idx": {}, "states": {}, "first": None, "refused": {}})
    if memo["upto"] >= need:
        return memo
    lg = cat.archive.log()
    if lg.size < need:
        lg._catch_up()
    stop = lg.size
    if memo["upto"] < stop:
        for i, e in cat.entries_with(*_NEEDLES, start=memo["upto"], stop=stop):
            if not isinstance(e, dict) or e.get("type") not in USER_TYPES:
                continue
            try:
                _vet(memo, i, e)
            except (store.CatalogueError, CatalogueEventError) as ex:
                memo["refused"][i] = str(ex)
                continue
            _replay(memo, i, e)
        memo["upto"] = stop
    return memo


def _state_at(memo, name, i):
    """The state of user ``name`` made by the log's entries before index ``i`` (None: not
    added by then)."""
    idx = memo["idx"].get(name)
    if not idx:
        return None
    k = bisect.bisect_left(idx, i) - 1
    return memo["states"][name][k] if k >= 0 else None


def _replay(memo, i, e):
    name = e["user"]
    if e["type"] == "user_added":
        st = {"role": e["role"], "active": True, "os_account": e.get("os_account"),
              "pw_hash": e.get("pw_hash"), "display": e.get("display"),
              "added_by": e.get("by"), "event": i, "unit": e.get("unit"),
              "clearance": e.get("clearance")}
        if memo["first"] is None:
            memo["first"] = i
    else:
        st = dict(memo["users"][name], event=i)
        st.update((k, e[k]) for k in _STATE if k in e)
    memo["users"][name] = st
    memo["idx"].setdefault(name, []).append(i)
    memo["states"].setdefault(name, []).append(st)


def _actor(memo, i, e, permission):
    """Refuse (PermissionRefused) unless the user the event names ("by") may cause it at
    log index ``i``: an active user whose role has ``permission``, or the station key's
    holder ("os:LOGIN") adding the first user."""
    by, t = e.get("by"), e.get("type")
    if not isinstance(by, str) or not by or len(by) > 64 or bad_char(by):
        raise store.PermissionRefused(_("the %(type)s event names no user who made it")
                                      % {"type": str(t)[:40]})
    if by.startswith("os:"):
        if t == "user_added" and (memo["first"] is None or memo["first"] >= i):
            return
        raise store.PermissionRefused(_("the station key's holder (%(by)s) may only add the "
                                        "first user, and this archive has users")
                                      % {"by": by[:40]})
    st = _state_at(memo, by, i)
    if st is None or not st["active"]:
        raise store.PermissionRefused(_("user %(name)s is not an active user of this archive")
                                      % {"name": by[:40]})
    allowed = PERMISSIONS.get(permission, ROLES) if permission else ROLES
    if st["role"] not in allowed:
        raise store.PermissionRefused(
            _("user %(name)s (%(role)s) may not do this: it needs the role %(roles)s")
            % {"name": by, "role": st["role"], "roles": " / ".join(allowed)})


def _rank(memo, i, e, cur):
    """Only a bureau chief changes a bureau chief (role, state, password), or makes another
    one once the archive has an active bureau chief: an archive head who manages users
    cannot demote, lock out or outrank the head of the bureau (the first one may be made
    by an archive head, when there is none)."""
    by = e.get("by")
    if by.startswith("os:") or by == e.get("user"):
        return                      # the first user; oneself: refused below, saying so
    actor = _state_at(memo, by, i)
    if actor["role"] == "bureau_chief":
        return
    changes_chief = cur is not None and cur["role"] == "bureau_chief"
    makes_chief = e.get("role") == "bureau_chief" and any(
        st["role"] == "bureau_chief" and st["active"]
        for st in (_state_at(memo, n, i) for n in memo["idx"]) if st is not None)
    if changes_chief or makes_chief:
        raise store.PermissionRefused(
            _("user %(by)s (%(role)s) may not add or change a bureau chief: only a bureau "
              "chief does") % {"by": by, "role": actor["role"]})


def _grant(memo, i, e):
    """Nobody grants a clearance above his own (§14.8): the clearance a user event gives
    must rank at most its signer's as the log states it at ``i`` (the station key's holder
    gives the first user any clearance)."""
    level = e.get("clearance")
    by = e.get("by")
    if level not in confidentiality_levels.LEVELS or by.startswith("os:"):
        return                      # none given; the first user; an unknown one: below
    actor = _state_at(memo, by, i)
    own = actor.get("clearance") or confidentiality_levels.DEFAULT_CLEARANCE
    if confidentiality_levels.rank(own) < confidentiality_levels.rank(level):
        raise store.PermissionRefused(
            _("user %(by)s (clearance %(own)s) may not grant clearance %(level)s: only a "
              "user cleared at least that high does")
            % {"by": by, "own": own, "level": str(level)[:40]})


def _vet(memo, i, e):
    """Refuse the user event ``e`` at log index ``i`` unless its user ("by") may make it
    and it follows the user's state in the log before it (names are never reused; a change
    names the user's previous event; nobody changes their own role, state or OS account)."""
    _actor(memo, i, e, "users")
    name = field(e, "user", str)
    _check_name(name)
    cur = _state_at(memo, name, i)
    _rank(memo, i, e, cur)
    _grant(memo, i, e)
    if e["type"] == "user_added":
        _check_role(field(e, "role", str))
        field(e, "display", str)
        field(e, "pw_hash", str, optional=True, max_len=512)
        field(e, "os_account", str, optional=True, max_len=64)
        _check_unit(field(e, "unit", str, optional=True, max_len=UNIT_MAX))
        _check_clearance(field(e, "clearance", str, optional=True))
        if cur is not None:
            raise store.CatalogueError(_("user %(name)s exists already (names are never "
                                         "reused)") % {"name": name})
        return
    if cur is None:
        raise store.CatalogueError(_("no user %(name)s") % {"name": name})
    if type(e.get("prev")) is not int or e["prev"] != cur["event"]:
        raise store.CatalogueError(_("the event does not follow user %(name)s's last one")
                                   % {"name": name})
    if e["type"] == "user_password":
        field(e, "pw_hash", str, max_len=512)
        return
    r = field(e, "role", str, optional=True)
    if r is not None:
        _check_role(r)
    field(e, "active", bool, optional=True)
    field(e, "os_account", str, optional=True, max_len=64)
    _check_unit(field(e, "unit", str, optional=True, max_len=UNIT_MAX))
    _check_clearance(field(e, "clearance", str, optional=True))
    if name == e.get("by"):
        raise store.PermissionRefused(_("user %(name)s may not change its own role, state, "
                                        "unit, clearance or OS account: another user who "
                                        "manages users does")
                                      % {"name": name})


def check_actor(cat, i, e, permission):
    """Refuse (CatalogueError, PermissionRefused) the clerk event ``e`` at log index ``i``
    (the log's size for one about to be appended) unless the signed log's users at that
    point allow it: used by Catalogue.act before appending and by its replay (sync,
    reindex) before applying."""
    memo = _logged(cat, i + 1)
    if e.get("type") in USER_TYPES:
        if i < memo["upto"]:            # replayed: the same checks decided already
            if i in memo["refused"]:
                raise store.CatalogueError(memo["refused"][i])
            return
        cur = _state_at(memo, e.get("user"), i) if isinstance(e.get("user"), str) else None
        if cur is not None and "prev" not in e:     # Catalogue.act names it after this
            e = dict(e, prev=cur["event"])
        try:
            _vet(memo, i, e)
        except CatalogueEventError as ex:
            raise store.CatalogueError(str(ex)) from None
        return
    _actor(memo, i, e, permission)


def logged_users(cat):
    """{name: {"role", "active", "os_account", "pw_hash", "display", "added_by", "event"}}:
    every user as the station log's entries state it now (the truth a users row must
    match)."""
    memo = _logged(cat, cat.archive.log().size + 1)
    return {n: dict(st) for n, st in memo["users"].items()}


def added_by(cat, name):
    """Who added user ``name`` (a user name, or "os:LOGIN"), as the log states; None if
    the log has no such user."""
    st = logged_users(cat).get(name)
    return st["added_by"] if st else None


def as_logged(cat, name, how="password"):
    """The User ``name`` as the station log states it now, or None when the log has no
    such active user or its users row says anything else (an edited row): what a session
    signed in earlier may act as on each later request (the desk)."""
    cat.sync()
    with cat.engine.connect() as conn:
        row = _row(conn, name) if isinstance(name, str) else None
    logged = logged_users(cat).get(name) if row is not None else None
    if logged is None or not logged["active"] or not row["active"] or \
            any(logged[k] != row[k] for k in _STATE):
        return None
    return User(name, logged["role"], logged.get("display") or name, how, logged.get("unit"),
                logged.get("clearance"))


def authenticate(cat, name, password=None):
    """The User ``name`` proves to be: by ``password``, or (None) by the OS account the user
    is bound to. Raises AuthError (one line, never saying which part was wrong)."""
    from argon2.exceptions import Argon2Error, InvalidHashError
    cat.sync()
    with cat.engine.connect() as conn:
        row = _row(conn, name) if isinstance(name, str) else None
    refused = AuthError(_("user %(name)s could not be signed in (unknown user, inactive, or "
                          "wrong password or OS account)") % {"name": str(name)[:40]})
    if row is None or not row["active"]:
        raise refused
    logged = logged_users(cat).get(name)   # the row must say what the log says now
    if logged is None or not logged["active"] or any(logged[k] != row[k] for k in _STATE):
        raise refused
    if password is None:
        if row["os_account"] and row["os_account"] == os_login():
            return User(row["name"], row["role"], row["display"], "os", row["unit"],
                        row["clearance"])
        raise refused
    if not row["pw_hash"]:
        raise refused
    try:
        _hasher().verify(row["pw_hash"], password)
    except (Argon2Error, InvalidHashError):
        raise refused from None
    return User(row["name"], row["role"], row["display"], "password", row["unit"],
                row["clearance"])


def bootstrap_user(cat):
    """The station key's holder, allowed to add the first user only (the station log
    has no user)."""
    if logged_users(cat):       # the log's users, not the rows: a fresh --db has none
        raise AuthError(_("this archive has users: sign in as one of them (--user NAME)"))
    if not os.access(os.path.join(cat.archive_dir, "station.key"), os.R_OK):
        raise AuthError(_("only the holder of the station key (%(path)s) may add the first "
                          "user") % {"path": os.path.join(cat.archive_dir, "station.key")})
    return User("os:" + os_login(), "archive_head", os_login(), "station")


def list_users(cat):
    cat.sync()
    with cat.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(db.users.c.name, db.users.c.display, db.users.c.role,
                      db.users.c.os_account, db.users.c.active, db.users.c.added_by,
                      db.users.c.added_at, db.users.c.unit, db.users.c.clearance).order_by(db.users.c.name)).mappings()]
