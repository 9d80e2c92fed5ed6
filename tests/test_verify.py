"""The offline verifier (host_tools/verify.py) and the `sealcam` CLI, on stores built by the
independent reference writer (tests/refwriter.py): verdicts, first failures, chunk marks,
key files, exit codes, JSON and text output."""
import hashlib
import json
import os
import shutil
import sys
import types

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization

from host_tools import keys
from host_tools.cli import main
from host_tools.verify import (NOT_OK, NOT_SIGNED, OK, OK_WITH_MISSING_INFO, Report,
                               verify_store)

HERE = os.path.dirname(os.path.abspath(__file__))
import refwriter as rw  # noqa: E402

LOG0 = "rec/00000000.log"
MEDIA = "m/00000002.mkv"     # session(): BOOT 0, REFUSAL 1, REC_START 2, …
IDX = "m/00000002.idx"
C = 4096                      # refwriter's default chunk size


# --- helpers ------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    """BOOT, REFUSAL, REC_START(2), CHECKPOINT 3..5, SEGMENT 6, REC_STOP 7; media 30400 B."""
    return rw.session(tmp_path / "sd")


def flip(path, offset, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def log_bytes(s, rel=LOG0):
    with open(s.path(rel), "rb") as f:
        return f.read()


def put(s, rel, data):
    with open(s.path(rel), "wb") as f:
        f.write(data)


def other_key():
    return rw.key_from_seed(hashlib.sha256(b"not the device").digest())


def check(rep, verdict, seq="any", file="any", words=()):
    assert rep.verdict == verdict, (rep.verdict, rep.reasons)
    if verdict == NOT_OK:
        ff = rep.first_failure
        assert ff is not None
        if seq != "any":
            assert ff["seq"] == seq, ff
        if file != "any":
            assert ff["file"] == file, ff
        for w in words:
            assert w in ff["reason"], (w, ff)
    else:
        assert rep.first_failure is None, rep.first_failure
        text = " ".join(rep.reasons)
        for w in words:
            assert w in text, (w, rep.reasons)


def seg(rep, n=2):
    return [s for s in rep.segments if s.segment == n][0]


# --- clean stores ---------------------------------------------------------------

def test_clean_store_ok_with_pinned_key(store):
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert rep.origin_checked and rep.reasons == []
    assert rep.fingerprint == keys.fingerprint(store.pubkey)
    assert rep.device == "SC-00A1B2C3"
    assert rep.head_seq == 7 and rep.head_file == "head.cbor" and rep.chain_end == 7
    assert rep.record_count == 8 and [r.verdict for r in rep.records] == [OK] * 8
    assert [r.type for r in rep.records][:3] == ["BOOT", "REFUSAL", "REC_START"]
    s = seg(rep)
    assert (s.media, s.length, s.file_size, s.chunks, s.closed_by, s.verdict, s.marks) == \
        (MEDIA, 30400, 30400, 8, "SEGMENT", OK, "........")


def test_clean_store_without_key_origin_not_checked(store):
    rep = verify_store(store.root)
    check(rep, OK_WITH_MISSING_INFO, words=["origin not checked", keys.fingerprint(store.pubkey)])
    assert not rep.origin_checked
    assert seg(rep).verdict == OK  # per segment: proven against the device key


def test_wrong_pinned_key(store):
    other = rw.raw_pub(other_key())
    rep = verify_store(store.root, other)
    check(rep, NOT_OK, words=["not the pinned key"])
    assert rep.fingerprint == keys.fingerprint(other)
    assert all(r.verdict == NOT_OK for r in rep.records)


def test_several_log_files_and_segments(tmp_path):
    s = rw.RefStore(tmp_path, log_limit=600)
    s.boot()
    for k in range(3):
        s.rec_start()
        for i in range(4):
            s.write(bytes([k, i]) * 3000)
            s.checkpoint()
        s.close()
        s.rec_stop()
    s.power_cut()
    s.boot("watchdog")
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK)
    assert len(rep.log_files) > 3 and len(rep.segments) == 3
    assert all(x.verdict == OK for x in rep.segments)


def test_no_officer_and_refusals(tmp_path):
    s = rw.RefStore(tmp_path, officer=None)
    s.boot()
    for op in ("delete", "truncate", "overwrite", "format", "write"):
        s.refusal(op, "store")
    check(verify_store(s.root, s.pubkey), OK)


def test_log_name_with_suffix_is_read_in_order(tmp_path):
    # the firmware names a new log NNNNNNNN_K.log when a torn file already holds the name
    s = rw.RefStore(tmp_path)
    s.boot()
    s.refusal()
    s.power_cut()
    # the next boot's new log got only the first bytes of its BOOT record
    torn = rw.sign_record(s.body(rw.BOOT, {17: "x", 18: s.pubkey}), s.key)[:20]
    put(s, "rec/00000002.log", torn)
    s.boot()
    s.refusal()
    assert s.log == "rec/00000002_1.log"
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["torn"])
    assert rep.log_files == [LOG0, "rec/00000002.log", "rec/00000002_1.log"]
    assert [r.seq for r in rep.records] == [0, 1, None, 2, 3]


# --- media tampering ---------------------------------------------------------------

def test_media_byte_flip_names_segment_and_chunk(store):
    flip(store.path(MEDIA), 2 * C + 100)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, file=MEDIA, words=["segment 2", "chunk 2", "bytes 8192-12287"])
    assert rep.first_failure["chunk"] == 2 and rep.first_failure["segment"] == 2
    assert rep.first_failure["record"] == 4      # the first checkpoint whose root breaks
    assert seg(rep).marks == "..M....." and seg(rep).verdict == NOT_OK


def test_media_flip_in_last_short_chunk(store):
    flip(store.path(MEDIA), 30399)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, words=["chunk 7"])
    assert rep.first_failure["record"] == 6       # the SEGMENT record
    assert seg(rep).marks == ".......M"


def test_idx_entry_changed(store):
    flip(store.path(IDX), 32 * 5 + 3)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, file=MEDIA, words=["index", "entry 5", "was changed"])
    assert seg(rep).marks == ".....M.."


def test_media_and_idx_both_changed_cannot_pinpoint(store):
    data = bytearray(open(store.path(MEDIA), "rb").read())
    data[5 * C] ^= 0xFF
    put(store, MEDIA, bytes(data))
    idx = bytearray(open(store.path(IDX), "rb").read())
    idx[32 * 5:32 * 6] = hashlib.sha256(bytes(data[5 * C:6 * C])).digest()
    put(store, IDX, bytes(idx))
    rep = verify_store(store.root, store.pubkey)
    # chunks 0-3 proven by checkpoint seq 4 (4 chunks); 4.. cannot be pinpointed
    check(rep, NOT_OK, seq=2, words=["cannot be pinpointed", "chunks 4-7"])
    assert seg(rep).marks == "....MMMM"


def test_media_longer_than_closed_manifest(store):
    with open(store.path(MEDIA), "ab") as f:
        f.write(b"appended")
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, file=MEDIA, words=["longer", "30408", "30400"])
    assert seg(rep).marks == "........"


def test_media_shorter_than_signed(store):
    with open(store.path(MEDIA), "r+b") as f:
        f.truncate(5 * C + 10)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, words=["shorter than signed"])
    assert seg(rep).marks == ".....---"


def test_media_missing(store):
    os.remove(store.path(MEDIA))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, file=MEDIA, words=["missing"])
    assert seg(rep).marks == "--------" and seg(rep).file_size is None


def test_idx_missing_is_only_a_note(store):
    os.remove(store.path(IDX))
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert any("index" in n and "missing" in n for n in rep.notes)


def test_media_flip_with_idx_missing_still_found(store):
    os.remove(store.path(IDX))
    flip(store.path(MEDIA), 4 * C)
    rep = verify_store(store.root, store.pubkey)
    # checkpoints seq 3 (2 chunks) and seq 4 (4 chunks) hold; 4..7 unproven
    check(rep, NOT_OK, seq=2, words=["cannot be pinpointed"])
    assert seg(rep).marks == "....MMMM"


# --- record tampering ----------------------------------------------------------------

def test_payload_byte_flip_bad_signature(store):
    r = store.by_seq(3)
    i = r.data.index(b"ref-1.0")             # the fw string inside the payload
    flip(store.path(LOG0), r.offset + i, 0x20)   # 'r' -> 'R': still valid, canonical CBOR
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=3, file=LOG0, words=["signature does not verify with the device key"])
    assert rep.first_failure["offset"] == r.offset
    assert "@%d" % r.offset in rep.reasons[0]
    bad = [x for x in rep.records if x.verdict == NOT_OK]
    assert [(x.seq, x.type) for x in bad] == [(3, "CHECKPOINT"), (4, "CHECKPOINT")]
    assert "prev does not match H(seq 3)" in bad[1].reason


def test_non_canonical_payload_reencoded_and_resigned_is_rejected(store):
    r = store.by_seq(3)
    body = rw.decode_record(r.data)
    prot = rw.enc({1: -8, 4: b"SC-00A1B2C3"})
    payload = b"\xbf" + b"".join(rw.enc(k) + rw.enc(v) for k, v in sorted(body.items())) + b"\xff"
    sig = store.key.sign(rw.enc(["Signature1", prot, b"", payload]))
    forged = rw.enc(cbor2.CBORTag(18, [prot, {}, payload, sig]))
    data = log_bytes(store)
    put(store, LOG0, data[:r.offset] + forged + data[r.offset + len(r.data):])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file=LOG0, words=["deterministic"])


def test_deleted_record_in_the_middle(store):
    r = store.by_seq(4)
    data = log_bytes(store)
    put(store, LOG0, data[:r.offset] + data[r.offset + len(r.data):])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=5, file=LOG0, words=["seq 5 follows seq 3", "records missing"])


def test_deleted_newest_records_found_with_the_head(store):
    r = store.by_seq(6)
    with open(store.path(LOG0), "r+b") as f:
        f.truncate(r.offset)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file="head.cbor",
          words=["records after seq 5 are missing", "says 7"])
    assert rep.first_failure["head_seq"] == 7


def test_reordered_records(store):
    a, b = store.by_seq(3), store.by_seq(4)
    data = log_bytes(store)
    put(store, LOG0, data[:a.offset] + b.data + a.data + data[b.offset + len(b.data):])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=4, file=LOG0, words=["seq 4 follows seq 2", "out of order"])
    reasons = {x.seq: x.reason for x in rep.records if x.verdict == NOT_OK}
    assert "seq 3 follows seq 4" in reasons[3]


def test_duplicated_record(store):
    r = store.by_seq(4)
    data = log_bytes(store)
    end = r.offset + len(r.data)
    put(store, LOG0, data[:end] + r.data + data[end:])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=4, file=LOG0, words=["duplicate of seq 4"])
    assert rep.first_failure["offset"] == end


def test_fork_two_records_with_one_seq(store):
    # a second, validly signed record with seq 4 (e.g. a device restored from a backup)
    r3 = store.by_seq(3)
    body = rw.decode_record(store.by_seq(4).data)
    body[4] += 1
    fork = rw.sign_record(body, store.key)
    data = log_bytes(store)
    end = store.by_seq(4).offset + len(store.by_seq(4).data)
    put(store, LOG0, data[:end] + fork + data[end:])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=4, words=["fork"])
    assert r3  # noqa


def test_inserted_record_signed_by_another_key(store):
    # seq 8 appended with the right chain link and device id, signed by another key
    body = store.body(rw.REFUSAL, {17: "x", 19: "delete", 20: "store", 21: "api"})
    rec = rw.sign_record(body, other_key())
    with open(store.path(LOG0), "ab") as f:
        off = f.tell()
        f.write(rec)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=8, file=LOG0, words=["signature does not verify with the device key"])
    assert rep.first_failure["offset"] == off


def test_inserted_record_from_another_device(store):
    # inserted in the middle, another kid and another key
    r = store.by_seq(4)
    body = rw.decode_record(r.data)
    body[3] = "SC-FFFFFFFF"
    rec = rw.sign_record(body, other_key())
    data = log_bytes(store)
    put(store, LOG0, data[:r.offset] + rec + data[r.offset:])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=4, file=LOG0, words=["signature does not verify"])
    assert "another device" in rep.first_failure["reason"]


def test_boot_with_another_public_key(store):
    s = store
    s.power_cut()
    s.boot_count += 1
    s._new_log()
    k = other_key()
    body = s.body(rw.BOOT, {17: "power_on", 18: rw.raw_pub(k)})
    s.append_raw(rw.sign_record(body, k), body[1], rw.BOOT)
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=8, words=["signature does not verify", "BOOT carries a different "
                                     "public key"])
    rep = verify_store(s.root)    # without a pinned key the first BOOT's key is used
    check(rep, NOT_OK, seq=8, words=["BOOT carries a different public key"])


def test_unknown_record_type(store):
    body = store.body(99, {17: "future"})
    store.append_raw(rw.sign_record(body, store.key), body[1], 99)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=8, words=["unknown record type 99"])
    assert rep.records[-1].type == "UNKNOWN(99)"


def test_receipt_and_time_set_records(store):
    """SPEC draft 2: RECEIPT (8) and TIME_SET (9) are known types with their own keys."""
    store.record(8, {24: "0123:4567:89ab:cdef:0123:4567:89ab:cdef", 25: 7,
                     26: bytes(32), 27: 1})
    store.record(9, {28: 1_700_000_000_000, 29: 1_700_000_100_000})
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert [r.type for r in rep.records[-2:]] == ["RECEIPT", "TIME_SET"]
    body = store.body(8, {24: "x", 25: 7, 27: 1})              # no receipt hash
    store.append_raw(rw.sign_record(body, store.key), body[1], 8)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=10, words=["RECEIPT body lacks key 26 (receipt)"])


def test_malformed_body_missing_key(store):
    body = store.body(rw.CHECKPOINT, {10: 2, 13: 0, 14: 0})      # no root
    store.append_raw(rw.sign_record(body, store.key), body[1], rw.CHECKPOINT)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=8, words=["lacks key 15 (root)"])


def test_checkpoint_naming_a_segment_that_never_started(store):
    store.record(rw.CHECKPOINT, {10: 5, 13: 0, 14: 0, 15: bytes(32)})
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=8, file=LOG0, words=["refers to segment 5", "no REC_START"])


def test_segment_closed_twice(store):
    body = rw.decode_record(store.by_seq(6).data)
    store.record(rw.SEGMENT, {k: body[k] for k in (10, 13, 14, 15, 16)})
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=2, file=MEDIA, words=["closed more than once"])
    assert rep.first_failure["record"] == 8


def test_recovery_claiming_more_signed_bytes_than_the_checkpoints(tmp_path):
    s = rw.session(tmp_path, close=False)
    sg = s.seg
    s.seg = None
    s.power_cut()
    s.boot_count += 1
    s._new_log()
    s.record(rw.RECOVERY, {10: 2, 13: sg.length, 14: -(-sg.length // C), 15: bytes(32),
                           16: list(sg.start), 17: "power loss", 22: sg.length, 9: 2})
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=2, words=["bytes were signed before the cut"])


def test_progress_bar_when_asked(store, capsys):
    verify_store(store.root, store.pubkey, progress=True)
    assert "hashing media" in capsys.readouterr().err
    verify_store(store.root, store.pubkey, progress=False)
    assert capsys.readouterr().err == ""


def test_garbage_in_the_middle_of_a_log(store):
    r = store.by_seq(5)
    data = log_bytes(store)
    put(store, LOG0, data[:r.offset] + b"\xff\xfe" + data[r.offset:])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file=LOG0, words=[LOG0, "offset %d" % r.offset])
    assert rep.first_failure["offset"] == r.offset


def test_non_record_item_in_a_log(store):
    r = store.by_seq(5)
    data = log_bytes(store)
    put(store, LOG0, data[:r.offset] + rw.enc([1, 2, 3]) + data[r.offset:])
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file=LOG0, words=["not a tagged COSE_Sign1"])
    assert rep.first_failure["offset"] == r.offset
    # the records after it are still read and chained
    assert all(x.verdict == OK for x in rep.records if x.seq is not None)


def test_deleted_log_file(tmp_path):
    s = rw.RefStore(tmp_path)
    s.boot()
    s.refusal()
    s.power_cut()
    s.boot()
    s.refusal()
    s.power_cut()
    s.boot()
    os.remove(s.path("rec/00000002.log"))
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=4, file="rec/00000004.log", words=["records missing (seq 2 to 3)"])


# --- the head ------------------------------------------------------------------------------

def test_forged_head(store):
    head = cbor2.loads(open(store.path("head.cbor"), "rb").read())
    last = bytearray(head[3])
    last[last.index(b"ref-1.0")] ^= 0x20
    head[3] = bytes(last)
    put(store, "head.cbor", rw.enc(head))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file="head.cbor",
          words=["head.cbor is invalid", "does not verify"])


def test_head_signed_by_another_key_claiming_more(store):
    body = store.body(rw.REFUSAL, {17: "x", 19: "delete", 20: "store", 21: "api"})
    head = {1: LOG0, 2: 0, 3: rw.sign_record(body, other_key())}
    put(store, "head.cbor", rw.enc(head))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file="head.cbor", words=["does not verify"])


def test_head_naming_another_record_with_that_seq(store):
    body = rw.decode_record(store.by_seq(7).data)
    body[4] += 5
    head = cbor2.loads(open(store.path("head.cbor"), "rb").read())
    head[3] = rw.sign_record(body, store.key)
    put(store, "head.cbor", rw.enc(head))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file="head.cbor", words=["differs from seq 7"])


def test_head_not_a_map(store):
    put(store, "head.cbor", b"\x00garbage")
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file="head.cbor", words=["head.cbor is invalid"])


def test_missing_head_with_records(store):
    os.remove(store.path("head.cbor"))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, seq=None, file="head.cbor", words=["signed head missing"])


def test_head_new_only_fat_rename_case(tmp_path):
    s = rw.session(tmp_path, fat=True)
    os.rename(s.path("head.cbor"), s.path("head.new"))
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK)
    assert rep.head_file == "head.new" and rep.head_seq == 7


def test_both_heads_the_higher_seq_wins(store):
    old = rw.enc({1: LOG0, 2: 0, 3: store.by_seq(6).data})
    put(store, "head.new", old)          # an older head.new left behind
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert rep.head_file == "head.cbor" and rep.head_seq == 7
    # a newer head.new (power lost before the rename) and an older head.cbor
    shutil.copy(store.path("head.cbor"), store.path("head.new"))
    put(store, "head.cbor", old)
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert rep.head_file == "head.new" and rep.head_seq == 7


def test_unfinished_head_new_is_ignored(store):
    put(store, "head.new", open(store.path("head.cbor"), "rb").read()[:40])
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert any("head.new ignored" in n for n in rep.notes)


def test_chain_longer_than_head_is_fine(store):
    head = open(store.path("head.cbor"), "rb").read()
    store.refusal()
    put(store, "head.cbor", head)        # power lost before the head was rewritten
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK)
    assert rep.head_seq == 7 and rep.chain_end == 8


# --- power loss ------------------------------------------------------------------------------

def test_recovered_segment(tmp_path):
    s = rw.session(tmp_path, close=False)    # 3 checkpoints (7 chunks), then 400 B more
    s.write(b"z" * (2 * C))                  # 2 more chunks after the last checkpoint
    s.power_cut()
    s.boot()                                 # RECOVERY seq 6, BOOT seq 7
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["recovered after power loss", "sealed at boot"])
    g = seg(rep)
    assert g.closed_by == "RECOVERY" and g.verdict == OK_WITH_MISSING_INFO
    assert g.marks == "." * 7 + "RRR"
    assert [r.type for r in rep.records][-2:] == ["RECOVERY", "BOOT"]


def test_recovered_segment_tampered_after_recovery(tmp_path):
    s = rw.session(tmp_path, close=False)
    s.write(b"z" * (2 * C))
    s.power_cut()
    s.boot()
    flip(s.path(MEDIA), 9 * C + 1)
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=2, words=["chunk 9"])
    assert seg(rep).marks == "." * 7 + "RRM"


def test_recovery_with_mismatching_index_flag(tmp_path):
    s = rw.session(tmp_path, close=False)
    s.write(b"z" * (2 * C))
    # the index written at capture disagrees with the media found at boot
    with open(s.path(IDX), "r+b") as f:
        f.seek(32 * 8)
        f.write(b"\x00" * 32)
    s.power_cut()
    s.boot()
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["MISMATCH"])
    body = rw.decode_record(s.by_seq(6).data)
    assert body[0] == rw.RECOVERY and body[9] & rw.MISMATCH


def test_open_segment_with_unsigned_tail(tmp_path):
    s = rw.session(tmp_path, close=False)
    s.write(b"y" * (2 * C))
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["open", "unsigned"])
    g = seg(rep)
    assert g.closed_by is None and g.verdict == OK_WITH_MISSING_INFO
    assert g.marks == "." * 7 + "UUU" and g.length == 7 * C


def test_open_segment_flip_in_signed_part(tmp_path):
    s = rw.session(tmp_path, close=False)
    flip(s.path(MEDIA), 100)
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=2, words=["chunk 0"])
    assert seg(rep).marks == "M......U"


def test_open_segment_flip_in_unsigned_tail_is_not_detectable(tmp_path):
    s = rw.session(tmp_path, close=False)
    flip(s.path(MEDIA), 7 * C + 10)
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO)
    assert seg(rep).marks.endswith("U")


def test_open_segment_before_its_media_file_exists(tmp_path):
    s = rw.RefStore(tmp_path)
    s.boot()
    s.rec_start()
    os.remove(s.path(s.seg.media))   # littlefs: a new file appears only at its first flush
    os.remove(s.path(rw.RefStore._idx(s.seg.media)))
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["open"])


def test_torn_log_tail(store):
    nxt = store.body(rw.REFUSAL, {17: "x", 19: "delete", 20: "store", 21: "api"})
    torn = rw.sign_record(nxt, store.key)[:57]
    with open(store.path(LOG0), "ab") as f:
        off = f.tell()
        f.write(torn)
    rep = verify_store(store.root, store.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["torn log tail", "57 bytes"])
    row = rep.records[-1]
    assert (row.type, row.file, row.offset, row.verdict) == ("TORN_TAIL", LOG0, off,
                                                              OK_WITH_MISSING_INFO)


def test_torn_tail_then_reboot(tmp_path):
    s = rw.session(tmp_path, close=False)
    s.write(b"q" * 5000)
    nxt = s.body(rw.CHECKPOINT, {10: 2, 13: 0, 14: 0, 15: bytes(32)})
    s.power_cut(torn=rw.sign_record(nxt, s.key)[:30])
    s.boot()
    rep = verify_store(s.root, s.pubkey)
    check(rep, OK_WITH_MISSING_INFO, words=["torn log tail", "recovered"])
    assert len(rep.log_files) == 2


def test_garbage_tail_is_not_a_torn_record(store):
    with open(store.path(LOG0), "ab") as f:
        f.write(b"\x5a\x00\x10\x00\x00abc")   # a byte string cut short, not a record
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file=LOG0, words=["garbage"])


# --- not signed --------------------------------------------------------------------------

def test_media_without_records_is_not_signed(tmp_path):
    os.makedirs(tmp_path / "m")
    (tmp_path / "m" / "00000000.mkv").write_bytes(b"\xff\xd8" * 5000)
    rep = verify_store(tmp_path)
    assert rep.verdict == NOT_SIGNED and rep.first_failure is None
    assert rep.segments[0].verdict == NOT_SIGNED and rep.segments[0].segment is None
    assert "not covered by any signed record" in rep.reasons[0]


def test_empty_store_is_not_signed(tmp_path):
    rep = verify_store(tmp_path)
    assert rep.verdict == NOT_SIGNED
    assert "no signed records" in rep.reasons[0]


def test_media_beyond_the_chain_is_records_removed(store):
    """Media named after a seq past the chain's end: its records were cut (not NOT_SIGNED)."""
    put(store, "m/00000099.mkv", b"planted")
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file="m/00000099.mkv", words=["records removed", "seq 7"])
    assert seg(rep, None).media == "m/00000099.mkv" and seg(rep, None).verdict == NOT_OK


@pytest.mark.parametrize("rel", ["m/00000003.mkv", "m/00000002.mp4", "m/notes.txt",
                                 "m/00000005.idx", "rec/readme.txt"])
def test_planted_unsigned_file_in_a_signed_store_is_named(store, rel):
    put(store, rel, b"planted")
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file=rel, words=[rel])
    assert "records removed" not in rep.first_failure["reason"]


def test_unsigned_media_in_an_unsigned_store_is_not_signed(tmp_path):
    os.makedirs(tmp_path / "m")
    (tmp_path / "m" / "00000099.mkv").write_bytes(b"x")
    rep = verify_store(tmp_path)
    assert rep.verdict == NOT_SIGNED and rep.first_failure is None


def test_records_deleted_but_head_kept(store):
    os.remove(store.path(LOG0))
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file="head.cbor")


# --- exhaustive: any byte of a log changed is found ---------------------------------------

def _one_segment(root):
    """A store of one short segment; (store, bytes of its log)."""
    s = rw.RefStore(root)
    s.boot()
    s.rec_start()
    s.write(b"v" * 5000)
    s.checkpoint()
    s.close()
    return s, log_bytes(s)


def test_every_single_byte_change_in_the_log_is_not_ok(tmp_path):
    s, data = _one_segment(tmp_path / "a")
    misses = []
    for i in range(len(data)):
        for mask in (0x01, 0x80):
            b = bytearray(data)
            b[i] ^= mask
            put(s, LOG0, bytes(b))
            rep = verify_store(s.root, s.pubkey)
            if rep.verdict != NOT_OK:
                misses.append((i, mask, rep.verdict))
    put(s, LOG0, data)
    assert verify_store(s.root, s.pubkey).verdict == OK
    assert not misses, misses[:5]


def test_every_truncation_of_the_log_is_not_ok(tmp_path):
    s, data = _one_segment(tmp_path)
    bad = []
    for cut in range(len(data)):
        put(s, LOG0, data[:cut])
        if verify_store(s.root, s.pubkey).verdict != NOT_OK:
            bad.append(cut)
    assert not bad, bad[:5]


def test_every_single_byte_change_in_the_head(store):
    head = open(store.path("head.cbor"), "rb").read()
    last = cbor2.loads(head)[3]
    start = head.index(last)
    for i in range(len(head)):
        b = bytearray(head)
        b[i] ^= 0x01
        put(store, "head.cbor", bytes(b))
        rep = verify_store(store.root, store.pubkey)        # never raises
        if start <= i < start + len(last):
            assert rep.verdict == NOT_OK, i
        else:                                               # hints, or the map's framing
            assert rep.verdict in (OK, NOT_OK), i


def test_every_chunk_flip_is_named(tmp_path):
    s = rw.session(tmp_path)
    for chunk in range(8):
        shutil.copy(s.path(MEDIA), s.path("orig"))
        flip(s.path(MEDIA), chunk * C + 7)
        rep = verify_store(s.root, s.pubkey)
        assert rep.first_failure["chunk"] == chunk
        assert seg(rep).marks == "." * chunk + "M" + "." * (7 - chunk)
        shutil.move(s.path("orig"), s.path(MEDIA))


# --- keys ----------------------------------------------------------------------------------

def test_fingerprint_format():
    fp = keys.fingerprint(bytes(32))
    h = hashlib.sha256(bytes(32)).hexdigest()[:32]
    assert fp == ":".join(h[i:i + 4] for i in range(0, 32, 4))
    assert len(fp) == 39 and fp == fp.lower()


@pytest.mark.parametrize("form", ["raw", "hex", "hex-spaced", "pem", "der"])
def test_key_file_forms(store, tmp_path, form):
    pub = store.key.public_key()
    data = {
        "raw": store.pubkey,
        "hex": store.pubkey.hex().encode() + b"\n",
        "hex-spaced": " ".join(store.pubkey.hex()[i:i + 8] for i in range(0, 64, 8)).encode(),
        "pem": pub.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo),
        "der": pub.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo),
    }[form]
    p = tmp_path / "device.pub"
    p.write_bytes(data)
    assert keys.load_public_key(p) == store.pubkey
    check(verify_store(store.root, str(p)), OK)


def test_bad_key_files(tmp_path):
    p = tmp_path / "k"
    p.write_bytes(b"hello")
    with pytest.raises(keys.KeyFileError):
        keys.load_public_key(p)
    from cryptography.hazmat.primitives.asymmetric import ec
    k = ec.generate_private_key(ec.SECP256R1()).public_key()
    p.write_bytes(k.public_bytes(serialization.Encoding.PEM,
                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(keys.KeyFileError, match="not an Ed25519"):
        keys.load_public_key(p)


# --- the reference writer itself conforms (pycose, pycddl) ----------------------------------

def test_refwriter_records_are_cose_and_match_the_cddl(tmp_path):
    pycddl = pytest.importorskip("pycddl")
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519
    from pycose.messages import Sign1Message
    s = rw.session(tmp_path, close=False)
    s.power_cut()
    s.boot()
    text = open(os.path.join(HERE, "..", "protocol", "schema.cddl")).read()
    body_schema = pycddl.Schema("start = record-body\n" + text)
    prot_schema = pycddl.Schema("start = protected-header\n" + text)
    head_schema = pycddl.Schema("start = head\n" + text)
    for r in s.records:
        t = cbor2.loads(r.data)
        v = list(t.value)
        prot_schema.validate_cbor(v[0])
        body_schema.validate_cbor(v[2])
        msg = Sign1Message.from_cose_obj([v[0], dict(v[1]), v[2], v[3]], True)
        msg.key = OKPKey(crv=Ed25519, x=s.pubkey)
        assert msg.verify_signature()
    head_schema.validate_cbor(open(s.path("head.cbor"), "rb").read())


# --- report object ---------------------------------------------------------------------------

def test_report_json_shape(store):
    flip(store.path(MEDIA), 100)
    rep = verify_store(store.root, store.pubkey)
    assert isinstance(rep, Report)
    d = json.loads(json.dumps(rep.to_json()))
    assert set(d) >= {"store", "verdict", "reasons", "notes", "first_failure", "records",
                      "segments", "device", "fingerprint", "origin_checked", "head_seq",
                      "head_file", "chain_end", "record_count", "log_files", "exit_code"}
    assert d["verdict"] == NOT_OK and d["exit_code"] == 1
    assert set(d["first_failure"]) >= {"seq", "file", "offset", "reason"}
    assert set(d["records"][0]) == {"seq", "type", "file", "offset", "verdict", "reason",
                                    "info"}
    for k in ("interruptions", "marks", "releases", "time_sets", "self_checks",
              "assignments"):
        assert d[k] == []
    assert set(d["segments"][0]) == {"segment", "media", "length", "file_size", "chunks",
                                     "chunk_size", "closed_by", "verdict", "marks", "reason"}


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_ok_text_table(store, tmp_path, capsys):
    kp = tmp_path / "device.pub"
    kp.write_text(store.pubkey.hex() + "\n")
    assert main(["verify", store.root, "--key", str(kp)]) == 0
    out = capsys.readouterr().out
    assert "VERDICT: OK\n" in out
    assert "segment" in out and "marks" in out and MEDIA in out and "........" in out
    assert keys.fingerprint(store.pubkey) in out
    assert "records not OK" not in out


def test_cli_not_ok_lists_the_bad_record(store, capsys):
    r = store.by_seq(3)
    flip(store.path(LOG0), r.offset + r.data.index(b"ref-1.0"), 0x20)
    assert main(["verify", store.root]) == 1
    out = capsys.readouterr().out
    assert "VERDICT: NOT_OK" in out and "records not OK" in out
    assert "%s@%d" % (LOG0, r.offset) in out and "signature does not verify" in out


def test_cli_missing_info_exit_0(store, capsys):
    assert main(["verify", store.root]) == 0
    out = capsys.readouterr().out
    assert "VERDICT: OK_WITH_MISSING_INFO" in out and "origin not checked" in out


def test_cli_not_signed_exit_2(tmp_path, capsys):
    os.makedirs(tmp_path / "m")
    (tmp_path / "m" / "x.mkv").write_bytes(b"x")
    assert main(["verify", str(tmp_path)]) == 2
    assert "VERDICT: NOT_SIGNED" in capsys.readouterr().out


def test_cli_json(store, capsys):
    flip(store.path(MEDIA), 3 * C)
    assert main(["verify", store.root, "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == NOT_OK and d["first_failure"]["chunk"] == 3
    assert d["segments"][0]["marks"] == "...M...."


def test_cli_usage_and_io_errors(tmp_path, store, capsys):
    assert main(["verify", str(tmp_path / "nope")]) == 3
    assert "no such store" in capsys.readouterr().err
    assert main(["verify"]) == 3
    assert main(["frobnicate"]) == 3
    assert main([]) == 3
    assert main(["verify", store.root, "--key", str(tmp_path / "nokey")]) == 3
    bad = tmp_path / "bad.pub"
    bad.write_bytes(b"nope")
    assert main(["verify", store.root, "--key", str(bad)]) == 3
    assert main(["--help"]) == 0
    assert "verify" in capsys.readouterr().out


def test_cli_sim_record_parses_and_calls_run_record(monkeypatch, tmp_path):
    seen = {}
    fake = types.ModuleType("sim.record")

    def run_record(args):
        seen["args"] = args
        return 0
    fake.run_record = run_record
    monkeypatch.setitem(sys.modules, "sim.record", fake)
    rc = main(["sim", "record", str(tmp_path), "--seconds", "12", "--runtime", "micropython",
               "--fs", "fat", "--checkpoint", "2", "--segment", "5", "--bitrate", "64000",
               "--seed", "7"])
    assert rc == 0
    a = seen["args"]
    assert (a.dir, a.seconds, a.runtime, a.fs, a.checkpoint, a.segment, a.bitrate, a.seed) == \
        (str(tmp_path), 12.0, "micropython", "fat", 2.0, 5.0, 64000, 7)
    assert main(["sim", "record", str(tmp_path)]) == 3                    # --seconds required
    assert main(["sim", "record", str(tmp_path), "--seconds", "1", "--fs", "ntfs"]) == 3


# --- STORE_ALERT: a card whose head went back (SPEC §3.2, §5.2) -----------------------------

def _head_back(tmp_path, keep_lost=False):
    """Records 0..7 (session); the card loses 5..7 and gets the head of seq 4 back; at the
    next boot the recorder, remembering seq 7, writes STORE_ALERT seq 8 (prev = H(seq 7))."""
    s = rw.session(tmp_path / "sd")
    h7, h4 = s.by_seq(7), s.by_seq(4)
    if not keep_lost:
        raw = log_bytes(s)
        put(s, LOG0, raw[:s.by_seq(5).offset])
        s._head(h4.data)
    s.log = None
    s.boot_count += 1
    body = s.body(17, {33: "head_back", 28: [7, hashlib.sha256(h7.data).digest()],
                       29: [4, hashlib.sha256(h4.data).digest()]})
    s.append_raw(rw.sign_record(body, s.key), 8, 17)
    return s


def test_store_alert_gap_names_itself(tmp_path):
    s = _head_back(tmp_path)
    rep = verify_store(s.root, s.pubkey)
    check(rep, NOT_OK, seq=8, words=["records removed", "remembered head seq 7",
                                     "lost seqs 5..7"])


def test_store_alert_with_the_records_present_is_a_note(tmp_path):
    s = _head_back(tmp_path, keep_lost=True)
    rep = verify_store(s.root, s.pubkey)
    assert rep.verdict == OK, rep.reasons
    assert any("STORE_ALERT seq 8" in n for n in rep.notes)


def test_cut_records_with_older_head_but_media_left_is_not_ok(store):
    """The newest records cut and an older head put back: the media of the cut segment
    names the cut ("records removed")."""
    raw = log_bytes(store)
    put(store, LOG0, raw[:store.by_seq(2).offset])
    store._head(store.by_seq(1).data)
    rep = verify_store(store.root, store.pubkey)
    check(rep, NOT_OK, file=IDX, words=["records removed", "beyond the last record"])
    assert seg(rep, None).verdict == NOT_OK and MEDIA in " ".join(rep.reasons)


# --- incremental verification: verify_store(trusted=(seq, hash)) ---------------------------

def test_trusted_prefix_skips_rehashing(store):
    h = hashlib.sha256(store.by_seq(7).data).digest()
    rep = verify_store(store.root, store.pubkey, trusted=(7, h))
    check(rep, OK)
    s = seg(rep)
    assert s.verdict == OK and s.marks == "T" * 8 and "not re-hashed" in s.reason
    # a later segment (after the trusted seq) is hashed as usual
    store.rec_start()
    store.write(b"n" * 5000)
    store.close()
    rep = verify_store(store.root, store.pubkey, trusted=(7, h))
    check(rep, OK)
    assert seg(rep, 8).marks == ".." and seg(rep, 2).marks == "T" * 8


def test_trusted_prefix_does_not_hide_a_changed_record_after_it(store):
    h = hashlib.sha256(store.by_seq(5).data).digest()
    flip(store.path(LOG0), store.by_seq(6).offset + 40)
    rep = verify_store(store.root, store.pubkey, trusted=(5, h))
    check(rep, NOT_OK, seq=6)


def test_trusted_hash_that_differs_verifies_everything(store):
    rep = verify_store(store.root, store.pubkey, trusted=(7, bytes(32)))
    check(rep, NOT_OK, seq=7, words=["earlier offload", "rewritten"])
    assert seg(rep).marks == "." * 8            # re-hashed: nothing was trusted
    rep = verify_store(store.root, store.pubkey, trusted=(99, bytes(32)))
    check(rep, NOT_OK, seq=99, words=["not in the store"])


def test_trusted_prefix_media_changed_in_size_is_rehashed(store):
    h = hashlib.sha256(store.by_seq(7).data).digest()
    with open(store.path(MEDIA), "ab") as f:
        f.write(b"more")
    rep = verify_store(store.root, store.pubkey, trusted=(7, h))
    check(rep, NOT_OK, file=MEDIA, words=["longer than its closed manifest"])


def test_verified_prefix_is_reported(store):
    rep = verify_store(store.root, store.pubkey)
    assert rep.verified_through == 7 and len(rep.verified) == 8
    flip(store.path(LOG0), store.by_seq(4).offset + 40)
    rep = verify_store(store.root, store.pubkey)
    assert rep.verified_through == 3 and sorted(rep.verified) == [0, 1, 2, 3]


def test_trusted_prefix_is_only_unpacked_not_rechecked(store, monkeypatch):
    """The cost of a later offload's verification does not grow with the history: records
    of the trusted prefix skip the encoding/schema checks and signature, old media is not
    re-hashed (measured: 50 offloads of 8 MiB and 171 records each, the 50th verifies in
    0.18 s with trusted= against 1.4 s in full; the 1st takes 0.03 s)."""
    from host_tools import records as R
    full, sigs = [], []
    real_fill, real_sig = R._fill, R.check_signature
    monkeypatch.setattr(R, "_fill", lambda rec, item: (full.append(1), real_fill(rec, item)))
    monkeypatch.setattr(R, "check_signature",
                        lambda pub, rec: (sigs.append(rec.seq), real_sig(pub, rec))[1])
    h = hashlib.sha256(store.by_seq(6).data).digest()
    rep = verify_store(store.root, store.pubkey, trusted=(6, h))
    check(rep, OK)
    assert len(full) == 2          # seq 7 and the head's copy
    assert 7 in sigs and not [s for s in sigs if s < 7 and s != 0]
