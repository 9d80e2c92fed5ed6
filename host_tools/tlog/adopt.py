"""Adopting an archive made before the station log, or whose log was lost (SPEC §11.5):
only `sealcam station adopt`, run by a person, writes what the index says as log entries,
after an `adopt` entry (entry 0) that marks where the log's word begins. No station verb
does it on its own. What happened before that is only the index's word (`verify` says at
best OK_WITH_MISSING_INFO); from then on it is signed."""
from __future__ import annotations

import os

from . import events
from .objects import list_objects

__all__ = ["adopt_entries"]

BATCH = 1000


def _inode_names(objects_dir):
    """{(st_dev, st_ino): object name} of every object."""
    out = {}
    for p, name in list_objects(objects_dir):
        try:
            st = os.lstat(p)
        except OSError:
            continue
        out[(st.st_dev, st.st_ino)] = name
    return out


def adopt_entries(a, now: str) -> list:
    """The entries that state what the index ``a.db`` holds."""
    db = a.db
    devices = [dict(r) for r in db.execute("SELECT * FROM devices ORDER BY id")]
    out = [events.adopt(now, len(devices))]
    names = _inode_names(a.objects)
    for d in devices:
        did = d["id"]
        out.append(events.register(d["registered_at"], did, d["pubkey"]))
        batch, key = [], None
        for r in db.execute("SELECT seq, type, hash, stored_at, offload FROM records WHERE "
                            "device = ? ORDER BY seq", (did,)):
            k = (r["stored_at"], r["offload"])
            if batch and (k != key or len(batch) >= BATCH):
                out.append(events.records(key[0], did, key[1], batch))
                batch = []
            key = k
            batch.append([r["seq"], bytes(r["hash"]), r["type"]])
        if batch:
            out.append(events.records(key[0], did, key[1], batch))
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
                out.append(events.object_(now, did,
                                          os.path.relpath(p, view).replace(os.sep, "/"),
                                          bytes.fromhex(name)))
        if d["last_head_seq"] is not None:
            out.append(events.head(now, did, d["last_head_seq"], d["last_head_hash"]))
        for r in db.execute("SELECT * FROM receipts WHERE device = ? ORDER BY number", (did,)):
            out.append(events.receipt(r["sent_at"], did, r["number"], r["covered"],
                                      r["covered_hash"], r["receipt"]))
            if r["status"] != "sent" or r["record_seq"] is not None or r["message"]:
                out.append(events.receipt_status(now, did, r["number"], r["status"],
                                                 r["record_seq"], r["message"]))
    for r in db.execute("SELECT * FROM offloads WHERE finished IS NOT NULL ORDER BY id"):
        out.append(events.offload(r["finished"], r["id"], r))
    for r in db.execute("SELECT * FROM quarantine ORDER BY created"):
        out.append(events.quarantine(r["created"], r["id"], r["device"], r["reason"],
                                     r["records"], r["sha256"]))
    return out
