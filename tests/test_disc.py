"""Duplicate archive discs (R13; SPEC §14.11): `sealcam export disc`, the offline verifier
on the disc, `sealcam verify` on an image or a disc folder.

One real archive for the module (tests/test_clerk_common.py: two reference recorders
offloaded over a pty the station's way); a case holds a2 (device A) and b1 (device B, a
second angle) and a scanned record with a Chinese name. The disc is built once; each test
reads it or a copy of its files.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

import cbor2
import pycdlib
import pytest

from test_clerk_common import A, B, add_users, real_archive
from host_tools import cli
from host_tools.catalogue import cases, discs, documents
from host_tools.catalogue.store import Catalogue, PermissionRefused
from host_tools.disc import layout
from host_tools.disc.build import DiscError, build_disc
from sim.demo_clerk import explanation_pdf

CASE = "FZ-2023-017"
TITLE = "违法建设 五一路 12号"
# 120 characters, 300+ UTF-8 bytes: longer than a Rock Ridge name, cut on the disc
DOC_NAME = "询问笔录（第一次）当事人 张三 五一路 12号 违法建设 现场检查" * 3 + "附件.pdf"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disc")
    arch, f = real_archive(tmp, tmp_path_factory)
    (arch / "station.toml").write_text('[agency]\ncode = "FZMC"\nname = "福州市城市管理执法局"\n',
                                       encoding="utf-8")
    cat = Catalogue(arch)
    u = add_users(cat, "restricted")
    clerk = u["clerk"]
    cat.act(clerk, cases.opened_event(CASE, TITLE, unit="U-1"))
    cat.act(clerk, cases.linked_event(CASE, device=A, segment=f["a2"]))
    cat.act(clerk, cases.linked_event(CASE, device=B, segment=f["b1"], role="angle"))
    doc = tmp / "scan.pdf"
    doc.write_bytes(explanation_pdf(["Record of questioning", "FZ-2023-017"]))
    sha = documents.add_document(cat, clerk, str(doc), "written_record", name=DOC_NAME,
                                 case_no=CASE)
    out = tmp / "out"
    res = build_disc(cat, clerk, CASE, out)
    yield {"cat": cat, "users": u, "res": res, "arch": arch, "f": f, "out": out,
           "doc_sha": sha, "tmp": tmp}
    cat.close()


def _files(image):
    """{rock ridge path: bytes} of every file of an image, read with pycdlib."""
    iso = pycdlib.PyCdlib()
    iso.open(image)
    out = {}
    try:
        for root, _dirs, files in iso.walk(rr_path="/"):
            for name in files:
                import io
                b = io.BytesIO()
                p = (root.rstrip("/") + "/" + name)
                iso.get_file_from_iso_fp(b, rr_path=p)
                out[p.lstrip("/")] = b.getvalue()
    finally:
        iso.close()
    return out


_ESC = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _strings(s):
    """The literal strings shown with Tj in a content stream (PDF escapes undone)."""
    out, i, n = [], 0, len(s)
    while i < n:
        if s[i:i + 1] != b"(":
            i += 1
            continue
        i += 1
        buf, depth = bytearray(), 1
        while i < n:
            c = s[i:i + 1]
            if c == b"\\":
                d = s[i + 1:i + 2]
                if d in _ESC:
                    buf += _ESC[d]
                    i += 2
                elif d and d in b"01234567":
                    m = re.match(rb"[0-7]{1,3}", s[i + 1:i + 4])
                    buf.append(int(m.group(), 8) & 0xFF)
                    i += 1 + len(m.group())
                else:
                    buf += d
                    i += 2
                continue
            if c == b"(":
                depth += 1
            elif c == b")":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            buf += c
            i += 1
        if s[i:i + 4].lstrip().startswith(b"Tj"):
            out.append(bytes(buf))
    return out


def _pdf_text(data):
    """The text a PDF of fpdf2 shows (Tj strings of glyph ids, mapped by its ToUnicode)."""
    streams = []
    for m in re.finditer(rb"(?<!end)stream\r?\n", data):
        start = m.end()
        end = data.find(b"endstream", start)
        raw = data[start:end].rstrip(b"\r\n")
        try:
            streams.append(zlib.decompress(raw))
        except zlib.error:
            streams.append(raw)
    cmap = {}
    for s in streams:
        if b"beginbfchar" in s:
            for g, u in re.findall(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]{4,8})>", s):
                cmap[int(g, 16)] = chr(int(u, 16))
    text = []
    for s in streams:
        if b"BT" in s and b"beginbfchar" not in s:
            for b in _strings(s):
                text.append("".join(cmap.get(int.from_bytes(b[i:i + 2], "big"), "?")
                                    for i in range(0, len(b) - 1, 2)))
    return "\n".join(text)


def _extract(made, name):
    d = made["tmp"] / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    layout.extract_image(made["res"]["images"][0], str(d))
    return d


def test_r13_two_identical_images_read_back_with_pycdlib(made):
    res = made["res"]
    a, b = res["images"]
    assert a.endswith("-A.iso") and b.endswith("-B.iso")
    ha = hashlib.sha256(open(a, "rb").read()).hexdigest()
    hb = hashlib.sha256(open(b, "rb").read()).hexdigest()
    assert ha == hb == res["image_sha256"]
    files = _files(a)
    man = cbor2.loads(files["MANIFEST.cbor"])
    assert hashlib.sha256(files["MANIFEST.cbor"]).hexdigest() == res["contents_sha256"]
    listed = {p: (n, h) for p, n, h in man["files"]}
    assert set(files) == set(listed) | {"MANIFEST.cbor", "MANIFEST.sig"}
    for p, (n, h) in listed.items():
        assert len(files[p]) == n and hashlib.sha256(files[p]).digest() == h, p
    # what R13 asks the disc to hold: originals, records, keys, checkpoint, proofs, bundle
    assert {(r["device"], r["segment"]) for r in man["recordings"]} == {
        (A, made["f"]["a2"]), (B, made["f"]["b1"])}
    for r in man["recordings"]:
        assert r["media"] in files and r["records"] in files
        assert hashlib.sha256(files[r["media"]]).digest() == r["sha256"]
        assert made["cat"].archive.read_object(r["sha256"].hex()) == files[r["media"]]
    for k in ("README.txt", "verify_disc.py", "verifier/sealcamfw/ed25519.py",
              "verifier/sealcamfw/cbor.py", "verifier/sealcamfw/sha512.py",
              "station/station.pub", "station/checkpoint", "log/entries.cbor",
              "devices/%s/key.pub" % A, "devices/%s/key.pub" % B):
        assert k in files, k
    # the Chinese document name survives (Rock Ridge), its bytes are the archive's object
    doc = [p for p in files if p.startswith("documents/")]
    assert len(doc) == 1 and doc[0].startswith("documents/%s-%s" % (made["doc_sha"][:12],
                                                                      DOC_NAME[:20]))
    assert doc[0].endswith(".pdf") and len(doc[0].split("/")[1].encode()) <= 255
    assert len(DOC_NAME) <= 128 and len(DOC_NAME.encode()) > 255
    assert man["documents"][0]["name"] == DOC_NAME      # the whole name, in the manifest
    assert hashlib.sha256(files[doc[0]]).hexdigest() == made["doc_sha"]
    readme = files["README.txt"].decode("utf-8")
    assert "python3 verify_disc.py" in readme and "私钥" in readme and "private keys" in readme
    assert CASE in readme and TITLE in readme
    # the Joliet tree (Windows) names the files too
    iso = pycdlib.PyCdlib()
    iso.open(a)
    try:
        assert iso.has_joliet()
        jnames = [n for _r, _d, fs in iso.walk(joliet_path="/documents") for n in fs]
    finally:
        iso.close()
    assert len(jnames) == 1 and jnames[0].endswith(".pdf") and DOC_NAME[:6] in jnames[0]


def test_r13_same_tree_same_image_whatever_the_clock(made, tmp_path, monkeypatch):
    """Deterministic: dates come from the signed log (the last entry the disc proves),
    not the clock; the same files give the same image bytes."""
    import time
    d = _extract(made, "again")
    man = cbor2.loads((d / "MANIFEST.cbor").read_bytes())
    from host_tools.disc.build import iso_time
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)
    out = [str(tmp_path / "x-A.iso"), str(tmp_path / "x-B.iso")]
    assert layout.write_images(str(d), out, iso_time(man["date"]), CASE) == \
        made["res"]["image_sha256"]


def test_r13_label_pdf_and_disc_made_event(made):
    res = made["res"]
    pdf = res["label_pdf"]
    data = open(pdf, "rb").read()
    assert data.startswith(b"%PDF-") and len(data) > 1000
    rows = discs.made(made["cat"], CASE)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == res["event"] and row["by_user"] == "li.na"
    assert row["image_sha256"] == res["image_sha256"]
    assert row["contents_sha256"] == res["contents_sha256"]
    lab = row["label"]
    assert lab["agency"] == "福州市城市管理执法局" and lab["made_by"] == "li.na"
    assert lab["ref"] == CASE and lab["title"] == TITLE and lab["recordings"] == "2"
    assert lab["image_sha256"] == res["image_sha256"] and lab["copies"] == "2"
    e = made["cat"].entry(res["event"])
    assert e["type"] == "disc_made" and e["by"] == "li.na" and e["label"] == lab
    # the label's text (decoded from the PDF): each field, for copy A and copy B of 2
    text = _pdf_text(data)
    flat = text.replace("\n", "")
    for s in ("copy A of 2", "copy B of 2", "副本 A", CASE, TITLE, "福州市城市管理执法局",
              "li.na", lab["made_at"], lab["dates"], lab["station_key"]):
        assert s in flat, s              # a long value may wrap onto a second line
    for h in (res["contents_sha256"], res["image_sha256"]):
        assert flat.count(h) == 2, h                     # once per copy


def test_r13_only_clerks_and_archive_heads_make_discs(made):
    with pytest.raises(PermissionRefused):
        build_disc(made["cat"], made["users"]["auditor"], CASE, made["tmp"] / "nope")
    assert not (made["tmp"] / "nope").exists() or not os.listdir(made["tmp"] / "nope")


def test_r13_bundle_verifies_offline_in_a_clean_venv(made, tmp_path):
    d = _extract(made, "clean")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    p = subprocess.run([py, "-I", "-S", "verify_disc.py", "--json"], cwd=str(d), env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    j = json.loads(p.stdout)
    assert j["verdict"] in ("OK", "OK_WITH_MISSING_INFO") and not j["problems"]
    assert {(r["device"], r["segment"]) for r in j["recordings"]} == {
        (A, made["f"]["a2"]), (B, made["f"]["b1"])}
    assert all(r["verdict"] != "NOT_OK" for r in j["recordings"])
    assert all(any(c.startswith("filed in case %s by log entry" % CASE) for c in r["checked"])
               for r in j["recordings"])
    # the clean interpreter has no sealcamfw (nor cbor2, cryptography) of its own: the
    # verifier ran on the copies the disc carries
    for mod in ("sealcamfw", "cbor2", "cryptography", "host_tools"):
        q = subprocess.run([py, "-I", "-S", "-c", "import " + mod], cwd=str(d), env=env,
                           capture_output=True, text=True)
        assert q.returncode != 0 and "ModuleNotFoundError" in q.stderr, mod


def test_r13_changed_media_byte_is_named_not_ok(made, tmp_path):
    d = _extract(made, "tampered")
    man = cbor2.loads((d / "MANIFEST.cbor").read_bytes())
    rec = [r for r in man["recordings"] if r["device"] == B][0]
    p = d / rec["media"]
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 1
    p.write_bytes(bytes(b))
    q = subprocess.run([sys.executable, "-I", "verify_disc.py"], cwd=str(d),
                       capture_output=True, text=True, timeout=300)
    assert q.returncode == 1, q.stdout
    assert "recording %s/%d: NOT OK" % (B, rec["segment"]) in q.stdout
    assert "recording %s/%d: OK" % (A, made["f"]["a2"]) in q.stdout
    assert rec["media"] in q.stdout


def test_r13_sealcam_verify_iso_and_folder(made, capsys):
    img = made["res"]["images"][1]
    assert cli.main(["verify", img, "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["verdict"] in ("OK", "OK_WITH_MISSING_INFO") and j["image"] == img
    d = _extract(made, "mounted")
    assert cli.main(["verify", str(d)]) == 0
    assert "verdict:" in capsys.readouterr().out


def test_r13_sealcam_verify_tampered_iso_is_not_ok(made, tmp_path, capsys):
    img = made["res"]["images"][0]
    data = bytearray(open(img, "rb").read())
    # a byte of device A's media inside the image
    man = cbor2.loads(_files(img)["MANIFEST.cbor"])
    rec = [r for r in man["recordings"] if r["device"] == A][0]
    media = _files(img)[rec["media"]]
    at = data.find(media[:256])
    assert at > 0
    data[at + 100] ^= 0x40
    bad = tmp_path / "bad.iso"
    bad.write_bytes(bytes(data))
    assert cli.main(["verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "recording %s/%d: NOT OK" % (A, rec["segment"]) in out and rec["media"] in out


def test_r13_hostile_image_symlink_is_refused(made, tmp_path, capsys):
    """A Rock Ridge symbolic link (here to /etc/passwd) is never followed or copied."""
    iso = pycdlib.PyCdlib()
    iso.new(rock_ridge="1.09")
    iso.add_fp(__import__("io").BytesIO(b"x"), 1, iso_path="/MANIFEST.CBO;1",
               rr_name="MANIFEST.cbor")
    iso.add_symlink(symlink_path="/LINK.;1", rr_symlink_name="verify_disc.py",
                    rr_path="/etc/passwd")
    p = tmp_path / "evil.iso"
    iso.write(str(p))
    iso.close()
    before = set(os.listdir(tmp_path))
    assert cli.main(["verify", str(p)]) == 1
    assert "symbolic link" in capsys.readouterr().out
    assert set(os.listdir(tmp_path)) == before
    (tmp_path / "x").mkdir()
    with pytest.raises(layout.DiscImageError):
        layout.extract_image(str(p), str(tmp_path / "x"))
    assert not os.path.lexists(tmp_path / "x" / "verify_disc.py")


def _disc_users(made):
    """zhou.clerk and qian.audit (with passwords), zhao.lead leading the case's unit."""
    from host_tools.catalogue import users
    cat, u = made["cat"], made["users"]
    if "zhou.clerk" not in {x["name"] for x in users.list_users(cat)}:
        cat.act(u["head"], users.add_event("zhou.clerk", "clerk", password="clerk pass 2026"))
        cat.act(u["head"], users.add_event("qian.audit", "auditor",
                                           password="audit pass 2026"))
        cat.act(u["head"], users.change_event("zhao.lead", unit="U-1"))
        cat.act(u["head"], users.add_event("wu.head", "archive_head", os_account="nosuch-wu"))
    return users.User("zhou.clerk", "clerk", how="password")


def _export_request(made, who, actions=("export",), approve=True):
    from host_tools.catalogue import access, users
    cat, u = made["cat"], made["users"]
    rid = access.request(cat, who, target_kind="case", target=CASE, case_no=CASE,
                         purpose="court 法院", actions=actions)
    if approve:
        access.approve(cat, users.User("wu.head", "archive_head", how="os"), rid)
        access.approve(cat, users.User("zhao.lead", "unit_leader", how="os", unit="U-1"),
                       rid, reason="ok")
    return rid


def test_r13_sealcam_export_disc_cli(made, tmp_path, capsys, monkeypatch):
    """`sealcam export disc` on the command line: an unknown ref is one line and exit 3, a
    role that may not is exit 5, a case is written with --json under an approved export
    request (#15), files mode 0600, one register line naming the image; the log moved on
    (the first disc's event), so this disc proves a longer log and its contents differ."""
    from host_tools.catalogue import access
    zhou = _disc_users(made)
    rid = _export_request(made, zhou)
    arch = str(made["arch"])

    def run(ref, user, pw, out, *extra):
        monkeypatch.setenv("SEALCAM_PASSWORD", pw)
        code = cli.main(["export", "disc", ref, "--archive", arch, "--out", str(out),
                         "--user", user, "--json", *extra])
        o, e = capsys.readouterr()
        return code, o, e

    code, _o, err = run("NO-SUCH", "zhou.clerk", "clerk pass 2026", tmp_path / "o1",
                        "--request", rid)
    assert code == 3 and "NO-SUCH" in err and "Traceback" not in err
    code, _o, err = run(CASE, "qian.audit", "audit pass 2026", tmp_path / "o2")
    assert code == 5, err
    code, out, err = run(CASE, "zhou.clerk", "clerk pass 2026", tmp_path / "o3",
                         "--request", rid)
    assert code == 0, err
    j = json.loads(out)
    assert j["contents_sha256"] != made["res"]["contents_sha256"]
    assert all(os.path.isfile(p) for p in j["images"] + [j["label_pdf"]])
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in j["images"] + [j["label_pdf"]])
    assert not [n for n in os.listdir(tmp_path / "o3") if n.startswith(".")]
    assert cli.main(["verify", j["images"][0]]) == 0
    used = [x for x in access.register(made["cat"]) if x.get("request_id") == rid]
    assert [x.get("output") for x in used] == [j["image_sha256"]], used


def test_r13_a_disc_without_an_approved_export_request_is_refused(made, tmp_path, capsys,
                                                                  monkeypatch):
    """#15: no --request, a request not approved, one without export, or one of another
    user: one line, exit 5, nothing written, nothing on the register."""
    from host_tools.catalogue import access
    zhou = _disc_users(made)
    pending = _export_request(made, zhou, approve=False)
    view_only = _export_request(made, zhou, actions=("view",))
    monkeypatch.setenv("SEALCAM_PASSWORD", "clerk pass 2026")
    before = len(access.register(made["cat"]))
    for n, extra in enumerate(([], ["--request", pending], ["--request", view_only],
                               ["--request", "AR-2026-999999"])):
        out = tmp_path / ("o%d" % n)
        code = cli.main(["export", "disc", CASE, "--archive", str(made["arch"]), "--out",
                         str(out), "--user", "zhou.clerk", *extra])
        o, err = capsys.readouterr()
        assert code == 5, (extra, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not out.exists() or not [x for x in os.listdir(out)
                                         if not x.startswith(".")], os.listdir(out)
    assert len(access.register(made["cat"])) == before


def test_r13_event_and_manifest_match_the_cddl(made):
    pycddl = pytest.importorskip("pycddl")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    schema = open(os.path.join(root, "protocol", "schema.cddl")).read()
    raw = None
    for i, data, e in made["cat"].archive.log().entries(made["res"]["event"],
                                                        made["res"]["event"] + 1):
        raw = data
    pycddl.Schema("root = log-entry\n" + schema).validate_cbor(raw)
    man = _files(made["res"]["images"][0])["MANIFEST.cbor"]
    pycddl.Schema("root = disc-manifest\n" + schema).validate_cbor(man)
    bad = cbor2.loads(man)
    bad["kind"] = "folder"
    with pytest.raises(Exception):
        pycddl.Schema("root = disc-manifest\n" + schema).validate_cbor(cbor2.dumps(bad))


def test_r13_damaged_image_structures_never_crash_verify(made, tmp_path, capsys):
    """Bytes of the volume descriptors, path tables and directory records changed at
    random: `sealcam verify` says NOT OK (or 3, not a disc), one line, never a traceback,
    and writes nothing beside the image."""
    import random
    from host_tools.disc.cli import verify_disc_path
    rnd = random.Random(13)
    good = open(made["res"]["images"][0], "rb").read()
    first_file = min(good.find(b"sealcam"), 60 * 2048)        # metadata lies before it
    for n in range(25):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 8)):
            at = rnd.randrange(16 * 2048, max(17 * 2048, first_file))
            data[at] = rnd.randrange(256)
        p = tmp_path / "fuzz.iso"
        p.write_bytes(bytes(data))
        code = verify_disc_path(str(p))
        out, err = capsys.readouterr()
        assert code in (0, 1, 3), (n, code)
        assert "Traceback" not in out + err
        assert sorted(os.listdir(tmp_path)) == ["fuzz.iso"]


def test_r13_disc_rows_rebuild_from_the_log(made):
    """The discs table is an index of the signed log: `catalogue check` finds it equal to a
    rebuild, and a row edited in the database alone is a difference."""
    from host_tools.catalogue import check, db
    cat = made["cat"]
    res = check.check(cat)
    assert res["tables"]["discs"]["rows"] >= 1 and not res["problems"], check.text(res)
    with cat.engine.begin() as conn:
        conn.execute(db.discs.update().values(image_sha256="0" * 64))
    try:
        res = check.check(cat)
        assert res["tables"]["discs"]["missing"] >= 1 and res["tables"]["discs"]["extra"] >= 1
    finally:
        with cat.engine.begin() as conn:
            conn.execute(db.discs.update().where(db.discs.c.id == made["res"]["event"])
                         .values(image_sha256=made["res"]["image_sha256"]))


def test_r13_disc_made_event_rules(made):
    from host_tools.catalogue.store import CatalogueError
    cat, u, res = made["cat"], made["users"], made["res"]
    label = {"ref": CASE}
    with pytest.raises(CatalogueError):             # not a case or a number
        cat.act(u["clerk"], discs.made_event("NO-SUCH", "a" * 64, "b" * 64, label))
    with pytest.raises(CatalogueError):             # not a hash
        cat.act(u["clerk"], discs.made_event(CASE, "XYZ", "b" * 64, label))
    with pytest.raises(CatalogueError):             # a control character in the label
        cat.act(u["clerk"], discs.made_event(CASE, "a" * 64, "b" * 64, {"x": "a\x1bb"}))
    with pytest.raises(PermissionRefused):          # an auditor makes no disc
        cat.act(u["auditor"], discs.made_event(CASE, "a" * 64, "b" * 64, label))
    assert [r["id"] for r in discs.made(cat, CASE)][-1] == res["event"]


@pytest.mark.parametrize("evil", [b"../../evil", b"/etc/evil", b"a\x00b", b".."])
def test_r13_hostile_image_names_are_refused(tmp_path, capsys, evil):
    """Rock Ridge names edited in the image's bytes to climb out (.., an absolute path, a
    NUL): refused, nothing written outside the temporary folder."""
    import io
    iso = pycdlib.PyCdlib()
    iso.new(rock_ridge="1.09")
    iso.add_fp(io.BytesIO(b"x" * 10), 10, iso_path="/MANIFEST.CBO;1",
               rr_name="MANIFEST.cbor")
    place = b"Q" * len(evil)
    iso.add_fp(io.BytesIO(b"owned"), 5, iso_path="/EVIL.;1", rr_name=place.decode())
    p = tmp_path / "evil.iso"
    iso.write(str(p))
    iso.close()
    data = p.read_bytes()
    assert data.count(place) >= 1
    p.write_bytes(data.replace(place, evil))
    before = sorted(os.listdir(tmp_path))
    code = cli.main(["verify", str(p)])
    out = capsys.readouterr().out
    assert code == 1 and "not a name a disc may hold" in out
    assert sorted(os.listdir(tmp_path)) == before
    assert not os.path.exists("/etc/evil") and not (tmp_path.parent / "evil").exists()


@pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso not installed")
def test_r13_image_read_by_xorriso_verifies(made, tmp_path):
    """Another ISO reader (xorriso, as an operating system would mount it) finds the same
    Rock Ridge tree, and the disc's verifier passes on it."""
    d = tmp_path / "x"
    p = subprocess.run(["xorriso", "-osirrox", "on", "-indev", made["res"]["images"][1],
                        "-extract", "/", str(d)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    subprocess.run(["chmod", "-R", "u+w", str(d)], check=True)
    assert any(n.startswith(made["doc_sha"][:12]) for n in os.listdir(d / "documents"))
    q = subprocess.run([sys.executable, "-I", "verify_disc.py"], cwd=str(d),
                       capture_output=True, text=True, timeout=300)
    assert q.returncode == 0, q.stdout + q.stderr
    assert "verdict:     OK" in q.stdout


def test_disc_is_in_out_only_after_disc_made_and_its_register_line(made, tmp_path,
                                                                   monkeypatch):
    """attack13 #06: the images and the label are written into a private folder (0700) in
    --out and moved into place after disc_made and access_used; a failure in between
    leaves nothing in --out and nothing on the register."""
    from host_tools.catalogue import access
    cat = made["cat"]
    zhou = _disc_users(made)
    rid = _export_request(made, zhou)
    out = tmp_path / "usb"
    out.mkdir()
    real, seen = cat.act, []

    def act(user, e):
        (priv,) = os.listdir(out)
        seen.append((e["type"], priv.startswith(".sealcam-disc-"),
                     oct(os.stat(out / priv).st_mode & 0o777),
                     sorted(n for n in os.listdir(out / priv) if not n.startswith("."))))
        if e["type"] == "access_used" and len(seen) == 2:
            raise access.AccessRefused("killed here")
        return real(user, e)
    monkeypatch.setattr(cat, "act", act)
    name = layout.image_name(CASE)
    files = ["%s-A.iso" % name, "%s-B.iso" % name, "%s-label.pdf" % name]
    with pytest.raises(access.AccessRefused, match="killed here"):
        build_disc(cat, zhou, CASE, out, request=rid)
    assert seen == [("disc_made", True, "0o700", files), ("access_used", True, "0o700", files)]
    assert os.listdir(out) == []
    assert not [x for x in access.register(cat) if x.get("request_id") == rid]
    res = build_disc(cat, zhou, CASE, out, request=rid)
    assert sorted(os.listdir(out)) == files
    assert res["images"] == [str(out / f) for f in files[:2]]
    assert res["label_pdf"] == str(out / files[2])


def test_disc_is_whole_at_the_users_clearance(made, tmp_path):
    """The disc's recordings are collected at the signed-in user's clearance: a case
    holding a recording the user may not see is refused in one line (a disc is whole,
    never silently short); a user cleared for it gets all of them."""
    from host_tools.catalogue import confidentiality, users
    cat, u, f = made["cat"], made["users"], made["f"]
    cat.act(u["head"], users.add_event("he.head", "archive_head", os_account="nosuch-he",
                                       clearance="restricted"))
    he = users.User("he.head", "archive_head", how="os", clearance="restricted")
    cat.act(he, cases.opened_event("FZ-R", "限制 restricted", unit="U-1"))
    cat.act(he, cases.linked_event("FZ-R", device=A, segment=f["a1"]))
    cat.act(he, cases.linked_event("FZ-R", device=B, segment=f["b1"]))
    confidentiality.classify(cat, he, "recording", "restricted", "证人", device=A,
                             segment=f["a1"])
    with pytest.raises(DiscError, match="FZ-R holds recordings your clearance may not "
                                        "see") as ex:
        build_disc(cat, u["clerk"], "FZ-R", tmp_path / "o1")
    assert "\n" not in str(ex.value)
    assert not (tmp_path / "o1").exists() or os.listdir(tmp_path / "o1") == []
    res = build_disc(cat, he, "FZ-R", tmp_path / "o2")
    assert sorted(map(tuple, res["recordings"])) == sorted([(A, f["a1"]), (B, f["b1"])])


def _resign(d):
    """Re-sign the disc folder ``d`` with a new station key under the same origin (what
    someone who swaps a document would do); returns the new key's fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from host_tools.tlog import note
    sk = Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    man = cbor2.loads((d / "MANIFEST.cbor").read_bytes())
    cp = (d / "station/checkpoint").read_text(encoding="utf-8")
    (d / "station/checkpoint").write_bytes(note.sign_note(cp[:cp.index("\n\n") + 1],
                                                          man["origin"], sk))
    (d / "station/station.pub").write_text(pub.hex() + "\n")
    for f in man["files"]:
        if f[0] in ("station/checkpoint", "station/station.pub"):
            b = (d / f[0]).read_bytes()
            f[1:] = [len(b), hashlib.sha256(b).digest()]
    man["station"] = pub
    data = cbor2.dumps(man, canonical=True)
    (d / "MANIFEST.cbor").write_bytes(data)
    (d / "MANIFEST.sig").write_bytes(note.sign_note(
        "sealcam-disc-1\n%s\n%s\n" % (man["origin"], hashlib.sha256(data).hexdigest()),
        man["origin"], sk))
    return layout.bundle_verifier().fingerprint(pub)


def test_attack14_01_sealcam_verify_pins_a_discs_station_key(made, tmp_path, capsys):
    """attack14 #01: `sealcam verify DISC --station-key FILE|HEX|FINGERPRINT` pins the
    station key (a disc re-signed by another key is NOT_OK); --key (a device key) is
    refused for a disc in one line; unpinned, the verdict line says the key was not pinned
    and gives the fingerprint to compare with the label."""
    spub = str(made["arch"] / "station.pub")
    hx = open(spub).read().strip()
    fp = layout.bundle_verifier().fingerprint(bytes.fromhex(hx))
    img = made["res"]["images"][0]
    assert cli.main(["verify", img]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert "not pinned" in out and fp in out
    for pin in (spub, hx, fp, fp.replace(":", "")):
        assert cli.main(["verify", img, "--station-key", pin]) == 0, pin
        assert capsys.readouterr().out.splitlines()[-1] == "verdict:     OK (通过)"
    d = _extract(made, "resigned")
    other = _resign(d)
    assert cli.main(["verify", str(d)]) == 0          # only its own word: not pinned
    assert other in capsys.readouterr().out.splitlines()[-1]
    for pin in (spub, hx, fp):
        assert cli.main(["verify", str(d), "--station-key", pin]) == 1, pin
        assert "is not the pinned one" in capsys.readouterr().out
    assert cli.main(["verify", str(d), "--json", "--station-key", fp]) == 1
    j = json.loads(capsys.readouterr().out)
    assert j["verdict"] == "NOT_OK" and j["station_key_pinned"] is True
    assert cli.main(["verify", img, "--key", spub]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--station-key" in err
    assert cli.main(["verify", img, "--station-key", "nonsense"]) == 3
    assert "fingerprint" in capsys.readouterr().err
