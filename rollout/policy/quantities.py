"""Parsing of the small quantity languages policies use: durations (``30s``, ``1h30m``, ``250ms``)
and ratios (``1%``, ``0.01``). Pure functions and pydantic annotated types; no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h30m``, ``250ms`` or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 5m or 1h, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _seconds(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"a duration must be like 30s, 5m or 1h, not {type(value).__name__}")
    text = value.strip()
    if not _DURATION_RE.match(text):
        raise ValueError(f"{value!r} is not a duration; use a number with a unit: 30s, 5m, 1h, 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text))
    return _seconds(seconds, value)


def _seconds(seconds: float, original: Any) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{original!r} is too long a duration") from None


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
        text = value.strip()
        try:
            number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a ratio; use a percentage (1%) or a fraction (0.01)") from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError(f"a ratio must be like 1% or 0.01, not {type(value).__name__}")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{value!r} is outside 0%..100%")
    return number


def format_ratio(value: float) -> str:
    """Render a fraction as a percentage with up to four significant decimals."""
    return f"{value * 100:.4g}%"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$", "examples": ["30s", "5m", "1h"]}
    ),
]

Ratio = Annotated[
    float,
    BeforeValidator(parse_ratio),
    PlainSerializer(format_ratio, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?%$"},
                {"type": "number", "minimum": 0, "maximum": 1},
            ],
            "examples": ["1%", 0.01],
        }
    ),
]
