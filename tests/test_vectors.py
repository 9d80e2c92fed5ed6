"""protocol/vectors: the firmware still writes exactly the committed stores (formats are
stable, byte for byte), and the verifier gives every store its expected verdict, naming
the first failing record and the reason (tampering: flipped media byte, flipped record
byte, a record deleted in the middle, the newest records deleted, reordering, a record
signed by another key, media beyond the head, a planted unsigned file, a chain "signed"
under a small-order key; and the OK_WITH_MISSING_INFO cases of a power cut)."""
import filecmp
import json
import os
import subprocess
import sys

import pytest

from host_tools.cli import main as cli
from host_tools.verify import verify_store

import mkvdecode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VEC = os.path.join(ROOT, "protocol", "vectors")
STORES = os.path.join(VEC, "stores")
EXPECTED = json.load(open(os.path.join(STORES, "expected.json")))
PUB = os.path.join(STORES, "device.pub")


def same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    diffs = cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files
    assert not diffs, "%s differs from %s: %s" % (a, b, diffs)
    for sub in cmp.common_dirs:
        same_tree(os.path.join(a, sub), os.path.join(b, sub))
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert not mismatch and not errors, (a, mismatch, errors)


def test_firmware_regenerates_the_committed_vectors(tmp_path):
    out = tmp_path / "stores"
    subprocess.run([sys.executable, os.path.join(VEC, "make_vectors.py"), str(out)], check=True,
                   capture_output=True)
    same_tree(STORES, str(out))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_verdict(name):
    exp = EXPECTED[name]
    rep = verify_store(os.path.join(STORES, name),
                       pinned_key=PUB if exp.get("pinned_key", True) else None)
    assert rep.verdict == exp["verdict"], rep.to_text()
    if exp["verdict"] == "NOT_OK":
        ff = rep.first_failure
        assert ff is not None
        assert ff["seq"] == exp["first_failure_seq"], ff
        assert exp["reason_contains"] in ff["reason"].lower(), ff
    elif exp["reason_contains"]:
        assert any(exp["reason_contains"] in r.lower() for r in rep.reasons), rep.reasons


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_exit_code_and_json(name, capsys):
    key = ["--key", PUB] if EXPECTED[name].get("pinned_key", True) else []
    code = cli(["verify", os.path.join(STORES, name), "--json"] + key)
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == EXPECTED[name]["verdict"]
    assert code == (1 if EXPECTED[name]["verdict"] == "NOT_OK" else 0)


def test_without_pinned_key_origin_is_not_checked(capsys):
    code = cli(["verify", os.path.join(STORES, "ok")])
    out = capsys.readouterr().out
    assert code == 0
    assert "OK_WITH_MISSING_INFO" in out and "origin not checked" in out


def test_ok_store_media_are_matroska_with_video_and_audio():
    """The vectors' segments are the container of SPEC §4.4: MJPEG video at the recorded
    2 fps and 16 kHz mono PCM audio, both decoding with FFmpeg (PyAV)."""
    import av
    m = os.path.join(STORES, "ok", "m")
    names = sorted(n for n in os.listdir(m) if n.endswith(".mkv"))
    assert len(names) == 3
    for n in names:
        with av.open(os.path.join(m, n)) as f:
            v, a = f.streams.video[0], f.streams.audio[0]
            assert (v.codec_context.name, v.guessed_rate) == ("mjpeg", 2)
            assert (a.codec_context.name, a.rate, a.channels) == ("pcm_s16le", 16000, 1)
            nv, na = mkvdecode.counts(f)
        assert nv > 0 and na > 16000, (n, nv, na)


def test_catalogue_vectors_are_log_entries_of_every_clerk_type():
    """stores/catalogue/events.cbor (SPEC §14, §9.2): each element is a `log-entry` of
    schema.cddl, in canonical CBOR (its bytes are the log entry's), and together they hold
    every clerk event type and a disposal; a role outside the rule is refused."""
    import cbor2
    pycddl = pytest.importorskip("pycddl")
    from host_tools.catalogue.events import CLERK_TYPES
    schema = pycddl.Schema("root = log-entry\n" + open(
        os.path.join(ROOT, "protocol", "schema.cddl")).read())
    data = open(os.path.join(STORES, "catalogue", "events.cbor"), "rb").read()
    evs = cbor2.loads(data)
    assert cbor2.dumps(evs, canonical=True) == data
    lines = open(os.path.join(STORES, "catalogue", "events.jsonl"), encoding="utf-8").read()
    assert len(lines.splitlines()) == len(evs)
    for e in evs:
        schema.validate_cbor(cbor2.dumps(e, canonical=True))
        assert e["at"] and (e["type"] == "segment_disposed" or e["by"])
    assert {e["type"] for e in evs} == set(CLERK_TYPES) | {"segment_disposed"}
    bad = dict(evs[0], role="superuser")
    with pytest.raises(Exception):
        schema.validate_cbor(cbor2.dumps(bad, canonical=True))
