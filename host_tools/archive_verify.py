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

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from .archive import Archive, NotAnArchive
from .archive.atrest import LOCKED
from .keys import KeyFileError, fingerprint
from .tlog import merkle
from .tlog.audit import cross_check
from .tlog.log import LogError
from .tlog.objects import (_media_inodes, _proven_media, hash_objects, list_objects,
                           object_caps)
from .tlog.replay import State, replay
from .verify import (EXIT_CODES, NOT_OK, NOT_SIGNED, OK, OK_WITH_MISSING_INFO, VERDICTS,
                     verify_store)

__all__ = ["verify_archive", "run_verify_archive", "check_log"]

_RANK = {v: i for i, v in enumerate(VERDICTS)}      # best .. worst
MAX_REASONS = 40


def station_pub_checked(root):
    """(station public key, None), or (None, why) when station.pub is missing or malformed
    (opened without following a symlink, regular files only, never blocking)."""
    from .safeio import read_capped
    try:
        t = read_capped(root, "station.pub", 200, "station.pub").strip()
        pub = bytes.fromhex(t.decode("ascii"))
        if len(pub) != 32:
            raise ValueError
        return pub, None
    except FileNotFoundError:
        return None, "no station.pub in the archive"
    except OSError as e:
        from .tlog.log import archive_words
        return None, archive_words(e)
    except (ValueError, UnicodeDecodeError):
        return None, "station.pub is not 64 hex digits"


def check_log(a, pub, external=None):
    """(trusted size, reasons, info) of the archive's log. ``external``: the bytes of an
    earlier checkpoint the log must extend. The trusted size is what a signature of the
    station covers (0 when nothing does)."""
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
    info = {"origin": log.origin, "size": log.size + log.unindexed,
            "checkpoint_size": None, "root": log.root().hex(), "torn_bytes": log.torn}
    if pub is None:
        return 0, reasons, info
    if a.log_is_absent():
        if a.holds_history():
            reasons.append("station log: missing (no log/checkpoint, no entries) in an archive "
                           "that %s: nothing it holds is proven; restore log/ from a backup "
                           "(or, if it is lost, `sealcam station adopt`)"
                           % ("was made with one" if a.meta.get("log") else "holds devices"))
        return 0, reasons, info
    acc = log.account(pub)
    trusted = acc.signed
    if acc.checkpoint is not None:
        info["checkpoint_size"] = acc.checkpoint[0]
    if acc.pending is not None:
        info["pending_size"] = acc.pending[0]
        info["checkpoint_size"] = acc.pending[0]
        info["cut_write"] = ("entries %d..%d: an append of the station was cut before its "
                             "checkpoint was installed; its signed pending checkpoint covers "
                             "them" % (acc.checkpoint[0] if acc.checkpoint else 0,
                                       acc.pending[0] - 1))
    if acc.problem:
        reasons.append("station log: %s" % acc.problem)
    elif acc.checkpoint is None and acc.pending is None:
        reasons.append("station log: %d entries and no signed checkpoint" % log.size)
        trusted = 0
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
                               "holds %d signed: the archive was rolled back" % (esize, n))
            else:
                proof = merkle.consistency_proof(log.hashes, esize, n)
                try:
                    merkle.verify_consistency(esize, n, proof, eroot, log.root(n))
                    info["external_consistent"] = True
                except merkle.ProofError as e:
                    reasons.append("--checkpoint: the archive's log does not extend it (%s): "
                                   "the archive was rewritten or replaced" % e)
    return trusted, reasons, info


# -- the whole ------------------------------------------------------------------------------

def verify_archive(root, *, progress=None, checkpoint=None, workers=None, at_rest_key=None):
    """Returns {"archive", "archive_id", "verdict", "devices": [ {device, fingerprint,
    verdict, report, last_head_seq, records, segments, receipts, last_offload, reasons} ],
    "reasons", "log"}. ``checkpoint``: bytes of an earlier checkpoint to be extended.
    ``at_rest_key``: the path of the at-rest key file (default: station.toml's; SPEC
    §14.8): objects encrypted at rest are decrypted and checked, or said not checked."""
    with Archive(root, readonly=True) as a:
        out = {"archive": a.root, "archive_id": a.archive_id, "devices": [], "reasons": []}
        if at_rest_key is not None:
            a.use_key_file(at_rest_key)
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
        objs = None
        try:
            pub, why = station_pub_checked(a.root)
            worst = None
            if why:
                out["reasons"].append(why + ": the station log cannot be checked")
                worst = NOT_OK
            try:
                trusted, lreasons, linfo = check_log(a, pub, checkpoint)
                st = replay(a.log(), trusted)
            except (LogError, OSError) as e:
                lreasons, linfo, st = ["station log: %s" % e], {}, State()
            if st.adopted:
                linfo["adopted"] = st.adopted["at"]
                out["reasons"].append(
                    "the station log starts with an adoption (%s, `sealcam station adopt`): "
                    "what the archive held before then is only the index's word, unproven"
                    % st.adopted["at"])
                worst = _worse(worst, OK_WITH_MISSING_INFO)
            if a.unread_wal:
                out["reasons"].append(
                    "archive.sqlite-wal holds changes that a read-only file system does not let "
                    "SQLite read: rows written last may be named as missing (verify where the "
                    "archive can be written, or after the station has closed it)")
            out["log"] = linfo
            if a.index_problems:
                out["reasons"].extend(a.index_problems)
                worst = NOT_OK
            if lreasons:
                out["reasons"].extend(lreasons)
                worst = NOT_OK
            pending = _pending_disposals(a, st)     # a disposal a cut left unfinished
            cross = cross_check(a, st)
            from .archive.devices import lifecycle_check    # provision, revoke, rekey
            life = lifecycle_check(a, st)
            if life:
                cross.setdefault(None, []).extend(life)
            # objects other than view media are hashed beside the device verification, each
            # capped by the size the signed log and records allow for it
            caps = object_caps(st)
            key = a._reading_key()          # sealed objects: decrypted and hashed
            objs = pool.submit(hash_objects, a.objects, workers, first, caps=caps, key=key)
            if cross.get(None):
                out["reasons"].extend(cross[None][:MAX_REASONS])
                worst = NOT_OK
            rows = {d["id"]: d for d in a.devices()}
            for did in sorted(set(rows) | set(st.devices)):
                entry, seen = _check_device(a, did, rows.get(did), st.devices.get(did),
                                            cross.get(did, ()), progress,
                                            st.disposed.get(did, {}),
                                            st.objects.get(did, {}))
                entry["disposed"] = _disposed_json(st.disposed.get(did, {}),
                                                   pending.get(did, {}))
                for seg, left in sorted(pending.get(did, {}).items()):
                    entry["notes"].append(_unfinished(a, did, seg, st.disposed[did][seg],
                                                      left))
                entry["retired_key_of"] = st.retired.get(did)    # `station rekey` (§9.1)
                out["devices"].append(entry)
                proven |= seen
                worst = _worse(worst, entry["verdict"])
            bad = objs.result() + hash_objects(a.objects, workers, later, proven, caps=caps,
                                               key=key)
            bad.sort()
            locked = [p for p, r in bad if r == LOCKED]
            bad = [(p, r) for p, r in bad if r != LOCKED]
            if locked:
                why = a._atrest_state()[1]
                out["objects_locked"] = [os.path.relpath(p, a.root) for p in locked]
                out["reasons"].append(
                    "%s encrypted at rest and the station's at-rest key is not "
                    "available%s: their content was not checked (verify where the key file "
                    "station.toml names can be read)"
                    % ("1 object is" if len(locked) == 1 else "%d objects are" % len(locked),
                       " (%s)" % why if why is not None else ""))
                worst = _worse(worst, OK_WITH_MISSING_INFO)
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


def _worse(a, b):
    """The worse of two verdicts (None: no verdict yet)."""
    if a is None or (b is not None and _RANK[b] > _RANK[a]):
        return b
    return a


def _pending_disposals(a, st):
    """{device: {segment: [what is left]}} of the disposals in the log whose objects are
    still in the archive (a cut between the signed event and the unlinks, finished by the
    next disposal run). Their view files still there are checked against the objects the
    disposal names (put back into ``st.objects`` for the cross-check): the right object is
    not tampering, any other file is."""
    out = {}
    live = None
    for d, segs in st.disposed.items():
        for seg, info in segs.items():
            if live is None:
                from .archive.dispose import _live
                live = _live(st)
            left = a.disposal_leftovers(d, info, st, live)
            if left:
                out.setdefault(d, {})[seg] = left
    for d, segs in out.items():
        for seg in segs:
            for p, h in st.disposed[d][seg]["objects"]:
                if p not in st.objects[d] and os.path.lexists(
                        os.path.join(a.devices_dir, d, *p.split("/"))):
                    st.objects[d][p] = h        # the first named for a path: the view's
    return out


def _unfinished(a, did, seg, info, left):
    from .i18n import _
    return _("the disposal of segment %(seg)d (log entry %(entry)d, request %(request)s) is "
             "not finished: %(left)s still in the archive; the next disposal run removes "
             "%(them)s") % {"seg": seg, "entry": info["entry"], "request": info["request"],
                            "left": ", ".join(left[:4]) + (" …" if len(left) > 4 else ""),
                            "them": "it" if len(left) == 1 else "them"}


def _disposed_json(disposed, pending):
    return [{"segment": seg, "request": i.get("request"), "requested_by": i.get("requested_by"),
             "approved_by": i.get("approved_by"), "approved_at": i.get("approved_at"),
             "at": i.get("at"), "class": i.get("class"), "expired_on": i.get("expired_on"),
             "reason": i.get("reason"), "log_entry": i.get("entry"),
             "finished": seg not in pending}
            for seg, i in sorted(disposed.items())]


def _check_device(a, did, row, logged, cross_reasons, progress, disposed=None, objects=None):
    """(entry, proven media inodes) of device ``did``: its view verified like a card with
    the key the station log registered (the index's key if the log never registered it),
    its chain reaching the last head the log recorded, and the ``cross_reasons`` that
    the index and the view disagree with the log. ``disposed``: the device's disposals
    the log holds ({segment: info}): their media is not missing. ``objects``: {rel:
    sha256} the log linked into the view (media sealed at rest is read as that object)."""
    key = logged["key"] if logged else row["pubkey"]
    key = bytes(key) if isinstance(key, (bytes, bytearray)) else b""
    last = logged["head_seq"] if logged else None
    view = a.view_dir(did)
    entry = {"device": did, "fingerprint": fingerprint(key) if len(key) == 32
             else "(not a key)", "last_head_seq": last,
             "records": a.record_count(did), "segments": len(a.segments(did)),
             "segments_complete": len(a.segments(did, "complete")),
             "receipts": [{k: r[k] for k in ("number", "covered", "status", "record_seq",
                                              "sent_at")}
                          for r in a.receipts(did)],
             "last_offload": None, "verdict": None, "reasons": [], "notes": [],
             "report": None}
    offs = a.offloads(did)
    if offs:
        o = offs[-1]
        entry["last_offload"] = {k: o[k] for k in ("id", "started", "finished", "status",
                                                   "verdict", "head_went_back")}
    reasons = list(cross_reasons)
    verdict = NOT_OK if reasons else None
    entry["reasons"] = reasons
    rec_dir = os.path.join(view, "rec")
    if not os.path.isdir(rec_dir) or not os.listdir(rec_dir):
        if last is not None:
            verdict = NOT_OK
            reasons.insert(0, "the view holds no records but the station log recorded a "
                              "head at seq %d" % last)
        else:
            reasons.append("no records offloaded yet")
        entry["verdict"] = verdict
        return entry, set()
    try:
        from .tlog.events import disposal_text
        rep = verify_store(view, key, progress=progress,
                           disposed={s: disposal_text(i) for s, i in (disposed or {}).items()},
                           media_opener=a.media_opener(objects))
    except (KeyFileError, ValueError) as e:
        reasons.insert(0, "the key held for device %s cannot be used (%s)" % (did, e))
        entry["verdict"] = NOT_OK
        return entry, set()
    verdict = _worse(verdict, rep.verdict)
    reasons.extend(rep.reasons)
    if last is not None and (rep.chain_end is None or rep.chain_end < last):
        verdict = NOT_OK
        reasons.insert(0, "the archived chain ends at seq %s, before the last signed head "
                          "the station log recorded (seq %d): records were removed from the "
                          "archive" % (rep.chain_end, last))
    went_back = [o["id"] for o in offs if o["head_went_back"]]
    if went_back:
        entry["notes"].append(
            "offload%s %s found the recorder's signed head gone back (records removed from "
            "the recorder after they were archived)"
            % ("" if len(went_back) == 1 else "s", ", ".join(map(str, went_back))))
    entry["verdict"], entry["report"] = verdict, rep
    return entry, _proven_media(view, rep)


def _text(res, all_records=False):
    lines = ["archive %s (id %s)" % (res["archive"], res["archive_id"])]
    lg = res.get("log") or {}
    if lg:
        lines.append("station log: %s entries, signed checkpoint over %s%s" % (
            lg.get("size"), lg.get("checkpoint_size"),
            "; extends the given checkpoint (%d entries)" % lg["external_size"]
            if lg.get("external_consistent") else ""))
        if lg.get("adopted"):
            lines.append("station log: started %s by adopting an index made before it (what "
                         "happened before then is only the index's word)" % lg["adopted"])
    lines.append("")
    for e in res["devices"]:
        lines.append("=" * 78)
        if e.get("retired_key_of"):
            lines.append("device %s (the retired key %s of %s: its history before `station "
                         "rekey`)" % (e["device"], e["fingerprint"], e["retired_key_of"]))
        else:
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
        from .safeio import read_capped
        try:                            # a regular file, never a FIFO or a device
            full = os.path.abspath(cp)
            ext = read_capped(os.path.dirname(full), os.path.basename(full), 1 << 20,
                              "checkpoint")
        except OSError as e:
            why = str(e.strerror or e).split(": a recorder writes")[0]
            print("sealcam verify: cannot read the checkpoint %s: %s" % (cp, why),
                  file=sys.stderr)
            return 3
    try:
        res = verify_archive(args.path, progress=args.progress, checkpoint=ext,
                             at_rest_key=getattr(args, "at_rest_key", None))
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
            json.dump(j, sys.stdout, indent=2, ensure_ascii=True, default=str)
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
