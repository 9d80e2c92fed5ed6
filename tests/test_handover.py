"""R21 / R9 (handover; issue 12 item 5): when a clerk or an officer moves on, the open cases
and holds they keep go to a named successor, both signing; the report lists what had no
successor. Driven through the real `sealcam` command (host_tools.cli.main)."""
import json

import pytest
import sqlalchemy as sa

from host_tools import cli, station
from host_tools.archive.common import utcnow
from host_tools.catalogue import cases, db, retention, users
from host_tools.catalogue.store import Catalogue
from test_clerk_common import add_recording

PW = {"wang.head": "head pass 2023", "li.na": "clerk pass 2023",
      "zhao.lead": "leader pass 2023", "qian.clerk": "other pass 2023",
      "ofc-0001": "officer pass 2023"}
ROLE = {"li.na": "clerk", "zhao.lead": "unit_leader", "qian.clerk": "clerk",
        "ofc-0001": "officer"}


def _u(name):
    return users.User(name, "archive_head" if name == "wang.head" else ROLE[name])


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    """An archive whose users have passwords; li.na opened FZ-1 and FZ-2, zhao.lead holds
    FZ-1. Returns (sealcam, arch, url)."""
    url = "sqlite:///%s" % (tmp_path / "catalogue.sqlite")
    return _world(tmp_path, url, monkeypatch, capsys)


def _world(tmp_path, url, monkeypatch, capsys):
    arch = tmp_path / "arch"
    station.init(arch)
    monkeypatch.delenv("SEALCAM_USER", raising=False)
    with Catalogue(arch, url) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", password=PW["wang.head"],
                                      clearance="restricted"))     # who clears others
        for name, role in ROLE.items():
            cat.act(_u("wang.head"), users.add_event(name, role, password=PW[name]))
        add_recording(cat, "SC-1", 5)
        cat.act(_u("li.na"), cases.opened_event("FZ-1", "违法建设 五一路 12号"))
        cat.act(_u("li.na"), cases.opened_event("FZ-2", "占道经营"))
        retention.hold(cat, _u("zhao.lead"), "case:FZ-1", "case", "lawsuit pending")

    def sealcam(*argv, user=None):
        argv = [str(a) for a in argv] + ["--archive", str(arch), "--db", url]
        if user:
            argv += ["--user", user]
            monkeypatch.setenv("SEALCAM_PASSWORD", PW[user])
        capsys.readouterr()
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return code, out, err
    return sealcam, str(arch), url


def _keepers(arch, url):
    with Catalogue(arch, url) as cat:
        cat.sync()
        with cat.engine.connect() as conn:
            c = dict(conn.execute(sa.select(db.cases.c.case_no, db.cases.c.keeper)).all())
            h = dict(conn.execute(sa.select(db.holds.c.id, db.holds.c.keeper)).all())
    return c, h


def test_r21_a_handover_moves_a_case(tmp_path, catalogue_url, monkeypatch, capsys):
    sealcam, arch, url = _world(tmp_path, catalogue_url, monkeypatch, capsys)
    code, out, err = sealcam("handover", "kept", "li.na", "--json")
    assert code == 0 and json.loads(out)["cases"] == ["FZ-1", "FZ-2"]
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--case", "FZ-1",
                             "--reason", "transferred to the Gulou unit", "--json",
                             user="li.na")
    assert code == 0, (out, err)
    hid = json.loads(out)["handover"]
    code, out, err = sealcam("handover", "list", "--pending", "--json")
    assert [h["id"] for h in json.loads(out)["handovers"]] == [hid]
    code, out, err = sealcam("handover", "accept", hid, "--json", user="qian.clerk")
    assert code == 0, (out, err)
    acc = json.loads(out)["log_entry"]
    c, h = _keepers(arch, url)
    assert c == {"FZ-1": "qian.clerk", "FZ-2": None}        # FZ-2 stays with its opener
    # both signed: one entry each, by the one who leaves and by the successor, under the
    # station's signed checkpoint
    with Catalogue(arch, url) as cat:
        off, ok = cat.entry(hid), cat.entry(acc)
        assert (off["type"], off["by"], off["from"], off["to"], off["cases"]) == (
            "handover_offered", "li.na", "li.na", "qian.clerk", ["FZ-1"])
        assert (ok["type"], ok["by"], ok["handover"]) == ("handover_accepted", "qian.clerk",
                                                          hid)
        lg = cat.archive.log()
        a = lg.account(station.station_pub(arch))
        assert a.problem is None and a.signed > acc
    # the log is the truth: a rebuild gives the same keepers, and the check agrees
    code, out, err = sealcam("catalogue", "reindex", "--json")
    assert code == 0 and json.loads(out)["problems"] == []
    assert _keepers(arch, url) == (c, h)
    code, out, err = sealcam("catalogue", "check")
    assert code == 0, out
    code, out, err = sealcam("handover", "accept", hid, user="qian.clerk")
    assert code == 3 and "accepted already" in err


def test_r21_a_third_user_cannot_accept(world):
    sealcam, arch, url = world
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--reason", "retired",
                             "--json", user="li.na")
    assert code == 0, err
    hid = json.loads(out)["handover"]
    code, out, err = sealcam("handover", "accept", hid, user="zhao.lead")
    assert code == 5 and "only qian.clerk" in err, err
    assert _keepers(arch, url)[0] == {"FZ-1": None, "FZ-2": None}
    # nor does a forged acceptance appended to the log behind the catalogue's back count:
    # the handler refuses it on replay too
    with Catalogue(arch, url) as cat:
        cat.archive.log().append([{"type": "handover_accepted", "at": utcnow(),
                                   "by": "zhao.lead", "handover": hid}])
        cat.reindex()
        assert any("handover_accepted" in p and "only qian.clerk" in p for p in cat.problems)
    assert _keepers(arch, url)[0] == {"FZ-1": None, "FZ-2": None}


def test_r21_a_deactivated_users_case_without_handover_shows_in_the_report(world):
    sealcam, arch, url = world
    code, out, err = sealcam("user", "set", "li.na", "--active", "no", user="wang.head")
    assert code == 0, err

    def orphans():
        code, out, err = sealcam("report", "--json")
        rep = json.loads(out)
        return ({p["message"].split(" is kept")[0] for p in rep["problems"]
                 if p["kind"] == "no_successor"}, rep["custody"]["without_successor"])
    names, rows = orphans()
    assert names == {"case FZ-1", "case FZ-2"}
    assert {(r["kind"], r["id"], r["keeper"]) for r in rows} == {
        ("case", "FZ-1", "li.na"), ("case", "FZ-2", "li.na")}
    code, out, err = sealcam("handover", "list", "--orphaned")
    assert code == 1 and "FZ-2" in out
    code, out, err = sealcam("report")
    assert "CUSTODY" in out and "FZ-2: li.na" in out
    # li.na is gone: the archive head signs on her behalf; the successor accepts
    code, out, err = sealcam("handover", "offer", "--from", "li.na", "--to", "zhao.lead",
                             "--reason", "left without handing over", "--json",
                             user="wang.head")
    assert code == 0, err
    hid = json.loads(out)["handover"]
    names, rows = orphans()
    assert {r["offered_to"] for r in rows} == {"zhao.lead"}     # offered, not yet accepted
    # the successor leaves before accepting: no successor again, and it may be offered anew
    assert sealcam("user", "set", "zhao.lead", "--active", "no", user="wang.head")[0] == 0
    names, rows = orphans()
    assert {r["offered_to"] for r in rows} == {None} and len(rows) == 3   # + zhao's hold
    code, out, err = sealcam("handover", "offer", "--from", "li.na", "--to", "qian.clerk",
                             "--reason", "the first successor left", "--json",
                             user="wang.head")
    assert code == 0, err
    hid2 = json.loads(out)["handover"]
    assert sealcam("user", "set", "zhao.lead", "--active", "yes", user="wang.head")[0] == 0
    assert sealcam("handover", "accept", hid2, user="qian.clerk")[0] == 0
    code, out, err = sealcam("handover", "accept", hid, user="zhao.lead")
    assert code == 3 and "any more" in err      # qian.clerk keeps them now
    assert _keepers(arch, url)[0] == {"FZ-1": "qian.clerk", "FZ-2": "qian.clerk"}
    names, rows = orphans()
    assert names == set() and rows == []


def test_r21_who_may_offer_and_to_whom(world):
    sealcam, arch, url = world
    # the one who leaves signs while active: the head may not sign for her
    code, out, err = sealcam("handover", "offer", "--from", "li.na", "--to", "qian.clerk",
                             "--reason", "x", user="wang.head")
    assert code == 5 and "still active" in err
    # a successor whose role may not keep cases; oneself; nobody
    code, out, err = sealcam("handover", "offer", "--to", "ofc-0001", "--reason", "x",
                             user="li.na")
    assert code == 3 and "may not keep cases" in err
    code, out, err = sealcam("handover", "offer", "--to", "li.na", "--reason", "x",
                             user="li.na")
    assert code == 3 and "another active user" in err
    code, out, err = sealcam("handover", "offer", "--to", "nobody.here", "--reason", "x",
                             user="li.na")
    assert code == 3
    # a case she does not keep; nothing kept at all
    code, out, err = sealcam("handover", "offer", "--to", "li.na", "--case", "FZ-1",
                             "--reason", "x", user="qian.clerk")
    assert code == 3
    code, out, err = sealcam("handover", "offer", "--to", "li.na", "--reason", "x",
                             user="qian.clerk")
    assert code == 3 and "nothing to hand over" in err
    # the hold zhao.lead placed goes with the leader's own handover
    code, out, err = sealcam("handover", "offer", "--to", "wang.head", "--reason", "moved",
                             "--json", user="zhao.lead")
    items = json.loads(out)["items"]
    assert code == 0 and items["cases"] == [] and len(items["holds"]) == 1
    hid = json.loads(out)["handover"]
    code, out, err = sealcam("handover", "offer", "--to", "wang.head", "--reason", "again",
                             user="zhao.lead")
    assert code == 3                             # already in a pending offer
    assert sealcam("handover", "accept", hid, user="wang.head")[0] == 0
    assert set(_keepers(arch, url)[1].values()) == {"wang.head"}


def _schema(rule):
    import os
    import re
    pycddl = pytest.importorskip("pycddl")
    text = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "protocol",
                             "schema.cddl")).read()
    for other in ("clerk-classified", "clerk-access-event", "clerk-copy-made",
                  "clerk-disc-made", "clerk-backup-made"):
        if not re.search(r"^%s\s*=" % other, text, re.M):
            text += "\n%s = nil\n" % other
    return pycddl.Schema("root = %s\n" % rule + text)


def test_r21_the_handover_events_match_the_cddl(world):
    import cbor2
    sealcam, arch, url = world
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--reason", "调岗",
                             "--json", user="li.na")
    hid = json.loads(out)["handover"]
    assert sealcam("handover", "accept", hid, user="qian.clerk")[0] == 0
    one, entry = _schema("clerk-handover-event"), _schema("log-entry")
    seen = []
    with Catalogue(arch, url) as cat:
        for i, raw, e in cat.archive.log().entries():
            if e["type"].startswith("handover_"):
                one.validate_cbor(raw)
                entry.validate_cbor(raw)
                seen.append(e["type"])
        bad = dict(cat.entry(hid), holds=["1"])
    assert seen == ["handover_offered", "handover_accepted"]
    with pytest.raises(Exception):
        one.validate_cbor(cbor2.dumps(bad, canonical=True))


def test_r21_a_wrong_offer_is_withdrawn_and_cannot_be_accepted_after(world):
    import cbor2
    sealcam, arch, url = world
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--case", "FZ-1",
                             "--reason", "transferred", "--json", user="li.na")
    assert code == 0, err
    hid = json.loads(out)["handover"]
    # only the offerer or an archive head withdraws it; a reason is needed
    code, out, err = sealcam("handover", "withdraw", hid, "--reason", "not mine",
                             user="qian.clerk")
    assert code == 5 and "withdraw" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = sealcam("handover", "withdraw", hid, "--reason", " ", user="li.na")
    assert code == 3 and "reason" in err, err
    code, out, err = sealcam("handover", "withdraw", hid, "--reason", "wrong successor",
                             "--json", user="li.na")
    assert code == 0, err
    wid = json.loads(out)["log_entry"]
    code, out, err = sealcam("handover", "list", "--pending", "--json")
    assert json.loads(out)["handovers"] == []
    code, out, err = sealcam("handover", "list")
    assert "withdrawn" in out, out
    # the successor can no longer accept it; it cannot be withdrawn twice
    code, out, err = sealcam("handover", "accept", hid, user="qian.clerk")
    assert code == 3 and "withdrawn" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = sealcam("handover", "withdraw", hid, "--reason", "again", user="li.na")
    assert code == 3 and "withdrawn" in err, err
    assert _keepers(arch, url)[0] == {"FZ-1": None, "FZ-2": None}
    # the case is free to be offered again, to the right successor
    code, out, err = sealcam("handover", "offer", "--to", "zhao.lead", "--case", "FZ-1",
                             "--reason", "transferred", "--json", user="li.na")
    assert code == 0, err
    hid2 = json.loads(out)["handover"]
    # an archive head withdraws an offer too
    code, out, err = sealcam("handover", "withdraw", hid2, "--reason", "unit reorganised",
                             user="wang.head")
    assert code == 0, err
    # an acceptance of the withdrawn offer forged into the log is refused on replay
    with Catalogue(arch, url) as cat:
        cat.archive.log().append([{"type": "handover_accepted", "at": utcnow(),
                                   "by": "qian.clerk", "handover": hid}])
        cat.reindex()
        assert any("handover_accepted" in p and "withdrawn" in p for p in cat.problems), \
            cat.problems
        e = cat.entry(wid)
        assert (e["type"], e["by"], e["handover"], e["reason"]) == (
            "handover_withdrawn", "li.na", hid, "wrong successor")
        raw = [r for _i, r, _e in cat.archive.log().entries(wid, wid + 1)][0]
    assert _keepers(arch, url)[0] == {"FZ-1": None, "FZ-2": None}
    for rule in ("clerk-handover-event", "log-entry"):
        _schema(rule).validate_cbor(raw)
    with pytest.raises(Exception):
        _schema("clerk-handover-event").validate_cbor(cbor2.dumps(
            dict(e, handover="1"), canonical=True))


def test_r21_r16_a_successor_must_be_cleared_for_what_is_handed_over(world):
    """A case classified restricted goes only to a successor whose clearance reaches it (the
    newcomer's run: a default-clearance successor accepted a case she could not see)."""
    from host_tools.catalogue import confidentiality
    sealcam, arch, url = world
    with Catalogue(arch, url) as cat:
        cat.act(_u("wang.head"), users.add_event("wu.head", "archive_head", password="x pass 1",
                                                 clearance="restricted"))
        confidentiality.classify(cat, users.User("wu.head", "archive_head",
                                                 clearance="restricted"),
                                 "case", "restricted", "涉及证人", case_no="FZ-2")
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--case", "FZ-2",
                             "--reason", "transferred", user="li.na")
    assert code == 3 and "clearance" in err and len(err.strip().splitlines()) == 1, err
    with Catalogue(arch, url) as cat:
        cat.act(_u("wang.head"), users.change_event("qian.clerk", clearance="restricted"))
    code, out, err = sealcam("handover", "offer", "--to", "qian.clerk", "--case", "FZ-2",
                             "--reason", "transferred", user="li.na")
    assert code == 0, err
