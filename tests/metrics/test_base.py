"""AnalysisRequest from a policy, and the header rule (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.core.readings import Outcome
from rollout.metrics.base import DEFAULT_ENDPOINT, AnalysisRequest, header_problem, outcome_of
from rollout.policy.models import Rollout

SEED = Path(__file__).parents[2] / "policies" / "recommendations-canary.yaml"


def policy(**prometheus: Any) -> Rollout:
    doc = yaml.safe_load(SEED.read_text())
    doc["spec"]["analysis"]["prometheus"] = prometheus
    doc["spec"]["analysis"]["window"] = "1m"
    return Rollout.model_validate(doc)


def test_for_policy_reads_what_the_policy_needs() -> None:
    request = AnalysisRequest.for_policy(policy())
    assert request.key == "default/recommendations"
    assert (request.stable, request.canary) == ("recommendation-service-v1", "recommendation-service-v2")
    assert request.interval_seconds == 30
    assert request.window_seconds == 60
    assert request.custom_window_seconds == 60
    assert request.latency_bound_seconds == 0.3
    assert request.endpoint == DEFAULT_ENDPOINT
    assert request.address is None
    assert request.bearer_token is None


def test_for_policy_with_an_address_takes_the_resolved_token_and_keeps_it_out_of_repr() -> None:
    request = AnalysisRequest.for_policy(
        policy(address="https://tenant.example:9090", headers={"X-Scope-OrgID": "shop"}), bearer_token="s3cret"
    )
    assert request.address == "https://tenant.example:9090"
    assert request.headers == {"X-Scope-OrgID": "shop"}
    assert request.bearer_token == "s3cret"
    assert "s3cret" not in repr(request)


def test_for_policy_never_attaches_a_token_to_an_endpoint_request() -> None:
    request = AnalysisRequest.for_policy(policy(), endpoint="eu", bearer_token="s3cret")
    assert request.endpoint == "eu"
    assert request.bearer_token is None


def test_custom_window_defaults_to_the_interval() -> None:
    request = AnalysisRequest(
        key="n/r", namespace="n", stable="s", canary="c", interval_seconds=20, latency_bound_seconds=None
    )
    assert request.custom_window_seconds == 20


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("X-Scope-OrgID", "shop", None),
        ("X-Scope-OrgID", "shop\r\nAuthorization: Bearer stolen", "contains a CR or LF"),
        ("X-Scope-OrgID", "shop\n", "contains a CR or LF"),
        ("Bad:Name", "v", "not a valid HTTP header name"),
        ("X\r\nY", "v", "not a valid HTTP header name"),
        ("", "v", "not a valid HTTP header name"),
    ],
)
def test_header_problem(name: str, value: str, problem: str | None) -> None:
    found = header_problem(name, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert "stolen" not in found  # never quotes the value: it may be a credential


def test_outcome_precedence() -> None:
    assert outcome_of([]) is Outcome.OK
    assert outcome_of([(Outcome.NAN, ""), (Outcome.PARTIAL, ""), (Outcome.UNAVAILABLE, "")]) is Outcome.UNAVAILABLE
    assert outcome_of([(Outcome.NAN, ""), (Outcome.NO_DATA, "")]) is Outcome.NO_DATA
