"""Gathering one tick's observations for the engine: the route's live weights, the latest counter
reading, and the operator commands with their authors' rights checked.

Owns the translation of adapter outcomes into the engine's vocabulary (the route's weights and an
A/B step's managed route; ``RouterError`` ->
``RouteProblem``; a RolloutCommand -> a ``Command``, refused when malformed or when its author
lacks the RBAC verb) and the tenancy rule (a Rollout may only move routes and backends in its own
namespace unless the platform team allowed the pair). It makes no decision about the rollout
and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from rollout.core.matches import RouteMatch
from rollout.core.states import Command, CommandKind, ProblemKind, RouteProblem, Weights
from rollout.errors import (
    BackendNotInRoute,
    KubeError,
    MatchDrifted,
    RouteConflict,
    RouteForbidden,
    RouteNotAccepted,
    RouteNotFound,
    RouterError,
    RouteSchemaError,
    WeightsDrifted,
)
from rollout.kube.commands import VERBS, CommandObject
from rollout.policy.models import Rollout
from rollout.routers.base import Router

log = logging.getLogger("rollout.gathering")

Allowed = Callable[[str, Sequence[str], str, str, str], tuple[bool, str]]
"""``(user, groups, verb, namespace, rollout) -> (allowed, reason)``: a SubjectAccessReview."""

_KINDS: tuple[tuple[type[RouterError], ProblemKind], ...] = (
    (RouteNotFound, ProblemKind.NOT_FOUND),
    (BackendNotInRoute, ProblemKind.BACKEND_MISSING),
    (RouteForbidden, ProblemKind.FORBIDDEN),
    (RouteSchemaError, ProblemKind.SCHEMA),
    (RouteConflict, ProblemKind.CONFLICT),
    (WeightsDrifted, ProblemKind.CONFLICT),
    (MatchDrifted, ProblemKind.CONFLICT),
    (RouteNotAccepted, ProblemKind.NOT_ACCEPTED),
)


def problem_of(error: RouterError) -> RouteProblem:
    """The engine's view of a router failure: what kind (permanent or not) and the adapter's words."""
    kind = next((k for cls, k in _KINDS if isinstance(error, cls)), ProblemKind.UNAVAILABLE)
    return RouteProblem(kind, str(error)[:1000])


def live_weights(router: Router) -> tuple[Weights | None, RouteProblem | None]:
    try:
        return router.get_weights(), None
    except RouterError as e:
        return None, problem_of(e)


def live_route(router: Router, *, with_match: bool) -> tuple[Weights | None, RouteMatch | None, RouteProblem | None]:
    """The route's weights and (``with_match``: when the run may have one) an A/B step's managed
    route; when either cannot be read, the route counts as unreadable (None, None, why)."""
    try:
        weights = router.get_weights()
        return weights, router.get_match() if with_match else None, None
    except RouterError as e:
        return None, None, problem_of(e)


def tenancy_problem(policy: Rollout, allowed: Mapping[str, Sequence[str]]) -> str:
    """Why ``policy`` reaches outside its namespace without the platform team's leave (empty: it does not).

    ``allowed`` maps a Rollout namespace to the other namespaces whose routes and backends its
    Rollouts may name (setting ``tenancy.cross_namespace``).
    """
    own = policy.metadata.namespace
    others = set(allowed.get(own, ()))
    reach = [("route", policy.route_namespace())]
    for role, backend in (("stable", policy.spec.stable), ("canary", policy.spec.canary)):
        namespace, _, _ = backend.rpartition("/")
        if namespace:
            reach.append((role, namespace))
    for what, namespace in reach:
        if namespace != own and namespace not in others:
            return (
                f"spec names a {what} in namespace {namespace!r}, but Rollouts in {own!r} may only move "
                f"routes and backends in their own namespace (the daemon's setting tenancy.cross_namespace "
                f"allows named pairs)"
            )
    return ""


def metrics_problem(policy: Rollout, endpoints: Sequence[str], addresses: Sequence[str]) -> str:
    """Why ``policy``'s choice of Prometheus is not allowed (empty: it is).

    ``endpoints``: the names of the endpoints the platform team configured ("default" included);
    ``addresses``: URL prefixes a policy may name itself (it then gets no credentials of the daemon).
    """
    chosen = policy.spec.analysis.prometheus
    if chosen.endpoint is not None and chosen.endpoint not in endpoints:
        return (
            f"spec.analysis.prometheus.endpoint {chosen.endpoint!r} is not a Prometheus endpoint of this daemon "
            f"(it knows: {', '.join(sorted(endpoints))}; setting prometheus_endpoints)"
        )
    if chosen.address is not None and not any(address_allowed(chosen.address, prefix) for prefix in addresses):
        return (
            "spec.analysis.prometheus.address is not allowed: the daemon only queries Prometheus endpoints the "
            "platform team configured (name one with spec.analysis.prometheus.endpoint, or have the setting "
            "prometheus_policy_addresses allow this address)"
        )
    return ""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def address_allowed(address: str, prefix: str) -> bool:
    """Whether a policy's Prometheus ``address`` falls under an allowed URL ``prefix``.

    Compared as URLs, not as text: the same scheme, host and port (a prefix
    ``http://prom.team-a`` does not allow ``http://prom.team-attacker.example``), and the address's
    path under the prefix's path, segment by segment. An address with ``.``/``..`` segments (plain
    or percent-encoded), a query or a fragment is never allowed, since HTTP clients resolve dot
    segments before sending.
    """
    try:
        a, p = urlsplit(address), urlsplit(prefix)
        a_port = a.port or _DEFAULT_PORTS.get(a.scheme.lower())
        p_port = p.port or _DEFAULT_PORTS.get(p.scheme.lower())
    except ValueError:
        return False
    if a.username is not None or a.password is not None or a.query or a.fragment:
        return False
    if a.scheme.lower() != p.scheme.lower() or not a.hostname or a.hostname != p.hostname or a_port != p_port:
        return False
    segments = unquote(a.path).split("/")
    if any(s in (".", "..") for s in segments) or "\\" in unquote(a.path):
        return False
    base = [s for s in p.path.split("/") if s]
    return [s for s in a.path.split("/") if s][: len(base)] == base


def vet(
    cross_namespace: Mapping[str, Sequence[str]],
    endpoints: Sequence[str] = ("default",),
    addresses: Sequence[str] = (),
) -> Callable[[Rollout], str]:
    """The daemon's checks of what a policy may reach (namespaces, Prometheus), as one function."""

    def check(policy: Rollout) -> str:
        return tenancy_problem(policy, cross_namespace) or metrics_problem(policy, endpoints, addresses)

    return check


def commands_of(
    objects: Sequence[CommandObject],
    allowed: Allowed | None,
    *,
    daemon: str,
    verified: bool,
) -> tuple[list[Command], dict[str, CommandObject]]:
    """The engine's commands for these RolloutCommands (and each command's object, by id).

    A malformed object becomes a refused command (so it is acknowledged and cannot wedge anything).
    ``verified``: the admission policy that binds ``spec.by`` to the requester is installed; without
    it nobody's identity can be trusted (anyone could write the daemon's name) and every command is
    refused. Commands by people need the RBAC verb (``kube.commands.VERBS``) on the Rollout, checked
    with ``allowed``; Slack clicks the daemon recorded are judged by the policy's Slack approvers.
    """
    out: list[Command] = []
    by_id: dict[str, CommandObject] = {}
    for obj in objects:
        if obj.handled:
            continue
        parsed = obj.parse()
        uid = str(obj.meta.get("uid") or obj.name)
        if isinstance(parsed, str):
            log.warning("malformed command", extra={"event": "rollout.command-malformed", "command": obj.name})
            parsed = Command(
                kind=CommandKind.PAUSE,
                by="?",
                at=datetime.fromtimestamp(0, UTC),
                id=uid,
                refusal=f"RolloutCommand {obj.name} is malformed: {parsed}",
            )
        elif not verified:  # without the policy nobody's spec.by can be trusted, the daemon's name included
            parsed = replace(
                parsed,
                refusal=f"the admission policy that vouches for spec.by is not installed, so {parsed.by!r} "
                "cannot be trusted (install deploy/base/commands-policy.yaml)",
            )
        elif parsed.by == daemon and parsed.slack_user:
            pass  # a Slack click the daemon verified: the policy's Slack approvers decide (core)
        elif allowed is not None:
            verb = VERBS[parsed.kind]
            try:
                ok, reason = allowed(parsed.by, obj.groups, verb, obj.namespace, obj.rollout)
            except KubeError as e:
                ok, reason = False, f"the access review failed: {e}"
            if not ok:
                parsed = replace(
                    parsed,
                    refusal=f"{parsed.by} may not {verb} rollouts in {obj.namespace}"
                    + (f" ({reason})" if reason else "")
                    + f"; RBAC verb {verb!r} on rollouts.delivery.rollout.dev is needed",
                )
        out.append(parsed)
        by_id[parsed.id] = obj
    return out, by_id


def with_backends(policy: Rollout, backends: tuple[str, str]) -> Rollout:
    """The policy as a running run sees it: a run superseded by a revision naming other backends
    still moves (rolls back) the traffic of its own two backends."""
    if not all(backends) or backends == (policy.spec.stable, policy.spec.canary):
        return policy
    spec = policy.spec.model_copy(update={"stable": backends[0], "canary": backends[1]})
    return policy.model_copy(update={"spec": spec})
