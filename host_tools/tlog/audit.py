"""The archive against its station log (SPEC §9 step 3-4): archive.sqlite and the device
views compared with the state the log's events replay to (host_tools.tlog.replay). Every
row that is missing, differs or was never logged, and every view file that is not the
object the log recorded, is named."""
from __future__ import annotations

import os

from ..archive.common import (CHECKPOINT, REC_START, RECOVERY, SEGMENT, ZERO, H, record_body,
                             record_columns, safe_rel)
from ..records import media_name_error
from ..keys import fingerprint
from ..verify import TYPE_NAMES
from ..verify_report import ranges
from .objects import hash_file as _hash_file

__all__ = ["cross_check"]


def _ranges(seqs):
    """[7, 1, 2, 3] -> '1..3, 7' (all of them)."""
    return ranges(sorted(seqs), dash="..", sep=", ", most=None)


def _tname(t):
    return TYPE_NAMES.get(t, "type %s" % t)


_SEG_COLS = ("media", "chunk", "length", "chunks", "root", "closed_by")


def expected_segments(recs):
    """{segment: {media, chunk, length, chunks, root, closed_by}} that a device's signed
    records (``recs``: {seq: (type, body)}) give, as an offload tracks them
    (host_tools.archive.segments.track_segment)."""
    out = {}
    for seq in sorted(recs):
        t, body = recs[seq]
        if t == REC_START:
            media, chunk = body.get(11), body.get(12)
            if safe_rel(media) and media_name_error(seq, media) is None \
                    and isinstance(chunk, int) and chunk > 0 and seq not in out:
                out[seq] = {"media": media, "chunk": chunk, "length": 0, "chunks": 0,
                            "root": ZERO, "closed_by": None}
            continue
        if t not in (CHECKPOINT, SEGMENT, RECOVERY):
            continue
        seg, L, n, root = body.get(10), body.get(13), body.get(14), body.get(15)
        if not (isinstance(seg, int) and isinstance(L, int) and isinstance(n, int)
                and isinstance(root, bytes) and len(root) == 32):
            continue
        row = out.get(seg)
        if row is None or row["closed_by"] is not None:
            continue
        if t == CHECKPOINT:
            if n >= row["chunks"]:
                row.update(length=L, chunks=n, root=root)
        else:
            row.update(length=L, chunks=n, root=root, closed_by=seq)
    return out


def _check_segments(db, st, signed_bodies, bad):
    """The segments table against what the signed records say (a deleted, added or edited
    row is named): the media name an offload writes and the lengths it trusts come from
    it."""
    st.expected_segments = {d: expected_segments(signed_bodies.get(d, {}))
                            for d in st.devices}
    rows = {}
    for r in db.execute("SELECT device, segment, media, chunk, length, chunks, root, "
                        "closed_by FROM segments"):
        rows[(r["device"], r["segment"])] = r
    for d in st.devices:
        for seg, want in sorted(st.expected_segments[d].items()):
            row = rows.pop((d, seg), None)
            if row is None:
                bad(d, "segments row %s %d (%s) is missing from archive.sqlite: it was deleted"
                    % (d, seg, want["media"]))
                continue
            diff = [c for c in _SEG_COLS if row[c] != want[c]]
            if diff:
                bad(d, "segments row %s %d: %s not what the signed records say (edited)"
                    % (d, seg, ", ".join(diff) + (" is" if len(diff) == 1 else " are")))
    for (d, seg), row in sorted(rows.items(), key=lambda x: (str(x[0][0]), str(x[0][1]))):
        if d in st.devices and (d, seg) not in rows:
            continue
        bad(d if isinstance(d, str) else None,
            "segments row %r %r is in archive.sqlite but no signed record of the station log "
            "opens it" % (d, seg))


def cross_check(a, st):
    """{device id or None: [reasons]}: what archive.sqlite and the views say that the log
    (the replayed state ``st``) does not."""
    out = {}

    def bad(dev, msg):
        out.setdefault(dev, []).append(msg)

    db = a.db
    rows = {r["id"]: dict(r) for r in db.execute(
        "SELECT id, pubkey, fingerprint, registered_at, last_head_seq, last_head_hash, "
        "last_head FROM devices")}
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
        elif row["fingerprint"] != fingerprint(dv["key"]):
            bad(d, "devices row of %s: fingerprint %r is not that of its key %s"
                % (d, row["fingerprint"], fingerprint(dv["key"])))
        if row["last_head"] is not None and H(row["last_head"]) != row["last_head_hash"]:
            bad(d, "devices row of %s: last_head does not hash to last_head_hash" % d)
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
    signed_bodies = {}              # device -> {seq: (type, body)} of rows the log vouches for
    for r in db.execute("SELECT device, seq, type, hash, stored_at, data, size, rtc, segment "
                        "FROM records ORDER BY device, seq"):
        d, seq = r["device"], r["seq"]
        held.setdefault(d, set()).add(seq)
        logged = st.records.get(d, {}).get(seq)
        h = H(r["data"])
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
        body = record_body(r["data"]) or {}
        if h == lh:
            signed_bodies.setdefault(d, {})[seq] = (lt, body)
        rtc, seg = record_columns(seq, lt, body)
        for col, want in (("size", len(r["data"])), ("rtc", rtc), ("segment", seg)):
            if r[col] != want:
                bad(d, "records row %s seq %d: %s %r is not what its signed record says (%r)"
                    % (d, seq, col, r[col], want))
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
    _check_segments(db, st, signed_bodies, bad)
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
                            ("receipt", lr["receipt"]), ("receipt_hash", H(lr["receipt"])),
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
                    if not why and bytes.fromhex(h) != want:     # sealed at rest?
                        from .objects import _sealed_head, hash_sealed
                        if _sealed_head(p) is not None:
                            from ..archive.atrest import LOCKED
                            h, why = hash_sealed(p, want.hex(), a._reading_key())
                            if why == LOCKED:   # no key: the media check says "not checked"
                                continue
                            h = h or want.hex()
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
