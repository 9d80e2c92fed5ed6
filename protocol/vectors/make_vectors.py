"""Regenerate the store vectors: python protocol/vectors/make_vectors.py [OUTDIR]

Runs the real firmware (CPython runtime) on the virtual recorder with a fixed seed, so the
device key, the clock and the media are the same every time and so are the bytes. Then
derives tampered copies. expected.json lists each store's verdict, the first failing
record and a word its reason must contain ("pinned_key": false: verified without the
device key, as a clerk without --key would). tests/test_vectors.py regenerates into a temp
folder, compares byte for byte with the committed copy, and verifies every store.
"""
import hashlib
import io
import json
import os
import shutil
import sys

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sim.hal import simdevice
from sim.hal.powerfs import PowerCut
from sim.hal.simclock import SimClock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SEED = 2026          # the fixed test key: seeded_random(SEED) in sim/hal/simdevice.py
DEVICE = "SC-VECTOR01"
SETTINGS = {"chunk": 2048, "checkpoint_s": 2, "segment_s": 5, "tick_ms": 500}
HAL_ARGS = {"bitrate": 16000, "fps": 2, "seed": SEED, "device_id": DEVICE}
SHIFT = [["start"], ["run", 7], ["stop"], ["refuse", "delete", "m/00000002.mkv"],
         ["start"], ["run", 3], ["stop"]]


# the officer's shift (SPEC §10): check-out, pre-record, a notice, marks, an interruption
# the officer explains aloud, one left unexplained past annotation_s, a drifting clock
# measured at check-in, a receipt
WORKFLOW_SETTINGS = dict(SETTINGS, prerecord_s=2, annotation_s=10)
WORKFLOW = [
    ["dock", {"time": "true", "assign": ["PC-0042", "Traffic 2"], "check": True}],
    ["run", 3], ["press", "record"], ["run", 3],
    ["press", "notice"], ["press", "mark"], ["hold", "mark", 2],
    ["hold", "record", 2], ["press", "record"],          # interrupted: weather
    ["run", 2], ["press", "record"], ["run", 1],          # resumed: the officer is prompted
    ["hold", "voice", 2], ["run", 2],                     # ... and explains
    ["hold", "record", 2], ["press", "mark"], ["press", "record"],   # place_change
    ["run", 1], ["press", "record"], ["run", 12],         # resumed, nothing said
    ["press", "record"], ["run", 3600],                   # the shift ends; an hour passes
    ["dock", {"receipt": True, "time": "true", "assign": None, "check": True}],
]
# a full card: media a receipt covers is released, oldest first
RELEASE_SETTINGS = dict(SETTINGS, prerecord_s=0, low_water=200000)
RELEASE = [["start"], ["run", 4], ["stop"], ["start"], ["run", 4], ["stop"],
           ["dock", {"receipt": True}], ["start"], ["run", 6], ["stop"]]


# a firmware manifest of fixed content (SPEC §13.1) for the workflow store: its recorder
# was "flashed" (these four files of fixed content put in its flash, fw.cbor naming them),
# so its FIRMWARE record names a firmware id, version and file count (the other stores'
# recorders have none: FIRMWARE "unmanaged")
FW_FILES = {n: ("sealcam vector file %s\n" % n).encode()
            for n in ("boot.py", "main.py", "board.mpy", "store.mpy")}
MANIFEST = cbor2.dumps({1: "0.1.0", 2: 1795000000000, 4: "virtual", 3: {
    "/flash/" + n: hashlib.sha256(b).digest() for n, b in FW_FILES.items()}}, canonical=True)


def _record(root, steps, cut_after=None, officer="PC-0042", settings=SETTINGS, manifest=None,
            **hal):
    sd, flash = os.path.join(root, "sd"), os.path.join(root, "flash")
    os.makedirs(sd)
    os.makedirs(flash)
    if manifest is not None:
        with open(os.path.join(flash, "fw.cbor"), "wb") as f:
            f.write(manifest)
        for n, b in FW_FILES.items():
            with open(os.path.join(flash, n), "wb") as f:
                f.write(b)
    h = simdevice.make_hal(sd, flash, **dict(HAL_ARGS, **hal))
    if cut_after is not None:
        h.sd.cut_at = cut_after
    try:
        summary = simdevice.run_steps(h, steps, settings, officer)
    except PowerCut:
        summary = None
    return sd, flash, summary


def _records(log):
    """[(offset, end)] of the records in a log file."""
    data = open(log, "rb").read()
    buf, out = io.BytesIO(data), []
    while buf.tell() < len(data):
        start = buf.tell()
        cbor2.CBORDecoder(buf).decode()
        out.append((start, buf.tell()))
    return data, out


def _only_log(sd):
    logs = sorted(os.listdir(os.path.join(sd, "rec")))
    return os.path.join(sd, "rec", logs[0])


def build(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tmp = os.path.join(out, ".work")
    expected = {}

    sd, flash, summary = _record(os.path.join(tmp, "ok"), SHIFT)
    with open(os.path.join(out, "device.pub"), "w") as f:
        f.write(summary["pubkey"] + "\n")

    def variant(name, verdict, seq=None, word=None, src=sd):
        dst = os.path.join(out, name)
        shutil.copytree(src, dst)
        expected[name] = {"verdict": verdict, "first_failure_seq": seq, "reason_contains": word}
        return dst

    variant("ok", "OK")
    log = _only_log(sd)
    data, spans = _records(log)
    rel = os.path.relpath(log, sd)

    # 1. one byte of media flipped (segment 2, chunk 1: seq 1 is the FIRMWARE record)
    d = variant("media-flip", "NOT_OK", 2, "chunk")
    media = os.path.join(d, "m", "00000002.mkv")
    b = bytearray(open(media, "rb").read())
    b[2048 + 100] ^= 0x01
    open(media, "wb").write(bytes(b))

    # 2. one byte flipped inside a record's payload (seq 3: its signature breaks)
    d = variant("record-flip", "NOT_OK", 3, "signature")
    b = bytearray(data)
    s, e = spans[3]
    b[e - 70] ^= 0x01   # inside the payload, before the 64-byte signature
    open(os.path.join(d, rel), "wb").write(bytes(b))

    # 3. a record deleted in the middle (seq 4)
    d = variant("gap", "NOT_OK", 5, "missing")
    open(os.path.join(d, rel), "wb").write(data[:spans[4][0]] + data[spans[4][1]:])

    # 4. the newest two records deleted (the head still names the last one)
    d = variant("truncated", "NOT_OK", None, "head")
    open(os.path.join(d, rel), "wb").write(data[:spans[-2][0]])

    # 5. two records swapped (seq 5 and 6)
    d = variant("reordered", "NOT_OK", 6, "seq")
    open(os.path.join(d, rel), "wb").write(
        data[:spans[5][0]] + data[spans[6][0]:spans[6][1]] + data[spans[5][0]:spans[5][1]] + data[spans[6][1]:])

    # 6. a record replaced by the same body signed with another key
    d = variant("foreign-key", "NOT_OK", 4, "signature")
    other = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not the device").digest())
    prot, unprot, payload, _ = cbor2.loads(data[spans[4][0]:spans[4][1]]).value
    sig = other.sign(cbor2.dumps(["Signature1", prot, b"", payload]))
    forged = cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]), canonical=True)
    open(os.path.join(d, rel), "wb").write(data[:spans[4][0]] + forged + data[spans[4][1]:])

    # 7. power cut mid-segment, left as it was (open segment, unsigned tail)
    cut_sd, _, _ = _record(os.path.join(tmp, "cut"), SHIFT, cut_after=57)
    variant("open-after-cut", "OK_WITH_MISSING_INFO", None, "open", src=cut_sd)

    # 8. the same, rebooted: recovery sealed the segment
    rb_root = os.path.join(tmp, "cut")
    later = SimClock(rtc_ms=SimClock().rtc_ms() + 3600000)   # booted an hour later
    h = simdevice.make_hal(os.path.join(rb_root, "sd"), os.path.join(rb_root, "flash"), clock=later,
                           **HAL_ARGS)
    simdevice.run_steps(h, [], SETTINGS, "PC-0042")
    variant("recovered", "OK_WITH_MISSING_INFO", None, "recover", src=os.path.join(rb_root, "sd"))

    # 9. the officer's shift (SPEC §10)
    wf_sd, _, _ = _record(os.path.join(tmp, "wf"), WORKFLOW, officer=None,
                          settings=WORKFLOW_SETTINGS, drift_ppm=100, manifest=MANIFEST)
    variant("workflow", "OK", src=wf_sd)

    # the officer's statement of the workflow shift as a clip (SPEC §12)
    build_clip(wf_sd, os.path.join(out, "clip"))
    # one clerk event of each type and a disposal, as the station logs them (SPEC §14)
    from catalogue_vectors import build_catalogue
    build_catalogue(os.path.join(out, "catalogue"))

    # 10. media released against a custody receipt (SPEC §10.8)
    rl_sd, _, _ = _record(os.path.join(tmp, "rl"), RELEASE, settings=RELEASE_SETTINGS,
                          capacity=300000, bitrate=64000)
    variant("released", "OK_WITH_MISSING_INFO", None, "released", src=rl_sd)

    # 11. the newest records cut from the last REC_START on, and the head of the record
    #     before put back: the media of the cut segment is left, beyond the chain
    starts = [i for i, (a, e) in enumerate(spans)
              if cbor2.loads(cbor2.loads(data[a:e]).value[2])[0] == 2]
    cut = starts[-1]
    d = variant("media-beyond-head", "NOT_OK", None, "records removed")
    open(os.path.join(d, rel), "wb").write(data[:spans[cut][0]])
    head = cbor2.loads(open(os.path.join(sd, "head.cbor"), "rb").read())
    head = {1: head[1], 2: spans[cut][0], 3: data[spans[cut - 1][0]:spans[cut - 1][1]]}
    open(os.path.join(d, "head.cbor"), "wb").write(cbor2.dumps(head, canonical=True))

    # 12. a planted file no record signs
    d = variant("unsigned-file", "NOT_OK", None, "not covered by any signed record")
    open(os.path.join(d, "m", "00000002.mp4"), "wb").write(b"planted\n")

    # 13. the whole chain "signed" under a small-order key (the identity point): every
    #     signature is the same 64 bytes, no secret needed; OpenSSL would accept them all.
    #     Verified without a pinned key (the key the store itself names).
    d = variant("small-order-key", "NOT_OK", 0, "small order")
    expected["small-order-key"]["pinned_key"] = False
    ident = b"\x01" + bytes(31)
    const_sig = ident + bytes(32)
    prev, out_log = bytes(32), b""
    for a, e in spans:
        prot, _, payload, _ = cbor2.loads(data[a:e]).value
        body = cbor2.loads(payload)
        body[2] = prev
        if body[0] == 1:
            body[18] = ident
        rec = cbor2.dumps(cbor2.CBORTag(18, [prot, {}, cbor2.dumps(body, canonical=True),
                                             const_sig]), canonical=True)
        out_log += rec
        prev = hashlib.sha256(rec).digest()
    open(os.path.join(d, rel), "wb").write(out_log)
    head = cbor2.loads(open(os.path.join(sd, "head.cbor"), "rb").read())
    head[3] = rec
    open(os.path.join(d, "head.cbor"), "wb").write(cbor2.dumps(head, canonical=True))

    shutil.rmtree(tmp)
    # the first records of the clean store, layer by layer, for implementers
    rows = []
    for s, e in spans[:3]:
        raw = data[s:e]
        prot, _, payload, sig = cbor2.loads(raw).value
        rows.append({"seq": cbor2.loads(payload)[1], "record": raw.hex(),
                     "sha256": hashlib.sha256(raw).hexdigest(), "protected": prot.hex(),
                     "payload": payload.hex(), "body": repr(cbor2.loads(payload)),
                     "sig_structure": cbor2.dumps(["Signature1", prot, b"", payload]).hex(),
                     "signature": sig.hex()})
    with open(os.path.join(out, "records.json"), "w") as f:
        json.dump({"device_public_key": summary["pubkey"], "records": rows}, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    return expected


# --- a clip (SPEC §12) -------------------------------------------------------------------
# The station side of a clip, made without an archive so that every byte is fixed: a
# station log of two entries (the device registered, its records stored) at fixed times,
# signed with a fixed station key under a fixed archive id.
STATION_SEED = bytes(range(32, 64))
ARCHIVE_ID = "0123456789abcdef0123456789abcdef"
LOG_AT = "2026-11-30T09:00:00.000+00:00"


class _StoreSource:
    """What host_tools.clipcut cuts from (see its docstring): a card store and a log."""

    def __init__(self, sd):
        from host_tools import records as R
        from host_tools.tlog import events, log as tlog, merkle, note
        self.sd = sd
        self.recs = {}
        for name in sorted(os.listdir(os.path.join(sd, "rec"))):
            data, spans = _records(os.path.join(sd, "rec", name))
            for a, e in spans:
                rec = R.parse(data[a:e])
                self.recs[rec.seq] = rec
        boot = next(r for r in self.recs.values() if r.type == R.BOOT)
        self.device, self.key = boot.body[R.K.DEVICE], boot.body[R.K.PUBKEY]
        sk = Ed25519PrivateKey.from_private_bytes(STATION_SEED)
        self.station = sk.public_key().public_bytes_raw()
        self.origin = tlog.origin_for(ARCHIVE_ID)
        self.entries = [tlog.encode_entry(events.register(LOG_AT, self.device, self.key)),
                        tlog.encode_entry(events.records(
                            LOG_AT, self.device, None,
                            [[r.seq, r.hash, r.type] for _, r in sorted(self.recs.items())]))]
        self.leaves = [merkle.leaf_hash(e) for e in self.entries]
        self.note = note.sign_note(note.checkpoint_text(self.origin, len(self.leaves),
                                                        merkle.root(self.leaves)),
                                   self.origin, sk)

    def open_media(self, rel):
        f = open(os.path.join(self.sd, rel), "rb")
        return f, os.fstat(f.fileno()).st_size

    def index(self, rel, n):
        return open(os.path.join(self.sd, rel), "rb").read()[:32 * n]

    def log_part(self, recs):
        from host_tools.tlog import merkle
        return {"origin": self.origin, "station": self.station, "checkpoint": self.note,
                "entries": [[1, self.entries[1], merkle.inclusion_proof(self.leaves, 1)]]}


def build_clip(sd, out):
    """clip/statement.mkv (+ .prov) of the workflow store's VOICE_ANNOTATION, and the
    station key that signed the provenance's checkpoint (clip/station.pub)."""
    from host_tools import clip, clipcut, records as R
    os.makedirs(out)
    src = _StoreSource(sd)
    (voice,) = [r.seq for r in src.recs.values() if r.type == R.VOICE_ANNOTATION]
    [(seg, b1, b2, asked, subject)] = clip._annotation_cuts(src, voice)
    seqs = sorted(r.seq for r in subject)
    clipcut.cut(seg, b1, b2, asked, {"kind": "annotation", "seqs": seqs, "from": None,
                                     "to": None}, subject, os.path.join(out, "statement.mkv"))
    with open(os.path.join(out, "station.pub"), "w") as f:
        f.write(src.station.hex() + "\n")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "stores")
    exp = build(out)
    print("wrote %d stores to %s" % (len(exp), out))
