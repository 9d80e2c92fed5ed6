"""`sealcam restore --from DIR --archive NEW` (R14; SPEC §14.12): a backup made by `sealcam
backup` restored into a new, empty archive folder; `sealcam verify NEW` then proves it
complete.

    res = restore("/mnt/offsite/sealcam", "/srv/sealcam-restored", expect_key=FP)
    res["ok"]          # False: res["bad"] names each changed or missing object and file
    res["key"]         # {"fingerprint", "pinned"}: the station key trusted

The backup is hostile like any input: every path is checked (no link followed, no '..'),
every size bounded. The station log is checked first against its checkpoint signed by
the pinned key (``expect_key``; without it the backup's station.pub, and the result says
it was not pinned); it must end with the station's backup_made event of this snapshot,
whose SHA-256 of manifest.json is what makes the manifest trusted. Then every snapshot
file is compared with the SHA-256 the manifest gives, every object copied and read back
through the restored archive's own reading (Archive.open_object) and hashed against its
name, and the catalogue rebuilt from the restored log (a copied one is never used). Only
then is the restore declared done. Device views are made again as hard links
to the objects, from the views the snapshot lists. NEW/RESTORE-INCOMPLETE.txt stays
while the restore is not done (or failed): such a folder is no archive to rely on.
"""
from __future__ import annotations

import json
import os

from ..i18n import _
from . import safefs
from .backup import FORMAT, LATEST, MARK, SNAPSHOT_RE, plain_check
from .progress import Progress
from .safefs import BackupError, SafeDir, check_name

__all__ = ["restore", "MANIFEST_MAX", "OBJECTS_MAX"]

MANIFEST_MAX = 64 << 20
VIEWS_MAX = 256 << 20
OBJECTS_MAX = 20_000_000        # object names in one snapshot
FILES_MAX = 1_000_000
LINE_MAX = 100                  # bytes of a line of objects.txt (a name and its newline)
BAD_MAX = 200                   # problems named one by one
INCOMPLETE = "RESTORE-INCOMPLETE.txt"
_SKIP = ("objects.txt", "views.json")      # read, not restored as files
# what a snapshot holds (and quarantine/…): nothing else is written into NEW from it
_SNAPSHOT_FILES = frozenset(("log/entries", "log/checkpoint", "archive.sqlite",
                             "catalogue.sqlite", "catalogue.txt", "station.toml",
                             "station.pub") + _SKIP)
# never taken from the manifest's word: the log is checked by its signature, the catalogue
# is rebuilt from it (older backups listed them)
_NOT_COPIED = frozenset(("log/entries", "log/checkpoint", "station.pub", "catalogue.sqlite",
                         "catalogue.txt"))


def _pinned(expect):
    """What --expect-key pins: ("pub", 32 bytes) from a key file or 64 hex digits, or
    ("fp", fingerprint) from a fingerprint (xxxx:xxxx:…, as `sealcam backup` prints it)."""
    from .. import keys
    if os.path.lexists(expect):
        try:
            return "pub", keys.load_public_key(expect)
        except (OSError, keys.KeyFileError) as e:
            raise BackupError(_("--expect-key %(key)s: %(err)s") % {
                "key": expect, "err": e}) from None
    compact = "".join(expect.replace(":", "").split()).lower()
    if len(compact) == 64 and all(c in "0123456789abcdef" for c in compact):
        return "pub", bytes.fromhex(compact)
    if len(compact) == 32 and all(c in "0123456789abcdef" for c in compact):
        return "fp", ":".join(compact[i:i + 4] for i in range(0, 32, 4))
    raise BackupError(_("--expect-key %(key)r is neither a key file, 64 hex digits nor a "
                        "fingerprint (xxxx:xxxx:…, as `sealcam backup` prints it)")
                      % {"key": expect[:80]})


def _read(s, rel, cap, what):
    from ..safeio import StoreFileError, read_capped
    try:
        return read_capped(s.root, rel, cap, what)
    except FileNotFoundError:
        raise BackupError(_("%(path)s is missing: %(dir)s is not a complete sealcam backup")
                          % {"path": s.path(rel), "dir": s.root}) from None
    except (StoreFileError, OSError) as e:
        raise BackupError("%s: %s" % (s.path(rel), e)) from None


_BAD = object()


def _json(raw):
    """The JSON value of backup bytes ``raw``, or _BAD when they are none (not JSON, not
    UTF-8, nested too deep, too large to hold): the caller names the file, one line."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError, MemoryError):
        return _BAD


def _manifest(s):
    try:
        mark = json.loads(_read(s, MARK, 4096, "backup mark"))
        name = _read(s, LATEST, 200, "LATEST").decode("ascii").strip()
    except (ValueError, RecursionError, MemoryError):     # UnicodeDecodeError too
        raise BackupError(_("%(dir)s is not a sealcam backup (%(mark)s or %(latest)s is "
                            "unreadable)") % {"dir": s.root, "mark": MARK,
                                              "latest": LATEST}) from None
    if not isinstance(mark, dict) or mark.get("format") != FORMAT:
        raise BackupError(_("%(dir)s is not a sealcam backup") % {"dir": s.root})
    if not SNAPSHOT_RE.fullmatch(name):
        raise BackupError(_("%(path)s does not name a snapshot") % {"path": s.path(LATEST)})
    snap = "snapshots/" + name
    raw = _read(s, snap + "/manifest.json", MANIFEST_MAX, "manifest")
    m = _json(raw)
    ok = isinstance(m, dict) and m.get("format") == FORMAT and \
        isinstance(m.get("archive_id"), str) and \
        m.get("archive_id") == mark.get("archive_id") and isinstance(m.get("files"), dict) \
        and len(m["files"]) <= FILES_MAX and isinstance(m.get("log"), dict) and \
        type(m["log"].get("size")) is int and isinstance(m["log"].get("root"), str)
    if ok:
        for rel, f in m["files"].items():
            check_name(rel)
            if rel not in _SNAPSHOT_FILES and not rel.startswith("quarantine/"):
                raise BackupError(_("%(path)s lists %(file)r, which is no file of a "
                                    "snapshot: it is not restored") % {
                                        "path": s.path(snap + "/manifest.json"),
                                        "file": rel[:80]})
            if not (isinstance(f, dict) and isinstance(f.get("sha256"), str)
                    and type(f.get("size")) is int and f["size"] >= 0):
                ok = False
    if not ok:
        raise BackupError(_("%(path)s is not a sealcam backup manifest of this backup")
                          % {"path": s.path(snap + "/manifest.json")})
    return snap, m, raw


def _snapshot_key(name):
    stamp, _d, size = name.partition("Z-")
    return stamp, int(size)


def _newer_snapshots(s, name):
    """The complete snapshots (with a manifest.json) of backup ``s`` newer than ``name``
    (LATEST's), oldest first: a LATEST set back to an older kept snapshot (a rollback)."""
    try:
        out = []
        for other, k in s.listdir("snapshots"):
            if k == "dir" and SNAPSHOT_RE.fullmatch(other) and \
                    _snapshot_key(other) > _snapshot_key(name) and \
                    s.kind("snapshots/%s/manifest.json" % other) == "file":
                out.append(other)
        return sorted(out, key=_snapshot_key)
    except (BackupError, OSError):
        return []


def _new_folder(new):
    new = os.path.abspath(os.fspath(new))
    if os.path.lexists(new):
        if os.path.islink(new) or not os.path.isdir(new):
            raise BackupError(_("%(dir)s is not a folder (a link is never followed): give a "
                                "new, empty folder") % {"dir": new})
        if os.listdir(new):
            raise BackupError(_("%(dir)s is not empty: a backup is restored only into a new, "
                                "empty folder (one a restore refused is no archive: remove "
                                "it, then restore again)") % {"dir": new})
    return SafeDir(new, create=True)


def _free(n):
    """Bytes free for NEW (an older backup's object, of no signed size, is copied only
    when it fits)."""
    try:
        st = os.statvfs(n.root)
        return st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        return None


def _copy_file(s, n, src_rel, dst_rel, want, prog, mode=0o644, size=None):
    """Copy backup file ``src_rel`` to ``dst_rel`` of NEW; the copy's SHA-256 and size
    must be ``want`` (a manifest entry), or its size ``size`` (objects.txt's), or (both
    None) at most the size the file had when opened and what NEW has free. Nothing larger
    than that is ever written. Returns the problem or None."""
    from ..safeio import StoreFileError, open_regular
    try:
        f, have = open_regular(s.root, src_rel)
    except FileNotFoundError:
        return _("%(path)s is missing from the backup") % {"path": s.path(src_rel)}
    except (StoreFileError, OSError) as e:
        return "%s: %s" % (s.path(src_rel), e)
    with f:
        expect = want["size"] if want is not None else size
        if expect is not None and have != expect:
            return _("%(path)s is %(have)d bytes, the signed backup says %(want)d: it has "
                     "changed since the backup was made and is not restored; take it from "
                     "another backup") % {"path": s.path(src_rel), "have": have,
                                          "want": expect}
        if expect is None:
            free = _free(n)
            if free is not None and have > free:
                return _("%(path)s is %(have)d bytes, more than the %(free)d free for "
                         "%(new)s: it is not restored (a backup changed off site, or make "
                         "room)") % {"path": s.path(src_rel), "have": have, "free": free,
                                     "new": n.root}
            expect = have
        tmp, got, sha = n.copy_from(f, dst_rel, progress=prog.bytes, limit=expect + 1)
    if got != expect:
        os.unlink(tmp)
        return _("%(path)s changed while it was read (%(got)s bytes, not %(want)d): it is "
                 "not restored; take it from another backup") % {
                     "path": s.path(src_rel), "got": "%d+" % got if got > expect else got,
                     "want": expect}
    if want is not None and sha != want["sha256"]:
        os.unlink(tmp)
        return _("%(path)s has changed since the backup was made (its SHA-256 is %(sha)s, "
                 "the manifest says %(want)s): take this snapshot from another backup") % {
                     "path": s.path(src_rel), "sha": sha[:16], "want": want["sha256"][:16]}
    n.install(tmp, dst_rel, mode)
    return None


def _object_line(line):
    """(name, size) of an objects.txt line: "NAME SIZE" (the size of the object as the
    backup holds it), or "NAME" alone (a backup made before sizes were listed: size None).
    (None, None) when it is neither."""
    parts = line.split(" ")
    if len(parts) == 2 and parts[1].isdigit() and len(parts[1]) <= 18 and \
            parts[1].isascii():
        return parts[0], int(parts[1])
    if len(parts) == 1:
        return parts[0], None
    return None, None


def _hashed_lines(s, rel, want, cap_lines):
    """The lines of backup file ``rel`` whose SHA-256 must be ``want``'s."""
    from ..safeio import StoreFileError, open_regular
    import hashlib
    try:
        f, size = open_regular(s.root, rel)
    except (FileNotFoundError, StoreFileError, OSError) as e:
        raise BackupError("%s: %s" % (s.path(rel), e)) from None
    hs, out = hashlib.sha256(), []
    with f:
        while True:
            line = f.readline(LINE_MAX + 1)         # a line is a name: never read whole
            if not line:
                break
            if len(line) > LINE_MAX or len(out) >= cap_lines:
                raise BackupError(_("%(path)s is not a list of object names")
                                  % {"path": s.path(rel)})
            hs.update(line)
            out.append(line.decode("ascii", "replace").strip())
    if want is None or hs.hexdigest() != want["sha256"]:
        raise BackupError(_("%(path)s has changed since the backup was made: take this "
                            "snapshot from another backup") % {"path": s.path(rel)})
    return out


def _signed(s, n, snap, m, raw, pin):
    """Check the station log copied into NEW against its checkpoint signed by the pinned
    key (or, unpinned, station.pub of the backup), and the manifest against the
    backup_made event the log ends with. Returns {"fingerprint", "pinned"} of the key
    trusted, the log's size and the event's index; BackupError (one line) otherwise."""
    import hashlib
    from .. import keys
    from ..archive_verify import station_pub_checked
    from ..tlog.log import Log, LogError, origin_for
    pub, why = station_pub_checked(n.root)
    if why:
        raise BackupError(_("%(path)s: %(why)s") % {"path": s.path(snap + "/station.pub"),
                                                    "why": why})
    fp = keys.fingerprint(pub)
    if pin is not None and pin[1] != (pub if pin[0] == "pub" else fp):
        want = keys.fingerprint(pin[1]) if pin[0] == "pub" else pin[1]
        raise BackupError(_("the backup's station key is %(fp)s, not %(want)s that "
                            "--expect-key pins: this is not your station's backup, or it was "
                            "changed off site; take another backup") % {"fp": fp,
                                                                       "want": want})
    try:
        lg = Log(n.root, origin_for(m["archive_id"]), readonly=True, pub=pub)
        acc = lg.account(pub)
        cp = acc.checkpoint
        if acc.problem or cp is None or lg.size != cp[0] or lg.size == 0:
            raise BackupError(_("the station log in the backup does not match its "
                                "checkpoint signed by %(fp)s (%(why)s): take another "
                                "backup") % {"fp": fp, "why": acc.problem or _(
                                    "no checkpoint over all its entries")})
        i = lg.size - 1
        e = next(iter(lg.entries(i, i + 1)))[2]
    except LogError as ex:
        raise BackupError(_("the station log in the backup cannot be read: %(err)s")
                          % {"err": ex}) from None
    name = snap.split("/")[-1]
    if not isinstance(e, dict) or e.get("type") != "backup_made" or \
            e.get("snapshot") != name or not isinstance(e.get("manifest"), str):
        raise BackupError(_("the station log in snapshot %(snap)s does not end with the "
                            "station's signed backup_made event for it (a backup made "
                            "before backups were signed, or changed off site): make a new "
                            "backup with `sealcam backup`") % {"snap": name})
    if hashlib.sha256(raw).hexdigest() != e["manifest"] or \
            m["log"] != {"size": e.get("log_size"), "root": e.get("root")} or \
            m.get("objects") != e.get("objects") or type(e.get("log_size")) is not int or \
            e["log_size"] > lg.size or lg.root(e["log_size"]).hex() != e["root"]:
        raise BackupError(_("%(path)s is not the manifest the station signed in log entry "
                            "%(i)d: the backup was changed off site; take another backup")
                          % {"path": s.path(snap + "/manifest.json"), "i": i})
    return {"fingerprint": fp, "pinned": pin is not None}, lg.size, i


def _index_check(n, m):
    """None when NEW's archive.sqlite is of the backup's archive; else the problem."""
    from ..archive import Archive
    try:
        with Archive(n.root, readonly=True) as a:
            if a.archive_id != m["archive_id"]:
                return _("archive.sqlite is of archive %(id)s, the backup of %(want)s") % {
                    "id": a.archive_id, "want": m["archive_id"]}
    except Exception as e:         # noqa: BLE001 - NotAnArchive and the like: one line
        return str(e)
    return None


def _rebuild_catalogue(n):
    """The catalogue of NEW (NEW/catalogue.sqlite) rebuilt from the restored signed log:
    never a copied one. {"rebuilt", "entries", "problems"}."""
    from ..catalogue import db as cdb
    from ..catalogue.store import Catalogue
    try:
        with Catalogue(n.root, url=cdb.default_url(n.root)) as cat:
            entries = cat.reindex()
            return {"rebuilt": True, "entries": entries, "problems": cat.problems[:BAD_MAX]}
    except Exception as e:          # noqa: BLE001 - one line, the restore stands
        return {"rebuilt": False, "entries": 0, "problems": [str(e).splitlines()[0][:300]]}


def _views(n, views, restored, bad):
    from ..archive import safe_rel, valid_device_id
    links = 0
    if not isinstance(views, dict):
        bad.append(_("views.json is not a map of device views"))
        return 0
    for did, paths in sorted(views.items()):
        if not valid_device_id(did) or not isinstance(paths, dict):
            bad.append(_("views.json names device %(d)r, not a device id") % {"d": did[:80]})
            continue
        for rel, obj in sorted(paths.items()):
            if not isinstance(obj, str) or not safe_rel(rel) or obj not in restored:
                bad.append(_("views.json: devices/%(d)s/%(p)s names no restored object")
                           % {"d": did, "p": str(rel)[:80]})
                continue
            dst = "devices/%s/%s" % (did, rel)
            folder = dst.rpartition("/")[0]
            n.mkdirs(folder)
            if n.kind(dst) is not None:
                bad.append(_("%(p)s is listed twice") % {"p": dst})
                continue
            src = n.path("objects/%s/%s" % (obj[:2], obj[2:]))
            try:
                os.link(src, n.path(dst), follow_symlinks=False)
            except OSError:                 # no hard links here: a read-only copy
                with safefs.open_nofollow(src)[0] as f:
                    tmp, _n, _h = n.copy_from(f, dst)
                n.install(tmp, dst, 0o444)
            links += 1
    return links


def restore(src, new_archive, progress=None, expect_key=None) -> dict:
    """Restore the newest snapshot of backup folder ``src`` into ``new_archive`` (a new,
    empty folder). ``expect_key``: the station's key the restorer pins (a key file, 64 hex
    digits or a fingerprint); without it the backup's station.pub is trusted and the
    result says so. Returns {"ok", "archive", "backup", "snapshot", "log_size", "root",
    "log_entries", "key": {"fingerprint", "pinned"}, "catalogue": {"rebuilt", "entries",
    "problems"}, "objects", "bytes", "views", "bad": [problems], "notes"}; BackupError (one
    line) when ``src`` is no backup, not the station's signed one, or ``new_archive`` is
    not new."""
    pin = _pinned(os.fspath(expect_key)) if expect_key else None
    s = SafeDir(src)
    snap, m, raw_manifest = _manifest(s)
    n = _new_folder(new_archive)
    n.write(INCOMPLETE, (
        "This folder is being restored from %s (or its restore failed): it is not an archive "
        "to rely on. Remove it and restore again into an empty folder.\n"
        "本文件夹正在从备份恢复（或恢复失败）：不可作为档案使用。请删除后重新恢复到空文件夹。\n"
        % s.root).encode("utf-8"))
    prog = Progress(progress, _("restore"))
    bad, notes = [], []
    try:
        prog.phase("snapshot")
        for rel in ("station.pub", "log/entries", "log/checkpoint"):   # checked by signature
            if "/" in rel:
                n.mkdirs(rel.rpartition("/")[0])
            why = _copy_file(s, n, snap + "/" + rel, rel, None, prog)
            if why:
                raise BackupError(why)
        key, log_entries, event = _signed(s, n, snap, m, raw_manifest, pin)
        want = m["files"].get("station.pub")
        if want is not None:
            with safefs.open_nofollow(n.path("station.pub"))[0] as f:
                if safefs.hash_stream(f) != want["sha256"]:
                    raise BackupError(_("%(path)s has changed since the backup was made")
                                      % {"path": s.path(snap + "/station.pub")})
        for rel, want in sorted(m["files"].items()):
            if rel in _SKIP or rel in _NOT_COPIED:
                continue
            why = _copy_file(s, n, snap + "/" + rel, rel, want, prog)
            if why:
                bad.append(why)
        if bad:
            raise BackupError(bad[0])
        names = _hashed_lines(s, snap + "/objects.txt", m["files"].get("objects.txt"),
                              OBJECTS_MAX)
        raw = _read(s, snap + "/views.json", VIEWS_MAX, "views")
        import hashlib
        vw = m["files"].get("views.json")
        if vw is None or hashlib.sha256(raw).hexdigest() != vw["sha256"]:
            raise BackupError(_("%(path)s has changed since the backup was made")
                              % {"path": s.path(snap + "/views.json")})
        views = _json(raw)
        if views is _BAD:
            raise BackupError(_("%(path)s is not JSON") % {"path": s.path(
                snap + "/views.json")})
        for d in ("objects", "devices", "staging"):
            n.mkdirs(d)
        why = _index_check(n, m)
        if why:
            raise BackupError(why)
        from ..archive import Archive
        prog.phase("objects")
        lines = [_object_line(x) for x in names]
        total = 0
        for name, size in lines:
            if size is not None:
                total += size
                continue
            rel = "objects/%s/%s" % (name[:2], name[2:]) if name and len(name) == 64 else None
            k = s.kind(rel) if rel and all(c in "0123456789abcdef" for c in name) else "bad"
            if k == "file":
                total += os.lstat(s.path(rel)).st_size
        prog.total(len(names), total)
        restored, locked, nbytes = set(), 0, 0
        with Archive(n.root, readonly=True) as reader:
            held = None
            for line, (name, size) in zip(names, lines):
                if name is None or len(name) != 64 or \
                        not all(c in "0123456789abcdef" for c in name):
                    bad.append(_("objects.txt lists %(name)r, not an object name")
                               % {"name": line[:80]})
                    continue
                rel = "objects/%s/%s" % (name[:2], name[2:])
                why = None
                if size is None:
                    # a backup made before objects.txt gave sizes: hashed where it is
                    # (bounded reads, nothing written) before it is copied
                    if held is None:
                        import copy
                        held = copy.copy(reader)
                        held.objects = s.path("objects")
                    k = s.kind(rel)
                    if k is None:
                        why = _("%(path)s is missing from the backup") % {"path": s.path(rel)}
                    elif k != "file":
                        why = _("%(path)s is not a regular file (%(kind)s)") % {
                            "path": s.path(rel), "kind": k}
                    else:
                        ok, w = plain_check(held, name)
                        if ok is False:
                            why = _("object %(path)s in the backup has changed: %(why)s. "
                                    "Take this object from another backup or from the "
                                    "station (its name is its SHA-256) into %(path)s, then "
                                    "restore again into an empty folder") % {
                                        "path": s.path(rel), "why": w}
                if why is None:
                    why = _copy_file(s, n, rel, rel, None, prog, mode=0o444, size=size)
                if why is None:
                    ok, why = plain_check(reader, name)
                    if ok is None:
                        locked += 1
                        why = None
                    elif not ok:
                        os.unlink(n.path(rel))
                        why = _("object %(path)s in the backup has changed: %(why)s. Take "
                                "this object from another backup or from the station (its "
                                "name is its SHA-256) into %(path)s, then restore again into "
                                "an empty folder") % {"path": s.path(rel), "why": why}
                    else:
                        why = None
                if why:
                    bad.append(why)
                    continue
                restored.add(name)
                nbytes += os.lstat(n.path(rel)).st_size
                prog.item()
        prog.phase("views")
        links = _views(n, views, restored, bad)
        prog.phase("catalogue")
        catalogue = _rebuild_catalogue(n)
    finally:
        prog.close()
    if key["pinned"]:
        notes.append(_("the station key trusted: %(fp)s, pinned by --expect-key")
                     % {"fp": key["fingerprint"]})
    else:
        notes.append(_("the station key trusted: %(fp)s, read from the backup's station.pub, "
                       "not pinned: compare it with your station's fingerprint, or restore "
                       "with --expect-key") % {"fp": key["fingerprint"]})
    if not catalogue["rebuilt"]:
        notes.append(_("the catalogue could not be rebuilt from the restored log (%(why)s): "
                       "run `sealcam catalogue reindex --archive %(new)s`")
                     % {"why": catalogue["problems"][0], "new": n.root})
    elif catalogue["problems"]:
        notes.append(_("the catalogue was rebuilt from the restored log; %(n)d log entries "
                       "were not applied (first: %(first)s), as at the station")
                     % {"n": len(catalogue["problems"]), "first": catalogue["problems"][0]})
    if locked:
        notes.append(_("%(n)d object(s) are encrypted at rest and the at-rest key is not at "
                       "hand: their content was not checked (give the key file station.toml "
                       "names, then `sealcam verify %(new)s`)") % {"n": locked, "new": n.root})
    try:
        from ..stationconfig import load
        url = load(n.root).values.get("catalogue", {}).get("url")
    except Exception:               # noqa: BLE001 - a config verify will name itself
        url = None
    if url:
        notes.append(_("station.toml names the catalogue database %(url)s: the restored "
                       "archive would share it with the station; change [catalogue] url in "
                       "%(new)s/station.toml before using it")
                     % {"url": url.split("@")[-1], "new": n.root})
    newer = _newer_snapshots(s, snap.split("/")[-1])
    if newer:
        notes.append(_("the backup holds snapshot %(newer)s, newer than %(snap)s that "
                       "%(latest)s names: %(latest)s may have been set back off site; compare "
                       "with the station's last backup_made (`sealcam report`) before "
                       "relying on this restore") % {"newer": newer[-1],
                                                    "snap": snap.split("/")[-1],
                                                    "latest": LATEST})
    if m.get("catalogue") not in (None, "sqlite"):
        notes.append(_("the station kept its catalogue in PostgreSQL; the restored one is "
                       "rebuilt in %(new)s/catalogue.sqlite: to use PostgreSQL, run `sealcam "
                       "catalogue reindex --archive %(new)s --db URL`") % {"new": n.root})
    notes.append(_("station.key is not in a backup: the restored archive can be read and "
                   "verified; to write to it, bring the station key apart from the backup"))
    ok = not bad and not locked
    if not bad:                     # all there (what is sealed and unchecked: see notes)
        os.unlink(n.path(INCOMPLETE))
        n.sync()
    return {"ok": ok, "unchecked": locked, "archive": n.root, "backup": s.root,
            "snapshot": snap.split("/")[-1],
            "log_size": m["log"]["size"], "root": m["log"]["root"],
            "log_entries": log_entries, "backup_event": event, "key": key,
            "catalogue": catalogue, "objects": len(restored),
            "bytes": nbytes, "views": links, "bad": bad[:BAD_MAX],
            "bad_count": len(bad), "notes": notes}
