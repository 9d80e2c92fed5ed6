"""`sealcam verify-clip`: check a clip against its provenance, the device key and the
station log (SPEC §12.4).

    sealcam verify-clip FILE.mkv [--prov FILE.mkv.prov] [--archive DIR | --key DEVICE.pub]
                        [--station-key STATION.pub] [--json]

Checks, in order: the provenance is one (strict CBOR, bounded); every record in it decodes
and is signed by the device key (the archive's registered key, or --key; the key inside
the provenance must be that one); the clip's length is the one its layout gives; every
byte of the clip is the recorder's (header and chunks hashed; the Void header, the one
piece of framing that is not, recomputed); those chunk hashes with the provenance's
others give the root the segment's CHECKPOINT / SEGMENT / RECOVERY record signs (folded
in one pass, nothing kept per chunk; a clip over 64 MiB is refused first); the unsigned
layout (header, head_chunks, lead) is the one those bytes give (the header walked to its
first Cluster, a Cluster right after the Void); the records the clip is of (a statement's span, a mark) lie inside it; each record's hash is
in an entry of the station log, included (RFC 9162) under a checkpoint signed by the
station key: the archive's current one with --archive, else the provenance's own
(pinned with --station-key).

Verdicts: OK (all proven, with keys pinned), OK_WITH_MISSING_INFO (nothing wrong, but the
device key or the station key is only the provenance's own word, or the clip holds media
sealed at recovery), NOT_PROVEN (nothing wrong, but neither key was pinned: the clip only
agrees with its own provenance, which anyone can forge with keys of their own), NOT_OK
(named: the first check that failed). Exit codes: 0 OK or OK_WITH_MISSING_INFO, 1 NOT_OK,
3 usage error or a file that cannot be read, 4 NOT_PROVEN.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

from . import clipfile as CF
from . import keys as KEYS
from . import records as R
from .clipcut import ROOT_TYPES
from .records import K

__all__ = ["verify_clip", "add_arguments", "run", "UsageError", "FORMAT"]

FORMAT = "sealcam-verify-clip-1"
OK, MISSING, NOT_OK = "OK", "OK_WITH_MISSING_INFO", "NOT_OK"
# neither the device key nor the station key pinned: the clip agrees with its own
# provenance, which anyone can make with keys of their own: no proof (exit 4)
NOT_PROVEN = "NOT_PROVEN"
EXIT = {OK: 0, MISSING: 0, NOT_OK: 1, NOT_PROVEN: 4}


class UsageError(Exception):
    """A file that cannot be read, a bad key file: exit 3."""


class _Fail(Exception):
    pass


class _Result:
    def __init__(self, clip, prov):
        self.clip, self.prov = clip, prov
        self.checks = []            # [(name, status, detail)]
        self.missing = []           # what was not proven
        self.failure = None
        self.info = {}
        self.pinned = False         # the device key or the station key was pinned

    def ok(self, name, detail):
        self.checks.append((name, "ok", detail))

    def unproven(self, name, detail):
        self.checks.append((name, "not checked", detail))
        self.missing.append(detail)

    def fail(self, name, detail):
        self.checks.append((name, "FAILED", detail))
        self.failure = "%s: %s" % (name, detail)
        raise _Fail()

    @property
    def verdict(self):
        return NOT_OK if self.failure else NOT_PROVEN if not self.pinned else \
            MISSING if self.missing else OK

    def to_json(self):
        return {"format": FORMAT, "verdict": self.verdict, "clip": self.clip,
                "prov": self.prov, "failure": self.failure, "missing": self.missing,
                "checks": [{"check": n, "status": s, "detail": d} for n, s, d in self.checks],
                **self.info}

    def to_text(self):
        out = ["clip:        %s" % self.clip, "provenance:  %s" % self.prov]
        for k in ("device", "what"):
            if k in self.info:
                out.append("%-12s %s" % (k + ":", self.info[k]))
        out.append("checks:")
        for n, s, d in self.checks:
            out.append("  %-12s %-11s %s" % (n, s, d))
        out.append("verdict:     %s" % self.verdict)
        if self.failure:
            out.append("NOT_OK: %s" % self.failure)
        elif not self.pinned:
            out.append("NOT_PROVEN: the clip only agrees with its own provenance, whose keys "
                       "nobody pinned: anyone can make such a pair. Check it with --archive "
                       "DIR, or --key DEVICE.pub and --station-key STATION.pub")
        for m in self.missing:
            out.append("not proven:  %s" % m)
        return "\n".join(R.printable(x, backslash=False) for x in out) + "\n"


def _open(path, cap=None):
    """(file, size) of a regular file (no symlink followed, never blocking)."""
    from .safeio import open_regular, StoreFileError
    path = os.path.abspath(path)
    try:
        f, size = open_regular(os.path.dirname(path), os.path.basename(path))
    except FileNotFoundError:
        raise UsageError("%s does not exist" % path) from None
    except StoreFileError as e:
        raise UsageError("%s: %s" % (path, e)) from None
    except OSError as e:
        raise UsageError("%s cannot be read: %s" % (path, e.strerror or e)) from None
    return f, size


def _read_prov(path):
    f, size = _open(path)
    with f:
        if size > CF.MAX_PROV:
            return None, size
        data = f.read(size + 1)        # (not MAX_PROV: a buffer that size up front)
    return data, size


def verify_clip(clip, prov=None, archive=None, key=None, station_key=None):
    """The result of checking ``clip`` (path) with its provenance (default clip + .prov);
    ``archive`` (a folder) or ``key`` (32 raw bytes) pins the device key; ``station_key``
    (32 bytes) pins the station key when there is no archive. UsageError for files that
    cannot be read."""
    prov = prov or clip + ".prov"
    res = _Result(os.path.abspath(clip), os.path.abspath(prov))
    cf, csize = _open(clip)
    arch = None
    try:
        data, size = _read_prov(prov)
        arch = _Archive(archive) if archive else None
        _check(res, data, size, cf, csize, arch, key, station_key)
    except _Fail:
        pass
    finally:
        cf.close()
        if arch is not None:
            arch.close()
    return res


class _Archive:
    """The archive's signed state: station key, log (signed size, root), registered keys."""

    def __init__(self, root):
        from .archive import Archive, ArchiveError
        from .archive_verify import station_pub_checked
        from .tlog.replay import replay
        try:
            self.a = Archive(root, readonly=True)
        except ArchiveError as e:
            raise UsageError(str(e)) from None
        self.root = self.a.root
        self.pub, self.why = station_pub_checked(self.root)
        self.log = self.a.log()
        self.problem = self.why
        self.size = 0
        self.devices = {}
        if self.pub is not None:
            acc = self.log.account(self.pub)
            if acc.problem or (acc.checkpoint is None and acc.pending is None):
                self.problem = acc.problem or "the station log has no signed checkpoint"
            else:
                self.size = acc.signed
                self.devices = replay(self.log, self.size).devices

    def close(self):
        self.a.close()


def _check(res, data, size, cf, csize, arch, pinned, station_key):
    # 1. the provenance
    if data is None:
        res.fail("provenance", "%d bytes, more than a provenance file may have (%d)"
                 % (size, CF.MAX_PROV))
    try:
        p = CF.decode_prov(data)
    except CF.ProvError as e:
        res.fail("provenance", str(e))
    if csize > CF.MAX_CLIP:
        res.fail("provenance", "the clip is %d bytes, more than the %d a clip may have "
                 "(SPEC §12.3): it is not one" % (csize, CF.MAX_CLIP))
    idx = [e[0] for e in p["log"]["entries"]]
    if len(set(idx)) != len(idx):
        res.fail("provenance", "the station log entry %d is carried twice"
                 % next(i for i in idx if idx.count(i) > 1))
    dev, seg, c = p["device"], p["segment"], p["chunk"]
    res.ok("provenance", "%s, segment %d, chunks %d-%d, %d records, %d log entries"
           % (dev, seg, p["first"], p["last"], len(p["records"]), len(p["log"]["entries"])))
    # 2. the device key
    if arch is not None:
        d = arch.devices.get(dev)
        if arch.problem:
            res.fail("device key", "the archive %s cannot vouch for it: %s (run `sealcam verify "
                     "%s`)" % (arch.root, arch.problem, arch.root))
        if d is None:
            res.fail("device key", "%s is not registered in the archive %s" % (dev, arch.root))
        key, how = bytes(d["key"]), "registered in the archive"
    elif pinned is not None:
        key, how = bytes(pinned), "pinned with --key"
    else:
        key, how = p["key"], None
    try:
        KEYS.check_public_key(key)
    except KEYS.KeyFileError as e:
        res.fail("device key", "the key is refused: %s" % e)
    fp = KEYS.fingerprint(key)
    res.info["device"] = "%s, key %s (%s)" % (dev, fp, how or "the provenance's own: not pinned")
    res.info["fingerprint"] = fp
    if p["key"] != key:
        res.fail("device key", "the provenance names key %s, not the %s key %s: the clip is "
                 "not this device's footage" % (KEYS.fingerprint(p["key"]), how, fp))
    if how:
        res.pinned = True
        res.ok("device key", "%s %s" % (how, fp))
    else:
        res.unproven("device key", "the device key is the provenance's own (origin not "
                     "checked): give --archive or --key DEVICE.pub")
    # 3. the records
    recs = {}
    for i, raw in enumerate(p["records"]):
        rec = R.decode(raw)
        if rec.fatal or rec.errors:
            res.fail("records", "record %d of the provenance: %s" % (
                i, rec.fatal or "; ".join(rec.errors)))
        if rec.body[K.DEVICE] != dev or rec.kid != dev.encode():
            res.fail("records", "seq %d is a record of %s, not of %s" % (
                rec.seq, R.printable(rec.body[K.DEVICE]), dev))
        if not R.check_signature(key, rec):
            res.fail("signatures", "%s seq %d is not signed by the device key %s"
                     % (rec.tname, rec.seq, fp))
        if rec.seq in recs:
            res.fail("records", "seq %d appears twice" % rec.seq)
        recs[rec.seq] = rec
    start, root = recs.get(seg), recs.get(p["root_seq"])
    if start is None or start.type != R.REC_START:
        res.fail("records", "no REC_START seq %d (the segment) among them" % seg)
    if root is None or root.type not in ROOT_TYPES or root.body[K.SEGMENT] != seg:
        res.fail("records", "seq %d is not a CHECKPOINT, SEGMENT or RECOVERY of segment %d"
                 % (p["root_seq"], seg))
    signer = "the device key" if how else "the provenance's own key (not pinned)"
    res.ok("signatures", "%d records signed by %s: %s" % (
        len(recs), signer, ", ".join("%s %d" % (r.tname, r.seq) for r in recs.values())))
    if start.body[K.CHUNK] != c:
        res.fail("layout", "the provenance says chunks of %d bytes, REC_START seq %d signs %d"
                 % (c, seg, start.body[K.CHUNK]))
    n, length = root.body[K.CHUNKS], root.body[K.LENGTH]
    if root.type == R.CHECKPOINT and length != n * c or p["last"] >= n \
            or length > n * c or (n and length <= (n - 1) * c):
        res.fail("layout", "%s seq %d signs %d chunks, %d bytes: chunk %d is not in them"
                 % (root.tname, root.seq, n, length, p["last"]))

    def clen(i):
        return min(c, length - i * c)

    want = CF.clip_length(p, length)
    if csize != want:
        res.fail("bytes", "the clip is %d bytes, its provenance makes it %d: it was cut short "
                 "or added to" % (csize, want))
    # 4. every byte
    k, m, hc, hdr = p["first"], p["last"], p["head_chunks"], p["header"]
    # the hashes of the chunks not in the clip: hc..k-1, then m+1..n-1 (counted first:
    # nothing is built from a count the provenance alone claims)
    if len(p["hashes"]) != (k - hc) + (n - 1 - m):
        res.fail("root", "the provenance carries %d chunk hashes, the root of %s seq %d "
                 "needs %d" % (len(p["hashes"]), root.tname, root.seq, (k - hc) + (n - 1 - m)))
    if k:
        cf.seek(hdr)
        vh = cf.read(CF.VOID_HEADER)
        if vh != CF.void_header(hc * c - hdr + p["lead"]):
            res.fail("bytes", "the Void header at byte %d is not the one the layout gives "
                     "(%s)" % (hdr, vh.hex()))
    # the chain of §4.2 folded chunk by chunk, in order: the clip's own chunks (0..hc-1,
    # k..m) hashed as they are read in one pass, the others from `hashes` (nothing kept
    # per chunk: the cost is one pass over at most MAX_CLIP bytes)
    rd = CF.RecorderBytes(cf, hdr if k else None)
    hashes, hi, r = p["hashes"], 0, R.ZERO
    for i in range(n):
        if i < hc or k <= i <= m:
            d = hashlib.sha256(rd.take(clen(i))).digest()
        else:
            d, hi = hashes[hi], hi + 1
        r = R.root_step(r, d)
    if rd.short:
        res.fail("bytes", "the clip ends early")
    if r != root.body[K.ROOT]:
        res.fail("bytes", "the clip's bytes (or the provenance's chunk hashes) are not what "
                 "the recorder signed: they do not give the root of %s seq %d"
                 % (root.tname, root.seq))
    res.ok("bytes", "every byte is %s: chunks %s hashed%s" % (
        "the recorder's" if how else "what the provenance's own key (not pinned) signed",
        _span(0, m) if not k else "%s, %s" % (_span(0, hc - 1), _span(k, m)),
        ", the Void header at byte %d recomputed" % hdr if k else ""))
    res.ok("root", "chunk hashes 0..%d give the root %s seq %d signs" % (n - 1, root.tname,
                                                                        root.seq))
    if k:
        _check_layout(res, cf, p)
    if root.type == R.RECOVERY and (m + 1) * c > root.body[K.SIGNED]:
        res.unproven("recovered", "chunks after byte %d were hashed at boot after a power loss "
                     "(RECOVERY seq %d), not at capture" % (root.body[K.SIGNED], root.seq))
    # 5. what the clip is of
    lo = k * c + p["lead"] if k else 0
    hi = min((m + 1) * c, length)
    what = _check_subject(res, p, recs, start, root, lo, hi)
    res.info["what"] = "; ".join(what + ["segment %d bytes %d..%d" % (seg, lo, hi)])
    res.info.update(device_id=dev, segment=seg, chunks=[k, m], bytes=[lo, hi],
                    records=sorted(recs))
    # 6. the station log
    _check_log(res, p, recs, arch, station_key)


def _check_layout(res, cf, p):
    """The unsigned layout fields against the (now proven) bytes, SPEC §12.4: H is where
    the walk of the head chunks finds the first Cluster, hc = ceil(H / C), and the bytes at
    k*C + lead (just after the Void) start a Cluster of §4.4."""
    hdr, hc, c, lead = p["header"], p["head_chunks"], p["chunk"], p["lead"]
    if hc != -(-hdr // c):
        res.fail("layout", "the provenance says the header (%d bytes) takes %d chunks of %d "
                 "bytes: it takes %d" % (hdr, hc, c, -(-hdr // c)))
    try:
        lay = CF.walk(CF.HeadView(cf, hdr, hc * c), hc * c)
    except CF.WalkError as e:
        res.fail("layout", "the recorder's header is not the container of SPEC §4.4: %s" % e)
    first = lay.header
    if first is None and lay.end == hdr == hc * c and lay.tracks:
        first = hdr                         # the first Cluster starts chunk hc exactly
    if first != hdr:
        res.fail("layout", "the provenance puts the header's end at byte %d, the recorder's "
                 "first Cluster starts at byte %s: the clip would not play what was "
                 "recorded" % (hdr, "?" if first is None else first))
    cf.seek(hc * c + CF.VOID_HEADER + lead)
    if cf.read(len(CF.CLUSTER_START)) != CF.CLUSTER_START:
        res.fail("layout", "no Cluster starts at byte %d of chunk %d (the provenance's lead): "
                 "the clip would not play from a Cluster" % (lead, p["first"]))
    res.ok("layout", "the header ends at the first Cluster (byte %d, %d chunk%s), chunk %d's "
           "first Cluster at byte %d" % (hdr, hc, "" if hc == 1 else "s", p["first"], lead))


def _check_subject(res, p, recs, start, root, lo, hi):
    """The provenance's `subject` against the signed records: the records it names are
    exactly the others it carries, of the kind it says, and lie inside the clip (a
    statement's span, a mark's position) or its segment's time (a range)."""
    sub, seg, c = p["subject"], p["segment"], p["chunk"]
    seqs, kind = sub["seqs"], sub["kind"]
    if seqs != sorted(set(seqs)) or set(seqs) != set(recs) - {start.seq, root.seq}:
        res.fail("subject", "it names records %s, the provenance carries %s besides the "
                 "segment's" % (seqs, sorted(set(recs) - {start.seq, root.seq})))
    types = {s: recs[s].type for s in seqs}
    want = {"annotation": (R.VOICE_ANNOTATION, R.INTERRUPTION), "mark": (R.MARK,),
            "range": (R.ASSIGN,)}[kind]
    if any(t not in want for t in types.values()) or \
            (kind == "range") != (sub["from"] is not None and sub["to"] is not None) or \
            (kind != "range" and (sub["from"], sub["to"]) != (None, None)):
        res.fail("subject", "a %s clip of %s records%s" % (kind, ", ".join(
            recs[s].tname for s in seqs) or "no", "" if kind == "range" else
            " with a time range" if sub["from"] is not None or sub["to"] is not None else ""))
    what = []
    voices = [recs[s] for s in seqs if types[s] == R.VOICE_ANNOTATION]
    if kind == "annotation" and not voices:
        res.fail("subject", "an annotation clip without a VOICE_ANNOTATION")
    for v in voices:
        sp = v.body[K.SPAN]
        b1, b2 = sp[1] * c + sp[2], sp[3] * c + sp[4]
        if sp[0] != seg or not lo <= b1 < b2 <= hi:
            res.fail("subject", "VOICE_ANNOTATION seq %d's span (segment %d bytes %d..%d) is "
                     "not inside the clip (segment %d bytes %d..%d)"
                     % (v.seq, sp[0], b1, b2, seg, lo, hi))
        what.append("the statement of VOICE_ANNOTATION seq %d (%.1f s held), for "
                    "INTERRUPTION seq %d" % (v.seq, v.body[K.DURATION] / 1000,
                                             v.body[K.REFERS]))
    for s in seqs:
        rec = recs[s]
        if rec.type == R.INTERRUPTION:
            if not any(v.body[K.REFERS] == s for v in voices):
                res.fail("subject", "INTERRUPTION seq %d: no statement of the clip explains it"
                         % s)
            what.append("INTERRUPTION seq %d (%s)" % (s, R.printable(rec.body[K.REASON])))
        elif rec.type == R.MARK:
            at = rec.body.get(K.AT)
            if len(seqs) != 1 or at is None or at[0] != seg \
                    or not lo <= at[1] * c + at[2] <= hi:
                res.fail("subject", "MARK seq %d is not inside the clip (segment %d bytes "
                         "%d..%d)" % (s, seg, lo, hi))
            what.append("around MARK seq %d (%s)" % (s, R.printable(rec.body[K.KIND])))
        elif rec.type == R.ASSIGN:
            if rec.body[K.OFFICER] is None:
                res.fail("subject", "ASSIGN seq %d releases the recorder: it is no shift" % s)
            # the shift the segment was recorded in: an ASSIGN before it, naming the officer
            # and unit its REC_START carries (one officer per clip)
            who = (rec.body[K.OFFICER], rec.body.get(K.UNIT))
            if s >= seg or who != (start.body[K.OFFICER], start.body.get(K.UNIT)):
                res.fail("subject", "ASSIGN seq %d (officer %s, unit %s) is not the shift "
                         "segment %d was recorded in (REC_START seq %d: officer %s, unit %s)"
                         % (s, R.printable(who[0]), R.printable(who[1] or "-"), seg, seg,
                            R.printable(start.body[K.OFFICER] or "none"),
                            R.printable(start.body.get(K.UNIT) or "-")))
            what.append("officer %s's shift (ASSIGN seq %d)" % (
                R.printable(rec.body[K.OFFICER]), s))
    if kind == "range":
        begin = start.body[K.RTC] - start.body.get(K.PRERECORD, 0)
        if not (sub["from"] < sub["to"] and sub["from"] <= root.body[K.RTC] + 1000
                and sub["to"] >= begin):
            res.fail("subject", "the range asked (RTC %d..%d) is not when segment %d was "
                     "recorded (from RTC %d)" % (sub["from"], sub["to"], seg, begin))
        what.insert(0, "a time range")
    res.ok("subject", "the records it is of lie inside it" if kind != "range" else
           "a time range of the segment")
    return what


def _check_log(res, p, recs, arch, station_key):
    from .tlog import merkle, note
    from .tlog.log import decode_entry
    lg = p["log"]
    if arch is not None:
        if arch.log.origin != lg["origin"]:
            res.fail("station log", "the clip was made at another station archive (%s), not "
                     "%s" % (R.printable(lg["origin"]), arch.log.origin))
        spub, size = arch.pub, arch.size
        root = arch.log.root(size)
        how = "the archive's current checkpoint (%d entries)" % size
    else:
        spub = station_key if station_key is not None else lg["station"]
        if lg["station"] != spub:
            res.fail("station log", "the provenance names another station key than --station-key")
        try:
            text = note.open_note(lg["checkpoint"], lg["origin"], spub)
            origin, size, root, _ = note.parse_checkpoint(text)
        except (note.NoteError, ValueError) as e:
            res.fail("station log", "the checkpoint: %s" % e)
        if origin != lg["origin"]:
            res.fail("station log", "the checkpoint is of another log (%s)" % R.printable(origin))
        how = "the provenance's checkpoint (%d entries)" % size
    covered = set()
    leaves = arch.log.hashes if arch is not None else None
    for idx, raw, proof in lg["entries"]:
        try:
            if arch is not None:
                proof = merkle.inclusion_proof(leaves, idx, size)
            merkle.verify_inclusion(idx, size, merkle.leaf_hash(raw), proof, root)
        except merkle.ProofError as e:
            res.fail("station log", "entry %d is not in the station log under %s: %s"
                     % (idx, how, e))
        try:
            e = decode_entry(raw)
        except Exception:
            res.fail("station log", "entry %d is not a log entry" % idx)
        if e.get("type") != "records" or e.get("device") != p["device"]:
            continue
        for item in e.get("records") or ():
            if isinstance(item, list) and len(item) == 3 and item[0] in recs \
                    and item[1] == recs[item[0]].hash:
                covered.add(item[0])
    lack = sorted(set(recs) - covered)
    if lack:
        res.fail("station log", "seq %s: no included entry holds its hash" %
                 ", ".join(map(str, lack)))
    fp = KEYS.fingerprint(spub)
    if arch is not None:
        res.ok("station log", "every record is in the station log of %s, under %s signed by "
               "its station key %s" % (arch.root, how, fp))
    elif station_key is not None:
        res.pinned = True
        res.ok("station log", "every record is in the station log, under %s signed by the "
               "station key %s (pinned)" % (how, fp))
    else:
        res.ok("station log", "every record is in the station log under %s" % how)
        res.unproven("station key", "the station key %s is the provenance's own: give "
                     "--archive or --station-key STATION.pub to pin it" % fp)


def _span(a, b):
    return "%d" % a if a == b else "%d-%d" % (a, b)


# --- command line ------------------------------------------------------------------------

def add_arguments(p):
    p.add_argument("clip", metavar="FILE.mkv", help="the clip")
    p.add_argument("--prov", metavar="P", default=None,
                   help="its provenance (default: FILE.mkv.prov)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--archive", metavar="DIR", default=None,
                   help="the station archive: its registered device key and its current "
                        "signed checkpoint")
    g.add_argument("--key", metavar="DEVICE.pub", default=None,
                   help="the device's public key (without --archive)")
    p.add_argument("--station-key", metavar="STATION.pub", default=None,
                   help="the station's public key (without --archive): pins the key the "
                        "provenance's checkpoint is signed with")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def run(args) -> int:
    try:
        if args.archive and args.station_key:
            raise UsageError("--station-key is for use without --archive (the archive has "
                             "its station.pub)")
        key = _load_key(args.key) if args.key else None
        skey = _load_key(args.station_key) if args.station_key else None
        res = verify_clip(args.clip, args.prov, args.archive, key, skey)
    except UsageError as e:
        print("sealcam verify-clip: %s" % R.printable(str(e)), file=sys.stderr)
        return 3
    if args.json:
        sys.stdout.write(json.dumps(res.to_json(), indent=2, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write(res.to_text())
    return EXIT[res.verdict]


def _load_key(path):
    try:
        return KEYS.load_public_key(path)
    except OSError as e:
        raise UsageError("cannot read key %s: %s" % (path, e.strerror or e)) from None
    except KEYS.KeyFileError as e:
        raise UsageError("bad key %s: %s" % (path, e)) from None
