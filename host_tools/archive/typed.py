"""Values of the wrong SQLite type in archive.sqlite (SPEC §9). The tables of an archive
made before SQLite 3.37 are not STRICT, so an editor can store a BLOB device id, a text
public key or an integer record: the readers (`verify`, `report`) name every such row
(NOT_OK) and then read the tables through TEMP views of the same names that leave those
rows out, so nothing downstream ever sees a value of the wrong type.

    problems = shadow(db)       # ["devices row 'SC-…': pubkey holds integer, not blob", …]
"""
from __future__ import annotations

import sqlite3

__all__ = ["COLUMNS", "shadow", "MAX_NAMED"]

MAX_NAMED = 40

_T, _I, _B = ("text",), ("integer",), ("blob",)
_TN, _IN, _BN = ("text", "null"), ("integer", "null"), ("blob", "null")

# table -> (key columns that name a row, {column: allowed typeof() values})
COLUMNS = {
    "meta": (("key",), {"key": _T, "value": _T}),
    "devices": (("id",), {"id": _T, "pubkey": _B, "fingerprint": _T, "registered_at": _T,
                          "last_head_seq": _IN, "last_head_hash": _BN, "last_head": _BN}),
    "records": (("device", "seq"), {
        "device": _T, "seq": _I, "type": _I, "hash": _B, "size": _I, "rtc": _IN,
        "segment": _IN, "stored_at": _T, "data": _B, "log": _TN, "offset": _IN,
        "offload": _IN}),
    "segments": (("device", "segment"), {
        "device": _T, "segment": _I, "media": _T, "chunk": _I, "length": _I, "chunks": _I,
        "root": _B, "closed_by": _IN, "staged_length": _I, "staged_chunks": _I,
        "staged_root": _B, "state": _T, "object": _TN, "idx_object": _TN, "error": _TN,
        "updated_at": _TN}),
    "receipts": (("device", "number"), {
        "device": _T, "number": _I, "covered": _I, "covered_hash": _B, "sent_at": _T,
        "record_seq": _IN, "status": _T, "receipt": _B, "receipt_hash": _B,
        "message": _TN}),
    "offloads": (("id",), {
        "id": _I, "device": _TN, "port": _TN, "started": _T, "finished": _TN,
        "records": _I, "bytes": _I, "status": _T, "verdict": _TN, "error": _TN,
        "head_went_back": _I, "head_seq": _IN, "receipt_number": _IN}),
    "quarantine": (("id",), {
        "id": _T, "device": _T, "reason": _T, "created": _T, "records": _I, "sha256": _B,
        "info": _TN}),
}


def _cond(cols):
    return " AND ".join("typeof(%s) IN (%s)" % (c, ", ".join("'%s'" % t for t in ts))
                        for c, ts in cols.items())


def shadow(db) -> list:
    """Name every row of archive.sqlite holding a value of the wrong type, and make the
    unqualified table names of ``db`` read TEMP views without those rows. Returns the
    names (at most MAX_NAMED, then a count). Tables or columns that do not exist are left
    alone (an older or damaged index is judged elsewhere)."""
    out, total = [], 0
    for table, (keys, cols) in COLUMNS.items():
        try:
            have = {r[1] for r in db.execute("PRAGMA main.table_info(%s)" % table)}
        except sqlite3.DatabaseError:
            continue
        if not have or not set(cols) <= have:
            continue
        ok = _cond(cols)
        try:
            bad = db.execute("SELECT %s, %s FROM main.%s WHERE NOT (%s) LIMIT %d" % (
                ", ".join("%s AS k_%s" % (k, k) for k in keys),
                ", ".join("typeof(%s) AS t_%s" % (c, c) for c in cols), table, ok,
                MAX_NAMED + 1)).fetchall()
            n = db.execute("SELECT COUNT(*) FROM main.%s WHERE NOT (%s)"
                           % (table, ok)).fetchone()[0]
            total += n
            if n:
                db.execute("CREATE TEMP VIEW IF NOT EXISTS %s AS SELECT * FROM main.%s "
                           "WHERE %s" % (table, table, ok))
        except sqlite3.DatabaseError:
            continue
        for r in bad:
            if len(out) >= MAX_NAMED:
                break
            name = " ".join(repr(_plain(r[i])) for i in range(len(keys)))
            wrong = ["%s holds %s, not %s" % (c, r[len(keys) + j], " or ".join(cols[c]))
                     for j, c in enumerate(cols) if r[len(keys) + j] not in cols[c]]
            out.append("archive.sqlite: %s row %s: %s (the row was edited; it is left out)"
                       % (table, name, "; ".join(wrong)))
    if total > len(out):
        out.append("archive.sqlite: … and %d more rows of the wrong type" % (total - len(out)))
    return out


def _plain(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v)[:40]
    elif isinstance(v, str):
        v = v[:64]
    return v
