"""`sealcam export disc`: duplicate archive discs (R13; SPEC §14.11).

    build_disc(cat, user, "FZ-2023-017", out_dir) -> {"images": [A.iso, B.iso], "label_pdf",
                                                      "image_sha256", "contents_sha256", ...}

For a case (its current recordings and documents) or an archive number (its recordings),
the disc holds the originals as stored (media objects, their signed records), the device
keys with the station-log entries that registered them, the station key, the station log's
signed checkpoint with an inclusion proof for every entry used, the documents, README.txt
(Chinese and English), the offline verifier (bundle/verify_disc.py with the firmware's
pure-Python CBOR, SHA-512 and Ed25519 copied in) and MANIFEST.cbor, which lists every file
with its size and SHA-256, signed by the station key (MANIFEST.sig, a C2SP signed note like
the log's checkpoints). The tree is checked with the verifier before any image is written;
the two ISO images (layout.py) are byte-identical and read back; a label PDF; then the
`disc_made` clerk event (discs.py) records it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil

import cbor2

from ..i18n import _
from ..records import K
from .. import records as R
from ..catalogue import store

__all__ = ["build_disc", "DiscError", "collect", "write_tree", "MAX_RECORDINGS",
           "MAX_DOCUMENTS", "MAX_BYTES", "FORMAT"]

FORMAT = "sealcam-disc-1"
MAX_RECORDINGS = 250            # per disc (each is 2 open files while the image is written)
MAX_DOCUMENTS = 500
MAX_BYTES = 100 << 30           # a BD-XL holds 100 GB
BUNDLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundle")
FIRMWARE_MODULES = ("__init__.py", "cbor.py", "cose.py", "ed25519.py", "sha512.py")
BLOCK = 1 << 20


class DiscError(store.CatalogueError):
    """A disc that cannot be made: one line saying why and what to do."""


def _firmware_dir():
    import sealcamfw
    return os.path.dirname(os.path.abspath(sealcamfw.__file__))


def _what(cat, ref, user=None):
    """("case" | "number", title, [(device, segment)], [document rows], numbers), as
    ``user`` (its clearance; None: the default) may see them. A case or number holding a
    recording the user may not see is refused (DiscError, one line): a disc is whole."""
    from ..catalogue import cases, numbers
    c = cases.show(cat, ref, viewer=user)
    if c is not None:
        recs = [(r["device"], r["segment"]) for r in c["recordings"]]
        _whole(cat, ref, recs, _held(cat, ref, "case"))
        return "case", c.get("title") or "", recs, c["documents"], c["numbers"]
    n = numbers.resolve(cat, ref, viewer=user)
    if n is not None:
        recs = sorted({(i["device"], i["segment"]) for i in n["items"]})
        _whole(cat, ref, recs, _held(cat, ref, "number"))
        return "number", "", recs, [], [ref]
    raise DiscError(_("%(ref)s is neither a case nor an archive number of this archive "
                      "(`sealcam case show`, `sealcam search --number`)") % {"ref": ref})


def _held(cat, ref, kind):
    """Every recording (device, segment) case or number ``ref`` holds, whoever may see it."""
    import sqlalchemy as sa
    from ..catalogue import db
    r = db.recordings.c
    if kind == "case":
        ci = db.case_items.c
        q = sa.select(r.device, r.segment).join(db.recordings, r.id == ci.recording_id)\
            .where(ci.case_no == ref, ci.kind == "recording", ci.current.is_(True))
    else:
        ni = db.number_items.c
        q = sa.select(r.device, r.segment).join(db.recordings, r.id == ni.recording_id)\
            .where(ni.number == ref)
    with cat.engine.connect() as conn:
        return {(d, sg) for d, sg in conn.execute(q)}


def _whole(cat, ref, recs, held):
    if held - set(recs):
        raise DiscError(_("%(ref)s holds recordings your clearance may not see: a disc holds "
                          "all of them, so a user cleared for each makes it") % {"ref": ref})


def _check_visible(cat, user, recs):
    """Confidentiality (CONF): the user may see every recording the disc would hold."""
    try:
        from ..catalogue import confidentiality as conf
    except ModuleNotFoundError:
        return
    if not hasattr(conf, "require_visible"):
        return
    with cat.engine.connect() as conn:
        for dev, seg in recs:
            conf.require_visible(conn, user, store.recording_id(conn, dev, seg))


def _segment_records(src, seg):
    """The device's records from REC_START ``seg`` to the segment's closing record (or its
    last record naming it), in seq order, every one verified and logged (a gap: DiscError)."""
    start = src.recs.get(seg)
    if start is None or start.type != R.REC_START:
        raise DiscError(_("%(dev)s: no verified REC_START seq %(seg)d in the archive: run "
                          "`sealcam verify`") % {"dev": src.device, "seg": seg})
    end = seg
    for s, r in src.recs.items():
        if s > seg and r.body.get(K.SEGMENT) == seg:
            end = max(end, s)
            if r.type in (R.SEGMENT, R.RECOVERY):
                end = s
                break
    out = []
    for s in range(seg, end + 1):
        if s not in src.recs:
            raise DiscError(_("%(dev)s: record seq %(seq)d of segment %(seg)d is not in the "
                              "archive: run `sealcam verify`")
                            % {"dev": src.device, "seq": s, "seg": seg})
        out.append(src.recs[s])
    return out


def collect(cat, user, ref):
    """What the disc of ``ref`` holds: a dict with the log state, recordings (records,
    media object), documents and the log entries to prove (index -> raw)."""
    from ..clip import _signed_state
    from ..clipcut import ClipError
    kind, title, recs, docs, nums = _what(cat, ref, user)
    if not recs and not docs:
        raise DiscError(_("%(ref)s holds no recording and no document: nothing to put on a "
                          "disc") % {"ref": ref})
    if len(recs) > MAX_RECORDINGS or len(docs) > MAX_DOCUMENTS:
        raise DiscError(_("%(ref)s holds %(n)d recordings and %(d)d documents: one disc takes "
                          "at most %(max)d and %(maxd)d") % {"ref": ref, "n": len(recs), "d":
                                                             len(docs), "max": MAX_RECORDINGS,
                                                             "maxd": MAX_DOCUMENTS})
    _check_visible(cat, user, recs)
    try:
        a, pub, log, size, note, st = _signed_state(cat.archive_dir)
    except ClipError as e:
        raise DiscError(str(e)) from None
    try:
        return _collect(cat, a, pub, log, size, note, st, kind, title, recs, docs, nums, ref)
    except ClipError as e:
        raise DiscError(str(e)) from None
    finally:
        a.close()


def _collect(cat, a, pub, log, size, note, st, kind, title, recs, docs, nums, ref):
    from ..clip import ArchiveSource
    out = {"kind": kind, "title": title, "ref": ref, "numbers": nums, "station": pub,
           "origin": log.origin, "size": size, "checkpoint": note, "recordings": [],
           "documents": [], "entries": {}}
    by_dev = {}
    for dev, seg in recs:
        by_dev.setdefault(dev, []).append(seg)
    want_obj, total = {}, 0
    for dev in sorted(by_dev):
        src = ArchiveSource.__new__(ArchiveSource)
        src.root, src.a = cat.archive_dir, a
        src._load(dev, pub, log, size, note, st)
        for seg in sorted(by_dev[dev]):
            rs = _segment_records(src, seg)
            part = src.log_part(rs)
            for i, raw, _p in part["entries"]:
                out["entries"][i] = raw
            rel = rs[0].body[K.MEDIA]
            sha = src.objects.get(rel)
            item = {"device": dev, "segment": seg, "records": [bytes(r.data) for r in rs],
                    "media_rel": rel, "sha256": None, "why": None, "size": 0,
                    "start_rtc": rs[0].body[K.RTC], "end_rtc": rs[-1].body[K.RTC]}
            if seg in src.disposed:
                item["why"] = "disposed of with approval (SPEC §9.2)"
            elif sha is None:
                item["why"] = "not offloaded"
            else:
                item["sha256"] = bytes(sha).hex()
                item["size"] = _object_size(a, item["sha256"])
                total += item["size"]
                want_obj[(dev, rel)] = bytes(sha)
            out["recordings"].append(item)
    for d in docs:
        sz = int(d["size"])
        total += sz
        out["documents"].append(dict(d))
    if total > MAX_BYTES:
        raise DiscError(_("%(ref)s holds %(gb).1f GB: more than one disc (%(max)d GB) takes")
                        % {"ref": ref, "gb": total / 1e9, "max": MAX_BYTES >> 30})
    _more_entries(out, log, size, by_dev, st, want_obj, {d["sha256"] for d in docs}, kind,
                  ref)
    last = None
    for _i, _raw, e in log.entries(size - 1, size):
        last = e.get("at")
    out["date"] = last
    return out


def _object_size(a, sha):
    with a.open_object(sha) as f:
        f.seek(0, os.SEEK_END)
        return f.tell()


def _more_entries(out, log, size, by_dev, st, want_obj, doc_shas, kind, ref):
    """Add the registrations of the devices' keys, the `object` entries of the media and
    the clerk events of the case or number and of its documents."""
    keys = {d: bytes(st.devices[d]["key"]) for d in by_dev}
    reg, obj = {}, {}
    for i, raw, e in log.entries(0, size):
        t, dev = e.get("type"), e.get("device")
        if t in ("register", "device_provisioned") and dev in keys and \
                bytes(e.get("key") or b"") == keys[dev]:
            reg[dev] = (i, raw)
        elif t == "device_rekeyed" and dev in keys and \
                bytes(e.get("new_key") or b"") == keys[dev]:
            reg[dev] = (i, raw)
        elif t == "object" and (dev, e.get("path")) in want_obj and \
                bytes(e.get("sha256") or b"") == want_obj[(dev, e.get("path"))]:
            obj[(dev, e["path"])] = (i, raw)
        elif (kind == "case" and t in ("case_opened", "case_linked", "case_unlinked",
                                       "case_closed", "case_archived")
              and e.get("case_no") == ref) or \
                (t == "number_assigned" and e.get("number") in out["numbers"]) or \
                (t == "document_added" and e.get("sha256") in doc_shas):
            out["entries"][i] = raw
    for dev in keys:
        if dev not in reg:
            raise DiscError(_("%(dev)s: the station log holds no registration of its key: run "
                              "`sealcam verify`") % {"dev": dev})
    for i, raw in list(reg.values()) + list(obj.values()):
        out["entries"][i] = raw


# -- the tree ------------------------------------------------------------------------------

def disc_paths(item):
    base = "recordings/%s/%d" % (item["device"], item["segment"])
    return base + "/records.cbor", base + "/" + item["media_rel"].rsplit("/", 1)[-1]


NAME_BYTES = 200                # UTF-8 bytes of a document's name on the disc (RR: 255)


def doc_path(d):
    """documents/SHA12-NAME: the name cut to NAME_BYTES (keeping its extension)."""
    name = d["name"].replace("/", "_").replace("\\", "_").strip() or "document"
    if name in (".", ".."):
        name = "document"
    if len(name.encode("utf-8")) > NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext.encode("utf-8")) > 16:
            stem, ext = name, ""
        keep = NAME_BYTES - len(ext.encode("utf-8")) - (1 if ext else 0)
        name = stem.encode("utf-8")[:keep].decode("utf-8", "ignore") + \
            ("." + ext if ext else "")
    return "documents/%s-%s" % (d["sha256"][:12], name)


def write_tree(cat, col, tree, readme):
    """Write the disc's files under ``tree`` (a new folder); returns the manifest bytes."""
    from ..tlog import merkle
    lg = cat.archive.log()
    files = {}

    def put(rel, data):
        p = os.path.join(tree, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "xb") as f:
            f.write(data)
        files[rel] = (len(data), hashlib.sha256(data).digest())

    put("README.txt", readme.encode("utf-8"))
    with open(os.path.join(BUNDLE, "verify_disc.py"), "rb") as f:
        put("verify_disc.py", f.read())
    with open(os.path.join(BUNDLE, "sealcam_disc_checks.py"), "rb") as f:
        put("verifier/sealcam_disc_checks.py", f.read())
    fw = _firmware_dir()
    for m in FIRMWARE_MODULES:
        with open(os.path.join(fw, m), "rb") as f:
            put("verifier/sealcamfw/" + m, f.read())
    put("station/station.pub", (col["station"].hex() + "\n").encode())
    put("station/checkpoint", col["checkpoint"])
    ents = [[i, col["entries"][i], merkle.inclusion_proof(lg.hashes, i, col["size"])]
            for i in sorted(col["entries"])]
    put("log/entries.cbor", cbor2.dumps(ents, canonical=True))
    recs = []
    for item in col["recordings"]:
        rp, mp = disc_paths(item)
        put(rp, cbor2.dumps(item["records"], canonical=True))
        entry = {"device": item["device"], "segment": item["segment"], "records": rp,
                 "media": None, "sha256": None, "why": item["why"],
                 "start_rtc": item["start_rtc"], "end_rtc": item["end_rtc"]}
        if item["sha256"]:
            files[mp] = _copy_object(cat.archive, item["sha256"],
                                     os.path.join(tree, *mp.split("/")))
            entry["media"], entry["sha256"] = mp, bytes.fromhex(item["sha256"])
        recs.append({k: v for k, v in entry.items() if v is not None})
    docs = []
    for d in col["documents"]:
        p = doc_path(d)
        files[p] = _copy_object(cat.archive, d["sha256"], os.path.join(tree, *p.split("/")))
        docs.append({"path": p, "sha256": d["sha256"], "name": d["name"], "kind": d["kind"],
                     "media_type": d["media_type"]})
    for dev in sorted({r["device"] for r in col["recordings"]}):
        key = _device_key(col, dev)
        put("devices/%s/key.pub" % dev, (key.hex() + "\n").encode())
    man = {"format": FORMAT, "origin": col["origin"], "station": col["station"],
           "ref": col["ref"], "kind": col["kind"], "title": col["title"],
           "numbers": list(col["numbers"]), "date": col["date"], "log_size": col["size"],
           "recordings": recs, "documents": docs,
           "files": [[p, files[p][0], files[p][1]] for p in sorted(files)]}
    return cbor2.dumps(man, canonical=True)


def _device_key(col, dev):
    from ..tlog.log import decode_entry
    key = None
    for i in sorted(col["entries"]):
        e = decode_entry(col["entries"][i])
        if e.get("device") == dev and e.get("type") in ("register", "device_provisioned"):
            key = bytes(e["key"])
        elif e.get("device") == dev and e.get("type") == "device_rekeyed":
            key = bytes(e["new_key"])
    return key


def _copy_object(archive, sha, dst):
    """Copy the object's plaintext (Archive.open_object) to ``dst``, checking its hash."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    h, n = hashlib.sha256(), 0
    with archive.open_object(sha) as f, open(dst, "xb") as out:
        while True:
            b = f.read(BLOCK)
            if not b:
                break
            h.update(b)
            n += len(b)
            out.write(b)
    if h.hexdigest() != sha:
        raise DiscError(_("the archive's object %(sha)s does not hash to its name: run "
                          "`sealcam verify`; no disc was made") % {"sha": sha})
    return n, h.digest()


def sign_manifest(cat, manifest, origin):
    """MANIFEST.sig: a C2SP signed note by the station key (as the log's checkpoints)."""
    from .. import station
    from ..tlog import note
    text = "%s\n%s\n%s\n" % (FORMAT, origin, hashlib.sha256(manifest).hexdigest())
    return note.sign_note(text, origin, station.load_station_key(cat.archive_dir))


def iso_time(at):
    """Seconds since 1970 of an ISO 8601 time of the log (`at`)."""
    t = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp())


def _authorize(cat, user, ref, request, recs):
    """R15: a disc hands out originals: ``request`` must be an approved export request of
    ``user`` whose target is the case or archive number ``ref`` and that covers each of
    ``recs`` (access.authorize); AccessRefused (one line) otherwise."""
    from ..catalogue import access
    if not isinstance(request, str) or not request:
        raise access.AccessRefused(_("a disc holds the originals: name your approved export "
                                     "request of %(ref)s with --request N (`sealcam access "
                                     "request`)") % {"ref": ref})
    for dev, seg in recs or [(None, None)]:
        st = access.authorize(cat, user, request, "export", device=dev, segment=seg)
        if st.get("target_kind") not in ("case", "number") or st.get("target") != ref:
            raise access.AccessRefused(
                _("request %(id)s is for %(kind)s %(target)s, not for the disc of %(ref)s: "
                  "a disc needs an export request of its case or archive number")
                % {"id": request, "kind": st.get("target_kind"),
                   "target": st.get("target"), "ref": ref})


def _private(path):
    """``path`` (written by us) readable by its owner only."""
    if os.path.isfile(path) and not os.path.islink(path):
        os.chmod(path, 0o600)


def build_disc(cat, user, ref, out_dir, progress=None, request=None):
    """Build the two images of ``ref`` (a case number or an archive number) in ``out_dir``,
    their label PDF, and record the `disc_made` event. Returns {"images", "label_pdf",
    "image_sha256", "contents_sha256", "event", "recordings", "documents", "files"}.

    ``request``: the user's approved export request of ``ref`` (R15): checked before any
    file is written, and the disc's use is put on the access register (access_used naming
    the image's SHA-256) before this returns; the files are written mode 0600. `sealcam
    export disc` always passes it; None (the desk's call until it asks for one) skips the
    register."""
    from ..catalogue import users
    from . import layout
    users.require(user, "disc")
    say = progress or (lambda _m: None)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.realpath(out_dir).startswith(os.path.realpath(cat.archive_dir) + os.sep):
        raise DiscError(_("--out %(out)s is inside the archive: write the images elsewhere")
                        % {"out": out_dir})
    from ..pdfdoc import FontMissing, find_cjk_font
    try:
        find_cjk_font()                 # the label needs it: say so before any work
    except FontMissing as e:
        raise DiscError(str(e)) from None
    cat.sync()
    if request is not None:             # before anything is written
        _authorize(cat, user, ref, request, _what(cat, ref, user)[2])
    os.makedirs(out_dir, exist_ok=True)
    say(_("collecting %(ref)s") % {"ref": ref})
    col = collect(cat, user, ref)
    name = layout.image_name(ref)
    final = [os.path.join(out_dir, "%s-%s.iso" % (name, c)) for c in "AB"] + [
        os.path.join(out_dir, "%s-label.pdf" % name)]
    for p in final:
        if os.path.lexists(p):
            raise DiscError(_("%(path)s exists already: choose another --out") % {"path": p})
    # attack13 #06: everything is written into a private folder (0700) in --out and moved
    # into place only after disc_made and the register's line; removed on any failure
    from ..catalogue.copies import CopyError
    from ..catalogue.handout import private_dir, remove_private
    try:
        priv = private_dir(out_dir, "disc")
    except CopyError as e:
        raise DiscError(str(e)) from None
    try:
        res = _build(cat, user, ref, request, col, name, priv, final, say)
    finally:
        remove_private(priv)
    say(_("done"))
    return res


def _build(cat, user, ref, request, col, name, priv, final, say):
    from ..catalogue import discs
    from ..catalogue.copies import CopyError
    from ..catalogue.handout import move_into_place
    from . import discs_text, layout
    paths = [os.path.join(priv, os.path.basename(p)) for p in final[:2]]
    label_pdf = os.path.join(priv, os.path.basename(final[2]))
    tree = os.path.join(priv, ".%s.tree" % name)
    os.makedirs(tree, mode=0o700)       # the originals' plaintext: the owner's only
    try:
        say(_("writing the disc's files"))
        readme = discs_text.readme(cat, col)
        manifest = write_tree(cat, col, tree, readme)
        with open(os.path.join(tree, "MANIFEST.cbor"), "xb") as f:
            f.write(manifest)
        with open(os.path.join(tree, "MANIFEST.sig"), "xb") as f:
            f.write(sign_manifest(cat, manifest, col["origin"]))
        say(_("verifying the disc's files with its own verifier"))
        res = layout.bundle_verifier().verify(tree)
        if res.verdict == "NOT_OK":
            raise DiscError(_("the disc's files do not verify (%(why)s): run `sealcam verify "
                              "%(arch)s`; no disc was made")
                            % {"why": "; ".join(res.problems + [
                                "%s/%s: %s" % (r["device"], r["segment"], "; ".join(
                                    r["reasons"])) for r in res.recordings if r["reasons"]])
                               [:300], "arch": cat.archive_dir})
        say(_("writing the two images"))
        from pycdlib.pycdlibexception import PyCdlibException
        try:
            digest = layout.write_images(tree, paths, iso_time(col["date"]), ref)
        except (PyCdlibException, layout.DiscImageError) as e:
            raise DiscError(_("the images cannot be made (%(err)s); no disc was made")
                            % {"err": str(e)[:200]}) from None
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    contents = hashlib.sha256(manifest).hexdigest()
    label = discs_text.label_fields(cat, user, col, contents, digest)
    discs_text.write_label(label_pdf, label)
    _private(label_pdf)
    index = cat.act(user, discs.made_event(ref, digest, contents, label))
    if request is not None:             # the register's line before the disc is handed out
        from ..catalogue import access
        access.record_use(cat, user, request, "export", output=digest)
    try:                                # only now in --out (no disc without its event)
        move_into_place(list(zip(paths + [label_pdf], final)))
    except CopyError as e:
        raise DiscError(str(e)) from None
    paths, label_pdf = final[:2], final[2]
    return {"images": paths, "label_pdf": label_pdf, "image_sha256": digest,
            "contents_sha256": contents, "event": index, "ref": ref, "kind": col["kind"],
            "recordings": [[r["device"], r["segment"]] for r in col["recordings"]],
            "documents": len(col["documents"]), "verdicts": [
                {"device": r["device"], "segment": r["segment"], "verdict": r["verdict"]}
                for r in res.recordings]}
