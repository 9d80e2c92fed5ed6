"""host_tools/pdfdoc.py: the table PDF of the access register and the disc label (fpdf2
with a CJK font): portrait or landscape by the number of columns, every row fits on a page
however long its cells, page numbers, control characters never reach the file, an existing
file or a symbolic link is never written through, a missing font is one clear line."""
import re

import pytest

from host_tools import pdfdoc

COLS7 = ["时间 When", "人员 Who", "操作 Action", "对象 What", "申请号 Request", "用途 Purpose",
         "批准 Approvals"]


def _pages(data):
    return [tuple(float(x) for x in m.groups()) for m in re.finditer(
        rb"/MediaBox \[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", data)]


def test_landscape_for_many_columns_and_long_cells_wrap(tmp_path):
    rows = [["2026-12-01 10:00", "张三", "view", "SC-0001:%d" % i, "AR-2026-%04d" % i,
             "目的" * 600 if i == 3 else "庭审", "x\n" * 80 if i == 4 else "wang.head"]
            for i in range(60)]
    p = pdfdoc.write_table_pdf(tmp_path / "wide.pdf", "访问登记表 / Access register",
                               ["期间 Period: 2026-12"], COLS7, rows, ["共 60 次"],
                               signature_lines=("审核人签字 / Supervisor: ______",))
    data = open(p, "rb").read()
    assert data.startswith(b"%PDF-")
    assert all(w > h for w, h in _pages(data))                       # A4 landscape
    assert int(re.search(rb"/Count (\d+)", data).group(1)) >= 3       # rows cut to fit
    p2 = pdfdoc.write_table_pdf(tmp_path / "label.pdf", "光盘标签 / Disc label", [],
                                ["项目 Item", "内容 Value"], [["档案号 Number", "DEMO-1"]], [])
    data = open(p2, "rb").read()
    assert all(w < h for w, h in _pages(data)) and _pages(data)      # A4 portrait
    assert re.search(rb"/Count 1\b", data)


def test_text_is_bounded_and_never_control_characters(tmp_path):
    assert pdfdoc._text("a\x1b[2Jb\tc\nd") == "a\ufffd[2Jb c\nd"
    assert "\x1b" not in pdfdoc._text("a\x1bb") and pdfdoc._text(None) == ""
    assert len(pdfdoc._text("x" * 10_000)) == pdfdoc.MAX_CELL
    p = pdfdoc.write_table_pdf(tmp_path / "c.pdf", "t\x00", ["h\x07"], ["a"],
                               [["\x1b[31mred"]] * 3, [])
    assert b"\x1b[31m" not in open(p, "rb").read()


def test_existing_files_and_links_are_never_written_through(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("precious")
    link = tmp_path / "link.pdf"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        pdfdoc.write_table_pdf(link, "t", [], ["a"], [["b"]], [])
    with pytest.raises(FileExistsError, match="symbolic link"):
        pdfdoc.write_table_pdf(link, "t", [], ["a"], [["b"]], [], overwrite=True)
    with pytest.raises(FileExistsError):
        pdfdoc.write_table_pdf(target, "t", [], ["a"], [["b"]], [])
    assert target.read_text() == "precious"
    pdfdoc.write_table_pdf(tmp_path / "new.pdf", "t", [], ["a"], [["b"]], [])
    pdfdoc.write_table_pdf(tmp_path / "new.pdf", "t2", [], ["a"], [["b"]], [],
                           overwrite=True)
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".pdf-")] == []
    with pytest.raises(ValueError):
        pdfdoc.write_table_pdf(tmp_path / "none.pdf", "t", [], [], [], [])


def test_a_missing_cjk_font_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv(pdfdoc.FONT_ENV, str(tmp_path / "nosuch.ttf"))
    with pytest.raises(pdfdoc.FontMissing, match="SEALCAM_CJK_FONT=.* is not a font file"):
        pdfdoc.find_cjk_font()
    monkeypatch.delenv(pdfdoc.FONT_ENV)
    monkeypatch.setattr(pdfdoc, "DEBIAN_FONTS", ())
    monkeypatch.setattr(pdfdoc, "_fc_list", lambda: [])
    with pytest.raises(pdfdoc.FontMissing, match="install fonts-wqy-microhei") as e:
        pdfdoc.write_table_pdf(tmp_path / "x.pdf", "t", [], ["a"], [["b"]], [])
    assert "\n" not in str(e.value) and not (tmp_path / "x.pdf").exists()
