"""`sealcam report` takes the filters of `sealcam search` (issue 11): the catalogue chooses
the recordings, the report lists only their records (report_items.record_segments, the
membership rule the catalogue's recordings use too)."""
import json

import pytest

import test_clerk_common as cc
from host_tools.catalogue import store, tags
from host_tools.cli import main as cli


@pytest.fixture
def tagged(tmp_path, tmp_path_factory):
    arch, f = cc.real_archive(tmp_path, tmp_path_factory)
    with store.Catalogue(arch) as cat:
        cat.refresh_recordings(None)
        u = cc.add_users(cat)
        cat.act(u["clerk"], tags.tag_event(cc.A, f["a2"], party="张三", place="五一路"))
        cat.act(u["clerk"], tags.tag_event(cc.B, f["b1"], party="李四"))
    return str(arch), f


def _report(capsys, *argv):
    code = cli(["report", "--json"] + list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_report_by_party_lists_only_that_recordings_items(tagged, capsys):
    arch, f = tagged
    code, rep = _report(capsys, "--archive", arch)
    all_ints = {(i["device"], i["seq"]) for i in rep["interruptions"]}
    assert all_ints == {(cc.A, f["int_weather"]), (cc.A, f["int_fault"])}
    # segment a2 holds the fault interruption (never resumed); a1 the weather one
    code, rep = _report(capsys, "--archive", arch, "--party", "张三")
    assert {(i["device"], i["seq"]) for i in rep["interruptions"]} == {
        (cc.A, f["int_fault"])}
    assert [d for d, s in sorted(rep["summary"].items()) if s["segments"]] == [cc.A]
    assert all(s["device"] == cc.A for s in rep["shifts"])
    code, rep = _report(capsys, "--archive", arch, "--party", "李四")
    assert rep["interruptions"] == [] and code == (1 if rep["problems"] else 0), rep["problems"]
    assert all(p["device"] == cc.B for p in rep["problems"])
    assert [s["officer"] for s in rep["shifts"]] == ["OFC-0002"]
    # a filter nothing matches: an empty report, not every record
    code, rep = _report(capsys, "--archive", arch, "--case", "NO-SUCH-CASE")
    assert rep["interruptions"] == [] and rep["statements"] == [] and rep["marks"] == []


def test_report_and_search_take_the_same_filters(tagged, capsys):
    arch, f = tagged
    assert cli(["search", "--archive", arch, "--party", "张三", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    keys = {(r["device"], r["segment"]) for r in found["recordings"]}
    assert keys == {(cc.A, f["a2"])}
    code, rep = _report(capsys, "--archive", arch, "--interruption", "unstated")
    assert {(i["device"], i["status"]) for i in rep["interruptions"]} <= {
        (cc.A, "missing"), (cc.A, "unexplained"), (cc.A, "waiting")}
    assert cli(["report", "--archive", arch, "--mark", "nonsense"]) == 3
    capsys.readouterr()


def test_item_class_filter_takes_what_tag_takes(tagged, capsys):
    """`--item-class 1-9`, `001-09`, `场景类` and `scene` (the class of item 001-09) find a
    recording tagged 001-09; an item of another class and a word that is none do not."""
    arch, f = tagged
    from host_tools.catalogue import users
    with store.Catalogue(arch) as cat:
        clerk = users.User("li.na", "clerk", how="os")
        cat.act(clerk, tags.tag_event(cc.B, f["b1"], item_class="001-09"))
    for v in ("1-9", "001-09", "场景类", "scene"):
        assert cli(["search", "--archive", arch, "--item-class", v, "--json"]) == 0, v
        got = {(r["device"], r["segment"])
               for r in json.loads(capsys.readouterr().out)["recordings"]}
        assert got == {(cc.B, f["b1"])}, v
    assert cli(["search", "--archive", arch, "--item-class", "interview", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recordings"] == []
    assert cli(["search", "--archive", arch, "--item-class", "nonsense"]) == 3
    assert "item of the catalogue" in capsys.readouterr().err


def test_a_written_explanation_settles_an_unexplained_interruption(tagged, tmp_path, capsys):
    """R3: an interruption after which recording could not go on is explained in writing;
    once a clerk files the explanation (`sealcam doc add --kind explanation`), the report
    shows it with the interruption, from the signed station log, and no longer counts it
    as a problem. The other interruption is untouched."""
    from host_tools.catalogue import documents, users
    arch, f = tagged
    code, rep = _report(capsys, "--archive", arch)
    probs = {(p["device"], p["seq"]) for p in rep["problems"]
             if p["kind"].startswith(("interruption", "annotation"))}
    assert (cc.A, f["int_fault"]) in probs
    pdf = tmp_path / "情况说明.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n"
                    + b"%" * 64 + b"\n%%EOF\n")
    with store.Catalogue(arch) as cat:
        documents.add_document(cat, users.User("li.na", "clerk", how="os"), str(pdf),
                               "explanation", device=cc.A, interruption_seq=f["int_fault"])
    code, rep = _report(capsys, "--archive", arch)
    it = {(i["device"], i["seq"]): i for i in rep["interruptions"]}
    w = it[(cc.A, f["int_fault"])]["written"]
    assert len(w) == 1 and w[0]["by"] == "li.na" and w[0]["name"] == "情况说明.pdf"
    assert "explained in writing" in it[(cc.A, f["int_fault"])]["explanation"]
    assert it[(cc.A, f["int_weather"])]["written"] == []
    probs = {(p["device"], p["seq"]) for p in rep["problems"]
             if p["kind"].startswith(("interruption", "annotation"))}
    assert (cc.A, f["int_fault"]) not in probs
