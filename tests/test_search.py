"""host_tools.catalogue.search: every filter against a brute-force Python filter over the
same rows, on SQLite and on a real PostgreSQL (tests/pgserver.py).

The rows are tests/bench/search.py's generator (20,000 recordings, 50 devices, 200
officers, three years; metadata on 30 %, some of it superseded; archive numbers, case
files), inserted through SQLAlchemy Core into a catalogue made by its Alembic migration.
Each filter runs through both of its plans (walking the recordings newest first, or
looking the value up first; for a note, the newest window first, then all notes): the
plan thresholds are set low, then high.
"""
import argparse
import csv
import datetime as dt
import io
import json
import random

import pytest
import sqlalchemy as sa

from host_tools.catalogue import db, search as S, search_forms

from bench import search as bench      # tests/bench/search.py (pythonpath: tests)

N = 20_000
HOSTILE = "=HYPERLINK(\"x\")\x1b[31m"


def _data():
    data = bench.generate(N, seed=7, devices=50, officers=200)
    # one hostile value, as an edited database could hold it: escaped in every form
    data["tags"][1].append((10 ** 9, 1, None, None, "party", HOSTILE, True, "x", "t", None))
    return data


@pytest.fixture(scope="module")
def brute():
    return Brute(_data())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cat(request, tmp_path_factory, brute):
    if request.param == "sqlite":
        url = "sqlite:///%s" % (tmp_path_factory.mktemp("search") / "catalogue.sqlite")
    else:
        url = request.getfixturevalue("pg_server").new_database()
    data = brute.data
    eng = db.open_engine(url)
    with eng.begin() as conn:
        bench.load_core(conn, data)
    # the classes retention_rules gives every recording, through a real Catalogue on this
    # database (its station config: long-term event types noise and fraud)
    from host_tools import station
    from host_tools.catalogue.retention_rules import assess_rows
    from host_tools.catalogue.store import Catalogue
    arch = tmp_path_factory.mktemp("arch") / "arch"
    station.init(arch)
    (arch / "station.toml").write_text('[retention]\nlong_term_event_types = ["noise", '
                                       '"fraud"]\n')
    with Catalogue(arch, url) as c, eng.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(db.recordings))]
        brute.klass = {a["recording_id"]: a["class"]
                       for a in assess_rows(c, conn, rows, dt.date(2026, 12, 1))}
        brute.types = S.retention_types(c)       # the station's, as run() passes them
    brute.archs[id(eng)] = (arch, url)
    assert set(brute.types[1]) == {"noise", "fraud"}
    yield eng, brute
    eng.dispose()


class Brute:
    """The filters of host_tools.catalogue.search, stated in Python over the rows."""

    def __init__(self, data):
        cols, rows = data["recordings"]
        self.recs = [dict(zip(cols, r)) for r in rows]
        for r in self.recs:
            r["day"] = dt.datetime.fromtimestamp(r["start_ms"] / 1000, dt.timezone.utc).date()
        self.recs.sort(key=lambda r: (-r["start_ms"], -r["id"]))     # newest first
        self.cache = {}
        self.archs = {}          # id(engine) -> (its archive, its URL)
        self.tags = {}
        for t in data["tags"][1]:
            if t[6]:
                self.tags.setdefault(t[1], {}).setdefault(t[4], set()).add(t[5])
        self.filed = {}
        for c in data["case_items"][1]:
            if c[2] == "recording" and c[6]:
                self.filed.setdefault(c[3], set()).add(c[1])
        self.numbered = {}
        for number, rid, _, _ in data["number_items"][1]:
            self.numbered.setdefault(rid, set()).add(number)
        self.data = data

    def ok(self, r, f):
        tags = self.tags.get(r["id"], {})
        day = r["day"]
        if f.device and r["device"] not in f.device:
            return False
        if f.officer is not None and r["officer"] != f.officer:
            return False
        if (f.date_from is not None and day < f.date_from) or (
                f.date_to is not None and day > f.date_to):
            return False
        for k in S.TAG_FIELDS:
            want = getattr(f, k)
            if k == "item_class" and want is not None:     # a class takes its items too
                from host_tools.catalogue import itemcatalogue as ic
                want = ic.normalize(want)
                if want in ic.CLASSES and set(ic.items_of_class(want)) & set(
                        tags.get(k, ())):
                    continue
            if want is not None and want not in tags.get(k, ()):
                return False
        if f.note is not None and not any(f.note.lower() in v.lower()
                                          for v in tags.get("note", ())):
            return False
        if f.case is not None and f.case not in self.filed.get(r["id"], set()) | tags.get(
                "case", set()):
            return False
        if f.archive_number is not None and f.archive_number not in self.numbered.get(
                r["id"], ()):
            return False
        if f.interruption is not None and r[{"any": "interruptions", "stated": "statements",
                                             "unstated": "unstated"}[f.interruption]] == 0:
            return False
        if f.mark is not None and r["marks_" + f.mark] == 0:
            return False
        if f.retention is not None and self.klass[r["id"]] != f.retention:
            return False
        return f.state is None or r["state"] == f.state

    def ids(self, f):
        f = f.checked()
        key = repr(f)
        if key not in self.cache:
            found = [r for r in self.recs if self.ok(r, f)]
            self.cache[key] = [r["id"] for r in found]
        return self.cache[key]


def _filters(data):
    """[Filters]: each kind several times, values drawn from the rows, plus values that
    match nothing or only superseded rows."""
    rnd = random.Random(3)
    qs = [f for _, f in bench.queries(data, 4, seed=5)]
    qs += [S.Filters(party="party-1-old"), S.Filters(note="RAIN"), S.Filters(note="100%"),
           S.Filters(note="a_b"), S.Filters(note="a%b"), S.Filters(note="当事人"),
           S.Filters(note="zzz-nothing"), S.Filters(case="C-00003"),
           S.Filters(archive_number="A0000000-none"), S.Filters(officer="999999"),
           S.Filters(event_type="traffic", mark="notice", state="complete"),
           S.Filters(item_class="场景类", interruption="any", date_from="2025-01-01"),
           S.Filters(device=["SC-00010003", "SC-00010004"], note="rain",
                     date_to=dt.date(2025, 6, 30)),
           S.Filters(date_from=dt.date(2024, 2, 29), date_to=dt.date(2024, 2, 29)),
           S.Filters(retention="long_term", mark="important"),
           S.Filters(retention="ordinary", event_type="noise")]
    recs = data["recordings"][1]
    for _ in range(5):
        r = rnd.choice(recs)
        qs.append(S.Filters(device=[r[1]], officer=r[6], interruption="any"))
    return qs


@pytest.mark.parametrize("walk_from,window", [(1, 3000), (10 ** 9, 10 ** 9)])
def test_every_filter_is_the_brute_force_answer(cat, monkeypatch, walk_from, window):
    eng, brute = cat
    monkeypatch.setattr(S, "WALK_FROM", walk_from)
    monkeypatch.setattr(S, "NOTE_WINDOW", window)
    kinds = set()
    with eng.connect() as conn:
        for f in _filters(brute.data):
            want = brute.ids(f)
            def ids(limit, offset=0):
                return [r["id"] for r in S.search(conn, f, limit, offset,
                                                  retention_types=brute.types)]
            if len(want) <= 1500:
                assert ids(None) == want, f
            assert ids(50) == want[:50], f
            assert ids(7, 20) == want[20:27], f
            end = max(0, len(want) - 20)         # a page across the end of the list
            assert ids(25, end) == want[end:end + 25], f
            kinds.update(f.given())
    assert kinds >= {"device", "officer", "date_from", "date_to", "party", "place",
                     "event_type", "item_class", "note", "case", "archive_number",
                     "interruption", "mark", "state", "retention"}


def test_no_filter_lists_every_recording_newest_first(cat):
    eng, brute = cat
    rows = S.search(eng, S.Filters(), limit=None)
    assert len(rows) == N
    assert [r["id"] for r in rows] == brute.ids(S.Filters())
    assert all(a["start_ms"] >= b["start_ms"] for a, b in zip(rows, rows[1:]))


def test_rows_carry_their_current_metadata(cat):
    eng, brute = cat
    rows = S.search(eng, S.Filters(event_type="traffic"), limit=40)
    assert rows
    for r in rows:
        tags = brute.tags.get(r["id"], {})
        for k in S.EXTRA_FIELDS:
            assert r[k] == sorted(tags.get(k, ())), (r["id"], k)
        assert r["cases"] == sorted(brute.filed.get(r["id"], set()) | tags.get("case", set()))
        assert r["archive_numbers"] == sorted(brute.numbered.get(r["id"], ()))
        assert not any(v.endswith("-old") for k in S.EXTRA_FIELDS for v in r[k])
        assert r["start"] == S._iso(r["start_ms"]) and r["start"].endswith("Z")


def test_table_json_csv(cat):
    eng, brute = cat
    rows = S.search(eng, S.Filters(device=["SC-00010001"]), limit=30)
    first = next(r for r in brute.recs if r["id"] == 1)      # the hostile party's
    rows += S.search(eng, S.Filters(device=[first["device"]], date_from=first["day"],
                                    date_to=first["day"]))
    assert HOSTILE in next(r for r in rows if r["id"] == 1)["party"]
    text = S.as_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["start", "(UTC)", "device"]
    assert lines[-1] == "%d recording%s" % (len(rows), "" if len(rows) == 1 else "s")
    # aligned: the device column starts at the same display column on every line
    col = [search_forms._width(x[:x.index("SC-")]) for x in lines[1:-1]]
    assert len(set(col)) == 1 and search_forms._width(lines[0][:lines[0].index("device")]) == col[0]
    assert "\x1b" not in text and "\\x1b[31m" in text
    j = json.loads(S.as_json(rows, S.Filters(device=["SC-00010001"])))
    assert j["format"] == "sealcam-search-1" and j["count"] == len(rows)
    assert j["filters"] == {"device": ["SC-00010001"]}
    assert [r["id"] for r in j["recordings"]] == [r["id"] for r in rows]
    table = list(csv.reader(io.StringIO(S.as_csv(rows))))
    assert table[0] == S.CSV_COLUMNS and len(table) == len(rows) + 1
    assert [int(x[0]) for x in table[1:]] == [r["id"] for r in rows]
    (line,) = [x for x in table[1:] if x[0] == "1"]
    party = json.loads(line[S.CSV_COLUMNS.index("party")])
    assert HOSTILE in party        # lists are JSON text: the value is kept, not run
    assert search_forms._csv_cell("=1+1") == "'=1+1" and search_forms._csv_cell("-5") == "'-5"
    assert S.as_table([]).splitlines()[-1] == "no recording matches"


def test_arguments_are_the_filters():
    p = argparse.ArgumentParser()
    S.add_arguments(p)
    a = p.parse_args(["--device", "SC-1", "--device", "SC-2", "--officer", "012345",
                      "--from", "2026-01-02", "--to", "2026-01-31", "--party", "张三",
                      "--place", "人民路", "--event-type", "traffic", "--case", "C-1",
                      "--archive-number", "N-1", "--item-class", "场景类", "--note", "rain",
                      "--interruption", "unstated", "--mark", "notice", "--state",
                      "partial", "--retention", "permanent"])
    assert (a.since, a.until) == (dt.date(2026, 1, 2), dt.date(2026, 1, 31))  # the report's
    f = S.filters_from_args(a)
    assert f == S.Filters(device=["SC-1", "SC-2"], officer="012345",
                          date_from=dt.date(2026, 1, 2), date_to=dt.date(2026, 1, 31),
                          party="张三", place="人民路", event_type="traffic", case="C-1",
                          archive_number="N-1", item_class="场景类", note="rain",
                          interruption="unstated", mark="notice", state="partial",
                          retention="permanent")
    assert S.filters_from_args(argparse.Namespace()) == S.Filters()
    from host_tools.catalogue.retention_rules import CLASSES
    assert S.RETENTION == CLASSES
    for bad in (["--mark", "urgent"], ["--interruption", "some"], ["--from", "2026-13-01"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)


def test_filters_that_no_recording_can_match_are_refused(cat):
    eng, _ = cat
    for f, msg in ((S.Filters(interruption="some"), "--interruption"),
                   (S.Filters(date_from="2026-02-01", date_to="2026-01-01"), "is after"),
                   (S.Filters(date_from="01/02/2026"), "--from"),
                   (S.Filters(party="x" * 200), "--party"),
                   (S.Filters(note="a\nb"), "--note"),
                   (S.Filters(device=["SC-1"] * 501), "--device")):
        with pytest.raises(S.SearchError, match=msg):
            S.search(eng, f)
    with pytest.raises(S.SearchError, match="--limit"):
        S.search(eng, S.Filters(), limit=-1)
    with pytest.raises(S.SearchError, match="--retention"):
        S.search(eng, S.Filters(retention="eternal"))


def test_sealcam_search_over_a_real_archive(tmp_path, capsys):
    """`sealcam search` (search.run) on an archive made by a real offload: the catalogue is
    brought up to the archive first, then listed and filtered, in each form."""
    from host_tools import station
    from test_recordings import build_a, _offload
    arch = tmp_path / "arch"
    station.init(arch)
    a, fa = build_a(tmp_path / "sd-a")
    _offload(a, arch)
    p = argparse.ArgumentParser()
    S.add_command_arguments(p)

    def run(*argv):
        code = S.run(p.parse_args(["--archive", str(arch)] + list(argv)))
        out = capsys.readouterr()
        return code, out.out, out.err
    code, out, _ = run("--json")
    segs = [r["segment"] for r in json.loads(out)["recordings"]]
    assert code == 0 and segs == [fa["seg%d" % i] for i in (6, 5, 4, 3, 2, 1)]
    code, out, _ = run("--json", "--interruption", "unstated")
    assert [r["segment"] for r in json.loads(out)["recordings"]] == [fa["seg4"], fa["seg2"]]
    code, out, _ = run("--csv", "--officer", "OFC-0002", "--state", "partial")
    table = list(csv.reader(io.StringIO(out)))
    assert code == 0 and [x[2] for x in table[1:]] == [str(fa["seg6"])]
    code, out, _ = run("--mark", "important", "--limit", "5")
    assert code == 0 and out.splitlines()[-1] == "1 recording" and "OFC-0001" in out
    code, out, err = run("--db", "postgresql+psycopg://nobody@/none?host=/nonexistent")
    assert code == 3 and out == "" and err.startswith("sealcam search: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    (arch / "station.toml").write_text("[retention]\nordinary_months = 'many'\n")
    code, out, err = run()
    assert code == 3 and out == "" and "station.toml" in err
    assert len(err.strip().splitlines()) == 1
    (arch / "station.toml").unlink()
    code = S.run(p.parse_args(["--archive", str(tmp_path / "none")]))
    o = capsys.readouterr()
    assert code == 3 and o.out == "" and len(o.err.strip().splitlines()) == 1, o.err


def test_matching_is_the_search_as_keys(cat):
    eng, brute = cat
    f = S.Filters(event_type="traffic", interruption="any")
    keys = {(r["device"], r["segment"]) for r in brute.recs if r["id"] in set(brute.ids(f))}
    assert keys and S.matching(eng, f) == keys


def test_long_lists_are_printed_page_by_page(cat, monkeypatch, capsys):
    """`sealcam search` reads and prints PAGE rows at a time (keyset: `after` the last row):
    the same rows, in the same order, as one search, in every form."""
    eng, brute = cat
    arch, url = brute.archs[id(eng)]
    monkeypatch.setattr(search_forms, "PAGE", 7)
    p = argparse.ArgumentParser()
    S.add_command_arguments(p)
    f = ["--event-type", "noise", "--from", "2025-01-01"]
    want = brute.ids(S.Filters(event_type="noise", date_from="2025-01-01"))
    assert len(want) > 30

    def run(*argv):
        assert S.run(p.parse_args(["--archive", str(arch), "--db", url] + f +
                                  list(argv))) == 0
        return capsys.readouterr().out
    j = json.loads(run("--json"))
    assert [r["id"] for r in j["recordings"]] == want and j["count"] == len(want)
    assert j["filters"] == {"event_type": "noise", "date_from": "2025-01-01"}
    table = list(csv.reader(io.StringIO(run("--csv", "--offset", "3", "--limit", "20"))))
    assert table[0] == S.CSV_COLUMNS and [int(x[0]) for x in table[1:]] == want[3:23]
    text = run()
    assert text.splitlines()[-1] == "%d recording%s" % (len(want), "" if len(want) == 1 else "s")
    assert text.count("start (UTC)") == -(-len(want) // 7)     # a header per page
