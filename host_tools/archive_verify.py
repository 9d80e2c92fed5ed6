"""`sealcam verify ARCHIVE`: the archive against its signed station log (SPEC §9, §11).

1. The station log: its latest checkpoint is a signed note by the station key (station.pub)
   over exactly the log's entries (size and RFC 9162 root); with ``--checkpoint FILE`` the
   log must extend that earlier checkpoint (a consistency proof), so a rollback of the
   whole archive is caught.
2. The log's events are replayed (host_tools.tlog.replay) and archive.sqlite is compared
   with them: devices and keys, records (hash, type, stored_at), last heads, receipts,
   offloads, quarantines. Every row that disagrees, is missing or was never logged is
   named (NOT_OK).
3. Every file of every device view must be the object the log recorded for that path,
   and every path the log recorded must be there.
4. Each devices/ID/ is verified like a card with the offline verifier, pinned to the key
   the log registered (not the database's); the chain must reach the last head the log
   recorded.
5. Every object hashes to its name and is read-only (hashed in parallel, large reads).

The verdict is the worst of all; exit codes are those of a store. The archive is opened
read-only: this works on a read-only file system.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor

from .archive import Archive, NotAnArchive
from .keys import fingerprint
from .tlog import merkle
from .tlog.log import LogError
from .tlog.replay import replay
from .verify import EXIT_CODES, NOT_OK, NOT_SIGNED, OK, TYPE_NAMES, VERDICTS, verify_store

__all__ = ["verify_archive", "run_verify_archive", "hash_objects", "check_log"]

_RANK = {v: i for i, v in enumerate(VERDICTS)}      # best .. worst
READ = 4 << 20
MAX_REASONS = 40


def _H(b):
    return hashlib.sha256(b).digest()


# -- objects: hashed in parallel, big reads into a reused buffer -------------------------

def _hash_file(path):
    """(hex digest, None) or (None, why) for a regular file, never following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return None, "cannot be opened (%s)" % (e.strerror or e)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "not a regular file"
        hs = hashlib.sha256()
        buf = bytearray(READ)
        mv = memoryview(buf)
        left = st.st_size
        while left > 0:
            n = os.readv(fd, [mv[:min(READ, left)]])
            if n <= 0:
                break
            hs.update(mv[:n])
            left -= n
        if left:
            return None, "shorter than its size"
        return hs.hexdigest(), None
    finally:
        os.close(fd)


def list_objects(objects_dir):
    """[(path, name)] of every object (temporary files of an interrupted write aside)."""
    out = []
    for dirpath, dirs, files in os.walk(objects_dir):
        dirs.sort()
        for fn in sorted(files):
            if not fn.startswith(".tmp-"):
                out.append((os.path.join(dirpath, fn), os.path.basename(dirpath) + fn))
    return out


def _check_object(item, proven=frozenset()):
    """(path, problem) or None. ``proven``: (st_dev, st_ino) of files whose every byte was
    already checked against signed chunk hashes: their content is the signed one, so
    hashing them whole again would prove nothing more (their name was logged by the
    station from that same content)."""
    p, name = item
    try:
        st = os.lstat(p)
    except OSError as e:
        return p, "cannot be read (%s)" % (e.strerror or e)
    if not stat.S_ISREG(st.st_mode):
        return p, "not a regular file"
    if (st.st_dev, st.st_ino) not in proven:
        h, why = _hash_file(p)
        if why:
            return p, why
        if h != name:
            return p, "content does not match its name"
    if st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return p, "writable"
    return None


def hash_objects(objects_dir, workers=None, items=None, proven=frozenset()):
    """[(path, problem)] for every object in ``objects_dir`` (or of ``items``) that does not
    hash to its name, is writable or is not a regular file; a thread per core but one."""
    items = list_objects(objects_dir) if items is None else items
    # one thread per core but one: the device views are verified beside it in the caller
    workers = workers or max(1, min(8, (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(workers) as ex:
        return [r for r in ex.map(lambda it: _check_object(it, proven), items)
                if r is not None]


def _media_inodes(a):
    """(st_dev, st_ino) of every media file in the device views (not .idx, not rec/)."""
    out = set()
    if not os.path.isdir(a.devices_dir):
        return out
    for d in os.listdir(a.devices_dir):
        m = os.path.join(a.devices_dir, d, "m")
        if not os.path.isdir(m) or os.path.islink(m):
            continue
        for fn in os.listdir(m):
            if fn.endswith(".idx"):
                continue
            try:
                st = os.lstat(os.path.join(m, fn))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.add((st.st_dev, st.st_ino))
    return out


def _proven_media(view, rep):
    """(st_dev, st_ino) of the view's media files whose every signed chunk verified and
    that hold nothing beyond the signed length."""
    out = set()
    for sr in getattr(rep, "segments", ()) or ():
        if sr.verdict != OK or sr.file_size is None or sr.file_size != sr.length \
                or not sr.marks or set(sr.marks) != {"."}:
            continue
        try:
            st = os.lstat(os.path.join(view, *sr.media.split("/")))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.add((st.st_dev, st.st_ino))
    return out


# -- the log itself -----------------------------------------------------------------------

def _station_pub(root):
    p = os.path.join(root, "station.pub")
    try:
        with open(p, "rb") as f:
            t = f.read(200).strip()
        pub = bytes.fromhex(t.decode("ascii"))
        if len(pub) != 32:
            raise ValueError
        return pub, None
    except FileNotFoundError:
        return None, "no station.pub in the archive"
    except (ValueError, UnicodeDecodeError):
        return None, "station.pub is not 64 hex digits"


def check_log(a, pub, external=None):
    """(trusted size, reasons, info) of the archive's log. ``external``: the bytes of an
    earlier checkpoint the log must extend."""
    log = a.log()
    reasons = []
    kp = os.path.join(a.root, "station.key")
    if pub is not None and os.path.isfile(kp) and os.access(kp, os.R_OK):
        from .station import StationError, station_pub
        try:
            if station_pub(a.root) != pub:
                reasons.append("station.pub is not the public key of station.key: one of them "
                               "was replaced")
        except StationError:
            pass                       # a key we may not read is not ours to judge here
    info = {"origin": log.origin, "size": log.size, "checkpoint_size": None,
            "root": log.root().hex(), "torn_bytes": log.torn}
    trusted = log.size
    if pub is None:
        return trusted, reasons, info
    try:
        cp = log.read_checkpoint(pub)
    except LogError as e:
        reasons.append("station log: %s: the checkpoint is not signed by this station's key"
                       % e)
        cp = None
    if cp is None:
        if log.size and not reasons:
            reasons.append("station log: %d entries and no signed checkpoint" % log.size)
    else:
        size, root_hash, _ = cp
        info["checkpoint_size"] = size
        if size > log.size:
            reasons.append("station log: the signed checkpoint covers %d entries but the log "
                           "holds %d: entries were removed from log/entries" % (size, log.size))
            trusted = log.size
        elif log.root(size) != root_hash:
            reasons.append("station log: the first %d entries do not hash to the signed "
                           "checkpoint's root: log/entries was rewritten" % size)
        else:
            trusted = size
            if size < log.size:
                reasons.append("station log: entries %d..%d are not covered by a signed "
                               "checkpoint (a cut write, or entries added without the station "
                               "key); `sealcam station checkpoint` signs them if this station "
                               "wrote them" % (size, log.size - 1))
    if external is not None:
        try:
            esize, eroot, _ = log.read_checkpoint(pub, external)
        except LogError as e:
            reasons.append("--checkpoint: %s (not a checkpoint of this archive's log signed by "
                           "its station key)" % e)
        else:
            info["external_size"] = esize
            n = trusted
            if esize > n:
                reasons.append("--checkpoint: it covers %d log entries but the archive's log "
                               "holds %d: the archive was rolled back" % (esize, n))
            else:
                proof = merkle.consistency_proof(log.hashes, esize, n)
                try:
                    merkle.verify_consistency(esize, n, proof, eroot, log.root(n))
                    info["external_consistent"] = True
                except merkle.ProofError as e:
                    reasons.append("--checkpoint: the archive's log does not extend it (%s): "
                                   "the archive was rewritten or replaced" % e)
    return trusted, reasons, info


# -- the database and the views against the log --------------------------------------------

def _ranges(seqs):
    seqs = sorted(seqs)
    out, i = [], 0
    while i < len(seqs):
        j = i
        while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
            j += 1
        out.append(str(seqs[i]) if i == j else "%d..%d" % (seqs[i], seqs[j]))
        i = j + 1
    return ", ".join(out)


def _tname(t):
    return TYPE_NAMES.get(t, "type %s" % t)


def cross_check(a, st):
    """{device id or None: [reasons]}: what archive.sqlite and the views say that the log
    (the replayed state ``st``) does not."""
    out = {}

    def bad(dev, msg):
        out.setdefault(dev, []).append(msg)

    db = a.db
    rows = {r["id"]: dict(r) for r in db.execute(
        "SELECT id, pubkey, registered_at, last_head_seq, last_head_hash FROM devices")}
    for d, dv in st.devices.items():
        row = rows.get(d)
        if row is None:
            bad(d, "device %s is registered in the station log (key %s, %s) but its row is "
                   "missing from archive.sqlite: it was deleted" % (d, fingerprint(dv["key"]),
                                                                    dv["registered_at"]))
            continue
        if row["pubkey"] != dv["key"]:
            bad(d, "archive.sqlite holds key %s for device %s, the station log registered key "
                   "%s: the key was swapped" % (fingerprint(row["pubkey"]) if len(
                       row["pubkey"] or b"") == 32 else repr(row["pubkey"]), d,
                       fingerprint(dv["key"])))
        if row["registered_at"] != dv["registered_at"]:
            bad(d, "devices row of %s: registered_at %s, the station log says %s"
                % (d, row["registered_at"], dv["registered_at"]))
        if (row["last_head_seq"], row["last_head_hash"]) != (dv["head_seq"], dv["head_hash"]):
            bad(d, "devices row of %s: last head seq %s, the station log's last head is seq %s"
                % (d, row["last_head_seq"], dv["head_seq"]))
    for d in rows:
        if d not in st.devices:
            bad(d, "device %s is in archive.sqlite but the station log never registered it"
                % d)
    # records
    held = {}
    for r in db.execute("SELECT device, seq, type, hash, stored_at, data FROM records "
                        "ORDER BY device, seq"):
        d, seq = r["device"], r["seq"]
        held.setdefault(d, set()).add(seq)
        logged = st.records.get(d, {}).get(seq)
        h = _H(r["data"])
        if logged is None:
            bad(d, "records row %s seq %d (%s) is not in the station log" % (d, seq,
                                                                             _tname(r["type"])))
            continue
        lh, lt, lat, _ = logged
        if h != lh or r["hash"] != lh:
            bad(d, "records row %s seq %d is not the record the station log stored (its %s "
                   "differs)" % (d, seq, "data" if h != lh else "hash column"))
        if r["type"] != lt:
            bad(d, "records row %s seq %d: type %s, the station log says %s"
                % (d, seq, _tname(r["type"]), _tname(lt)))
        if r["stored_at"] != lat:
            bad(d, "records row %s seq %d: stored_at %s, the station log says %s (the time "
                   "was edited)" % (d, seq, r["stored_at"], lat))
    for d, recs in st.records.items():
        missing = set(recs) - held.get(d, set())
        if missing:
            kinds = {}
            for s in missing:
                kinds.setdefault(recs[s][1], []).append(s)
            named = "; ".join("%s seq %s" % (_tname(t), _ranges(ss))
                              for t, ss in sorted(kinds.items(), key=lambda x: min(x[1])))
            bad(d, "records of %s in the station log are missing from archive.sqlite (deleted "
                   "rows): %s" % (d, named))
    # receipts
    rrows = {}
    for r in db.execute("SELECT * FROM receipts"):
        rrows[(r["device"], r["number"])] = dict(r)
    for d, recs in st.receipts.items():
        for n, lr in recs.items():
            row = rrows.pop((d, n), None)
            if row is None:
                bad(d, "receipt %d of %s (covers seq 0..%d, %s) is in the station log but its "
                       "row is missing from archive.sqlite" % (n, d, lr["covered"],
                                                                lr["status"]))
                continue
            for k, want in (("covered", lr["covered"]), ("covered_hash", lr["covered_hash"]),
                            ("receipt", lr["receipt"]), ("receipt_hash", _H(lr["receipt"])),
                            ("sent_at", lr["sent_at"]), ("status", lr["status"]),
                            ("record_seq", lr["record_seq"])):
                if row[k] != want:
                    bad(d, "receipt %d of %s: %s in archive.sqlite differs from the station "
                           "log (%s)" % (n, d, k, want if not isinstance(want, bytes)
                                         else "edited"))
    for (d, n) in rrows:
        bad(d, "receipt %d of %s is in archive.sqlite but not in the station log" % (n, d))
    # offloads
    orows = {r["id"]: dict(r) for r in db.execute("SELECT * FROM offloads")}
    for oid, lo in st.offloads.items():
        row = orows.pop(oid, None)
        d = lo.get("device")
        if row is None:
            bad(d, "offload %s of %s (%s, %s) is in the station log but its row is missing "
                   "from archive.sqlite" % (oid, d, lo.get("started"), lo.get("status")))
            continue
        diff = [k for k, v in lo.items() if k in row and row[k] != v]
        if diff:
            bad(d, "offload %s of %s: %s in archive.sqlite differ%s from the station log"
                % (oid, d, ", ".join(diff), "s" if len(diff) == 1 else ""))
    for oid, row in orows.items():
        if row["finished"] is not None:
            bad(row["device"], "offload %s of %s (finished %s) is in archive.sqlite but not in "
                               "the station log" % (oid, row["device"], row["finished"]))
    # quarantines
    qrows = {r["id"]: dict(r) for r in db.execute("SELECT * FROM quarantine")}
    for qid, lq in st.quarantines.items():
        row = qrows.pop(qid, None)
        p = os.path.join(a.root, "quarantine", str(qid), "records.log")
        if row is None:
            bad(None, "quarantine %s (%s) is in the station log but its row is missing"
                % (qid, lq.get("reason")))
        h, why = _hash_file(p)
        if why:
            bad(None, "quarantine/%s/records.log %s" % (qid, why))
        elif bytes.fromhex(h) != lq.get("sha256"):
            bad(None, "quarantine/%s/records.log is not what was kept" % qid)
    for qid in qrows:
        bad(None, "quarantine %s is in archive.sqlite but not in the station log" % qid)
    # device views
    vdirs = sorted(os.listdir(a.devices_dir)) if os.path.isdir(a.devices_dir) else []
    for d in vdirs:
        base = os.path.join(a.devices_dir, d)
        logged = st.objects.get(d, {})
        if not os.path.isdir(base) or os.path.islink(base):
            bad(d, "devices/%s is not a folder" % d)
            continue
        seen = set()
        for dirpath, dirs, files in os.walk(base):
            dirs.sort()
            for fn in sorted(files) + sorted(x for x in dirs if os.path.islink(
                    os.path.join(dirpath, x))):
                p = os.path.join(dirpath, fn)
                rel = os.path.relpath(p, base).replace(os.sep, "/")
                if rel.endswith(".tmp-link"):
                    continue
                seen.add(rel)
                want = logged.get(rel)
                if want is None:
                    bad(d, "devices/%s/%s is not in the station log (a file added to the "
                           "view)" % (d, rel))
                    continue
                try:
                    st_f = os.lstat(p)
                    st_o = os.stat(a.object_path(want.hex()))
                    same = (st_f.st_ino, st_f.st_dev) == (st_o.st_ino, st_o.st_dev)
                except OSError:
                    same = False
                if not same:
                    h, why = _hash_file(p)
                    if why or bytes.fromhex(h) != want:
                        bad(d, "devices/%s/%s is not the file the station log recorded%s"
                            % (d, rel, " (%s)" % why if why else ""))
        for rel in sorted(set(logged) - seen):
            bad(d, "devices/%s/%s, recorded in the station log, is missing from the view"
                % (d, rel))
    for d in st.devices:
        if d not in vdirs and st.objects.get(d):
            bad(d, "devices/%s, recorded in the station log, is missing" % d)
    for p in st.problems:
        bad(None, "station log: %s" % p)
    return out


# -- the whole ------------------------------------------------------------------------------

def verify_archive(root, *, progress=None, checkpoint=None, workers=None):
    """Returns {"archive", "archive_id", "verdict", "devices": [ {device, fingerprint,
    verdict, report, last_head_seq, records, segments, receipts, last_offload, reasons} ],
    "reasons", "log"}. ``checkpoint``: bytes of an earlier checkpoint to be extended."""
    with Archive(root, readonly=True) as a:
        out = {"archive": a.root, "archive_id": a.archive_id, "devices": [], "reasons": []}
        # objects other than view media are hashed beside the device verification; media
        # objects after it, unless the verification checked their every byte already
        items = list_objects(a.objects)
        media = _media_inodes(a)
        first, later = [], []
        for it in items:
            try:
                st = os.lstat(it[0])
                (later if (st.st_dev, st.st_ino) in media else first).append(it)
            except OSError:
                first.append(it)
        proven = set()
        pool = ThreadPoolExecutor(1)
        objs = pool.submit(hash_objects, a.objects, workers, first)
        try:
            pub, why = _station_pub(a.root)
            worst = None
            if why:
                out["reasons"].append(why + ": the station log cannot be checked")
                worst = NOT_OK
            try:
                trusted, lreasons, linfo = check_log(a, pub, checkpoint)
                st = replay(a.log(), trusted)
            except (LogError, OSError) as e:
                lreasons, linfo, st = ["station log: %s" % e], {}, replay_empty()
            out["log"] = linfo
            if lreasons:
                out["reasons"].extend(lreasons)
                worst = NOT_OK
            cross = cross_check(a, st)
            if cross.get(None):
                out["reasons"].extend(cross[None][:MAX_REASONS])
                worst = NOT_OK
            rows = {d["id"]: d for d in a.devices()}
            ids = sorted(set(rows) | set(st.devices))
            for did in ids:
                row, logged = rows.get(did), st.devices.get(did)
                key = logged["key"] if logged else row["pubkey"]
                last = logged["head_seq"] if logged else None
                view = a.view_dir(did)
                entry = {"device": did, "fingerprint": fingerprint(key) if len(key) == 32
                         else "?", "last_head_seq": last,
                         "records": a.record_count(did), "segments": len(a.segments(did)),
                         "segments_complete": len(a.segments(did, "complete")),
                         "receipts": [{k: r[k] for k in ("number", "covered", "status",
                                                          "record_seq", "sent_at")}
                                      for r in a.receipts(did)],
                         "last_offload": None, "verdict": None, "reasons": [], "notes": [],
                         "report": None}
                offs = a.offloads(did)
                if offs:
                    o = offs[-1]
                    entry["last_offload"] = {k: o[k] for k in ("id", "started", "finished",
                                                               "status", "verdict",
                                                               "head_went_back")}
                reasons = list(cross.get(did, ()))
                verdict = NOT_OK if reasons else None
                rec_dir = os.path.join(view, "rec")
                if not os.path.isdir(rec_dir) or not os.listdir(rec_dir):
                    if last is not None:
                        verdict = NOT_OK
                        reasons.insert(0, "the view holds no records but the station log "
                                          "recorded a head at seq %d" % last)
                    else:
                        reasons.append("no records offloaded yet")
                    entry["verdict"], entry["reasons"] = verdict, reasons
                    out["devices"].append(entry)
                    if verdict is not None and (worst is None or _RANK[verdict] > _RANK[worst]):
                        worst = verdict
                    continue
                rep = verify_store(view, key, progress=progress)
                proven |= _proven_media(view, rep)
                if verdict is None or _RANK[rep.verdict] > _RANK[verdict]:
                    verdict = rep.verdict
                reasons.extend(rep.reasons)
                if last is not None and (rep.chain_end is None or rep.chain_end < last):
                    verdict = NOT_OK
                    reasons.insert(0, "the archived chain ends at seq %s, before the last "
                                      "signed head the station log recorded (seq %d): records "
                                      "were removed from the archive" % (rep.chain_end, last))
                went_back = [o["id"] for o in offs if o["head_went_back"]]
                if went_back:
                    entry["notes"].append(
                        "offload%s %s found the recorder's signed head gone back (records "
                        "removed from the recorder after they were archived)"
                        % ("" if len(went_back) == 1 else "s", ", ".join(map(str, went_back))))
                entry["verdict"], entry["reasons"], entry["report"] = verdict, reasons, rep
                out["devices"].append(entry)
                if worst is None or _RANK[verdict] > _RANK[worst]:
                    worst = verdict
            bad = objs.result() + hash_objects(a.objects, workers, later, proven)
            bad.sort()
        finally:
            pool.shutdown(wait=True)
        out["objects_bad"] = [{"path": p, "reason": r} for p, r in bad]
        if bad:
            worst = NOT_OK
            out["reasons"].extend("object %s: %s" % (os.path.relpath(p, a.root), r)
                                  for p, r in bad[:20])
            if len(bad) > 20:
                out["reasons"].append("… and %d more objects" % (len(bad) - 20))
        if worst is None:
            worst = NOT_SIGNED
            out["reasons"].append("no device store in the archive holds records")
        out["verdict"] = worst
        return out


def replay_empty():
    from .tlog.replay import State
    return State()


def _text(res, all_records=False):
    lines = ["archive %s (id %s)" % (res["archive"], res["archive_id"])]
    lg = res.get("log") or {}
    if lg:
        lines.append("station log: %s entries, signed checkpoint over %s%s" % (
            lg.get("size"), lg.get("checkpoint_size"),
            "; extends the given checkpoint (%d entries)" % lg["external_size"]
            if lg.get("external_consistent") else ""))
    lines.append("")
    for e in res["devices"]:
        lines.append("=" * 78)
        lines.append("device %s (registered key %s)" % (e["device"], e["fingerprint"]))
        if e["report"] is None:
            for r in e["reasons"]:
                lines.append("  - %s" % r)
            if e["verdict"]:
                lines.append("ARCHIVE VERDICT: %s" % e["verdict"])
            continue
        lines.append(e["report"].to_text(all_records=all_records).rstrip("\n"))
        extra = [r for r in e["reasons"] if r not in e["report"].reasons]
        if e["verdict"] != e["report"].verdict or extra:
            lines.append("ARCHIVE VERDICT: %s" % e["verdict"])
            for r in extra[:MAX_REASONS]:
                lines.append("  - " + r)
            if len(extra) > MAX_REASONS:
                lines.append("  … and %d more" % (len(extra) - MAX_REASONS))
        for n in e["notes"]:
            lines.append("NOTE: " + n)
        for r in e["receipts"][-1:]:
            lines.append("last receipt: %d covers seq 0..%d (%s)" % (r["number"], r["covered"],
                                                                   r["status"]))
    lines.append("=" * 78)
    lines.append("%-20s %-41s %8s %9s  %s" % ("device", "key", "records", "segments",
                                               "verdict"))
    for e in res["devices"]:
        lines.append("%-20s %-41s %8d %4d/%-4d  %s" % (
            e["device"], e["fingerprint"], e["records"], e["segments_complete"],
            e["segments"], e["verdict"] or "(no records)"))
    lines.append("")
    lines.append("OVERALL: %s" % res["verdict"])
    for r in res["reasons"]:
        lines.append("  - " + r)
    return "\n".join(lines) + "\n"


def run_verify_archive(args) -> int:
    if getattr(args, "key", None):
        print("sealcam verify: --key is not used with an archive: each device store is "
              "verified with the device's key from the station log", file=sys.stderr)
        return 3
    ext = None
    cp = getattr(args, "checkpoint", None)
    if cp:
        try:
            with open(cp, "rb") as f:
                ext = f.read(1 << 20)
        except OSError as e:
            print("sealcam verify: cannot read the checkpoint %s: %s" % (cp, e.strerror or e),
                  file=sys.stderr)
            return 3
    try:
        res = verify_archive(args.path, progress=args.progress, checkpoint=ext)
    except NotAnArchive as e:
        print("sealcam verify: %s" % e, file=sys.stderr)
        return 3
    except OSError as e:
        print("sealcam verify: cannot read the archive %s: %s" % (args.path, e),
              file=sys.stderr)
        return 3
    try:
        if args.json:
            j = dict(res)
            j["devices"] = []
            for e in res["devices"]:
                e = dict(e)
                e["report"] = e["report"].to_json() if e["report"] is not None else None
                j["devices"].append(e)
            j["exit_code"] = EXIT_CODES[res["verdict"]]
            json.dump(j, sys.stdout, indent=2, ensure_ascii=False, default=str)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(_text(res, getattr(args, "all", False)))
        sys.stdout.flush()
    except BrokenPipeError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return EXIT_CODES[res["verdict"]]


assert OK in _RANK
