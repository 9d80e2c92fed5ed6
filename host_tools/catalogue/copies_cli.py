"""`sealcam access copy|export`: viewing copies and extracts under an approved request
(host_tools.catalogue.copies; R15, SPEC §14.10).

    sealcam access copy   REQUEST DEVICE/SEGMENT [--out FILE.mp4]
    sealcam access export REQUEST DEVICE/SEGMENT --out DIR [--from S --to S]

`copy` makes (or finds) the watermarked viewing copy of the recording for the signed-in
user, who must be the requester of an approved request naming view or copy; it prints the
copy's checked path in the archive (read-only), and with --out writes the same bytes to
FILE.mp4. `export` writes the verifiable extract (the clip of SPEC §12 and its .prov) of
the recording's originals to DIR, under an approved request naming export. Each is one
register line (access_used) naming the output's SHA-256.

They take --archive DIR, --db URL, --user NAME and --json as the other clerk verbs do
(host_tools/cli_clerk.py); exit codes are theirs: 0 done, 3 refused or a usage error (one
line says why), 5 sign-in failed, the role may not do this, or no approval allows it.

ACCESS's access_cli.py calls add_access_actions(its ACTION sub-parsers).
"""
from __future__ import annotations

from ..i18n import _
from ..records import printable

__all__ = ["add_access_actions", "parse_recording"]


def _cli():
    from .. import cli_clerk
    return cli_clerk


def parse_recording(text):
    """(device, segment) of "DEVICE/SEGMENT" or "DEVICE:SEGMENT" (recref's one reading);
    CopyError otherwise."""
    from . import recref
    from .copies import CopyError
    return recref.parse(text, error=CopyError)


def _write_out(cat, sha, out):
    """Copy the checked viewing copy to ``out`` (a new file, never through a link)."""
    import os
    from .copies import CopyError, open_copy
    f, _size = open_copy(cat, sha)
    with f:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        except FileExistsError:
            raise CopyError(_("%(path)s exists already: name a new file")
                            % {"path": out}) from None
        except OSError as e:
            raise CopyError(_("%(path)s cannot be written (%(why)s)")
                            % {"path": out, "why": e.strerror or e}) from None
        try:
            with os.fdopen(fd, "wb") as g:
                for block in iter(lambda: f.read(1 << 20), b""):
                    g.write(block)
        except BaseException:
            os.unlink(out)
            raise
    return os.path.abspath(out)


def _copy(args):
    from . import copies
    cli = _cli()
    dev, seg = parse_recording(args.recording)
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        res = copies.make_view_copy(cat, who, args.request, dev, seg)
        if args.out:
            res["out"] = _write_out(cat, res["sha256"], args.out)
    text = _("viewing copy of %(rec)s for %(by)s under request %(id)s%(again)s:\n"
             "  %(path)s\n  sha256 %(sha)s, %(size)d bytes, watermarked %(wm)s") % {
        "rec": printable("%s/%d" % (dev, seg)), "by": who.name,
        "id": printable(args.request), "path": res.get("out") or res["path"],
        "sha": res["sha256"], "size": res["size"],
        "again": _(" (made before, handed out again)") if res["reused"] else "",
        "wm": printable(res["derivation"]["watermark"].replace("\n", " / "),
                        backslash=False)}
    cli._emit(args, res, text)
    return 0


def _export(args):
    from . import copies
    cli = _cli()
    dev, seg = parse_recording(args.recording)
    span = None
    if args.since is not None or args.until is not None:
        if args.since is None or args.until is None or not 0 <= args.since < args.until:
            raise copies.CopyError(_("--from and --to go together: seconds into the "
                                     "recording, from before to"))
        span = (args.since, args.until)
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        res = copies.export_extract(cat, who, args.request, dev, seg, args.out, span=span)
    text = _("extract of %(rec)s for %(by)s under request %(id)s:\n  %(file)s\n  %(prov)s\n"
             "  sha256 %(sha)s, %(size)d bytes\n  check it: %(verify)s") % {
        "rec": printable("%s/%d" % (dev, seg)), "by": who.name,
        "id": printable(args.request), "file": res["file"], "prov": res["prov"],
        "sha": res["sha256"], "size": res["size"], "verify": res["verify"]}
    cli._emit(args, res, text)
    return 0


def _seconds(s):
    import argparse
    try:
        x = float(s)
    except ValueError:
        x = -1
    if not 0 <= x <= 86400:
        raise argparse.ArgumentTypeError(_("seconds 0..86400: %(s)r") % {"s": s})
    return x


def add_access_actions(sub):
    """Add `copy` and `export` to the ACTION sub-parsers of `sealcam access`."""
    cli = _cli()
    p = sub.add_parser("copy", help=_("a watermarked viewing copy (MP4) of a recording, "
                                      "under your approved request"))
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("recording", metavar="DEVICE/SEGMENT")
    p.add_argument("--out", metavar="FILE.mp4",
                   help=_("also write the copy to this new file"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_copy))
    p = sub.add_parser("export", help=_("a verifiable extract of a recording's originals "
                                        "(clip and .prov), under your approved request"))
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("recording", metavar="DEVICE/SEGMENT")
    p.add_argument("--out", metavar="DIR", required=True,
                   help=_("the folder the extract is written to (outside the archive)"))
    p.add_argument("--from", dest="since", type=_seconds, metavar="S",
                   help=_("start, seconds into the recording (default: its start)"))
    p.add_argument("--to", dest="until", type=_seconds, metavar="S",
                   help=_("end, seconds into the recording (default: its end)"))
    cli.catalogue_common(p)
    p.set_defaults(func=cli.clerk_command(_export))
    return sub
