"""The desk's pages that act on a real archive (a recorder's real recording, built once a
module as tests/test_copies.py does): access requests refused, approved and used on the
register; the register's PDF; discs and backups run in the background with a progress
page that reloads itself, and each is recorded (the exports page lists it, the report no
longer says a backup is missing). Through Starlette's TestClient."""
import os
import re
import shutil
import time

import pytest
from starlette.testclient import TestClient

from test_desk import PW, login, token
from host_tools.catalogue import cases, users
from host_tools.catalogue.store import Catalogue
from host_tools.desk.app import make_app

CASE, UNIT = "FZ-2026-009", "U-1"


def _setup(arch, dev, seg):
    """Users of each role and case CASE of unit UNIT holding recording dev/seg."""
    with Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", password=PW["wang.head"]))
        head = users.User("wang.head", "archive_head")
        # the requester and the unit leader are set up by another than the archive head
        # who approves (an approval by whoever set up the requester or the other approver
        # does not count: SPEC §14.9)
        cat.act(head, users.add_event("chen.chief", "bureau_chief", password=PW["chen.chief"]))
        chief = users.User("chen.chief", "bureau_chief")
        cat.act(chief, users.add_event("li.na", "clerk", password=PW["li.na"]))
        cat.act(chief, users.add_event("zhao.lead", "unit_leader", password=PW["zhao.lead"],
                                       unit=UNIT))
        clerk = users.User("li.na", "clerk")
        cat.act(clerk, cases.opened_event(CASE, "检查 五一路", unit=UNIT))
        cat.act(clerk, cases.linked_event(CASE, device=dev, segment=seg))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from test_copies import DEV, _build
    tmp = tmp_path_factory.mktemp("desk-jobs")
    arch, seg = _build(tmp)
    _setup(arch, DEV, seg)
    return arch, DEV, seg


@pytest.fixture
def world(template, tmp_path):
    arch = tmp_path / "arch"
    shutil.copytree(template[0], arch, symlinks=True)
    app = make_app(arch, hosts=("testserver",), backup_dirs=[str(tmp_path / "offsite")],
                   export_dir=str(tmp_path / "discs"))
    with TestClient(app, base_url="http://testserver") as c:
        yield c, tmp_path, template[1], template[2]


def _csrf(c, path="/search"):
    return token(c, path)


def _request(c, target, actions=("view",)):
    t = _csrf(c, "/access")
    r = c.post("/access/new", data={"target_kind": "recording", "target": target,
                                    "case_no": CASE, "purpose": "hearing <b>x</b>",
                                    "actions": list(actions), "csrf_token": t},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/request/", 1)[1]


def _entries(page):
    return int(re.search(r'id="count">(\d+)', page).group(1))


def _decide(c, rid, what, reason=""):
    t = _csrf(c, "/request/" + rid)
    return c.post("/access/%s/%s" % (rid, what), data={"reason": reason, "csrf_token": t},
                  follow_redirects=False)


def test_r15_desk_request_refused_then_approved_then_used(world):
    c, _tmp, dev, seg = world
    login(c, "li.na")
    rid = _request(c, "%s:%d" % (dev, seg))
    page = c.get("/request/" + rid).text
    assert "hearing &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page   # escaped
    r = c.post("/view/%s/%s/%d" % (rid, dev, seg),          # not approved: no copy
               data={"csrf_token": _csrf(c, "/request/" + rid)})
    assert r.status_code == 403 and "not approved" in r.text
    assert _decide(c, rid, "approve").status_code == 403    # a clerk does not approve
    # refused by the archive head: the request ends
    login(c, "wang.head")
    assert _decide(c, rid, "refuse").status_code == 400     # a refusal says why
    assert _decide(c, rid, "refuse", "no case number on the form").status_code == 303
    assert 'id="state">refused' in c.get("/request/" + rid).text.replace("\n", "")
    # a second request, approved by both roles, is used once: one register line
    login(c, "li.na")
    rid2 = _request(c, "%s:%d" % (dev, seg))
    for who in ("wang.head", "zhao.lead"):
        login(c, who)
        assert _decide(c, rid2, "approve").status_code == 303
    login(c, "li.na")
    before = _entries(c.get("/register").text)
    assert before == 0
    assert c.post("/view/%s/%s/%d" % (rid2, dev, seg)).status_code == 403     # no token
    r = c.post("/view/%s/%s/%d" % (rid2, dev, seg),
               data={"csrf_token": _csrf(c, "/request/" + rid2)})
    assert r.status_code == 200 and "<video" in r.text and "/player/" in str(r.url)
    src = re.search(r'<video[^>]+src="([^"]+)"', r.text).group(1)
    v = c.get(src, headers={"range": "bytes=0-99"})
    assert v.status_code == 206 and len(v.content) == 100
    assert v.headers["content-type"] == "video/mp4"
    assert v.content[4:8] == b"ftyp"
    reg = c.get("/register").text
    assert reg.count(rid2) == 1 and rid not in reg
    assert "wang.head (archive_head)" in reg and "zhao.lead (unit_leader)" in reg
    assert _entries(reg) == before + 1
    # the copy's URL is this session's: another user's session gets nothing
    other = TestClient(c.app, base_url="http://testserver")
    login(other, "wang.head")
    assert other.get(src).status_code == 403
    pdf = c.get("/register.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_r15_desk_copy_only_request_plays_its_viewing_copy(world):
    """A request for "copy" alone: its viewing copy is handed out as a copy (the action
    copies.view_action names) and the player streams it under that same action."""
    c, _tmp, dev, seg = world
    login(c, "li.na")
    rid = _request(c, "%s:%d" % (dev, seg), actions=("copy",))
    for who in ("wang.head", "zhao.lead"):
        login(c, who)
        assert _decide(c, rid, "approve").status_code == 303
    login(c, "li.na")
    r = c.post("/view/%s/%s/%d" % (rid, dev, seg),
               data={"csrf_token": _csrf(c, "/request/" + rid)})
    assert r.status_code == 200 and "<video" in r.text, r.text[-800:]
    src = re.search(r'<video[^>]+src="([^"]+)"', r.text).group(1)
    v = c.get(src, headers={"range": "bytes=0-99"})
    assert v.status_code == 206 and v.content[4:8] == b"ftyp"
    reg = c.get("/register").text
    assert reg.count(rid) == 1 and "<td>copy</td>" in reg


def _approved(c, case, actions):
    """A request of li.na for ``actions`` on case ``case``, approved by the archive head
    and the case unit's leader; its number."""
    login(c, "li.na")
    t = _csrf(c, "/access")
    r = c.post("/access/new", data={"target_kind": "case", "target": case, "case_no": case,
                                    "purpose": "disc for the court",
                                    "actions": list(actions), "csrf_token": t},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    rid = r.headers["location"].rsplit("/request/", 1)[1]
    for who in ("wang.head", "zhao.lead"):
        login(c, who)
        assert _decide(c, rid, "approve").status_code == 303
    return rid


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory):
    """The same archive with its objects sealed at rest ([confidentiality] key_file)."""
    from test_copies import DEV, _build
    arch, seg = _build(tmp_path_factory.mktemp("desk-sealed"), sealed=True)
    _setup(arch, DEV, seg)
    return arch, DEV, seg


def test_r15_desk_plays_a_copy_sealed_at_rest_without_a_plaintext_file(sealed_template,
                                                                       tmp_path, monkeypatch):
    """#06: in an archive sealed at rest, the video is served from copies.open_copy (the
    copy decrypted as it is read, with HTTP Range), never from a plaintext file."""
    import hashlib
    from host_tools.catalogue import copies
    arch = tmp_path / "arch"
    shutil.copytree(sealed_template[0], arch, symlinks=True)
    dev, seg = sealed_template[1], sealed_template[2]
    app = make_app(arch, hosts=("testserver",))
    with TestClient(app, base_url="http://testserver") as c:
        login(c, "li.na")
        rid = _request(c, "%s:%d" % (dev, seg))
        for who in ("wang.head", "zhao.lead"):
            login(c, who)
            assert _decide(c, rid, "approve").status_code == 303
        login(c, "li.na")
        r = c.post("/view/%s/%s/%d" % (rid, dev, seg),
                   data={"csrf_token": _csrf(c, "/request/" + rid)})
        assert r.status_code == 200 and "<video" in r.text, r.text[-800:]
        src = re.search(r'<video[^>]+src="([^"]+)"', r.text).group(1)
        sha = src.rstrip("/").rsplit("/", 1)[1]
        with Catalogue(arch) as cat:
            plain = os.path.join(copies._plain_dir(cat), sha + ".mp4")
        assert not os.path.exists(plain)    # the view button decrypted nothing to a file

        def no_path(*_a, **_k):
            raise AssertionError("the desk served a plaintext file (copy_path)")
        monkeypatch.setattr(copies, "copy_path", no_path)
        whole = c.get(src)
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        assert hashlib.sha256(whole.content).hexdigest() == sha
        size = len(whole.content)
        assert int(whole.headers["content-length"]) == size
        v = c.get(src, headers={"range": "bytes=0-99"})
        assert v.status_code == 206 and v.content == whole.content[:100]
        assert v.content[4:8] == b"ftyp" and v.headers["content-type"] == "video/mp4"
        assert v.headers["content-range"] == "bytes 0-99/%d" % size
        mid = size // 2                 # a seek into the middle crosses sealed chunks
        v = c.get(src, headers={"range": "bytes=%d-%d" % (mid, mid + 70_000)})
        assert v.status_code == 206 and v.content == whole.content[mid:mid + 70_001]
        v = c.get(src, headers={"range": "bytes=%d-" % (size - 10)})
        assert v.status_code == 206 and v.content == whole.content[-10:]
        v = c.get(src, headers={"range": "bytes=-50"})
        assert v.status_code == 206 and v.content == whole.content[-50:]
        v = c.get(src, headers={"range": "bytes=%d-" % size})
        assert v.status_code == 416 and v.headers["content-range"] == "bytes */%d" % size
        v = c.get(src, headers={"range": "bytes=0-9", "if-range": '"other"'})
        assert v.status_code == 200 and len(v.content) == size
        assert not os.path.exists(plain)
        for d, _dirs, files in os.walk(arch):       # nor any plaintext in the archive
            for n in files:
                with open(os.path.join(d, n), "rb") as g:
                    assert g.read(8)[4:8] != b"ftyp", (d, n)


def _wait(c, url, limit=90):
    deadline = time.monotonic() + limit
    while True:
        r = c.get(url)
        assert r.status_code == 200, r.text
        if 'http-equiv="refresh"' not in r.text:
            return r.text
        assert time.monotonic() < deadline, r.text
        time.sleep(0.3)


def test_r13_r14_desk_disc_and_backup_with_progress(world):
    c, tmp, _dev, _seg = world
    login(c, "zhao.lead")
    t = _csrf(c, "/exports")
    r = c.post("/exports/disc", data={"ref": CASE, "csrf_token": t}, follow_redirects=False)
    assert r.status_code == 403                     # a unit leader makes no disc
    login(c, "li.na")
    page = c.get("/exports").text
    assert 'id="disc-needs-request"' in page and "Back up now" not in page
    # R15: a disc holds the originals: none without an approved export request
    t = _csrf(c, "/exports")
    r = c.post("/exports/disc", data={"ref": CASE, "csrf_token": t}, follow_redirects=False)
    assert r.status_code == 400 and "approved export request" in r.text, r.text
    assert "Traceback" not in r.text
    assert not os.path.exists(tmp / "discs")            # nothing written
    rid = _approved(c, CASE, ("export",))
    login(c, "li.na")
    page = c.get("/exports").text
    assert "Make two disc images" in page and '<option value="%s">' % rid in page
    view_only = _approved(c, CASE, ("view",))
    login(c, "li.na")
    r = c.post("/exports/disc", data={"request": view_only, "csrf_token": _csrf(c, "/exports")},
               follow_redirects=False)
    assert r.status_code == 403 and "export" in r.text   # not an export request
    assert not os.path.exists(tmp / "discs")
    assert _entries(c.get("/register").text) == 0
    t = _csrf(c, "/exports")
    r = c.post("/exports/disc", data={"request": rid, "csrf_token": t},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    text = _wait(c, r.headers["location"])
    assert 'state-done' in text, text
    made = os.listdir(tmp / "discs")
    assert len([x for x in made if x.startswith("disc-")]) == 1
    isos = [f for d in made for f in os.listdir(tmp / "discs" / d) if f.endswith(".iso")]
    assert len(isos) == 2
    assert CASE in c.get("/exports").text
    reg = c.get("/register").text                      # the disc is on the register
    assert _entries(reg) == 1 and reg.count(rid) == 1 and "<td>export</td>" in reg
    with Catalogue(tmp / "arch") as cat:            # the signed access_used entry
        used = [e for _i, e in cat.entries_with(b"access_used")
                if e.get("type") == "access_used"]
    assert [(e["request"], e["action"]) for e in used] == [(rid, "export")]
    disc_job = r.headers["location"]
    label = c.get(disc_job + "/label.pdf")
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    # the backup: the archive head, to the destination the desk was started with
    login(c, "wang.head")
    # another who may make discs does not see this one's page or label (its owner's)
    assert c.get(disc_job).status_code == 404
    assert c.get(disc_job + "/label.pdf").status_code == 404
    assert "no backup of the archive was ever made" in c.get("/report").text
    t = _csrf(c, "/exports")
    r = c.post("/exports/backup", data={"dest": "0", "csrf_token": t},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    text = _wait(c, r.headers["location"])
    assert 'state-done' in text, text
    assert os.path.exists(tmp / "offsite" / "LATEST")
    assert str(tmp / "offsite") in c.get("/exports").text
    assert "no backup of the archive was ever made" not in c.get("/report").text
    r = c.post("/exports/backup", data={"dest": "7", "csrf_token": _csrf(c, "/exports")})
    assert r.status_code == 400                     # only the desk's destinations
