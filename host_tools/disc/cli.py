"""`sealcam export disc`: two identical ISO images of a case or an archive number, with
their label (R13; SPEC §14.11); and the part of `sealcam verify` that reads a disc.

    sealcam export disc CASE|NUMBER --archive A --out DIR --user U --request N [--db URL]
                        [--json]
    sealcam verify IMAGE.iso|/mnt/disc [--station-key FILE|HEX|FINGERPRINT] [--json]
                                                              (host_tools/cli.py hook)

Exit codes (export disc): those of the clerk verbs (0 written, 3 refused or usage, 5 sign-in,
role, or no approved export request covering it). Verify: 0 OK or OK_WITH_MISSING_INFO,
1 NOT_OK, 3 not a disc / unreadable.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

from ..i18n import _
from ..records import printable

__all__ = ["add_parsers", "is_disc", "verify_disc_path"]


def _cli():
    from .. import cli_clerk
    return cli_clerk


def _export(args):
    from .build import build_disc
    from .layout import DiscImageError
    cli = _cli()
    with cli.open_catalogue(args) as cat:
        who = cli.signed_in(cat, args)
        progress = None if args.json else (lambda m: print(m, file=sys.stderr))
        try:
            res = build_disc(cat, who, args.ref, args.out, progress=progress,
                             request=args.request or "")
        except DiscImageError as e:
            from ..catalogue.store import CatalogueError
            raise CatalogueError(str(e)) from None
        except OSError as e:
            from ..catalogue.store import CatalogueError
            raise CatalogueError(_("the disc cannot be written to %(out)s (%(err)s)")
                                 % {"out": args.out, "err": e.strerror or e}) from None
    text = "\n".join([
        _("disc of %(kind)s %(ref)s: %(n)d recordings, %(d)d documents")
        % {"kind": _("case") if res["kind"] == "case" else _("archive number"),
           "ref": res["ref"], "n": len(res["recordings"]),
           "d": res["documents"]},
        _("images (identical): %(a)s, %(b)s") % {"a": res["images"][0], "b": res["images"][1]},
        _("image SHA-256:    %(h)s") % {"h": res["image_sha256"]},
        _("contents SHA-256: %(h)s") % {"h": res["contents_sha256"]},
        _("label: %(pdf)s") % {"pdf": res["label_pdf"]},
        _("burn each image to its own disc with the operating system's burner; check a disc "
          "with `sealcam verify IMAGE.iso` or `python3 verify_disc.py` at its root")])
    cli._emit(args, res, "\n".join(printable(ln, backslash=False)
                                     for ln in text.split("\n")))
    return 0


def add_parsers(sub, formatter):
    cli = _cli()
    if "export" in sub.choices:         # another module's `export`: add ours beside it
        return
    p = sub.add_parser("export", help=_("export from the archive: duplicate discs"),
                       description=_("Two identical ISO 9660 images of a case or an archive "
                                     "number with an offline verifier, and their label "
                                     "(R13; SPEC §14.11)."),
                       epilog=_(cli.EPILOG), formatter_class=formatter)
    ps = p.add_subparsers(dest="action", metavar="WHAT")
    ps.required = True
    d = ps.add_parser("disc", help=_("two identical disc images and their label (PDF)"))
    d.add_argument("ref", metavar="CASE|NUMBER", help=_("a case number or an archive number"))
    d.add_argument("--out", required=True, metavar="DIR",
                   help=_("where the images and the label go (not inside the archive)"))
    d.add_argument("--request", metavar="N",
                   help=_("your approved access request naming export of this case or "
                          "archive number (R15; `sealcam access request`)"))
    cli.catalogue_common(d)
    d.set_defaults(func=cli.clerk_command(_export))


# -- sealcam verify on a disc --------------------------------------------------------------

def is_disc(path):
    """True if ``path`` is a disc image (*.iso file) or a disc's folder (MANIFEST.cbor and
    verify_disc.py at its root, no archive.sqlite)."""
    p = os.fspath(path)
    if os.path.isfile(p) and p.lower().endswith(".iso"):
        return True
    return os.path.isdir(p) and os.path.isfile(os.path.join(p, "MANIFEST.cbor")) and \
        os.path.isfile(os.path.join(p, "verify_disc.py")) and \
        not os.path.exists(os.path.join(p, "archive.sqlite"))


def station_key_pin(value):
    """The station key ``--station-key`` names: a key file (raw, hex or PEM/DER) or 64 hex
    digits -> its 32 bytes; a fingerprint (32 hex digits, ':' allowed) -> that fingerprint
    as the label prints it. ValueError (a one-line message) otherwise."""
    from .. import keys
    from ..label import normalize_fingerprint
    v = value.strip()
    if os.path.exists(value):
        try:
            return keys.load_public_key(value)
        except OSError as e:
            raise ValueError(_("cannot read the station key %(key)s: %(err)s")
                             % {"key": printable(value, backslash=False),
                                "err": e.strerror or e}) from None
        except keys.KeyFileError as e:
            raise ValueError(_("%(key)s is not a station public key: %(err)s")
                             % {"key": printable(value, backslash=False), "err": e}) from None
    hx = "".join(ch for ch in v.lower() if ch not in ": -")
    if len(hx) == 64 and all(ch in "0123456789abcdef" for ch in hx):
        return bytes.fromhex(hx)
    fp = normalize_fingerprint(v)
    if fp:
        return fp
    raise ValueError(_("--station-key %(key)s is neither a key file, 64 hex digits nor a "
                       "fingerprint (32 hex digits, as on the disc's label)")
                     % {"key": printable(value[:80], backslash=False)})


def verify_disc_path(path, as_json=False, out=None, err=None, station_key=None):
    """`sealcam verify` of a disc image or folder: the installed verifier (never the
    disc's own code) on the folder, or on the image's files copied with pycdlib into a new
    temporary folder (removed after). ``station_key`` (32 bytes or a fingerprint) pins the
    station key: a disc signed by another is NOT_OK. Returns the exit code: 0 OK or
    OK_WITH_MISSING_INFO, 1 NOT_OK, 3 not a disc or unreadable."""
    from .layout import DiscImageError, bundle_verifier, extract_image
    out, err = out or sys.stdout, err or sys.stderr
    v = bundle_verifier()
    p = os.path.abspath(os.fspath(path))
    tmp = None
    try:
        if os.path.isfile(p):
            tmp = tempfile.mkdtemp(prefix="sealcam-disc-")
            try:
                extract_image(p, tmp)
            except DiscImageError as e:
                res = v.Result(p)
                res.pinned = station_key is not None
                res.problems.append(str(e))
                return _emit(res, as_json, out, image=p)
            except OSError as e:
                print("sealcam verify: %s: %s" % (p, e.strerror or e), file=err)
                return 3
            root = tmp
        else:
            root = p
        try:
            res = v.verify(root, station_key)
        except v.NotADisc as e:
            print("sealcam verify: %s" % printable(str(e).replace(tmp or "\0", p),
                                                  backslash=False), file=err)
            return 3
        res.root = p
        return _emit(res, as_json, out, image=p if tmp else None)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _emit(res, as_json, out, image=None):
    if as_json:
        j = res.to_json()
        if image:
            j["image"] = image
        out.write(json.dumps(j, indent=2, ensure_ascii=True) + "\n")
    else:
        out.write(res.to_text())
    return 1 if res.verdict == "NOT_OK" else 0
