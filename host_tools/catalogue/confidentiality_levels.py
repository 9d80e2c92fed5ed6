"""The confidentiality levels (R16; SPEC §14.8), lowest first. A user sees a record whose
level is at most its clearance; a user without a clearance sees "internal" and below;
a recording or case nobody classified is "internal"."""
from __future__ import annotations

__all__ = ["LEVELS", "DEFAULT_LEVEL", "DEFAULT_CLEARANCE", "rank", "may_see"]

LEVELS = ("public", "internal", "restricted", "confidential")
DEFAULT_LEVEL = "internal"          # of a record nobody classified
DEFAULT_CLEARANCE = "internal"      # of a user added without one


def rank(level) -> int:
    """0 for public ... 3 for confidential; an unknown level ranks highest (hidden)."""
    try:
        return LEVELS.index(level)
    except ValueError:
        return len(LEVELS)


def may_see(clearance, level) -> bool:
    return rank(level or DEFAULT_LEVEL) <= rank(clearance or DEFAULT_CLEARANCE)
