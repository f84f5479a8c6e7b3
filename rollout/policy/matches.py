"""The ``match`` step of a Rollout policy: which requests an A/B step sends to the canary.

Owns the header and query-parameter match models, the ``match`` step itself, and which match kinds
each router can express (``unsupported``), so that ``rollout validate`` says where a policy asks
for something its route cannot do. Pure: no I/O; it knows routers only by their policy models.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field, model_validator

from rollout.policy.base import Model

# An HTTP header name is an RFC 7230 token (Gateway API uses the same pattern for both lists).
_TOKEN = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
MatchValue = Annotated[str, Field(min_length=1, max_length=255)]
Loc = tuple[int | str, ...]

APP_MESH_MAX_HEADER_NAME = 50  # App Mesh: header and metadata names are 1-50 characters
APP_MESH_MAX_ENTRIES = 10  # App Mesh: at most 10 headers and 10 query parameters per match
GATEWAY_API_MAX_ENTRIES = 16  # Gateway API: at most 16 headers and 16 query parameters per match


def _check_regex(value: str | None) -> None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"regex {value!r} is not a valid regular expression: {e}") from e


class HeaderMatch(Model):
    """One request header the canary's requests must carry: exactly one of exact, prefix, regex, present."""

    name: str = Field(min_length=1, max_length=256, pattern=_TOKEN, description="the header's name")
    exact: MatchValue | None = Field(default=None, description="the value, exactly")
    prefix: MatchValue | None = Field(default=None, description="the value starts with this")
    regex: MatchValue | None = Field(default=None, description="the whole value matches this regular expression")
    present: Literal[True] | None = Field(default=None, description="`true`: the header is there, whatever its value")

    @model_validator(mode="after")
    def _exactly_one(self) -> HeaderMatch:
        chosen = [k for k in ("exact", "prefix", "regex", "present") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"header {self.name!r} needs exactly one of exact, prefix, regex, present"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        _check_regex(self.regex)
        return self

    @property
    def kind(self) -> Literal["exact", "prefix", "regex", "present"]:
        for kind in ("exact", "prefix", "regex"):
            if getattr(self, kind) is not None:
                return kind
        return "present"

    @property
    def value(self) -> str:
        return self.exact or self.prefix or self.regex or ""


class QueryParamMatch(Model):
    """One query parameter the canary's requests must carry: exactly one of exact, regex."""

    name: str = Field(min_length=1, max_length=256, pattern=_TOKEN, description="the parameter's name")
    exact: MatchValue | None = Field(default=None, description="the value, exactly")
    regex: MatchValue | None = Field(default=None, description="the whole value matches this regular expression")

    @model_validator(mode="after")
    def _exactly_one(self) -> QueryParamMatch:
        chosen = [k for k in ("exact", "regex") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"query parameter {self.name!r} needs exactly one of exact, regex"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        _check_regex(self.regex)
        return self

    @property
    def kind(self) -> Literal["exact", "regex"]:
        return "exact" if self.exact is not None else "regex"

    @property
    def value(self) -> str:
        return self.exact or self.regex or ""


class MatchStep(Model):
    """Send the requests that match to the canary (an A/B step), judged like any step.

    The match stays in place through the pause and approval steps that follow; the next
    ``setWeight`` step (or the end of the run: promotion, rollback, abort) removes it first.
    """

    headers: list[HeaderMatch] = Field(
        default_factory=list, max_length=GATEWAY_API_MAX_ENTRIES, description="every one must match (AND)"
    )
    query_params: list[QueryParamMatch] = Field(
        default_factory=list,
        max_length=GATEWAY_API_MAX_ENTRIES,
        description="every one must match too (HTTPRoute, and App Mesh HTTP routes with exact values)",
    )
    weight: Annotated[int, Field(ge=0, le=99)] | None = Field(
        default=None,
        description="canary share (percent) of the requests that do not match, while the match is in "
        "place; default: the weight the plan has reached (0 before any setWeight)",
    )
    expected_share: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None,
        description="your estimate of the share (percent) of requests that match; "
        "`rollout plan --rps` and `rollout simulate` use it, the daemon does not",
    )

    @model_validator(mode="after")
    def _something(self) -> MatchStep:
        if not self.headers and not self.query_params:
            raise ValueError("a match needs at least one entry in headers or queryParams")
        return self


def unsupported(router: str, route_type: str, match: MatchStep) -> Iterator[tuple[Loc, str]]:
    """What ``match`` asks that ``router`` (``gatewayRoute``/``virtualRouter``/``httpRoute``) cannot
    express, as (location inside the match step, message) pairs. ``route_type`` is the
    GatewayRoute's ``routeType`` (other routers: empty; a VirtualRouter's protocol is only known
    from the cluster, and the daemon reports a route that cannot match headers, such as tcpRoute)."""
    if router == "httpRoute":
        for i, header in enumerate(match.headers):
            if header.kind in ("prefix", "present"):
                hint = f"regex: '^{re.escape(header.prefix)}.*'" if header.prefix else "regex: '.*'"
                yield (
                    ("headers", i, header.kind),
                    f"an HTTPRoute header match is Exact or RegularExpression only; write {hint} instead",
                )
        return
    mesh = "App Mesh GatewayRoute" if router == "gatewayRoute" else "App Mesh VirtualRouter"
    for what, entries in (("headers", match.headers), ("queryParams", match.query_params)):
        if len(entries) > APP_MESH_MAX_ENTRIES:
            yield (what,), f"an {mesh} match takes at most {APP_MESH_MAX_ENTRIES} {what} (got {len(entries)})"
    for i, header in enumerate(match.headers):
        if len(header.name) > APP_MESH_MAX_HEADER_NAME:
            yield ("headers", i, "name"), f"{mesh} header names are at most {APP_MESH_MAX_HEADER_NAME} characters"
    if router == "gatewayRoute" and route_type == "grpcRoute" and match.query_params:
        yield ("queryParams",), "a grpcRoute has no query parameters (headers match gRPC metadata)"
        return
    for i, param in enumerate(match.query_params):
        if param.regex is not None:
            yield ("queryParams", i, "regex"), f"an {mesh} query parameter match is exact only"


__all__ = ["HeaderMatch", "MatchStep", "QueryParamMatch", "unsupported"]
