"""Messages in the user's language (stub until the Babel catalogs land): ``_(text)``."""
from __future__ import annotations

__all__ = ["_"]


def _(text: str) -> str:
    return text
