"""R16 on the write path (SPEC §14.8): a case or a recording a user may not see does not
exist for him when he files, tags, numbers or adds a document either. Each refusal is
exactly the one of a missing case or recording (same class, same words), checked before
anything else about it is said, and it holds when the log is replayed, against the user
as the log states him at that entry."""
import pytest

from test_clerk_cases import pdf
from test_clerk_common import A, B, T0, add_recording, add_users, catalogue, real_archive
from host_tools.catalogue import cases, documents, numbers, store, tags, users
from host_tools.catalogue import confidentiality as C
from host_tools.catalogue.store import Catalogue


@pytest.fixture
def world(tmp_path, catalogue_url):
    """FZ-S (confidential case) holds A/3; A/4 is confidential itself; A/2 and the case
    MINE are the clerk's (clearance internal) to use."""
    cat, u = catalogue(tmp_path, catalogue_url, head_clearance="confidential")
    cat.act(u["head"], users.add_event("qian.head", "archive_head", clearance="confidential",
                                       os_account="nosuch-qian"))
    u["qian.head"] = users.User("qian.head", "archive_head", how="os",
                                clearance="confidential")
    for seg in (2, 3, 4):
        add_recording(cat, A, seg, start_ms=T0 + seg * 1000)
    q = u["qian.head"]
    cat.act(q, cases.opened_event("FZ-S", "专案"))
    cat.act(q, cases.linked_event("FZ-S", device=A, segment=3))
    C.classify(cat, q, "case", "confidential", "专案", case_no="FZ-S")
    C.classify(cat, q, "recording", "confidential", "证人", device=A, segment=4)
    cat.act(u["clerk"], cases.opened_event("MINE", "mine"))
    yield cat, u
    cat.close()


def _refusal(fn):
    """(exception class, message with the names made alike) of ``fn()``."""
    with pytest.raises(store.CatalogueError) as ex:
        fn()
    return type(ex.value), str(ex.value)


def _same(cat, user, hidden, missing, subst):
    """``hidden`` (an event on a hidden record) is refused exactly as ``missing`` (the same
    event on a record that does not exist), ``subst`` (hidden name, missing name)."""
    got = _refusal(lambda: cat.act(user, hidden))
    want = _refusal(lambda: cat.act(user, missing))
    assert got[0] is want[0] is store.CatalogueError
    assert got[1].replace(*subst) == want[1]


def test_r16_case_events_on_a_hidden_case_read_as_a_missing_case(world):
    cat, u = world
    clerk = u["clerk"]
    sub = ("FZ-S", "FZ-NONE")
    _same(cat, clerk, cases.unlinked_event("FZ-S", "tidy", device=A, segment=3),
          cases.unlinked_event("FZ-NONE", "tidy", device=A, segment=3), sub)
    _same(cat, clerk, cases.closed_event("FZ-S", "done"),
          cases.closed_event("FZ-NONE", "done"), sub)
    _same(cat, clerk, cases.linked_event("FZ-S", device=A, segment=2),
          cases.linked_event("FZ-NONE", device=A, segment=2), sub)
    _same(cat, clerk, cases.archived_event("FZ-S", 2026),
          cases.archived_event("FZ-NONE", 2026), sub)
    s = cases.show(cat, "FZ-S", u["qian.head"])
    assert s["state"] == "open" and [r["segment"] for r in s["recordings"]] == [3]
    # closed, its state is not told either
    cat.act(u["qian.head"], cases.closed_event("FZ-S"))
    _same(cat, clerk, cases.linked_event("FZ-S", device=A, segment=2),
          cases.linked_event("FZ-NONE", device=A, segment=2), sub)
    # one who may see it still does
    with pytest.raises(store.CatalogueError, match="is closed"):
        cat.act(u["qian.head"], cases.linked_event("FZ-S", device=A, segment=2))


def test_r16_a_taken_case_number_says_the_same_whether_hidden_or_not(world):
    cat, u = world
    hidden = _refusal(lambda: cat.act(u["clerk"], cases.opened_event("FZ-S", "x")))
    seen = _refusal(lambda: cat.act(u["clerk"], cases.opened_event("MINE", "x")))
    assert hidden[0] is seen[0] and hidden[1].replace("FZ-S", "MINE") == seen[1]
    assert "exists already" in seen[1]


def test_r16_hidden_recordings_cannot_be_linked_tagged_or_numbered(world):
    cat, u = world
    clerk = u["clerk"]
    for seg in (3, 4):          # hidden through its case, hidden itself
        sub = ("%s/%d" % (A, seg), "%s/99" % A)
        _same(cat, clerk, cases.linked_event("MINE", device=A, segment=seg),
              cases.linked_event("MINE", device=A, segment=99), sub)
        _same(cat, clerk, tags.tag_event(A, seg, party="x"),
              tags.tag_event(A, 99, party="x"), sub)
        # a span past its end would tell its length: the recording is refused first
        _same(cat, clerk, tags.tag_event(A, seg, span_from_ms=0, span_to_ms=10**8,
                                         party="x"),
              tags.tag_event(A, 99, span_from_ms=0, span_to_ms=10**8, party="x"), sub)
        got = _refusal(lambda: numbers.assign(cat, clerk, [(A, 2), (A, seg)], party="p",
                                              step="s"))
        want = _refusal(lambda: numbers.assign(cat, clerk, [(A, 2), (A, 99)], party="p",
                                               step="s"))
        assert got[0] is want[0] and got[1].replace(*sub) == want[1]
    # the event made by hand (not by number_event) is refused by the check itself
    e = numbers.number_event(cat, [(A, 4)], party="p", step="s")
    with pytest.raises(store.CatalogueError, match="no recording %s/4 " % A) as ex:
        cat.act(clerk, e)
    assert type(ex.value) is store.CatalogueError
    # what the clerk may see he still files, tags and numbers
    cat.act(clerk, cases.linked_event("MINE", device=A, segment=2))
    cat.act(clerk, tags.tag_event(A, 2, party="x"))
    numbers.assign(cat, clerk, [(A, 2)], party="p", step="s")
    q = u["qian.head"]
    cat.act(q, tags.tag_event(A, 4, party="y"))
    numbers.assign(cat, q, [(A, 4)], party="p", step="s")


def test_r16_doc_add_into_a_hidden_case_reads_as_a_missing_case(world, tmp_path):
    cat, u = world
    clerk = u["clerk"]
    got = _refusal(lambda: documents.add_document(cat, clerk, pdf(tmp_path), "other",
                                                  case_no="FZ-S"))
    want = _refusal(lambda: documents.add_document(cat, clerk, pdf(tmp_path), "other",
                                                   case_no="FZ-NONE"))
    assert got[0] is want[0] and got[1].replace("FZ-S", "FZ-NONE") == want[1]
    sha = documents.add_document(cat, u["qian.head"], pdf(tmp_path), "other", case_no="FZ-S")
    assert [d["sha256"] for d in cases.show(cat, "FZ-S", u["qian.head"])["documents"]] == [
        sha]


def test_r16_the_write_checks_hold_on_replay_with_the_user_as_the_log_states_him(world):
    """An entry appended past Catalogue.act by a user who may not see the case is not
    applied; one made while its user was cleared stays applied after his clearance is
    lowered (the log's user at that entry is judged) through a full reindex."""
    from host_tools.archive.common import utcnow
    cat, u = world
    q = u["qian.head"]
    cat.act(u["head"], users.add_event("zhou.clerk", "clerk", clearance="confidential",
                                       os_account="nosuch-zhou"))
    zhou = users.User("zhou.clerk", "clerk", how="os", clearance="confidential")
    cat.act(zhou, cases.linked_event("FZ-S", device=A, segment=2))
    cat.act(zhou, tags.tag_event(A, 4, party="by zhou"))
    cat.act(u["head"], users.change_event("zhou.clerk", clearance="internal"))
    # forged past act: the internal clerk unlinks and closes the hidden case
    for e in (cases.unlinked_event("FZ-S", "tidy", device=A, segment=3),
              cases.closed_event("FZ-S", "done"), tags.tag_event(A, 4, party="forged",
                                                                reason="x")):
        cat.archive.log().append([dict(e, by="li.na", at=utcnow())])
    cat.sync()
    assert sum("not applied" in p and "no " in p for p in cat.problems) == 3
    from host_tools.catalogue import check
    fresh = check.rebuild(cat, unarchived=True)             # a replay from the log
    try:
        for c in (cat, fresh):
            s = cases.show(c, "FZ-S", q)
            assert s["state"] == "open"
            assert sorted(r["segment"] for r in s["recordings"]) == [2, 3]
            assert tags.current(c, A, 4, viewer=q)["whole"] == {"party": "by zhou"}
        assert len([p for p in fresh.problems if "not applied" in p]) == 3
    finally:
        fresh.engine.dispose()


def test_r16_an_explanation_of_a_hidden_recording_reads_as_a_missing_record(
        tmp_path, tmp_path_factory, catalogue_url):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat, "confidential")
        cat.refresh_recordings()
        cat.act(u["head"], users.add_event("qian.head", "archive_head",
                                           clearance="confidential", os_account="nosuch-q"))
        q = users.User("qian.head", "archive_head", how="os", clearance="confidential")
        seg = documents._record_types(cat, A)[f["int_fault"]][1]
        C.classify(cat, q, "recording", "confidential", "证人", device=A, segment=seg)
        got = _refusal(lambda: documents.add_document(
            cat, u["clerk"], pdf(tmp_path), "explanation", device=A,
            interruption_seq=f["int_fault"]))
        want = _refusal(lambda: documents.add_document(
            cat, u["clerk"], pdf(tmp_path), "explanation", device=A, interruption_seq=999))
        assert got[0] is want[0] and got[1].replace(str(f["int_fault"]), "999") == want[1]
        sha = documents.add_document(cat, q, pdf(tmp_path), "explanation", device=A,
                                     interruption_seq=f["int_fault"])
        assert documents.explanations(cat, A, f["int_fault"]) == []     # default clearance
        assert [x["sha256"] for x in documents.explanations(cat, A, f["int_fault"],
                                                            viewer=q)] == [sha]
