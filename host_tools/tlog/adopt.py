"""Adopting an archive made before the station log (SPEC §11.5): the first writer with the
station key that finds an empty log and an index holding devices writes what the index
says as log entries, after an `adopt` entry that marks where the log's word begins. What
happened before that was only ever the index's word; from then on it is signed."""
from __future__ import annotations

import os

__all__ = ["adopt_entries"]

BATCH = 1000


def _inode_names(objects_dir):
    out = {}
    for dirpath, _, files in os.walk(objects_dir):
        for fn in files:
            if fn.startswith(".tmp-"):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, fn))
            except OSError:
                continue
            out[(st.st_dev, st.st_ino)] = os.path.basename(dirpath) + fn
    return out


def adopt_entries(a, now: str) -> list:
    """The entries that state what the index ``a.db`` holds."""
    db = a.db
    devices = [dict(r) for r in db.execute("SELECT * FROM devices ORDER BY id")]
    out = [{"type": "adopt", "at": now, "devices": len(devices)}]
    names = _inode_names(a.objects)
    for d in devices:
        did = d["id"]
        out.append({"type": "register", "at": d["registered_at"], "device": did,
                    "key": bytes(d["pubkey"])})
        batch, key = [], None
        for r in db.execute("SELECT seq, type, hash, stored_at, offload FROM records WHERE "
                            "device = ? ORDER BY seq", (did,)):
            k = (r["stored_at"], r["offload"])
            if batch and (k != key or len(batch) >= BATCH):
                out.append({"type": "records", "at": key[0], "device": did,
                            "offload": key[1], "records": batch})
                batch = []
            key = k
            batch.append([r["seq"], bytes(r["hash"]), r["type"]])
        if batch:
            out.append({"type": "records", "at": key[0], "device": did, "offload": key[1],
                        "records": batch})
        view = a.view_dir(did)
        for dirpath, dirs, files in os.walk(view):
            dirs.sort()
            for fn in sorted(files):
                p = os.path.join(dirpath, fn)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                name = names.get((st.st_dev, st.st_ino))
                if name is None or fn.endswith(".tmp-link"):
                    continue
                out.append({"type": "object", "at": now, "device": did,
                            "path": os.path.relpath(p, view).replace(os.sep, "/"),
                            "sha256": bytes.fromhex(name)})
        if d["last_head_seq"] is not None:
            out.append({"type": "head", "at": now, "device": did, "seq": d["last_head_seq"],
                        "hash": bytes(d["last_head_hash"])})
        for r in db.execute("SELECT * FROM receipts WHERE device = ? ORDER BY number", (did,)):
            out.append({"type": "receipt", "at": r["sent_at"], "device": did,
                        "number": r["number"], "covered": r["covered"],
                        "covered_hash": bytes(r["covered_hash"]),
                        "receipt": bytes(r["receipt"])})
            if r["status"] != "sent" or r["record_seq"] is not None or r["message"]:
                out.append({"type": "receipt_status", "at": now, "device": did,
                            "number": r["number"], "status": r["status"],
                            "record_seq": r["record_seq"], "message": r["message"]})
    for r in db.execute("SELECT * FROM offloads WHERE finished IS NOT NULL ORDER BY id"):
        e = {"type": "offload", "at": r["finished"], "id": r["id"]}
        e.update((k, r[k]) for k in a.OFFLOAD_LOGGED)
        out.append(e)
    for r in db.execute("SELECT * FROM quarantine ORDER BY created"):
        out.append({"type": "quarantine", "at": r["created"], "id": r["id"],
                    "device": r["device"], "reason": r["reason"], "records": r["records"],
                    "sha256": bytes(r["sha256"])})
    return out
