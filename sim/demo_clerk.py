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

import contextlib
import json
import os

__all__ = ["explanation_pdf", "step_clerk", "clerk_command", "CASE_NO", "PARTY", "STEP", "UNIT", "CHIEF"]

CASE_NO = "DEMO-2026-001"
UNIT = "Traffic Unit 2"                  # the case's unit: the officer's (sim/demo.py)
PARTY, PLACE = "张三", "五一路12号"      # 当事人, 地点 (Zhang San, 12 Wuyi Road)
STEP = "检查"                            # the enforcement step in the archive number
EVENT_TYPE, ITEM = "inspection", "001-09"   # 检查取证 / inspection and taking evidence
HEAD, CLERK = "wang.head", "li.na"
CHIEF = "zhou.chief"                     # the bureau chief (局长): sets up the staff
PASSWORDS = {HEAD: "demo head pass 1", CLERK: "demo clerk pass 1", CHIEF: "demo chief pass 1"}
SAVE, WHAT = "clerk.txt", "the clerks' filing (users, tags, number, case, search)"


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


@contextlib.contextmanager
def _env(**values):
    """os.environ with ``values`` set (None: unset) for the `sealcam` child processes."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _json(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def clerk_command(d, args, save, what, passwords, user=None, new_password=None,
                  json_out=True):
    """Run `sealcam ARGS --archive ARCHIVE [--user USER] [--json]` as a clerk would, the
    user's password (``passwords``) and a new user's (``new_password``) in the environment;
    its output kept in OUT/``save``. Returns the JSON (or the text), None if it failed."""
    args = list(args) + ["--archive", d.arch] + (["--user", user] if user else []) + (
        ["--json"] if json_out else [])
    with _env(SEALCAM_USER=None, SEALCAM_PASSWORD=passwords.get(user),
              SEALCAM_NEW_PASSWORD=new_password):
        p = d.sealcam(args, save, what)
    if p.returncode != 0:
        print("  demo: `sealcam %s` failed (exit %d); see %s"
              % (" ".join(str(a) for a in args[:2]), p.returncode,
                 d.rel(os.path.join(d.out, save))))
        return None
    return _json(p) if json_out else p.stdout


def step_clerk(d, rep):
    """Step 8 of the demo (after the clip): file the interrupted recording into a case with
    its archive number. ``rep``: the report's JSON (its interruptions). Returns {number,
    case, recording, scan} or None (a command failed: its output is in OUT/clerk.txt)."""
    from sim.demo import DEVICE, _n, banner, say
    # the demo agency's settings (docs/station-config.md): its code in archive numbers, and
    # China's time zone for their date
    conf = os.path.join(d.arch, "station.toml")
    if not os.path.exists(conf):
        with open(conf, "w", encoding="utf-8") as f:
            f.write('[agency]\ncode = "DEMO"\nname = "演示执法单位"\nutc_offset_minutes = 480\n')

    def sealcam(args, user=None, new_password=None, json_out=True):
        return clerk_command(d, args, SAVE, WHAT, PASSWORDS, user, new_password, json_out)

    intr = [i for i in (rep or {}).get("interruptions", []) if i.get("device", DEVICE)
            == DEVICE]
    if not intr:
        return None
    banner("8. 立卷归档 / The clerks file the interrupted recording into a case")
    # the bureau chief sets up the clerk: whoever set up a requester never approves its
    # requests (SPEC §14.9), and the archive head approves the clerk's in step 9
    if sealcam(["user", "add", HEAD, "--role", "archive_head", "--display", "王档案"],
               new_password=PASSWORDS[HEAD]) is None or \
            sealcam(["user", "add", CHIEF, "--role", "bureau_chief", "--display", "周局长"],
                    user=HEAD, new_password=PASSWORDS[CHIEF]) is None or \
            sealcam(["user", "add", CLERK, "--role", "clerk", "--display", "李娜"],
                    user=CHIEF, new_password=PASSWORDS[CLERK]) is None:
        return None
    say("用户", "Users", "%s (archive head) added by the station key's holder, %s (bureau "
        "chief) by %s, %s (clerk) by the chief; every action below is a signed station log "
        "event naming its user" % (HEAD, CHIEF, HEAD, CLERK))
    found = sealcam(["search", "--interruption", "any", "--device", DEVICE])
    if not found or not found.get("recordings"):
        return None
    i = intr[0]                 # the recording it interrupted (recordings.py counts it there)
    rows = [x for x in found["recordings"] if x["segment"] == i.get("segment")]
    r = (rows or found["recordings"][-1:])[0]
    rec = "%s/%d" % (r["device"], r["segment"])
    steps = [(["tag", rec, "--party", PARTY, "--place", PLACE, "--event-type", EVENT_TYPE,
               "--item-class", ITEM], CLERK),
             (["number", rec, "--party", PARTY, "--step", STEP], CLERK),
             (["case", "open", CASE_NO, "--title", "%s %s 违法建设检查" % (PLACE, PARTY),
               "--unit", UNIT], CLERK),
             (["case", "link", CASE_NO, rec], CLERK)]
    out = [sealcam(args, user=who) for args, who in steps]
    if any(x is None for x in out):
        return None
    number = out[1]["number"]
    say("登记", "Tagged", "%s: party %s, place %s, event type %s, item %s (检查取证 / "
        "inspection and taking evidence, a scene record)" % (rec, PARTY, PLACE, EVENT_TYPE,
                                                            ITEM))
    say("档案编号", "Archive number", "%s (assigned once, never reused)" % number)
    scan = os.path.join(d.out, "情况说明-%d.pdf" % i["seq"])
    with open(scan, "wb") as f:
        f.write(explanation_pdf([
            "Written explanation of interruption #%d (%s)" % (i["seq"], i.get("reason")),
            "Recorder %s, officer %s, case %s" % (DEVICE, r.get("officer"), CASE_NO),
            "The officer changed place; the statement was also given aloud."]))
    doc = sealcam(["doc", "add", scan, "--kind", "explanation", "--device", DEVICE,
                   "--interruption", str(i["seq"]), "--case", CASE_NO], user=CLERK)
    if doc is None:
        return None
    say("卷宗", "Case", "%s (open): recording %s and the written explanation of interruption "
        "#%d (%s, SHA-256 %s...), linked to that INTERRUPTION record"
        % (CASE_NO, rec, i["seq"], d.rel(scan), doc["sha256"][:16]))
    hit = sealcam(["search", "--case", CASE_NO])
    if hit is None:
        return None
    say("检索", "Search by case", "sealcam search --case %s: %s: %s" % (
        CASE_NO, _n(hit["count"], "recording"), "; ".join(
            "%s/%d, officer %s, %s, archive number %s" % (
                x["device"], x["segment"], x.get("officer"), (x.get("start") or "")[:19],
                ", ".join(x.get("archive_numbers") or []) or "-")
            for x in hit["recordings"])))
    if [(x["device"], x["segment"]) for x in hit["recordings"]] != [(r["device"],
                                                                     r["segment"])]:
        return None
    return {"number": number, "case": CASE_NO, "recording": rec, "scan": scan}
