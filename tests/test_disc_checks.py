"""The disc's offline verifier against the host's own checks, and against hostile discs
(R13; SPEC §14.11). A disc of an archive number (a1, recorded by device A, numbered) is
built once from the real archive of tests/test_clerk_common.py and copied per test.
"""
import hashlib
import os
import shutil

import cbor2
import pytest

from test_clerk_common import A, add_users, real_archive
from host_tools import records as R
from host_tools.catalogue import numbers
from host_tools.catalogue.store import Catalogue
from host_tools.disc import layout
from host_tools.disc.build import DiscError, build_disc
from host_tools.tlog import merkle, note


@pytest.fixture(scope="module")
def disc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("discn")
    arch, f = real_archive(tmp, tmp_path_factory)
    cat = Catalogue(arch)
    u = add_users(cat)
    e = numbers.assign(cat, u["clerk"], [(A, f["a1"])], party="ZhangSan", step="1")
    res = build_disc(cat, u["head"], e["number"], tmp / "out")
    tree = tmp / "tree"
    tree.mkdir()
    layout.extract_image(res["images"][0], str(tree))
    yield {"cat": cat, "u": u, "res": res, "tree": tree, "f": f, "number": e["number"]}
    cat.close()


@pytest.fixture
def copy(disc, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(disc["tree"], d)
    return d


def _v():
    return layout.bundle_verifier()


def test_r13_number_disc_holds_the_numbered_recording(disc):
    man = cbor2.loads((disc["tree"] / "MANIFEST.cbor").read_bytes())
    assert man["kind"] == "number" and man["ref"] == disc["number"]
    assert [(r["device"], r["segment"]) for r in man["recordings"]] == [(A, disc["f"]["a1"])]
    assert man["numbers"] == [disc["number"]] and man["documents"] == []
    res = _v().verify(str(disc["tree"]))
    assert res.verdict in ("OK", "OK_WITH_MISSING_INFO"), res.to_text()
    assert "numbered %s by log entry" % disc["number"] in res.to_text()


def test_r13_bundle_agrees_with_the_host_on_records_proofs_and_notes(disc):
    """Cross-test: every record, inclusion proof and signed note of the disc is accepted by
    the bundle's pure-Python checks exactly when the host's (cbor2, cryptography) accept
    it, for the disc's own bytes and for each with one byte changed."""
    v, tree = _v(), disc["tree"]
    man = cbor2.loads((tree / "MANIFEST.cbor").read_bytes())
    key = bytes.fromhex((tree / "devices" / A / "key.pub").read_text().strip())
    spub = man["station"]
    raws = cbor2.loads((tree / man["recordings"][0]["records"]).read_bytes())
    assert raws
    for raw in raws[:6]:
        for data in (raw, raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:],
                     raw[:12] + bytes([raw[12] ^ 4]) + raw[13:]):
            rec = R.decode(data)
            host = not rec.fatal and not rec.errors and R.check_signature(key, rec)
            try:
                v.decode_record(data, A, key)
                bundle = True
            except v.Bad:
                bundle = False
            assert host == bundle, (host, bundle)
    cp = (tree / "station" / "checkpoint").read_bytes()
    for data in (cp, cp.replace(b"\n\n", b"\n\n", 1)[:-3] + b"AA\n"):
        try:
            note.open_note(data, man["origin"], spub)
            host = True
        except note.NoteError:
            host = False
        try:
            v.open_note(data, man["origin"], spub)
            bundle = True
        except v.Bad:
            bundle = False
        assert host == bundle
    text = v.open_note(cp, man["origin"], spub)
    _o, size, root, _x = note.parse_checkpoint(text)
    for i, raw, proof in cbor2.loads((tree / "log" / "entries.cbor").read_bytes()):
        leaf = merkle.leaf_hash(raw)
        merkle.verify_inclusion(i, size, leaf, proof, root)
        assert v.inclusion_ok(i, size, leaf, proof, root)
        if proof:
            bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1])] + proof[1:]
            assert not v.inclusion_ok(i, size, leaf, bad, root)
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(i, size, leaf, bad, root)


def _verdict(d):
    res = _v().verify(str(d))
    return res, res.verdict


def test_r13_an_added_file_or_a_link_is_named(copy):
    (copy / "recordings" / "extra.mkv").write_bytes(b"x")
    os.symlink("/etc/passwd", copy / "documents-link")
    res, verdict = _verdict(copy)
    assert verdict == "NOT_OK"
    text = res.to_text()
    assert "recordings/extra.mkv is not listed" in text and "documents-link is a link" in text


def test_r13_a_media_file_replaced_by_a_link_is_not_followed(copy):
    man = cbor2.loads((copy / "MANIFEST.cbor").read_bytes())
    m = copy / man["recordings"][0]["media"]
    target = copy.parent / "outside.mkv"
    shutil.copy(m, target)
    m.unlink()
    os.symlink(target, m)
    res, verdict = _verdict(copy)
    assert verdict == "NOT_OK"
    assert any("link" in p for p in res.problems)
    assert res.recordings[0]["verdict"] == "NOT_OK"


def test_r13_a_resigned_manifest_by_another_key_is_not_ok(copy):
    """Whoever changes a file and rewrites the manifest cannot sign it with the station key:
    the signature no longer covers it."""
    man = cbor2.loads((copy / "MANIFEST.cbor").read_bytes())
    doc = copy / "README.txt"
    doc.write_text(doc.read_text(encoding="utf-8") + "x", encoding="utf-8")
    data = doc.read_bytes()
    man["files"] = [[p, len(data), hashlib.sha256(data).digest()] if p == "README.txt"
                    else [p, n, h] for p, n, h in man["files"]]
    (copy / "MANIFEST.cbor").write_bytes(cbor2.dumps(man, canonical=True))
    res, verdict = _verdict(copy)
    assert verdict == "NOT_OK" and "MANIFEST.sig does not sign this manifest" in res.to_text()


def test_r13_hostile_manifest_names_are_refused(copy):
    v = _v()
    for bad in ("../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a\\b", "x\x00y", ""):
        with pytest.raises(v.Bad):
            v._parts(bad)


def test_r13_not_a_disc_and_a_pinned_station_key(disc, tmp_path):
    v = _v()
    with pytest.raises(v.NotADisc):
        v.verify(str(tmp_path))
    assert v.main([str(tmp_path)]) == 3
    res = v.verify(str(disc["tree"]), station_key=bytes(32))
    assert res.verdict == "NOT_OK" and "not the pinned one" in res.problems[0]


def test_r13_unknown_ref_and_empty_output(disc, tmp_path):
    with pytest.raises(DiscError):
        build_disc(disc["cat"], disc["u"]["clerk"], "NO-SUCH-REF", tmp_path / "o")
    with pytest.raises(DiscError):      # never inside the archive
        build_disc(disc["cat"], disc["u"]["clerk"], disc["number"],
                   disc["cat"].archive_dir + "/discs")


def test_r13_fuzzed_disc_files_are_named_never_a_crash(disc, tmp_path):
    """Random bytes changed in the manifest, its signature, the records, the log entries and
    the checkpoint: the verifier says NOT_OK (or not a disc), never raises."""
    import random
    v = _v()
    rnd = random.Random(5)
    man = cbor2.loads((disc["tree"] / "MANIFEST.cbor").read_bytes())
    targets = ["MANIFEST.cbor", "MANIFEST.sig", "log/entries.cbor", "station/checkpoint",
               man["recordings"][0]["records"]]
    for n in range(40):
        d = tmp_path / ("f%d" % n)
        shutil.copytree(disc["tree"], d)
        p = d / rnd.choice(targets)
        data = bytearray(p.read_bytes())
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        p.write_bytes(bytes(data))
        try:
            res = v.verify(str(d))
        except v.NotADisc:
            continue
        assert res.verdict == "NOT_OK", (n, p.name)
        assert res.to_text() and __import__("json").dumps(res.to_json())
        shutil.rmtree(d)


def test_r13_objects_sealed_at_rest_go_on_the_disc_as_plaintext_originals(tmp_path):
    """With objects encrypted at rest (SPEC §14.8), the disc holds the originals (what the
    recorder signed, hashed to the object's name), and the verifier proves them."""
    import random

    import fakedev
    import refwriter as rw
    from host_tools import station
    from host_tools.archive import atrest
    from host_tools.offload import offload
    arch = tmp_path / "arch"
    station.init(arch)
    atrest.new_key_file(tmp_path / "atrest.key")
    (arch / "station.toml").write_text('[confidentiality]\nkey_file = "%s"\n'
                                       % (tmp_path / "atrest.key"))
    s = rw.RefStore(tmp_path / "sd", seed=b"\x51" * 32, device="SC-SEAL0001", officer=None,
                    chunk=4096)
    s.boot()
    s.assign("OFC-0009", "U-1")
    seg = s.rec_start().seq
    s.write(random.Random(3).randbytes(9_000))
    s.close()
    s.rec_stop()
    d = fakedev.FakeDevice(s, trust=[station.station_pub(arch)]).start()
    try:
        assert offload(d.port, str(arch), register=True, progress=False).exit_code == 0
    finally:
        d.stop()
    with Catalogue(arch) as cat:
        u = add_users(cat)
        e = numbers.assign(cat, u["clerk"], [("SC-SEAL0001", seg)], party="LiSi", step="1")
        res = build_disc(cat, u["clerk"], e["number"], tmp_path / "out")
        tree = tmp_path / "tree"
        tree.mkdir()
        layout.extract_image(res["images"][0], str(tree))
        man = cbor2.loads((tree / "MANIFEST.cbor").read_bytes())
        media = (tree / man["recordings"][0]["media"]).read_bytes()
        sha = man["recordings"][0]["sha256"].hex()
        with open(cat.archive.object_path(sha), "rb") as f:
            assert atrest.is_sealed(f.read(64))            # ciphertext in the archive
        assert not atrest.is_sealed(media[:64])
        assert hashlib.sha256(media).hexdigest() == sha    # the original on the disc
        assert cat.archive.read_object(sha) == media
    v = _v().verify(str(tree))
    assert v.verdict == "OK" and v.recordings[0]["verdict"] == "OK", v.to_text()
    readme = (tree / "README.txt").read_text(encoding="utf-8")
    assert "encrypted at rest in the archive: 是（本盘为解密后的原件） / yes" in readme


def test_r13_disc_made_rows_on_both_databases(tmp_path, catalogue_url):
    """The disc_made handler on SQLite and PostgreSQL: applied, listed, rebuilt by reindex
    from the log exactly (the Chinese label included)."""
    import test_clerk_common as cc
    from host_tools.catalogue import cases, discs
    cat, u = cc.catalogue(tmp_path, catalogue_url)
    try:
        cat.act(u["clerk"], cases.opened_event("FZ-9", "违法建设", unit="U-1"))
        label = {"agency": "福州市城市管理执法局", "ref": "FZ-9", "copies": "2"}
        i = cat.act(u["head"], discs.made_event("FZ-9", "a" * 64, "b" * 64, label))
        rows = discs.made(cat)
        assert [(r["id"], r["ref"], r["by_user"], r["label"]) for r in rows] == [
            (i, "FZ-9", "wang.head", label)]
        cat.reindex()
        assert discs.made(cat, "FZ-9") == rows
    finally:
        cat.close()


def test_r13_a_recording_without_media_is_ok_with_missing_info(disc, copy):
    """A disposed (or never offloaded) recording's records go on the disc without media: the
    station signs that manifest; the verdict says what is missing and the exit code is 0."""
    from host_tools.disc.build import sign_manifest
    man = cbor2.loads((copy / "MANIFEST.cbor").read_bytes())
    rec = man["recordings"][0]
    (copy / rec["media"]).unlink()
    man["files"] = [f for f in man["files"] if f[0] != rec["media"]]
    del rec["media"], rec["sha256"]
    rec["why"] = "disposed of with approval (SPEC §9.2)"
    data = cbor2.dumps(man, canonical=True)
    (copy / "MANIFEST.cbor").write_bytes(data)
    (copy / "MANIFEST.sig").write_bytes(sign_manifest(disc["cat"], data, man["origin"]))
    res = _v().verify(str(copy))
    assert res.verdict == "OK_WITH_MISSING_INFO", res.to_text()
    assert res.recordings[0]["verdict"] == "OK_WITH_MISSING_INFO"
    assert "the media is not on the disc (disposed of with approval" in res.to_text()
    assert _v().main([str(copy)]) == 0


def test_attack14_02_a_manifest_bomb_is_refused_before_decoding(disc, copy, monkeypatch):
    """attack14 #02: MANIFEST.sig is checked over the raw bytes first (nothing unsigned is
    decoded); a signed manifest holding more CBOR items than its budget (one per
    BYTES_PER_ITEM bytes of the cap, here a lowered cap) is NOT OK naming it; a file
    larger than its cap is NOT OK, never read whole."""
    from host_tools.disc.build import sign_manifest
    v = _v()
    monkeypatch.setattr(v, "MAX_MANIFEST", 64 << 10)
    n = 32 << 10
    bomb = b"\x99" + n.to_bytes(2, "big") + b"\x80" * n

    class NoDecode:
        @staticmethod
        def loads(data):
            raise AssertionError("decoded before its signature was checked")
    (copy / "MANIFEST.cbor").write_bytes(bomb)
    with monkeypatch.context() as m:
        m.setattr(v, "cbor", NoDecode)
        res = v.verify(str(copy))
    assert res.verdict == "NOT_OK" and "MANIFEST.sig does not sign this manifest" in \
        res.problems[0]
    (copy / "MANIFEST.sig").write_bytes(sign_manifest(disc["cat"], bomb,
                                                      cbor2.loads((disc["tree"] /
                                                                   "MANIFEST.cbor")
                                                                  .read_bytes())["origin"]))
    res = v.verify(str(copy))
    assert res.verdict == "NOT_OK", res.to_text()
    assert "MANIFEST.cbor is not CBOR of this format (more than 8192 items)" in res.problems
    (copy / "MANIFEST.cbor").write_bytes(b"\x80" * ((64 << 10) + 1))
    res = v.verify(str(copy))
    assert res.verdict == "NOT_OK" and "MANIFEST.cbor is 65537 bytes, more than it may be" \
        in res.problems[0]


def test_attack14_02_items_are_counted_and_memory_errors_name_the_file(copy, monkeypatch):
    """The verifier's own budget (the firmware's decoder is unchanged): items and nesting
    counted from the heads alone; a MemoryError while decoding is NOT OK naming the file;
    log/entries.cbor is decoded only when the manifest lists it with its hash."""
    import cbor2 as c2
    v = _v()
    checks = __import__("sys").modules["sealcam_disc_checks"]
    assert checks.count_items(c2.dumps([1, {"a": b"xy"}, "s"]), 6) == 6
    for bad, limit, why in ((c2.dumps([1, 2, 3]), 3, "more than 3 items"),
                            (b"\x81" * 30 + b"\x00", 100, "nested deeper"),
                            (b"\x9a\xff\xff\xff\xff", 100, "runs past the end"),
                            (b"\x5a\xff\xff\xff\xff", 100, "runs past the end")):
        with pytest.raises(ValueError, match=why):
            checks.count_items(bad, limit)
    real = v.cbor

    class Hungry:
        @staticmethod
        def loads(data):
            if data == (copy / "log/entries.cbor").read_bytes():
                raise MemoryError
            return real.loads(data)
    with monkeypatch.context() as m:
        m.setattr(v, "cbor", Hungry)
        res = v.verify(str(copy))
    assert res.verdict == "NOT_OK"
    assert any(p.startswith("log/entries.cbor needs more memory") for p in res.problems)
    ents = copy / "log/entries.cbor"
    ents.write_bytes(ents.read_bytes() + b"\x00")
    res = v.verify(str(copy))
    assert "log/entries.cbor is not a file the manifest lists with its hash" in res.problems


def test_attack14_03_text_output_never_crashes_on_the_console_encoding(copy):
    """attack14 #03: a file name that is not UTF-8, on a strict UTF-8 or a cp1252 stdout:
    the report is written with escapes, its verdict line there, never a traceback; bidi
    and line-separator characters and lone surrogates are escaped."""
    import subprocess
    import sys
    v = _v()
    assert v._printable("a\u202eb\u2028c\udcffd\u2066") == "a\\u202eb\\u2028c\\udcffd\\u2066"
    with open(os.path.join(os.fsencode(copy), b"added\xff.txt"), "wb") as f:
        f.write(b"x")
    for enc in ("utf-8", "cp1252"):
        p = subprocess.run([sys.executable, "-I", "verify_disc.py"], cwd=str(copy),
                           capture_output=True, timeout=120,
                           env=dict(os.environ, PYTHONIOENCODING=enc))
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        assert p.returncode == 1 and "Traceback" not in out, out
        assert "added\\udcff.txt is not listed" in out and "verdict:     NOT OK" in out
