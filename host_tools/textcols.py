"""Text tables for terminals where Chinese takes two columns a character.

    width("李娜")                 # 4
    table(["user", "role"], [["li.na", "archive_head"]])   # lines, columns aligned
"""
from __future__ import annotations

import unicodedata

__all__ = ["width", "pad", "table"]


def width(s: str) -> int:
    """Columns ``s`` takes on a terminal: a wide (CJK) character takes two, a combining
    mark none."""
    if s.isascii():
        return len(s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else
               0 if unicodedata.combining(c) else 1 for c in s)


def pad(s: str, w: int) -> str:
    return s + " " * max(0, w - width(s))


def table(headers, rows, indent="", sep="  ") -> list:
    """The lines of a table: ``headers`` and ``rows`` are lists of strings (already
    translated and made printable); trailing spaces trimmed."""
    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    return [(indent + sep.join(pad(c, w) for c, w in zip(r, widths))).rstrip()
            for r in [list(headers)] + [list(r) for r in rows]]
