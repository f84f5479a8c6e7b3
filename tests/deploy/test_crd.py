"""The Rollout CRD: the committed manifest is the generator's output, and on the real API server it
installs, stores every example policy and a full status unchanged (nothing pruned), and rejects
what the policy model rejects."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rollout.core import persisting
from rollout.core.conditions import conditions
from rollout.core.states import (
    CommandKind,
    PauseReason,
    PendingWrite,
    Phase,
    ProblemKind,
    RolloutState,
    RouteProblem,
    Weights,
)
from rollout.errors import KubeError, KubeInvalid
from rollout.kube.client import KubeClient
from rollout.kube.crd import NAME, ROLLOUTS, crd_manifest, render, status_schema
from rollout.kube.rollouts import RolloutObject, status_document
from rollout.policy.models import Rollout, RolloutSpec
from tests.core.factories import Driver, command, policy
from tests.deploy.manifests import BASE
from tests.harness.kube import REPO_ROOT, ControlPlane

POLICIES = sorted((REPO_ROOT / "policies").glob("*.yaml"))
_names = itertools.count()
_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


# --- without a cluster --------------------------------------------------------------------------


def test_committed_crd_is_the_generator_output() -> None:
    committed = (BASE / "crd.yaml").read_text()
    assert committed == render(), "deploy/base/crd.yaml is stale: python -m rollout.kube.crd > it"
    assert yaml.safe_load(committed) == crd_manifest()


def _undeclared(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Paths in ``value`` the schema does not declare (what the API server would prune)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        missing = []
        for key, sub in value.items():
            child = (props or {}).get(key, extra if isinstance(extra, dict) else None)
            if child is None:
                missing.append(f"{path}.{key}")
            else:
                missing += _undeclared(child, sub, f"{path}.{key}")
        return missing
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _undeclared(schema["items"], v, f"{path}[{i}]")]
    return []


def _full_state() -> RolloutState:
    """A mid-run state with every part filled in: a verdict with checks, the judge's memory and the
    reading it absorbed, a pending write, a route problem, approvals, handled commands."""
    d = Driver(policy(steps=[{"setWeight": 10}, {"setWeight": 25}, {"approval": {}}, {"setWeight": 100}]))
    d.until(lambda d: d.state.phase is Phase.AWAITING_APPROVAL)
    d.tick([command(CommandKind.APPROVE, d.now, by="U012AB3CD")])
    state = d.state
    assert state.verdict is not None and state.verdict.checks and state.baseline is not None
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    return replace(
        state,
        pending=PendingWrite(Weights.of_canary(100), Weights.of_canary(25), t0),
        route_problem=RouteProblem(ProblemKind.CONFLICT, "lost a race"),
        route_problem_since=t0,
        unavailable_since=t0 + timedelta(minutes=5),
        pause_reason=PauseReason.DRIFT,
        pause_detail="route carries canary=0 stable=100",
    )


def _status(state: RolloutState, generation: int) -> dict[str, Any]:
    """The ``.status`` the daemon writes: summary fields, conditions and the engine's state."""
    meta = {"metadata": {"name": "x", "namespace": "y", "generation": generation}}
    obj = RolloutObject(meta)
    return status_document(
        obj, state, conditions=conditions(state, [], datetime.now(UTC), generation=generation), steps=4
    )


STATES = {"full": _full_state(), "fresh": RolloutState()}


@pytest.mark.parametrize("which", sorted(STATES))
def test_status_schema_declares_every_field_the_daemon_writes(which: str) -> None:
    status = _status(STATES[which], 1)
    assert _undeclared(status_schema(), status) == []


def test_a_missing_declaration_is_noticed() -> None:
    status = _status(STATES["full"], 1)
    status["state"]["verdict"]["checks"][0]["surprise"] = 1
    assert _undeclared(status_schema(), status) == [".state.verdict.checks[0].surprise"]


def _untyped(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes without a type (the API server validates nothing there)."""
    here = [] if "type" in schema else [path]
    children = [*(schema.get("properties") or {}).items()]
    if isinstance(schema.get("items"), dict):
        children.append(("[]", schema["items"]))
    if isinstance(schema.get("additionalProperties"), dict):
        children.append(("{}", schema["additionalProperties"]))
    return here + [p for key, sub in children for p in _untyped(sub, f"{path}.{key}")]


def test_only_ratios_escape_server_side_validation() -> None:
    spec = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _untyped(spec) == [".analysis.slos.errorRate.max"]


# --- on the real API server ---------------------------------------------------------------------


def _served(kube: KubeClient) -> bool:
    try:
        kube.list(ROLLOUTS)
    except KubeError:
        return False
    return True


def install_crd(plane: ControlPlane, kube: KubeClient, timeout: float = 30.0) -> dict[str, Any]:
    """Create the CRD, or replace it with the current manifest; wait until it is Established and served."""
    manifest = crd_manifest()
    existing = plane.request("GET", f"{_CRDS}/{NAME}", ok=(200, 404))
    if existing.get("kind") == "CustomResourceDefinition":
        manifest["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        plane.request("PUT", f"{_CRDS}/{NAME}", manifest)
    else:
        plane.request("POST", _CRDS, manifest)
    deadline = time.monotonic() + timeout
    while True:
        crd = plane.request("GET", f"{_CRDS}/{NAME}")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True" and _served(kube):
            return crd
        assert conditions.get("NonStructuralSchema") != "True", conditions
        assert time.monotonic() < deadline, f"CRD not Established and served after {timeout}s: {conditions}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def rollouts_crd(control_plane: ControlPlane, kube: KubeClient) -> dict[str, Any]:
    return install_crd(control_plane, kube)


def _policy(path: Path, namespace: str) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    Rollout.model_validate(doc)  # the examples are valid policies to begin with
    doc["metadata"]["namespace"] = namespace
    return doc


def _create(kube: KubeClient, namespace: str, spec: dict[str, Any], name: str = "") -> dict[str, Any]:
    body = {
        "apiVersion": ROLLOUTS.api_version,
        "kind": ROLLOUTS.kind,
        "metadata": {"name": name or f"ro-{next(_names)}", "namespace": namespace},
        "spec": spec,
    }
    return kube.create(ROLLOUTS, namespace, body)


KITCHEN_SINK: dict[str, Any] = {
    "router": {"httpRoute": {"name": "web", "namespace": "edge", "ruleName": "main"}},
    "stable": "web-v1",
    "canary": "web-v2",
    "steps": [
        {"setWeight": 1},
        {"pause": {"duration": "90s"}},
        {"pause": {}},
        {"approval": {"message": "go?"}},
        {"approval": {}},
        {"setWeight": 100},
    ],
    "analysis": {
        "interval": "15s",
        "window": "1m",
        "stepDuration": "2m",
        "judge": "sequential",
        "slos": {"errorRate": {"max": 0.005}, "latency": {"percentile": 99.9, "max": "250ms"}},
        "metrics": [{"name": "saturation", "query": 'max(cpu{{app="{backend}"}}[{window}])', "min": 0, "max": 0.8}],
        "minRequests": 0,
        "noData": "fail",
        "failureLimit": 3,
        "unavailable": {"action": "rollback", "after": "5m"},
        "metricLabels": {"backend": "service", "backendValue": "{backend}-svc", "selector": 'env="prod"'},
        "prometheus": {"address": "https://prom.example:9090", "headers": {"X-Scope-OrgID": "team-a"}},
        "sequential": {"alpha": 0.02, "beta": 0.1, "regression": 3, "tolerance": 1.5, "mode": "absolute"},
    },
    "notifications": {"slack": {"channel": "#deploys"}},
    "approvals": {
        "slack": {"channel": "C012AB3CD", "approvers": ["U012AB3CD", "W0ABC"]},
        "timeout": "45m",
        "onTimeout": "rollback",
    },
    "progressDeadline": "1h",
}


@pytest.mark.kube
def test_the_crd_is_established_with_its_names_and_columns(rollouts_crd: dict[str, Any]) -> None:
    names = rollouts_crd["status"]["acceptedNames"]
    assert (names["kind"], names["plural"], names["singular"], names["shortNames"], names["categories"]) == (
        "Rollout",
        "rollouts",
        "rollout",
        ["dro"],
        ["delivery"],
    )
    version = rollouts_crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Step",
        "Canary",
        "Stable",
        "Match",
        "Message",
        "Age",
    ]


@pytest.mark.kube
@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_every_example_policy_is_stored_unchanged(
    rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str, path: Path
) -> None:
    doc = _policy(path, namespace)
    kube.create(ROLLOUTS, namespace, doc)
    stored = kube.get(ROLLOUTS, namespace, doc["metadata"]["name"])
    assert stored["spec"] == doc["spec"]
    assert Rollout.model_validate(stored).spec == Rollout.model_validate(doc).spec


@pytest.mark.kube
def test_every_policy_field_is_stored_unchanged(rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str) -> None:
    RolloutSpec.model_validate(KITCHEN_SINK)
    stored = _create(kube, namespace, copy.deepcopy(KITCHEN_SINK))
    assert stored["spec"] == KITCHEN_SINK


@pytest.mark.kube
@pytest.mark.parametrize("ratio", ["1%", "0.25%", "100%", 0.01, 0, 1])
def test_ratios_accept_percentages_and_fractions(
    rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str, ratio: object
) -> None:
    spec = {**KITCHEN_SINK, "analysis": {"slos": {"errorRate": {"max": ratio}}}}
    RolloutSpec.model_validate(spec)
    assert _create(kube, namespace, spec)["spec"]["analysis"]["slos"]["errorRate"]["max"] == ratio


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(KITCHEN_SINK)
    *parents, last = path.split(".")
    node: Any = spec
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return spec


_DELETE = object()
INVALID = {
    "setWeight over 100": ("steps.0.setWeight", 150),
    "negative setWeight": ("steps.0.setWeight", -1),
    "no steps": ("steps", []),
    "no stable": ("stable", _DELETE),
    "no router name": ("router.httpRoute.name", _DELETE),
    "bad router name": ("router.httpRoute.name", "Web_Route"),
    "unknown noData": ("analysis.noData", "maybe"),
    "unknown judge": ("analysis.judge", "vibes"),
    "duration without unit": ("analysis.interval", "30"),
    "duration in words": ("progressDeadline", "30 seconds"),
    "percentile 100": ("analysis.slos.latency.percentile", 100),
    "failureLimit 0": ("analysis.failureLimit", 0),
    "slack channel without #": ("notifications.slack.channel", "deploys"),
    "approver not a user id": ("approvals.slack.approvers.0", "alice"),
    "step as a string": ("steps.0", "setWeight"),
}


@pytest.mark.kube
@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_specs_are_rejected_by_the_api_server_and_by_the_model(
    rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str, case: str
) -> None:
    spec = _with(*INVALID[case])
    with pytest.raises(ValidationError):
        RolloutSpec.model_validate(spec)
    with pytest.raises(KubeInvalid, match="spec"):
        _create(kube, namespace, spec)


@pytest.mark.kube
def test_unknown_fields_are_rejected_under_strict_validation_and_pruned_otherwise(
    rollouts_crd: dict[str, Any], control_plane: ControlPlane, kube: KubeClient, namespace: str
) -> None:
    spec = _with("analysis.slos.errorRate.maxx", "2%")
    body = {
        "apiVersion": ROLLOUTS.api_version,
        "kind": ROLLOUTS.kind,
        "metadata": {"name": "typo", "namespace": namespace},
        "spec": spec,
    }
    path = f"/apis/{ROLLOUTS.api_version}/namespaces/{namespace}/{ROLLOUTS.plural}"
    refused = control_plane.request("POST", f"{path}?fieldValidation=Strict", body, ok=(400, 422))
    assert 'unknown field "spec.analysis.slos.errorRate.maxx"' in refused["message"]
    # Without Strict (the default is Warn) the API server drops what it does not know: the daemon's
    # applies must ask for Strict, or a typo silently becomes "not set".
    stored = control_plane.request("POST", path, body)
    assert stored["spec"] == KITCHEN_SINK


@pytest.mark.kube
@pytest.mark.parametrize("which", sorted(STATES))
def test_a_full_status_is_stored_unchanged(
    rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str, which: str
) -> None:
    doc = _policy(REPO_ROOT / "policies" / "recommendations-canary.yaml", namespace)
    created = kube.create(ROLLOUTS, namespace, doc)
    state = STATES[which]
    status = _status(state, int(created["metadata"]["generation"]))
    name = doc["metadata"]["name"]
    # JSON patch, not merge patch: a merge patch would read the nulls as "delete this key".
    kube.json_patch(
        ROLLOUTS, namespace, name, [{"op": "add", "path": "/status", "value": status}], subresource="status"
    )
    stored = kube.get(ROLLOUTS, namespace, name)
    assert stored["status"] == status
    assert stored["spec"] == doc["spec"], "a status write must not touch the spec"
    assert persisting.load(stored["status"]["state"]) == state


@pytest.mark.kube
def test_the_status_is_not_writable_through_the_main_resource(
    rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str
) -> None:
    created = _create(kube, namespace, copy.deepcopy(KITCHEN_SINK))
    name = created["metadata"]["name"]
    kube.merge_patch(ROLLOUTS, namespace, name, {"status": {"phase": "Promoted"}})
    assert "status" not in kube.get(ROLLOUTS, namespace, name)


@pytest.mark.kube
def test_an_invalid_status_is_rejected(rollouts_crd: dict[str, Any], kube: KubeClient, namespace: str) -> None:
    name = _create(kube, namespace, copy.deepcopy(KITCHEN_SINK))["metadata"]["name"]
    bad = {**_status(STATES["fresh"], 1), "canaryWeight": 101}
    with pytest.raises(KubeInvalid, match="canaryWeight"):
        kube.json_patch(
            ROLLOUTS, namespace, name, [{"op": "add", "path": "/status", "value": bad}], subresource="status"
        )
