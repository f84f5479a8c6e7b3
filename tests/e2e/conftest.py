"""Fixtures of the e2e suite: one embedded stack per module, a fresh namespace with the seed's
GatewayRoute per test, and a fast policy (2 s interval) so whole rollouts take seconds."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.kube.rollouts import ROLLOUTS
from tests.harness.stack import CANARY, ROUTE, STABLE, Stack

_names = itertools.count()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(total_rps=200.0) as s:
        yield s


@pytest.fixture
def ns(stack: Stack) -> str:
    name = f"e2e{next(_names)}"
    stack.plane.create_namespace(name)
    stack.add_route(name)
    return name


def fast_policy(namespace: str, name: str = "recommendations", **analysis: Any) -> dict[str, Any]:
    """The seed canary with short intervals: 20% -> 50% -> 100%, judged every 2 s."""
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
                **analysis,
            },
            "progressDeadline": "2m",
        },
    }


def apply(stack: Stack, policy: dict[str, Any]) -> None:
    assert stack.kube is not None
    stack.kube.create(ROLLOUTS, policy["metadata"]["namespace"], policy)
