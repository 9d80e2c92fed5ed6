"""Messages in Simplified Chinese (issue 11, item 7): host_tools/i18n.py and the zh_CN
gettext catalog made with Babel (host_tools/locale; refresh: host_tools/locale/refresh.py).

- the committed .mo is the compile of the committed .po (a stale .mo fails);
- every message of host_tools (as `pybabel extract -F babel.cfg` finds it) is in the .po,
  translated (what is not is named by file:line), its placeholders kept;
- the report in Chinese: `setup("zh_CN")` on a real archive (tests/test_report.py's), and
  LANG=zh_CN.UTF-8 through a real `sealcam report` process; `--lang en` wins over LANG; an
  unknown language, a missing or corrupt catalog give English, never a traceback;
- English stays what it was: the sentences the report translates are matched against the
  English they are made from, and each gives back the original text.
"""
import io
import os
import re
import subprocess
import sys

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from host_tools import i18n, report
from host_tools import report_words as W

import test_report as TR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCALE = os.path.join(ROOT, "host_tools", "locale")
PO = os.path.join(LOCALE, "zh_CN", "LC_MESSAGES", "sealcam.po")
MO = os.path.join(LOCALE, "zh_CN", "LC_MESSAGES", "sealcam.mo")
HEADINGS_ZH = ["sealcam 合规报告", "汇总", "中断（", "超时上传（", "校时记录（", "标记（",
               "值勤班次（", "问题（"]
HEADINGS_EN = ["sealcam compliance report", "SUMMARY", "INTERRUPTIONS (", "LATE OFFLOADS (",
               "CLOCK ADJUSTMENTS (", "MARKS (", "SHIFTS (", "PROBLEMS ("]
_PH = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]")


def _placeholders(text):
    """A text's placeholders: the set of the named ones (each may be used more than once,
    in any order), or the list of the positional ones (each is used once, in order)."""
    found = _PH.findall(text)
    named = sorted({p for p in found if p.startswith("%(")})
    return named if named else found


def _refresh():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sealcam_locale_refresh",
                                                  os.path.join(LOCALE, "refresh.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _catalog():
    with open(PO, "rb") as f:
        return read_po(f, locale="zh_CN")


@pytest.fixture
def lang():
    """Sets the language for one test and puts English back afterwards."""
    yield i18n.setup
    i18n.setup("en")


# --- the catalog -------------------------------------------------------------------------

def test_mo_is_the_compile_of_the_po():
    buf = io.BytesIO()
    write_mo(buf, _catalog())
    with open(MO, "rb") as f:
        committed = f.read()
    assert committed == buf.getvalue(), (
        "host_tools/locale/zh_CN/LC_MESSAGES/sealcam.mo is not the compile of its .po: run "
        "`.venv/bin/python host_tools/locale/refresh.py` and commit both")


def test_every_message_of_host_tools_is_translated():
    cat = _catalog()
    found = _refresh().extract_messages()
    assert len(found) > 300        # the report, the clerk commands, the disposal, ...
    bad = []
    for msgid, where in found:
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        m = cat.get(key)
        if m is None:
            bad.append("%s: not in the .po: %r" % (where, key))
        elif m.fuzzy:
            bad.append("%s: fuzzy (a guess, not used): %r" % (where, key))
        elif not (all(m.string) if isinstance(m.string, tuple) else m.string):
            bad.append("%s: untranslated: %r" % (where, key))
    assert not bad, ("%d message(s) of host_tools have no Chinese; run "
                     "`.venv/bin/python host_tools/locale/refresh.py`, translate, run it "
                     "again:\n" % len(bad)) + "\n".join(bad)


def test_placeholders_are_kept():
    """Each translation has the placeholders of its English, no more and no fewer, and
    formats: a stray % or a renamed %(name)s would break the message at run time."""
    bad = []
    for m in _catalog():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strs = m.string if isinstance(m.string, tuple) else (m.string,)
        want = _placeholders(ids[-1])
        for s in strs:
            if not s:
                continue
            if _placeholders(s) != want:
                bad.append("%r -> %r: placeholders %s, not %s"
                           % (ids[0], s, _placeholders(s), want))
            elif want:
                named = [p for p in want if p.startswith("%(")]
                args = {re.match(r"%\((\w+)\)", p).group(1): 1 for p in named} if named \
                    else (1,) * len(want)
                try:
                    s % args
                except (ValueError, TypeError, KeyError) as e:
                    bad.append("%r -> %r: does not format: %s" % (ids[0], s, e))
    assert not bad, "\n".join(bad)


def test_the_catalog_is_chinese_and_not_a_copy():
    """A translation is never the English copied (a word the translator skipped)."""
    copied = []
    for m in _catalog():
        if not m.id or not m.string:
            continue
        s = m.string[0] if isinstance(m.string, tuple) else m.string
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        if s == key and re.search(r"[a-z]{3,}", key):
            copied.append("%r -> %r" % (key, s))
    assert not copied, "\n".join(copied)


# --- choosing the language -------------------------------------------------------------

@pytest.mark.parametrize("name, want", [
    ("zh_CN.UTF-8", "zh_CN"), ("zh_CN", "zh_CN"), ("zh", "zh_CN"), ("zh-Hans", "zh_CN"),
    ("zh_Hans_CN", "zh_CN"), ("zh_SG.GB2312", "zh_CN"), ("ZH_cn.utf8", "zh_CN"),
    ("en_US.UTF-8", "en"), ("C", "en"), ("POSIX", "en"), ("C.UTF-8", "en"),
    ("zh_TW.UTF-8", None), ("fr_FR", None), ("", None), ("x" * 500, None), (None, None)])
def test_normalize(name, want):
    assert i18n.normalize(name) == want


def test_environment_is_read_like_gettext(monkeypatch, lang):
    for v in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(v, raising=False)
    assert lang() == "en"                                  # nothing set
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert lang() == "zh_CN" and i18n.current() == "zh_CN"
    monkeypatch.setenv("LC_MESSAGES", "en_GB.UTF-8")       # before LANG
    assert lang() == "en"
    monkeypatch.setenv("LC_ALL", "zh_CN.GB18030")          # before LC_MESSAGES
    assert lang() == "zh_CN"
    monkeypatch.setenv("LANGUAGE", "fr:zh_CN:en")          # first of the list it knows
    assert lang() == "zh_CN"
    monkeypatch.setenv("LANGUAGE", "de_DE")                # only unknown ones: English
    assert lang() == "en"
    monkeypatch.setenv("LANGUAGE", "")                     # empty: the next variable
    assert lang() == "zh_CN"
    assert lang("en") == "en"                              # --lang wins over them all
    assert lang("klingon") == "en"                         # an unknown --lang: English


def test_lazy_lookup_and_marked_constants(lang):
    title = i18n.N_("SUMMARY")              # a module constant: plain English
    assert title == "SUMMARY"
    lang("zh_CN")
    assert i18n._(title) == "汇总"          # translated when shown, after setup
    assert i18n.pgettext("day range", "start") == "不限" and i18n._("start") == "开始"
    assert i18n.ngettext("RECORDS LEFT OUT: THEY DO NOT VERIFY (%(n)d device)",
                         "RECORDS LEFT OUT: THEY DO NOT VERIFY (%(n)d devices)", 2) \
        % {"n": 2} == "未纳入报告的记录：校验未通过（2 台记录仪）"
    assert i18n._("a message no catalog has") == "a message no catalog has"
    lang("en")
    assert i18n._(title) == "SUMMARY" and i18n.current() == "en"
    assert i18n.ngettext("%(n)d device", "%(n)d devices", 1) % {"n": 1} == "1 device"


@pytest.mark.parametrize("content", [b"", b"not a catalog at all" * 10,
                                     b"\xde\x12\x04\x95" + b"\xff" * 40])
def test_corrupt_or_missing_catalog_gives_english(tmp_path, monkeypatch, capsys, lang,
                                                  content):
    where = tmp_path / "zh_CN" / "LC_MESSAGES"
    where.mkdir(parents=True)
    (where / "sealcam.mo").write_bytes(content)
    monkeypatch.setattr(i18n, "LOCALE_DIR", str(tmp_path))
    monkeypatch.setattr(i18n, "_warned", set())
    assert lang("zh_CN") == "en" and i18n.current() == "en"
    assert i18n._("SUMMARY") == "SUMMARY"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "zh_CN" in err and "English" in err
    monkeypatch.setattr(i18n, "LOCALE_DIR", str(tmp_path / "nowhere"))
    assert lang("zh_CN") == "en" and i18n._("SUMMARY") == "SUMMARY"


# --- the report ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("i18n"))
    root = os.path.join(tmp, "arch")
    a_store, b_store, f = TR.make_archive(root, tmp)
    return root, a_store, b_store, f


def test_report_in_chinese(built, lang):
    rep = report.build_report(built[0])
    english = report.to_text(rep)
    lang("zh_CN")
    text = report.to_text(rep)
    for h in HEADINGS_ZH:
        assert h in text, h
    for h in HEADINGS_EN:
        assert h not in text, h
    # the machine forms do not change with the language
    assert report.to_csv(rep).splitlines()[0] == ",".join(report.CSV_COLUMNS)
    lines = text.splitlines()
    # every problem and every interruption's explanation is in Chinese
    probs = lines[lines.index("问题（%d）" % len(rep["problems"])) + 1:]
    assert len(probs) == len(rep["problems"]) == 5
    for line in probs:
        assert "序号" in line or "录像段" in line, line
        assert not re.search(r"\b(interruption|segment|the|is|was)\b", line), line
    i = lines.index("中断（%d）" % len(rep["interruptions"]))
    assert lines[i + 1].split()[:3] == ["记录仪", "序号", "时间"]
    for line, it in zip(lines[i + 2:], rep["interruptions"]):
        assert W.word(it["status"]) in line and re.search(r"[\u4e00-\u9fff]", line)
        assert not re.search(r"\b(annotation|waited|the|no)\b", line), line
    # columns stay aligned with wide characters: each value starts under its header
    header = lines[i + 1]
    col = sum(2 if ord(c) > 0x2E80 else 1 for c in header[:header.index("原因")])
    for line, it in zip(lines[i + 2:], rep["interruptions"]):
        w, k = 0, 0
        while w < col:
            w += 2 if ord(line[k]) > 0x2E80 else 1
            k += 1
        assert line[k:].startswith(W.word(it["reason"])), line
    lang("en")
    assert report.to_text(rep) == english        # English is what it was


def test_english_sentences_round_trip_and_all_translate(built, tmp_path, lang):
    """Each sentence the report's builders make (problems of every kind, explanations,
    notes, reasons, integrity) matches its msgid: filled with the values it matched, the
    English msgid gives back the original, and the Chinese is a different text."""
    root = TR._edited_copy(built, tmp_path,
                           ("DELETE FROM records WHERE device = ? AND seq = ?",
                            (TR.A, built[3]["int_overheat"])),
                           ("DELETE FROM records WHERE device = ?", (TR.B,)),
                           ("DELETE FROM devices WHERE id = ?", (TR.B,)))
    reps = [report.build_report(built[0]), report.build_report(root)]
    texts = []
    for rep in reps:
        texts += [(p["message"], W.PROBLEM[p["kind"]]) for p in rep["problems"]]
        texts += [(it["explanation"], W.EXPLANATION) for it in rep["interruptions"]]
        texts += [(n, W.NOTE) for n in rep["notes"]]
        texts += [(u["reason"], W.UNVERIFIED) for u in rep["unverified"]]
        texts.append((rep["integrity"], W.INTEGRITY_TEXT))
    kinds = {p["kind"] for rep in reps for p in rep["problems"]}
    assert kinds == {"interruption_unexplained", "annotation_missing", "late_offload",
                     "clock_drift", "not_verified"}
    assert reps[1]["notes"] and len(reps[1]["unverified"]) == 2
    lang("zh_CN")
    for text, spec in texts:
        assert W.match(text, spec), "no msgid in host_tools/report_words.py matches %r" % text
        assert W.sentence(text, spec, translate=lambda m: m) == text
        zh = W.sentence(text, spec)
        assert zh != text and re.search(r"[\u4e00-\u9fff]", zh), (text, zh)


def _env(**kw):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}
    env.update(kw)
    return env


def _sealcam(argv, **env):
    return subprocess.run([sys.executable, "-m", "host_tools.cli"] + argv, cwd=ROOT,
                          env=_env(**env), capture_output=True, text=True, timeout=120)


def test_sealcam_report_follows_lang(built):
    p = _sealcam(["report", "--archive", built[0]], LANG="zh_CN.UTF-8")
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    for h in HEADINGS_ZH:
        assert h in p.stdout, h
    # JSON is a machine format: the same keys and values whatever the language
    pj = _sealcam(["report", "--archive", built[0], "--json"], LANG="zh_CN.UTF-8")
    assert '"problems"' in pj.stdout and "汇总" not in pj.stdout
    # an unknown language: English, no complaint
    p = _sealcam(["report", "--archive", built[0]], LANG="fr_FR.UTF-8")
    assert p.returncode == 1 and p.stderr == ""
    for h in HEADINGS_EN:
        assert h in p.stdout, h


def test_lang_option_wins_over_the_environment(built):
    from host_tools.cli import _build_parser
    if "--lang" not in _build_parser().format_help():
        pytest.skip("host_tools/cli.py has no --lang yet (/work/notes/i-handoff.md)")
    p = _sealcam(["--lang", "en", "report", "--archive", built[0]], LANG="zh_CN.UTF-8")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    for h in HEADINGS_EN:
        assert h in p.stdout, h
    p = _sealcam(["--lang", "zh_CN", "report", "--archive", built[0]], LANG="C")
    for h in HEADINGS_ZH:
        assert h in p.stdout, h
    p = _sealcam(["--lang=xx", "report", "--archive", built[0]], LANG="zh_CN.UTF-8")
    for h in HEADINGS_EN:
        assert h in p.stdout, h


def test_argparse_speaks_chinese_too(capsys, lang):
    """argparse's own words (usage, options, a missing argument) follow the language."""
    from host_tools.cli import main
    assert main(["--lang", "zh_CN", "report"]) == 3
    err = capsys.readouterr().err
    assert "用法：" in err and "缺少以下必需参数：--archive" in err, err
    assert main(["report", "--lang", "zh_CN", "--help"]) == 0
    out = capsys.readouterr().out
    assert "选项" in out and "显示本帮助信息并退出" in out
    assert "工作站档案库（存放 archive.sqlite 的文件夹）" in out       # the report's own help
    assert main(["--lang", "en", "report"]) == 3
    err = capsys.readouterr().err
    assert "usage: " in err and "the following arguments are required: --archive" in err
