"""The Rollout CRD's ``x-kubernetes-validations``: the policy model's cross-field rules, in CEL.

Owns one CEL rule per rule of ``rollout.policy`` that OpenAPI alone cannot say (exactly one router,
exactly one kind per step, weights never decreasing, stable != canary, positive durations, bounded
custom metrics, unique metric names, the sequential judge's tolerance below its regression, metrics
addresses, an A/B step's match entries and what each router can express), so that ``rollout
validate`` and the API server refuse the same documents
(``tests/policy/test_agreement.py`` runs one corpus through both). Defaults are pydantic's, so a rule
on an optional field states the default itself. Every list and string a rule reads is bounded in the
schema (``maxItems``/``maxLength``), which keeps the API server's cost estimate within its budget.
The rules the API server cannot check are a ratio's range (``errorRate.max`` is text or a number,
so its node is untyped and CEL cannot see it) and whether a match's regex compiles: the daemon
refuses such a Rollout when it reads it.
It must not talk to the API server.
"""

from __future__ import annotations

import re
from typing import Any

from rollout.policy.addresses import LINK_LOCAL, METADATA_ADDRESSES, METADATA_HOSTS, NUMERIC_HOST
from rollout.policy.analysis import TEMPLATE_PATTERN, SequentialOptions

_V4_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_V4 = rf"^{_V4_OCTET}(\.{_V4_OCTET}){{3}}$"


def _not_nullable(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("nullable", None)
        for value in node.values():
            _not_nullable(value)
    elif isinstance(node, list):
        for value in node:
            _not_nullable(value)


def cel_string(text: str) -> str:
    """``text`` as a single-quoted CEL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rule(rule: str, message: str, field: str = "", reason: str = "FieldValueInvalid") -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field:
        out["fieldPath"] = field
    if reason != "FieldValueInvalid":
        out["reason"] = reason
    return out


def _positive(field: str, what: str) -> dict[str, Any]:
    return _rule(
        f"!has(self.{field}) || duration(self.{field}) > duration('0s')", f"{what} must be longer than 0s", f".{field}"
    )


def _cel_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


def _matches(pattern: str) -> str:
    return f"self.matches({cel_string(pattern)})"


def _address_rules() -> list[dict[str, Any]]:
    """``rollout.policy.addresses.forbidden_address`` in CEL: regexes on the URL itself (``url()``'s
    results have no length bound, which the API server's cost estimate refuses), and ``ip()`` /
    ``cidr()`` for bracketed IPv6 hosts. One rule per clause."""
    head, tail = "^[a-zA-Z]+://", "([:/?#].*)?$"
    numeric = NUMERIC_HOST.removeprefix("^").removesuffix("$")
    canonical = _CANONICAL_V4.removeprefix("^").removesuffix("$")
    names = "|".join(re.escape(m) for m in METADATA_HOSTS)
    v4 = "|".join(
        [r"169\.254\.[0-9]+\.[0-9]+", r"0\.0\.0\.0", *(re.escape(a) for a in METADATA_ADDRESSES if ":" not in a)]
    )
    bracket = r"\[[^\]]*\]"
    found = f"self.find({cel_string(bracket)})"
    v6 = f"{found}.substring(1, {found}.size() - 1)"
    nets = [net for net in LINK_LOCAL if ":" in net] + [f"{a}/128" for a in METADATA_ADDRESSES if ":" in a]
    return [
        _rule(_matches(head + "[^/?#:@]"), "must name a host"),
        _rule("!" + _matches(head + "[^/?#]*@"), "must not carry a user or password (credentials belong in settings)"),
        _rule("!" + _matches(f"{head}(?i:{names})" + r"\.?" + tail), "is a cloud metadata service"),
        _rule(
            "!" + _matches(head + numeric + tail) + " || " + _matches(head + canonical + tail),
            "a numeric host must be written as four decimal numbers",
        ),
        _rule("!" + _matches(f"{head}({v4}){tail}"), "must not be a link-local, metadata or unspecified address"),
        _rule(
            "!"
            + _matches(head + bracket)
            + f" || (isIP({v6}) && !("
            + " || ".join(f"cidr('{net}').containsIP({v6})" for net in nets)
            + f" || ip({v6}).isUnspecified()))",
            "an IPv6 host must be a plain IPv6 address, not link-local, metadata, unspecified or IPv4-mapped",
        ),
    ]


def add_rules(spec: dict[str, Any]) -> None:
    """Attach the CEL rules to the structural spec schema, in place.

    Fields are not nullable (an explicit null is pruned by the API server, as pydantic reads it: not
    set), except a step's ``pause`` and ``approval``, where ``- pause:`` means a pause without options.
    """
    _not_nullable(spec)
    for kind in ("pause", "approval"):
        spec["properties"]["steps"]["items"]["properties"][kind]["nullable"] = True

    def at(*path: str) -> dict[str, Any]:
        node = spec
        for key in path:
            node = node["items"] if key == "[]" else node["properties"][key]
        return node

    def add(node: dict[str, Any], *rules: dict[str, Any]) -> None:
        node.setdefault("x-kubernetes-validations", []).extend(rules)

    weights = "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight)"
    add(
        spec,
        _rule("self.stable != self.canary", "stable and canary must differ", ".canary"),
        _rule(f"{weights}.size() > 0", "steps need at least one setWeight", ".steps"),
        _rule(f"{weights}.isSorted()", "setWeight must never decrease", ".steps"),
        _positive("progressDeadline", "progressDeadline"),
    )
    routers = ("gatewayRoute", "virtualRouter", "httpRoute")
    add(
        at("router"),
        _rule(
            "[" + ", ".join(f"has(self.{r})" for r in routers) + "].filter(x, x).size() == 1",
            "set exactly one of gatewayRoute, virtualRouter, httpRoute",
        ),
    )
    add(
        at("router", "httpRoute"),
        _rule(
            "!(has(self.rule) && has(self.ruleName))",
            "set at most one of rule and ruleName",
        ),
    )
    # Exactly one kind per step: exactly one key. CEL cannot see `- pause:` (a null, which pydantic reads
    # as a pause without options), but the property count does; a null setWeight is pruned, as not set.
    step = at("steps", "[]")
    step["minProperties"] = step["maxProperties"] = 1
    _match_rules(spec, at("steps", "[]", "match"), add)
    add(at("approvals"), _positive("timeout", "an approval timeout"))
    analysis = at("analysis")
    add(
        analysis,
        _rule(
            "!has(self.interval) || duration(self.interval) >= duration('1s')",
            "interval must be at least 1s",
            ".interval",
        ),
        _rule(
            "!has(self.metrics) || self.metrics.all(m, self.metrics.filter(n, n.name == m.name).size() == 1)",
            "metric names must be unique",
            ".metrics",
        ),
    )
    add(at("analysis", "slos", "latency"), _positive("max", "latency max"))
    add(
        at("analysis", "metrics", "[]"),
        _rule("has(self.min) || has(self.max)", "set min, max or both"),
        _rule("!(has(self.min) && has(self.max)) || self.min <= self.max", "min is greater than max"),
    )
    fields = SequentialOptions.model_fields
    tolerance = f"(has(self.tolerance) ? self.tolerance : {float(fields['tolerance'].default)!r})"
    regression = f"(has(self.regression) ? self.regression : {float(fields['regression'].default)!r})"
    add(
        at("analysis", "sequential"),
        _rule(f"{tolerance} < {regression}", "tolerance must be below regression", ".tolerance"),
    )
    add(at("analysis", "prometheus", "address"), *_address_rules())
    # templates.parse's language as a pattern (the model checks it with the parser, for better messages)
    at("analysis", "metrics", "[]", "query")["pattern"] = TEMPLATE_PATTERN


def _match_rules(spec: dict[str, Any], match: dict[str, Any], add: Any) -> None:
    """``rollout.policy.matches``: one condition per entry, at least one entry, weights never below
    the plan's, and what each router can express (``matches.unsupported``)."""
    add(
        match,
        _rule(
            "(has(self.headers) && size(self.headers) > 0) || (has(self.queryParams) && size(self.queryParams) > 0)",
            "a match needs at least one entry in headers or queryParams",
        ),
    )
    add(
        match["properties"]["headers"]["items"],
        _rule(
            "[has(self.exact), has(self.prefix), has(self.regex), has(self.present)].filter(x, x).size() == 1",
            "a header needs exactly one of exact, prefix, regex, present",
        ),
    )
    add(
        match["properties"]["queryParams"]["items"],
        _rule(
            "[has(self.exact), has(self.regex)].filter(x, x).size() == 1",
            "a query parameter needs exactly one of exact, regex",
        ),
    )
    steps = "self.steps.all(s, !has(s.match) || "  # (not filter(): the cost estimate of its result is unbounded)
    weights = (
        "self.steps.filter(s, has(s.setWeight) || (has(s.match) && has(s.match.weight)))"
        ".map(s, has(s.setWeight) ? s.setWeight : s.match.weight)"
    )
    headers = f"{steps}!has(s.match.headers) || s.match.headers.all(h, "
    query = f"{steps}!has(s.match.queryParams) || "
    mesh = "(has(self.router.gatewayRoute) || has(self.router.virtualRouter))"
    grpc = "has(self.router.gatewayRoute) && has(self.router.gatewayRoute.routeType) && "
    grpc += "self.router.gatewayRoute.routeType == 'grpcRoute'"
    add(
        spec,
        _rule(f"{weights}.isSorted()", "weights must never decrease (setWeight and match weights)", ".steps"),
        _rule(
            f"!has(self.router.httpRoute) || {headers}!has(h.prefix) && !has(h.present)))",
            "httpRoute cannot express this: an HTTPRoute header match is Exact or RegularExpression only",
            ".steps",
        ),
        _rule(
            f"!{mesh} || {query}s.match.queryParams.all(q, !has(q.regex)))",
            "an App Mesh query parameter match is exact only",
            ".steps",
        ),
        _rule(
            f"!{mesh} || {headers}size(h.name) <= 50))",
            "App Mesh header names are at most 50 characters",
            ".steps",
        ),
        _rule(
            f"!{mesh} || {steps}(!has(s.match.headers) || size(s.match.headers) <= 10) && "
            "(!has(s.match.queryParams) || size(s.match.queryParams) <= 10))",
            "an App Mesh match takes at most 10 headers and 10 queryParams",
            ".steps",
        ),
        _rule(
            f"!({grpc}) || {query}size(s.match.queryParams) == 0)",
            "a grpcRoute has no query parameters (headers match gRPC metadata)",
            ".steps",
        ),
    )
