"""The policy reference table of the README, generated from the models so it cannot drift.

Owns only rendering: one markdown row per field (YAML path, type, default, description).
``python -m rollout.policy.reference`` prints it; a test checks the README carries it verbatim.
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rollout.policy.models import RolloutSpec
from rollout.policy.quantities import format_duration, format_ratio, parse_ratio


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "map of string"
    if origin is typing.Literal:
        return " | ".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(str(m.value) for m in annotation)
    if annotation is timedelta:
        return "duration"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo, path: str) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "-"
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, float) and path.endswith("errorRate.max"):
        return f"`{format_ratio(value)}`"
    if value in ([], {}):
        return "empty"
    return f"`{value}`"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models(arg))
    return found


def rows(model: type[BaseModel] = RolloutSpec, prefix: str = "spec") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        path = f"{prefix}.{alias}"
        annotation = field.annotation
        ratio = any(getattr(m, "func", None) is parse_ratio for m in field.metadata)
        kind = "ratio" if ratio else _type_name(annotation)
        is_list = typing.get_origin(annotation) is list
        nested = _models(annotation)
        text = field.description or (nested[0].__doc__ or "").strip().split("\n")[0] if nested else field.description
        text = text or ""
        out.append(f"| `{path}` | {kind} | {_default(field, path)} | {text.replace('|', '/')} |")
        for sub in nested:
            out.extend(rows(sub, f"{path}[]" if is_list else path))
    return out


def table() -> str:
    header = ["| field | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(header + rows())


def write(path: Path) -> None:
    """Replace the table between README's policy-reference markers with the generated one."""
    text = path.read_text()
    start = text.index("<!-- policy-reference:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- policy-reference:end -->")
    path.write_text(text[:start] + table() + "\n" + text[end:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write(Path(sys.argv[2]))
    else:
        print(table())
