"""KubeClient against the real API server: JSON/merge patches with the right content types, the
status subresource, dry runs, and ApiException translated into typed errors naming verb and resource."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.errors import KubeConflict, KubeError, KubeForbidden, KubeInvalid, KubeNotFound
from rollout.kube.client import KubeClient, Resource
from tests.harness.kube import ControlPlane

pytestmark = pytest.mark.kube
ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
WEIGHT = "/spec/rules/0/backendRefs/0/weight"


def _route(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"rules": [{"backendRefs": [{"name": "a", "port": 80, "weight": 3}]}]},
    }


def test_patches_status_dry_run_and_list(kube: KubeClient, namespace: str) -> None:
    kube.create(ROUTES, namespace, _route("r"))
    dry = kube.json_patch(ROUTES, namespace, "r", [{"op": "replace", "path": WEIGHT, "value": 9}], dry_run=True)
    assert dry["spec"]["rules"][0]["backendRefs"][0]["weight"] == 9
    assert kube.get(ROUTES, namespace, "r")["spec"]["rules"][0]["backendRefs"][0]["weight"] == 3
    done = kube.json_patch(
        ROUTES,
        namespace,
        "r",
        [{"op": "test", "path": WEIGHT, "value": 3}, {"op": "replace", "path": WEIGHT, "value": 4}],
    )
    assert done["spec"]["rules"][0]["backendRefs"][0]["weight"] == 4
    kube.merge_patch(ROUTES, namespace, "r", {"metadata": {"labels": {"x": "y"}}})
    kube.merge_patch(ROUTES, namespace, "r", {"status": {"parents": []}}, subresource="status")
    assert kube.get(ROUTES, namespace, "r", subresource="status")["metadata"]["labels"] == {"x": "y"}
    assert [o["metadata"]["name"] for o in kube.list(ROUTES, namespace, label_selector="x=y")] == ["r"]
    assert namespace in {o["metadata"]["namespace"] for o in kube.list(ROUTES)}
    kube.delete(ROUTES, namespace, "r")
    with pytest.raises(KubeNotFound, match=rf"cannot get httproutes.gateway.networking.k8s.io {namespace}/r"):
        kube.get(ROUTES, namespace, "r")


def test_errors_are_typed_and_name_verb_and_resource(
    kube: KubeClient, namespace: str, control_plane: ControlPlane
) -> None:
    kube.create(ROUTES, namespace, _route("e"))
    with pytest.raises(KubeConflict, match=f"{WEIGHT} no longer has the value"):
        kube.json_patch(
            ROUTES,
            namespace,
            "e",
            [{"op": "test", "path": WEIGHT, "value": 99}, {"op": "replace", "path": WEIGHT, "value": 1}],
        )
    with pytest.raises(KubeInvalid, match="less than or equal to 1000000"):
        kube.json_patch(
            ROUTES,
            namespace,
            "e",
            [{"op": "test", "path": WEIGHT, "value": 3}, {"op": "replace", "path": WEIGHT, "value": 10**7}],
        )
    with pytest.raises(KubeConflict, match="already exists"):
        kube.create(ROUTES, namespace, _route("e"))
    with pytest.raises(KubeNotFound, match="patch httproutes"):
        kube.merge_patch(ROUTES, namespace, "missing", {"metadata": {"labels": {"a": "b"}}})
    reader = control_plane.service_account_kubeconfig(namespace, "ro", [])
    limited = KubeClient.from_kubeconfig(str(reader))
    try:
        with pytest.raises(KubeForbidden, match=r'forbidden to list httproutes.*cannot list resource "httproutes"'):
            limited.list(ROUTES, namespace)
    finally:
        limited.close()
    with pytest.raises(KubeError, match="cannot load kubeconfig"):
        KubeClient.from_kubeconfig(str(control_plane.kubeconfig) + ".missing")


def test_the_connection_pool_holds_as_many_connections_as_asked(control_plane: ControlPlane) -> None:
    """A daemon with more threads talking at once than the library's default pool (5 per CPU) keeps
    a connection for each, instead of a new TLS handshake for every request past the pool."""
    sized = KubeClient.from_kubeconfig(str(control_plane.kubeconfig), pool_size=37)
    plain = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    try:
        assert sized.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] == 37
        assert plain.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] != 37
    finally:
        sized.close()
        plain.close()
