"""Viewing copies and extracts under access approval (R15; SPEC §14.10): copies.py with
access.py, on a real recorded segment (tests/test_copies.py builds it once), real FFmpeg,
SQLite and PostgreSQL catalogues.

Each test gets a fresh copy of the module's archive with users of each role, case FZ-1 of
unit U-1 holding the recording, and (tests/test_access_common.approved_request) requests
approved by the archive head and the unit's leader.
"""
import hashlib
import os
import shutil

import pytest
import sqlalchemy as sa

from test_copies import DEV, _build, _tree_hashes
from test_clerk_common import add_users, count
from host_tools.catalogue import cases, copies, db, users
from host_tools.catalogue.store import Catalogue

access = pytest.importorskip("host_tools.catalogue.access")
from test_access_common import CASE, UNIT, approved_request, second_head  # noqa: E402


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("copies-acc"))


@pytest.fixture
def world(template, tmp_path, catalogue_url):
    arch = tmp_path / "arch"
    shutil.copytree(template[0], arch, symlinks=True)
    seg = template[1]
    cat = Catalogue(arch, catalogue_url)
    u = add_users(cat)
    cat.act(u["head"], users.change_event("zhao.lead", unit=UNIT))
    u["leader"] = users.User("zhao.lead", "unit_leader", how="os", unit=UNIT)
    cat.act(u["clerk"], cases.opened_event(CASE, "违法建设 五一路 12号", unit=UNIT))
    cat.act(u["clerk"], cases.linked_event(CASE, device=DEV, segment=seg))
    yield cat, u, seg
    cat.close()


def _log_types(cat, t):
    return [e for _i, _r, e in cat.archive.log().entries(0, cat.archive.log().size)
            if e.get("type") == t]


def _made(cat):
    """Files under ARCHIVE/copies (the work folder aside)."""
    root = copies.copies_dir(cat)
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".tmp"]
        out += [os.path.join(d, f) for f in files]
    return out


def test_r15_copies_view_copy_made_under_approval(world):
    cat, u, seg = world
    before = _tree_hashes(cat.archive_dir)
    rid = approved_request(cat, u, actions=("view",))
    seen = []
    c = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg,
                              progress=lambda f, t: seen.append(f))
    assert seen and seen[-1] == 1.0 and not c["reused"]
    sha = c["sha256"]
    assert c["path"] == os.path.join(cat.archive_dir, "copies", sha[:2], sha[2:] + ".mp4")
    assert hashlib.sha256(open(c["path"], "rb").read()).hexdigest() == sha
    assert os.stat(c["path"]).st_mode & 0o777 == 0o444
    assert copies.copy_path(cat, sha) == c["path"]
    assert "li.na  %s\n仅供查看 / viewing copy" % rid == c["derivation"]["watermark"]
    # provenance: the copy_made event names the originals, the derivation and the request
    (ev,) = _log_types(cat, "copy_made")
    assert (ev["request"], ev["device"], ev["segment"], ev["sha256"], ev["kind"],
            ev["by"]) == (rid, DEV, seg, sha, "view", "li.na")
    media = next(s for s in ev["sources"] if s["kind"] == "media")
    assert hashlib.sha256(cat.archive.read_object(media["sha256"])).hexdigest() == \
        media["sha256"]
    for r in (s for s in ev["sources"] if s["kind"] == "record"):
        row = cat.archive.db.execute("SELECT hash FROM records WHERE device = ? AND seq = ?",
                                     (DEV, r["seq"])).fetchone()
        assert bytes(row[0]).hex() == r["hash"]
    # the register: one use, naming what was handed out
    (use,) = [r for r in access.register(cat) if r["request_id"] == rid]
    assert (use["action"], use["output"], use["valid"]) == ("view", sha, True)
    assert {a["role"] for a in use["approvals"]} == {"archive_head", "unit_leader"}
    # asked again: the same copy, one more register line, no second copy_made
    again = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    assert again["reused"] and again["sha256"] == sha
    assert len(_log_types(cat, "copy_made")) == 1
    assert [r["output"] for r in access.register(cat) if r["request_id"] == rid] == [sha,
                                                                                      sha]
    (row,) = copies.copies_of(cat, request_id=rid)
    assert (row["kind"], row["device"], row["segment"], row["sha256"]) == ("view", DEV,
                                                                          seg, sha)
    # the originals are untouched
    assert _tree_hashes(cat.archive_dir) == before


def test_r15_copies_no_copy_without_approval(world):
    cat, u, seg = world
    rid = access.request(cat, u["clerk"], target_kind="case", target=CASE, case_no=CASE,
                         purpose="court hearing", actions=["view"])
    access.approve(cat, second_head(cat, u), rid)   # the unit's leader has not approved
    with pytest.raises(access.AccessRefused, match="not approved"):
        copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    ok = approved_request(cat, u, actions=("view",))
    with pytest.raises(access.AccessRefused, match="only its requester"):
        copies.make_view_copy(cat, u["officer"], ok, DEV, seg)      # not the requester
    export_only = approved_request(cat, u, actions=("export",))
    with pytest.raises(access.AccessRefused, match="not view|not copy"):
        copies.make_view_copy(cat, u["clerk"], export_only, DEV, seg)
    with pytest.raises(access.AccessRefused):
        copies.make_view_copy(cat, u["clerk"], "AR-2026-9999", DEV, seg)
    assert _made(cat) == [] and _log_types(cat, "copy_made") == []
    assert count(cat, db.copies) == 0 and count(cat, db.accesses) == 0


def test_r15_copies_tampered_copy_is_refused(world):
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("view", "copy"))
    c = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    p = c["path"]
    os.chmod(p, 0o644)
    data = bytearray(open(p, "rb").read())
    data[len(data) // 2] ^= 1
    open(p, "wb").write(bytes(data))
    with pytest.raises(copies.CopyError, match="changed after it was made"):
        copies.copy_path(cat, c["sha256"])
    with pytest.raises(copies.CopyError, match="changed after it was made"):
        copies.open_copy(cat, c["sha256"])
    # asked again, the changed file is not handed out: the copy is derived again
    again = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    assert copies.copy_path(cat, again["sha256"]) == again["path"]
    assert hashlib.sha256(open(again["path"], "rb").read()).hexdigest() == again["sha256"]
    # a file under copies/ that no copy_made names is not a copy
    fake = bytes(range(256)) * 4
    sha = hashlib.sha256(fake).hexdigest()
    os.makedirs(os.path.join(copies.copies_dir(cat), sha[:2]), exist_ok=True)
    open(os.path.join(copies.copies_dir(cat), sha[:2], sha[2:] + ".mp4"), "wb").write(fake)
    with pytest.raises(copies.CopyError, match="no copy_made"):
        copies.copy_path(cat, sha)
    with pytest.raises(copies.CopyError, match="64 hex"):
        copies.copy_path(cat, "../../station.key")


def test_r15_copies_export_is_a_verifiable_extract(world, tmp_path):
    from host_tools import clip_verify
    from host_tools.clip_verify import verify_clip
    cat, u, seg = world
    out = tmp_path / "usb"
    out.mkdir()
    view_only = approved_request(cat, u, actions=("view",))
    with pytest.raises(access.AccessRefused, match="not export"):
        copies.export_extract(cat, u["clerk"], view_only, DEV, seg, out)
    assert os.listdir(out) == []
    rid = approved_request(cat, u, actions=("export",))
    x = copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)
    assert sorted(os.listdir(out)) == ["%s-%d.mkv" % (DEV, seg), "%s-%d.mkv.prov" % (DEV, seg)]
    assert hashlib.sha256(open(x["file"], "rb").read()).hexdigest() == x["sha256"]
    res = verify_clip(x["file"], archive=cat.archive_dir)
    assert res.verdict == clip_verify.OK, res.to_text()
    # the whole segment: the extract is the original media byte for byte
    media = next(s for s in x and _log_types(cat, "copy_made")[0]["sources"]
                 if s["kind"] == "media")
    assert open(x["file"], "rb").read() == cat.archive.read_object(media["sha256"])
    (use,) = [r for r in access.register(cat) if r["request_id"] == rid]
    assert (use["action"], use["output"]) == ("export", x["sha256"])
    (row,) = copies.copies_of(cat, request_id=rid)
    assert row["kind"] == "extract" and row["derivation"]["tool"] == "sealcam clip"
    assert [s["kind"] for s in row["sources"]] == ["media", "index", "record", "record",
                                                   "prov"]
    # a span of it: a shorter clip, verifiable too
    (tmp_path / "span").mkdir()
    y = copies.export_extract(cat, u["clerk"], rid, DEV, seg, tmp_path / "span",
                              span=(1.0, 2.0))
    assert y["size"] < x["size"]
    assert verify_clip(y["file"], archive=cat.archive_dir).verdict == clip_verify.OK
    # an extract is never written into the archive, nor over a file
    with pytest.raises(copies.CopyError, match="inside the archive"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg, cat.archive_dir)
    with pytest.raises(copies.CopyError, match="exists already"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)


def test_copies_export_is_in_place_only_after_its_register_line(world, tmp_path,
                                                                 monkeypatch):
    """attack13 #06: the extract is cut into a private folder (0700) in --out and moved
    into place only once copy_made and access_used are signed; a failure (or a refusal)
    in between leaves nothing in --out."""
    cat, u, seg = world
    out = tmp_path / "usb"
    out.mkdir()
    rid = approved_request(cat, u, actions=("export",))
    real = cat.act
    seen = []

    def act(user, e):
        listed = os.listdir(out)
        (priv,) = listed
        seen.append((e["type"], priv, oct(os.stat(out / priv).st_mode & 0o777),
                     sorted(os.listdir(out / priv))))
        if e["type"] == "access_used" and len(seen) == 2 and not hasattr(act, "done"):
            act.done = True
            raise access.AccessRefused("killed here")
        return real(user, e)
    monkeypatch.setattr(cat, "act", act)
    name = "%s-%d.mkv" % (DEV, seg)
    with pytest.raises(access.AccessRefused, match="killed here"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)
    assert [(t, p.startswith(".sealcam-extract-"), m, f) for t, p, m, f in seen] == [
        ("copy_made", True, "0o700", [name, name + ".prov"]),
        ("access_used", True, "0o700", [name, name + ".prov"])]
    assert os.listdir(out) == []                # the private folder went too
    seen.clear()
    x = copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)
    assert [t for t, *_ in seen] == ["copy_made", "access_used"]
    assert sorted(os.listdir(out)) == [name, name + ".prov"]
    assert hashlib.sha256(open(x["file"], "rb").read()).hexdigest() == x["sha256"]


def test_r15_copies_forged_copy_made_is_refused_on_replay(world):
    """A copy_made appended to the log without an approval (bypassing copies.py) is not
    applied by a reindex; the legitimate one is."""
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("view",))
    good = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    unapproved = access.request(cat, u["clerk"], target_kind="case", target=CASE,
                                case_no=CASE, purpose="curiosity", actions=["view"])
    (ev,) = _log_types(cat, "copy_made")
    forged = dict(ev, request=unapproved, sha256="ab" * 32)
    cat.archive.log().append([forged])
    cat.reindex()
    assert any("copy_made" in p and "not approved" in p for p in cat.problems), cat.problems
    assert [r["sha256"] for r in copies.copies_of(cat)] == [good["sha256"]]
    with cat.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.copies)).scalar() == 1


def test_r15_copies_of_a_disposed_original_are_not_handed_out(world):
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("view",))
    c = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    with cat.engine.begin() as conn:
        conn.execute(db.recordings.update().where(db.recordings.c.device == DEV,
                                                  db.recordings.c.segment == seg)
                     .values(state="disposed"))
    with pytest.raises(copies.CopyError, match="disposed of"):
        copies.copy_path(cat, c["sha256"])


def test_copies_copy_made_matches_the_cddl(world, tmp_path):
    """Both kinds of copy_made, as the log holds them, are `log-entry`s of schema.cddl; one
    edited against the rule is not."""
    import cbor2
    pycddl = pytest.importorskip("pycddl")
    cat, u, seg = world
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        schema = pycddl.Schema("root = log-entry\n" + open(
            os.path.join(root, "protocol", "schema.cddl")).read())
    except Exception as e:          # another module's rule being written: not ours to judge
        pytest.skip("schema.cddl does not compile yet: %s" % e)
    rid = approved_request(cat, u, actions=("view", "export"))
    copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    copies.export_extract(cat, u["clerk"], rid, DEV, seg, tmp_path)
    raws = [(raw, e) for _i, raw, e in cat.archive.log().entries()
            if e.get("type") == "copy_made"]
    assert sorted(e["kind"] for _r, e in raws) == ["extract", "view"]
    for raw, _e in raws:
        schema.validate_cbor(raw)
    bad = dict(raws[0][1], kind="original")
    worse = dict(raws[0][1], sources=[dict(raws[0][1]["sources"][0], kind="record")])
    with pytest.raises(Exception):
        schema.validate_cbor(cbor2.dumps(bad, canonical=True))
    with pytest.raises(Exception):
        schema.validate_cbor(cbor2.dumps(worse, canonical=True))


def _cli_world(world, actions):
    """A clerk who signs in with a password, and an approved request of theirs."""
    cat, u, seg = world
    cat.act(u["head"], users.add_event("ma.clerk", "clerk", "马 文书",
                                       password="copy pass 1"))
    u["ma"] = users.User("ma.clerk", "clerk", "马 文书")
    return approved_request(cat, u, requester="ma", actions=actions)


def _run(argv, capsys, monkeypatch):
    """(exit code, stdout, stderr) of the access copy/export verbs, on a parser made with
    copies_cli.add_access_actions (the hook access_cli calls)."""
    import argparse
    from host_tools.catalogue import copies_cli
    monkeypatch.setenv("SEALCAM_PASSWORD", "copy pass 1")
    p = argparse.ArgumentParser(prog="sealcam access")
    p.set_defaults(verb="access")
    copies_cli.add_access_actions(p.add_subparsers(dest="action_verb"))
    args = p.parse_args(argv)
    capsys.readouterr()
    rc = args.func(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_r15_copies_cli_copy_and_export(world, tmp_path, capsys, monkeypatch, catalogue_url):
    import json
    cat, u, seg = world
    rid = _cli_world(world, ("copy", "export"))
    common = ["--archive", cat.archive_dir, "--db", catalogue_url, "--user", "ma.clerk"]
    rc, out, err = _run(["copy", rid, "%s/%d" % (DEV, seg), "--out",
                         str(tmp_path / "c.mp4"), "--json"] + common, capsys, monkeypatch)
    assert rc == 0, err
    res = json.loads(out)
    assert res["out"] == str(tmp_path / "c.mp4")
    assert hashlib.sha256((tmp_path / "c.mp4").read_bytes()).hexdigest() == res["sha256"]
    assert res["derivation"]["watermark"].startswith("马 文书 (ma.clerk)  %s\n" % rid)
    # the same again, in text: the copy made before, one more register line
    rc, out, err = _run(["copy", rid, "%s:%d" % (DEV, seg)] + common, capsys, monkeypatch)
    assert rc == 0 and "made before" in out and res["sha256"] in out, out + err
    (tmp_path / "x").mkdir()
    rc, out, err = _run(["export", rid, "%s/%d" % (DEV, seg), "--out", str(tmp_path / "x")]
                        + common, capsys, monkeypatch)
    assert rc == 0 and "sealcam verify-clip" in out, err
    assert sorted(os.listdir(tmp_path / "x")) == ["%s-%d.mkv" % (DEV, seg),
                                                  "%s-%d.mkv.prov" % (DEV, seg)]
    cat.sync()
    assert [r["action"] for r in access.register(cat) if r["request_id"] == rid] == \
        ["copy", "copy", "export"]
    # no such request: one line, exit 5 (nothing allows it); a bad recording: exit 3
    rc, out, err = _run(["copy", "AR-2026-9999", "%s/%d" % (DEV, seg)] + common, capsys,
                        monkeypatch)
    assert rc == 5 and err.count("\n") == 1 and "AR-2026-9999" in err, err
    rc, out, err = _run(["copy", rid, "nonsense"] + common, capsys, monkeypatch)
    assert rc == 3 and "DEVICE/SEGMENT" in err, err


def test_copies_prune_removes_what_may_not_be_handed_out(world):
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("view",))
    assert copies.view_action(cat, rid) == "view"
    c = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    stray = os.path.join(copies.copies_dir(cat), "00", "11.mp4")
    os.makedirs(os.path.dirname(stray))
    open(stray, "wb").write(b"not a copy")
    assert copies.prune(cat) == [stray] and os.path.exists(c["path"])
    with cat.engine.begin() as conn:
        conn.execute(db.recordings.update().where(db.recordings.c.device == DEV)
                     .values(state="disposed"))
    assert copies.prune(cat) == [c["path"]] and not os.path.exists(c["path"])


def test_r15_copies_nothing_recorded_when_the_original_does_not_verify(world):
    """Approved, but a byte of the original changed: no copy, no copy_made, no register
    line, no working file."""
    from host_tools.clip import _signed_state
    cat, u, seg = world
    rid = approved_request(cat, u, actions=("view", "export"))
    a, *_rest, st = _signed_state(cat.archive_dir)
    a.close()
    sha = st.objects[DEV]["m/%08d.mkv" % seg].hex()
    p = os.path.join(cat.archive_dir, "objects", sha[:2], sha[2:])
    os.chmod(p, 0o644)
    data = bytearray(open(p, "rb").read())
    data[-100] ^= 0x01
    open(p, "wb").write(bytes(data))
    with pytest.raises(copies.CopyError, match="does not match its signed hash"):
        copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
    out = cat.archive_dir + "-out"
    os.makedirs(out)
    with pytest.raises(copies.CopyError, match="does not match its signed hash"):
        copies.export_extract(cat, u["clerk"], rid, DEV, seg, out)
    assert os.listdir(out) == []
    assert _made(cat) == [] and os.listdir(os.path.join(copies.copies_dir(cat), ".tmp")) == []
    assert _log_types(cat, "copy_made") == [] and _log_types(cat, "access_used") == []


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("copies-sealed"), sealed=True)


def test_r15_copies_sealed_at_rest_stay_sealed_in_the_archive(sealed_template, tmp_path):
    """#06: with objects sealed at rest ([confidentiality] key_file), a viewing copy is
    stored sealed (atrest's format, named by its plaintext's SHA-256), FFmpeg's working files
    never land in the archive, and the copy is decrypted only to be handed out: open_copy
    reads the plaintext, copy_path gives it in a private folder outside the archive."""
    from host_tools.archive import atrest
    arch = tmp_path / "arch"
    shutil.copytree(sealed_template[0], arch, symlinks=True)
    seg = sealed_template[1]
    with Catalogue(arch) as cat:
        u = add_users(cat)
        cat.act(u["head"], users.change_event("zhao.lead", unit=UNIT))
        cat.act(u["head"], users.add_event("wu.head", "archive_head", os_account="nosuch-w"))
        cat.act(u["clerk"], cases.opened_event(CASE, "违法建设", unit=UNIT))
        cat.act(u["clerk"], cases.linked_event(CASE, device=DEV, segment=seg))
        rid = access.request(cat, u["clerk"], target_kind="case", target=CASE, case_no=CASE,
                             purpose="court", actions=["view"])
        access.approve(cat, users.User("wu.head", "archive_head", how="os"), rid)
        access.approve(cat, users.User("zhao.lead", "unit_leader", how="os", unit=UNIT), rid,
                       reason="ok")
        c = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
        sha = c["sha256"]
        stored = os.path.join(cat.archive_dir, "copies", sha[:2], sha[2:] + ".mp4")
        raw = open(stored, "rb").read()
        assert atrest.is_sealed(raw) and len(raw) == atrest.sealed_size(c["size"])
        # nothing in the archive holds the copy's plaintext, nor any MP4 (FFmpeg's files)
        for d, _dirs, files in os.walk(cat.archive_dir):
            for n in files:
                b = open(os.path.join(d, n), "rb").read()
                assert b[4:8] != b"ftyp" and hashlib.sha256(b).hexdigest() != sha, (d, n)
        # handed out as plaintext: by file object, and by path outside the archive
        f, size = copies.open_copy(cat, sha)
        with f:
            assert size == c["size"] and hashlib.sha256(f.read()).hexdigest() == sha
        for p in (c["path"], copies.copy_path(cat, sha)):
            assert not os.path.realpath(p).startswith(os.path.realpath(cat.archive_dir))
            assert hashlib.sha256(open(p, "rb").read()).hexdigest() == sha
            assert os.stat(p).st_mode & 0o077 == 0
            assert os.stat(os.path.dirname(p)).st_mode & 0o777 == 0o700
        again = copies.make_view_copy(cat, u["clerk"], rid, DEV, seg)
        assert again["reused"] and again["sha256"] == sha
        # a changed byte of the sealed copy: not handed out
        os.chmod(stored, 0o644)
        with open(stored, "r+b") as g:
            g.seek(atrest.HEADER_SIZE + 10)
            g.write(bytes([raw[atrest.HEADER_SIZE + 10] ^ 1]))
        with pytest.raises(copies.CopyError, match="changed"):
            copies.open_copy(cat, sha)
        copies.prune(cat)
