"""Messages in the user's language: English (the msgids) or Simplified Chinese (zh_CN).

    from ..i18n import _, ngettext, N_
    print(_("user %(name)s exists already") % {"name": name})
    print(ngettext("%(n)d recording", "%(n)d recordings", n) % {"n": n})
    print(pgettext("day range", "start"))   # the same English word, another translation
    TITLE = N_("SUMMARY")        # a module constant: marked for extraction only ...
    print(_(TITLE))              # ... and translated when shown

The catalogs are gettext catalogs made with Babel (see host_tools/locale/refresh.py):
host_tools/locale/<lang>/LC_MESSAGES/sealcam.mo, compiled from the .po beside it.

The language is chosen once per process by ``setup(lang)``: ``lang`` when given (the
`--lang` option), else the first of LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set, as
gettext reads them (LANGUAGE may list several, "zh_CN:en"). zh, zh_CN, zh_CN.UTF-8, zh-Hans,
zh_SG mean Simplified Chinese; anything else (C, POSIX, en_US, fr, a typo) means English.
Nothing here ever raises on a language or a catalog: an unknown language, or a missing,
oversized or corrupt catalog, gives English (a corrupt one says so once on stderr).

``_`` looks the text up at each call, in the language of the moment, so a string made at
import time before ``setup`` ran is not frozen: keep module constants as ``N_("...")``
(plain English) and pass them through ``_`` where they are shown.
"""
from __future__ import annotations

import gettext as _gettext
import os
import re
import stat as _stat
import sys

__all__ = ["_", "N_", "ngettext", "pgettext", "setup", "current", "lang_in_argv", "normalize",
           "LANGUAGES", "DOMAIN", "LOCALE_DIR"]

DOMAIN = "sealcam"
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")
#: the languages there is a catalog for ("en" is the msgids themselves)
LANGUAGES = ("en", "zh_CN")
#: a catalog larger than this is not read (ours is a few tens of kB)
MAX_CATALOG = 4 << 20

_ENV = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
_NULL = _gettext.NullTranslations()
_state = {"lang": None, "tr": _NULL}     # lang None: setup() not run yet
_warned = set()
_loaded = {}        # (path, size, mtime) -> the Translations read from it


def normalize(lang):
    """'zh_CN' for a name of Simplified Chinese, 'en' for English, None for any other.

    >>> [normalize(x) for x in ("zh_CN.UTF-8", "zh", "zh-Hans", "C", "fr_FR", "")]
    ['zh_CN', 'zh_CN', 'zh_CN', 'en', None, None]
    """
    if not isinstance(lang, str):
        return None
    s = lang.strip()[:64]
    s = re.split(r"[.@]", s, maxsplit=1)[0].replace("-", "_").lower()
    if not s:
        return None
    if s in ("c", "posix") or s == "en" or s.startswith("en_"):
        return "en"
    parts = s.split("_")
    if parts[0] != "zh":
        return None
    rest = parts[1:]
    # zh, zh_CN, zh_SG, zh_Hans, zh_Hans_CN: Simplified; zh_TW, zh_HK, zh_Hant: not ours
    if not rest or rest[0] in ("cn", "sg", "hans", "my"):
        return "zh_CN"
    return None


def _from_env(environ=None):
    env = os.environ if environ is None else environ
    for name in _ENV:
        val = env.get(name)
        if val:
            for item in val.split(":"):
                n = normalize(item)
                if n:
                    return n
            return "en"
    return "en"


def lang_in_argv(argv):
    """The value of a `--lang X` / `--lang=X` among ``argv`` (None if there is none), so
    that the CLI can choose the language before it builds its parser (its help texts)."""
    argv = list(argv or [])
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if isinstance(a, str) and a.startswith("--lang="):
            return a[len("--lang="):]
    return None


def _load(lang):
    """The Babel translations of ``lang`` from LOCALE_DIR, or None (English)."""
    if lang == "en":
        return None
    path = os.path.join(LOCALE_DIR, lang, "LC_MESSAGES", DOMAIN + ".mo")
    try:
        from babel.support import Translations
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key in _loaded:
            return _loaded[key]
        size = st.st_size
        if not _stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if size > MAX_CATALOG:
            raise ValueError("%d bytes, more than the %d a catalog may have"
                             % (size, MAX_CATALOG))
        with open(path, "rb") as f:
            tr = Translations(f, domain=DOMAIN)
        _loaded.clear()
        _loaded[key] = tr
        return tr
    except FileNotFoundError:
        why = "not installed"
    except Exception as e:  # noqa: BLE001 - a corrupt catalog must never stop a command
        why = "%s: %s" % (type(e).__name__, e)
    if path not in _warned:
        _warned.add(path)
        try:
            print("sealcam: the %s messages (%s) cannot be used (%s); messages are in "
                  "English" % (lang, path, why), file=sys.stderr)
        except (OSError, ValueError):
            pass
    return None


def setup(lang=None):
    """Choose the language: ``lang`` (e.g. the `--lang` value) if given, else from the
    environment. Returns the language in effect, 'en' or 'zh_CN' (see current())."""
    want = normalize(lang) if lang else None
    if want is None:
        want = "en" if lang else _from_env()
    tr = _load(want)
    _state["tr"] = tr or _NULL
    _state["lang"] = want if tr is not None else "en"
    from . import i18n_argparse         # argparse's own words ("usage:", "options")
    if tr is None:
        i18n_argparse.install()
    else:
        i18n_argparse.install(_, ngettext)
    return _state["lang"]


def current():
    """'en' or 'zh_CN': the language messages are shown in now."""
    if _state["lang"] is None:
        setup()
    return _state["lang"]


def _(message):
    """``message`` in the language of the moment (the English text when it has no
    translation)."""
    if _state["lang"] is None:
        setup()
    if not message or not isinstance(message, str):
        return message
    return _state["tr"].gettext(message)


def ngettext(singular, plural, n):
    """The form of ``singular``/``plural`` that fits the count ``n``, translated."""
    if _state["lang"] is None:
        setup()
    return _state["tr"].ngettext(singular, plural, n)


def pgettext(context, message):
    """``message`` as meant in ``context`` (a word that reads differently in two places),
    translated; the English text when it has no translation."""
    if _state["lang"] is None:
        setup()
    return _state["tr"].pgettext(context, message)


def N_(message):
    """Marks ``message`` for the catalog without translating it (module constants):
    show it with ``_(CONSTANT)``."""
    return message
