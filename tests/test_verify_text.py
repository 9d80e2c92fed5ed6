"""What `sealcam verify` prints (host_tools/verify_report.py): on the stores of
protocol/vectors/stores (made by protocol/vectors/make_vectors.py with a fixed key) and on
stores of the independent reference writer (tests/refwriter.py), as test_verify.py makes
and tampers them.

- no line says `seq -`: a failure that no record carries is named by its file (and offset);
- a key that verifies none of the records is said once (which key, which device, what to
  do), not once per record, head and media file; JSON keeps the per-record rows and says
  key_mismatch at the top;
- the chain going on after the signed head is a note only where it means something (a
  card whose recorder lost power before rewriting its head), not in an archive's view,
  whose records after the offloaded head start with that offload's RECEIPT;
- `--all` prints every chunk mark of every segment, wrapped, nothing cut.
"""
import hashlib
import json
import os
import re
import shutil

import pytest

from host_tools import keys
from host_tools.cli import main
from host_tools.verify import NOT_OK, OK, verify_store

import refwriter as rw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VEC = os.path.join(ROOT, "protocol", "vectors", "stores")
VEC_KEY = os.path.join(VEC, "device.pub")
with open(os.path.join(VEC, "expected.json")) as _f:
    EXPECTED = json.load(_f)


def run(capsys, *argv):
    code = main(["verify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def other_key_file(tmp_path):
    k = rw.raw_pub(rw.key_from_seed(hashlib.sha256(b"not the device").digest()))
    p = tmp_path / "other.pub"
    p.write_text(k.hex() + "\n")
    return p, k


# --- never `seq -` ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("all_records", [False, True])
def test_no_seq_dash_in_any_vector_store(name, all_records):
    exp = EXPECTED[name]
    key = None if exp.get("pinned_key") is False else VEC_KEY
    rep = verify_store(os.path.join(VEC, name), key, progress=False)
    assert rep.verdict == exp["verdict"]
    text = rep.to_text(all_records=all_records)
    assert not re.search(r"\bseq\s+-", text), text
    ff = rep.first_failure
    if ff is None:
        assert "first failure" not in text
    else:
        line = [ln for ln in text.splitlines() if ln.startswith("first failure: ")]
        assert len(line) == 1, text
        if ff["seq"] is not None:
            assert line[0].startswith("first failure: seq %d (" % ff["seq"]), line
        else:       # named by its file (and offset), as the failure has it
            assert line[0] == "first failure: " + ff["file"] + (
                "@%d" % ff["offset"] if ff.get("offset") is not None else ""), line


def test_failure_without_a_seq_is_named_by_its_file():
    # media beyond the chain's last record: no record carries it
    rep = verify_store(os.path.join(VEC, "media-beyond-head"), VEC_KEY, progress=False)
    assert rep.first_failure["seq"] is None
    text = rep.to_text()
    assert "first failure: " + rep.first_failure["file"] in text
    assert rep.first_failure["file"].startswith("m/")
    # the row of a file that no record accounts for has a blank segment column, not '-'
    row = [ln for ln in text.splitlines() if rep.first_failure["file"] in ln
           and "NOT_OK" in ln][0]
    assert row.split()[0] == rep.first_failure["file"], row


def test_torn_tail_row_has_no_seq(tmp_path):
    s = rw.session(tmp_path / "sd")
    s.power_cut(torn=b"\xd2\x84\x43")
    text = verify_store(s.root, s.pubkey).to_text(all_records=True)
    row = [ln for ln in text.splitlines() if "TORN_TAIL" in ln]
    assert len(row) == 1 and row[0].split()[0].startswith("rec/"), text
    assert not re.search(r"\bseq\s+-", text)


# --- a key that does not match ---------------------------------------------------------

def test_wrong_key_file_is_said_once(tmp_path, capsys):
    store = os.path.join(VEC, "ok")
    other, _ = other_key_file(tmp_path)
    code, out, err = run(capsys, store, "--key", other)
    assert code == 1 and err == ""
    assert "VERDICT: NOT_OK" in out
    said = [ln for ln in out.splitlines() if "does not match" in ln and "- the key" in ln]
    assert len(said) == 1, out
    line = said[0]
    good = keys.fingerprint(keys.load_public_key(VEC_KEY))
    bad = keys.fingerprint(keys.load_public_key(str(other)))
    # which key, which device, which key the records carry, and what to do
    assert str(other) in line and bad in line and "SC-VECTOR01" in line and good in line
    assert "the key the station registered for SC-VECTOR01" in line
    assert "verify again with the registered key" in line
    # no cascade: no per-record, head or media failure lines
    assert "signature does not verify" not in out
    assert "head.cbor is invalid" not in out
    assert "not covered by any signed record" not in out
    assert len([ln for ln in out.splitlines() if ln.startswith("  - ")]) == 1
    assert "first failure" not in out
    # the right key verifies the same store
    assert run(capsys, store, "--key", VEC_KEY)[0] == 0


def test_wrong_key_json_says_key_mismatch_and_keeps_the_rows(tmp_path, capsys):
    store = os.path.join(VEC, "ok")
    other, _ = other_key_file(tmp_path)
    code, out, _ = run(capsys, store, "--key", other, "--json")
    assert code == 1
    d = json.loads(out)
    assert d["key_mismatch"] is True and d["verdict"] == NOT_OK
    assert d["store_key_fingerprint"] == keys.fingerprint(keys.load_public_key(VEC_KEY))
    assert len(d["reasons"]) == 1 and "does not match" in d["reasons"][0]
    assert d["first_failure"]["key_mismatch"] is True
    assert d["records"] and all(r["verdict"] == NOT_OK and "signature" in r["reason"]
                                for r in d["records"])
    # the right key: no mismatch
    code, out, _ = run(capsys, store, "--key", VEC_KEY, "--json")
    assert code == 0 and json.loads(out)["key_mismatch"] is False


def test_registered_key_that_does_not_match_is_said_once(tmp_path):
    """The archive verifies each view with the device's registered key (raw bytes)."""
    s = rw.session(tmp_path / "sd", seconds=5)
    _, other = other_key_file(tmp_path)
    rep = verify_store(s.root, other)
    assert rep.verdict == NOT_OK and rep.key_mismatch
    assert len(rep.reasons) == 1
    assert s.device in rep.reasons[0] and keys.fingerprint(other) in rep.reasons[0]
    text = rep.to_text()
    assert text.count("does not match") == 1 + text.count("head not checked (the key does "
                                                          "not match)")
    assert "signature does not verify" not in text
    assert "--all lists them" in text
    full = rep.to_text(all_records=True)      # --all still lists each record's reason
    assert full.count("signature does not verify") == rep.record_count


def test_one_foreign_record_is_not_a_key_mismatch():
    # one record signed by another key among the device's: that record is named
    rep = verify_store(os.path.join(VEC, "foreign-key"), VEC_KEY, progress=False)
    assert rep.verdict == NOT_OK and not rep.key_mismatch
    assert rep.first_failure["seq"] == EXPECTED["foreign-key"]["first_failure_seq"]
    assert "signature" in rep.to_text()


# --- the chain after the head ----------------------------------------------------------

def test_clean_card_has_no_note(tmp_path):
    s = rw.session(tmp_path / "sd")
    rep = verify_store(s.root, s.pubkey)
    assert rep.verdict == OK and rep.notes == []
    assert "note:" not in rep.to_text()


def test_card_that_lost_power_before_its_head_keeps_the_note(tmp_path):
    s = rw.session(tmp_path / "sd")
    head = open(s.path("head.cbor"), "rb").read()
    s.refusal()
    with open(s.path("head.cbor"), "wb") as f:      # power lost before the head was rewritten
        f.write(head)
    rep = verify_store(s.root, s.pubkey)
    assert rep.verdict == OK and rep.head_seq == 7 and rep.chain_end == 8
    notes = [n for n in rep.notes if "after the signed head" in n]
    assert len(notes) == 1 and "lost power" in notes[0] and "seq 8 to 8" in notes[0]


def test_archive_view_with_records_pulled_after_the_head_has_no_note(tmp_path):
    """What the station's view of a device holds after an offload: the head it offloaded
    (seq 7), then the RECEIPT for records 0..7 and what the dock wrote after it."""
    s = rw.session(tmp_path / "sd")
    head = open(s.path("head.cbor"), "rb").read()
    s.receipt(covered=7)
    s.time_set()
    s.assign(None)
    with open(s.path("head.cbor"), "wb") as f:
        f.write(head)
    rep = verify_store(s.root, s.pubkey)
    assert rep.verdict == OK and rep.head_seq == 7 and rep.chain_end == 10
    assert not any("head" in n for n in rep.notes), rep.notes
    assert "note:" not in rep.to_text()


# --- every chunk mark with --all -------------------------------------------------------

def _long_segment(tmp_path, chunks=137, bad=(3, 118)):
    s = rw.RefStore(tmp_path / "sd", chunk=256)
    s.boot()
    s.rec_start()
    for i in range(chunks):
        s.write(bytes([i & 0xFF]) * 256)
        if i % 20 == 19:
            s.checkpoint()
    s.close()
    s.rec_stop()
    media = s.path("m/00000001.mkv")
    for c in bad:
        with open(media, "r+b") as f:
            f.seek(c * 256 + 10)
            b = f.read(1)
            f.seek(c * 256 + 10)
            f.write(bytes([b[0] ^ 1]))
    return s


def test_all_prints_every_chunk_mark(tmp_path, capsys):
    s = _long_segment(tmp_path)
    rep = verify_store(s.root, s.pubkey)
    marks = [g for g in rep.segments if g.segment == 1][0].marks
    assert len(marks) == 137 and marks[3] == "M" and marks[118] == "M"
    assert marks.count("M") == 2 and marks.count(".") == 135

    short = rep.to_text()
    assert "…" in short                      # without --all the column is a window

    code, out, _ = run(capsys, s.root, "--key", _keyfile(tmp_path, s), "--all")
    assert code == 1
    lines = out.splitlines()
    assert "…" not in out.split("records:")[0]   # nothing cut in the media part
    # the table says how many chunks have each mark
    row = [ln for ln in lines if ln.split()[:2] == ["1", "m/00000001.mkv"]][0]
    assert row.endswith("135 . 2 M"), row
    # then every mark, 50 a line in groups of 10, each line led by its first chunk
    i = lines.index("segment 1 (m/00000001.mkv): 137 chunks of 256 bytes")
    body = lines[i + 1:i + 4]
    assert [ln.split()[0] for ln in body] == ["0", "50", "100"]
    got = "".join("".join(ln.split()[1:]) for ln in body)
    assert got == marks
    assert all(len(g) <= 10 for ln in body for g in ln.split()[1:])
    assert max(len(ln) for ln in body) <= 80


def _keyfile(tmp_path, s):
    p = tmp_path / "device.pub"
    p.write_text(s.pubkey.hex() + "\n")
    return p


def test_all_on_a_vector_store_prints_whole_marks(capsys):
    store = os.path.join(VEC, "media-flip")
    rep = verify_store(store, VEC_KEY, progress=False)
    code, out, _ = run(capsys, store, "--key", VEC_KEY, "--all")
    assert code == 1
    for g in rep.segments:
        if g.marks:
            head = "segment %d (%s): %d chunk" % (g.segment, g.media, len(g.marks))
            assert any(ln.startswith(head) for ln in out.splitlines()), out
    assert "…" not in out


def test_key_mismatch_in_a_copied_store_with_all(tmp_path, capsys):
    """--all with a wrong key still lists each record (its reason) once, and the single
    key line; segments are not checked."""
    store = tmp_path / "ok"
    shutil.copytree(os.path.join(VEC, "ok"), store)
    other, _ = other_key_file(tmp_path)
    code, out, _ = run(capsys, store, "--key", other, "--all")
    assert code == 1
    assert "segments: not checked" in out
    assert len([ln for ln in out.splitlines() if ln.startswith("  - ")]) == 1
    n = verify_store(str(store), VEC_KEY, progress=False).record_count   # the store's records
    assert n > 10
    assert len([ln for ln in out.splitlines() if re.match(r"  seq \d+ ", ln)]) == n
