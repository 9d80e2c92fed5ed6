"""`sealcam clip`: a verifiable extract of the archive (SPEC §12).

    sealcam clip --archive DIR --out FILE.mkv
                 (--annotation DEVICE:SEQ | --mark DEVICE:SEQ [--before S] [--after S]
                  | --device ID --from TIME --to TIME | --officer ID --from TIME --to TIME)
                 [--json]

--annotation: a VOICE_ANNOTATION's span (the officer's statement), or, given an
INTERRUPTION's seq, the statement(s) that explain it. --mark: S seconds around a MARK
(default 5 before, 10 after). --device / --officer: a time range (UTC, ISO 8601, e.g.
2026-11-30T08:15:00Z) of a device, or of the shifts an officer was assigned (ASSIGN
records). One clip per segment: a selection that touches one segment writes FILE.mkv;
one that touches several (a statement across a rollover, a range over several segments)
writes FILE-DEVICE-SEGMENT.mkv for each. Each clip gets FILE.mkv.prov beside it.

The archive is read, never written, while it has no clerk user. A clip is cut only from
records that verify (the device key the station log registered, each record's hash in the
signed station log) and from media chunks that match their signed root.

An archive whose station log has clerk users (`sealcam user add`) hands out originals only
under the register (R15; SPEC §14.10): `--user NAME` signs in (as the clerk verbs) and
`--request N` names the user's approved request naming export that covers every segment
cut; the clips are made in a private folder, each is authorized and put on the register
(access_used naming the clip's SHA-256) and only then moved to FILE.mkv. A refusal is one
line and exit 5 (nothing written).

Exit codes: 0 clip(s) written; 1 the archive does not prove what was asked (a record,
chunk or log that does not verify: run `sealcam verify DIR`); 3 usage error, not an
archive, or nothing of the kind asked in it; 5 (an archive with users) sign-in failed or no
approved export request allows it.

Python: make_clip(archive, out, annotation=(dev, seq) | mark=(dev, seq) | device=id |
officer=id, since=ms, until=ms, before=s, after=s) -> {"clips": [...], ...}
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys

from . import records as R
from .clipcut import ClipError, Segment, cut
from .records import K

__all__ = ["make_clip", "ArchiveSource", "ClipError", "add_arguments", "run",
           "parse_time", "clip_command"]


def _signed_state(root):
    """(Archive, station key, log, signed size, checkpoint note, replayed State) of the
    archive at ``root``: what its station log, signed by its station key, says it holds.
    ClipError if it is not an archive or its log is not signed."""
    from .archive import Archive, ArchiveError
    from .archive_verify import station_pub_checked
    from .tlog.replay import replay
    try:
        a = Archive(root, readonly=True)
    except ArchiveError as e:
        raise ClipError(str(e)) from None
    except sqlite3.Error as e:
        raise ClipError("%s: the archive's index cannot be read (%s): run `sealcam verify %s`"
                        % (root, e, root), 1) from None
    try:
        pub, why = station_pub_checked(root)
        if why:
            raise ClipError("%s: %s: a clip needs the station's signed log" % (root, why), 1)
        log = a.log()
        acc = log.account(pub)
        if acc.problem or (acc.checkpoint is None and acc.pending is None):
            raise ClipError("%s: the station log is not signed by its station key (%s): run "
                            "`sealcam verify %s`" % (root, acc.problem or "no checkpoint",
                                                     root), 1)
        return a, pub, log, acc.signed, (acc.pending or acc.checkpoint)[2], \
            replay(log, acc.signed)
    except BaseException:
        a.close()
        raise


class ArchiveSource:
    """What a clip is cut from: a station archive, opened read-only. The device's records
    are those the signed station log holds (its replay), each read from the index and
    checked against the log's hash and the registered key: a logged record missing from
    the index or unusable is exit 1 (run `sealcam verify`), never skipped."""

    def __init__(self, root, device):
        self.root = os.path.abspath(os.fspath(root))
        self.a, pub, log, size, note, st = _signed_state(self.root)
        try:
            self._load(device, pub, log, size, note, st)
        except BaseException:
            self.a.close()
            raise

    def _load(self, device, pub, log, size, note, st):
        self.station = pub
        self.log, self.size, self.note = log, size, note
        if device not in st.devices:
            known = ", ".join(sorted(st.devices)) or "none"
            raise ClipError("device %s is not in the archive %s (devices: %s)"
                            % (R.printable(device), self.root, known))
        self.device, self.key = device, bytes(st.devices[device]["key"])
        self.logged = st.records.get(device, {})
        self.objects = st.objects.get(device, {})
        self.disposed = st.disposed.get(device, {})     # SPEC §9.2
        self.recs = {}
        rows = {}
        try:
            for row in self.a.db.execute("SELECT seq, data FROM records WHERE device = ?",
                                         (device,)):
                if row["seq"] in self.logged:
                    rows[row["seq"]] = row["data"]
        except sqlite3.Error as e:
            raise ClipError("%s: the archive's index cannot be read (%s): run `sealcam verify "
                            "%s`" % (self.root, e, self.root), 1) from None
        for seq in sorted(self.logged):
            data = rows.get(seq)
            rec = R.decode(data if isinstance(data, bytes) else b"")
            if data is None or rec.fatal or rec.errors or rec.seq != seq \
                    or bytes(self.logged[seq][0]) != rec.hash or rec.kid != device.encode() \
                    or not R.check_signature(self.key, rec):
                raise ClipError("%s: record seq %d, which the station log holds, is %s in the "
                                "archive's index: run `sealcam verify %s`"
                                % (device, seq, "missing" if data is None else "damaged",
                                   self.root), 1)
            self.recs[seq] = rec

    def open_media(self, rel):
        from .tlog.replay import segment_of
        if segment_of(rel) in self.disposed:       # gone, or going (an unfinished disposal)
            from .tlog.events import disposal_text
            raise ClipError("%s: segment %d was %s: its media is no longer in the archive, "
                            "no clip can be cut from it"
                            % (self.device, segment_of(rel),
                               disposal_text(self.disposed[segment_of(rel)])))
        try:        # the view's file; sealed at rest: decrypted as the object logged there
            return self.a.media_opener(self.objects)(self.a.view_dir(self.device), rel)
        except FileNotFoundError:
            if rel in self.objects:
                raise ClipError("%s: %s is missing from the archive, though its station log "
                                "records it: run `sealcam verify %s`"
                                % (self.device, rel, self.root), 1) from None
            raise ClipError("%s: %s is not in the archive (the media of this segment was not "
                            "offloaded)" % (self.device, rel)) from None
        except OSError as e:
            raise ClipError("%s: %s: %s" % (self.device, rel, e), 1) from None

    def index(self, rel, n):
        from .safeio import read_capped
        try:
            return read_capped(self.root, "devices/%s/%s" % (self.device, rel),
                               32 * n + (1 << 20), "chunk index")[:32 * n]
        except OSError as e:
            raise ClipError("%s: %s cannot be read (%s): run `sealcam verify %s`"
                            % (self.device, rel, e, self.root), 1) from None

    def log_part(self, recs):
        from .tlog import merkle
        want = {r.seq: r.hash for r in recs}
        found = {}
        for i, raw, e in self.log.entries(0, self.size):
            if e.get("type") != "records" or e.get("device") != self.device:
                continue
            for item in e.get("records") or ():
                if isinstance(item, list) and len(item) == 3 and item[0] in want \
                        and item[1] == want[item[0]] and item[0] not in found:
                    found[item[0]] = (i, raw)
            if len(found) == len(want):
                break
        lack = sorted(set(want) - set(found))
        if lack:
            raise ClipError("%s: the station log holds no entry for seq %s: run `sealcam "
                            "verify %s`" % (self.device, ", ".join(map(str, lack)), self.root),
                            1)
        hashes = self.log.hashes
        entries = []
        for i, raw in sorted(set(found.values())):
            entries.append([i, raw, merkle.inclusion_proof(hashes, i, self.size)])
        return {"origin": self.log.origin, "station": self.station, "checkpoint": self.note,
                "entries": entries}

    def close(self):
        self.a.close()


# --- selections ----------------------------------------------------------------------

def _rec(src, seq, types, what):
    r = src.recs.get(seq)
    if r is None:
        raise ClipError("%s has no verified record seq %d in %s" % (src.device, seq, src.root))
    if r.type not in types:
        raise ClipError("%s seq %d is a %s, not %s" % (src.device, seq, r.tname, what))
    return r


def _spans(src, seq):
    """[(VOICE_ANNOTATION, [INTERRUPTION...])] the annotation selector names."""
    r = _rec(src, seq, (R.VOICE_ANNOTATION, R.INTERRUPTION),
             "a VOICE_ANNOTATION or an INTERRUPTION")
    if r.type == R.VOICE_ANNOTATION:
        voices = [r]
    else:
        voices = [v for v in src.recs.values() if v.type == R.VOICE_ANNOTATION
                  and v.body[K.REFERS] == seq]
        if not voices:
            raise ClipError("%s INTERRUPTION seq %d (%s) has no voice annotation: nothing was "
                            "said about it (`sealcam report` shows its status)"
                            % (src.device, seq, R.printable(r.body[K.REASON])))
    return voices


def _annotation_cuts(src, seq):
    """[(segment, b1, b2, asked, subject records)] of an annotation selection."""
    by_seg = {}
    for v in sorted(_spans(src, seq), key=lambda v: v.seq):
        seg, c1, o1, c2, o2 = v.body[K.SPAN]
        by_seg.setdefault(seg, []).append(v)
    out = []
    for segno, voices in sorted(by_seg.items()):
        seg = Segment(src, segno)
        b1 = min(v.body[K.SPAN][1] * seg.chunk + v.body[K.SPAN][2] for v in voices)
        b2 = max(v.body[K.SPAN][3] * seg.chunk + v.body[K.SPAN][4] for v in voices)
        if b2 > seg.length or b1 >= b2:
            raise ClipError("%s seq %d: the span (bytes %d..%d) is not inside the signed "
                            "media of segment %d (%d bytes)" % (src.device, voices[0].seq, b1,
                                                                b2, segno, seg.length), 1)
        interr = [src.recs[v.body[K.REFERS]] for v in voices if v.body[K.REFERS] in src.recs]
        out.append((seg, b1, b2, seg.span_times(b1, b2), voices + interr))
    return out


def _mark_cut(src, seq, before, after):
    r = _rec(src, seq, (R.MARK,), "a MARK")
    at = r.body.get(K.AT)
    if at is None:
        raise ClipError("%s MARK seq %d was made while not recording: no media to cut"
                        % (src.device, seq))
    seg = Segment(src, at[0])
    byte = at[1] * seg.chunk + at[2]
    if byte > seg.length:
        raise ClipError("%s MARK seq %d was made at byte %d of segment %d, past the %d bytes "
                        "its signed records cover (offloaded while recording): offload again "
                        "once the recorder has checkpointed or stopped"
                        % (src.device, seq, byte, seg.seq, seg.length), 1)
    t = seg.time_at(byte)
    t1, t2 = max(0, t - before * 1000), min(seg.media_end(), t + after * 1000)
    try:
        b1, b2 = seg.bytes_of(t1, max(t2, t1 + 1))
    except ClipError:
        b1, b2 = byte, byte
    # the clip always holds the mark's own byte (a block's time and its place in the file
    # differ by up to a frame: the time window alone may miss it)
    b1, b2 = min(b1, byte), max(b2, min(byte + 1, seg.length))
    # what was asked, not what the recording has: the output says what is missing
    return [(seg, b1, b2, (t - before * 1000, t + after * 1000), [r])]


def _range_cuts(src, t_from, t_to, extra=(), seqs=None):
    """Cuts of every segment of the device that recorded between RTC t_from and t_to
    (``seqs``: (after, before) the segment's REC_START seq lies strictly between)."""
    out = []
    for r in sorted(src.recs.values(), key=lambda r: r.seq):
        if r.type != R.REC_START:
            continue
        if seqs is not None and not seqs[0] < r.seq < seqs[1]:
            continue
        try:
            seg = Segment(src, r.seq)
        except ClipError:
            continue
        lo, hi = max(t_from, seg.origin_rtc), min(t_to, seg.end_rtc)
        if lo >= hi:
            continue
        # a range past the segment's last signed record takes its media to the end (block
        # times and record times are of different clocks by a tick)
        t1 = lo - seg.origin_rtc
        t2 = seg.media_end() if t_to >= seg.end_rtc else min(hi - seg.origin_rtc,
                                                              seg.media_end())
        if t1 >= t2:
            continue
        b1, b2 = seg.bytes_of(t1, t2)
        # the range asked (in the segment's media time), not clipped to the recording
        out.append((seg, b1, b2, (t_from - seg.origin_rtc, t_to - seg.origin_rtc),
                    list(extra)))
    return out


def _shifts(src, officer):
    """[(ASSIGN record, start rtc, end rtc, (its seq, the next ASSIGN's seq))] of the
    officer's shifts on this device."""
    assigns = sorted((r for r in src.recs.values() if r.type == R.ASSIGN),
                     key=lambda r: r.seq)
    out = []
    for i, a in enumerate(assigns):
        if a.body[K.OFFICER] != officer:
            continue
        nxt = assigns[i + 1] if i + 1 < len(assigns) else None
        out.append((a, a.body[K.RTC], nxt.body[K.RTC] if nxt else 1 << 62,
                    (a.seq, nxt.seq if nxt else 1 << 62)))
    return out


def _devices(root):
    """The devices the archive's signed station log registered (not its index)."""
    a, _, _, _, _, st = _signed_state(os.path.abspath(os.fspath(root)))
    a.close()
    return sorted(st.devices)


def _name(out, src, seg, many):
    if not many:
        return out
    stem = out[:-4] if out.endswith(".mkv") else out
    return "%s-%s-%d.mkv" % (stem, src.device, seg.seq)


def make_clip(archive, out, annotation=None, mark=None, device=None, officer=None,
              since=None, until=None, before=5.0, after=10.0):
    """Cut the selection (exactly one of annotation, mark, device, officer) out of the
    archive into ``out`` (and ``out``.prov). Returns {"archive", "selection", "clips":
    [summary]}; ClipError (with .code) if it cannot."""
    chosen = [x for x in (annotation, mark, device, officer) if x is not None]
    if len(chosen) != 1:
        raise ClipError("give exactly one of --annotation, --mark, --device, --officer")
    if (device or officer) and (since is None or until is None or since >= until):
        raise ClipError("--device and --officer need --from TIME and --to TIME, from before to")
    if before < 0 or after < 0:
        raise ClipError("--before and --after are seconds, 0 or more")
    root = os.path.realpath(os.fspath(archive))
    where = os.path.realpath(os.path.dirname(os.path.abspath(os.fspath(out))))
    if where == root or where.startswith(root.rstrip(os.sep) + os.sep):
        raise ClipError("--out %s is inside the archive %s: the archive is never written, "
                        "name a file outside it" % (out, os.path.abspath(archive)))
    plans = []
    if annotation or mark:
        did, seq = annotation or mark
        src = ArchiveSource(archive, did)
        sel = "annotation" if annotation else "mark"
        cuts = _annotation_cuts(src, seq) if annotation else _mark_cut(src, seq, before, after)
        plans.append((src, cuts, {"kind": sel, "seqs": [], "from": None, "to": None}))
    elif device:
        src = ArchiveSource(archive, device)
        plans.append((src, _range_cuts(src, since, until),
                      {"kind": "range", "seqs": [], "from": since, "to": until}))
        wanted = [(device, since, until)]
    else:
        seen, wanted = False, []
        for did in _devices(archive):
            src = ArchiveSource(archive, did)
            cuts = []
            for a, lo, hi, seqs in _shifts(src, officer):
                seen = True
                if min(hi, until) > max(lo, since):
                    cuts += _range_cuts(src, max(lo, since), min(hi, until), [a], seqs)
                    wanted.append((did, max(lo, since), min(hi, until)))
            plans.append((src, cuts, {"kind": "range", "seqs": [], "from": since,
                                      "to": until}))
        if not seen:
            raise ClipError("officer %s is not in the archive %s: no ASSIGN record names them"
                            % (R.printable(officer), os.path.abspath(archive)))
    n = sum(len(c) for _, c, _ in plans)
    if n == 0:
        raise ClipError("nothing was recorded in that time range (%s to %s UTC)"
                        % (_iso(since), _iso(until)))
    clips = []
    for src, cuts, subj in plans:
        for seg, b1, b2, asked, subject_recs in cuts:
            subject = dict(subj, seqs=sorted({r.seq for r in subject_recs}))
            clips.append(cut(seg, b1, b2, asked, subject, subject_recs,
                             _name(out, src, seg, n > 1)))
        src.close()
    gaps = _gaps(wanted, clips) if device or officer else []
    return {"archive": os.path.abspath(archive), "clips": clips, "not_recorded": gaps,
            "verify": ["sealcam verify-clip %s --archive %s" % (c["file"],
                                                                 os.path.abspath(archive))
                       for c in clips]}


def _gaps(wanted, clips):
    """[{"device", "from", "to", "s"}]: the parts of the asked ranges ((device, rtc from,
    rtc to) each) that no clip covers: before the first segment, between segments (the
    recorder stopped), after the last."""
    out = []
    for did, lo, hi in wanted:
        covered = sorted(c["covers"]["rtc"] for c in clips if c["device"] == did)
        at = lo
        for c1, c2 in covered + [(hi, hi)]:
            if min(c1, hi) > at:
                out.append({"device": did, "from": _iso(at), "to": _iso(min(c1, hi)),
                            "s": round((min(c1, hi) - at) / 1000, 3)})
            at = max(at, c2)
            if at >= hi:
                break
    return out


def clip_command(archive, device, seq, out):
    """The exact `sealcam clip` command line of one annotation (for the report)."""
    import shlex
    return "sealcam clip --archive %s --annotation %s:%d --out %s" % (
        shlex.quote(archive), device, seq, shlex.quote(out))


# --- command line ----------------------------------------------------------------------

def parse_time(s):
    """argparse type: UTC time ISO 8601 (2026-11-30T08:15:00Z, or with an offset; a time
    without one is UTC) -> ms since 1970."""
    import argparse
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, AttributeError):
        raise argparse.ArgumentTypeError("not a time (2026-11-30T08:15:00Z): %r" % (s,)) \
            from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)


def _devseq(s):
    import argparse
    dev, _, seq = s.rpartition(":")
    if R.device_id_error(dev) is None and seq.isdigit() and len(seq) < 19:
        return dev, int(seq)
    raise argparse.ArgumentTypeError("not DEVICE:SEQ (e.g. SC-00A1B2C3:42): %r" % (s,))


def _secs(s):
    import argparse
    try:
        x = float(s)
    except ValueError:
        x = -1
    if not 0 <= x <= 3600:
        raise argparse.ArgumentTypeError("seconds 0..3600: %r" % (s,))
    return x


def add_arguments(p):
    p.add_argument("--archive", required=True, metavar="DIR", help="the station archive")
    p.add_argument("--out", required=True, metavar="FILE.mkv",
                   help="the clip to write (its provenance goes to FILE.mkv.prov)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--annotation", type=_devseq, metavar="DEVICE:SEQ",
                   help="a VOICE_ANNOTATION's statement, or an INTERRUPTION's statement(s)")
    g.add_argument("--mark", type=_devseq, metavar="DEVICE:SEQ",
                   help="the seconds around a MARK (--before, --after)")
    g.add_argument("--device", metavar="ID", help="a time range of this device (--from, --to)")
    g.add_argument("--officer", metavar="ID",
                   help="a time range of this officer's shifts (--from, --to)")
    p.add_argument("--from", dest="since", type=parse_time, metavar="TIME",
                   help="start of the range, UTC (2026-11-30T08:15:00Z)")
    p.add_argument("--to", dest="until", type=parse_time, metavar="TIME",
                   help="end of the range, UTC")
    p.add_argument("--before", type=_secs, default=5.0, metavar="S",
                   help="--mark: seconds before it (default: %(default)g)")
    p.add_argument("--after", type=_secs, default=10.0, metavar="S",
                   help="--mark: seconds after it (default: %(default)g)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--user", metavar="NAME", default=os.environ.get("SEALCAM_USER"),
                   help="an archive with clerk users: who you are (or SEALCAM_USER; the "
                        "password from SEALCAM_PASSWORD, a prompt or standard input)")
    p.add_argument("--request", metavar="N",
                   help="an archive with clerk users: your approved access request naming "
                        "export that covers what is cut (R15)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="an archive with clerk users: its catalogue database (default: "
                        "[catalogue] url of station.toml, else ARCHIVE/catalogue.sqlite)")
    return p


def _iso(ms):
    if ms is None:
        return "?"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def to_text(res):
    out = []
    for c in res["clips"]:
        subj = c["subject"]
        what = {"annotation": "the officer's statement (records %s)",
                "mark": "around the MARK (record %s)",
                "range": "the time range (records %s)"}[subj["kind"]] % (
            ", ".join(map(str, subj["seqs"])) or "-")
        out += ["clip:       %s" % c["file"],
                "provenance: %s" % c["prov"],
                "what:       %s of %s, segment %d (chunks %d-%d, %d bytes)"
                % (what, c["device"], c["segment"], c["chunks"][0], c["chunks"][1], c["bytes"]),
                "asked:      %s to %s (media %.1f s to %.1f s)"
                % (c["asked"]["from"], c["asked"]["to"], c["asked"]["from_s"], c["asked"]["to_s"]),
                "covers:     %s to %s (media %.1f s to %.1f s): %.1f s more before, %.1f s "
                "more after (whole chunks)" % (c["covers"]["from"], c["covers"]["to"],
                                               c["covers"]["from_s"], c["covers"]["to_s"],
                                               c["beyond"]["before_s"], c["beyond"]["after_s"])]
        if (c["short"]["before_s"] or c["short"]["after_s"]) and len(res["clips"]) == 1:
            out.append("note:       the recording does not reach the whole range asked "
                       "(%.1f s missing before, %.1f s after)" % (c["short"]["before_s"],
                                                                  c["short"]["after_s"]))
        out += ["play it:    %s" % c["play"],
                "check it:   sealcam verify-clip %s --archive %s" % (c["file"], res["archive"]),
                ""]
    for g in res.get("not_recorded") or ():
        out.append("not recorded: %s to %s (%.1f s): %s recorded nothing then (no segment "
                   "covers it)" % (g["from"], g["to"], g["s"], g["device"]))
    if res.get("not_recorded"):
        out.append("")
    return "\n".join(R.printable(x, backslash=False) for x in out)


def has_users(archive) -> bool:
    """Whether the archive's station log adds a clerk user (a byte search of its entries
    for the user_added type; an entry that only looks like one asks for --user, never the
    other way round)."""
    import mmap
    from .archive import Archive
    try:
        a = Archive(archive, readonly=True)
    except Exception:               # noqa: BLE001 - not an archive: make_clip says so
        return False
    try:
        path = a.log().entries_path
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return m.find(b"user_added") >= 0
    except FileNotFoundError:
        return False
    finally:
        a.close()


def _moved(x, tmp, out_dir):
    """``x`` (the result of make_clip) with the private folder's paths made the final ones."""
    if isinstance(x, str):
        return x.replace(tmp, out_dir)
    if isinstance(x, list):
        return [_moved(v, tmp, out_dir) for v in x]
    if isinstance(x, dict):
        return {k: _moved(v, tmp, out_dir) for k, v in x.items()}
    return x


def _sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _registered_clip(args):
    """make_clip under an approved export request of the signed-in user (an archive with
    clerk users): cut into a private folder beside --out, each clip authorized for its
    recording and put on the register, then moved into place. Returns make_clip's result;
    raises the clerk verbs' errors."""
    import shutil
    import tempfile
    from .catalogue import access
    from .i18n import _
    from .catalogue.store import Catalogue
    from .cli_clerk import signed_in
    if not args.user or not args.request:
        raise access.AccessRefused(
            _("this archive has clerk users: a clip of its originals needs --user NAME and "
              "--request N (your approved access request naming export; `sealcam access "
              "request`)"))
    out = os.path.abspath(args.out)
    out_dir = os.path.dirname(out)
    with Catalogue(args.archive, args.db) as cat:
        who = signed_in(cat, args)
        access.authorize(cat, who, args.request, "export")     # before anything is cut
        tmp = tempfile.mkdtemp(prefix=".sealcam-clip-", dir=out_dir)    # mode 0700
        try:
            res = make_clip(args.archive, os.path.join(tmp, os.path.basename(out)),
                            annotation=args.annotation, mark=args.mark, device=args.device,
                            officer=args.officer, since=args.since, until=args.until,
                            before=args.before, after=args.after)
            moves = []
            for c in res["clips"]:
                for p in (c["file"], c["prov"]):
                    dst = os.path.join(out_dir, os.path.relpath(p, tmp))
                    if os.path.lexists(dst):
                        raise ClipError(_("%(path)s exists already: name another --out")
                                        % {"path": dst}, 3)
                    moves.append((p, dst))
                access.authorize(cat, who, args.request, "export", device=c["device"],
                                 segment=c["segment"])
            for c in res["clips"]:          # the register's lines, then the hand-out
                access.record_use(cat, who, args.request, "export", device=c["device"],
                                  segment=c["segment"], output=_sha256_file(c["file"]))
            for p, dst in moves:
                os.rename(p, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _moved(res, tmp, out_dir)


def run(args) -> int:
    guarded = has_users(args.archive)
    try:
        if guarded:
            res = _registered_clip(args)
        else:
            res = make_clip(args.archive, args.out, annotation=args.annotation,
                            mark=args.mark, device=args.device, officer=args.officer,
                            since=args.since, until=args.until, before=args.before,
                            after=args.after)
    except ClipError as e:
        print("sealcam clip: %s" % R.printable(str(e)), file=sys.stderr)
        return e.code
    except sqlite3.Error as e:
        print("sealcam clip: the archive's index %s cannot be read (%s): run `sealcam verify "
              "%s`" % (os.path.join(args.archive, "archive.sqlite"), e, args.archive),
              file=sys.stderr)
        return 1
    except OSError as e:
        print("sealcam clip: cannot write %s: %s" % (args.out, e.strerror or e),
              file=sys.stderr)
        return 3
    except Exception as e:          # noqa: BLE001 - the clerk verbs' errors (with users)
        if not guarded:
            raise
        from .cli_clerk import EXIT_AUTH, EXIT_USAGE, _errors
        from sqlalchemy.exc import SQLAlchemyError
        auth, usage = _errors()
        if not isinstance(e, auth + usage + (SQLAlchemyError,)):
            raise
        print("sealcam clip: %s" % R.printable((str(e).splitlines() or [""])[0][:300],
                                               backslash=False), file=sys.stderr)
        return EXIT_AUTH if isinstance(e, auth) else EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(res, indent=2, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write(to_text(res))
    return 0
