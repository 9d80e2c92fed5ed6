"""Offline verifier of a sealcam store (SPEC §3–§6).

    from host_tools.verify import verify_store
    report = verify_store("/media/sd", pinned_key="SC-00A1B2C3.pub")
    report.verdict          # "OK" | "OK_WITH_MISSING_INFO" | "NOT_OK" | "NOT_SIGNED"
    report.to_json()        # a dict (json.dumps-able)
    print(report.to_text())

Only cbor2 and cryptography are used; nothing from the firmware is imported. Media is
hashed chunk by chunk (never held in memory as a whole). A store is hostile input: its
files are opened through host_tools.safeio (no symlink followed, regular files only, sizes
capped), so no card can crash or hang the verifier (SPEC §6.1).

Modules: records (the record model), safeio (opening store files), verify_logs (reading
logs), verify (key, records, chain), verify_head (the signed head), workflow (SPEC §10
facts, shared with the report), verify_media (segments and m/), verify_report (Report and
its text). The rules for what the format leaves open are SPEC §6.1.

Incremental verification (the station, after an earlier offload)::

    verify_store(view, key, trusted=(seq, record_hash))

The prefix up to ``seq`` was verified before and is anchored by the station: the store must
hold a record with exactly that hash at that seq; records up to it are checked by their
hash chain only (no signature check), and segments closed at or before it whose media has
its signed length are not re-hashed (their chunk marks are ``T`` and the segment says
"verified before, not re-hashed"; the verdict is unaffected). The cost of the 50th
offload then grows with what it brings, not with the device's history.

What is checked, in order:

1. ``rec/*.log`` in numeric order, each a concatenation of tagged COSE_Sign1 items. An
   unfinished item at the end of a log file (a prefix of ``d2 84 …`` cut short, or only
   zero bytes) is a *torn tail* (OK_WITH_MISSING_INFO). Anything else that is not a record
   is NOT_OK, named by file and byte offset.
2. Each record: structure (SPEC §2.2, schema.cddl; deterministic CBOR), kid == device id,
   the Ed25519 signature with the device key (the pinned key, or else the key of the first
   BOOT record that verifies under its own key: origin then not checked), every BOOT
   carries the device key, one device id.
3. The chain: seq 0, 1, 2, … in file order, ``prev`` == H(record seq-1), no duplicates or
   forks.
4. The signed head (head.cbor, or head.new): its ``last`` verifies and is byte-identical
   to the chain's record with that seq; the chain does not end before it.
5. Each segment (REC_START and its CHECKPOINT / SEGMENT / RECOVERY records): chunk hashes
   recomputed from the media, the chunk chain root compared with every signed manifest,
   the (untrusted) ``.idx`` used to pinpoint damaged chunks, per-chunk marks. Every file
   in m/ must belong to a segment of the chain: media beyond the chain's end is NOT_OK
   ("records removed"), any other unsigned file is NOT_OK, named.
6. The officer workflow (SPEC §10): every ``refers`` names an earlier record of the right
   type (VOICE_ANNOTATION / ANNOTATION_MISSING: an INTERRUPTION; a power-loss INTERRUPTION:
   a RECOVERY), every ``span`` / ``at`` lies in a segment that exists and within its signed
   length, ``unit`` only with an officer, MARK kinds, SELF_CHECK and TIME_SET consistency,
   and every RELEASE is of a closed segment that an earlier RECEIPT covers. A validly
   released segment whose media is gone has chunk marks ``X`` (OK_WITH_MISSING_INFO); if
   its media is still there it is verified as usual.
"""

from __future__ import annotations

import bisect
import os
import sys

from . import keys as _keys
from . import records as R
from . import safeio
from .records import K
from .records import (BOOT, CHECKPOINT, KEY_NAMES, MARK_KINDS, REC_START, REC_STOP,
                      RECOVERY, SEGMENT, STORE_ALERT, TYPE_NAMES, ZERO)
from .verify_head import check_head
from .verify_logs import LOG_RE, list_logs, log_first_seq, read_log
from .verify_media import SegJob, check_media_dir
from .verify_report import (EXIT_CODES, NOT_OK, NOT_SIGNED, OK, OK_WITH_MISSING_INFO,
                            VERDICTS, RecordRow, Report, SegmentRow)
from .workflow import check_workflow, record_info

__all__ = ["verify_store", "Report", "RecordRow", "SegmentRow", "OK", "OK_WITH_MISSING_INFO",
           "NOT_OK", "NOT_SIGNED", "VERDICTS", "EXIT_CODES", "TYPE_NAMES", "KEY_NAMES",
           "MARK_KINDS", "LOG_RE"]

_PROGRESS_AUTO_BYTES = 32 << 20
#: what a recorder writes at the root of a store; anything else is noted, not read
_ROOT_NAMES = ("head.cbor", "head.new", "rec", "m")


# --- the verifier ---------------------------------------------------------------

class _Verifier:
    def __init__(self, root, pinned, progress, trusted=None):
        self.root = root
        self.rep = Report(store=root)
        self.pinned = pinned
        self.progress = progress
        self.anchor = trusted         # (seq, hash) of a prefix verified before, or None
        self.fail = []      # (first-failure dict) in order
        self.info = []      # OK_WITH_MISSING_INFO reasons
        self.unsigned = []  # NOT_SIGNED reasons
        self.released = {}
        self.disposed = {}  # segment -> text: disposed with approval (an archive's view)

    def _failure(self, reason, seq=None, file=None, offset=None, **extra):
        d = {"seq": seq, "file": file, "offset": offset, "reason": reason}
        d.update(extra)
        self.fail.append(d)

    # main ---------------------------------------------------------------------
    def run(self) -> Report:
        rep = self.rep
        recs, events = [], []
        try:
            logs, other = list_logs(self.root)
        except OSError as e:            # rec/ itself a symlink, a file, unreadable
            logs, other = [], []
            self._failure(str(e) if isinstance(e, safeio.StoreFileError) else
                          "rec/ cannot be read (%s)" % (e.strerror or e), None, "rec")
        rep.log_files = logs
        self._root_entries(other)
        for rel in logs:
            n_before = len(recs)
            read_log(self.root, rel, recs, events,
                     trusted_upto=-1 if self.anchor is None else self.anchor[0])
            if len(recs) > n_before and recs[n_before].seq is not None:
                want = log_first_seq(rel)
                if recs[n_before].seq != want:
                    rep.notes.append("%s starts with seq %d (its name says %d)"
                                     % (rel, recs[n_before].seq, want))
        self.recs = recs
        self._key()
        if self.anchor is not None and not self._check_trusted():
            recs, events = [], []       # nothing is trusted: read every record in full
            for rel in logs:
                read_log(self.root, rel, recs, events)
            self.recs = recs
        self._records()
        self._chain()
        for msg, rel in self.rec_other:       # unsigned files in rec/
            if rep.record_count:
                self._failure(msg, None, rel)
            else:
                self.unsigned.append(msg)
        self._links()
        check_workflow(self)
        self._rows(events)
        check_head(self)
        self._segments()
        self._finish()
        return rep

    def _root_entries(self, rec_other):
        """rec/ holds only log files; the root only head files, rec/ and m/ (others noted:
        a card reader may add its own files at the root)."""
        self.rec_other = [
            ("%s in rec/ is not a record log (%s): a recorder writes nothing else there"
             % (R.printable(rel), "a regular file" if kind == "file" else "a " + kind), rel)
            for rel, kind in rec_other]
        try:
            with os.scandir(self.root) as it:
                top = [e.name for _, e in zip(range(10_000), it)]
        except OSError:
            top = []
        extra = sorted(n for n in top if n not in _ROOT_NAMES)
        if extra:
            self.rep.notes.append("files at the store root that a recorder does not write "
                                  "(not verified): " + ", ".join(R.printable(n)
                                                                 for n in extra[:20]))

    # key ----------------------------------------------------------------------
    def _key(self):
        rep = self.rep
        self.pubraw = None
        boot_key, weak = None, None
        for r in self.recs:
            if r.fatal is None and r.type == BOOT and R.is_hash(r.body.get(K.PUBKEY)):
                try:
                    ok = R.check_signature(r.body[K.PUBKEY], r)
                except _keys.WeakKeyError as e:
                    weak = weak or (r, e)
                    continue
                if ok:
                    boot_key = r.body[K.PUBKEY]
                    break
        self.boot_key = boot_key
        if self.pinned is not None:
            self.pubraw = self.pinned
            rep.origin_checked = True
            if boot_key is not None and boot_key != self.pinned:
                self._failure("the store's device key (fingerprint %s, from its BOOT record) is "
                              "not the pinned key (fingerprint %s)"
                              % (_keys.fingerprint(boot_key), _keys.fingerprint(self.pinned)))
        elif boot_key is not None:
            self.pubraw = boot_key
        if self.pubraw is not None:
            rep.fingerprint = _keys.fingerprint(self.pubraw)
            if not rep.origin_checked:
                self.info.append("origin not checked: no pinned key; device key fingerprint %s"
                                 % rep.fingerprint)
        elif weak is not None:
            r, e = weak
            rep.fingerprint = _keys.fingerprint(r.body[K.PUBKEY])
            self._failure("the device key in BOOT seq %d (fingerprint %s) is refused: %s"
                          % (r.seq, rep.fingerprint, e), r.seq, r.file, r.offset)
        elif self.recs:
            self._failure("no device key: no key was pinned and no BOOT record verifies "
                          "with its own public key")

    def _check_trusted(self):
        """The trusted record must stand in the store with exactly its hash; otherwise (False)
        the whole store is verified as if nothing were trusted."""
        T, h = self.anchor
        t = next((r for r in self.recs if r.fatal is None and r.seq == T), None)
        if t is None:
            self._failure("the trusted record seq %d (verified at an earlier offload) is "
                          "not in the store: records were removed" % T, T)
        elif t.hash != h:
            self._failure("seq %d differs from the record verified at an earlier offload "
                          "(its hash is not the trusted one): the chain was rewritten"
                          % T, T, t.file, t.offset)
        else:
            return True
        self.anchor = None
        return False

    # per record -----------------------------------------------------------------
    def _records(self):
        device = None
        for r in self.recs:
            if r.fatal is None and r.type == BOOT and self.pubraw is not None \
                    and r.body.get(K.PUBKEY) == self.pubraw:
                device = r.body[K.DEVICE]
                break
        T = self.anchor[0] if self.anchor is not None else -1
        for r in self.recs:
            if r.fatal is not None:
                continue
            if device is None:
                device = r.body[K.DEVICE]
            errs = []
            if self.pubraw is None:
                errs.append("signature cannot be checked: no device key")
            elif r.seq <= T:
                r.sig_ok = True          # bound by the hash chain to the trusted record
            elif R.check_signature(self.pubraw, r):
                r.sig_ok = True
            else:
                errs.append("signature does not verify with the device key")
            if r.kid != r.body[K.DEVICE].encode():
                errs.append("kid %s does not match the device id %s in the body"
                            % (R.printable(repr(r.kid)), R.printable(repr(r.body[K.DEVICE]))))
            if r.body[K.DEVICE] != device:
                errs.append("record from another device %s (store device %s)"
                            % (R.printable(repr(r.body[K.DEVICE])), R.printable(repr(device))))
            if r.type == BOOT and R.is_hash(r.body.get(K.PUBKEY)) and self.pubraw is not None \
                    and r.body[K.PUBKEY] != self.pubraw:
                errs.append("BOOT carries a different public key (fingerprint %s) than the "
                            "device key (fingerprint %s)"
                            % (_keys.fingerprint(r.body[K.PUBKEY]), self.rep.fingerprint))
            r.errors[:0] = errs
            if r.schema_ok:
                try:
                    r.info = record_info(r)
                except Exception:  # pragma: no cover - a summary must never stop the check
                    r.info = ""
        self.rep.device = device
    def _chain(self):
        chain = [r for r in self.recs if r.fatal is None]
        first = {}
        for i, r in enumerate(chain):
            first.setdefault(r.seq, i)
        self.first = {s: chain[i] for s, i in first.items()}
        seqs = sorted(first)
        prev_r = None
        for i, r in enumerate(chain):
            s = r.seq
            errs = []
            if first[s] != i:
                o = chain[first[s]]
                if o.data == r.data:
                    errs.append("duplicate of seq %d (first at %s)" % (s, o.where))
                else:
                    errs.append("fork: a second, different record with seq %d (first at %s)"
                                % (s, o.where))
            else:
                if prev_r is None:
                    if s != 0:
                        errs.append("the chain starts at seq %d: records before it are missing"
                                    % s)
                else:
                    e = prev_r.seq + 1
                    if s > e:
                        j = bisect.bisect_left(seqs, e)
                        present = seqs[j] if j < len(seqs) and seqs[j] < s else None
                        if present is not None:
                            errs.append("seq %d follows seq %d: out of order (seq %d stands "
                                        "elsewhere)" % (s, prev_r.seq, present))
                        elif r.type == STORE_ALERT and not r.errors \
                                and r.body[K.OLD][0] == s - 1:
                            errs.append("records removed: the recorder remembered head seq "
                                        "%d (STORE_ALERT seq %d), the card lost seqs %s" % (
                                            s - 1, s, "%d" % e if s - e == 1
                                            else "%d..%d" % (e, s - 1)))
                        else:
                            errs.append("seq %d follows seq %d: records missing (%s)" % (
                                s, prev_r.seq,
                                "seq %d" % e if s - e == 1 else "seq %d to %d" % (e, s - 1)))
                    elif s < e:
                        errs.append("seq %d follows seq %d: out of order" % (s, prev_r.seq))
                if s == 0:
                    if r.body[K.PREV] != ZERO:
                        errs.append("prev of seq 0 is not 32 zero bytes")
                elif (s - 1) in first:
                    if r.body[K.PREV] != self.first[s - 1].hash:
                        errs.append("prev does not match H(seq %d)" % (s - 1))
            r.errors.extend(errs)
            prev_r = r
        self.rep.chain_end = max(first) if first else None
        self.rep.record_count = len(chain)

        for r in chain:
            if r.type == STORE_ALERT and r.seq - 1 in first and not r.errors:
                self.rep.notes.append(
                    "STORE_ALERT seq %d: at boot the card's head had gone back (%s) from the "
                    "head the recorder remembered (seq %d); the records in between are in "
                    "this store" % (r.seq, "kind " + R.printable(r.body[K.KIND]), r.body[K.OLD][0]))
            elif r.type == R.FIRMWARE and not r.errors:
                self.rep.notes.append(R.firmware_text(r))

    # rows ---------------------------------------------------------------------
    def _rows(self, events):
        rep = self.rep
        torn_at = {}
        for kind, rel, pos, msg in events:
            torn_at.setdefault(rel, []).append((kind, pos, msg))
        rows = []
        by_file = {}
        for r in self.recs:
            by_file.setdefault(r.file, []).append(r)
        for rel in rep.log_files:
            for r in by_file.get(rel, []):
                if r.fatal is not None:
                    row = RecordRow(None, None, r.file, r.offset, NOT_OK, r.fatal)
                    self._failure("%s: %s" % (r.where, r.fatal), None, r.file, r.offset)
                elif r.errors:
                    row = RecordRow(r.seq, r.tname, r.file, r.offset, NOT_OK,
                                    "; ".join(r.errors))
                    self._failure("seq %d (%s, %s): %s" % (r.seq, r.where, r.tname,
                                                           "; ".join(r.errors)),
                                  r.seq, r.file, r.offset)
                else:
                    row = RecordRow(r.seq, r.tname, r.file, r.offset, OK)
                row.info = r.info or ""
                r.row = row
                rows.append(row)
            for kind, pos, msg in torn_at.get(rel, []):
                if kind == "torn":
                    rows.append(RecordRow(None, "TORN_TAIL", rel, pos, OK_WITH_MISSING_INFO, msg))
                    self.info.append(msg)
                else:
                    rows.append(RecordRow(None, None, rel, pos, NOT_OK, msg))
                    self._failure(msg, None, rel, pos)
        rep.records = rows

    def _links(self):
        """Group the trusted records (valid signature and body, first of their seq) by
        segment; a record naming a segment that has no REC_START is NOT_OK."""
        trusted = [r for r in self.recs if r.fatal is None and r.sig_ok and r.schema_ok
                   and self.first.get(r.seq) is r]
        starts = {r.seq: r for r in trusted if r.type == REC_START}
        members = {s: [] for s in starts}
        for r in starts.values():
            if r.body[K.SEGMENT] != r.seq:
                r.errors.append("REC_START segment field %d is not its own seq" % r.body[K.SEGMENT])
        for r in trusted:
            if r.type in (CHECKPOINT, SEGMENT, RECOVERY, REC_STOP):
                s = r.body[K.SEGMENT]
                if s in starts and s < r.seq:
                    if r.type != REC_STOP:
                        members[s].append(r)
                    continue
                o = self.first.get(s)
                if o is not None and o.type == REC_START and not (o.sig_ok and o.schema_ok):
                    continue  # its REC_START is already reported as NOT_OK
                r.errors.append("refers to segment %d, which has no REC_START record before "
                                "it" % s)
        self.starts, self.members, self.trusted = starts, members, trusted

    # officer workflow (SPEC §10) ---------------------------------------------------
    def _segments(self):
        rep = self.rep
        starts, members = self.starts, self.members
        self._total = 0
        jobs = []
        for s in sorted(starts):
            job = SegJob(self, starts[s], sorted(members[s], key=lambda r: r.seq))
            jobs.append(job)
            self._total += job.to_hash
        bar = self._bar(self._total)
        try:
            for job in jobs:
                rep.segments.append(job.run(bar))
        finally:
            if bar is not None:
                bar.close()
            for job in jobs:
                if job.f is not None:
                    job.f.close()
        try:
            check_media_dir(self, jobs)
        except OSError as e:            # m/ a symlink, a file, unreadable
            msg = str(e) if isinstance(e, safeio.StoreFileError) else \
                "m/ cannot be read (%s)" % (e.strerror or e)
            if rep.record_count:
                self._failure(msg, None, "m")
            else:
                self.unsigned.append(msg)

    def _bar(self, total):
        show = self.progress
        if show is None:
            show = total >= _PROGRESS_AUTO_BYTES and sys.stderr.isatty()
        if not show or total <= 0:
            return None
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            return None
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc="hashing media", file=sys.stderr, leave=False)

    # overall --------------------------------------------------------------------
    def _key_mismatch(self):
        """The pinned key verifies none of the records: one reason that says so (which
        key, which device, what to do) instead of one failure per record, head and media
        file (each row keeps its own reason). None when some record verifies with it."""
        if self.pinned is None or self.anchor is not None:
            return None
        chain = [r for r in self.recs if r.fatal is None]
        if not chain or any(r.sig_ok for r in chain):
            return None
        rep = self.rep
        rep.key_mismatch = True
        src = self.pinned_name
        device = R.printable(rep.device or "?")
        msg = "the key does not match the records: the pinned key %s(fingerprint %s) " \
              "verifies none of the %d records" % ("%s " % R.printable(src) if src else "",
                                                   rep.fingerprint, len(chain))
        if self.boot_key is not None:
            rep.store_key_fingerprint = _keys.fingerprint(self.boot_key)
            msg += "; they say they are from device %s and are signed by the key in their " \
                   "BOOT record (fingerprint %s), which is not the pinned key" \
                   % (device, rep.store_key_fingerprint)
        else:
            msg += "; they say they are from device %s" % device
        msg += ". What to do: compare the fingerprints with the key the station " \
               "registered for %s (`sealcam verify ARCHIVE` uses it): if the pinned key is " \
               "the registered one, these records are not that recorder's; if not, verify " \
               "again with the registered key. Nothing else was checked" % device
        return {"seq": None, "file": None, "offset": None, "reason": msg,
                "key_mismatch": True}

    def _finish(self):
        rep = self.rep
        mismatch = self._key_mismatch()
        if mismatch is not None:
            # every other failure, note of missing info or unsigned file follows from it
            self.fail, self.info, self.unsigned = [mismatch], [], []
        reasons, seen = [], set()
        nrec = 0
        for f in self.fail:
            if f["seq"] is not None and f["file"] and f["file"].startswith("rec/"):
                nrec += 1
                if nrec > 20:
                    continue
            if f["reason"] not in seen:
                seen.add(f["reason"])
                reasons.append(f["reason"])
        if nrec > 20:
            reasons.append("… and %d more records are NOT_OK" % (nrec - 20))
        if len(reasons) > 100:
            reasons = reasons[:100] + ["… and %d more failures" % (len(reasons) - 100)]
        reasons += self.unsigned[:100] + self.info[:100]
        rep.reasons = reasons
        rep.first_failure = self.fail[0] if self.fail else None
        if self.fail:
            rep.verdict = NOT_OK
        elif rep.record_count == 0:
            rep.verdict = NOT_SIGNED
            if not self.unsigned:
                rep.reasons.insert(0, "no signed records in the store")
        elif self.unsigned:
            rep.verdict = NOT_SIGNED
        elif self.info:
            rep.verdict = OK_WITH_MISSING_INFO
        else:
            rep.verdict = OK

        # the verified prefix: records 0..n, each OK, in one unbroken chain
        n, verified = -1, {}
        ok_recs = {r.seq: r for r in self.recs
                   if r.fatal is None and r.row is not None and r.row.verdict == OK
                   and self.first.get(r.seq) is r}
        while n + 1 in ok_recs:
            n += 1
            verified[n] = ok_recs[n].hash
        rep.verified_through = n if n >= 0 else None
        self.verified = verified


# --- entry point ----------------------------------------------------------------

def verify_store(path, pinned_key=None, *, progress: bool | None = None,
                 trusted=None, key_name=None, disposed=None, media_opener=None) -> Report:
    """Verify the store at ``path`` (a directory: the SD card's root, or an archive view).

    ``pinned_key``: None (origin not checked), the raw 32-byte public key, an
    Ed25519PublicKey, or the path of a key file (see host_tools.keys).
    ``progress``: None = a tqdm bar on stderr when stderr is a TTY and there are at least
    32 MiB of media to hash; True/False = always/never.
    ``trusted``: None, or (seq, H(record seq)) of a prefix verified before (see the module
    doc): records up to seq are checked by hash chain only, segments closed by then are not
    re-hashed.
    ``key_name``: what to call the pinned key in the output (e.g. the ``--key`` file);
    default: its path when ``pinned_key`` is one.
    ``disposed``: {segment: text} of an archive view's segments whose media the station
    log says were disposed with approval (SPEC §9.2): their records are verified, their
    absent media is not missing (chunk marks ``D``).
    ``media_opener``: (root, rel) -> (file, size) for an archive view whose media may be
    encrypted at rest (Archive.media_opener, SPEC §14.8); an OSError it raises with
    ``locked`` true (key not at hand) leaves the media unchecked (chunk marks ``E``,
    missing information), never damaged.

    The returned Report also carries ``verified`` ({seq: H(record)} of the verified prefix
    0..verified_through), not part of its JSON.

    Raises FileNotFoundError / NotADirectoryError if ``path`` is not a directory, and
    OSError / keys.KeyFileError (keys.WeakKeyError for a small-order or non-canonical key)
    for an unreadable or invalid key.
    """
    root = os.fspath(path)
    if not os.path.exists(root):
        raise FileNotFoundError("no such store: %s" % root)
    if not os.path.isdir(root):
        raise NotADirectoryError("not a directory: %s" % root)
    pinned = None
    if pinned_key is not None:
        if isinstance(pinned_key, (bytes, bytearray, memoryview)):
            pinned = bytes(pinned_key)
            pinned = _keys.check_public_key(pinned) if len(pinned) == 32 \
                else _keys.parse_public_key(pinned)
        elif isinstance(pinned_key, (str, os.PathLike)):
            pinned = _keys.load_public_key(pinned_key)
        else:
            pinned = _keys.check_public_key(_keys._raw(pinned_key))
    if trusted is not None:
        seq, h = trusted
        if not (type(seq) is int and seq >= 0 and isinstance(h, bytes) and len(h) == 32):
            raise ValueError("trusted must be (seq, 32-byte record hash), got %r" % (trusted,))
        trusted = (seq, bytes(h))
    v = _Verifier(root, pinned, progress, trusted)
    v.disposed = dict(disposed or {})
    v.media_opener = media_opener
    if key_name is None and isinstance(pinned_key, (str, os.PathLike)):
        key_name = os.fspath(pinned_key)
    v.pinned_name = key_name
    rep = v.run()
    rep.verified = v.verified
    return rep
