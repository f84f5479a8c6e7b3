"""Translating pydantic's errors on a Rollout document into located, readable ``Problem`` s.

Owns mapping an error's ``loc`` back to the YAML node it is about (PyYAML marks, 1-based), the
camelCase field path (``spec.steps[2].setWeight``), readable messages without pydantic's noise, and
"did you mean" suggestions for unknown fields (aliases valid at that place in the model). A value,
key or message is never shown unbounded (``clipping.py``: cut with an ellipsis, length said). Pure: it
must not read files or parse YAML text (``loading.py`` does) and must not change what is valid.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rollout.errors import Problem
from rollout.policy.base import LocatedError
from rollout.policy.clipping import LIMIT, clip, show
from rollout.policy.models import Rollout

Loc = tuple[int | str, ...]
_MESSAGE_LIMIT = 400


def problem_at(file: str, where: yaml.Node | yaml.Mark | None, path: str, message: str) -> Problem:
    """A Problem at a node's or mark's start (line and column 0 when there is no source text)."""
    mark = where.start_mark if isinstance(where, yaml.Node) else where
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return Problem(file, line, column, path, message)


def diagnose(error: ValidationError, data: Any, node: yaml.Node | None, file: str) -> list[Problem]:
    """One Problem per pydantic error of validating ``data`` (composed from ``node``) as a Rollout."""
    return [_problem(e, data, node, file) for e in error.errors(include_url=False)]


def _problem(error: ErrorDetails, data: Any, node: yaml.Node | None, file: str) -> Problem:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):  # a whole-model rule that names its field
        loc: Loc = (*error["loc"], *cause.loc)
    else:
        loc = _pinpoint(tuple(error["loc"]), error["msg"], data)
    key_node, value_node, path_items = _resolve(node, data, loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        field_name = str(loc[-1])
        message = f"unknown field `{clip(field_name)}`{_suggest(field_name, loc[:-1])}"
        where: yaml.Node | None = key_node
    elif kind == "missing":
        message = f"missing required field `{clip(str(loc[-1]))}`"
        where = key_node or value_node
        path_items = (*path_items, loc[-1])
    else:
        message = _readable(error)
        is_collection = isinstance(value_node, yaml.MappingNode | yaml.SequenceNode)
        where = key_node if is_collection and key_node is not None else value_node
    return problem_at(file, where, render_path(path_items), message)


def _pinpoint(loc: Loc, message: str, data: Any) -> Loc:
    """Move whole-spec errors of ``RolloutSpec`` onto the field they are about."""
    if loc != ("spec",):
        return loc
    if "stable and canary must differ" in message:
        return ("spec", "canary")
    if "steps need at least one setWeight" in message:
        return ("spec", "steps")
    match = re.search(r"setWeight #(\d+)", message)
    steps = data.get("spec", {}).get("steps") if isinstance(data.get("spec"), dict) else None
    if match and isinstance(steps, list):
        with_weight = [i for i, s in enumerate(steps) if isinstance(s, dict) and s.get("setWeight") is not None]
        nth = int(match.group(1)) - 1
        if 0 <= nth < len(with_weight):
            return ("spec", "steps", with_weight[nth], "setWeight")
    return loc


def _resolve(node: yaml.Node | None, data: Any, loc: Loc) -> tuple[yaml.Node | None, yaml.Node | None, Loc]:
    """Follow ``loc`` through the data (and nodes): the deepest key node, value node and real path.

    Items that are not keys of the data (pydantic's union tags) are skipped unless last.
    """
    key_node: yaml.Node | None = None
    value_node = node
    path: list[int | str] = []
    for i, item in enumerate(loc):
        if isinstance(data, dict) and _has_key(data, item):
            data = _get(data, item)
            key_node, value_node = _child(value_node, item)
        elif isinstance(data, list) and isinstance(item, int) and 0 <= item < len(data):
            data = data[item]
            key_node, value_node = None, _child(value_node, item)[1]
        elif i == len(loc) - 1 or isinstance(item, int):
            break
        else:
            continue
        path.append(item)
    return key_node, value_node, tuple(path)


def _has_key(data: dict[Any, Any], item: int | str) -> bool:
    return item in data or any(str(k) == str(item) for k in data)


def _get(data: dict[Any, Any], item: int | str) -> Any:
    return data[item] if item in data else next(v for k, v in data.items() if str(k) == str(item))


def _child(node: yaml.Node | None, item: int | str) -> tuple[yaml.Node | None, yaml.Node | None]:
    if isinstance(node, yaml.MappingNode):
        for key, value in reversed(node.value):  # the last duplicate wins, as in the data
            if isinstance(key, yaml.ScalarNode) and key.value == str(item):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
        return None, node.value[item]
    return None, None


def locate(node: yaml.Node | None, loc: Loc) -> tuple[yaml.Node | None, yaml.Node | None]:
    key_node: yaml.Node | None = None
    for item in loc:
        key_node, node = _child(node, item)
    return key_node, node


def render_path(items: Iterable[int | str]) -> str:
    text = ""
    for item in items:
        if isinstance(item, int):
            text += f"[{item}]"
        elif len(item) <= LIMIT and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", item):
            text += f".{item}" if text else item
        else:
            text += f"[{show(item)}]"
    return text


# --- messages ---------------------------------------------------------------------------------


def _readable(error: ErrorDetails) -> str:
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    pattern = (error.get("ctx") or {}).get("pattern", "")
    if error["type"] == "string_pattern_mismatch" and str(pattern).startswith("^[a-z0-9]([-a-z0-9]*"):
        message = (
            "must be a lowercase Kubernetes name: letters a-z, digits, '-'"
            + (" and '.'" if "\\." in str(pattern) else "")
            + ", starting and ending with a letter or digit"
        )
    value = error.get("input")
    shown = show(value)
    scalar = isinstance(value, str | int | float | bool)
    if scalar and not (isinstance(value, str) and shown in message):
        message += f" (got {shown})"
    return clip(message, _MESSAGE_LIMIT)


def _suggest(unknown: str, parent: Loc) -> str:
    model = _model_at(parent)
    if model is None or len(unknown) > LIMIT:
        return ""
    aliases = sorted(f.alias or n for n, f in model.model_fields.items())
    lowered = {a.lower().replace("_", ""): a for a in aliases}
    close = lowered.get(unknown.lower().replace("_", "").replace("-", ""))
    matches = [close] if close else difflib.get_close_matches(unknown, aliases, n=1, cutoff=0.6)
    if matches:
        return f"; did you mean `{matches[0]}`?"
    return f"; valid fields here: {', '.join(aliases)}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """Walk the Rollout model along a pydantic ``loc``; the model class found there, if any."""
    current: Any = Rollout
    for item in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            info = fields.get(str(item)) or current.model_fields.get(str(item))
            if info is not None:
                current = info.annotation
            # else: a union tag inside the loc; stay on this model
        elif typing.get_origin(current) in (list, tuple, set, frozenset):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = (models or members)[0]
        else:
            return annotation
