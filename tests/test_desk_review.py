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
    make_users(a)
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
            add_recording(cat, DEV, seg)
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
