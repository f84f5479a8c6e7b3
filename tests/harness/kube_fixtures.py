"""Pytest fixtures over ``tests.harness.kube``: the session control plane with the routers' CRD
fixtures, an optional second one with the real upstream CRDs, admin clients and throwaway namespaces.

Owns fixture scopes and clean-up. A missing binary fails the test loudly with the build command;
it never skips. Only the upstream-CRD fixture skips, when ``../shared/crds`` does not exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rollout.kube.client import KubeClient
from tests.harness.kube import CRD_FIXTURES, ControlPlane, ControlPlaneError, upstream_crds_dir

_UPSTREAM_FILES = (
    "appmesh.k8s.aws_gatewayroutes.yaml",
    "appmesh.k8s.aws_virtualrouters.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)
_counter = itertools.count()


def _start(name: str) -> ControlPlane:
    try:
        return ControlPlane(name=name).start()
    except ControlPlaneError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A real etcd + kube-apiserver (RBAC) with the CRD fixtures of ``tests/fixtures/crds``."""
    plane = _start("rollout-test")
    try:
        plane.apply_crds(sorted(CRD_FIXTURES.glob("*.yaml")))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def upstream_control_plane() -> Iterator[ControlPlane]:
    """A second control plane with the real upstream App Mesh and Gateway API CRDs (same names
    as the fixtures, hence its own API server)."""
    crds = upstream_crds_dir()
    if crds is None:
        pytest.skip("../shared/crds (the upstream CRDs) is not present next to this clone")
    plane = _start("rollout-upstream")
    try:
        plane.apply_crds([crds / f for f in _UPSTREAM_FILES])
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[KubeClient]:
    """An admin ``KubeClient`` on the session control plane."""
    client = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> str:
    """A fresh namespace per test (namespaces are never deleted: no controller-manager finalises them)."""
    name = f"t{next(_counter)}"
    control_plane.create_namespace(name)
    return name
