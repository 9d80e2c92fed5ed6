"""The clerk verbs of ``sealcam`` (issue 11; SPEC §14): the archive's catalogue.

    sealcam user add NAME --role ROLE [--display TEXT] [--os-account LOGIN]
    sealcam user passwd NAME | user set NAME [--role ROLE] [--active yes|no] | user list
    sealcam catalogue reindex | catalogue check
    (search, tag, number, case, doc, retention: their own modules add them here)

Every verb takes --archive DIR, --db URL (default: [catalogue] url of ARCHIVE/station.toml,
else ARCHIVE/catalogue.sqlite) and --user NAME (or SEALCAM_USER). The password comes from
SEALCAM_PASSWORD, else a prompt on the terminal, else one line on standard input; a user
bound to the OS account running the command needs none. The first user of an archive is
added by whoever holds the station key, without --user.

Exit codes: 0 done, 1 the catalogue check found problems, 3 usage error, not an archive,
a database that cannot be used, or an action refused (one line says why and what to do),
5 sign-in failed or the user's role may not do this, 130 interrupted.
"""
from __future__ import annotations

import getpass
import json
import os
import sys

from .i18n import N_, _

__all__ = ["add_parsers", "EXIT_AUTH", "catalogue_common", "open_catalogue", "signed_in",
           "clerk_command"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_AUTH = 0, 1, 3, 5

EPILOG = N_("exit codes: 0 done, 1 the catalogue check found problems, 3 usage error, not "
           "an archive, a database that cannot be used or an action refused, 5 sign-in "
           "failed or the role may not do this, 130 interrupted")


def catalogue_common(p, *, user=True):
    p.add_argument("--archive", required=True, metavar="DIR", help=_("the station archive"))
    p.add_argument("--db", metavar="URL", default=None,
                   help=_("the catalogue database (sqlite:///FILE or postgresql://...; "
                          "default: [catalogue] url of station.toml, else "
                          "ARCHIVE/catalogue.sqlite)"))
    if user:
        p.add_argument("--user", metavar="NAME", default=os.environ.get("SEALCAM_USER"),
                       help=_("who you are (or SEALCAM_USER); the password comes from "
                              "SEALCAM_PASSWORD, a prompt, or standard input"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))


def _password(name, prompt=None):
    pw = os.environ.get("SEALCAM_PASSWORD")
    if pw is not None:
        return pw
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt or _("password for %(name)s: ") % {"name": name})
    line = sys.stdin.readline(4096) if sys.stdin is not None else ""
    return line.rstrip("\r\n") or None


def _new_password(name):
    """A new password for user ``name``: SEALCAM_NEW_PASSWORD, else asked twice on a
    terminal, else a line of standard input; never the signer's own (SEALCAM_PASSWORD)."""
    pw = os.environ.get("SEALCAM_NEW_PASSWORD")
    if pw is None and sys.stdin is not None and sys.stdin.isatty():
        pw = getpass.getpass(_("new password for %(name)s: ") % {"name": name})
        if pw != getpass.getpass(_("the same again: ")):
            from .catalogue.store import CatalogueError
            raise CatalogueError(_("the two passwords differ: nothing changed"))
    elif pw is None and sys.stdin is not None:
        pw = sys.stdin.readline(4096).rstrip("\r\n") or None
    if pw is not None and pw == os.environ.get("SEALCAM_PASSWORD"):
        from .catalogue.store import CatalogueError
        raise CatalogueError(_("the new password of %(name)s is the signer's own "
                               "(SEALCAM_PASSWORD): give it in SEALCAM_NEW_PASSWORD")
                             % {"name": name})
    return pw


def open_catalogue(args, readonly=False):
    from .catalogue.store import Catalogue
    return Catalogue(args.archive, args.db, readonly=readonly)


def signed_in(cat, args, *, bootstrap=False):
    """The user the arguments name, signed in; with ``bootstrap`` and no --user, the station
    key's holder when the archive has no user yet."""
    from .catalogue import users
    if not args.user:
        if bootstrap:
            return users.bootstrap_user(cat)
        raise users.AuthError(_("say who you are: --user NAME (or SEALCAM_USER)"))
    name = args.user
    with cat.engine.connect() as conn:
        import sqlalchemy as sa
        from .catalogue import db
        row = conn.execute(sa.select(db.users.c.os_account).where(
            db.users.c.name == name)).first()
    if row is not None and row[0] and row[0] == users.os_login() and \
            os.environ.get("SEALCAM_PASSWORD") is None:
        return users.authenticate(cat, name)
    return users.authenticate(cat, name, _password(name))


def _errors():
    from .archive import NotAnArchive
    from .catalogue.db import CatalogueDBError
    from .catalogue.events import CatalogueEventError
    from .catalogue.store import CatalogueError, PermissionRefused
    from .catalogue.users import AuthError
    from .stationconfig import StationConfigError
    return ((AuthError, PermissionRefused), (NotAnArchive, CatalogueDBError, CatalogueError,
                                             CatalogueEventError, StationConfigError))


def clerk_command(fn):
    """Wrap a verb: one line and the exit code for what a clerk can get wrong (control
    characters of an argument echoed in the message are escaped)."""
    def run(args):
        from sqlalchemy.exc import SQLAlchemyError
        from .records import printable
        auth, usage = _errors()
        try:
            return fn(args)
        except auth as e:
            print("sealcam %s: %s" % (args.verb, printable(str(e), backslash=False)),
                  file=sys.stderr)
            return EXIT_AUTH
        except usage as e:
            print("sealcam %s: %s" % (args.verb, printable(str(e), backslash=False)),
                  file=sys.stderr)
            return EXIT_USAGE
        except SQLAlchemyError as e:     # a damaged database: named, never a traceback
            from .catalogue.db import describe_url
            print(_("sealcam %(verb)s: the catalogue database %(db)s cannot be read (%(err)s); "
                    "run `sealcam catalogue reindex` (it rebuilds it from the signed log) or "
                    "restore it") % {"verb": args.verb, "db": describe_url(args.db) if getattr(args, "db", None)
                        else os.path.join(str(getattr(args, "archive", "ARCHIVE")),
                                          "catalogue.sqlite"),
                        "err": printable(str(e).splitlines()[0][:160], backslash=False)},
                  file=sys.stderr)
            return EXIT_USAGE
    return run


def _emit(args, obj, text):
    if args.json:
        print(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        print(text)


# -- user ----------------------------------------------------------------------------------

def _unit_clearance(p):
    from .catalogue.confidentiality_levels import LEVELS
    p.add_argument("--unit", help=_("the enforcement unit the user belongs to (a unit "
                                    "leader approves access to its unit's cases)"))
    p.add_argument("--clearance", choices=LEVELS,
                   help=_("the highest confidentiality level the user may see (default: "
                          "internal)"))


@clerk_command
def _user_add(args):
    from .catalogue import users
    with open_catalogue(args) as cat:
        who = signed_in(cat, args, bootstrap=True)
        pw = None
        if not args.os_account:
            pw = _new_password(args.name)
        i = cat.act(who, users.add_event(args.name, args.role, args.display or "",
                                         password=pw, os_account=args.os_account,
                                         unit=args.unit, clearance=args.clearance))
        _emit(args, {"user": args.name, "role": args.role, "by": who.name, "log_entry": i},
              _("user %(name)s added as %(role)s by %(by)s (station log entry %(i)d)")
              % {"name": args.name, "role": args.role, "by": who.name, "i": i})
    return EXIT_OK


@clerk_command
def _user_passwd(args):
    from .catalogue import users
    with open_catalogue(args) as cat:
        who = signed_in(cat, args)
        pw = _new_password(args.name)
        i = cat.act(who, users.password_event(args.name, pw))
        _emit(args, {"user": args.name, "by": who.name, "log_entry": i},
              _("password of %(name)s changed by %(by)s (station log entry %(i)d)")
              % {"name": args.name, "by": who.name, "i": i})
    return EXIT_OK


@clerk_command
def _user_set(args):
    from .catalogue import users
    active = None if args.active is None else args.active == "yes"
    with open_catalogue(args) as cat:
        who = signed_in(cat, args)
        i = cat.act(who, users.change_event(args.name, role=args.role, active=active,
                                            os_account=args.os_account, unit=args.unit,
                                            clearance=args.clearance))
        _emit(args, {"user": args.name, "by": who.name, "log_entry": i},
              _("user %(name)s changed by %(by)s (station log entry %(i)d)")
              % {"name": args.name, "by": who.name, "i": i})
    return EXIT_OK


@clerk_command
def _user_list(args):
    from .catalogue import users
    from .records import printable
    with open_catalogue(args) as cat:
        rows = users.list_users(cat)
    from .textcols import table
    lines = table([_("user"), _("role"), _("active"), _("name")],
                  [[r["name"], r["role"], _("yes") if r["active"] else _("no"),
                    printable(r["display"], backslash=False)] for r in rows])
    _emit(args, {"users": rows}, "\n".join(lines))
    return EXIT_OK


# -- catalogue -----------------------------------------------------------------------------

@clerk_command
def _catalogue_reindex(args):
    with open_catalogue(args) as cat:
        n = cat.reindex()
        _emit(args, {"entries": n, "problems": cat.problems},
              "\n".join([_("catalogue rebuilt from %(n)d station log entries") % {"n": n}]
                        + cat.problems))
        return EXIT_PROBLEMS if cat.problems else EXIT_OK


@clerk_command
def _catalogue_check(args):
    from .catalogue import check
    with open_catalogue(args) as cat:
        res = check.check(cat)
    _emit(args, res, check.text(res))
    return EXIT_PROBLEMS if res["problems"] else EXIT_OK


# the modules that add verbs of issue 12, each with add_parsers(sub, formatter)
_MORE_VERBS = (".catalogue.confidentiality_cli",    # classify
               ".catalogue.access_cli",             # access request|approve|refuse|...
               ".catalogue.handover_cli",           # handover
               ".disc.cli",                         # export disc
               ".backup.cli",                       # backup, restore
               ".desk.cli")                         # desk


def add_parsers(sub, formatter):
    """Add the clerk verbs to the `sealcam` sub-parsers ``sub``."""
    from .catalogue.users import ROLES
    u = sub.add_parser("user", help=_("the station's users and their roles"),
                       description=_("Named users with roles; every clerk action names its "
                                     "user in the station log (SPEC §14)."),
                       epilog=_(EPILOG), formatter_class=formatter)
    us = u.add_subparsers(dest="action", metavar="ACTION")
    us.required = True
    a = us.add_parser("add", help=_("add a user (the first one: by the station key's holder)"),
                      description=_("The new user's password comes from SEALCAM_NEW_PASSWORD, "
                                    "else it is asked twice (never the signer's own)."))
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--display", help=_("the name shown (e.g. 李娜)"))
    a.add_argument("--os-account", metavar="LOGIN",
                   help=_("sign in as this operating-system account instead of a password"))
    _unit_clearance(a)
    catalogue_common(a)
    a.set_defaults(func=_user_add)
    pw = us.add_parser("passwd", help=_("set a user's password"),
                       description=_("The new password comes from SEALCAM_NEW_PASSWORD, else "
                                     "it is asked twice (never the signer's own)."))
    pw.add_argument("name")
    catalogue_common(pw)
    pw.set_defaults(func=_user_passwd)
    st = us.add_parser("set", help=_("change a user's role, account or whether it is active"))
    st.add_argument("name")
    st.add_argument("--role", choices=ROLES)
    st.add_argument("--active", choices=("yes", "no"))
    st.add_argument("--os-account", metavar="LOGIN")
    _unit_clearance(st)
    catalogue_common(st)
    st.set_defaults(func=_user_set)
    ls = us.add_parser("list", help=_("list the users"))
    catalogue_common(ls, user=False)
    ls.set_defaults(func=_user_list)

    from .catalogue import search
    se = sub.add_parser("search", help=_("find recordings by any metadata, archive number, "
                                         "case, officer, device, date, interruption or mark"),
                        description=_("Recordings of the archive's catalogue (one per "
                                      "archived segment), newest first; with no filter, "
                                      "all of them. The report takes the same filters."),
                        epilog=_("exit codes: 0 listed (possibly none), 3 usage error or no "
                                 "usable catalogue"), formatter_class=formatter)
    search.add_command_arguments(se)
    se.set_defaults(func=search.run)

    c = sub.add_parser("catalogue", help=_("the catalogue's index: rebuild or check it"),
                       description=_("The catalogue is an index of the station log (SPEC "
                                     "§14): `reindex` rebuilds it from the log, `check` "
                                     "compares it with a rebuild."),
                       epilog=_(EPILOG), formatter_class=formatter)
    cs = c.add_subparsers(dest="action", metavar="ACTION")
    cs.required = True
    r = cs.add_parser("reindex", help=_("rebuild every row from the station log"))
    catalogue_common(r, user=False)
    r.set_defaults(func=_catalogue_reindex)
    k = cs.add_parser("check", help=_("compare the database with the station log"))
    catalogue_common(k, user=False)
    k.set_defaults(func=_catalogue_check)

    from .catalogue import filing_cli, retention_cli
    filing_cli.add_parsers(sub, formatter)      # tag, number, case, doc
    retention_cli.add_parsers(sub, formatter)   # retention
    import importlib
    for m in _MORE_VERBS:
        try:
            mod = importlib.import_module(m, __package__)
        except ModuleNotFoundError as e:
            if e.name != __package__ + m:       # a module being written: its verbs wait
                raise
            continue
        mod.add_parsers(sub, formatter)

    return sub
