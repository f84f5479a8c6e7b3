"""Fixtures for the informer and lease tests: a second control plane that writes an audit log
(to count the requests a client makes) and serves watches from etcd (``--watch-cache=false``), so
that compacting etcd makes an old resourceVersion expire at once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.kube import CRD_FIXTURES, ControlPlane, ControlPlaneError
from tests.kube.support import AUDIT_POLICY


@dataclass(frozen=True)
class AuditedPlane:
    plane: ControlPlane
    audit_log: Path


@pytest.fixture(scope="session")
def audited_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedPlane]:
    where = tmp_path_factory.mktemp("audit")
    (where / "policy.yaml").write_text(AUDIT_POLICY)
    log = where / "audit.log"
    plane = ControlPlane(
        name="rollout-audited",
        apiserver_args=[
            "--watch-cache=false",
            f"--audit-policy-file={where / 'policy.yaml'}",
            f"--audit-log-path={log}",
        ],
    )
    try:
        plane.start()
    except ControlPlaneError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        plane.apply_crds(sorted(CRD_FIXTURES.glob("*.yaml")))
        yield AuditedPlane(plane, log)
    finally:
        plane.stop()
