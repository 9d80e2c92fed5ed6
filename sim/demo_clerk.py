"""The end of `make demo` (sim/demo.py): the archive's clerks file the interrupted recording.

    step_clerk(d)       d: sim.demo.Demo; returns a summary dict, or None if a step failed

Through the real `sealcam` command, as clerks would (issue 11; SPEC §14): the station key's
holder adds the archive head, who adds a clerk; the clerk finds the interrupted recording
(`sealcam search --interruption any`), tags it (party, place, event type, item class),
asks for its archive number, opens a case, files the recording into it, attaches the
written explanation of the interruption (a scanned PDF: made here, a small real one), and
finds it again by the case. Every action is a signed event of the station log naming
its user.

    explanation_pdf(lines) -> bytes     a one-page PDF (Helvetica, ASCII lines)
"""
from __future__ import annotations

import json
import os

__all__ = ["explanation_pdf", "step_clerk", "CASE_NO", "PARTY", "STEP"]

CASE_NO = "DEMO-2026-001"
PARTY = "ZHANG-SAN"             # 当事人 (a party name without the number's separators)
STEP = "inspection"             # the enforcement step of the archive number
PLACE = "Wuyi Road 12"
HEAD, CLERK = "wang.head", "li.na"
PASSWORDS = {None: None, HEAD: "demo head pass", CLERK: "demo clerk pass"}


def explanation_pdf(lines) -> bytes:
    """A small, whole PDF 1.4 (one A4 page, the ``lines`` in Helvetica; ASCII only): its
    cross-reference table gives each object's true byte offset."""
    def esc(s):
        return s.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(
            b"(", b"\\(").replace(b")", b"\\)")
    text = b"BT /F1 12 Tf 72 770 Td 16 TL " + b" ".join(
        b"(" + esc(line) + b") Tj T*" for line in lines) + b" ET"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1, xref)
    return bytes(out)
