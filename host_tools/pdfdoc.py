"""Printable tables as PDF (fpdf2 with a CJK font): the access register a supervisor signs,
the label of a duplicate disc.

    write_table_pdf(path, "访问登记 / Access register", ["Station: ...", "Period: ..."],
                    ["When", "Who", "Action"], [["2026-12-01 10:00", "clerk1", "view"]],
                    ["42 accesses"], signature_lines=("审核人签字 / Supervisor: ________",))

One page size (A4); landscape when there are many columns (more than
``PORTRAIT_MAX_COLUMNS``); long cells wrap inside their column (by character, so hashes and
Chinese text wrap too); every page carries "page n / N". Chinese text needs a font with its
glyphs: ``find_cjk_font()`` looks at $SEALCAM_CJK_FONT, the Debian path of WenQuanYi Micro
Hei (fonts-wqy-microhei), then asks fontconfig (`fc-list :lang=zh`); with none it raises
``FontMissing`` whose message says what to install.

Text is text: control characters are replaced, each cell is cut at ``MAX_CELL`` characters,
the table at ``MAX_ROWS`` rows (a note says so), so a hostile value cannot make the file
unbounded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

__all__ = ["write_table_pdf", "find_cjk_font", "FontMissing", "PORTRAIT_MAX_COLUMNS",
           "MAX_ROWS", "MAX_CELL"]

#: the Debian package fonts-wqy-microhei puts its font here
DEBIAN_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FONT_ENV = "SEALCAM_CJK_FONT"
PORTRAIT_MAX_COLUMNS = 5
MAX_ROWS = 5000            # fpdf2 lays out about 50 rows a second: print shorter periods
MAX_CELL = 2000
MAX_LINE = 500
FONT_FAMILY = "cjk"
FC_TIMEOUT_S = 10
BODY_PT = 9
TITLE_PT = 15
MARGIN_MM = 12
LINE_MM = 4.5
SIGN_GAP_MM = 10            # room to sign above each signature line
MAX_CELL_LINES = 18         # a row at most 18 lines high: always fits on a page
PT_MM = 25.4 / 72


class FontMissing(RuntimeError):
    """No font with Chinese glyphs was found (the message says what to install)."""


def _fc_list():
    exe = shutil.which("fc-list")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, ":lang=zh", "file"], capture_output=True, text=True,
                             timeout=FC_TIMEOUT_S, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = []
    for line in out.splitlines()[:1000]:
        path = line.strip().rstrip(":").strip()
        if path.lower().endswith((".ttf", ".ttc", ".otf")):
            files.append(path)
    return sorted(files)


def find_cjk_font():
    """The path of a font file with Chinese glyphs, or raise FontMissing."""
    env = os.environ.get(FONT_ENV)
    if env:
        if os.path.isfile(env):
            return env
        raise FontMissing("%s=%s is not a font file; set it to a .ttf/.ttc/.otf with Chinese "
                          "glyphs, or unset it" % (FONT_ENV, env))
    for path in DEBIAN_FONTS:
        if os.path.isfile(path):
            return path
    for path in _fc_list():
        if os.path.isfile(path):
            return path
    raise FontMissing("no font with Chinese glyphs found: install fonts-wqy-microhei "
                      "(apt-get install fonts-wqy-microhei) or set %s to a font file"
                      % FONT_ENV)


def _text(value, limit=MAX_CELL):
    """A printable one-cell string: None is empty, control characters (but newlines and
    tabs, which become a line break and a space) are shown as U+FFFD, at most ``limit``."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    out = []
    for ch in s:
        if ch == "\n":
            out.append("\n")
        elif ch == "\t":
            out.append(" ")
        elif ord(ch) < 0x20 or 0x7f <= ord(ch) < 0xa0 or 0xd800 <= ord(ch) < 0xe000:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _col_widths(columns, rows, total_width):
    """Widths in proportion to the longest content of each column (a CJK character counts
    twice), each at least a share that fits a short word, summing to ``total_width``."""
    def width_of(s):
        longest = max((len(part) + sum(1 for ch in part if ord(ch) > 0x2e80)
                       for part in s.split("\n")), default=0)
        return min(max(longest, 4), 60)
    need = [width_of(c) for c in columns]
    for row in rows[:500]:
        for i, cell in enumerate(row[:len(columns)]):
            need[i] = max(need[i], width_of(cell))
    total = float(sum(need)) or 1.0
    floor = total_width / (len(columns) * 3.0)
    widths = [max(total_width * n / total, floor) for n in need]
    scale = total_width / sum(widths)
    return [w * scale for w in widths]


def _fit(pdf, text, width):
    """``text`` cut to the lines a cell of ``width`` mm shows (MAX_CELL_LINES at most, so
    that every row fits on a page; an ellipsis says it was cut)."""
    usable = max(width - 2 * pdf.c_margin - 1, 5)
    em = BODY_PT * PT_MM               # the widest glyph (a CJK one) is about one em
    most = sum(1 + int(len(part) * em // usable) for part in text.split("\n"))
    if most <= MAX_CELL_LINES:         # it cannot need more lines: no measuring
        return text
    from fpdf.enums import MethodReturnValue, WrapMode
    lines = pdf.multi_cell(usable, LINE_MM, text,
                           dry_run=True, output=MethodReturnValue.LINES,
                           wrapmode=WrapMode.CHAR)
    if len(lines) <= MAX_CELL_LINES:
        return text
    return "\n".join(lines[:MAX_CELL_LINES - 1]) + "\n…"


def write_table_pdf(path, title, header_lines, columns, rows, footer_lines,
                    signature_lines=(), *, overwrite=False):
    """Write a PDF with ``title``, the ``header_lines`` under it, a table (``columns`` the
    headings, ``rows`` lists of cells), the ``footer_lines`` and then the
    ``signature_lines`` each above space to sign. Returns the path written.

    The file is written beside its final name and renamed into place (never through a
    symbolic link); an existing file is refused unless ``overwrite``."""
    from fpdf import FPDF
    from fpdf.enums import WrapMode

    columns = [_text(c, MAX_LINE) for c in (columns or ())]
    if not columns:
        raise ValueError("a table needs at least one column")
    rows = list(rows or ())
    truncated = len(rows) > MAX_ROWS
    rows = [[_text(c) for c in list(r)[:len(columns)]] for r in rows[:MAX_ROWS]]
    rows = [r + [""] * (len(columns) - len(r)) for r in rows]
    font = find_cjk_font()

    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError("%s exists already: name a new file" % path)
    if os.path.islink(path):
        raise FileExistsError("%s is a symbolic link: name a plain file" % path)

    orientation = "L" if len(columns) > PORTRAIT_MAX_COLUMNS else "P"

    class _Doc(FPDF):
        def footer(self):
            self.set_y(-10)
            self.set_font(FONT_FAMILY, size=8)
            self.cell(0, 5, "%d / {nb}" % self.page_no(), align="C")

    pdf = _Doc(orientation=orientation, unit="mm", format="A4")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(True, margin=15)
    pdf.alias_nb_pages()
    pdf.add_font(FONT_FAMILY, "", font)
    pdf.set_title(_text(title, MAX_LINE))
    pdf.set_creator("sealcam")
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=TITLE_PT)
    pdf.multi_cell(0, 8, _text(title, MAX_LINE), align="C", wrapmode=WrapMode.CHAR,
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(FONT_FAMILY, size=BODY_PT + 1)
    for line in header_lines or ():
        pdf.multi_cell(0, 5, _text(line, MAX_LINE), wrapmode=WrapMode.CHAR,
                       new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    pdf.set_font(FONT_FAMILY, size=BODY_PT)
    width = pdf.epw
    widths = _col_widths(columns, rows, width)
    rows = [[_fit(pdf, c, w) for c, w in zip(r, widths)] for r in rows]
    from fpdf.fonts import FontFace
    with pdf.table(col_widths=widths, width=width,
                   wrapmode=WrapMode.CHAR, text_align="LEFT", line_height=LINE_MM,
                   headings_style=FontFace(family=FONT_FAMILY, emphasis="",
                                           fill_color=(225, 225, 225)),
                   repeat_headings=1) as table:
        head = table.row()
        for c in columns:
            head.cell(c)
        for r in rows:
            row = table.row()
            for c in r:
                row.cell(c)
    pdf.ln(3)
    pdf.set_font(FONT_FAMILY, size=BODY_PT + 1)
    footer = [_text(x, MAX_LINE) for x in (footer_lines or ())]
    if truncated:
        footer.append("… 仅打印前 %d 行 / only the first %d rows are printed: print a "
                      "shorter period" % (MAX_ROWS, MAX_ROWS))
    for line in footer:
        pdf.multi_cell(0, 5, line, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
    sigs = list(signature_lines or ())
    if sigs and pdf.will_page_break(SIGN_GAP_MM + len(sigs) * (SIGN_GAP_MM + 6)):
        pdf.add_page()                  # the signatures stay together, under the table
        pdf.multi_cell(0, 5, "%s (续 / continued)" % _text(title, MAX_LINE),
                       wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
    for line in sigs:
        pdf.ln(SIGN_GAP_MM)
        pdf.multi_cell(0, 6, _text(line, MAX_LINE), wrapmode=WrapMode.CHAR,
                       new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pdf-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)      # fails if the name appeared meanwhile
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
