"""The request match of an A/B step, as the engine, the status and the routers see it.

Owns ``RouteMatch`` (the headers and query parameters that send a request to the canary while an
A/B step's managed route or rule is in place) and its translation from the policy's ``match``
step. Routers render a ``RouteMatch`` in their own route language and read it back into one; a
managed route carrying anything rollout never writes (another target, an inverted header...) is
read back with ``extra`` saying what, so it never equals what rollout wants (that is drift).
Frozen, persisted in the Rollout status (``states.RolloutState``). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from pydantic import ConfigDict

from rollout.core.serialized import CAMEL_CASE
from rollout.policy.models import MatchStep


class MatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"
    PRESENT = "present"


@dataclass(frozen=True)
class MatchRule:
    """One header (or query parameter) condition: ``name`` matched by ``kind`` against ``value``."""

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    name: str
    kind: MatchKind
    value: str = ""

    def __str__(self) -> str:
        if self.kind is MatchKind.PRESENT:
            return f"{self.name} present"
        if self.kind is MatchKind.EXACT:
            return f"{self.name}={self.value}"
        return f"{self.name} {self.kind.value} {self.value!r}"


@dataclass(frozen=True)
class RouteMatch:
    """What a request must carry to reach the canary during an A/B step (every rule must hold).

    ``extra`` is empty for every match rollout writes; a router reading back a managed route that
    also carries something else (a different target, a header condition rollout cannot write)
    says so there, in words.
    """

    __pydantic_config__: ClassVar[ConfigDict] = CAMEL_CASE

    headers: tuple[MatchRule, ...] = ()
    query: tuple[MatchRule, ...] = ()
    extra: str = ""

    def __str__(self) -> str:
        parts = [str(h) for h in self.headers] + [f"?{q}" for q in self.query]
        text = ", ".join(parts) or "nothing"
        return f"{text} ({self.extra})" if self.extra else text


def route_match(step: MatchStep) -> RouteMatch:
    """The engine's match for a policy's ``match`` step."""
    return RouteMatch(
        headers=tuple(MatchRule(h.name, MatchKind(h.kind), h.value) for h in step.headers),
        query=tuple(MatchRule(q.name, MatchKind(q.kind), q.value) for q in step.query_params),
    )


def shown(match: RouteMatch | None) -> str:
    """A managed route as people read it: its match, or "no managed route"."""
    return f"the managed route ({match})" if match is not None else "no managed route"


__all__ = ["MatchKind", "MatchRule", "RouteMatch", "route_match", "shown"]
