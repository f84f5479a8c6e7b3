"""A/B steps on the real stack with the real upstream CRDs (App Mesh GatewayRoute and VirtualRouter,
Gateway API HTTPRoute), driven by the daemon subprocess, judged on a real Prometheus: the mesh
sends a share of its synthetic requests with ``X-Experiment-ID: beta``, and only those reach the
beta while the companion route/rule is in place.

- a healthy beta is judged on the matching requests (the canary's weight stays 0 while it gets
  them) and promoted; the managed route is gone at the end;
- a beta that fails (it only gets matching requests) is rolled back: the managed route is removed
  and the user's route is exactly as it was (stable untouched);
- the daemon is killed with SIGKILL at random moments (seeded) during A/B runs on all three route
  kinds, at least 10 times; every run still ends and never leaves a managed route behind.

Every namespace has its own beta backend (``beta_of``), as every release has its own version: the
exporter's counters of one test's failing beta never reach another test's judge.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.errors import KubeNotFound
from rollout.routers.base import MANAGED_PREFIX
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from rollout.routers.httproute import HTTP_ROUTES
from rollout.routers.virtualrouter import VIRTUAL_ROUTERS
from tests.e2e.conftest import DaemonFactory, apply, fast_policy, forget_namespace
from tests.e2e.observing import phase_is, record, status, wait_status
from tests.harness.stack import STABLE, Daemon, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]

NAME = "checkout-ab"
ROUTE = "checkout"
KINDS = ("gatewayroute", "virtualrouter", "httproute")
RESOURCES = {"gatewayroute": GATEWAY_ROUTES, "virtualrouter": VIRTUAL_ROUTERS, "httproute": HTTP_ROUTES}
HEADER_SHARE = 0.2  # of the mesh's synthetic requests carry X-Experiment-ID: beta
SEED = 20261127
MIN_TRIALS = 10
_names = iter(range(10_000))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The local stack with the real upstream route CRDs (overrides the suite's fixture-CRD stack)."""
    with Stack(total_rps=200.0, upstream_crds=True) as s:
        assert s.mesh is not None
        s.mesh.header_share = HEADER_SHARE
        yield s


def beta_of(namespace: str) -> str:
    """The beta (canary) backend of a namespace's run."""
    return f"checkout-beta-{namespace}"


def user_route(kind: str, canary: str) -> dict[str, Any]:
    """The route the service team wrote, as the upstream CRDs hold it: all traffic on stable."""
    meta = {"name": ROUTE}
    if kind == "gatewayroute":
        return {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "GatewayRoute",
            "metadata": meta,
            "spec": {
                "virtualGatewayRef": {"name": "ingress-gw", "uid": "9f8e7d6c-0000-4000-8000-000000000001"},
                "priority": 100,
                "httpRoute": {
                    "match": {"prefix": "/checkout"},
                    "action": {"target": {"virtualService": {"virtualServiceRef": {"name": STABLE}}}},
                },
            },
        }
    if kind == "virtualrouter":
        return {
            "apiVersion": "appmesh.k8s.aws/v1beta2",
            "kind": "VirtualRouter",
            "metadata": meta,
            "spec": {
                "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
                "routes": [
                    {
                        "name": "checkout-route",
                        "priority": 100,
                        "httpRoute": {
                            "match": {"prefix": "/"},
                            "action": {"weightedTargets": [{"virtualNodeRef": {"name": STABLE}, "weight": 100}]},
                        },
                    }
                ],
            },
        }
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta,
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "name": "main",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/checkout"}}],
                    "backendRefs": [
                        {"name": STABLE, "port": 8080, "weight": 100},
                        {"name": canary, "port": 8080, "weight": 0},
                    ],
                }
            ],
        },
    }


def ab_policy(namespace: str, kind: str) -> dict[str, Any]:
    """policies/checkout-ab.yaml on this stack's backends, with e2e timings (``fast_policy``'s)."""
    router = {"gatewayroute": "gatewayRoute", "virtualrouter": "virtualRouter", "httproute": "httpRoute"}[kind]
    policy = fast_policy(namespace, NAME)
    policy["spec"].update(
        router={router: {"name": ROUTE}},
        canary=beta_of(namespace),
        steps=[
            {"match": {"headers": [{"name": "X-Experiment-ID", "exact": "beta"}]}},
            {"pause": {"duration": "6s"}},
            {"setWeight": 100},
        ],
    )
    return policy


def new_namespace(stack: Stack, kind: str, *, beta_error_rate: float = 0.001) -> str:
    """A namespace with the user's route and its own beta backend (``beta_error_rate``: the beta's 5xx share)."""
    name = f"ab{next(_names)}"
    stack.plane.create_namespace(name)
    stack.exporter.set_backend(
        beta_of(name), rps=0.0, error_rate=beta_error_rate, latency_median_ms=20, latency_p99_ms=120
    )
    stack.add_route(name, ROUTE, manifest=user_route(kind, beta_of(name)), resource=RESOURCES[kind], path="/checkout")
    return name


def live(stack: Stack, namespace: str, kind: str) -> dict[str, Any]:
    assert stack.kube is not None
    return stack.kube.get(RESOURCES[kind], namespace, ROUTE)


def managed(stack: Stack, namespace: str, kind: str) -> list[str]:
    """The managed routes/rules rollout has on the cluster for this route (names)."""
    assert stack.kube is not None
    if kind == "gatewayroute":
        with contextlib.suppress(KubeNotFound):
            return [stack.kube.get(GATEWAY_ROUTES, namespace, f"{MANAGED_PREFIX}{ROUTE}")["metadata"]["name"]]
        return []
    key = "routes" if kind == "virtualrouter" else "rules"
    entries = live(stack, namespace, kind)["spec"].get(key) or []
    return [str(e.get("name")) for e in entries if str(e.get("name", "")).startswith(MANAGED_PREFIX)]


def users_part(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]
    return spec


def canary_share(stack: Stack, namespace: str, kind: str) -> float:
    """The canary's share of the route's traffic at the end of a run (1.0: promoted)."""
    route = live(stack, namespace, kind)
    spec = route["spec"]
    if kind == "gatewayroute":
        target = spec["httpRoute"]["action"]["target"]["virtualService"]["virtualServiceRef"]["name"]
        return 1.0 if target == beta_of(namespace) else 0.0
    entries: list[dict[str, Any]]
    if kind == "virtualrouter":
        entries = spec["routes"][0]["httpRoute"]["action"]["weightedTargets"]
        weights = {e["virtualNodeRef"]["name"]: e["weight"] for e in entries}
    else:
        entries = spec["rules"][0]["backendRefs"]
        weights = {e["name"]: e.get("weight", 1) for e in entries}
    return float(weights.get(beta_of(namespace), 0)) / float(sum(weights.values()))


def judged_on_matches(found: dict[str, Any]) -> bool:
    verdict = (found.get("state") or {}).get("verdict") or {}
    return bool(found.get("match")) and (verdict.get("canary") or {}).get("requests", 0) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_healthy_beta_is_judged_on_the_matching_requests_and_promoted(
    stack: Stack, daemons: DaemonFactory, kind: str
) -> None:
    ns = new_namespace(stack, kind)
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    try:
        apply(stack, ab_policy(ns, kind))
        during = wait_status(
            stack,
            ns,
            judged_on_matches,
            timeout=90,
            what="judged on the matching requests",
            name=NAME,
            daemons=(daemon,),
        )
        assert during["match"] == "X-Experiment-ID=beta" and during["canaryWeight"] == 0
        assert managed(stack, ns, kind), "the managed route is on the cluster"
        served = stack.exporter.profiles()
        assert served[beta_of(ns)]["rps"] == pytest.approx(200 * HEADER_SHARE, rel=0.05), served  # the header only
        assert served[STABLE]["rps"] == pytest.approx(200 * (1 - HEADER_SHARE), rel=0.05), served
        final = wait_status(stack, ns, phase_is("Promoted"), timeout=180, what="Promoted", name=NAME, daemons=(daemon,))
    finally:
        forget_namespace(stack, ns)
    assert managed(stack, ns, kind) == [], "the managed route is removed"
    assert canary_share(stack, ns, kind) == 1.0
    assert final["match"] == "" and final["canaryWeight"] == 100


@pytest.mark.parametrize("kind", KINDS)
def test_a_beta_failing_for_matching_requests_is_rolled_back_and_stable_untouched(
    stack: Stack, daemons: DaemonFactory, kind: str
) -> None:
    ns = new_namespace(stack, kind, beta_error_rate=0.3)  # the beta fails; only matching requests reach it
    before = users_part(live(stack, ns, kind))
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon")
    try:
        apply(stack, ab_policy(ns, kind))
        final = wait_status(
            stack, ns, phase_is("RolledBack"), timeout=120, what="RolledBack", name=NAME, daemons=(daemon,)
        )
    finally:
        forget_namespace(stack, ns)
    assert managed(stack, ns, kind) == []
    assert users_part(live(stack, ns, kind)) == before, "the user's route is exactly as it was"
    assert final["canaryWeight"] == 0 and final["match"] == ""
    assert "the canary failed" in final["state"]["endReason"]


def test_sigkill_during_a_b_runs_never_leaves_a_managed_route(stack: Stack, daemons: DaemonFactory) -> None:
    rng = random.Random(SEED)
    daemon = daemons(namespaces=[], name="ab-crash", ROLLOUT_LEADER__ENABLED="true")
    trials, rounds = 0, list[dict[str, object]]()
    while trials < MIN_TRIALS or len(rounds) < 2:
        failing = len(rounds) % 2 == 1
        done = _crash_round(stack, daemon, rng, kills=rng.randint(3, 5), failing=failing)
        rounds.append(done)
        trials += int(str(done["kills_during_runs"]))
    record("ab_sigkill_trials", {"seed": SEED, "trials": trials, "rounds": rounds})
    assert trials >= MIN_TRIALS


def _crash_round(stack: Stack, daemon: Daemon, rng: random.Random, *, kills: int, failing: bool) -> dict[str, object]:
    namespaces = {kind: new_namespace(stack, kind, beta_error_rate=0.3 if failing else 0.001) for kind in KINDS}
    before = {kind: users_part(live(stack, ns, kind)) for kind, ns in namespaces.items()}
    for kind, ns in namespaces.items():
        apply(stack, ab_policy(ns, kind))
    delays, began, during = [], time.monotonic(), 0
    try:
        for _ in range(kills):
            delay = round(rng.uniform(0.5, 6.0), 2)
            delays.append(delay)
            time.sleep(delay)
            if all(_final(stack, ns) for ns in namespaces.values()):
                break  # only kills while a run is under way count
            daemon.kill()
            during += 1
            daemon.start()
        finals = {
            kind: wait_until(
                lambda ns=ns: _final(stack, ns), timeout=240, interval=0.5, what=f"{ns} ({kind}): a final phase"
            )
            for kind, ns in namespaces.items()
        }
    except TimeoutError:
        print(daemon.tail(80))
        raise
    finally:
        for ns in namespaces.values():
            forget_namespace(stack, ns)
    for kind, ns in namespaces.items():
        assert managed(stack, ns, kind) == [], f"{ns} ({kind}): a managed route was left behind"
        expected = "RolledBack" if failing else "Promoted"
        why = status(stack, ns, NAME).get("state", {}).get("endReason")
        assert finals[kind] == expected, f"{ns} ({kind}): {finals[kind]}: {why}"
        if failing:
            assert users_part(live(stack, ns, kind)) == before[kind], f"{ns} ({kind}): stable was touched"
        else:
            assert canary_share(stack, ns, kind) == 1.0
    return {
        "failing_beta": failing,
        "kills_during_runs": during,
        "delays_seconds": delays,
        "finals": sorted(finals.values()),
        "seconds": round(time.monotonic() - began, 1),
    }


def _final(stack: Stack, namespace: str) -> str | None:
    phase = status(stack, namespace, NAME).get("phase")
    return str(phase) if phase in ("Promoted", "RolledBack", "Aborted") else None
