"""Viewing copies and extracts (R15 "people work on copies"; SPEC §14.10): the `copy_made`
event.

    c = make_view_copy(cat, user, request_id, "SC-0001", 5)   # {"sha256", "path", ...}
    path = copy_path(cat, c["sha256"])          # checked: a copy_made names it, it hashes
    f, size = open_copy(cat, c["sha256"])       # the same, opened (serve this descriptor)
    x = export_extract(cat, user, request_id, "SC-0001", 5, "/media/usb")

People see only derived files, never the originals. A viewing copy is an H.264/AAC MP4
that FFmpeg derives from a segment that verifies (host_tools.viewcopy), with the
requester and the request number burned into the picture; it is kept read-only (0444) at
ARCHIVE/copies/<sha[:2]>/<sha[2:]>.mp4, named by its SHA-256. An extract of originals is
the verifiable clip of SPEC §12 (host_tools.clipcut), written with its .prov to a folder
outside the archive.

Every copy is made under an approved access request (host_tools.catalogue.access):
``access.authorize`` first (view or copy for a viewing copy, export for an extract), then
the file, then the `copy_made` event (its provenance: the originals' object hashes, the
signed records covering them, the tool, its version and arguments, the watermark), then
``access.record_use`` (the register's line, naming the output's hash). Nothing is handed
out unless every step held; the same request asking again for the same recording gets the
copy made before (one more register line for each hand-out).

The event (SPEC §14.10): {request, device, segment, sha256, size, kind: view | extract,
sources: [{kind: media|index, path, sha256, ...} | {kind: record, seq, record, hash}],
derivation: {tool, version, args, watermark}}.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat

import sqlalchemy as sa

from . import db, store
from ..i18n import _
from .events import base, field
from .handout import move_into_place, private_dir, remove_private

__all__ = ["KINDS", "CopyError", "copy_event", "make_view_copy", "copy_path", "open_copy",
           "export_extract", "copies_of", "copies_dir", "view_action", "prune"]

KINDS = ("view", "extract")
COPIES = "copies"               # ARCHIVE/copies
SOURCES_MAX = 16
_HEX = frozenset("0123456789abcdef")
_SOURCE_KINDS = ("media", "index", "record", "prov")
MAX_SIZE = 1 << 40


class CopyError(store.CatalogueError):
    """A copy cannot be made or handed out (one line: what and what to do)."""


def _is_sha(s):
    return isinstance(s, str) and len(s) == 64 and set(s) <= _HEX


def copies_dir(cat):
    return os.path.join(cat.archive_dir, COPIES)


def _stored(cat, sha):
    return os.path.join(copies_dir(cat), sha[:2], sha[2:] + ".mp4")


# -- sealed at rest (SPEC §14.10): a station with [confidentiality] key_file ----------------

def _key(cat):
    """The archive's at-rest key (None: objects are kept in clear); CopyError when one is
    configured but cannot be used (nothing is written in clear by mistake)."""
    from ..archive import atrest
    try:
        return atrest.load_key(cat.archive_dir)
    except atrest.AtRestError as e:
        raise CopyError(_("the archive's at-rest key cannot be used (%(why)s): no viewing "
                          "copy is made or handed out; see station.toml [confidentiality]")
                        % {"why": e}) from None


def _plain_dir(cat):
    """The archive's private folder (0700, the station user's, outside the archive) where
    a sealed viewing copy is decrypted to be handed out by path; prune empties it."""
    import re
    import tempfile
    aid = re.sub(r"[^A-Za-z0-9]", "", str(cat.archive.archive_id))[:32]
    d = os.path.join(tempfile.gettempdir(), "sealcam-copies-%d-%s" % (os.getuid(), aid))
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise CopyError(_("%(dir)s is not a private folder of this user (a link, another "
                          "owner, or readable by others): remove it") % {"dir": d})
    return d


def _seal_into(cat, key, plain, dst, sha, size):
    """Write ``plain`` (the copy's bytes, named ``sha``) sealed (atrest's format, the copy's
    SHA-256 its name) to ``dst`` by rename from ARCHIVE/copies/.tmp."""
    from ..archive import atrest
    work = os.path.join(copies_dir(cat), ".tmp")
    os.makedirs(work, mode=0o700, exist_ok=True)
    tmp = os.path.join(work, "sealed-%d-%s" % (os.getpid(), os.urandom(6).hex()))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(plain, "rb") as f, os.fdopen(fd, "wb") as g:
            atrest.seal_stream(key, sha, size, f.read, g.write)
            g.flush()
            os.fsync(g.fileno())
        os.replace(tmp, dst)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def copy_event(request_id, device, segment, sha256, size, kind, sources, derivation):
    return base("copy_made", None, None, request=request_id, device=device, segment=segment,
                sha256=sha256, size=size, kind=kind, sources=sources, derivation=derivation)


# -- the event ------------------------------------------------------------------------------

# the keys of each kind of source (SPEC §14.10, CDDL copy-source)
_SOURCE_KEYS = {"media": {"kind", "path", "sha256", "length", "chunks", "root"},
                "index": {"kind", "path", "sha256"},
                "record": {"kind", "seq", "record", "hash"},
                "prov": {"kind", "sha256"}}


def _check_sources(srcs):
    if not isinstance(srcs, list) or not 1 <= len(srcs) <= SOURCES_MAX:
        raise CopyError(_("copy_made: sources is a list of 1 to %(n)d originals")
                        % {"n": SOURCES_MAX})
    kinds = set()
    for s in srcs:
        if not isinstance(s, dict) or s.get("kind") not in _SOURCE_KINDS or \
                set(s) != _SOURCE_KEYS[s["kind"]]:
            raise CopyError(_("copy_made: each source is a media, index, record or prov, "
                              "with its keys (SPEC §14.10)"))
        k = s["kind"]
        kinds.add(k)
        e = dict(s, type="copy_made")
        if not _is_sha(s["hash" if k == "record" else "sha256"]) or \
                (k == "media" and not _is_sha(s["root"])):
            raise CopyError(_("copy_made: a source is named by its SHA-256 (64 hex digits)"))
        if k == "record":
            field(e, "seq", int)
            field(e, "record", str, max_len=32)
        elif k in ("media", "index"):
            field(e, "path", str, max_len=64)
        if k == "media":
            field(e, "length", int)
            field(e, "chunks", int)
    if not {"media", "record"} <= kinds:
        raise CopyError(_("copy_made: the sources name the media and the signed records "
                          "that cover it"))


def _check_derivation(d):
    if not isinstance(d, dict) or set(d) != {"tool", "version", "args", "watermark"}:
        raise CopyError(_("copy_made: derivation is a map of tool, version, args, "
                          "watermark"))
    e = dict(d, type="copy_made")
    field(e, "tool", str, max_len=32)       # "ffmpeg" | "sealcam clip"
    field(e, "version", str, max_len=64)
    field(e, "args", str, max_len=2000)
    field(e, "watermark", str, max_len=400)


def _check_records(cat, device, srcs):
    """The record sources are the archive's records of that device, by hash (the index
    the signed log was checked against when they were offloaded)."""
    for s in srcs:
        if s["kind"] != "record":
            continue
        row = cat.archive.db.execute("SELECT hash FROM records WHERE device = ? AND seq = ?",
                                     (device, s["seq"])).fetchone()
        if row is None or bytes(row[0]).hex() != s["hash"]:
            raise CopyError(_("copy_made: record %(seq)d of %(device)s is not the one the "
                              "archive holds") % {"seq": s["seq"], "device": device})


def _action_of(kind, actions):
    if kind == "extract":
        return "export"
    return "view" if "view" in actions else "copy"


def _index(cat, conn, e):
    """The log index of ``e``: the log's size while Catalogue.act checks it, else (a
    replay) the first copy_made entry equal to it not applied yet."""
    size = cat.archive.log().size
    start = cat.applied(conn)
    if start >= size:
        return size
    for i, x in cat.entries_with(b"copy_made", start=start, stop=size):
        if x == e:
            return i
    raise CopyError(_("copy_made event not found in the station log"))


def _check_authorized(cat, conn, e):
    """A copy is a use of an access request: the same rules as access_used (ACCESS's, read
    from the signed log as it stood at this event, on replay too): the event's user is
    the requester, the request approved, not expired at the event's time, naming the
    action (view or copy; export for an extract) and covering the recording."""
    from . import access
    i = _index(cat, conn, e)
    st = access._replay(cat, e["request"], i, conn)
    action = _action_of(e["kind"], st["actions"] if st else ())
    use = {"type": "access_used", "request": e["request"], "action": action, "by": e["by"],
           "at": e["at"], "device": e["device"], "segment": e["segment"],
           "output": e["sha256"]}
    why = access._use_why(cat, conn, st, i, use)
    if why:
        raise access.AccessRefused(why)


@store.handles("copy_made", permission="access_use")
class _Made:
    @staticmethod
    def check(cat, conn, e):
        field(e, "request", str)
        kind = field(e, "kind", str, max_len=16)
        if kind not in KINDS:
            raise CopyError(_("copy_made: kind is view or extract"))
        dev = field(e, "device", str, max_len=store.DEVICE_MAX)
        seg = field(e, "segment", int)
        store.recording_id(conn, dev, seg)
        if not _is_sha(field(e, "sha256", str, max_len=64)):
            raise CopyError(_("a copy is named by its SHA-256 (64 hex digits)"))
        if not 0 < field(e, "size", int) <= MAX_SIZE:
            raise CopyError(_("copy_made: size is 1 byte to 1 TB"))
        _check_sources(e.get("sources"))
        _check_derivation(e.get("derivation"))
        _check_records(cat, dev, e["sources"])
        _check_authorized(cat, conn, e)

    @staticmethod
    def apply(cat, conn, i, e):
        rid = store.recording_id(conn, e["device"], e["segment"])
        conn.execute(db.copies.insert().values(
            id=i, sha256=e["sha256"], request_id=e["request"], kind=e["kind"],
            recording_id=rid, size=e["size"],
            derivation=json.dumps(e["derivation"], ensure_ascii=False, sort_keys=True),
            sources=json.dumps(e["sources"], sort_keys=True), by_user=e["by"], at=e["at"]))


# -- reading -------------------------------------------------------------------------------

def _row(r):
    out = dict(r)
    out["derivation"] = json.loads(out["derivation"])
    out["sources"] = json.loads(out["sources"])
    return out


def copies_of(cat, request_id=None, sha256=None):
    """The copies rows (dicts, derivation and sources decoded) of a request, or of a hash,
    or all, oldest first, with the recording's device and segment."""
    c, r = db.copies.c, db.recordings.c
    q = sa.select(db.copies, r.device, r.segment).select_from(
        db.copies.outerjoin(db.recordings, c.recording_id == r.id)).order_by(c.id)
    if request_id is not None:
        q = q.where(c.request_id == request_id)
    if sha256 is not None:
        q = q.where(c.sha256 == sha256)
    with cat.engine.connect() as conn:
        return [_row(x) for x in conn.execute(q).mappings()]


_CHECKED = {}                   # (path, inode, size, mtime, ctime) -> sha256 already hashed
_CHECKED_MAX = 256


def _open_checked(cat, sha256):
    """(file, size, row) of the stored viewing copy ``sha256``: a copy_made row names it,
    its recording is not disposed of, the file is a regular file (no symbolic link
    followed) of the row's size whose bytes hash to its name. CopyError otherwise. A file
    hashed before and unchanged since (same inode, size, modification and change times) is
    not hashed again (a player asks for many ranges of it)."""
    from .. import safeio
    if not _is_sha(sha256):
        raise CopyError(_("a copy is named by its SHA-256 (64 hex digits)"))
    cat.sync()
    rows = [x for x in copies_of(cat, sha256=sha256) if x["kind"] == "view"]
    if not rows:
        raise CopyError(_("no viewing copy %(sha)s was made (no copy_made event names it)")
                        % {"sha": sha256[:16]})
    with cat.engine.connect() as conn:
        state = conn.execute(sa.select(db.recordings.c.state).where(
            db.recordings.c.id == rows[0]["recording_id"])).scalar()
    if state == "disposed":
        raise CopyError(_("the original of viewing copy %(sha)s (%(device)s/%(segment)s) was "
                          "disposed of: its copies are not handed out")
                        % {"sha": sha256[:16], "device": rows[0]["device"],
                           "segment": rows[0]["segment"]})
    from ..archive import atrest
    path = _stored(cat, sha256)
    try:
        f, size = safeio.open_regular(cat.archive_dir, os.path.relpath(path, cat.archive_dir))
    except FileNotFoundError:
        raise CopyError(_("viewing copy %(sha)s is missing from %(dir)s: make it again "
                          "(the request's copy action)")
                        % {"sha": sha256[:16], "dir": copies_dir(cat)}) from None
    except OSError as e:
        raise CopyError(_("viewing copy %(sha)s cannot be read (%(why)s)")
                        % {"sha": sha256[:16], "why": e}) from None
    try:
        st = os.fstat(f.fileno())
        key = (path, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if atrest.is_sealed(f.read(len(atrest.MAGIC))):    # sealed at rest: its plaintext
            f.seek(0)
            try:
                f = atrest.open_object_file(f, sha256, _key(cat), path)
            except atrest.AtRestError as e:
                raise CopyError(_("viewing copy %(sha)s cannot be read (%(why)s)")
                                % {"sha": sha256[:16], "why": e}) from None
            size = rows[0]["size"]
        f.seek(0)
        if _CHECKED.get(key) != sha256:
            h = hashlib.sha256()
            n = 0
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
                n += len(block)
            if n != rows[0]["size"] or n != size or h.hexdigest() != sha256:
                raise CopyError(_("viewing copy %(path)s was changed after it was made (its "
                                  "bytes are not the ones copy_made names): it is not handed "
                                  "out; remove it and make it again") % {"path": path})
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[key] = sha256
            f.seek(0)
        return f, size, rows[0]
    except atrest.AtRestError as e:         # a chunk that fails authentication
        f.close()
        raise CopyError(_("viewing copy %(path)s was changed after it was made (%(why)s): it "
                          "is not handed out; remove it and make it again")
                        % {"path": path, "why": e}) from None
    except BaseException:
        f.close()
        raise


def _is_sealed_file(path):
    from ..archive import atrest
    try:
        with open(path, "rb") as f:
            return atrest.is_sealed(f.read(len(atrest.MAGIC)))
    except OSError:
        return False


def open_copy(cat, sha256):
    """(file, size) of the viewing copy, checked as copy_path checks it: serve from this
    file object (the bytes checked are the bytes read)."""
    f, size, _row_ = _open_checked(cat, sha256)
    return f, size


def copy_path(cat, sha256):
    """The path of the stored viewing copy ``sha256`` once checked (copy_made names it, its
    bytes hash to its name); CopyError otherwise. A copy sealed at rest is handed out as
    its plaintext decrypted into a private folder outside the archive (_plain_dir: 0700,
    the file 0400; prune removes it after a day): serving from open_copy needs no file."""
    f, _size, _row_ = _open_checked(cat, sha256)
    with f:
        path = _stored(cat, sha256)
        if not _is_sealed_file(path):
            return path
        out = os.path.join(_plain_dir(cat), sha256 + ".mp4")
        try:
            st = os.lstat(out)
            if stat.S_ISREG(st.st_mode) and _CHECKED.get(
                    (out, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns,
                     st.st_ctime_ns)) == sha256:
                return out
        except FileNotFoundError:
            pass
        tmp = out + ".tmp-%d-%s" % (os.getpid(), os.urandom(6).hex())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
        try:
            with os.fdopen(fd, "wb") as g:
                for block in iter(lambda: f.read(1 << 20), b""):
                    g.write(block)
            os.replace(tmp, out)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    st = os.lstat(out)
    _CHECKED[(out, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)] = \
        sha256
    return out


# -- making ----------------------------------------------------------------------------------

def view_action(cat, request_id):
    """The register's action of a viewing copy under ``request_id``: "view" when the
    request names it, else "copy" (what make_view_copy authorizes and records)."""
    from . import access
    try:
        return _action_of("view", access.state(cat, request_id).get("actions") or ())
    except store.CatalogueError:
        return "view"


def _authorize(cat, user, request_id, kind, device, segment):
    """(request state, the action) after access.authorize, or AccessRefused."""
    from . import access
    try:
        actions = access.state(cat, request_id).get("actions") or ()
    except store.CatalogueError:
        actions = ()                # authorize says why
    action = _action_of(kind, actions)
    return access.authorize(cat, user, request_id, action, device=device,
                            segment=segment), action


def _watermark(cat, user, request_id):
    from ..viewcopy import watermark_text
    from . import users
    who = user.name
    logged = users.as_logged(cat, user.name, getattr(user, "how", "password"))
    disp = logged.display if logged is not None else None    # the log's, never a row's
    if disp and disp != user.name:
        who = "%s (%s)" % (disp, user.name)
    return watermark_text(who, request_id)


def _reusable(cat, request_id, device, segment):
    for row in copies_of(cat, request_id=request_id):
        if row["kind"] == "view" and (row["device"], row["segment"]) == (device, segment):
            try:
                f, _size, _row_ = _open_checked(cat, row["sha256"])
            except CopyError:
                continue            # changed or gone: made again
            f.close()
            return _stored(cat, row["sha256"]), row
    return None, None


def _result(path, row, request_id, device, segment, reused):
    return {"sha256": row["sha256"], "path": path, "size": row["size"],
            "request_id": request_id, "device": device, "segment": segment,
            "derivation": row["derivation"], "sources": row["sources"], "reused": reused}


def make_view_copy(cat, user, request_id, device, segment, progress=None, plaintext=True):
    """The viewing copy of ``device``/``segment`` for ``user`` under ``request_id``: made
    (or the one made before for this request and recording), recorded (copy_made) and
    handed out (access_used). Returns {"sha256", "path", "size", "request_id", "device",
    "segment", "derivation", "sources", "reused"}; AccessRefused without an approval,
    CopyError if the original does not verify or FFmpeg fails. ``plaintext=False``: a copy
    sealed at rest keeps its sealed path (a caller that streams it through open_copy, as
    the desk does, never needs a decrypted file)."""
    from . import access
    from .. import viewcopy
    _st, action = _authorize(cat, user, request_id, "view", device, segment)
    path, row = _reusable(cat, request_id, device, segment)
    reused = path is not None
    if not reused:
        path, row = _derive(cat, user, request_id, device, segment, progress, viewcopy)
    elif progress is not None:
        progress(1.0, "%s/%d" % (device, segment))
    access.record_use(cat, user, request_id, action, device=device, segment=segment,
                      output=row["sha256"])
    if plaintext and _is_sealed_file(path):     # handed out as its plaintext, outside
        path = copy_path(cat, row["sha256"])    # the archive
    return _result(path, row, request_id, device, segment, reused)


def _derive(cat, user, request_id, device, segment, progress, viewcopy):
    import shutil
    import tempfile
    base_dir = copies_dir(cat)
    key = _key(cat)
    if key is None:
        work = os.path.join(base_dir, ".tmp")
        os.makedirs(work, mode=0o700, exist_ok=True)
    else:               # sealed at rest: FFmpeg's plaintext never lands in the archive
        work = tempfile.mkdtemp(prefix="sealcam-copy-")            # 0700, removed after
    tmp_out = os.path.join(work, "made-%d-%s.mp4" % (os.getpid(), os.urandom(6).hex()))
    try:
        try:
            res = viewcopy.derive(cat.archive_dir, device, segment, tmp_out,
                                  _watermark(cat, user, request_id), work_dir=work,
                                  progress=progress)
        except viewcopy.CopyFailed as e:
            raise CopyError(str(e)) from None
        sha = res["sha256"]
        dst = _stored(cat, sha)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            st = os.lstat(dst)
            if not stat.S_ISREG(st.st_mode):
                raise CopyError(_("%(path)s is not a regular file: remove it")
                                % {"path": dst})
            os.unlink(dst)          # the same name: the same bytes, or a changed file
        except FileNotFoundError:
            pass
        if key is None:
            os.replace(tmp_out, dst)
        else:
            _seal_into(cat, key, tmp_out, dst, sha, res["size"])
        os.chmod(dst, 0o444)
    finally:
        try:
            os.unlink(tmp_out)
        except FileNotFoundError:
            pass
        if key is not None:
            shutil.rmtree(work, ignore_errors=True)
    ev = copy_event(request_id, device, segment, sha, res["size"], "view", res["sources"],
                    res["derivation"])
    try:
        cat.act(user, ev)
    except BaseException:
        if not copies_of(cat, sha256=sha):      # no event names it: not kept
            try:
                os.unlink(dst)
            except OSError:
                pass
        raise
    row = {"sha256": sha, "size": res["size"], "derivation": res["derivation"],
           "sources": res["sources"]}
    return dst, row


def export_extract(cat, user, request_id, device, segment, out_dir, span=None):
    """The verifiable extract (the clip of SPEC §12 and its .prov) of ``device``/``segment``
    (whole, or ``span`` = (from s, to s) of its media time) written to ``out_dir`` (outside
    the archive) as DEVICE-SEGMENT.mkv, under an approved "export". Returns {"sha256",
    "file", "prov", "size", "request_id", "device", "segment", "clip"}."""
    from . import access
    from .. import viewcopy
    from ..records import device_id_error
    if not isinstance(device, str) or device_id_error(device) is not None:
        raise CopyError(_("%(device)s is not a device id") % {"device": str(device)[:80]})
    _st, action = _authorize(cat, user, request_id, "extract", device, segment)
    out_dir = os.path.abspath(os.fspath(out_dir))
    root = os.path.realpath(cat.archive_dir)
    real = os.path.realpath(out_dir)
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        raise CopyError(_("%(dir)s is inside the archive: an extract goes outside it")
                        % {"dir": out_dir})
    if not os.path.lexists(out_dir) and os.path.isdir(os.path.dirname(out_dir)):
        try:                            # a new folder, as `backup --to` makes one
            os.mkdir(out_dir, 0o700)
        except OSError:
            pass
    if os.path.islink(out_dir) or not os.path.isdir(out_dir):
        raise CopyError(_("%(dir)s is not a folder: name the folder the extract goes to")
                        % {"dir": out_dir})
    out = os.path.join(out_dir, "%s-%d.mkv" % (device, segment))
    for p in (out, out + ".prov"):
        if os.path.lexists(p):
            raise CopyError(_("%(path)s exists already: name another folder")
                            % {"path": p})
    # attack13 #06: cut into a private folder (0700) beside it; the register's lines
    # first, then the files into place: no extract in --out without its copy_made and
    # its access_used, whatever kills the process
    tmp = private_dir(out_dir, "extract")
    try:
        part = os.path.join(tmp, os.path.basename(out))
        try:
            x = viewcopy.extract(cat.archive_dir, device, segment, part, span=span)
        except viewcopy.CopyFailed as e:
            raise CopyError(str(e)) from None
        clip, sha, size = x["clip"], x["sha256"], x["size"]
        cat.act(user, copy_event(request_id, device, segment, sha, size, "extract",
                                 x["sources"], x["derivation"]))
        access.record_use(cat, user, request_id, action, device=device, segment=segment,
                          output=sha)
        move_into_place([(part, out), (part + ".prov", out + ".prov")])
    finally:
        remove_private(tmp)
    return {"sha256": sha, "file": out, "prov": out + ".prov", "size": size,
            "request_id": request_id, "device": device, "segment": segment, "clip": clip,
            "verify": "sealcam verify-clip %s --archive %s" % (out, cat.archive_dir)}


def _remove(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


TMP_AGE_S = 86400
PRUNE_MAX = 100_000             # files looked at in one prune


def prune(cat):
    """Remove from ARCHIVE/copies what may no longer be handed out: files no copy_made of
    a viewing copy names, copies whose original was disposed of, working files older than
    a day. The copy_made events stay (the provenance of what was handed out). Returns the
    paths removed."""
    import time
    cat.sync()
    root = copies_dir(cat)
    rows = copies_of(cat)
    with cat.engine.connect() as conn:
        disposed = {r[0] for r in conn.execute(sa.select(db.recordings.c.id).where(
            db.recordings.c.state == "disposed"))}
    keep = {r["sha256"] for r in rows if r["kind"] == "view"
            and r["recording_id"] not in disposed}
    out = []
    seen = 0
    for d, dirs, files in os.walk(root):
        for f in files:
            seen += 1
            if seen > PRUNE_MAX:
                return out
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root).split(os.sep)
            if rel[0] == ".tmp":
                try:
                    if time.time() - os.lstat(p).st_mtime < TMP_AGE_S:
                        continue
                except FileNotFoundError:
                    continue
            elif len(rel) == 2 and rel[1].endswith(".mp4") and \
                    rel[0] + rel[1][:-4] in keep:
                continue
            try:
                os.unlink(p)
                out.append(p)
            except FileNotFoundError:
                pass
    return out + _prune_plain(cat, keep, time.time())


def _prune_plain(cat, keep, now):
    """Remove the decrypted copies handed out from the private folder (copy_path) that
    are a day old or may no longer be handed out."""
    try:
        d = _plain_dir(cat)
        names = os.listdir(d)[:PRUNE_MAX]
    except (CopyError, OSError):
        return []
    out = []
    for n in names:
        p = os.path.join(d, n)
        try:
            if n.endswith(".mp4") and n[:-4] in keep and now - os.lstat(p).st_mtime < \
                    TMP_AGE_S:
                continue
            os.unlink(p)
            out.append(p)
        except FileNotFoundError:
            pass
    return out
