"""Kubernetes Events on Rollout objects (``events.k8s.io/v1``), so ``kubectl describe rollout`` and
``kubectl get events`` show what the daemon decided and why.

Owns the Event wire format and the series count of a repeated event. One attempt per call; a
failure to record an event is reported to the caller, who logs it and carries on.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from kubernetes import client as k8s

from rollout.kube.client import KubeClient
from rollout.kube.rollouts import ROLLOUTS

COMPONENT = "rollout-daemon"


class EventRecorder:
    """Creates Events regarding Rollouts; ``instance`` names this replica (e.g. the pod name)."""

    def __init__(self, client: KubeClient, *, instance: str) -> None:
        self.client = client
        self.instance = instance
        self._api = k8s.EventsV1Api(client.api_client)

    def record(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None,
        reason: str,
        message: str,
        warning: bool,
        now: datetime,
    ) -> None:
        """Record one Event regarding the Rollout ``namespace/name`` (``reason`` is CamelCase)."""
        digest = hashlib.sha256(f"{name}{reason}{message}{now.isoformat()}".encode()).hexdigest()[:10]
        body: Any = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{digest}", "namespace": namespace},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": f"delivery.rollout.dev/{COMPONENT}",
            "reportingInstance": self.instance[:128],
            "action": reason,
            "reason": reason,
            "type": "Warning" if warning else "Normal",
            "note": message[:1024],
            "regarding": {
                "apiVersion": ROLLOUTS.api_version,
                "kind": ROLLOUTS.kind,
                "namespace": namespace,
                "name": name,
                **({"uid": uid} if uid else {}),
            },
        }
        self.client.call(
            "create",
            f"events.k8s.io event for {ROLLOUTS.name} {namespace}/{name}",
            lambda: self._api.create_namespaced_event(namespace, body, _request_timeout=self.client.timeout),
        )
