"""The desk against the internal attack review of issue 12: what a signed-in user may not
see stays off the access pages, the register and the report's custody section (R16, and a
unit leader's unit); a session ends at sign-out, deactivation or a password change; the
sign-in lockout holds per user name (however written) and per client address; the
language link stays on the desk. Through Starlette's TestClient, without media."""
import re

import pytest
from starlette.testclient import TestClient

from test_clerk_common import add_recording
from test_desk import PW, login, make_users, token
from host_tools import station
from host_tools.catalogue import access, cases, confidentiality, retention, users
from host_tools.catalogue.store import Catalogue
from host_tools.desk import auth
from host_tools.desk.app import SESSION_COOKIE, make_app

DEV = "SC-00DESK01"
CASES = {"FZ-OPEN": ("U-1", 1), "FZ-SECRET": ("U-1", 2), "FZ-UTWO": ("U-2", 3)}
PW2 = {"qian.lead": "leader two pass", "ma.keeper": "keeper pass 2026",
       "zhou.chief": "chief two pass 2026", "wu.head": "head two pass 2026"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """An archive: cases FZ-OPEN (U-1), FZ-SECRET (U-1, classified confidential after its
    request was used) and FZ-UTWO (U-2), each holding one recording, kept (opened and held)
    by ma.keeper who has left; per case one request used once and one waiting."""
    a = tmp_path_factory.mktemp("desk-review") / "arch"
    station.init(a)
    make_users(a, clearance={"wang.head": "confidential", "chen.chief": "confidential"})
    with Catalogue(a) as cat:
        head = users.User("wang.head", "archive_head")
        cat.act(head, users.add_event("qian.lead", "unit_leader", password=PW2["qian.lead"],
                                      unit="U-2"))
        cat.act(head, users.add_event("ma.keeper", "archive_head", password=PW2["ma.keeper"]))
        cat.act(users.User("chen.chief", "bureau_chief"),
                users.add_event("zhou.chief", "bureau_chief", password=PW2["zhou.chief"],
                                clearance="confidential"))
        # an archive head who approves: not the one who added the unit leaders (a user set
        # up by an approver lately does not approve with him)
        cat.act(users.User("chen.chief", "bureau_chief"),
                users.add_event("wu.head", "archive_head", password=PW2["wu.head"]))
        keeper, clerk = users.User("ma.keeper", "archive_head"), users.User("li.na", "clerk")
        leader = {"U-1": users.User("zhao.lead", "unit_leader", unit="U-1"),
                  "U-2": users.User("qian.lead", "unit_leader", unit="U-2")}
        rids = {}
        for case, (unit, seg) in CASES.items():
            add_recording(cat, DEV, seg, unit=unit)
            cat.act(keeper, cases.opened_event(case, "title of " + case, unit=unit))
            cat.act(keeper, cases.linked_event(case, device=DEV, segment=seg))
            retention.hold(cat, keeper, "case:" + case, "case", "held for " + case)
            rid = access.request(cat, clerk, target_kind="case", target=case, case_no=case,
                                 purpose="hearing " + case, actions=("view",))
            access.approve(cat, users.User("wu.head", "archive_head"), rid)
            access.approve(cat, leader[unit], rid)
            access.record_use(cat, clerk, rid, "view", device=DEV, segment=seg)
            waiting = access.request(cat, clerk, target_kind="case", target=case,
                                     case_no=case, purpose="later " + case,
                                     actions=("view",))
            rids[case] = (rid, waiting)
        confidentiality.classify(cat, users.User("zhou.chief", "bureau_chief"), "case",
                                 "confidential", "special case", case_no="FZ-SECRET")
        cat.act(head, users.change_event("ma.keeper", active=False))
    return a, rids


@pytest.fixture
def world(template, tmp_path):
    import shutil
    a = tmp_path / "arch"
    shutil.copytree(template[0], a, symlinks=True)
    app = make_app(a, hosts=("testserver",))
    with TestClient(app, base_url="http://testserver") as c:
        yield c, a, template[1]


def test_03_access_pages_and_register_hide_what_the_user_may_not_see(world, monkeypatch):
    c, _a, rids = world
    used = {k: v[0] for k, v in rids.items()}
    waiting = {k: v[1] for k, v in rids.items()}
    # a clerk of clearance internal: nothing of the confidential case
    assert login(c, "li.na").status_code == 303
    page = c.get("/access").text
    assert used["FZ-OPEN"] in page and used["FZ-UTWO"] in page
    assert used["FZ-SECRET"] not in page and waiting["FZ-SECRET"] not in page
    assert "FZ-SECRET" not in page
    for rid in rids["FZ-SECRET"]:
        r = c.get("/request/" + rid)
        assert r.status_code == 404 and "FZ-SECRET" not in r.text
    reg = c.get("/register").text
    assert used["FZ-OPEN"] in reg and used["FZ-UTWO"] in reg
    assert used["FZ-SECRET"] not in reg and "FZ-SECRET" not in reg
    assert 'id="count">2' in reg
    printed = []
    from host_tools.catalogue import access_cli
    real = access_cli.write_register_pdf
    monkeypatch.setattr(access_cli, "write_register_pdf",
                        lambda cat, path, rows, *a, **kw: (printed.append(rows),
                                                           real(cat, path, rows, *a, **kw)))
    pdf = c.get("/register.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert [sorted(r["request_id"] for r in rows) for rows in printed] == [
        sorted([used["FZ-OPEN"], used["FZ-UTWO"]])]
    # a leader of unit U-1: neither the confidential case nor unit U-2's requests
    assert login(c, "zhao.lead").status_code == 303
    page = c.get("/access").text
    assert waiting["FZ-OPEN"] in page
    assert waiting["FZ-UTWO"] not in page and waiting["FZ-SECRET"] not in page
    assert c.get("/request/" + waiting["FZ-UTWO"]).status_code == 404
    assert c.get("/request/" + waiting["FZ-OPEN"]).status_code == 200
    t = token(c, "/search")
    r = c.post("/access/%s/approve" % waiting["FZ-SECRET"], data={"csrf_token": t})
    assert r.status_code == 404 and "FZ-SECRET" not in r.text
    reg = c.get("/register").text
    assert used["FZ-OPEN"] in reg and used["FZ-UTWO"] not in reg
    assert used["FZ-SECRET"] not in reg
    # the bureau chief, cleared for confidential, sees all of it
    assert login(c, "zhou.chief", PW2["zhou.chief"]).status_code == 303
    page = c.get("/access").text
    assert all(w in page for w in waiting.values())
    reg = c.get("/register").text
    assert all(u in reg for u in used.values()) and 'id="count">3' in reg
    assert c.get("/request/" + used["FZ-SECRET"]).status_code == 200


def test_03_a_request_on_a_hidden_case_is_as_on_no_case(world):
    c, _a, _rids = world
    login(c, "li.na")
    t = token(c, "/access")
    answers = []
    for case in ("FZ-SECRET", "FZ-NONE"):
        r = c.post("/access/new", data={"target_kind": "case", "target": case,
                                        "case_no": case, "purpose": "hearing",
                                        "actions": ["view"], "csrf_token": t},
                   follow_redirects=False)
        answers.append((r.status_code, r.text.replace(case, "X")))
    assert answers[0][0] == 400 and answers[0][0] == answers[1][0]
    assert "no case X" in answers[0][1] and "no case X" in answers[1][1]


def test_03_exports_page_lists_no_disc_of_a_hidden_case(world):
    import sqlalchemy as sa
    from host_tools.catalogue import db
    c, a, _rids = world
    from host_tools.catalogue import store
    with Catalogue(a) as cat, cat.engine.begin() as conn:
        # an archive number of the hidden case's recording (rows only: the page reads rows)
        rid = store.recording_id(conn, DEV, CASES["FZ-SECRET"][1])
        conn.execute(db.archive_numbers.insert().values(
            number="NUM-SECRET-1", event=1, agency="A", day="2026-12-01", party="p",
            step="s", serial=1, by_user="li.na", at="2026-12-01T00:00:00.000Z"))
        conn.execute(db.number_items.insert().values(number="NUM-SECRET-1",
                                                     recording_id=rid))
        for i, ref in enumerate(("FZ-OPEN", "FZ-SECRET", "NUM-SECRET-1")):
            conn.execute(db.discs.insert().values(
                id=10_000 + i, ref=ref, image_sha256="ab" * 32, contents_sha256="cd" * 32,
                label="{}", by_user="li.na", at="2026-12-01T00:00:00.000Z"))
        assert conn.execute(sa.select(sa.func.count()).select_from(db.discs)).scalar() == 3
    login(c, "li.na")
    page = c.get("/exports").text
    assert "FZ-OPEN" in page and "FZ-SECRET" not in page and "NUM-SECRET-1" not in page
    login(c, "zhou.chief", PW2["zhou.chief"])
    page = c.get("/exports").text
    assert "FZ-SECRET" in page and "NUM-SECRET-1" in page


def _custody_rows(page):
    sec = page.split("<h2>Custody</h2>", 1)
    assert len(sec) == 2, page[-2000:]
    return re.findall(r'<tr class="problem"><td>(case|hold) ', sec[1])


def test_04_report_custody_hides_what_the_user_may_not_see(world):
    c, _a, _rids = world
    login(c, "li.na")
    page = c.get("/report").text
    assert "FZ-OPEN" in page and "FZ-UTWO" in page
    assert "FZ-SECRET" not in page
    assert sorted(_custody_rows(page)) == ["case", "case", "hold", "hold"]
    login(c, "zhou.chief", PW2["zhou.chief"])
    page = c.get("/report").text
    assert "FZ-SECRET" in page
    assert sorted(_custody_rows(page)) == ["case"] * 3 + ["hold"] * 3


# -- #08 a session ends -----------------------------------------------------------------

def _signed_in(c):
    r = c.get("/search", follow_redirects=False)
    return r.status_code == 200


def test_08_a_session_ends_at_sign_out_for_good(world):
    c, _a, _rids = world
    assert login(c, "li.na").status_code == 303 and _signed_in(c)
    stolen = c.cookies.get(SESSION_COOKIE)
    t = token(c, "/search")
    assert c.post("/logout", data={"csrf_token": t}, follow_redirects=False).status_code == 303
    assert not _signed_in(c)
    other = TestClient(c.app, base_url="http://testserver")
    other.cookies.set(SESSION_COOKIE, stolen)
    assert not _signed_in(other)


@pytest.mark.parametrize("change", ["deactivated", "password", "role"])
def test_08_a_session_ends_when_the_user_changes(world, change):
    c, a, _rids = world
    assert login(c, "li.na").status_code == 303 and _signed_in(c)
    stolen = c.cookies.get(SESSION_COOKIE)
    head = users.User("wang.head", "archive_head")
    with Catalogue(a) as cat:
        if change == "password":
            cat.act(head, users.password_event("li.na", "a new pass 2026"))
        elif change == "role":
            cat.act(head, users.change_event("li.na", role="technician"))
        else:
            cat.act(head, users.change_event("li.na", active=False))
            cat.act(head, users.change_event("li.na", active=True))     # back, too late
    assert not _signed_in(c)
    other = TestClient(c.app, base_url="http://testserver")
    other.cookies.set(SESSION_COOKIE, stolen)
    assert not _signed_in(other)
    if change != "password":
        assert login(c, "li.na").status_code == 303 and _signed_in(c)


def test_a_users_row_edited_in_the_database_ends_the_session(world):
    """attack13 #02: role, unit and clearance of a signed-in session come from the signed
    log on every request; a users row raised in the database (clearance, role) shows
    nothing more, it ends the session."""
    import sqlite3
    c, a, _rids = world
    assert login(c, "li.na").status_code == 303 and _signed_in(c)
    assert c.get("/case/FZ-SECRET").status_code == 404
    db = sqlite3.connect(str(a / "catalogue.sqlite"))
    db.execute("UPDATE users SET clearance='confidential', role='auditor' WHERE name='li.na'")
    db.commit()
    db.close()
    r = c.get("/case/FZ-SECRET")
    assert "title of FZ-SECRET" not in r.text and not _signed_in(c)


# -- #09 the lockout ------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_09_lockout_per_user_name_however_written(world, monkeypatch):
    c, a, _rids = world
    clock = Clock()
    monkeypatch.setattr(auth, "_clock", clock)
    for _ in range(auth.FAIL_MAX):
        assert login(c, "zhao.lead", "wrong wrong").status_code == 401
    for variant in ("ZHAO.LEAD", " zhao.lead ", "Zhao.Lead ", "ｚｈａｏ.ｌｅａｄ"):
        r = c.post("/login", data={"name": variant, "password": PW["zhao.lead"],
                                   "csrf_token": token(c)}, follow_redirects=False)
        assert r.status_code == 429, variant
    assert login(c, "zhao.lead").status_code == 429
    # another user's success clears nothing; nor does a second desk of this process
    assert login(c, "li.na").status_code == 303
    assert login(c, "zhao.lead").status_code == 429
    app2 = make_app(a, hosts=("testserver",))
    with TestClient(app2, base_url="http://testserver",
                    client=("10.0.0.9", 5000)) as c2:
        assert login(c2, "zhao.lead").status_code == 429
    # the lock expires; one more failure locks again at once (not reset by waiting)
    clock.t += auth.LOCK_S + 1
    assert login(c, "zhao.lead", "wrong again").status_code == 401
    assert login(c, "zhao.lead").status_code == 429
    # a success after the lock expired resets that user's count
    clock.t += auth.LOCK_MAX_S + 1
    assert login(c, "zhao.lead").status_code == 303
    assert login(c, "zhao.lead", "wrong wrong").status_code == 401
    assert login(c, "zhao.lead").status_code == 303


def test_09_lockout_per_client_address(world, monkeypatch):
    c, _a, _rids = world
    monkeypatch.setattr(auth, "_clock", Clock())
    # many names, none failing FAIL_MAX times, from one address
    for n in range(auth.ADDR_FAIL_MAX):
        assert login(c, "li.na", "wrong %d" % n).status_code == 401 if n < 2 else \
            c.post("/login", data={"name": "nobody%d" % n, "password": "wrong wrong",
                                   "csrf_token": token(c)}).status_code == 401
    r = login(c, "chen.chief")
    assert r.status_code == 429 and "from this computer" in r.text
    assert int(r.headers["retry-after"]) <= auth.ADDR_WINDOW_S
    other = TestClient(c.app, base_url="http://testserver", client=("10.0.0.7", 5000))
    assert login(other, "chen.chief").status_code == 303


def test_09_many_names_do_not_clear_a_lock(world, monkeypatch):
    c, _a, _rids = world
    monkeypatch.setattr(auth, "_clock", Clock())
    monkeypatch.setattr(auth, "TRACK_MAX", 8)
    for _ in range(auth.FAIL_MAX):
        login(c, "zhao.lead", "wrong wrong")
    for i in range(20):        # from other addresses: flooding the table of names
        o = TestClient(c.app, base_url="http://testserver", client=("10.1.0.%d" % i, 1))
        o.post("/login", data={"name": "nobody%d" % i, "password": "wrong wrong",
                               "csrf_token": token(o)})
    assert login(c, "zhao.lead").status_code == 429


# -- #13 the language link ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "//evil.example",
                                  "/%5Cevil.example/x"])
def test_13_the_language_link_stays_on_the_desk(world, path):
    c, _a, _rids = world
    r = c.get("http://testserver" + path)
    hrefs = re.findall(r'<a href="([^"]*)" hreflang', r.text)
    assert hrefs, r.text[:800]
    assert [h.split("?")[0] for h in hrefs] == ["/"], hrefs


def test_13_the_language_link_keeps_the_page(world):
    from host_tools.desk.web import local_path
    c, _a, _rids = world
    login(c, "li.na")
    r = c.get("/register")
    assert '<a href="/register?lang=zh_CN" hreflang' in r.text
    assert local_path("/case/FZ 1/x") == "/case/FZ%201/x"
    for bad in ("//x.example", "/\\x.example", "https://x.example/", "x/y", "", None,
                "/a\nb", "/\t/x.example"):
        assert local_path(bad) == "/", bad


def _revoke(c, rid, reason):
    t = token(c, "/request/" + rid) if c.get("/request/" + rid).status_code == 200 else \
        token(c, "/search")
    return c.post("/access/%s/revoke" % rid, data={"reason": reason, "csrf_token": t},
                  follow_redirects=False)


def test_17_revoke_on_the_request_page(world):
    """#17: one who approved a request, or an archive head, revokes it on its page with a
    reason (a form with the CSRF token); the page then shows it revoked, and nothing is
    used under it. Others get no button, and the access module refuses them."""
    c, a, rids = world
    rid = rids["FZ-OPEN"][0]            # approved by wu.head and zhao.lead, used once
    login(c, "li.na")                   # the requester: no button, and no permission
    page = c.get("/request/" + rid).text
    assert 'id="revoke"' not in page
    assert _revoke(c, rid, "no more").status_code == 403
    login(c, "chen.chief")              # a bureau chief who did not approve it
    assert 'id="revoke"' not in c.get("/request/" + rid).text
    r = _revoke(c, rid, "no more")
    assert r.status_code == 403 and "neither approved" in r.text and "Traceback" not in r.text
    assert login(c, "wu.head", PW2["wu.head"]).status_code == 303
    assert 'id="revoke"' in c.get("/request/" + rid).text      # an archive head may
    login(c, "zhao.lead")               # who approved it
    page = c.get("/request/" + rid).text
    assert 'id="revoke"' in page and 'name="csrf_token"' in page
    assert c.post("/access/%s/revoke" % rid, data={"reason": "x"}).status_code == 403
    assert _revoke(c, rid, "").status_code == 400                # a revocation says why
    assert _revoke(c, rid, "the hearing was <b>cancelled</b>").status_code == 303
    page = c.get("/request/" + rid).text
    assert 'id="state">revoked' in page.replace("\n", "") and 'id="revoke"' not in page
    assert "revoked by zhao.lead" in page and "&lt;b&gt;cancelled" in page
    assert "<b>cancelled" not in page
    assert _revoke(c, rid, "again").status_code == 403           # revoked already
    login(c, "li.na")
    page = c.get("/request/" + rid).text
    assert 'id="state">revoked' in page.replace("\n", "") and "was revoked" in page
    with Catalogue(a) as cat:           # nothing is used under it from now on
        with pytest.raises(access.AccessRefused):
            access.authorize(cat, users.User("li.na", "clerk"), rid, "view", DEV, 1)


def test_14_a_request_asks_at_most_the_stations_valid_days(world):
    """#14: the form's valid_days goes up to the station's [access] valid_days; a request
    for more is refused in the access module's one line."""
    c, a, _rids = world
    toml = a / "station.toml"
    toml.write_text((toml.read_text() if toml.exists() else "") +
                    "\n[access]\nvalid_days = 10\n")
    app = make_app(a, hosts=("testserver",))
    with TestClient(app, base_url="http://testserver") as c2:
        login(c2, "li.na")
        page = c2.get("/access").text
        assert re.search(r'name="valid_days" type="number" min="1" max="10"', page), page
        t = token(c2, "/access")
        form = {"target_kind": "case", "target": "FZ-OPEN", "case_no": "FZ-OPEN",
                "purpose": "hearing", "actions": ["view"], "csrf_token": t}
        for days in ("11", "366"):
            r = c2.post("/access/new", data=dict(form, valid_days=days),
                        follow_redirects=False)
            assert r.status_code == 400 and "1 to 10 days" in r.text, r.text
            assert "Traceback" not in r.text
        r = c2.post("/access/new", data=dict(form, valid_days="10"), follow_redirects=False)
        assert r.status_code == 303, r.text
        rid = r.headers["location"].rsplit("/request/", 1)[1]
    with Catalogue(a) as cat:
        st = access.state(cat, rid)
        import datetime as dt
        made, until = (dt.datetime.fromisoformat(st[k]) for k in ("requested_at",
                                                                  "valid_until"))
        assert until - made == dt.timedelta(days=10)


def test_02_03b_the_access_module_decides_what_a_viewer_sees(world):
    """The desk asks access.requests / state / register with viewer= the signed-in user:
    a clerk's register holds the uses of its own requests only, not another clerk's
    (the module's rule, which the desk's own visibility filter alone did not cover)."""
    c, a, rids = world
    with Catalogue(a) as cat:
        cat.act(users.User("wang.head", "archive_head"),
                users.add_event("sun.clerk", "clerk", password="sun clerk pass 2026"))
        sun = users.User("sun.clerk", "clerk")
        rid = access.request(cat, sun, target_kind="case", target="FZ-OPEN",
                             case_no="FZ-OPEN", purpose="sun's hearing", actions=("view",))
        access.approve(cat, users.User("wu.head", "archive_head"), rid)
        access.approve(cat, users.User("zhao.lead", "unit_leader", unit="U-1"), rid)
        access.record_use(cat, sun, rid, "view", device=DEV, segment=CASES["FZ-OPEN"][1])
    login(c, "li.na")
    reg = c.get("/register").text
    assert rids["FZ-OPEN"][0] in reg and rid not in reg and "sun.clerk" not in reg
    assert rid not in c.get("/access").text
    assert c.get("/request/" + rid).status_code in (403, 404)
    login(c, "wang.head")               # an archive head reads the whole register
    reg = c.get("/register").text
    assert rid in reg and "sun.clerk" in reg
    assert c.get("/request/" + rid).status_code == 200
    login(c, "zhao.lead")               # who approved it, of the case's unit
    assert rid in c.get("/register").text
    assert c.get("/request/" + rid).status_code == 200
