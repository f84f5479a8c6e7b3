"""Kubernetes Events on Rollout objects (``events.k8s.io/v1``), so ``kubectl describe rollout`` and
``kubectl get events`` show what the daemon decided and why.

Owns the Event wire format: names that fit for 253-character Rollout names, notes clipped to the
API's 1 kB, and the ``series`` (count and last time seen) of an Event whose cause repeats, so a
repeating cause is one Event with a count, as Kubernetes' own recorders do. One attempt per call;
a failure to record an event is reported to the caller, who logs it and carries on.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client as k8s

from rollout.kube.client import KubeClient
from rollout.kube.rollouts import ROLLOUTS

COMPONENT = "rollout-daemon"
_NAME_BYTES = 253  # an Event's name is a DNS subdomain, like the Rollout's own
_NOTE_BYTES = 1024  # events.k8s.io/v1 limits ``note`` to 1 kB


def event_name(name: str, reason: str, message: str, now: datetime) -> str:
    """``<rollout name>.<10-hex digest>``, the name cut short (and cut back to a letter or digit) when
    the whole would exceed 253 characters: valid, deterministic, and unique per (name, reason,
    message, time) because the digest covers the full name."""
    digest = hashlib.sha256(f"{name}\0{reason}\0{message}\0{now.isoformat()}".encode()).hexdigest()[:10]
    room = _NAME_BYTES - 1 - len(digest)
    prefix = name if len(name) <= room else name[:room].rstrip("-.")
    return f"{prefix}.{digest}"


def _micro_time(now: datetime) -> str:
    """An RFC 3339 MicroTime. The client parses the body into its model and writes times back with
    ``isoformat()``, which drops the fraction when it is 0 and the API server then refuses the Event:
    such an instant is moved by one microsecond."""
    if now.microsecond == 0:
        now += timedelta(microseconds=1)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clip_utf8(text: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


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
    ) -> str:
        """Record one Event regarding the Rollout ``namespace/name`` (``reason`` is CamelCase);
        returns the Event's name (for ``repeat``)."""
        event = event_name(name, reason, message, now)
        body: Any = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": event, "namespace": namespace},
            "eventTime": _micro_time(now),
            "reportingController": f"delivery.rollout.dev/{COMPONENT}",
            "reportingInstance": self.instance[:128],
            "action": reason,
            "reason": reason,
            "type": "Warning" if warning else "Normal",
            "note": _clip_utf8(message, _NOTE_BYTES),
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
        return event

    def repeat(self, namespace: str, event: str, *, regarding: str, count: int, now: datetime) -> None:
        """The Event ``event`` (regarding the Rollout ``regarding``) happened ``count`` times in all
        (at least 2), the last at ``now``."""
        body = {"series": {"count": max(count, 2), "lastObservedTime": _micro_time(now)}}
        self.client.call(
            "patch",
            f"events.k8s.io event {namespace}/{event} for {ROLLOUTS.name} {namespace}/{regarding}",
            lambda: self._api.patch_namespaced_event(event, namespace, body, _request_timeout=self.client.timeout),
        )
