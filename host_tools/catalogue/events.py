"""The clerk events of the station log (SPEC §14): what clerks, archive heads, leaders and
technicians do to the archive's catalogue, each one signed entry naming its user ("by").

Every clerk module (users, tags, numbers, cases, documents, retention, confidentiality,
access, copies, handover; the disc and backup record theirs too) states its events
here by name and registers, in host_tools.catalogue.store, how an event is checked before it
is appended and how it is applied to the catalogue's tables. The station log's replay
(host_tools.tlog.replay) knows these types as the catalogue's and leaves them to it.

A clerk event is a map with at least "type", "at" (UTC ISO time) and "by" (a user name);
entries read back from a log are hostile like any other input: `field` checks each one.
"""
from __future__ import annotations

__all__ = ["CLERK_TYPES", "CatalogueEventError", "field", "base", "bad_char"]

CLERK_TYPES = frozenset((
    "user_added", "user_changed", "user_password",            # users.py
    "tag",                                                      # tags.py
    "number_assigned",                                          # numbers.py
    "case_opened", "case_closed", "case_archived",              # cases.py
    "case_linked", "case_unlinked",
    "document_added",                                           # documents.py
    "hold_placed", "hold_released",                             # retention.py
    "disposal_requested", "disposal_refused",
    "classified",                                               # confidentiality.py
    "access_requested", "access_approved", "access_refused",    # access.py
    "access_used", "access_revoked",
    "copy_made",                                                # copies.py
    "disc_made",                                                # host_tools/disc
    "backup_made",                                              # host_tools/backup
    "handover_offered", "handover_accepted",                    # handover.py
    "handover_withdrawn",
))

TEXT_MAX = 2000          # characters of a free text (a note, a reason)
NAME_MAX = 128           # characters of a name, number or id


class CatalogueEventError(ValueError):
    """A clerk event that is not what SPEC §14 says (one line)."""


def field(e: dict, key: str, kind, *, optional=False, max_len=NAME_MAX):
    """``e[key]`` checked: of type ``kind`` (str, int, bytes, list, dict, bool), strings
    and bytes at most ``max_len`` long, no control characters in strings; None allowed when
    ``optional``. Raises CatalogueEventError naming the event type and the key."""
    v = e.get(key)
    if v is None:
        if optional:
            return None
        raise CatalogueEventError("%s event without %r" % (e.get("type"), key))
    if kind is int and (type(v) is not int):
        raise CatalogueEventError("%s event: %r must be a whole number" % (e.get("type"), key))
    if kind is not int and not isinstance(v, kind):
        raise CatalogueEventError("%s event: %r must be %s" % (e.get("type"), key,
                                                               kind.__name__))
    if isinstance(v, (str, bytes, list)) and len(v) > max_len:
        raise CatalogueEventError("%s event: %r is longer than %d" % (e.get("type"), key,
                                                                      max_len))
    if isinstance(v, str) and bad_char(v, "\n\t") is not None:
        raise CatalogueEventError("%s event: %r holds a control character or a bidirectional one "
                                  "(U+%04X)" % (e.get("type"), key, ord(bad_char(v, "\n\t"))))
    return v


# bidirectional marks, embeddings, overrides and isolates, line and paragraph separators:
# text that shows in another order than it is stored (SPEC §14.1)
_BIDI = frozenset("\u061c\u200e\u200f\u2028\u2029"
                  + "".join(map(chr, range(0x202A, 0x202F)))
                  + "".join(map(chr, range(0x2066, 0x206A))))


def bad_char(s: str, allow: str = ""):
    """The first character of ``s`` no clerk text may hold (C0 controls except those in
    ``allow``, DEL, C1 controls, bidirectional controls), or None."""
    for c in s:
        o = ord(c)
        if (o < 32 and c not in allow) or 127 <= o < 160 or c in _BIDI:
            return c
    return None


def base(type_: str, at: str, by: str, **fields) -> dict:
    """A clerk event: type, at, by and ``fields`` (None values are left out)."""
    e = {"type": type_, "at": at, "by": by}
    e.update((k, v) for k, v in fields.items() if v is not None)
    return e
