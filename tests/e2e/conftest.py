"""Fixtures of the e2e suite: one embedded stack per module, a fresh namespace with the seed's
GatewayRoute per test, daemons that are stopped when the test ends, and a fast policy (2 s
interval) so whole rollouts take seconds."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rollout.kube.rollouts import ROLLOUTS
from tests.harness.stack import CANARY, ROUTE, STABLE, Daemon, Stack

_names = itertools.count()

DaemonFactory = Callable[..., Daemon]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(total_rps=2000.0) as s:
        yield s


def new_namespace(stack: Stack, routes: tuple[str, ...] = (ROUTE,)) -> str:
    """A fresh namespace holding the seed's GatewayRoute (and any other routes named)."""
    name = f"e2e{next(_names)}"
    stack.plane.create_namespace(name)
    for route in routes:
        stack.add_route(name, route)
    return name


def forget_namespace(stack: Stack, namespace: str) -> None:
    """Stop the mesh sending traffic through the namespace's routes (the next test starts clean)."""
    assert stack.mesh is not None
    stack.mesh.routes[:] = [r for r in stack.mesh.routes if r[0] != namespace]


@pytest.fixture
def ns(stack: Stack) -> Iterator[str]:
    name = new_namespace(stack)
    yield name
    forget_namespace(stack, name)


@pytest.fixture
def daemons(stack: Stack) -> Iterator[DaemonFactory]:
    """Start daemons with ``daemons(namespaces=[...], name=..., **env)``; all are stopped at teardown."""
    started: list[Daemon] = []

    def start(**kwargs: Any) -> Daemon:
        kwargs.setdefault("ROLLOUT_LEADER__ENABLED", "false")
        d = stack.daemon(**kwargs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.terminate(timeout=15)
        stack.daemons.remove(d)


def fast_policy(namespace: str, name: str = "recommendations", **analysis: Any) -> dict[str, Any]:
    """The seed canary with short intervals: 20% -> 50% -> 100%, judged every 2 s.

    ``sequential.alpha`` is 1e-4 (not the default 0.01): the suite runs a few dozen healthy
    rollouts, and a per-rollout false-rollback bound of 1% would make *some* healthy rollout in the
    suite roll back every few runs. Faults here are large (30% errors), so detection stays quick.
    """
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "router": {"gatewayRoute": {"name": ROUTE}},
            "stable": STABLE,
            "canary": CANARY,
            "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],
            "analysis": {
                "interval": "2s",
                "window": "6s",
                "stepDuration": "6s",
                "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "250ms"}},
                "minRequests": 50,
                "sequential": {"alpha": 0.0001},
                **analysis,
            },
            "progressDeadline": "2m",
        },
    }


def apply(stack: Stack, policy: dict[str, Any]) -> None:
    assert stack.kube is not None
    stack.kube.create(ROLLOUTS, policy["metadata"]["namespace"], policy)
