"""`make demo` (sim/demo.py), run whole into a temporary directory: the firmware on the
MicroPython VM behind a real pty, the real station commands, the real archive. What a new
user reads must hold: each step told in words (no raw event codes, no `seq -`), times that
run forwards (check-out, the shift, check-in) in what is printed and in the signed records,
every output it names exists, the commands it proposes work, the tampered card is NOT_OK
and the officer's statement is a clip that plays and verifies."""
import json
import os
import re
import shlex

import av
import pytest

from host_tools import records as R
from host_tools.cli import main as sealcam
from sim import demo

DEVICE = demo.DEVICE


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = demo.main(["--out", str(out)])
    return code, buf.getvalue(), str(out)


def _secs(hms):
    h, m, s = map(int, hms.split(":"))
    return h * 3600 + m * 60 + s


def _forward(times):
    """Printed HH:MM:SS in order, allowing one pass over midnight."""
    out, add = [], 0
    for t in times:
        t += add
        if out and t < out[-1] - 12 * 3600:
            add += 86400
            t += 86400
        out.append(t)
    return out


def test_demo_succeeds_in_words(run):
    code, text, _ = run
    assert code == 0, text
    assert not re.search(r"\bseq\s+-", text)
    # supervisor's words, key lines in Chinese and English, not the recorder's event codes
    assert "interrupted 16 place_change" not in text and "recorder: " not in text
    assert "录像中断：更换地点 / Recording interrupted: change of place" in text
    assert re.search(r"语音说明 / The officer stated the reason aloud: VOICE held \d+\.\d s "
                     r"\(record #\d+ explains interruption #\d+", text)
    for zh in ("签出 / Check-out", "签入 / Check-in", "告知当事人", "拒绝删除", "核验通过 / Verified OK",
               "发现篡改 / Tampering found: NOT_OK", "档案编号 / Archive number: DEMO-",
               "卷宗 / Case: DEMO-2026-001 (open)", "检索 / Search by case"):
        assert zh in text, zh
    assert text.rstrip().endswith("two disc images that verify and an off-site backup.")


def test_printed_times_run_forwards(run):
    _, text, _ = run
    lines = text.splitlines()
    co = [ln for ln in lines if "station clock" in ln]
    assert len(co) == 2                       # check-out, check-in
    t_out = _secs(re.search(r"station clock (\d\d:\d\d:\d\d)", co[0]).group(1))
    t_in = _secs(re.search(r"station clock (\d\d:\d\d:\d\d)", co[1]).group(1))
    i0, i1 = lines.index(co[0]), lines.index(co[1])
    shift = [_secs(m.group(1)) for ln in lines[i0:i1]
             for m in [re.match(r"  (\d\d:\d\d:\d\d)  ", ln)] if m]
    assert len(shift) >= 7
    seq = _forward([t_out] + shift + [t_in])
    assert seq == sorted(seq), seq
    assert seq[1] > seq[0] and seq[-1] > seq[-2]


def test_stored_times_run_forwards(run):
    """The signed records in the archive: the check-out's ASSIGN before every record of the
    shift, the check-in's release after them; the report's shift frames its interruption
    and marks."""
    _, _, out = run
    view = os.path.join(out, "archive", "devices", DEVICE)
    recs = demo.store_records(view)
    assigns = [r for r in recs if r.type == R.ASSIGN]
    assert [a.body[R.K.OFFICER] for a in assigns] == [demo.OFFICER, None]
    start, end = assigns[0], assigns[1]
    shift = [r for r in recs if start.seq < r.seq < end.seq and r.type != R.RECEIPT
             and r.type != R.TIME_SET and r.type != R.SELF_CHECK]
    assert any(r.type == R.INTERRUPTION for r in shift)
    rtc = [r.body[R.K.RTC] for r in shift]
    assert min(rtc) > start.body[R.K.RTC] and max(rtc) < end.body[R.K.RTC]
    assert rtc == sorted(rtc)
    with open(os.path.join(out, "report.json")) as f:
        f.readline()                         # "$ sealcam report … --json"
        rep = json.loads(f.read())
    (sh,) = rep["shifts"]
    assert sh["end"] is not None and sh["start"] < sh["end"]
    for item in rep["interruptions"] + rep["marks"]:
        assert sh["start"] < item["time"] < sh["end"], item
    adj = rep["clock_adjustments"]
    assert all(abs(a["correction_ms"]) < 5000 for a in adj), adj


def _section(text, title):
    lines = text.splitlines()
    i = [k for k, ln in enumerate(lines) if ln.startswith("== ") and title in ln][0]
    body = []
    for ln in lines[i + 1:]:
        if ln.startswith("== ") or not ln.strip():
            break
        body.append(ln)
    return body


def test_named_outputs_exist(run):
    _, text, out = run
    body = _section(text, "Where the outputs are")
    assert len(body) >= 8
    for ln in body:
        path = ln.split(":", 1)[1].strip()
        path = path.replace(" (+ .prov)", "")
        assert os.path.exists(path), ln
        assert os.path.abspath(path).startswith(out), ln
    with open(os.path.join(out, "tampered-verify.txt")) as f:
        assert "VERDICT: NOT_OK" in f.read()
    for name in os.listdir(out):
        if name.endswith(".txt"):
            with open(os.path.join(out, name), encoding="utf-8") as f:
                assert not re.search(r"\bseq\s+-", f.read()), name
    with open(os.path.join(out, "verify.txt")) as f:
        v = f.read()
    assert "OVERALL: OK" in v and "after the head" not in v and "after the signed head" not in v


def test_statement_clip_plays_with_sound(run):
    _, text, out = run
    clips = [n for n in os.listdir(out) if n.startswith("statement-") and n.endswith(".mkv")]
    assert len(clips) == 1 and os.path.exists(os.path.join(out, clips[0] + ".prov"))
    assert "ffplay " + os.path.join(out, clips[0]) in text
    with av.open(os.path.join(out, clips[0])) as c:
        kinds = {s.type for s in c.streams}
        assert {"video", "audio"} <= kinds
        n = sum(1 for _ in c.decode(audio=0))
    assert n > 0


def test_proposed_commands_work(run, capsys, monkeypatch):
    """Every `sealcam …` command under "Try next" runs and exits as it should (a leading
    VAR=value is set in the environment, as a shell would)."""
    _, text, out = run
    cmds = [ln.strip() for ln in _section(text, "Try next") if not ln.strip().startswith("#")]
    assert any(c.startswith("ffplay ") for c in cmds)
    want = {"verify": None, "report": 0, "clip": 0, "verify-clip": 0, "search": 0,
            "restore": 0}
    ran = set()
    for c in cmds:
        argv = shlex.split(c)
        while argv and "=" in argv[0] and not argv[0].startswith("-"):
            k, v = argv.pop(0).split("=", 1)
            monkeypatch.setenv(k, v)
        if not argv[0].endswith("sealcam"):
            continue
        verb = argv[1]
        if verb == "desk":            # a server: started by tests/test_desk*.py instead
            assert sealcam(["desk", "--check"] + argv[2:]) == 0, c
            ran.add(verb)
            continue
        code = sealcam(argv[1:])
        capsys.readouterr()
        if verb == "verify":
            assert code == (1 if "tampered" in c else 0), c
        else:
            assert code == want[verb], c
        ran.add(verb)
    assert ran == {"verify", "report", "clip", "verify-clip", "search", "restore", "desk"}


def test_the_interrupted_recording_is_filed_into_a_case(run, capsys):
    """Step 8: the interrupted recording, found by its case, carries the archive number the
    demo printed, and its interruption has the written explanation (the scanned PDF)."""
    _, text, out = run
    number = re.search(r"档案编号 / Archive number: (\S+)", text).group(1)
    arch = os.path.join(out, "archive")
    assert sealcam(["search", "--archive", arch, "--case", "DEMO-2026-001", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["recordings"]
    assert rec["device"] == DEVICE and rec["interruptions"] == 1
    assert rec["archive_numbers"] == [number] and rec["party"] == ["张三"]
    seq = int(re.search(r"written explanation of interruption #(\d+)", text).group(1))
    assert sealcam(["doc", "explanations", DEVICE, str(seq), "--archive", arch,
                    "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)["explanations"]
    assert doc["by_user"] == "li.na" and doc["name"].endswith(".pdf")
    assert sealcam(["catalogue", "check", "--archive", arch]) == 0
