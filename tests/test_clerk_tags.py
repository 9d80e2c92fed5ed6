"""Metadata of recordings (host_tools.catalogue.tags; R10, R18): the `tag` event, on SQLite
and on a real PostgreSQL (catalogue_url), append-only with its history, checked fields,
officers limited to their own recordings, and rebuilt from the station log alone."""
import pytest

from test_clerk_common import A, B, add_recording, catalogue, count, real_archive
from host_tools.catalogue import db, itemcatalogue, store, tags
from host_tools.stationconfig import DEFAULT_PERMANENT_TYPES


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    add_recording(cat, A, 2, officer="OFC-0001")
    add_recording(cat, B, 2, officer="OFC-0002")
    yield cat, u
    cat.close()


def test_r10_party_place_event_type_case_note_are_kept(world):
    cat, u = world
    i = cat.act(u["clerk"], tags.tag_event(A, 2, party="张三", place="五一路 12号",
                                           event_type="inspection", case="FZ-2023-001",
                                           note="first line\nsecond line"))
    got = tags.current(cat, A, 2)["whole"]
    assert got == {"party": "张三", "place": "五一路 12号", "event_type": "inspection",
                   "case": "FZ-2023-001", "note": "first line\nsecond line"}
    h = tags.history(cat, A, 2)
    assert {r["event"] for r in h} == {i} and all(r["by_user"] == "li.na" for r in h)
    assert tags.current(cat, B, 2) == {"whole": {}, "spans": []}
    # indexed by party (R10): one row found by field and value
    assert count(cat, db.tags, db.tags.c.field == "party", db.tags.c.value == "张三") == 1


def test_r10_correction_supersedes_and_keeps_history(world):
    cat, u = world
    first = cat.act(u["clerk"], tags.tag_event(A, 2, party="张三", place="五一路"))
    with pytest.raises(store.CatalogueError, match="correction needs a reason"):
        cat.act(u["clerk"], tags.tag_event(A, 2, party="李四"))
    second = cat.act(u["head"], tags.tag_event(A, 2, party="李四", reason="name misheard",
                                               supersedes=first))
    assert tags.current(cat, A, 2)["whole"] == {"party": "李四", "place": "五一路"}
    h = [r for r in tags.history(cat, A, 2) if r["field"] == "party"]
    assert [(r["value"], r["current"], r["by_user"], r["reason"]) for r in h] == [
        ("张三", False, "li.na", None), ("李四", True, "wang.head", "name misheard")]
    assert h[1]["event"] == second and h[1]["at"] >= h[0]["at"]
    # withdrawn: an empty value, with a reason; the history keeps all three
    cat.act(u["clerk"], tags.tag_event(A, 2, place="", reason="place unknown after all"))
    assert tags.current(cat, A, 2)["whole"] == {"party": "李四"}
    assert len(tags.history(cat, A, 2)) == 4
    with pytest.raises(store.CatalogueError, match="no value to withdraw"):
        cat.act(u["clerk"], tags.tag_event(A, 2, note=""))
    with pytest.raises(store.CatalogueError, match="cannot be superseded"):
        cat.act(u["clerk"], tags.tag_event(B, 2, party="x", supersedes=first))


def test_r10_span_metadata_is_its_own(world):
    cat, u = world
    cat.act(u["clerk"], tags.tag_event(A, 2, party="张三"))
    cat.act(u["clerk"], tags.tag_event(A, 2, span_from_ms=1000, span_to_ms=5000,
                                       party="王五", event_type="obstruction"))
    cur = tags.current(cat, A, 2)
    assert cur["whole"] == {"party": "张三"}
    assert cur["spans"] == [{"span_from_ms": 1000, "span_to_ms": 5000, "party": "王五",
                             "event_type": "obstruction"}]
    for a, b in ((5000, 1000), (None, 10), (-1, 10), (0, 600_001)):
        with pytest.raises(store.CatalogueError, match="span"):
            cat.act(u["clerk"], tags.tag_event(A, 2, span_from_ms=a, span_to_ms=b, note="x"))


def test_r18_item_class_from_the_catalogue(world):
    cat, u = world
    assert len(itemcatalogue.ITEMS) == 13
    assert [it["record_class"] for it in itemcatalogue.ITEMS].count("interview") == 4
    assert itemcatalogue.describe("001-13")["record_class_zh"] == "确认类"
    assert itemcatalogue.record_class("001-05") == "interview"
    cat.act(u["clerk"], tags.tag_event(A, 2, item_class="1-5"))        # read as 001-05
    assert tags.current(cat, A, 2)["whole"]["item_class"] == "001-05"
    cat.act(u["clerk"], tags.tag_event(B, 2, item_class="约谈类"))
    assert tags.current(cat, B, 2)["whole"]["item_class"] == "interview"
    for bad in ("001-14", "002-01", "scenery", "0"):
        with pytest.raises(store.CatalogueError, match="item catalogue"):
            cat.act(u["clerk"], tags.tag_event(A, 2, item_class=bad, reason="r"))


def test_event_types_include_the_permanent_ones(world):
    cat, u = world
    assert set(DEFAULT_PERMANENT_TYPES) <= set(tags.EVENT_TYPES)
    for t in ("mass_incident", "penalty", "service_of_documents"):
        cat.act(u["clerk"], tags.tag_event(A, 2, event_type=t, reason="change"))
    with pytest.raises(store.CatalogueError, match="event type 'picnic' is not known"):
        cat.act(u["clerk"], tags.tag_event(A, 2, event_type="picnic", reason="r"))


def test_station_event_types_apply_when_made_not_when_replayed(tmp_path, catalogue_url):
    """A word of [retention] permanent_event_types is taken; removing it from station.toml
    later does not drop the tag from a reindex (the log is the truth)."""
    from test_clerk_common import add_users
    from host_tools import station
    from host_tools.catalogue.store import Catalogue
    arch = tmp_path / "arch"
    station.init(arch)
    (arch / "station.toml").write_text('[retention]\npermanent_event_types = '
                                       '["flood_rescue"]\n')
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        add_recording(cat, A, 2)
        i = cat.act(u["clerk"], tags.tag_event(A, 2, event_type="flood_rescue"))
        (arch / "station.toml").write_text("")
    with Catalogue(arch, catalogue_url) as cat:
        with pytest.raises(store.CatalogueError, match="event type 'flood_rescue' is not"):
            cat.act(u["clerk"], tags.tag_event(A, 2, event_type="flood_rescue", reason="r"))
        with cat.engine.begin() as conn:          # replayed (the recording row kept)
            conn.execute(db.tags.delete())
            conn.execute(db.cat_meta.update().where(db.cat_meta.c.key == "applied")
                         .values(value=str(i)))
        cat.sync()
        assert cat.problems == []
        assert tags.current(cat, A, 2)["whole"] == {"event_type": "flood_rescue"}


def test_hostile_fields_are_refused(world):
    cat, u = world
    cases = [({"party": "x" * 201}, "longer than 200"),
             ({"note": "x" * 2001}, "longer"),
             ({"party": "张\x1b[2J三"}, "control character"),
             ({"place": "a\u202eb"}, "control character"),
             ({"party": "line\nbreak"}, "control character"),
             ({"party": " padded"}, "space"),
             ({"colour": "red"}, "unknown tag field"),
             ({"retention_class": "forever"}, "retention class")]
    for kw, msg in cases:
        with pytest.raises(store.CatalogueError, match=msg):
            cat.act(u["clerk"], tags.tag_event(A, 2, **kw))
    with pytest.raises(store.CatalogueError, match="no recording SC-00CLK0A1/99"):
        cat.act(u["clerk"], tags.tag_event(A, 99, party="x"))
    with pytest.raises(store.CatalogueError, match="at least one field"):
        tags.tag_event(A, 2)
    assert count(cat, db.tags) == 0


def test_hostile_log_entries_are_skipped_and_named(world):
    """Entries read back from the station log are checked like new ones: one the tag
    module refuses is not applied and is named in problems (verify reports it)."""
    cat, u = world
    bad = [{"type": "tag", "at": "2026-01-01T00:00:00Z", "by": "li.na", "device": A,
            "segment": 2, "fields": {"f%d" % k: "x" for k in range(1000)}},
           {"type": "tag", "at": "2026-01-01T00:00:00Z", "by": "li.na", "device": A,
            "segment": 2, "fields": {"party": "a\x07b"}},
           {"type": "tag", "at": "2026-01-01T00:00:00Z", "by": "li.na", "device": A,
            "segment": True, "fields": {"party": "x"}},
           {"type": "tag", "at": "2026-01-01T00:00:00Z", "by": "li.na", "device": A,
            "segment": 2, "fields": ["party", "x"]}]
    first = cat.archive.log().append(bad)
    cat.sync()
    assert count(cat, db.tags) == 0
    assert [p.split(" (")[0] for p in cat.problems] == [
        "log entry %d" % (first + k) for k in range(4)]
    assert "1 to 7 fields" in cat.problems[0] and "control character" in cat.problems[1]


def test_officer_tags_only_own_recordings(world):
    cat, u = world
    cat.act(u["officer"], tags.tag_event(A, 2, party="张三"))       # OFC-0001 made it
    with pytest.raises(store.PermissionRefused, match="only the recordings he or she made"):
        cat.act(u["officer"], tags.tag_event(B, 2, party="张三"))
    with pytest.raises(store.PermissionRefused, match="may not do this"):
        cat.act(u["auditor"], tags.tag_event(A, 2, note="x", reason="r"))
    assert count(cat, db.tags) == 1


def test_r10_tags_rebuilt_from_the_log_and_a_row_edited_in_is_gone(tmp_path, tmp_path_factory,
                                                                   catalogue_url):
    from test_clerk_common import add_users
    from host_tools.catalogue.store import Catalogue
    arch, f = real_archive(tmp_path, tmp_path_factory)
    cat = Catalogue(arch, catalogue_url)
    try:
        u = add_users(cat)
        cat.refresh_recordings()
        cat.act(u["officer"], tags.tag_event(A, f["a1"], party="张三", event_type="inspection"))
        cat.act(u["clerk"], tags.tag_event(A, f["a1"], party="李四", reason="typo"))
        before = tags.history(cat, A, f["a1"])
        # a row written into the database without the log
        with cat.engine.begin() as conn:
            rid = store.recording_id(conn, B, f["b1"])
            conn.execute(db.tags.insert().values(event=0, recording_id=rid, field="party",
                                                 value="forged", current=True,
                                                 by_user="li.na", at="2026-01-01T00:00:00Z"))
        assert count(cat, db.tags, db.tags.c.value == "forged") == 1
        cat.reindex()
        assert cat.problems == []
        assert count(cat, db.tags, db.tags.c.value == "forged") == 0
        assert tags.history(cat, A, f["a1"]) == before
        assert tags.current(cat, A, f["a1"])["whole"]["party"] == "李四"
    finally:
        cat.close()


def test_officer_never_lowers_what_a_clerk_decided(world):
    """The recorded officer may not set a retention class, nor correct a value a clerk gave
    (an obstruction tag made `patrol` would make the evidence against him disposable);
    his own values he may correct."""
    from host_tools.catalogue import retention
    cat, u = world
    cat.act(u["clerk"], tags.tag_event(A, 2, event_type="obstruction"))
    with pytest.raises(store.PermissionRefused, match="another user gave"):
        cat.act(u["officer"], tags.tag_event(A, 2, event_type="patrol", reason="mistake"))
    with pytest.raises(store.PermissionRefused, match="retention class"):
        cat.act(u["officer"], tags.tag_event(A, 2, retention_class="ordinary"))
    assert retention.assess(cat, A, 2)["class"] == "permanent"
    cat.act(u["officer"], tags.tag_event(A, 2, place="五一路"))
    cat.act(u["officer"], tags.tag_event(A, 2, place="五一路12号", reason="house number"))
    assert tags.current(cat, A, 2)["whole"]["place"] == "五一路12号"


@pytest.mark.parametrize("bad", ["\u202e", "\u2066", "\u009b", "\x1b", "\u200f"])
def test_bidi_and_control_characters_never_reach_a_signed_event(world, bad):
    """SPEC §14.1: no control character (C0, DEL, C1) and no bidirectional control in any
    clerk text: a tag value or reason, a case title, a user's shown name."""
    from host_tools.catalogue import cases, users
    cat, u = world
    n = cat.archive.log().size
    with pytest.raises(store.CatalogueError):
        cat.act(u["clerk"], tags.tag_event(A, 2, party="张%s三" % bad))
    cat.act(u["clerk"], tags.tag_event(A, 2, party="张三"))
    with pytest.raises(store.CatalogueError):
        cat.act(u["clerk"], tags.tag_event(A, 2, party="李四", reason="typo%s" % bad))
    with pytest.raises(store.CatalogueError):
        cat.act(u["clerk"], cases.opened_event("C-1", "违法%s建设" % bad))
    with pytest.raises(store.CatalogueError):
        cat.act(u["head"], users.add_event("x.y", "clerk", "王%s伟" % bad, os_account="xy"))
    assert cat.archive.log().size == n + 1
