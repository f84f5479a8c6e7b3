"""Parsing of the small quantity languages policies use: durations (``30s``, ``1h30m``, ``250ms``:
Go durations with the units ms, s, m, h, so the CRD's CEL ``duration()`` reads them the same way)
and ratios (``1%``, ``0.01``). Both are text exactly as the CRD's patterns describe (no surrounding
spaces; a bare number is not a duration). Pure functions and pydantic annotated types; no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from rollout.policy.clipping import show

# A Go duration (what CEL's duration() reads in the CRD) without sign and without ns/us units.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DURATION_MAX_LENGTH = 32
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# A ratio written as text: a percentage, or a plain decimal fraction (no sign, exponent or spaces).
RATIO_PATTERN = r"^[0-9]+(\.[0-9]+)?%?$"
_RATIO_RE = re.compile(RATIO_PATTERN)


def parse_duration(value: Any) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h30m``, ``250ms`` (a Go duration with ms, s, m, h) into a timedelta.

    Only text with a unit is a duration: a bare number is refused (the CRD refuses it too)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is text with a unit, like 30s, 5m or 1h30m, not a boolean")
    if isinstance(value, int | float):
        raise ValueError(f"a duration needs a unit: {show(value)} is a bare number; write e.g. 30s, 5m or 1h30m")
    if not isinstance(value, str):
        raise ValueError(f"a duration is text with a unit, like 30s, 5m or 1h30m, not {type(value).__name__}")
    if len(value) > DURATION_MAX_LENGTH or not _DURATION_RE.match(value):
        raise ValueError(
            f"{show(value)} is not a duration; use a number with a unit: 250ms, 30s, 5m, 1h30m (units ms, s, m, h)"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(value))
    return _seconds(seconds, value)


def _seconds(seconds: float, original: Any) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{show(original)} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """Render a timedelta in the shortest exact form of the policy language (``90s`` -> ``1m30s``)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_ratio(value: Any) -> float:
    """Parse ``1%``, ``0.5%`` or a fraction such as ``0.01`` into a fraction in [0, 1]."""
    if isinstance(value, bool):
        raise ValueError("a ratio must be like 1% or 0.01, not a boolean")
    if isinstance(value, str):
        if len(value) > 32 or not _RATIO_RE.match(value):
            raise ValueError(f"{show(value)} is not a ratio; use a percentage (1%) or a fraction (0.01)")
        number = float(value[:-1]) / 100.0 if value.endswith("%") else float(value)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError(f"a ratio must be like 1% or 0.01, not {type(value).__name__}")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{show(value)} is outside 0%..100%")
    return number


def format_ratio(value: float) -> str:
    """Render a fraction as a percentage with up to four significant decimals."""
    return f"{value * 100:.4g}%"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": DURATION_MAX_LENGTH,
            "examples": ["30s", "5m", "1h"],
        }
    ),
]

Ratio = Annotated[
    float,
    BeforeValidator(parse_ratio),
    PlainSerializer(format_ratio, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": RATIO_PATTERN, "maxLength": 32},
                {"type": "number", "minimum": 0, "maximum": 1},
            ],
            "examples": ["1%", 0.01],
        }
    ),
]
