"""The clerk's desk (host_tools/desk) through Starlette's TestClient (httpx): sign-in first,
CSRF, wrong passwords, roles, errors as pages, Chinese pages, security headers. The
browser test (a real chromium) is tests/test_desk_browser.py."""
import re

import pytest
from starlette.testclient import TestClient

from host_tools import station
from host_tools.catalogue import users
from host_tools.catalogue.store import Catalogue
from host_tools.desk.app import make_app

PW = {"wang.head": "head pass 2026", "li.na": "clerk pass 2026",
      "zhao.lead": "leader pass 2026", "chen.chief": "chief pass 2026"}
ROLE = {"wang.head": "archive_head", "li.na": "clerk", "zhao.lead": "unit_leader",
        "chen.chief": "bureau_chief"}


def make_users(arch, url=None, clearance=None):
    """wang.head, added first, adds the others; ``clearance``: {name: level} (wang.head
    cleared at least as high as any other: nobody grants a clearance above his own)."""
    clearance = clearance or {}
    with Catalogue(arch, url) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", "王档案",
                                      password=PW["wang.head"], unit="U-1",
                                      clearance=clearance.get("wang.head")))
        head = users.User("wang.head", "archive_head", clearance=clearance.get("wang.head"))
        for name in ("li.na", "zhao.lead", "chen.chief"):
            cat.act(head, users.add_event(name, ROLE[name], password=PW[name], unit="U-1",
                                          clearance=clearance.get(name)))


@pytest.fixture
def arch(tmp_path):
    a = tmp_path / "arch"
    station.init(a)
    make_users(a)
    return a


@pytest.fixture
def client(arch):
    app = make_app(arch, hosts=("testserver", "127.0.0.1"))
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def token(c, path="/login"):
    r = c.get(path)
    m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert m, r.text[:500]
    return m.group(1)


def login(c, name, password=None):
    t = token(c)
    return c.post("/login", data={"name": name, "password": PW[name] if password is None else password,
                                  "csrf_token": t}, follow_redirects=False)


def test_login_required_every_page_sends_to_sign_in(client):
    for path in ("/", "/search", "/report", "/access", "/register", "/exports",
                 "/case/X-1", "/request/R-1", "/register.pdf", "/video/" + "0" * 64):
        r = client.get(path, follow_redirects=True)
        assert r.url.path == "/login", path
        assert 'name="password"' in r.text
    r = client.get("/search", follow_redirects=False)
    assert r.status_code in (302, 303, 307) and r.headers["location"].endswith("/login")


def test_login_then_search_and_logout(client):
    r = login(client, "li.na")
    assert r.status_code == 303, r.text
    r = client.get("/search")
    assert r.status_code == 200 and "li.na" in r.text
    assert "no recording matches" in r.text
    t = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    r = client.post("/logout", data={"csrf_token": t}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/search", follow_redirects=True).url.path == "/login"


def test_csrf_rejects_a_post_without_or_with_a_wrong_token(client):
    token(client)
    r = client.post("/login", data={"name": "li.na", "password": PW["li.na"]})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/login", data={"name": "li.na", "password": PW["li.na"],
                                    "csrf_token": "forged.token"})
    assert r.status_code == 403
    # a token from another session (another cookie) does not match this one's
    other = TestClient(client.app, base_url="http://testserver")
    t2 = token(other)
    r = client.post("/login", data={"name": "li.na", "password": PW["li.na"],
                                    "csrf_token": t2})
    assert r.status_code == 403
    assert login(client, "li.na").status_code == 303


def test_wrong_password_and_unknown_user_are_refused_alike(client):
    r = login(client, "li.na", "not the password")
    assert r.status_code == 401
    assert "could not be signed in" in r.text
    r2 = login(client, "nobody", "not the password")
    assert r2.status_code == 401
    assert client.get("/search", follow_redirects=True).url.path == "/login"
    r = login(client, "li.na", "")
    assert r.status_code == 400          # never the OS-account sign-in


def test_repeated_failures_wait(client):
    for _ in range(5):
        assert login(client, "zhao.lead", "wrong wrong").status_code == 401
    r = login(client, "zhao.lead")
    assert r.status_code == 429


def test_a_clerk_cannot_approve(client):
    login(client, "li.na")
    t = token(client, "/search")
    r = client.post("/access/REQ-1/approve", data={"csrf_token": t})
    assert r.status_code == 403
    assert "may not do this" in r.text and "Traceback" not in r.text


def test_chinese_page_renders_chinese(client):
    r = client.get("/login?lang=zh_CN")
    assert '<html lang="zh-CN">' in r.text
    assert "用户" in r.text, r.text[:800]         # the label of the user name
    r = client.get("/login", headers={"accept-language": "en"})
    assert '<html lang="zh-CN">' in r.text       # the session's choice stays
    c2 = TestClient(client.app, base_url="http://testserver")
    r = c2.get("/login", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in r.text
    login(client, "li.na")
    r = client.get("/search")
    # the table's words of `sealcam search`, in the catalog already: 记录仪 device, 卷宗 case,
    # 状态 state
    assert "记录仪" in r.text and "卷宗" in r.text and "状态" in r.text, r.text[:1500]
    assert 'lang="zh-CN"' in r.text


def test_security_headers_and_cookies(client):
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in r.text
    r = login(client, "li.na")
    cookies = r.headers.get_list("set-cookie")
    sess = [c for c in cookies if c.startswith("sealcam_desk=")]
    assert sess and "httponly" in sess[0].lower() and "samesite=strict" in sess[0].lower()


def test_another_host_name_is_refused(arch):
    app = make_app(arch, hosts=("127.0.0.1",))
    with TestClient(app, base_url="http://evil.example") as c:
        assert c.get("/login").status_code == 400


def test_bad_input_is_a_400_page(client):
    login(client, "li.na")
    r = client.get("/search", params={"from": "yesterday"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text
    r = client.get("/search", params={"party": "x" * 500})
    assert r.status_code == 400
    r = client.get("/search", params={"state": "<script>"})
    assert r.status_code == 400 and "<script>" not in r.text
    r = client.get("/case/" + "<b>nope</b>")
    assert r.status_code == 404 and "<b>nope</b>" not in r.text and "&lt;b&gt;" in r.text
    for bad in ("/request/" + "A" * 100, "/request/%0a", "/request/-x"):
        r = client.get(bad)
        assert r.status_code == 400 and "Traceback" not in r.text, bad
    r = client.get("/player/" + "0" * 64)
    assert r.status_code == 403
    r = client.get("/jobs/zz")
    assert r.status_code == 404
    r = client.get("/video/" + "a" * 64)
    assert r.status_code == 403


def test_too_large_a_form_is_refused(client):
    t = token(client)
    r = client.post("/login", data={"name": "li.na", "password": "x" * 70_000,
                                    "csrf_token": t})
    assert r.status_code == 413


def test_idle_session_ends(arch):
    app = make_app(arch, hosts=("testserver",), idle_s=1)
    with TestClient(app, base_url="http://testserver") as c:
        assert login(c, "li.na").status_code == 303
        assert c.get("/search").status_code == 200
        import time
        time.sleep(2.1)
        r = c.get("/search", follow_redirects=True)
        assert r.url.path == "/login"


def test_report_page_shows(client):
    login(client, "wang.head")
    r = client.get("/report")
    assert r.status_code == 200
    assert "Problems" in r.text


def test_desk_on_each_catalogue_database(tmp_path, catalogue_url):
    """SQLite and a real PostgreSQL catalogue (--db URL): sign in, search, ask for access,
    the approver sees it waiting."""
    a = tmp_path / "arch"
    station.init(a)
    make_users(a, catalogue_url)
    app = make_app(a, catalogue_url, hosts=("testserver",))
    with TestClient(app, base_url="http://testserver") as c:
        assert login(c, "li.na").status_code == 303
        assert c.get("/search").status_code == 200
        t = token(c, "/access")
        r = c.post("/access/new", data={"target_kind": "case", "target": "FZ-404",
                                        "case_no": "FZ-404", "purpose": "hearing",
                                        "actions": ["view"], "csrf_token": t})
        # no such case: refused in one line, a page, not a traceback
        assert r.status_code == 400 and "FZ-404" in r.text and "Traceback" not in r.text
        assert login(c, "wang.head").status_code == 303
        assert "Waiting for a decision" in c.get("/access").text


def test_desk_check_says_what_it_would_serve_and_does_not_serve(arch, tmp_path, capsys):
    """`sealcam desk --check`: the port, the archive, its catalogue and the app as a real
    start makes them; one line, exit 0, nothing served; what a start refuses is exit 3."""
    import socket
    from host_tools.cli import main as sealcam
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert sealcam(["desk", "--check", "--archive", str(arch), "--port", str(port)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["the desk would serve %s at http://127.0.0.1:%d/ (4 users may sign in)"
                   % (arch, port)], out
    with socket.socket() as s:      # nothing listens: the port is free again
        s.bind(("127.0.0.1", port))
        assert sealcam(["desk", "--check", "--archive", str(arch), "--port",
                        str(port)]) == 3      # a port in use, as a real start says
    err = capsys.readouterr().err
    assert "cannot serve on 127.0.0.1 port %d" % port in err and "Traceback" not in err
    assert sealcam(["desk", "--check", "--archive", str(tmp_path / "none")]) == 3
    (tmp_path / "empty").mkdir()
    assert sealcam(["desk", "--check", "--archive", str(tmp_path / "empty")]) == 3
    err = capsys.readouterr().err
    assert err.count("sealcam desk") >= 2 and "Traceback" not in err


def test_a_form_of_too_many_fields_is_413_not_a_500(client, capfd):
    """attack14 #06: a POST with more fields than any desk form (signed in or not) is
    refused 413 before anything reads it; no traceback in the desk's log."""
    t = token(client, "/login")
    body = "&".join("f%d=1" % i for i in range(100)) + "&csrf_token=" + t
    r = client.post("/login", content=body,
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "Traceback" not in r.text
    assert "Traceback" not in capfd.readouterr().err
