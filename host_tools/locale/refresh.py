"""Refresh the message catalogs of the sealcam host tools (host_tools/i18n.py), with Babel.

    .venv/bin/python host_tools/locale/refresh.py            # extract, update, compile
    .venv/bin/python host_tools/locale/refresh.py --check    # only say what is missing

1. extract every _("..."), N_("..."), ngettext(...) of host_tools/ (babel.cfg), and of
   the desk's Jinja2 templates (host_tools/desk/templates/*.html: Babel's jinja2
   extractor, JINJA below), into host_tools/locale/sealcam.pot;
2. update host_tools/locale/<lang>/LC_MESSAGES/sealcam.po from it: new msgids arrive
   untranslated (no fuzzy guesses), msgids no longer used are dropped;
3. compile each .po into its sealcam.mo (the file host_tools/i18n.py reads);
4. list what is still untranslated, by file:line, and exit 1 if anything is.

The same as the pybabel commands (babel.cfg with the JINJA section added):
    pybabel extract -F babel.cfg -o host_tools/locale/sealcam.pot --project sealcam \
        --sort-output --add-location=file -c TRANSLATORS: host_tools
    pybabel update -i host_tools/locale/sealcam.pot -d host_tools/locale -D sealcam \
        --no-fuzzy-matching --ignore-obsolete
    pybabel compile -d host_tools/locale -D sealcam --statistics
Then translate the new msgstr "" entries of the .po (keep each %(name)s as it is) and run
it again: the .mo must be committed with its .po (tests/test_i18n.py checks both).
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOMAIN = "sealcam"
LANGS = ("zh_CN",)
# the desk's server-rendered pages (host_tools/desk): {{ _("...") }} in its templates
JINJA = "\n[jinja2: desk/templates/**.html]\nextensions = jinja2.ext.i18n\n"


def mapping_text():
    """babel.cfg with the templates' section (JINJA) added."""
    with open(os.path.join(ROOT, "babel.cfg"), encoding="utf-8") as f:
        return f.read() + JINJA


def pybabel(*argv):
    from babel.messages.frontend import CommandLineInterface
    CommandLineInterface().run(["pybabel", "-q", *argv])


def extract_messages():
    """[(msgid, "file:line")] of every message of host_tools, as `pybabel extract -F
    babel.cfg` finds them (msgid a tuple for ngettext), in file order."""
    from babel.messages.extract import extract_from_dir
    import io
    from babel.messages.frontend import parse_mapping_cfg
    method_map, options_map = parse_mapping_cfg(io.StringIO(mapping_text()))
    out = []
    for filename, lineno, msgid, _comments, _context in extract_from_dir(
            os.path.join(ROOT, "host_tools"), method_map, options_map):
        out.append((msgid, "host_tools/%s:%d" % (filename.replace(os.sep, "/"), lineno)))
    return out


def untranslated(lang):
    """[(file:line, msgid)] of the msgids of host_tools with no usable translation."""
    from babel.messages.pofile import read_po
    with open(os.path.join(HERE, lang, "LC_MESSAGES", DOMAIN + ".po"), "rb") as f:
        cat = read_po(f)
    out = []
    for msgid, where in extract_messages():
        m = cat.get(msgid[0] if isinstance(msgid, tuple) else msgid)
        if m is None or m.fuzzy or not (all(m.string) if isinstance(m.string, tuple)
                                        else m.string):
            out.append((where, msgid))
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    os.chdir(ROOT)
    if "--check" not in argv:
        import tempfile
        pot = os.path.join("host_tools", "locale", DOMAIN + ".pot")
        with tempfile.NamedTemporaryFile("w", suffix=".cfg", encoding="utf-8") as cfg:
            cfg.write(mapping_text())
            cfg.flush()
            pybabel("extract", "-F", cfg.name, "-o", pot, "--project", "sealcam",
                    "--sort-output", "--add-location=file", "-c", "TRANSLATORS:",
                    "host_tools")
        for lang in LANGS:
            po = os.path.join("host_tools", "locale", lang, "LC_MESSAGES", DOMAIN + ".po")
            if os.path.exists(po):
                pybabel("update", "-i", pot, "-d", "host_tools/locale", "-D", DOMAIN, "-l",
                        lang, "--no-fuzzy-matching", "--ignore-obsolete")
            else:
                pybabel("init", "-i", pot, "-d", "host_tools/locale", "-D", DOMAIN, "-l",
                        lang)
        pybabel("compile", "-d", "host_tools/locale", "-D", DOMAIN, "--statistics")
    missing = 0
    for lang in LANGS:
        for where, msgid in untranslated(lang):
            missing += 1
            print("%s: %s: untranslated: %r" % (where, lang, msgid))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
