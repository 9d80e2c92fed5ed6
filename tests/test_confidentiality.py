"""Confidentiality levels (host_tools.catalogue.confidentiality; R16, SPEC §14.8) on SQLite
and on a real PostgreSQL: restricted and confidential records do not exist for a user whose
clearance is lower (search, case show, case incident), a classified case hides its
recordings, only archive heads and the bureau chief classify, never above their own
clearance, lowering is the bureau chief's, and a reindex from the signed log keeps every
level."""
import pytest

from test_clerk_common import A, B, T0, add_recording, catalogue
from host_tools.catalogue import cases, confidentiality as C, search as S, store, users

NO_REC = "no recording"


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url, head_clearance="confidential")
    head = u["head"]
    for name, role, clearance in (("qian.head", "archive_head", "confidential"),
                                  ("zhou.clerk", "clerk", "confidential"),
                                  ("wu.head", "archive_head", "restricted")):
        cat.act(head, users.add_event(name, role, os_account="nosuch-" + name,
                                      clearance=clearance))
        u[name] = users.User(name, role, how="os", clearance=clearance)
    add_recording(cat, A, 2, start_ms=T0)
    add_recording(cat, A, 3, start_ms=T0 + 1000)
    add_recording(cat, B, 5, start_ms=T0 + 2000)
    cat.act(u["clerk"], cases.opened_event("FZ-1", "专案"))
    cat.act(u["clerk"], cases.linked_event("FZ-1", device=A, segment=3))
    cat.act(u["clerk"], cases.linked_event("FZ-1", device=B, segment=5, role="angle"))
    yield cat, u
    cat.close()


def _found(cat, viewer, **f):
    with cat.engine.connect() as conn:
        return [(r["device"], r["segment"]) for r in S.search(conn, S.Filters(**f), None,
                                                               viewer=viewer)]


def test_r16_confidential_recording_is_invisible_to_internal_clearance(world):
    cat, u = world
    C.classify(cat, u["qian.head"], "recording", "confidential", "名单涉及证人",
               device=A, segment=3)
    clerk = u["clerk"]                     # clearance: the default, internal
    assert (A, 3) not in _found(cat, clerk)
    assert (A, 3) not in _found(cat, None)        # no signed-in user: internal
    assert (A, 3) in _found(cat, u["zhou.clerk"])
    assert (A, 3) not in _found(cat, clerk, device=[A])
    assert _found(cat, clerk, case="FZ-1") == [(B, 5)]
    s = cases.show(cat, "FZ-1", clerk)
    assert [(r["device"], r["segment"]) for r in s["recordings"]] == [(B, 5)]
    assert all(h["segment"] != 3 for h in s["history"])
    s = cases.show(cat, "FZ-1", u["zhou.clerk"])
    assert [(r["device"], r["segment"]) for r in s["recordings"]] == [(A, 3), (B, 5)]
    with pytest.raises(store.CatalogueError, match=NO_REC):
        cases.incident(cat, A, 3, clerk)
    assert [(x["device"], x["segment"]) for x in cases.incident(cat, B, 5, clerk)] == []
    assert [(x["device"], x["segment"]) for x in
            cases.incident(cat, B, 5, u["zhou.clerk"])] == [(A, 3)]
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, A, 3)
        assert C.level_of_recording(conn, rid) == "confidential"
        with pytest.raises(store.PermissionRefused, match=NO_REC):
            C.require_visible(conn, clerk, rid)
        assert C.require_visible(conn, u["zhou.clerk"], rid) == "confidential"


def test_r16_a_classified_case_hides_itself_and_its_recordings(world):
    cat, u = world
    C.classify(cat, u["wu.head"], "case", "restricted", "涉密案件", case_no="FZ-1")
    clerk = u["clerk"]
    assert cases.show(cat, "FZ-1", clerk) is None          # as if it did not exist
    assert cases.show(cat, "FZ-none", clerk) is None
    assert _found(cat, clerk) == [(A, 2)]
    assert _found(cat, u["wu.head"]) == [(B, 5), (A, 3), (A, 2)]
    with cat.engine.connect() as conn:
        assert C.level_of_case(conn, "FZ-1") == "restricted"
        assert C.level_of_recording(conn, store.recording_id(conn, B, 5)) == "restricted"
    # taken out of the case (by one who may see it), the recording keeps the case's
    # level (#16; SPEC §14.8)
    cat.act(u["wu.head"], cases.unlinked_event("FZ-1", "wrong case", device=B, segment=5))
    assert (B, 5) not in _found(cat, clerk)


def test_r16_classify_above_own_clearance_or_unseen_or_by_a_clerk_is_refused(world):
    cat, u = world
    with pytest.raises(store.PermissionRefused, match="above their own clearance"):
        C.classify(cat, u["wu.head"], "recording", "confidential", "x", device=A, segment=2)
    with pytest.raises(store.PermissionRefused):
        C.classify(cat, u["zhou.clerk"], "recording", "restricted", "x", device=A, segment=2)
    C.classify(cat, u["qian.head"], "recording", "confidential", "x", device=A, segment=2)
    # a record above his clearance does not exist for wu.head
    with pytest.raises(store.CatalogueError, match=NO_REC):
        C.classify(cat, u["wu.head"], "recording", "restricted", "y", device=A, segment=2)
    # lowering is the bureau chief's, never an archive head's
    with pytest.raises(store.PermissionRefused, match="bureau chief"):
        C.classify(cat, u["qian.head"], "recording", "internal", "over", device=A, segment=2)
    with pytest.raises(store.CatalogueError, match="reason"):
        C.classify(cat, u["qian.head"], "case", "restricted", "  ", case_no="FZ-1")
    with pytest.raises(store.CatalogueError, match="already"):
        C.classify(cat, u["qian.head"], "recording", "confidential", "x", device=A, segment=2)
    with pytest.raises(store.CatalogueError, match="unknown level"):
        C.classify(cat, u["qian.head"], "case", "top-secret", "x", case_no="FZ-1")


def test_r16_reindex_keeps_levels_and_history(tmp_path, tmp_path_factory, catalogue_url):
    from test_clerk_common import add_users, real_archive
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with store.Catalogue(arch, catalogue_url) as cat:
        cat.refresh_recordings(None)
        u = add_users(cat, "confidential")
        for name, clearance in (("qian.head", "confidential"), ("wu.head", "restricted")):
            cat.act(u["head"], users.add_event(name, "archive_head", clearance=clearance,
                                               os_account="nosuch-" + name))
            u[name] = users.User(name, "archive_head", how="os", clearance=clearance)
        cat.act(u["clerk"], cases.opened_event("FZ-1", "专案"))
        cat.act(u["clerk"], cases.linked_event("FZ-1", device=B, segment=f["b1"]))
        C.classify(cat, u["qian.head"], "recording", "restricted", "first", device=A,
                   segment=f["a1"])
        C.classify(cat, u["qian.head"], "recording", "confidential", "second", device=A,
                   segment=f["a1"])
        C.classify(cat, u["wu.head"], "case", "restricted", "case", case_no="FZ-1")
        before = _found(cat, u["wu.head"])
        cat.reindex()
        assert not cat.problems
        assert _found(cat, u["wu.head"]) == before
        assert (B, f["b1"]) in before and (A, f["a1"]) not in before
        assert _found(cat, u["clerk"]) == [(A, f["a2"])]
        h = C.history(cat, u["qian.head"], "recording", device=A, segment=f["a1"])
        assert [(x["level"], x["reason"], bool(x["current"])) for x in h] == [
            ("restricted", "first", False), ("confidential", "second", True)]


def test_visible_clause_is_no_condition_at_full_clearance_or_when_nothing_is_hidden(world):
    cat, u = world
    import sqlalchemy as sa
    assert C.visible_clause("confidential") is not None
    with cat.engine.connect() as conn:
        assert str(C.visible_clause("internal", conn)) == str(sa.true())
        assert C.hidden_levels("internal") == ["restricted", "confidential"]
        assert C.hidden_levels(None) == ["restricted", "confidential"]


def test_r16_classify_search_and_case_show_on_the_command_line(tmp_path, tmp_path_factory,
                                                               monkeypatch, capsys):
    import argparse
    import json
    from test_clerk_common import real_archive
    from host_tools.catalogue import confidentiality_cli, filing_cli, search_forms
    arch, f = real_archive(tmp_path, tmp_path_factory)
    monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
    monkeypatch.delenv("SEALCAM_USER", raising=False)
    with store.Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("qian.head", "archive_head", clearance="confidential",
                                      os_account=users.os_login()))
        head = users.User("qian.head", "archive_head", how="os", clearance="confidential")
        cat.act(head, users.add_event("li.na", "clerk", password="clerk-password"))
        cat.act(head, cases.opened_event("FZ-9", "专案"))
        cat.act(head, cases.linked_event("FZ-9", device=B, segment=f["b1"]))
    p = argparse.ArgumentParser(prog="sealcam")
    sub = p.add_subparsers(dest="verb")
    confidentiality_cli.add_parsers(sub, argparse.HelpFormatter)
    filing_cli.add_parsers(sub, argparse.HelpFormatter)
    se = sub.add_parser("search")
    search_forms.add_command_arguments(se)
    se.set_defaults(func=search_forms.run)

    def run(*argv, user=None):
        if user == "li.na":
            monkeypatch.setenv("SEALCAM_PASSWORD", "clerk-password")
        else:
            monkeypatch.delenv("SEALCAM_PASSWORD", raising=False)
        args = p.parse_args([str(a) for a in argv] + ["--archive", str(arch)]
                            + (["--user", user] if user else []))
        return args.func(args)

    def listed(user):
        capsys.readouterr()
        assert run("search", "--json", user=user) == 0
        return {(r["device"], r["segment"])
                for r in json.loads(capsys.readouterr().out)["recordings"]}

    a1 = "%s:%d" % (A, f["a1"])
    assert (A, f["a1"]) in listed(None)
    assert run("classify", "--recording", a1, "--level", "confidential", "--reason", "证人",
               user="qian.head") == 0
    assert run("classify", "--case", "FZ-9", "--level", "restricted", "--reason", "专案",
               user="li.na") == 5                              # a clerk does not classify
    assert run("classify", "--case", "FZ-9", "--level", "restricted", "--reason", "专案",
               user="qian.head") == 0
    assert (A, f["a1"]) not in listed(None) and (A, f["a1"]) not in listed("li.na")
    assert (B, f["b1"]) not in listed("li.na")
    assert {(A, f["a1"]), (B, f["b1"])} <= listed("qian.head")
    capsys.readouterr()
    assert run("case", "show", "FZ-9", user="li.na") == 3
    assert "no case FZ-9" in capsys.readouterr().err
    assert run("case", "show", "FZ-9", user="qian.head") == 0
    assert B in capsys.readouterr().out
    assert run("classify", "show", "--recording", a1, "--json", user="qian.head") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["level"] == "confidential" and out["history"][0]["reason"] == "证人"
    # hidden and nonexistent read the same: message and exit code
    assert run("classify", "show", "--recording", a1, user="li.na") == 3
    hidden = capsys.readouterr().err.replace(a1.replace(":", "/"), "X")
    assert run("classify", "show", "--recording", A + ":999", user="li.na") == 3
    assert capsys.readouterr().err.replace(A + "/999", "X") == hidden
    assert "no recording X" in hidden


# -- #10: the levels are the signed log's, not the database's ------------------------------

def _edit(cat, sql):
    import sqlalchemy as sa
    with cat.engine.begin() as conn:
        conn.execute(sa.text(sql))


@pytest.mark.parametrize("edit", [
    "UPDATE classifications SET level = 'public'",
    "DELETE FROM classifications",
    "UPDATE classifications SET current = false",
    "UPDATE classifications SET kind = 'case', recording_id = NULL, case_no = 'FZ-none'",
])
def test_r16_classification_rows_edited_in_the_database_are_refused(world, edit):
    """#10: a classification row lowered, deleted or made not current with SQL access does
    not unhide the recording: search, case show and require_visible refuse with one line
    (`sealcam catalogue reindex` puts the log's rows back)."""
    cat, u = world
    C.classify(cat, u["qian.head"], "recording", "confidential", "证人", device=A, segment=3)
    clerk = u["clerk"]
    assert (A, 3) not in _found(cat, clerk)
    _edit(cat, edit)
    with store.Catalogue(cat.archive_dir, cat.url) as other:    # a new process
        for c in (cat, other):
            c.sync()
            with pytest.raises(store.CatalogueError, match="reindex") as e:
                _found(c, clerk)
            assert "\n" not in str(e.value)
            with pytest.raises(store.CatalogueError, match="reindex"):
                cases.show(c, "FZ-1", clerk)
            with c.engine.connect() as conn:
                with pytest.raises(store.CatalogueError, match="reindex"):
                    C.require_visible(conn, clerk, store.recording_id(conn, A, 3))
    _edit(cat, "DELETE FROM classifications")       # the rows as the log makes them
    _edit(cat, "INSERT INTO classifications (id, kind, recording_id, level, reason, current,"
               " by_user, at) SELECT %d, 'recording', id, 'confidential', '证人', true, "
               "'qian.head', '%s' FROM recordings WHERE device = '%s' AND segment = 3"
               % (_classified_at(cat)[0], _classified_at(cat)[1], A))
    assert (A, 3) not in _found(cat, clerk) and (A, 3) in _found(cat, u["zhou.clerk"])


def _classified_at(cat):
    """(log index, at) of the log's classified event."""
    lg = cat.archive.log()
    return next((i, e["at"]) for i, _r, e in lg.entries(0, lg.size)
                if e.get("type") == "classified")


def test_r16_a_forged_lower_classification_row_is_refused(world):
    """#10: a newer row inserted with SQL (a lower level) is no event of the log."""
    cat, u = world
    C.classify(cat, u["qian.head"], "recording", "confidential", "证人", device=A, segment=3)
    with cat.engine.connect() as conn:
        rid = store.recording_id(conn, A, 3)
    _edit(cat, "UPDATE classifications SET current = false")
    _edit(cat, "INSERT INTO classifications (id, kind, recording_id, level, reason, current,"
               " by_user, at) VALUES (99999, 'recording', %d, 'public', 'x', true, "
               "'zhou.chief', '2026-01-01T00:00:00Z')" % rid)
    cat.sync()
    with pytest.raises(store.CatalogueError, match="reindex"):
        _found(cat, u["clerk"])


# -- #16: leaving a case does not lower a recording's level --------------------------------

def test_r16_a_recording_keeps_its_case_level_after_unlinking(world):
    """#16: B/5 was restricted through case FZ-1; unlinked (or its `case` tag changed), it
    stays restricted until the bureau chief lowers it with a classify event (an archive
    head may not: lowering is the chief's)."""
    from host_tools.catalogue import tags
    cat, u = world
    cat.act(u["head"], users.add_event("zhou.chief", "bureau_chief", clearance="confidential",
                                       os_account="nosuch-chief"))
    chief = users.User("zhou.chief", "bureau_chief", how="os", clearance="confidential")
    cat.act(u["clerk"], tags.tag_event(A, 2, case="FZ-1"))
    C.classify(cat, u["wu.head"], "case", "restricted", "涉密案件", case_no="FZ-1")
    clerk = u["clerk"]
    assert _found(cat, clerk) == []
    cat.act(u["wu.head"], cases.unlinked_event("FZ-1", "wrong case", device=B, segment=5))
    cat.act(u["wu.head"], tags.tag_event(A, 2, case="FZ-2", reason="wrong case"))
    assert _found(cat, clerk) == []                       # still restricted
    with cat.engine.connect() as conn:
        for dev, seg in ((B, 5), (A, 2)):
            rid = store.recording_id(conn, dev, seg)
            assert C.level_of_recording(conn, rid) == "restricted"
            with pytest.raises(store.PermissionRefused, match=NO_REC):
                C.require_visible(conn, clerk, rid)
    assert (B, 5) in _found(cat, u["wu.head"])
    with pytest.raises(store.PermissionRefused, match="bureau chief"):
        C.classify(cat, u["wu.head"], "recording", "internal", "not secret", device=B,
                   segment=5)
    C.classify(cat, chief, "recording", "internal", "reviewed: not secret", device=B,
               segment=5)
    assert _found(cat, clerk) == [(B, 5)]
    assert (A, 2) not in _found(cat, clerk)
    from host_tools.catalogue import check
    fresh = check.rebuild(cat, unarchived=True)             # a replay of the log agrees
    try:
        assert not fresh.problems and check.differences(cat, fresh) == 0
        assert _found(fresh, clerk) == [(B, 5)]
    finally:
        fresh.engine.dispose()


@pytest.mark.parametrize("edit", [
    "DELETE FROM case_items WHERE kind = 'recording'",
    "UPDATE case_items SET current = false",
    "DELETE FROM tags WHERE field = 'case'",
])
def test_r16_case_links_edited_in_the_database_do_not_unhide(world, edit):
    """#10: the links and `case` tags that put a recording in a classified case are the
    log's: rows deleted with SQL access do not unhide it."""
    from host_tools.catalogue import tags
    cat, u = world
    cat.act(u["clerk"], tags.tag_event(A, 2, case="FZ-1"))
    C.classify(cat, u["wu.head"], "case", "restricted", "涉密案件", case_no="FZ-1")
    clerk = u["clerk"]
    assert _found(cat, clerk) == []
    _edit(cat, edit)
    cat.sync()
    assert _found(cat, clerk) == []
    with cat.engine.connect() as conn:
        for dev, seg in ((A, 2), (A, 3), (B, 5)):
            with pytest.raises(store.PermissionRefused, match=NO_REC):
                C.require_visible(conn, clerk, store.recording_id(conn, dev, seg))


# -- #05: the read verbs answer what their viewer may see ------------------------------------

def test_r16_read_verbs_hide_what_the_viewer_may_not_see(world, monkeypatch, capsys):
    """tag-history, number-show, number-due and handover list/kept: without --user the
    default clearance reads, with --user the signed-in user's; a hidden recording, number
    or case reads as one that does not exist (message and exit code)."""
    import argparse
    import json
    from host_tools.catalogue import filing_cli, handover, handover_cli, numbers, tags
    cat, u = world
    cat.act(u["head"], users.add_event("sun.clerk", "clerk", password="sun-password",
                                       clearance="restricted"))
    sun = users.User("sun.clerk", "clerk", clearance="restricted")
    cat.act(sun, tags.tag_event(B, 5, party="证人 王某"))
    cat.act(u["clerk"], tags.tag_event(A, 2, party="张三"))
    num = numbers.assign(cat, sun, [(B, 5)], party="p", step="s")["number"]
    hid = handover.offer(cat, u["clerk"], "sun.clerk", "moves on", cases=["FZ-1"])
    C.classify(cat, u["wu.head"], "case", "restricted", "涉密案件", case_no="FZ-1")
    assert tags.history(cat, A, 2) and tags.history(cat, B, 5, viewer=sun)
    with pytest.raises(store.CatalogueError, match=NO_REC):
        tags.history(cat, B, 5)
    assert numbers.resolve(cat, num) is None
    assert numbers.resolve(cat, num, viewer=sun)["items"][0]["segment"] == 5
    assert handover.handovers(cat, viewer=None) == []
    assert [h["id"] for h in handover.handovers(cat, viewer=sun)] == [hid]
    assert [h["id"] for h in handover.handovers(cat)] == [hid]       # the module's own
    p = argparse.ArgumentParser(prog="sealcam")
    sub = p.add_subparsers(dest="verb")
    filing_cli.add_parsers(sub, argparse.HelpFormatter)
    handover_cli.add_parsers(sub, argparse.HelpFormatter)
    monkeypatch.delenv("SEALCAM_USER", raising=False)
    monkeypatch.setenv("SEALCAM_PASSWORD", "sun-password")

    def run(*argv, user=None):
        args = p.parse_args([str(a) for a in argv] + ["--archive", cat.archive_dir, "--db",
                                                      cat.url, "--json"]
                            + (["--user", user] if user else []))
        capsys.readouterr()
        code = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _err = run("tag-history", "%s/2" % A)
    assert code == 0 and "张三" in out
    h, m = run("tag-history", "%s/5" % B), run("tag-history", "%s/99" % B)
    assert h[0] == m[0] == 3 and h[2].replace("/5", "/99") == m[2] and "证人" not in h[1]
    code, out, _err = run("tag-history", "%s/5" % B, user="sun.clerk")
    assert code == 0 and "证人" in out
    h, m = run("number-show", num), run("number-show", num + "X")
    assert h[0] == m[0] == 3 and h[2].replace(num, num + "X") == m[2]
    assert run("number-show", num, user="sun.clerk")[0] == 0
    due = json.loads(run("number-due", "--hours", "0")[1])["unnumbered"]
    assert [(x["device"], x["segment"]) for x in due] == [(A, 2)]
    due = json.loads(run("number-due", "--hours", "0", user="sun.clerk")[1])["unnumbered"]
    assert [(x["device"], x["segment"]) for x in due] == [(A, 2), (A, 3)]
    assert json.loads(run("handover", "list")[1])["handovers"] == []
    assert json.loads(run("handover", "list", "--pending")[1])["handovers"] == []
    assert [x["id"] for x in json.loads(run("handover", "list", user="sun.clerk")[1])[
        "handovers"]] == [hid]
    assert json.loads(run("handover", "kept", "li.na")[1])["cases"] == []
    assert json.loads(run("handover", "kept", "li.na", user="sun.clerk")[1])["cases"] == [
        "FZ-1"]
    monkeypatch.setenv("SEALCAM_PASSWORD", "wrong")
    assert run("tag-history", "%s/2" % A, user="sun.clerk")[0] == 5     # a sign-in
