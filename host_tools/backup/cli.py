"""`sealcam backup` and `sealcam restore` (R14; SPEC §14.12; host_tools/backup).

    sealcam backup  --archive A --to DIR [--recheck] [--user U] [--db URL] [--json]
    sealcam restore --from DIR --archive NEW [--expect-key FILE|FINGERPRINT] [--json]

backup: exit 0 done, 3 refused or a usage error (one line says why and what to do), 5
sign-in failed or the role may not back up (archive_head, technician). restore: 0 the
backup is restored and every object, file and the signed checkpoint checked (run `sealcam
verify NEW` to prove it), 1 something in the backup has changed or is missing (each named,
with what to do) or objects encrypted at rest could not be checked without their key, 3
refused (not a backup, not signed by the station key --expect-key pins, the manifest not
the one the station signed, NEW not empty). A progress bar on a terminal; --json prints
one object at the end (and progress as JSON lines on stderr).
"""
from __future__ import annotations

import json
import sys

from ..i18n import _
from ..records import printable

def _lines(lines):
    """Lines for the terminal, each with its control characters escaped."""
    return "\n".join(printable(x, backslash=False) for x in lines)


__all__ = ["add_parsers"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 3


def _progress(args):
    if not args.json:
        return None                         # a bar when stderr is a terminal
    def tell(state):
        print(json.dumps({"progress": state}, sort_keys=True), file=sys.stderr, flush=True)
    return tell


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%d %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1024.0


def _backup(args):
    from .. import cli_clerk as cli
    from .backup import BackupError, backup
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        try:
            res = backup(cat, who, args.to, progress=_progress(args),
                         recheck=args.recheck)
        except (BackupError, OSError) as e:
            print("sealcam backup: %s" % printable(str(e), backslash=False), file=sys.stderr)
            return EXIT_USAGE
    lines = [_("backup %(snap)s in %(dest)s: %(n)d objects, %(new)d new (%(bytes)s); station "
               "log %(size)d entries, root %(root)s; recorded as station log entry %(i)d")
             % {"snap": res["snapshot"], "dest": res["destination"], "n": res["objects"],
                "new": res["objects_new"], "bytes": _human(res["bytes_new"]),
                "size": res["log_size"], "root": res["root"][:16], "i": res["log_entry"]}]
    lines += [_("note: %(note)s") % {"note": x} for x in res["notes"]]
    lines.append(_("station key %(fp)s: keep this fingerprint apart from the backup and give "
                   "it to `sealcam restore --expect-key`") % {"fp": res["station_key"]})
    lines.append(_("keys travel apart: station.key and the at-rest key are not in the backup "
                   "(README.txt in the backup folder says how)"))
    cli._emit(args, res, _lines(lines))
    return EXIT_OK


def _restore(args):
    from .backup import BackupError
    from .restore import restore
    try:
        res = restore(args.source, args.archive, progress=_progress(args),
                      expect_key=args.expect_key)
    except (BackupError, OSError) as e:
        print("sealcam restore: %s" % printable(str(e), backslash=False), file=sys.stderr)
        return EXIT_USAGE
    except (RecursionError, MemoryError, ValueError) as e:   # a hostile backup: one line
        print(_("sealcam restore: %(dir)s cannot be read as a sealcam backup (%(err)s): "
                "take another backup") % {
                    "dir": printable(str(args.source), backslash=False),
                    "err": printable(type(e).__name__ + (": %s" % e if str(e) else ""),
                                     backslash=False)[:200]}, file=sys.stderr)
        return EXIT_USAGE
    if res["ok"]:
        lines = [_("restored snapshot %(snap)s into %(new)s: %(n)d objects (%(bytes)s) and "
                   "%(views)d device view files, each object hashed; station log %(size)d "
                   "entries under its signed checkpoint, the catalogue rebuilt from it. "
                   "Prove it: sealcam verify %(new)s")
                 % {"snap": res["snapshot"], "new": res["archive"], "n": res["objects"],
                    "bytes": _human(res["bytes"]), "views": res["views"],
                    "size": res["log_entries"]}]
    elif not res["bad_count"]:
        lines = [_("restored snapshot %(snap)s into %(new)s, but NOT PROVEN: %(n)d object(s) "
                   "are encrypted at rest and the at-rest key is not at hand to check them")
                 % {"snap": res["snapshot"], "new": res["archive"], "n": res["unchecked"]}]
    else:
        lines = [_("NOT RESTORED: %(n)d problem(s) in the backup %(dir)s; %(new)s is not an "
                   "archive to rely on (remove it, then restore again into an empty folder)")
                 % {"n": res["bad_count"], "dir": res["backup"], "new": res["archive"]}]
        lines += ["  " + b for b in res["bad"]]
    lines += [_("note: %(note)s") % {"note": x} for x in res["notes"]]
    text = _lines(lines)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        print(text, file=sys.stdout if res["ok"] else sys.stderr)
    return EXIT_OK if res["ok"] else EXIT_PROBLEMS


def add_parsers(sub, formatter):
    """Add `sealcam backup` and `sealcam restore` (cli_clerk._MORE_VERBS)."""
    from .. import cli_clerk as cli
    b = sub.add_parser(
        "backup", help=_("copy the archive to an off-site backup folder (monthly; "
                         "incremental, each object checked on arrival)"),
        description=_("Copies the objects the backup folder lacks (each read back and "
                      "hashed), the station log, the index and the catalogue into DIR, and "
                      "records the backup as a signed event with its checkpoint. Keys never "
                      "go into the backup (DIR/README.txt). Rerun after an interruption: "
                      "it continues."),
        epilog=_("exit codes: 0 done, 3 refused or usage error, 5 sign-in failed or the role "
                 "may not back up"), formatter_class=formatter)
    b.add_argument("--to", required=True, metavar="DIR",
                   help=_("the backup folder (made if absent; a disk taken off site)"))
    b.add_argument("--recheck", action="store_true",
                   help=_("also read back every object the backup folder holds already and "
                          "copy a damaged one again (slower: reads the whole backup)"))
    cli.catalogue_common(b)
    b.set_defaults(func=cli.clerk_command(_backup))
    r = sub.add_parser(
        "restore", help=_("restore a backup into a new, empty archive folder"),
        description=_("Restores the newest snapshot of a backup folder into NEW, checking "
                      "the station log's signed checkpoint (against --expect-key), the "
                      "manifest against the signed backup_made event the log ends with, "
                      "every file and every object's hash, and rebuilds the catalogue from "
                      "the log; then `sealcam verify NEW` proves it complete."),
        epilog=_("exit codes: 0 restored and checked, 1 the backup has a changed or missing "
                 "object or file (named), 3 not a backup, not the station's signed one, or "
                 "NEW not empty"),
        formatter_class=formatter)
    r.add_argument("--from", dest="source", required=True, metavar="DIR",
                   help=_("the backup folder"))
    r.add_argument("--archive", required=True, metavar="NEW",
                   help=_("the new archive folder (absent or empty)"))
    r.add_argument("--expect-key", metavar="FILE|FINGERPRINT",
                   help=_("the station's public key (station.pub, 64 hex digits, or the "
                          "fingerprint `sealcam backup` prints): the backup must be signed "
                          "by it (without it, the key in the backup is trusted and named)"))
    r.add_argument("--json", action="store_true", help=_("machine-readable output"))
    r.set_defaults(func=_restore)
