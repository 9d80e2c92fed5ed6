"""Case files and documents (host_tools.catalogue.cases, documents; R3 written part, R11,
R22), on SQLite and on a real PostgreSQL: cases open, link recordings of several devices
(a second angle) and documents, close and are archived at year end; a written explanation
is a scanned PDF or image stored as an archive object and linked to an INTERRUPTION record
of the archive's verified records."""
import hashlib
import os
import struct
import zlib

import pytest

from test_clerk_common import A, B, T0, add_recording, add_users, catalogue, count, \
    real_archive
from host_tools.archive.common import utcnow
from host_tools.catalogue import cases, db, documents, numbers, store, tags
from host_tools.catalogue.store import Catalogue

YEAR = int(utcnow()[:4])


def pdf(tmp_path, name="scan.pdf", body=b"1 0 obj << /Type /Catalog >> endobj\n"):
    p = tmp_path / name
    p.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + body * 4 + b"trailer\n%%EOF\n")
    return p


def png(tmp_path, name="scan.png"):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\x00" + bytes(range(16)) * 3 for _ in range(16))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0,
                                                                 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.fixture
def world(tmp_path, catalogue_url):
    cat, u = catalogue(tmp_path, catalogue_url)
    add_recording(cat, A, 2, start_ms=T0, duration_ms=600_000, officer="OFC-0001")
    add_recording(cat, B, 5, start_ms=T0 + 30_000, duration_ms=600_000, officer="OFC-0002")
    add_recording(cat, B, 9, start_ms=T0 + 86_400_000, officer="OFC-0002")
    yield cat, u
    cat.close()


def test_r11_case_groups_recordings_and_documents_and_shows_them(world, tmp_path):
    cat, u = world
    cat.act(u["clerk"], cases.opened_event("FZ-2023-001", "违法建设 五一路 12号", unit="U-1"))
    cat.act(u["clerk"], cases.linked_event("FZ-2023-001", device=A, segment=2))
    cat.act(u["leader"], cases.linked_event("FZ-2023-001", device=B, segment=9,
                                            role="other"))
    sha = documents.add_document(cat, u["clerk"], pdf(tmp_path), "written_record",
                                 name="询问笔录.pdf", case_no="FZ-2023-001")
    n = numbers.number_event(cat, [(A, 2)], party="张三", step="检查")
    cat.act(u["clerk"], n)
    with pytest.raises(store.CatalogueError, match="in case FZ-2023-001 already"):
        cat.act(u["clerk"], cases.linked_event("FZ-2023-001", device=A, segment=2))
    with pytest.raises(store.CatalogueError, match="needs a reason"):
        cat.act(u["clerk"], cases.unlinked_event("FZ-2023-001", " ", device=B, segment=9))
    cat.act(u["clerk"], cases.unlinked_event("FZ-2023-001", "another incident", device=B,
                                             segment=9))
    cat.act(u["clerk"], cases.closed_event("FZ-2023-001", reason="penalty decided"))
    with pytest.raises(store.CatalogueError, match="is closed: only an open case changes"):
        cat.act(u["clerk"], cases.linked_event("FZ-2023-001", device=B, segment=9))
    s = cases.show(cat, "FZ-2023-001")
    assert (s["state"], s["title"], s["unit"], s["opened_by"]) == (
        "closed", "违法建设 五一路 12号", "U-1", "li.na")
    assert [(r["device"], r["segment"], r["role"], r["numbers"]) for r in s["recordings"]] == [
        (A, 2, "primary", [n["number"]])]
    assert s["numbers"] == [n["number"]]
    assert [(d["sha256"], d["kind"], d["name"]) for d in s["documents"]] == [
        (sha, "written_record", "询问笔录.pdf")]
    assert [(h["what"], h["by_user"], h["reason"]) for h in s["history"]] == [
        ("opened", "li.na", None), ("linked", "li.na", None), ("linked", "zhao.lead", None),
        ("linked", "li.na", None), ("unlinked", "li.na", "another incident"),
        ("closed", "li.na", "penalty decided")]
    assert cases.show(cat, "FZ-none") is None
    assert hashlib.sha256(cat.archive.read_object(sha)).hexdigest() == sha   # the object


def test_r11_case_is_archived_at_year_end_only_when_closed(world):
    cat, u = world
    cat.act(u["clerk"], cases.opened_event("FZ-2", "t"))
    with pytest.raises(store.CatalogueError, match="only a closed case is archived"):
        cat.act(u["head"], cases.archived_event("FZ-2", YEAR))
    cat.act(u["clerk"], cases.closed_event("FZ-2"))
    for bad in (YEAR - 1, YEAR + 1):
        with pytest.raises(store.CatalogueError, match="archived at the end of"):
            cat.act(u["head"], cases.archived_event("FZ-2", bad))
    cat.act(u["head"], cases.archived_event("FZ-2", YEAR))
    s = cases.show(cat, "FZ-2")
    assert (s["state"], s["archived_year"]) == ("archived", YEAR)
    assert [h["what"] for h in s["history"]] == ["opened", "closed", "archived"]
    with pytest.raises(store.CatalogueError, match="exists already"):
        cat.act(u["clerk"], cases.opened_event("FZ-2", "again"))
    with pytest.raises(store.PermissionRefused):
        cat.act(u["officer"], cases.opened_event("FZ-3", "t"))
    for bad in ("", " FZ", "FZ\x00", "x" * 65, "a\u202eb"):
        with pytest.raises(store.CatalogueError, match="case number"):
            cases.opened_event(bad, "t")
    for title, msg in (("a\x1b[31mb", "control character"), (" ", "title of one line"),
                       ("two\nlines", "title of one line"), ("x" * 501, "longer than 500")):
        with pytest.raises(store.CatalogueError, match=msg):
            cat.act(u["clerk"], cases.opened_event("FZ-4", title))
    assert cases.show(cat, "FZ-4") is None


def test_r22_second_angle_of_one_incident(world):
    cat, u = world
    cat.act(u["clerk"], tags.tag_event(A, 2, party="张三", place="五一路"))
    cat.act(u["clerk"], tags.tag_event(B, 5, party="张三"))          # same time, same party
    cat.act(u["clerk"], tags.tag_event(B, 9, party="张三"))          # the next day: not it
    got = cases.incident(cat, A, 2)
    assert [(x["device"], x["segment"], x["why"]) for x in got] == [
        (B, 5, ["same time and party"])]
    cat.act(u["clerk"], cases.opened_event("FZ-7", "强制拆除"))
    cat.act(u["clerk"], cases.linked_event("FZ-7", device=A, segment=2))
    cat.act(u["clerk"], cases.linked_event("FZ-7", device=B, segment=5, role="angle"))
    cat.act(u["clerk"], cases.linked_event("FZ-7", device=B, segment=9, role="other"))
    got = {(x["device"], x["segment"]): x["why"] for x in cases.incident(cat, B, 5)}
    assert got == {(A, 2): ["case FZ-7", "same time and party"], (B, 9): ["case FZ-7"]}
    roles = {(r["device"], r["officer"], r["role"]) for r in cases.show(cat, "FZ-7")[
        "recordings"]}
    assert roles == {(A, "OFC-0001", "primary"), (B, "OFC-0002", "angle"),
                     (B, "OFC-0002", "other")}
    with pytest.raises(store.CatalogueError, match="role in a case"):
        cat.act(u["clerk"], cases.linked_event("FZ-7", device=A, segment=2, role="drone"))


def test_documents_hostile_files_are_refused(world, tmp_path):
    cat, u = world
    real = pdf(tmp_path)
    link = tmp_path / "link.pdf"
    os.symlink(real, link)
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"<html><script>alert(1)</script></html>" * 10)
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(real.read_bytes()[:-20])               # no %%EOF: not whole
    big = tmp_path / "big.pdf"
    with open(big, "wb") as f:
        f.write(b"%PDF-1.4\n")
        f.truncate(documents.MAX_BYTES + 1)
    tiny = tmp_path / "tiny.pdf"
    tiny.write_bytes(b"%PDF-1.4\n%%EOF")
    fifo = tmp_path / "fifo.pdf"
    os.mkfifo(fifo)
    for p, msg in ((link, "symbolic link|symlink"), (fake, "not a whole PDF"),
                   (cut, "not a whole PDF"), (big, "more than"), (tiny, "too small"),
                   (fifo, "is not read"), (tmp_path / "none.pdf", "does not exist")):
        with pytest.raises(store.CatalogueError, match=msg):
            documents.add_document(cat, u["clerk"], p, "other")
    with pytest.raises(store.CatalogueError, match="document name"):
        documents.add_document(cat, u["clerk"], real, "other", name="a\nb.pdf")
    with pytest.raises(store.CatalogueError, match="unknown document kind"):
        documents.add_document(cat, u["clerk"], real, "selfie")
    with pytest.raises(store.PermissionRefused):
        documents.add_document(cat, u["officer"], real, "other")
    with pytest.raises(store.CatalogueError, match="no case FZ-9"):
        documents.add_document(cat, u["clerk"], real, "other", case_no="FZ-9")
    assert count(cat, db.documents) == 0
    assert not os.path.exists(cat.archive.object_path(
        hashlib.sha256(real.read_bytes()).hexdigest()))        # nothing stored when refused
    sha = documents.add_document(cat, u["clerk"], png(tmp_path), "other")
    assert documents.document(cat, sha)["media_type"] == "image/png"
    with pytest.raises(store.CatalogueError, match="in the archive already"):
        documents.add_document(cat, u["clerk"], png(tmp_path, "again.png"), "other")


def test_r3_written_explanation_links_to_a_verified_interruption(tmp_path, tmp_path_factory,
                                                                 catalogue_url):
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        cat.refresh_recordings()
        sha = documents.add_document(cat, u["clerk"], pdf(tmp_path, "情况说明.pdf"),
                                     "explanation", device=A, interruption_seq=f["int_fault"])
        got = documents.explanations(cat, A, f["int_fault"])
        assert [(x["sha256"], x["name"], x["by_user"]) for x in got] == [
            (sha, "情况说明.pdf", "li.na")]
        assert open(got[0]["path"], "rb").read().startswith(b"%PDF-")
        assert documents.explanations(cat, A, f["int_weather"]) == []
        for dev, seq, msg in ((A, f["a2"], "not an INTERRUPTION"), (A, 999, "no verified"),
                              ("SC-NOSUCH", 1, "not in the archive"),
                              (None, None, "names its INTERRUPTION")):
            with pytest.raises(store.CatalogueError, match=msg):
                documents.add_document(cat, u["clerk"], pdf(tmp_path, "x.pdf",
                                                             b"%r this one\n" % seq),
                                       "explanation", device=dev, interruption_seq=seq)
        with pytest.raises(store.CatalogueError, match="only a written explanation"):
            documents.add_document(cat, u["clerk"], png(tmp_path), "other", device=A,
                                   interruption_seq=f["int_fault"])


def test_r3_written_explanation_and_case_survive_reindex_and_forged_rows_do_not(
        tmp_path, tmp_path_factory, catalogue_url):
    """End to end on a real archive: tag, number, file both angles and the written
    explanation into a case, close it; reindex from the log gives the same case, and rows
    edited into the database without the log are gone."""
    arch, f = real_archive(tmp_path, tmp_path_factory)
    with Catalogue(arch, catalogue_url) as cat:
        u = add_users(cat)
        cat.refresh_recordings()
        cat.act(u["officer"], tags.tag_event(A, f["a1"], party="张三", place="五一路",
                                             event_type="demolition", item_class="001-03"))
        cat.act(u["officer2"], tags.tag_event(B, f["b1"], party="张三"))
        assert [(x["device"], x["segment"]) for x in cases.incident(cat, A, f["a1"])] == [
            (B, f["b1"])]
        n = numbers.number_event(cat, [(A, f["a1"]), (A, f["a2"]), (B, f["b1"])],
                                 party="张三", step="强制拆除")
        cat.act(u["clerk"], n)
        cat.act(u["clerk"], cases.opened_event("FZ-2023-088", "五一路 强制拆除"))
        for dev, seg, role in ((A, f["a1"], "primary"), (A, f["a2"], "primary"),
                               (B, f["b1"], "angle")):
            cat.act(u["clerk"], cases.linked_event("FZ-2023-088", device=dev, segment=seg,
                                                   role=role))
        sha = documents.add_document(cat, u["clerk"], png(tmp_path, "说明.png"),
                                     "explanation", device=A, interruption_seq=f["int_fault"],
                                     case_no="FZ-2023-088")
        cat.act(u["clerk"], cases.closed_event("FZ-2023-088"))
        before = cases.show(cat, "FZ-2023-088")
        assert before["numbers"] == [n["number"]]
        assert [d["sha256"] for d in before["documents"]] == [sha]
        assert {(r["device"], r["role"]) for r in before["recordings"]} == {
            (A, "primary"), (B, "angle")}
        from host_tools.catalogue import check
        assert check.check(cat)["problems"] == []     # every row is the log's
        with cat.engine.begin() as conn:      # forged: never in the log
            conn.execute(db.cases.insert().values(
                case_no="FORGED-1", event=3, title="x", state="open", opened_by="li.na",
                opened_at="2026-01-01T00:00:00Z"))
            conn.execute(db.documents.insert().values(
                sha256="0" * 64, event=3, kind="explanation", media_type="application/pdf",
                size=100, name="forged.pdf", device=A, interruption_seq=f["int_weather"],
                by_user="li.na", at="2026-01-01T00:00:00Z"))
        assert len(documents.explanations(cat, A, f["int_weather"])) == 1
        found = check.check(cat)["problems"]
        assert any("FORGED-1" in p for p in found) and any("forged.pdf" in p for p in found)
        cat.reindex()
        assert cat.problems == []
        assert cases.show(cat, "FORGED-1") is None
        assert documents.explanations(cat, A, f["int_weather"]) == []
        assert cases.show(cat, "FZ-2023-088") == before
        assert documents.explanations(cat, A, f["int_fault"])[0]["sha256"] == sha
