"""Bounded renderings of user-supplied values for error messages.

Owns the rule that an error message never contains an unbounded value: a long string is cut with
an ellipsis and its length said, a collection is described by its size, never printed. Pure; used
by the models' validators, ``diagnosing.py`` and ``loading.py``.
"""

from __future__ import annotations

from typing import Any

LIMIT = 60


def clip(text: str, limit: int = LIMIT) -> str:
    """``text`` itself when short, else its first ``limit`` characters, an ellipsis and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def show(value: Any, limit: int = LIMIT) -> str:
    """A value as the user wrote it, bounded: strings quoted, booleans lowercase, collections by size."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value):,} characters)"
    if isinstance(value, dict):
        return f"a mapping of {len(value):,} key(s)"
    if isinstance(value, list | tuple):
        return f"a list of {len(value):,} item(s)"
    if isinstance(value, int) and value.bit_length() > 128:  # str() of a huge int is slow, or refused
        return f"a {value.bit_length():,}-bit integer"
    if isinstance(value, int | float) or value is None:
        return clip(str(value), limit)
    return f"a {type(value).__name__} value"
