"""``coordination.k8s.io/v1`` Leases: read, create and replace (conditional on resourceVersion).

Owns the Lease wire format and two ways to read it: ``LeaseStore`` GETs the lease on every read;
``LeaseCache`` reads from an informer over the namespace's Leases (one LIST, then a WATCH), so
reads cost no request, a change is seen as soon as the watch delivers it, and every write's
answer goes into the cache at once. Who may hold a lease and when is
``rollout.runtime.leadership``'s business. One attempt per call; errors translated into
``rollout.errors`` (``KubeConflict`` when a write lost a race, ``KubeNotFound``, ``KubeError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rollout.errors import KubeError, KubeNotFound
from rollout.kube.client import KubeClient, Resource
from rollout.kube.informers import Informer
from rollout.kube.watches import KubeListWatch

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of one Lease as read or written, with the resourceVersion it had."""

    name: str
    holder: str
    duration_seconds: int
    renew_time: datetime | None
    acquire_time: datetime | None
    transitions: int
    resource_version: str


class Leases(Protocol):
    """The Lease objects of one namespace, by name: what an elector reads and writes."""

    namespace: str

    def read(self, name: str) -> LeaseRecord | None:
        """The lease, or ``None`` when it does not exist."""
        ...

    def create(self, name: str, holder: str, duration: int, now: datetime) -> LeaseRecord:
        """Create the lease held by ``holder`` (``KubeConflict`` when it already exists)."""
        ...

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
        ...

    def subscribe(self, wake: Callable[[], None]) -> bool:
        """Call ``wake`` after any lease changes; returns False when this store cannot tell (it polls)."""
        ...


class LeaseStore:
    """Leases read with one GET each; ``name`` is the lease a single-lease elector uses.

    It goes through the custom-objects API (plain JSON both ways): the typed ``CoordinationV1Api``
    turns a dict into a ``V1Lease`` model and back, writing a time with no microseconds in a form
    the API server rejects.
    """

    def __init__(self, client: KubeClient, namespace: str, name: str = "") -> None:
        self.client, self.namespace, self.name = client, namespace, name

    def read(self, name: str) -> LeaseRecord | None:
        try:
            return record_of(self.client.get(LEASES, self.namespace, name))
        except KubeNotFound:
            return None

    def create_raw(self, name: str, holder: str, duration: int, now: datetime) -> dict[str, Any]:
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": _spec(holder, duration, now, now, 0),
        }
        return self.client.create(LEASES, self.namespace, body)

    def replace_raw(
        self, previous: LeaseRecord, holder: str, duration: int, now: datetime, *, acquired: datetime, transitions: int
    ) -> dict[str, Any]:
        name, r = previous.name, LEASES
        body = {
            "apiVersion": r.api_version,
            "kind": r.kind,
            "metadata": {"name": name, "namespace": self.namespace, "resourceVersion": previous.resource_version},
            "spec": _spec(holder, duration, acquired, now, transitions),
        }
        answer = self.client.call(
            "update",
            f"{r.name} {self.namespace}/{name}",
            lambda: self.client.custom_api.replace_namespaced_custom_object(
                r.group, r.version, self.namespace, r.plural, name, body, _request_timeout=self.client.timeout
            ),
        )
        if not isinstance(answer, dict):
            raise KubeError(
                f"cannot update {r.name} {self.namespace}/{name}: unexpected answer {type(answer).__name__}"
            )
        return answer

    def create(self, name: str, holder: str, duration: int, now: datetime) -> LeaseRecord:
        return record_of(self.create_raw(name, holder, duration, now))

    def replace(
        self, previous: LeaseRecord, holder: str, duration: int, now: datetime, *, acquired: datetime, transitions: int
    ) -> LeaseRecord:
        return record_of(self.replace_raw(previous, holder, duration, now, acquired=acquired, transitions=transitions))

    def subscribe(self, wake: Callable[[], None]) -> bool:
        del wake
        return False


class LeaseCache:
    """Leases of one namespace read from an informer; ``start()`` it and ``wait_synced()`` before use.

    Reads before the first list raise ``KubeError``. Keep the namespace for the daemon's own
    leases: the informer caches every Lease in it. RBAC: list, watch, create and update on leases.
    """

    def __init__(self, client: KubeClient, namespace: str, *, informer: Informer | None = None) -> None:
        self.namespace = namespace
        self._writer = LeaseStore(client, namespace)
        self.informer = informer or Informer(KubeListWatch(client, LEASES), namespaces=[namespace])

    def start(self) -> None:
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self.informer.wait_synced(timeout)

    def read(self, name: str) -> LeaseRecord | None:
        if not self.informer.has_synced():
            raise KubeError(f"leases in namespace {self.namespace} not listed yet")
        raw = self.informer.get(self.namespace, name)
        return record_of(raw) if raw is not None else None

    def create(self, name: str, holder: str, duration: int, now: datetime) -> LeaseRecord:
        raw = self._writer.create_raw(name, holder, duration, now)
        self.informer.apply(raw)
        return record_of(raw)

    def replace(
        self, previous: LeaseRecord, holder: str, duration: int, now: datetime, *, acquired: datetime, transitions: int
    ) -> LeaseRecord:
        raw = self._writer.replace_raw(previous, holder, duration, now, acquired=acquired, transitions=transitions)
        self.informer.apply(raw)
        return record_of(raw)

    def subscribe(self, wake: Callable[[], None]) -> bool:
        self.informer.add_handlers(
            on_add=lambda obj: wake(), on_update=lambda old, new: wake(), on_delete=lambda obj: wake()
        )
        return True


def _spec(holder: str, duration: int, acquired: datetime, renewed: datetime, transitions: int) -> dict[str, Any]:
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": acquired.astimezone(UTC).strftime(_FMT),
        "renewTime": renewed.astimezone(UTC).strftime(_FMT),
        "leaseTransitions": transitions,
    }


def record_of(raw: dict[str, Any]) -> LeaseRecord:
    """A ``LeaseRecord`` from a Lease as JSON (camelCase, times as RFC 3339 strings)."""
    spec = raw.get("spec") or {}
    meta = raw.get("metadata") or {}
    return LeaseRecord(
        name=str(meta.get("name", "")),
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        renew_time=_time(spec.get("renewTime")),
        acquire_time=_time(spec.get("acquireTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
