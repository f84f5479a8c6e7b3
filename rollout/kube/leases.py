"""``coordination.k8s.io/v1`` Leases: read, create and replace (conditional on resourceVersion).

Owns the Lease wire format only; who may hold it and when is ``rollout.runtime.leadership``'s.
One attempt per call, errors translated into ``rollout.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from rollout.kube.client import KubeClient

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    duration_seconds: int
    renew_time: datetime | None
    acquire_time: datetime | None
    transitions: int
    resource_version: str


class LeaseStore:
    def __init__(self, client: KubeClient, namespace: str, name: str) -> None:
        self.client, self.namespace, self.name = client, namespace, name
        self._api = k8s.CoordinationV1Api(client.api_client)
        self._what = f"leases.coordination.k8s.io {namespace}/{name}"

    def _plain(self, raw: object) -> dict[str, Any]:
        plain: dict[str, Any] = self.client.api_client.sanitize_for_serialization(raw)  # type: ignore[no-untyped-call]
        return plain

    def get(self) -> LeaseRecord:
        raw = self.client.call(
            "get",
            self._what,
            lambda: self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.client.timeout),
        )
        return _record(self._plain(raw))

    def create(self, holder: str, duration: int, now: datetime) -> LeaseRecord:
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": _spec(holder, duration, now, now, 0),
        }
        raw = self.client.call(
            "create",
            self._what,
            lambda: self._api.create_namespaced_lease(self.namespace, body, _request_timeout=self.client.timeout),
        )
        return _record(self._plain(raw))

    def replace(
        self,
        previous: LeaseRecord,
        holder: str,
        duration: int,
        now: datetime,
        *,
        acquired: datetime,
        transitions: int,
    ) -> LeaseRecord:
        """Write the lease only if it is still at ``previous.resource_version`` (else ``KubeConflict``)."""
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": previous.resource_version,
            },
            "spec": _spec(holder, duration, acquired, now, transitions),
        }
        raw = self.client.call(
            "update",
            self._what,
            lambda: self._api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.client.timeout
            ),
        )
        return _record(self._plain(raw))


def _spec(holder: str, duration: int, acquired: datetime, renewed: datetime, transitions: int) -> dict[str, Any]:
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": acquired.astimezone(UTC).strftime(_FMT),
        "renewTime": renewed.astimezone(UTC).strftime(_FMT),
        "leaseTransitions": transitions,
    }


def _record(raw: dict[str, Any]) -> LeaseRecord:
    spec = raw.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        renew_time=_time(spec.get("renewTime")),
        acquire_time=_time(spec.get("acquireTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(raw.get("metadata", {}).get("resourceVersion", "")),
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
