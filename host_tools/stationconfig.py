"""The station's own settings: ARCHIVE/station.toml (docs/station-config.md).

    cfg = load("/srv/sealcam")            # the defaults when the file does not exist
    cfg.get("officer", "id_pattern")      # a value, checked and converted
    cfg.refuse_officer("PC 42")           # None, or one line saying why it is refused
    cfg.path, cfg.exists

The file is TOML (read with tomllib), at most MAX_BYTES, a regular file (never followed
through a symbolic link: host_tools/safeio.py), UTF-8. Every key it may hold is declared
in SECTIONS below, one dict of sections, each a dict of keys with its type, default and
check; a section or key not declared there, a value of the wrong type or one its check
refuses is a StationConfigError whose message names the file, the section and key, and
what to do. Adding a setting (issue 11: archive number patterns, retention classes) is
one entry in SECTIONS (and a line in docs/station-config.md); nothing else changes.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from . import safeio

__all__ = ["load", "StationConfig", "StationConfigError", "SECTIONS", "FILE", "MAX_BYTES",
           "DEFAULT_OFFICER_PATTERN", "DEFAULT_UNIT_PATTERN", "DEFAULT_BITRATE", "MB",
           "mb_down", "fmt_mb", "minutes_down", "fmt_bitrate"]

FILE = "station.toml"
MAX_BYTES = 64 << 10               # a settings file, not data
PATTERN_MAX = 256                  # characters of a pattern
# officer ids: a 6-digit police number (警号, e.g. 012345) or a short letter prefix, a
# hyphen and letters or digits (PC-0042, OFC-7)
DEFAULT_OFFICER_PATTERN = r"[0-9]{6}|[A-Z]{2,4}-[A-Z0-9]{1,12}"
DEFAULT_UNIT_PATTERN = r".{1,64}"  # any name the recorder takes (SPEC §10.5)
DEFAULT_BITRATE = 8_000_000        # bits/s: the firmware's default `bitrate` (SPEC §10.6)
DOC = "docs/station-config.md"


# --- units of the station's output (docs/station-config.md) ---------------------------
# MB is 10^6 bytes (never MiB) in everything dock, checkout, status and offload print;
# sizes and minutes are rounded down to what is shown (never more than there is).
MB = 1_000_000


def mb_down(n, places=1):
    """``n`` bytes in MB, rounded down to ``places`` decimals (a float, for JSON)."""
    q = 10 ** places
    return (n * q // MB) / q


def fmt_mb(n, places=1):
    """``n`` bytes as 'X.Y MB', rounded down, computed in integers (exact at any size)."""
    q = 10 ** places
    whole, frac = divmod(n * q // MB, q)
    return ("%d.%0*d MB" % (whole, places, frac)) if places else "%d MB" % whole


def minutes_down(free_bytes, bitrate_bps):
    """Whole minutes of recording ``free_bytes`` hold at ``bitrate_bps``, rounded down: the
    recorder's own formula (firmware/sealcamfw/selfcheck.py: free // (bitrate // 8) // 60)."""
    rate = bitrate_bps // 8
    return free_bytes // rate // 60 if free_bytes > 0 and rate > 0 else 0


def fmt_bitrate(bps):
    """8000000 -> '8 Mbit/s', 2500000 -> '2.5 Mbit/s'."""
    return ("%g Mbit/s" % (bps / 1e6)) if bps % 1000 == 0 else "%d bit/s" % bps


class StationConfigError(Exception):
    """One line: the file, what is wrong, what to do."""


def _pattern(v):
    if len(v) > PATTERN_MAX:
        return "is %d characters, more than %d" % (len(v), PATTERN_MAX)
    try:
        re.compile(v)
    except re.error as e:
        return "is not a valid regular expression (%s)" % e
    return None


def _bitrate(v):
    if not 100_000 <= v <= 1_000_000_000:
        return "must be 100000 to 1000000000 bits per second"
    return None


@dataclass(frozen=True)
class Key:
    type: type
    default: object
    check: object = None           # check(value) -> None, or why it is refused
    help: str = ""


DEFAULT_NUMBER_PATTERN = "{agency}-{date}-{party}-{step}-{serial}"
NUMBER_FIELDS = ("agency", "date", "party", "step", "serial")
# R12: kept permanently when the record concerns one of these (000 §8(3); 001 §19; 002 §15;
# 004 §21); the words are the catalogue's event types (host_tools/catalogue/tags.py)
DEFAULT_PERMANENT_TYPES = ["case_evidence", "obstruction", "mass_incident", "major_case",
                           "dispute", "complaint", "petition", "review", "lawsuit",
                           "public_interest", "personal_safety"]


def _number_pattern(v):
    import string
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
    except ValueError as e:
        return "is not a valid pattern (%s)" % e
    bad = sorted(set(names) - set(NUMBER_FIELDS))
    if bad:
        return "names unknown fields %s (known: %s)" % (", ".join(bad), ", ".join(
            "{%s}" % f for f in NUMBER_FIELDS))
    missing = [f for f in NUMBER_FIELDS if f not in names]
    if missing:
        return "lacks %s: an archive number holds the agency, the recording date, the party, " \
               "the enforcement step (R11) and a serial" % ", ".join("{%s}" % f for f in missing)
    if len(v) > 200:
        return "is longer than 200 characters"
    return None


def _agency_code(v):
    if not re.fullmatch(r"[A-Za-z0-9\u4e00-\u9fff]{1,32}", v):
        return "must be 1 to 32 letters, digits or Chinese characters"
    return None


def _months(v):
    return None if 6 <= v <= 1200 else "must be 6 to 1200 months (R12: at least 6)"


def _utc_offset(v):
    return None if -720 <= v <= 840 else "must be -720 to 840 minutes"


def _words(v):
    if len(v) > 64 or not all(isinstance(w, str) and re.fullmatch(r"[a-z_]{1,32}", w)
                              for w in v):
        return "must be a list of at most 64 words of a-z and _"
    return None


def _max_age(v):
    return None if 0 <= v <= 3660 else "must be 0 to 3660 days"


def _approval_rule(v):
    return None if v in ("head_and_unit_leader", "bureau_chief") else \
        "must be head_and_unit_leader (001 §21) or bureau_chief (002 §16)"


def _valid_days(v):
    return None if 1 <= v <= 90 else "must be 1 to 90 days (an approval lasts at most a " \
        "quarter; `sealcam access revoke` ends one sooner)"


def _db_url(v):
    if not re.match(r"(sqlite|postgresql(\+psycopg)?)://", v) or len(v) > 500:
        return "must be a sqlite:/// or postgresql:// URL (docs/station-config.md)"
    return None


def _key_file(v):
    if v and (not os.path.isabs(v) or len(v) > 4096 or "\0" in v):
        return "must be an absolute path (outside the archive folder)"
    return None


SECTIONS = {
    "officer": {
        "id_pattern": Key(str, DEFAULT_OFFICER_PATTERN, _pattern,
                          "the regular expression an officer id must match whole "
                          "(`sealcam checkout --officer`)"),
    },
    "unit": {
        "id_pattern": Key(str, DEFAULT_UNIT_PATTERN, _pattern,
                          "the regular expression a unit must match whole "
                          "(`sealcam checkout --unit`)"),
    },
    "recorder": {
        "bitrate_bps": Key(int, DEFAULT_BITRATE, _bitrate,
                           "the recorders' `bitrate` setting: `sealcam status` gives free "
                           "storage in minutes at this rate"),
    },
    "agency": {
        "code": Key(str, "AGENCY", _agency_code,
                    "the agency's code in archive numbers (R11), e.g. FZMC"),
        "name": Key(str, "", None, "the agency's name, printed on reports and labels"),
        "utc_offset_minutes": Key(int, 0, _utc_offset,
                                  "the agency's time zone as minutes east of UTC (480 in "
                                  "China): the {date} of an archive number is its local day"),
    },
    "archive_number": {
        "pattern": Key(str, DEFAULT_NUMBER_PATTERN, _number_pattern,
                       "how an archive number is made from {agency} {date} (YYYYMMDD) "
                       "{party} {step} {serial}"),
    },
    "retention": {
        "ordinary_months": Key(int, 24, _months,
                               "how long an ordinary recording is kept (R12: 24; one "
                               "agency's rule allows 6)"),
        "permanent_event_types": Key(list, DEFAULT_PERMANENT_TYPES, _words,
                                     "event types whose recordings are kept permanently"),
        "long_term_months": Key(int, 120, _months,
                                "how long a long-term recording is kept"),
        "long_term_event_types": Key(list, [], _words,
                                     "event types whose recordings are kept long-term"),
    },
    "confidentiality": {
        "key_file": Key(str, "", _key_file,
                        "the station's at-rest key (`sealcam classify key-new --out PATH`): "
                        "an absolute path outside the archive; empty: objects in clear"),
    },
    "catalogue": {
        "url": Key(str, "", _db_url,
                   "where the catalogue lives: empty for ARCHIVE/catalogue.sqlite, or a "
                   "postgresql:// URL"),
    },
    "access": {
        "approval": Key(str, "head_and_unit_leader", _approval_rule,
                        "who approves a view, copy, export or print (R15): the archive head "
                        "and the case unit's leader, or the bureau chief; other agencies' "
                        "requests also need the archive head"),
        "valid_days": Key(int, 7, _valid_days, "days an access request stays valid "
                          "(the most a request may ask for; 1 to 90)"),
    },
    "backup": {
        "max_age_days": Key(int, 31, _max_age,
                            "days after which the last backup is overdue in the report "
                            "(R14: monthly off site; `sealcam backup`)"),
    },
}


def _show(x):
    """A value for a message: strings quoted, readable (Chinese stays Chinese), control
    characters escaped so a file or an argument cannot drive the terminal."""
    from .records import printable
    return '"%s"' % printable(x, backslash=False) if isinstance(x, str) else printable(x)


@dataclass
class StationConfig:
    path: str                                      # ARCHIVE/station.toml (absolute)
    exists: bool = False
    values: dict = field(default_factory=dict)     # {section: {key: value}}, defaults filled

    def get(self, section, key):
        return self.values[section][key]

    def _refuse(self, what, section, value):
        pat = self.get(section, "id_pattern")
        if re.fullmatch(pat, value, re.DOTALL):
            return None
        return ("%s %s does not have the form this station takes: it must match %s ([%s] "
                "id_pattern %s); nothing was sent to the recorder: check the %s, or %s "
                "the pattern in %s (%s)"
                % (what, _show(value), _show(pat), section,
                   "of " + self.path if self.exists else "by default: there is no " + self.path,
                   what, "change" if self.exists else "set", self.path, DOC))

    def refuse_officer(self, officer):
        """None if ``officer`` has the configured form, else one line saying why not."""
        return self._refuse("officer id", "officer", officer)

    def refuse_unit(self, unit):
        return self._refuse("unit", "unit", unit)


def _defaults():
    return {s: {k: spec.default for k, spec in keys.items()} for s, keys in SECTIONS.items()}


def load(archive_dir) -> StationConfig:
    """ARCHIVE/station.toml, checked; the defaults if there is none. Raises
    StationConfigError (the file is named) on anything else than what SECTIONS declares."""
    path = os.path.join(os.path.abspath(archive_dir), FILE)
    cfg = StationConfig(path, False, _defaults())
    bad = "%s: %%s; fix the file (see %s) or remove it to use the defaults" % (path, DOC)
    try:
        raw = safeio.read_capped(str(archive_dir), FILE, MAX_BYTES, "station config")
    except FileNotFoundError:
        return cfg
    except NotADirectoryError:
        return cfg                 # no archive there: the verb says so itself
    except safeio.StoreFileError:
        raise StationConfigError(bad % ("is not a regular file of at most %d bytes (a "
                                        "symbolic link, a folder, a device or too large): "
                                        "the station reads only a regular file there"
                                        % MAX_BYTES)) from None
    except OSError as e:
        raise StationConfigError("%s cannot be read (%s)" % (path, e.strerror or e)) from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise StationConfigError(bad % ("not UTF-8 text (byte %d)" % e.start)) from None
    except tomllib.TOMLDecodeError as e:
        raise StationConfigError(bad % ("not valid TOML (%s)" % e)) from None
    cfg.exists = True
    for sname, section in doc.items():
        keys = SECTIONS.get(sname)
        if keys is None and not isinstance(section, dict):
            raise StationConfigError(bad % ("key %s is outside any section (known sections: "
                                            "%s)" % (_show(sname)[:80], ", ".join(
                                                "[%s]" % s for s in SECTIONS))))
        if keys is None:
            raise StationConfigError(bad % ("unknown section %s (known: %s)" % (
                _show(sname)[:80], ", ".join("[%s]" % s for s in SECTIONS))))
        if not isinstance(section, dict):
            raise StationConfigError(bad % ("%s must be a section [%s], not a value"
                                            % (_show(sname), sname)))
        for k, v in section.items():
            spec = keys.get(k)
            if spec is None:
                raise StationConfigError(bad % ("unknown key %s in [%s] (known: %s)" % (
                    _show(k)[:80], sname, ", ".join(keys))))
            if type(v) is not spec.type:
                raise StationConfigError(bad % ("[%s] %s must be %s, not %s" % (
                    sname, k, {str: "a string", int: "a whole number", list: "a list"}.get(
                        spec.type, spec.type.__name__), _show(v)[:80])))
            why = spec.check(v) if spec.check is not None else None
            if why is not None:
                raise StationConfigError(bad % ("[%s] %s = %s %s" % (sname, k, _show(v)[:80],
                                                                    why)))
            cfg.values[sname][k] = v
    return cfg
