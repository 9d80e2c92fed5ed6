"""The docking station's identity and archive set-up (SPEC §9).

    init(DIR)                      station.key (32-byte seed, 0600), station.pub (hex), archive
    register(DIR, device_id, key)  a device and its public key (what `offload` pins)
    load_station_key(DIR)          the Ed25519PrivateKey
    checkpoint(DIR)                the station log's latest signed checkpoint (SPEC §11)
    adopt(DIR)                     start the log of an archive made before it (a person's act)
    reindex(DIR)                   archive.sqlite rebuilt from the log and the signed records
    devices(DIR)                   every recorder: key, status, firmware, last offload and head,
                                   battery, from the signed log and records (SPEC §9.1)
    revoke(DIR, id, reason, by)    a lost or stolen recorder: its offloads go to quarantine
    rekey(DIR, id, key, by)        a new device key after a repair; the old key is retired
"""
from __future__ import annotations

import os
import stat
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import keys
from .archive import Archive, ArchiveError
from .archive.durable import fsync_dir

__all__ = ["init", "register", "load_station_key", "station_pub", "StationError",
           "checkpoint", "adopt", "reindex", "devices", "revoke", "rekey"]

KEY_FILE, PUB_FILE = "station.key", "station.pub"


class StationError(Exception):
    pass


def _raw_pub(sk: Ed25519PrivateKey) -> bytes:
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)


def init(root) -> dict:
    """Make the station key pair and an empty archive in ``root``. Refuses to overwrite an
    existing key. Returns {archive, key, pub, fingerprint, archive_id}."""
    root = os.path.abspath(os.fspath(root))
    kp, pp = os.path.join(root, KEY_FILE), os.path.join(root, PUB_FILE)
    for p in (kp, pp):
        if os.path.lexists(p):
            raise StationError("%s already exists: refusing to overwrite a station key (a new "
                               "key would not be trusted by the recorders)" % p)
    if os.path.exists(root) and not os.path.isdir(root):
        raise StationError("%s is not a directory" % root)
    os.makedirs(root, exist_ok=True)
    sk = Ed25519PrivateKey.generate()
    seed = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    pub = _raw_pub(sk)
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)       # whatever the umask
        os.write(fd, seed)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(pp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (pub.hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    with Archive.create(root) as a:
        aid = a.archive_id
        a.log().sign()              # the log starts signed: a checkpoint over no entries
    fsync_dir(root)
    return {"archive": root, "key": kp, "pub": pp, "fingerprint": keys.fingerprint(pub),
            "archive_id": aid}


def load_station_key(root) -> Ed25519PrivateKey:
    """The station's private key from ROOT/station.key (32 raw bytes). Refuses a key file
    that others can read."""
    from .safeio import open_regular
    kp = os.path.join(os.fspath(root), KEY_FILE)
    try:
        f, _ = open_regular(os.fspath(root), KEY_FILE)     # no symlink, no FIFO
        with f:
            st = os.fstat(f.fileno())
            seed = f.read(64)
    except FileNotFoundError:
        raise StationError("no station key %s (make one with `sealcam station init "
                           "--archive %s`)" % (kp, root)) from None
    except OSError as e:
        raise StationError("cannot read the station key %s: %s" % (kp, e.strerror or e)) \
            from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StationError("the station key %s is accessible by other users (mode %o); "
                           "chmod 600 it" % (kp, stat.S_IMODE(st.st_mode)))
    if len(seed) != 32:
        raise StationError("the station key %s is not a 32-byte Ed25519 seed (%d bytes)"
                           % (kp, len(seed)))
    return Ed25519PrivateKey.from_private_bytes(seed)


def station_pub(root) -> bytes:
    return _raw_pub(load_station_key(root))


def _key_arg(key) -> bytes:
    if isinstance(key, (bytes, bytearray)):
        pub = keys.parse_public_key(bytes(key))
    else:
        key = os.fspath(key)
        if os.path.exists(key):
            pub = keys.load_public_key(key)
        else:
            try:
                pub = keys.parse_public_key(key.encode())
            except keys.KeyFileError:
                raise StationError("the key %r is neither a key file nor 64 hex digits"
                                   % key) from None
    return pub


def register(root, device_id, key) -> tuple:
    """Register ``device_id`` with ``key``: a key file (raw, hex or PEM/DER), 64 hex
    digits, or 32 raw bytes. Returns (device row, created)."""
    pub = _key_arg(key)
    with Archive(root) as a:
        try:
            return a.register(device_id, pub)
        except ArchiveError as e:
            raise StationError(str(e)) from None


# -- the device lifecycle (SPEC §9.1) ---------------------------------------------------------

def printable_name(text) -> bool:
    """A person's name or a reason as typed: no control character (C0, DEL, C1) and no
    bidi control (U+202A-U+202E, U+2066-U+2069), which could drive a terminal or turn a
    line of output around (records.printable's rule)."""
    from .records import printable
    return printable(text, backslash=False) == text


def _name(text, what):
    t = str(text or "").strip()
    if not t or len(t) > 200 or not printable_name(t):
        raise StationError("%s must be given: 1 to 200 printable characters (no control or "
                           "text-direction characters)" % what)
    return t


def revoke(root, device_id, reason, by) -> dict:
    """Revoke a lost or stolen recorder (a signed device_revoked event): from then on its
    offloads authenticate it, keep what it sends in quarantine and never receipt it."""
    reason, by = _name(reason, "--reason"), _name(by, "--by")
    with Archive(root) as a:
        try:
            return a.revoke(device_id, reason, by)
        except ArchiveError as e:
            raise StationError(str(e)) from None


def rekey(root, device_id, key, by, say=None) -> dict:
    """A new device key after a repair (a signed device_rekeyed event): the old key is
    retired at the last head the archive holds; its history stays in the archive as
    ``ID.keyN``, verified with the old key; the recorder goes on with the new key.
    ``say`` (default: stderr) gets the warning of stranded_text."""
    from .archive import DeviceLocked
    by = _name(by, "--by")
    pub = _key_arg(key)
    with Archive(root) as a:
        try:
            e = a.rekey(device_id, pub, by)
        except (ArchiveError, DeviceLocked, ValueError) as e:
            raise StationError(str(e)) from None
        row = a.device(e["retired_as"]) or {}
        last = a.db.execute("SELECT MAX(stored_at) FROM records WHERE device = ?",
                            (e["retired_as"],)).fetchone()[0]
    (say or (lambda m: print(m, file=sys.stderr)))(stranded_text(e, last, row))
    return e


def stranded_text(e, stored_at, row) -> str:
    """The warning of a re-keying (SPEC §9.1): what the old key signed after the last
    offload never joins a history. The station cannot know how much that is: it says
    where the retired history ends and what happens to the rest."""
    seq = e.get("retired_seq")
    return ("WARNING: the old key of %s is retired at %s%s. Records the recorder signed "
            "with it after that were never offloaded and can no longer join its history: "
            "if the old board or its card still works, offload it now; an offload with the "
            "old key keeps them in quarantine for a supervisor (exit 5, nothing receipted)"
            % (e.get("device"), "seq %d" % seq if seq is not None else
               "no offloaded record (nothing of that key is in the archive)",
               " (stored %s)" % stored_at if stored_at else ""))


def devices(root) -> dict:
    """Every recorder of the archive, from its signed station log (replayed up to the signed
    checkpoint) and its signed records: {"devices": [...], "problems": [...]}. Each: id,
    fingerprint, status (active / revoked / retired), keys (the retired ones and where
    their history is), firmware (last firmware_seen, or "unknown"), last_offload,
    last_head {seq, at}, battery (the last SELF_CHECK's battery fact, or "unknown"),
    provisioned {technician, at} and its lifecycle events."""
    import hashlib

    from . import records as R
    from .archive import record_body
    from .archive_verify import check_log, station_pub_checked
    from .tlog.replay import replay
    with Archive(root, readonly=True) as a:
        pub, why = station_pub_checked(a.root)
        problems = [why] if why else []
        trusted, reasons, _ = check_log(a, pub)
        problems += reasons
        st = replay(a.log(), trusted)
        problems += st.problems
        out = []
        for d in sorted(st.devices):
            if d in st.retired:
                continue
            dv = st.devices[d]
            evs = st.lifecycle.get(d, [])
            fw = [e for e in evs if e.get("type") == "firmware_seen"]
            prov = [e for e in evs if e.get("type") == "device_provisioned"]
            rev = [e for e in evs if e.get("type") == "device_revoked"]
            offs = [o for o in st.offloads.values() if o.get("device") == d
                    and o.get("finished")]
            offs.sort(key=lambda o: o.get("finished") or "")
            parts = [p for p, r in st.retired.items() if r == d]
            battery = "unknown"
            recs = st.records.get(d, {})
            for seq in sorted((s_ for s_, v in recs.items() if v[1] == R.SELF_CHECK),
                              reverse=True)[:1]:
                row = a.record(d, seq)
                if row is None or hashlib.sha256(bytes(row["data"])).digest() != recs[seq][0]:
                    continue
                facts = (record_body(bytes(row["data"])) or {}).get(R.K.FACTS)
                pct = facts.get(1) if isinstance(facts, dict) else None
                if type(pct) is int and 0 <= pct <= 100:
                    battery = {"percent": pct, "self_check_seq": seq, "stored_at": recs[seq][2]}
            out.append({
                "id": d, "fingerprint": keys.fingerprint(dv["key"]),
                "status": st.status(d),
                "revoked": ({k: rev[-1].get(k) for k in ("at", "by", "reason")}
                            if rev and st.status(d) == "revoked" else None),
                "provisioned": ({"technician": prov[-1].get("technician"),
                                 "at": prov[-1].get("at")} if prov else None),
                "registered_at": dv["registered_at"],
                "retired_keys": [{"fingerprint": keys.fingerprint(st.devices[p]["key"]),
                                  "history": p,
                                  "retired_at_seq": st.devices[p]["head_seq"],
                                  "by": next((e.get("by") for e in evs
                                              if e.get("retired_as") == p), None),
                                  "at": next((e.get("at") for e in evs
                                              if e.get("retired_as") == p), None)}
                                 for p in sorted(parts)],
                "firmware": fw[-1]["fw"].hex() if fw else "unknown",
                "last_offload": ({k: offs[-1].get(k) for k in ("finished", "status",
                                                                 "verdict")}
                                 if offs else None),
                "last_head": ({"seq": dv["head_seq"], "at": dv["head_at"]}
                              if dv["head_seq"] is not None else None),
                "battery": battery,
                "events": [{k: (v.hex() if isinstance(v, bytes) else v)
                            for k, v in e.items()} for e in evs]})
        return {"archive": a.root, "devices": out, "problems": problems}


# -- the station log: checkpoint export and reindex (SPEC §11) -------------------------------

def checkpoint(root) -> bytes:
    """The latest signed checkpoint of the archive's log (a C2SP signed note). A write of
    the station cut before its checkpoint was installed is settled first (its pending
    checkpoint, SPEC §11.2); an entry the station did not write is never signed."""
    from .tlog.log import LogError
    with Archive(root) as a:
        lg = a.log()
        if lg.signer is None:
            raise StationError("no station key in %s: the log cannot be signed" % root)
        try:
            return lg.sign()
        except LogError as e:
            raise StationError("%s" % e) from None


def adopt(root) -> int:
    """Start the station log of an archive that has none (SPEC §11.5): what the index holds
    is stated in the log after an `adopt` entry, signed from now on. A person runs this
    (`sealcam station adopt`) after reviewing the archive; it is never done on its own.
    Returns the number of entries written."""
    with Archive(root, _adopting=True) as a:
        try:
            return a.adopt()
        except ArchiveError as e:
            raise StationError(str(e)) from None


def reindex(root) -> dict:
    """Rebuild archive.sqlite from the station log and the signed records (the view's log
    files, and the old database's rows where their hash is the one the log recorded). The
    old database is moved aside (archive.sqlite.before-reindex-<time>), never deleted.
    Returns {"moved_to", "devices", "records", "missing": [...], "entries"}."""
    import hashlib
    import io
    import json
    import sqlite3

    import cbor2

    from .archive import SCHEMA, SCHEMA_VERSION, connect_ro, record_body, record_columns, utcnow
    from .tlog.events import OFFLOAD_FIELDS
    from .tlog.log import Log, LogError
    from .tlog.replay import replay

    root = os.path.abspath(os.fspath(root))
    db_path = os.path.join(root, "archive.sqlite")
    pub = station_pub(root)
    # the archive id: the old database's, checked against the log's signed origin
    old_meta, old_rows = {}, {}
    try:
        odb = connect_ro(db_path)
        old_meta = dict(odb.execute("SELECT key, value FROM meta").fetchall())
        for r in odb.execute("SELECT device, seq, hash, data FROM records"):
            old_rows[bytes(r["hash"])] = bytes(r["data"])
        odb.close()
    except Exception:
        pass
    cp_path = os.path.join(root, "log", "checkpoint")
    try:
        with open(cp_path, "rb") as f:
            origin = f.read(4096).split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        raise StationError("no readable station log checkpoint %s: nothing to rebuild the "
                           "index from" % cp_path) from None
    if not origin.startswith("sealcam-station/"):
        raise StationError("%s: not a sealcam station log (origin %r)" % (cp_path, origin))
    archive_id = origin.split("/", 1)[1]
    lg = Log(root, origin, readonly=True)
    try:
        cp = lg.read_checkpoint(pub)
    except LogError as e:
        raise StationError("the station log cannot be trusted (%s): not reindexing" % e) \
            from None
    if cp is None or cp[0] > lg.size or lg.root(cp[0]) != cp[1]:
        raise StationError("the station log does not match its signed checkpoint: not "
                           "reindexing (run `sealcam verify %s`)" % root)
    st = replay(lg, cp[0])
    # the signed records' bytes: from the view's log files, then the old rows
    have = {}
    placed = {}
    for d, objs in st.objects.items():
        for rel, sha in objs.items():
            if not (rel.startswith("rec/") and rel.endswith(".log")):
                continue
            p = os.path.join(root, "objects", sha.hex()[:2], sha.hex()[2:])
            try:        # log files are put in clear; read through atrest all the same
                from .archive import atrest
                with atrest.open_object_file(open(p, "rb"), sha.hex(), None, p) as f:
                    blob = f.read()
            except OSError:
                continue
            if hashlib.sha256(blob).digest() != sha:
                continue
            bio = io.BytesIO(blob)
            while bio.tell() < len(blob):
                start = bio.tell()
                try:
                    cbor2.load(bio)
                except Exception:
                    break
                data = blob[start:bio.tell()]
                h = hashlib.sha256(data).digest()
                have[h] = data
                placed[(d, h)] = (rel, start)
    for h, data in old_rows.items():
        if hashlib.sha256(data).digest() == h:
            have.setdefault(h, data)
    # the new database beside the old one, then swapped in
    stamp = utcnow().replace(":", "").replace("-", "")[:15]
    new_path = db_path + ".reindex-%d" % os.getpid()
    for p in (new_path, new_path + "-wal", new_path + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    db = sqlite3.connect(new_path, isolation_level=None)
    db.executescript(SCHEMA)
    missing = []
    nrec = 0
    db.execute("BEGIN")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("archive_id", archive_id), ("schema", str(SCHEMA_VERSION)),
        ("created", old_meta.get("created") or utcnow()), ("reindexed", utcnow()),
        ("log", "signed")])
    for d, dv in sorted(st.devices.items()):
        head = None
        if dv["head_seq"] is not None:
            head = have.get(dv["head_hash"])
        db.execute("INSERT INTO devices (id, pubkey, fingerprint, registered_at, "
                   "last_head_seq, last_head_hash, last_head) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (d, dv["key"], keys.fingerprint(dv["key"]), dv["registered_at"],
                    dv["head_seq"], dv["head_hash"], head))
        for seq in sorted(st.records.get(d, {})):
            h, rtype, at, oid = st.records[d][seq]
            data = have.get(h)
            if data is None:
                missing.append("%s seq %d" % (d, seq))
                continue
            rtc, seg = record_columns(seq, rtype, record_body(data) or {})
            log_rel, off = placed.get((d, h), (None, None))
            db.execute("INSERT INTO records (device, seq, type, hash, size, rtc, segment, "
                       "stored_at, data, log, offset, offload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?, ?, ?)", (d, seq, rtype, h, len(data), rtc, seg, at, data,
                                       log_rel, off, oid))
            nrec += 1
        for n, r in sorted(st.receipts.get(d, {}).items()):
            db.execute("INSERT INTO receipts (device, number, covered, covered_hash, sent_at, "
                       "record_seq, status, receipt, receipt_hash, message) VALUES (?, ?, ?, "
                       "?, ?, ?, ?, ?, ?, ?)", (d, n, r["covered"], r["covered_hash"],
                                                r["sent_at"], r["record_seq"], r["status"],
                                                r["receipt"],
                                                hashlib.sha256(r["receipt"]).digest(),
                                                r["message"]))
    from .archive.devices import LIFECYCLE_SCHEMA
    db.execute(LIFECYCLE_SCHEMA)
    for d, evs in sorted(st.lifecycle.items()):
        for n, e in enumerate(evs):
            db.execute("INSERT INTO device_events (device, n, type, at, entry) VALUES "
                       "(?, ?, ?, ?, ?)", (d, n, e["type"], e["at"],
                                           cbor2.dumps(e, canonical=True)))
    cols = OFFLOAD_FIELDS
    for oid, o in sorted(st.offloads.items()):
        db.execute("INSERT INTO offloads (id, %s) VALUES (?, %s)" % (
            ", ".join(cols), ", ".join("?" * len(cols))), [oid] + [o.get(c) for c in cols])
    for qid, q in sorted(st.quarantines.items()):
        info = "{}"
        try:
            with open(os.path.join(root, "quarantine", qid, "info.json")) as f:
                info = json.dumps(json.load(f).get("info", {}))
        except (OSError, ValueError, AttributeError):
            pass
        db.execute("INSERT INTO quarantine (id, device, reason, created, records, sha256, "
                   "info) VALUES (?, ?, ?, ?, ?, ?, ?)", (qid, q.get("device"),
                                                          q.get("reason"), q.get("at"),
                                                          q.get("records"), q.get("sha256"),
                                                          info))
    db.execute("COMMIT")
    db.close()
    moved = db_path + ".before-reindex-" + stamp
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.replace(db_path + suffix, moved + suffix)
    os.replace(new_path, db_path)
    # segments: derived from the records as an offload tracks them, and the view's media
    with Archive(root) as a:
        with a.tx():
            for d in st.devices:
                for r in a.db.execute("SELECT seq, type, data, stored_at FROM records WHERE "
                                      "device = ? ORDER BY seq", (d,)).fetchall():
                    a.track_segment(d, r["seq"], r["type"], record_body(r["data"]) or {},
                                     r["stored_at"])
                for s in a.db.execute("SELECT * FROM segments WHERE device = ?",
                                      (d,)).fetchall():
                    media = st.objects.get(d, {}).get(s["media"])
                    idx = st.objects.get(d, {}).get(os.path.splitext(s["media"])[0] + ".idx")
                    gone = st.disposed.get(d, {}).get(s["segment"])
                    if gone is not None:    # disposed with approval (SPEC §9.2): complete,
                        named = dict(gone["objects"][::-1])     # never transferred again
                        media = named.get(s["media"])
                        idx = named.get(os.path.splitext(s["media"])[0] + ".idx")
                        a.db.execute(
                            "UPDATE segments SET object = ?, idx_object = ?, state = "
                            "'complete', staged_length = length, staged_chunks = chunks, "
                            "staged_root = root WHERE device = ? AND segment = ?",
                            (media.hex() if media else None, idx.hex() if idx else None, d,
                             s["segment"]))
                        continue
                    if media is None:
                        continue
                    size = a.object_size(media.hex())      # of the content (SPEC §14.8)
                    done = s["closed_by"] is not None and size == s["length"]
                    a.db.execute(
                        "UPDATE segments SET object = ?, idx_object = ?, state = ?, "
                        "staged_length = ?, staged_chunks = ?, staged_root = ? WHERE device = ? "
                        "AND segment = ?",
                        (media.hex(), idx.hex() if idx else None,
                         "complete" if done else "partial", s["length"] if done else 0,
                         s["chunks"] if done else 0, s["root"] if done else bytes(32), d,
                         s["segment"]))
    return {"moved_to": moved, "devices": len(st.devices), "records": nrec,
            "missing": missing, "entries": cp[0]}
