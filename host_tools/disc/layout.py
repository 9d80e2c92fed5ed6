"""The disc's ISO 9660 images (pycdlib: ISO 9660 level 1 names, Joliet and Rock Ridge, so
long and Chinese names survive on Windows and Unix), written deterministically, and read
back safely (a hostile image is only ever read with pycdlib, into a new temporary folder).

    write_images(tree, [A.iso, B.iso], epoch, ref) -> image SHA-256 (both identical)
    extract_image(IMAGE.iso, dest)                 -> number of files (DiscImageError)
    bundle_verifier()                              -> the verifier module (bundle/verify_disc.py)

Determinism: pycdlib stamps its volume descriptors and directory records with time.time()
and time.localtime(); while an image is made its modules see a clock stopped at ``epoch``
(the time of the last station-log entry the disc proves) in UTC, and files are added in
sorted order, so the same tree gives the same bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
import threading
import time

from ..i18n import _

__all__ = ["write_images", "extract_image", "bundle_verifier", "image_name",
           "DiscImageError", "MAX_IMAGE", "MAX_FILES"]

MAX_IMAGE = (100 << 30) + (64 << 20)    # bytes of an image read back (a BD-XL and slack)
MAX_FILES = 100000
MAX_DEPTH = 8
MAX_NAME = 255                          # bytes of a Rock Ridge name
JOLIET_MAX = 64                         # UTF-8 bytes of a Joliet name (pycdlib)
SLACK = 64 << 20                        # extracted bytes beyond the image's own size
BLOCK = 1 << 20
_BUNDLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundle",
                       "verify_disc.py")


class DiscImageError(Exception):
    """An image that is not a readable sealcam disc: one line naming it."""


def image_name(ref):
    """The images' base name: the ref with anything but letters, digits, - _ . made _."""
    s = re.sub(r"[^A-Za-z0-9._-]", "_", ref).strip("._") or "disc"
    return "disc-" + s[:80]


def _vol_ident(ref):
    # 16 characters: the Joliet volume identifier is 32 bytes of UCS-2
    return (re.sub(r"[^A-Z0-9_]", "_", ref.upper()) or "SEALCAM")[:16]


class _StoppedClock:
    """What pycdlib's modules see as `time` while an image is made: UTC at ``epoch``."""

    def __init__(self, epoch):
        self.epoch = float(epoch)

    def time(self):
        return self.epoch

    def localtime(self, t=None):
        return time.gmtime(self.epoch if t is None else t)

    def __getattr__(self, name):
        return getattr(time, name)


_CLOCK_LOCK = threading.Lock()         # one image at a time per process (the desk's jobs)


@contextlib.contextmanager
def _stopped_clock(epoch):
    import pycdlib  # noqa: F401
    with _CLOCK_LOCK:
        with _clock_set(epoch):
            yield


@contextlib.contextmanager
def _clock_set(epoch):
    clock = _StoppedClock(epoch)
    mods = [m for n, m in list(sys.modules.items())
            if n.startswith("pycdlib.") and getattr(m, "time", None) is time]
    for m in mods:
        m.time = clock
    try:
        yield
    finally:
        for m in mods:
            m.time = time


def _cut(s, n):
    """``s`` cut to at most ``n`` UTF-8 bytes, at a character boundary."""
    return s.encode("utf-8")[:n].decode("utf-8", "ignore")


def _joliet(name):
    """A Joliet name (pycdlib takes at most 64 UTF-8 bytes): long names keep their start
    and their extension (Rock Ridge keeps the whole name)."""
    if len(name.encode("utf-8")) <= JOLIET_MAX:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and len(ext.encode("utf-8")) <= 8:
        return _cut(stem, JOLIET_MAX - len(ext.encode("utf-8")) - 1) + "." + ext
    return _cut(name, JOLIET_MAX)


def write_images(tree, paths, epoch, ref):
    """Write the folder ``tree`` as identical ISO images at ``paths``; read each back
    (SHA-256 of the file, and MANIFEST.cbor through pycdlib) and return the digest."""
    import pycdlib
    iso = pycdlib.PyCdlib()
    try:
        with _stopped_clock(epoch):
            iso.new(interchange_level=1, vol_ident=_vol_ident(ref), joliet=3,
                    rock_ridge="1.09", app_ident_str="SEALCAM DISC")
            _add(iso, tree, "", "/", "/", [0])
            for p in paths:             # the originals: readable by the owner only
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as f:
                    iso.write_fp(f)
            iso.close()
    except BaseException:
        for p in paths:                 # never half an image left behind
            if os.path.isfile(p):
                os.unlink(p)
        raise
    digests = [_sha256(p) for p in paths]
    if len(set(digests)) != 1:
        raise DiscImageError(_("the two images differ (%(a)s, %(b)s): write them again")
                             % {"a": digests[0], "b": digests[-1]})
    with open(os.path.join(tree, "MANIFEST.cbor"), "rb") as f:
        manifest = f.read()
    for p in paths:
        if _read_back(p, "/MANIFEST.cbor") != manifest:
            raise DiscImageError(_("%(path)s does not read back as written") % {"path": p})
    return digests[0]


def _add(iso, tree, rel, iso_dir, jdir, count):
    here = os.path.join(tree, *rel.split("/")) if rel else tree
    names = sorted(os.listdir(here))
    n_dir = n_file = 0
    for name in names:
        full = os.path.join(here, name)
        sub = rel + "/" + name if rel else name
        count[0] += 1
        if count[0] > MAX_FILES:
            raise DiscImageError(_("more than %(n)d files for one disc") % {"n": MAX_FILES})
        jp = jdir + _joliet(name)
        if os.path.isdir(full):
            n_dir += 1
            ip = "%sD%07d" % (iso_dir, n_dir)
            iso.add_directory(iso_path=ip, rr_name=name, joliet_path=jp)
            _add(iso, tree, sub, ip + "/", jp + "/", count)
        else:
            n_file += 1
            iso.add_file(full, iso_path="%sF%07d.DAT;1" % (iso_dir, n_file), rr_name=name,
                         joliet_path=jp, file_mode=0o100444)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(BLOCK), b""):
            h.update(b)
    return h.hexdigest()


def _read_back(path, rr_path):
    import io
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=rr_path)
        return out.getvalue()
    finally:
        iso.close()


# -- reading an image someone hands us ----------------------------------------------------

def _name_ok(name):
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and "\x00" not in name and len(name.encode("utf-8", "replace")) <= MAX_NAME and \
        not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in name)


def extract_image(image, dest):
    """Copy the files of the ISO ``image`` into the empty folder ``dest`` with pycdlib (no
    mounting): Rock Ridge names only, each checked (no link, no .., no slash, no control
    character), folders at most MAX_DEPTH deep, at most MAX_FILES entries and no more bytes
    than the image holds (plus SLACK). DiscImageError names what is wrong."""
    import pycdlib
    try:
        st = os.stat(image)
    except OSError as e:
        raise DiscImageError("%s: %s" % (image, e.strerror or e)) from None
    if not os.path.isfile(image):
        raise DiscImageError(_("%(path)s is not a regular file") % {"path": image})
    if st.st_size > MAX_IMAGE:
        raise DiscImageError(_("%(path)s is %(n)d bytes: larger than any disc")
                             % {"path": image, "n": st.st_size})
    iso = pycdlib.PyCdlib()
    try:
        iso.open(image)
    except Exception as e:             # hostile bytes: whatever pycdlib raises is one line
        raise DiscImageError(_("%(path)s is not an ISO 9660 image pycdlib can read (%(err)s)")
                             % {"path": image, "err": str(e)[:200]}) from None
    try:
        if not iso.has_rock_ridge():
            raise DiscImageError(_("%(path)s has no Rock Ridge names: it is not a sealcam disc")
                                 % {"path": image})
        budget = [st.st_size + SLACK, 0]
        _extract(iso, "/", dest, 0, budget)
        return budget[1]
    except DiscImageError:
        raise
    except OSError:
        raise                           # our side (a full disk): the caller says so
    except Exception as e:             # hostile bytes: whatever pycdlib raises is one line
        raise DiscImageError(_("%(path)s cannot be read (%(err)s)")
                             % {"path": image, "err": str(e)[:200]}) from None
    finally:
        iso.close()


def _extract(iso, iso_dir, dest, depth, budget):
    if depth > MAX_DEPTH:
        raise DiscImageError(_("folders nested deeper than %(n)d") % {"n": MAX_DEPTH})
    seen = set()
    for child in iso.list_children(iso_path=iso_dir):
        if child is None or child.is_dot() or child.is_dotdot():
            continue
        budget[1] += 1
        if budget[1] > MAX_FILES:
            raise DiscImageError(_("more than %(n)d files") % {"n": MAX_FILES})
        rr = child.rock_ridge
        if rr is None:
            raise DiscImageError(_("an entry without a Rock Ridge name"))
        name = rr.name().decode("utf-8", "replace")
        if not _name_ok(name) or name in seen:
            raise DiscImageError(_("an entry named %(name)r: not a name a disc may hold")
                                 % {"name": name[:80]})
        seen.add(name)
        if rr.is_symlink():
            raise DiscImageError(_("%(name)s is a symbolic link: a disc holds none")
                                 % {"name": name})
        ip = iso.full_path_from_dirrecord(child)
        out = os.path.join(dest, name)
        if child.is_dir():
            os.mkdir(out, 0o700)
            _extract(iso, ip, out, depth + 1, budget)
        elif child.is_file():
            n = child.get_data_length()
            budget[0] -= n
            if budget[0] < 0:
                raise DiscImageError(_("its files claim more bytes than the image holds"))
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                iso.get_file_from_iso_fp(f, iso_path=ip)
                if f.tell() > n:
                    raise DiscImageError(_("%(name)s is longer than its entry says")
                                         % {"name": name})
        else:
            raise DiscImageError(_("%(name)s is neither a file nor a folder") % {"name": name})


_VERIFIER = []


def bundle_verifier():
    """The offline verifier (bundle/verify_disc.py of this installation, never a disc's
    copy) as a module, with the installed sealcamfw."""
    if not _VERIFIER:
        # its checks module first, under the name verify_disc imports (on a disc it finds
        # it in verifier/)
        if "sealcam_disc_checks" not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                "sealcam_disc_checks", os.path.join(os.path.dirname(_BUNDLE),
                                                    "sealcam_disc_checks.py"))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules["sealcam_disc_checks"] = mod
        spec = importlib.util.spec_from_file_location("sealcam_verify_disc", _BUNDLE)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _VERIFIER.append(mod)
    return _VERIFIER[0]
