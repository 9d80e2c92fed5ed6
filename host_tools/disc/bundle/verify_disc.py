#!/usr/bin/env python3
"""Offline verifier of a sealcam disc (SPEC §14.11). Needs only Python 3 (standard library)
and the verifier/ folder beside it; run it at the disc's root (mounted or copied):

    python3 verify_disc.py [DISC_DIR] [--station-key HEX|FINGERPRINT] [--json]

It checks: MANIFEST.cbor is signed by the station key (MANIFEST.sig, a C2SP signed note);
every file of the disc is listed with its size and SHA-256 and matches, and nothing else is
there (no link, no unlisted file); the station log's checkpoint (station/checkpoint) is
signed by that key; every log entry the disc carries is included in it (RFC 9162 proofs);
each device key is the one its registration entry gave; each recording's records are
signed by its device key, chained (prev = SHA-256 of the record before) and held by an
included `records` entry; its media hashes, chunk by chunk, to the root its signed
SEGMENT / RECOVERY / CHECKPOINT record carries; each document is the one a `document_added`
entry names. Verdict per recording: OK, OK_WITH_MISSING_INFO or NOT_OK; exit 0 when none
is NOT_OK and the disc's own checks pass, 1 otherwise, 3 when DISC_DIR is not a disc.

Compare the station key fingerprint it prints with the one on the label and the one the
station publishes (or pin it: --station-key with the key's 64 hex digits or its
fingerprint).
"""
import base64
import hashlib
import json
import os
import sys

if __name__ == "__main__":
    sys.dont_write_bytecode = True      # a copied disc stays as it was: no __pycache__
_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isdir(os.path.join(_HERE, "verifier", "sealcamfw")):     # on the disc
    sys.path.insert(0, os.path.join(_HERE, "verifier"))
from sealcamfw import cbor  # noqa: E402
from sealcam_disc_checks import (Bad, MAX_FILES, _open, _parts, _read, _walk,  # noqa: E402
                                 count_items, decode_record, fingerprint, inclusion_ok,
                                 open_note)

FORMAT = "sealcam-disc-1"
OK, MISSING, NOT_OK = "OK", "OK_WITH_MISSING_INFO", "NOT_OK"
WORDS = {OK: "OK (通过)", MISSING: "OK with missing info (通过，信息不全)",
         NOT_OK: "NOT OK (不通过)"}
MANIFEST, SIGNATURE = "MANIFEST.cbor", "MANIFEST.sig"
# What a real disc needs (250 recordings, 500 documents: a manifest well under 1 MiB), with
# room; a hostile file is refused before it is decoded, and decoding is held to one CBOR
# item per BYTES_PER_ITEM bytes of the cap (a Python object is up to 64 bytes per item).
MAX_MANIFEST = 4 << 20          # bytes
MAX_ENTRIES_FILE = 16 << 20     # log/entries.cbor
MAX_RECORDS_FILE = 4 << 20      # each records.cbor
BYTES_PER_ITEM = 8
MAX_ENTRIES = 100000            # log entries carried
MAX_RECORDS = 100000            # records of one recording
MAX_CHUNK = 16 << 20
MAX_CHUNKS = 1 << 24
BLOCK = 1 << 20
# record types and body keys (SPEC §3)
REC_START, CHECKPOINT, SEGMENT, RECOVERY = 2, 3, 4, 7
K_TYPE, K_SEQ, K_PREV, K_DEVICE, K_SEGMENT, K_MEDIA, K_CHUNK = 0, 1, 2, 3, 10, 11, 12
K_LENGTH, K_CHUNKS, K_ROOT, K_FLAGS, K_SIGNED = 13, 14, 15, 9, 22
ZERO = bytes(32)


class NotADisc(Exception):
    pass


# -- the disc ----------------------------------------------------------------------------

class Result:
    def __init__(self, root):
        self.root = root
        self.problems = []          # the disc's own checks that failed
        self.notes = []
        self.recordings = []        # dicts: device, segment, verdict, reasons, notes
        self.station = None
        self.pinned = False         # the station key was pinned (--station-key)
        self.info = {}

    @property
    def verdict(self):
        vs = [r["verdict"] for r in self.recordings]
        if self.problems or NOT_OK in vs:
            return NOT_OK
        return MISSING if MISSING in vs or not vs else OK

    def to_json(self):
        return {"format": "sealcam-verify-disc-1", "disc": self.root, "verdict": self.verdict,
                "station_key": self.station, "station_key_pinned": self.pinned,
                "problems": self.problems, "notes": self.notes,
                "recordings": self.recordings, **self.info}

    def to_text(self):
        out = ["disc:        %s" % self.root]
        for k in ("ref", "origin"):
            if k in self.info:
                out.append("%-12s %s" % (k + ":", self.info[k]))
        if self.station and self.pinned:
            out.append("station key: %s (pinned / 已核对)" % self.station)
        elif self.station:
            out.append("station key: %s (compare with the label / 与标签核对)" % self.station)
        if "files" in self.info:
            out.append("files:       %d listed in the signed manifest, each hashed"
                       % self.info["files"])
        if "log_entries" in self.info:
            out.append("station log: checkpoint of %d entries signed by the station key; %d "
                       "entries carried, each proven included" % (self.info["log_size"],
                                                                 self.info["log_entries"]))
        for p in self.problems:
            out.append("NOT OK: %s" % p)
        for n in self.notes:
            out.append("note: %s" % n)
        for r in self.recordings:
            out.append("recording %s/%d: %s" % (r["device"], r["segment"], WORDS[r["verdict"]]))
            out += ["    %s" % x for x in r.get("checked", []) + r["reasons"] + r["notes"]]
        if self.verdict != NOT_OK and not self.pinned:
            out.append("verdict:     %s, if the station key %s is the station's: it was not "
                       "pinned, compare it with the label (站点密钥未核对，请与标签核对)"
                       % (WORDS[self.verdict], self.station or "?"))
        else:
            out.append("verdict:     %s" % WORDS[self.verdict])
        return "\n".join(_printable(x) for x in out) + "\n"


def _printable(s):
    """``s`` with control, bidi and line/paragraph separator characters and lone surrogates
    (a name that is not UTF-8) written as escapes: one line, shown as it is."""
    return "".join(c if _plain(ord(c)) else "\\x%02x" % ord(c) if ord(c) < 0x100
                   else "\\u%04x" % ord(c) for c in s)


def _plain(o):
    return o >= 0x20 and not (0x7f <= o <= 0x9f or 0xd800 <= o <= 0xdfff or
                              0x202a <= o <= 0x202e or 0x2066 <= o <= 0x2069 or
                              o in (0x2028, 0x2029, 0x200e, 0x200f, 0x061c, 0xfeff))


def verify(root, station_key=None):
    """The Result of checking the disc at ``root``; NotADisc if it is none. ``station_key``
    pins the station key: its 32 bytes, or its fingerprint (32 hex digits, ':' allowed)."""
    root = os.path.abspath(root)
    res = Result(root)
    if isinstance(station_key, str):
        station_key = _fingerprint_pin(station_key)
    res.pinned = station_key is not None
    try:
        sig = _read(root, SIGNATURE, 1 << 16)
        f, size = _open(root, MANIFEST)
        f.close()
    except Bad as e:
        raise NotADisc("%s is not a sealcam disc: %s" % (root, e)) from None
    try:
        data = _read(root, MANIFEST, MAX_MANIFEST)
    except Bad as e:                    # a disc whose manifest is too large: hostile
        res.problems.append(str(e))
        return res
    try:
        # the signature over the raw bytes first: nothing of a manifest the station key
        # (pinned, else the disc's station/station.pub) did not sign is decoded
        if not _signed_first(res, root, data, sig, station_key):
            return res
        man = _cbor(data, MANIFEST, MAX_MANIFEST)
    except Bad as e:
        if res.problems or res.station:     # a disc whose manifest is hostile
            res.problems.append(str(e))
            return res
        raise NotADisc("%s: %s is not a manifest (%s)" % (root, MANIFEST, e)) from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise NotADisc("%s: %s is not a %s manifest" % (root, MANIFEST, FORMAT))
    try:
        _verify(res, root, man, data, sig, station_key)
    except Bad as e:
        res.problems.append(str(e))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError,
            OverflowError, OSError) as e:      # hostile bytes the checks above missed
        res.problems.append("the disc cannot be checked: %s" % _what(e))
    except MemoryError:
        del man
        res.problems.append("the disc cannot be checked: its files need more memory than "
                            "this computer has (a hostile disc)")
    return res


def _fingerprint_pin(text):
    hx = "".join(c for c in text.strip().lower() if c not in ": -")
    if len(hx) == 64:
        return bytes.fromhex(hx)
    if len(hx) != 32 or any(c not in "0123456789abcdef" for c in hx):
        raise ValueError("a station key is 64 hex digits or its fingerprint 32")
    return ":".join(hx[i:i + 4] for i in range(0, 32, 4))


def _signed_first(res, root, data, sig, pinned):
    """Check MANIFEST.sig over the raw bytes of MANIFEST.cbor before they are decoded.
    False (a problem added) when it is not the station's signature of them; True when it
    is, or when it cannot be told yet (no usable key: the checks after decoding say)."""
    try:
        text = sig.decode("utf-8")
    except UnicodeDecodeError:
        return True
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != FORMAT or not lines[1]:
        return True
    origin = lines[1]
    if lines[2] != hashlib.sha256(data).hexdigest():
        res.problems.append("%s does not sign this manifest (its text is not %s's hash)"
                            % (SIGNATURE, MANIFEST))
        return False
    try:
        spub = bytes.fromhex(_read(root, "station/station.pub", 4096).decode("ascii").strip())
    except (Bad, ValueError):
        spub = None
    if spub is not None and len(spub) != 32:
        spub = None
    key = pinned if isinstance(pinned, bytes) else spub
    if isinstance(pinned, str) and spub is not None and fingerprint(spub) != pinned:
        res.station = fingerprint(spub)
        res.problems.append("the disc's station key %s is not the pinned one %s"
                            % (fingerprint(spub), pinned))
        return False
    if key is None:
        return not isinstance(pinned, str) or _no_key(res)
    try:
        open_note(sig, origin, key)
    except Bad as e:
        if pinned is None:
            res.station = fingerprint(key)
            res.problems.append("%s is not signed by the key in station/station.pub (%s)"
                                % (SIGNATURE, e))
        else:
            res.station = fingerprint(spub) if spub else None
            res.problems.append("the disc's station key %s is not the pinned one %s (%s is "
                                "not signed by it)" % (res.station or "?", fingerprint(key)
                                                       if isinstance(pinned, bytes) else pinned,
                                                       SIGNATURE))
        return False
    res.station = fingerprint(key)
    return True


def _no_key(res):
    res.problems.append("station/station.pub holds no key to compare with the pinned "
                        "fingerprint")
    return False


def _what(e):
    return "%s: %s" % (type(e).__name__, str(e)[:200])


def _cbor(data, what, cap):
    """``data`` decoded, with at most one item per BYTES_PER_ITEM bytes of ``cap``."""
    try:
        count_items(data, max(64, cap // BYTES_PER_ITEM))
        return cbor.loads(data)
    except (ValueError, TypeError, RecursionError) as e:
        raise Bad("%s is not CBOR of this format (%s)" % (what, e)) from None
    except MemoryError:
        raise Bad("%s needs more memory than this computer has to be read (a hostile "
                  "file)" % what) from None


def _field(man, name, typ):
    v = man.get(name)
    if not isinstance(v, typ):
        raise Bad("the manifest's %s is missing or of the wrong type" % name)
    return v


def _verify(res, root, man, data, sig, pinned):
    origin = _field(man, "origin", str)
    pub = _field(man, "station", bytes)
    res.info.update(ref=man.get("ref"), origin=origin)
    if len(pub) != 32:
        raise Bad("the station key in the manifest is not an Ed25519 key")
    res.station = fingerprint(pub)
    if isinstance(pinned, str) and pinned != fingerprint(pub):
        raise Bad("the disc's station key %s is not the pinned one %s"
                  % (fingerprint(pub), pinned))
    if isinstance(pinned, bytes) and pinned != pub:
        raise Bad("the disc's station key %s is not the pinned one %s"
                  % (fingerprint(pub), fingerprint(pinned)))
    # 1. the manifest's signature
    text = open_note(sig, origin, pub)
    want = "%s\n%s\n%s\n" % (FORMAT, origin, hashlib.sha256(data).hexdigest())
    if text != want:
        raise Bad("%s does not sign this manifest (its text is not %s's hash)"
                  % (SIGNATURE, MANIFEST))
    spub = _read(root, "station/station.pub", 4096).decode("ascii", "replace").strip()
    if spub != pub.hex():
        res.problems.append("station/station.pub is not the key the manifest names")
    res.info["files"] = len(_field(man, "files", list))
    # 2. every file
    files = _field(man, "files", list)
    if len(files) > MAX_FILES:
        raise Bad("the manifest lists more than %d files" % MAX_FILES)
    listed, bad_files = {}, set()
    for item in files:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], int) and isinstance(item[2], bytes)):
            raise Bad("a malformed file entry in the manifest")
        _parts(item[0])
        listed[item[0]] = (item[1], item[2])
    for rel, kind in sorted(_walk(root)):
        if kind != "file":
            res.problems.append("%s is %s: a disc holds only regular files" % (rel, kind))
        elif rel not in listed and rel not in (MANIFEST, SIGNATURE):
            res.problems.append("%s is not listed in the manifest (added)" % rel)
    for rel in sorted(listed):
        size, digest = listed[rel]
        why = _hash_file(root, rel, size, digest)
        if why:
            bad_files.add(rel)
            res.problems.append(why)
    # 3. the checkpoint and the log entries
    cp = _read(root, "station/checkpoint", 1 << 16)
    lines = open_note(cp, origin, pub).split("\n")
    try:
        if lines[0] != origin or len(lines) < 4:
            raise ValueError
        size, lroot = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except ValueError:
        raise Bad("station/checkpoint is not a checkpoint of %s" % origin) from None
    if size != man.get("log_size"):
        raise Bad("the checkpoint covers %d entries, the manifest says %s"
                  % (size, man.get("log_size")))
    res.info["log_size"] = size
    if "log/entries.cbor" not in listed or "log/entries.cbor" in bad_files:
        raise Bad("log/entries.cbor is not a file the manifest lists with its hash")
    ents = _cbor(_read(root, "log/entries.cbor", MAX_ENTRIES_FILE), "log/entries.cbor",
                 MAX_ENTRIES_FILE)
    if not isinstance(ents, list) or len(ents) > MAX_ENTRIES:
        raise Bad("log/entries.cbor is not a list of log entries")
    entries = {}
    for it in ents:
        if not (isinstance(it, list) and len(it) == 3 and isinstance(it[1], bytes)
                and isinstance(it[2], list)):
            raise Bad("a malformed entry in log/entries.cbor")
        if not inclusion_ok(it[0], size, hashlib.sha256(b"\x00" + it[1]).digest(), it[2],
                            lroot):
            raise Bad("log entry %s is not in the station log under its signed checkpoint"
                      % it[0])
        try:
            e = cbor.loads(it[1])
        except ValueError:
            continue                    # proven, but not one this verifier reads
        if isinstance(e, dict):
            entries[it[0]] = e
    res.info["log_entries"] = len(entries)
    # 4. device keys: the registration the log holds
    keys = {}
    for i in sorted(entries):
        e = entries[i]
        t, dev = e.get("type"), e.get("device")
        if t in ("register", "device_provisioned") and isinstance(e.get("key"), bytes):
            keys[dev] = e["key"]
        elif t == "device_rekeyed" and isinstance(e.get("new_key"), bytes):
            keys[dev] = e["new_key"]
    # 5. the recordings
    used = set()                    # records files read: each recording its own
    for r in _field(man, "recordings", list):
        res.recordings.append(_recording(root, r, keys, entries, (listed, bad_files, used)))
        _filed(res.recordings[-1], man, entries)
    # 6. the documents
    named = {e.get("sha256") for e in entries.values() if e.get("type") == "document_added"}
    for d in _field(man, "documents", list):
        p, h = d.get("path"), d.get("sha256")
        if p not in listed or listed[p][1].hex() != h:
            res.problems.append("document %s: the manifest does not list it with its hash"
                                % d.get("name"))
        elif h not in named:
            res.problems.append("document %s (%s): no included document_added entry names it"
                                % (d.get("name"), p))
    res.info["documents"] = len(man["documents"])


def _filed(out, man, entries):
    """Say which included clerk event files the recording under the disc's case or
    number (a note when none does: the manifest's word only)."""
    dev, seg, ref = out["device"], out["segment"], man.get("ref")
    found = None
    for i in sorted(entries):
        e = entries[i]
        if e.get("type") == "case_linked" and e.get("case_no") == ref and \
                e.get("device") == dev and e.get("segment") == seg:
            found = "filed in case %s by log entry %d (%s, %s)" % (ref, i, e.get("by"),
                                                                   e.get("at"))
        elif e.get("type") == "number_assigned" and e.get("number") in (man.get("numbers")
                                                                        or ()):
            if any(isinstance(it, dict) and it.get("device") == dev and
                   it.get("segment") == seg for it in e.get("items") or ()):
                found = found or "numbered %s by log entry %d (%s, %s)" % (
                    e.get("number"), i, e.get("by"), e.get("at"))
    if found:
        out.setdefault("checked", []).append(found)
    else:
        out["notes"].append("no included log entry files it under %s" % ref)


def _hash_file(root, rel, size, digest):
    try:
        f, have = _open(root, rel)
    except Bad as e:
        return str(e)
    with f:
        if have != size:
            return "%s is %d bytes, the manifest says %d (changed)" % (rel, have, size)
        h, left = hashlib.sha256(), size
        while left > 0:
            b = f.read(min(BLOCK, left))
            if not b:
                return "%s ends early" % rel
            h.update(b)
            left -= len(b)
    if h.digest() != digest:
        return "%s does not have the SHA-256 the manifest gives (changed)" % rel
    return None


def _recording(root, r, keys, entries, files):
    dev, seg = (r.get("device"), r.get("segment")) if isinstance(r, dict) else (None, None)
    out = {"device": str(dev), "segment": seg if isinstance(seg, int) else -1,
           "verdict": OK, "reasons": [], "notes": []}
    try:
        if not isinstance(dev, str) or not isinstance(seg, int):
            raise Bad("a malformed recording in the manifest")
        key = keys.get(dev)
        if key is None:
            raise Bad("no included registration entry gives device %s's key" % dev)
        out["key"] = fingerprint(key)
        _check_recording(root, r, dev, seg, key, entries, files, out)
    except Bad as e:
        out["verdict"] = NOT_OK
        out["reasons"].append(str(e))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError,
            OverflowError, OSError) as e:
        out["verdict"] = NOT_OK
        out["reasons"].append("cannot be checked: %s" % _what(e))
    except MemoryError:
        out["verdict"] = NOT_OK
        out["reasons"].append("cannot be checked: its files (%s) need more memory than this "
                              "computer has (a hostile disc)" % r.get("records"))
    return out


def _check_recording(root, r, dev, seg, key, entries, files, out):
    listed, bad_files, used = files
    rel = r.get("records")
    if rel not in listed:
        raise Bad("its records (%r) are not a file the manifest lists" % (rel,))
    if rel in used:
        raise Bad("its records (%s) are another recording's" % rel)
    used.add(rel)
    if rel in bad_files:
        raise Bad("%s was changed" % rel)
    raws = _cbor(_read(root, rel, MAX_RECORDS_FILE), rel, MAX_RECORDS_FILE)
    if not isinstance(raws, list) or not raws or len(raws) > MAX_RECORDS:
        raise Bad("%s is not a list of records" % rel)
    recs, prev = [], None
    for raw in raws:
        if not isinstance(raw, bytes):
            raise Bad("%s holds something that is not a record" % rel)
        seq, body, h = decode_record(raw, dev, key)
        if prev is not None and (seq != prev[0] + 1 or body.get(K_PREV) != prev[1]):
            raise Bad("the chain breaks at seq %d (%s)" % (seq, rel))
        prev = (seq, h)
        recs.append((seq, body, h))
    start = recs[0][1]
    if recs[0][0] != seg or start.get(K_TYPE) != REC_START:
        raise Bad("%s does not start with the REC_START seq %d" % (rel, seg))
    # in the station log: each (seq, hash) in an included `records` entry of the device
    logged = set()
    for e in entries.values():
        if e.get("type") == "records" and e.get("device") == dev:
            for it in e.get("records") or ():
                if isinstance(it, list) and len(it) == 3:
                    logged.add((it[0], it[1]))
    lack = [s for s, _, h in recs if (s, h) not in logged]
    if lack:
        raise Bad("records seq %s are not in the station log the disc proves" %
                  ", ".join(map(str, lack[:8])))
    out["records"] = len(recs)
    out["checked"] = ["records seq %d-%d: signed by the device key %s, chained, each in the "
                      "station log" % (recs[0][0], recs[-1][0], fingerprint(key))]
    # the media against the signed root
    roots = [b for _, b, _ in recs if b.get(K_TYPE) in (CHECKPOINT, SEGMENT, RECOVERY)
             and b.get(K_SEGMENT) == seg]
    closing = [b for b in roots if b[K_TYPE] != CHECKPOINT]
    rb = closing[0] if closing else (roots[-1] if roots else None)
    media = r.get("media")
    if rb is None:
        out["verdict"] = MISSING
        out["notes"].append("no signed root: the segment has no checkpoint yet")
        return
    if media is None:
        out["verdict"] = MISSING
        out["notes"].append("the media is not on the disc (%s)" % r.get("why", "not archived"))
        return
    if media not in listed or listed[media][1] != r.get("sha256"):
        raise Bad("its media (%r) is not a file the manifest lists with its SHA-256"
                  % (media,))
    name = start.get(K_MEDIA)
    if not isinstance(name, str) or media.rsplit("/", 1)[-1] != name.rsplit("/", 1)[-1]:
        raise Bad("%s is not the media the REC_START names (%r)" % (media, name))
    c, n, length = start.get(K_CHUNK), rb.get(K_CHUNKS), rb.get(K_LENGTH)
    if not (isinstance(c, int) and 0 < c <= MAX_CHUNK and isinstance(n, int) and
            0 <= n <= MAX_CHUNKS and isinstance(length, int) and 0 <= length <= n * c
            and (n == 0 or length > (n - 1) * c)):
        raise Bad("the signed chunk size, count or length is not sane")
    f, size = _open(root, media)
    with f:
        if size < length:
            raise Bad("%s is %d bytes, shorter than the %d signed" % (media, size, length))
        if closing and size > length:
            raise Bad("%s holds %d bytes beyond its signed length" % (media, size - length))
        acc = ZERO
        for i in range(n):
            b = f.read(min(c, length - i * c))
            acc = hashlib.sha256(acc + hashlib.sha256(b).digest()).digest()
        if acc != rb.get(K_ROOT):
            raise Bad("%s is not what the recorder signed: its chunks do not give the root "
                      "of seq %d (changed)" % (media, [s for s, b, _ in recs if b is rb][0]))
    if media in bad_files:
        raise Bad("%s was changed" % media)
    out["media_bytes"] = length
    out["checked"].append("%s: %d bytes, %d chunks give the root signed in seq %d" % (
        media, length, n, [sq for sq, b, _ in recs if b is rb][0]))
    if rb[K_TYPE] == CHECKPOINT:
        out["verdict"] = MISSING
        out["notes"].append("an open segment: %d bytes signed by a checkpoint%s" % (
            length, ", %d unsigned after them" % (size - length) if size > length else ""))
    elif rb[K_TYPE] == RECOVERY:
        out["verdict"] = MISSING
        out["notes"].append("sealed at recovery after a power loss: bytes after %s were "
                            "hashed at boot, not at capture" % rb.get(K_SIGNED))
    objs = [e.get("sha256") for e in entries.values() if e.get("type") == "object"
            and e.get("device") == dev and e.get("path") == name]
    if not objs:
        out["notes"].append("no included object entry names %s (proven by its records only)"
                            % name)
    elif objs[-1] is not None and r.get("sha256") not in objs:
        raise Bad("%s is not the object the station log linked at %s" % (media, name))


def _safe_streams():
    """Never a UnicodeEncodeError on a console or a redirect that cannot show a character
    (cp1252, strict ASCII): it is written as an escape."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def main(argv=None):
    _safe_streams()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    pinned = None
    if "--station-key" in argv:
        i = argv.index("--station-key")
        try:
            pinned = _fingerprint_pin(argv[i + 1])
        except (IndexError, ValueError):
            print("verify_disc: --station-key takes the station key (64 hex digits) or its "
                  "fingerprint (32 hex digits)", file=sys.stderr)
            return 3
        del argv[i:i + 2]
    if len(argv) > 1 or any(a.startswith("-") for a in argv):
        print(__doc__, file=sys.stderr)
        return 3
    root = argv[0] if argv else (_HERE if os.path.exists(os.path.join(_HERE, MANIFEST))
                                 else os.getcwd())
    try:
        res = verify(root, pinned)
    except NotADisc as e:
        print("verify_disc: %s" % _printable(str(e)), file=sys.stderr)
        return 3
    except MemoryError:
        print("verify_disc: NOT OK (不通过): %s needs more memory than this computer has "
              "to be checked (a hostile disc)" % _printable(str(root)), file=sys.stderr)
        return 1
    if as_json:
        sys.stdout.write(json.dumps(res.to_json(), indent=2, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write(res.to_text())
    return 1 if res.verdict == NOT_OK else 0

if __name__ == "__main__":
    sys.exit(main())
