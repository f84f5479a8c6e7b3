"""Names that coexist with Argo Rollouts: with a CRD carrying Argo's real names installed next to
ours on the real API server, discovery (what kubectl resolves names with) maps our short name and
category to ours only and Argo's ``ro`` to Argo's only, and both kinds are served side by side.

The Argo CRD here is a stand-in written from Argo Rollouts' published names (group ``argoproj.io``,
kind ``Rollout``, plural ``rollouts``, short name ``ro``, no categories) with an open schema; only
its names matter for this test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.kube.crd import CATEGORIES, GROUP, SHORT_NAMES, crd_manifest
from tests.harness.kube import ControlPlane, ControlPlaneError

pytestmark = pytest.mark.kube

_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ARGO = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rollouts.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "scope": "Namespaced",
        "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts", "singular": "rollout",
                  "shortNames": ["ro"]},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}  # fmt: skip


def test_our_short_names_and_categories_are_not_argo_rollouts() -> None:
    names = crd_manifest()["spec"]["names"]
    assert (names["kind"], names["plural"]) == ("Rollout", "rollouts")  # kept: the group tells them apart
    assert "ro" not in names["shortNames"]
    assert names["shortNames"] == list(SHORT_NAMES)
    assert names["categories"] == list(CATEGORIES)
    assert "all" not in CATEGORIES  # `kubectl get all` stays about workloads


@pytest.fixture(scope="module")
def both(control_plane: ControlPlane) -> Iterator[None]:
    ours = crd_manifest()
    for crd in (ours, ARGO):
        control_plane.request("POST", _CRDS, crd, ok=(201, 409))
    deadline = time.monotonic() + 30
    while not all(_resource(control_plane, g, "rollouts") for g in (GROUP, "argoproj.io")):
        assert time.monotonic() < deadline, "both Rollout kinds not served after 30s"
        time.sleep(0.1)
    yield
    control_plane.request("DELETE", f"{_CRDS}/rollouts.argoproj.io", ok=(200, 202, 404))


def _resource(plane: ControlPlane, group: str, plural: str) -> dict[str, Any] | None:
    groups = plane.request("GET", "/apis")["groups"]
    match = [g for g in groups if g["name"] == group]
    if not match:
        return None
    version = match[0]["preferredVersion"]["groupVersion"]
    for resource in _served(plane, f"/apis/{version}"):
        if resource["name"] == plural:
            return dict(resource)
    return None


def _all_resources(plane: ControlPlane) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for group in plane.request("GET", "/apis")["groups"]:
        version = group["preferredVersion"]["groupVersion"]
        out += [(version, r) for r in _served(plane, f"/apis/{version}") if "/" not in r["name"]]
    out += [("v1", r) for r in _served(plane, "/api/v1") if "/" not in r["name"]]
    return out


def _served(plane: ControlPlane, path: str) -> list[dict[str, Any]]:
    """The resources of one group version; none while it is not served yet (discovery catches up)."""
    try:
        return list(plane.request("GET", path)["resources"])
    except ControlPlaneError:
        return []


def test_discovery_resolves_each_name_to_one_kind(control_plane: ControlPlane, both: None) -> None:
    resources = _all_resources(control_plane)

    def owners(short: str) -> set[str]:
        return {v for v, r in resources if short in (r.get("shortNames") or [])}

    def members(category: str) -> set[str]:
        return {f"{r['name']}.{v}" for v, r in resources if category in (r.get("categories") or [])}

    ours = f"{GROUP}/v1alpha1"
    for short in SHORT_NAMES:
        assert owners(short) == {ours}
    assert owners("ro") == {"argoproj.io/v1alpha1"}
    for category in CATEGORIES:
        assert members(category) == {f"rollouts.{ours}"}
    rollouts = {v for v, r in resources if r["name"] == "rollouts"}
    assert rollouts == {ours, "argoproj.io/v1alpha1"}  # `kubectl get rollouts.delivery.rollout.dev` is needed
