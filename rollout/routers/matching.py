"""An A/B step's match in each route language, and the match of a managed route that copies a user's.

Owns the translation of a ``RouteMatch`` to App Mesh (``headers``/gRPC ``metadata`` with
``match: {exact|prefix|regex}``, no ``match`` meaning present; ``queryParameters`` with
``match: {exact}``) and to Gateway API (``headers``/``queryParams`` with ``type: Exact`` or
``RegularExpression``), the merge of rollout's conditions in front of the ones the user's route
already has, and the reverse: reading a managed route's conditions back, minus the user's. Pure:
no I/O; it never decides which route is managed (the routers do).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.errors import RouteSchemaError

Entry = dict[str, Any]
_GATEWAY_TYPES = {MatchKind.EXACT: "Exact", MatchKind.REGEX: "RegularExpression"}


def appmesh_condition(rule: MatchRule) -> Entry:
    """One App Mesh header (or gRPC metadata) condition; ``present`` has no ``match``."""
    if rule.kind is MatchKind.PRESENT:
        return {"name": rule.name}
    return {"name": rule.name, "match": {rule.kind.value: rule.value}}


def appmesh_query(rule: MatchRule, where: str) -> Entry:
    if rule.kind is not MatchKind.EXACT:
        raise RouteSchemaError(f"{where}: App Mesh matches query parameters by exact value only ({rule})")
    return {"name": rule.name, "match": {"exact": rule.value}}


def gateway_condition(rule: MatchRule, where: str) -> Entry:
    """One Gateway API header or query parameter condition (Exact or RegularExpression)."""
    kind = _GATEWAY_TYPES.get(rule.kind)
    if kind is None:
        raise RouteSchemaError(f"{where}: Gateway API matches only Exact or RegularExpression values ({rule})")
    return {"type": kind, "name": rule.name, "value": rule.value}


def _appmesh_rule(entry: Any) -> MatchRule | None:
    if not isinstance(entry, dict) or set(entry) - {"name", "match"} or not isinstance(entry.get("name"), str):
        return None
    match = entry.get("match")
    if match is None:
        return MatchRule(entry["name"], MatchKind.PRESENT)
    if isinstance(match, dict) and len(match) == 1:
        (kind, value), *_ = match.items()
        if kind in ("exact", "prefix", "regex") and isinstance(value, str):
            return MatchRule(entry["name"], MatchKind(kind), value)
    return None


def _gateway_rule(entry: Any) -> MatchRule | None:
    if not isinstance(entry, dict) or set(entry) - {"name", "value", "type"}:
        return None
    kind = {"Exact": MatchKind.EXACT, "RegularExpression": MatchKind.REGEX}.get(entry.get("type", "Exact"))
    name, value = entry.get("name"), entry.get("value")
    if kind is None or not isinstance(name, str) or not isinstance(value, str):
        return None
    return MatchRule(name, kind, value)


def _ours(managed: Sequence[Any], users: Sequence[Any]) -> list[Any]:
    """The conditions rollout put in front of the user's (the whole list when the tail differs)."""
    managed, users = list(managed), list(users)
    if users and managed[-len(users) :] == users:
        return managed[: len(managed) - len(users)]
    return managed


def read_conditions(
    managed: Sequence[Any], users: Sequence[Any], *, gateway: bool, query: bool = False
) -> tuple[tuple[MatchRule, ...], str]:
    """Rollout's conditions in a managed route's list (the user's ones follow them), and what in
    them rollout never writes (empty: nothing)."""
    rules: list[MatchRule] = []
    foreign: list[str] = []
    for entry in _ours(managed, users):
        rule = _gateway_rule(entry) if gateway else _appmesh_rule(entry)
        if rule is None or (query and not gateway and rule.kind is not MatchKind.EXACT):
            foreign.append(json.dumps(entry, sort_keys=True))
        else:
            rules.append(rule)
    return tuple(rules), "; ".join(foreign)


def with_conditions(user: Sequence[Any] | None, ours: Sequence[Entry]) -> list[Any]:
    """Rollout's conditions first, then the user's (a request must satisfy all of them)."""
    return [*ours, *(user or [])]


def foreign(match: RouteMatch, *extras: str) -> RouteMatch:
    """``match`` marked as carrying what rollout never writes (empty extras: unchanged)."""
    said = "; ".join(e for e in (match.extra, *extras) if e)
    return RouteMatch(match.headers, match.query, said)


__all__ = [
    "appmesh_condition",
    "appmesh_query",
    "foreign",
    "gateway_condition",
    "read_conditions",
    "with_conditions",
]
