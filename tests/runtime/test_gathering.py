"""What a policy may reach: namespaces and Prometheus endpoints/addresses (the daemon's ``vet``)."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.policy.models import Rollout
from rollout.runtime.gathering import address_allowed, vet
from tests.runtime.fakes import rollout_doc


def _policy(**analysis: Any) -> Rollout:
    return Rollout.model_validate(rollout_doc(**analysis))


@pytest.mark.parametrize(
    ("address", "prefix", "allowed"),
    [
        ("https://prom.team-a.svc:9090", "https://prom.team-a.svc:9090/", True),
        ("https://prom.team-a.svc:9090/", "https://prom.team-a.svc:9090", True),
        ("https://prom.team-a.svc/api", "https://prom.team-a.svc:443/", True),
        ("HTTPS://PROM.team-a.svc:9090/", "https://prom.team-a.svc:9090/", True),
        ("https://thanos.shop/tenant-a/x", "https://thanos.shop/tenant-a", True),
        # text prefixes that are not URL prefixes
        ("https://prom.team-attacker.example/", "https://prom.team-a", False),
        ("https://prom.team-a.svc:90901/", "https://prom.team-a.svc:9090", False),
        ("https://thanos.shop/tenant-ab", "https://thanos.shop/tenant-a", False),
        ("http://prom.team-a.svc:9090/", "https://prom.team-a.svc:9090/", False),
        ("https://prom.team-a.svc:9091/", "https://prom.team-a.svc:9090/", False),
        # dot segments an HTTP client would resolve, plain or encoded; backslashes
        ("https://thanos.shop/tenant-a/../tenant-b", "https://thanos.shop/tenant-a", False),
        ("https://thanos.shop/tenant-a/%2e%2e/tenant-b", "https://thanos.shop/tenant-a", False),
        ("https://thanos.shop/tenant-a/..%5ctenant-b", "https://thanos.shop/tenant-a", False),
        # userinfo, query, fragment, nonsense
        ("https://prom.team-a.svc:9090@evil.example/", "https://prom.team-a.svc:9090/", False),
        ("https://prom.team-a.svc:9090/?x=1", "https://prom.team-a.svc:9090/", False),
        ("https://prom.team-a.svc:9090/#x", "https://prom.team-a.svc:9090/", False),
        ("https://prom.team-a.svc:99999/", "https://prom.team-a.svc:99999/", False),
        ("not a url", "https://prom.team-a.svc:9090/", False),
    ],
)
def test_policy_addresses_are_compared_as_urls(address: str, prefix: str, allowed: bool) -> None:
    assert address_allowed(address, prefix) is allowed


def test_vet_refuses_other_namespaces_unless_paired() -> None:
    policy = Rollout.model_validate(rollout_doc(route_namespace="payments"))
    problem = vet({})(policy)
    assert "namespace 'payments'" in problem and "tenancy.cross_namespace" in problem
    assert vet({"team": ["payments"]})(policy) == ""
    assert vet({"other": ["payments"]})(policy) != ""


def test_vet_refuses_backends_in_other_namespaces() -> None:
    doc = rollout_doc()
    doc["spec"]["canary"] = "payments/v2"
    problem = vet({})(Rollout.model_validate(doc))
    assert "canary in namespace 'payments'" in problem


def test_vet_prometheus_endpoints_by_name_and_addresses_by_prefix() -> None:
    named = _policy(prometheus={"endpoint": "thanos"})
    assert "not a Prometheus endpoint" in vet({}, ("default",))(named)
    assert vet({}, ("default", "thanos"))(named) == ""
    free = _policy(prometheus={"address": "https://prom.team-attacker.example/"})
    assert "address is not allowed" in vet({})(free)
    assert "address is not allowed" in vet({}, addresses=("https://prom.team-a",))(free)
    mine = _policy(prometheus={"address": "https://prom.team-a.svc:9090/"})
    assert vet({}, addresses=("https://prom.team-a.svc:9090/",))(mine) == ""
