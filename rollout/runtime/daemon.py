"""``rollout run``: wires settings to adapters, the reconciler, the scheduler, leader election, the
watch, the policy directory and the HTTP server, and shuts them down gracefully on SIGTERM.

Owns process lifetime only. Shutdown order: stop scheduling new work, let the reconcile in
flight finish its write (bounded by ``shutdown_grace_seconds``), stop the watch and the server,
then release the lease so a standby takes over at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rollout.core.states import Command
from rollout.errors import KubeError
from rollout.kube.client import KubeClient
from rollout.kube.events import EventRecorder
from rollout.kube.leases import LeaseStore
from rollout.kube.rollouts import COMMANDS_ANNOTATION, RolloutObjects
from rollout.metrics.prometheus import PrometheusProvider
from rollout.notifiers.base import Notifier
from rollout.notifiers.null import NullNotifier
from rollout.notifiers.slack import SlackNotifier
from rollout.policy.models import Rollout
from rollout.routers.base import Router
from rollout.routers.building import router_for
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.interacting import SlackInteractions
from rollout.runtime.leadership import LeaseElector
from rollout.runtime.reconciling import Capacity, Reconciler
from rollout.runtime.retrying import KUBE_WRITES, METRICS_READS
from rollout.runtime.scheduling import RolloutScheduler
from rollout.runtime.serving import DaemonServer, Interactions
from rollout.runtime.syncing import PolicyDirectory
from rollout.runtime.telemetry import Telemetry
from rollout.runtime.watching import RolloutWatcher
from rollout.settings import Settings

log = logging.getLogger("rollout.daemon")


def kube_client(settings: Settings) -> KubeClient:
    """From the configured kubeconfig, else in-cluster, else ``$KUBECONFIG`` / ``~/.kube/config``."""
    kube = settings.kube
    if kube.kubeconfig is not None:
        client = KubeClient.from_kubeconfig(str(kube.kubeconfig), context=kube.context)
    else:
        try:
            client = KubeClient.in_cluster()
        except KubeError:
            from_env = (settings.kubeconfig_env or "").split(os.pathsep)[0]
            default = Path(from_env) if from_env else Path.home() / ".kube" / "config"
            client = KubeClient.from_kubeconfig(str(default), context=kube.context)
    client.timeout = kube.timeout_seconds
    return client


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = kube_client(settings)
        self.identity = settings.leader.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.telemetry = Telemetry()
        self.objects = RolloutObjects(self.client)
        self.elector: LeaseElector | None = None
        if settings.leader.enabled:
            lead = settings.leader
            self.elector = LeaseElector(
                LeaseStore(self.client, lead.namespace, lead.name),
                self.identity,
                lease_seconds=lead.lease_seconds,
                renew_deadline_seconds=lead.renew_deadline_seconds,
                retry_seconds=lead.retry_seconds,
                on_change=lambda leader: self.telemetry.leader.set(int(leader)),
            )
        guard = self.elector.guard if self.elector else _always
        is_leader = self.elector.is_leader if self.elector else (lambda: True)
        self.provider = PrometheusProvider(settings.prometheus, call=METRICS_READS.call)
        self.events = EventRecorder(self.client, instance=self.identity)
        self.reconciler = Reconciler(
            objects=self.objects,
            router_for=self._router_for(guard),
            batcher=MetricsBatcher(self.provider),
            notifier=self._notifier(),
            events=self.events,
            guard=guard,
            capacity=Capacity(settings.max_concurrent_rollouts),
            telemetry=self.telemetry,
            clock=_now,
            default_interval=settings.default_interval_seconds,
        )
        self.policies: PolicyDirectory | None = None
        if settings.policy_dir is not None:
            self.policies = PolicyDirectory(
                settings.policy_dir,
                self.objects,
                events=self.events,
                guard=guard,
                clock=_now,
                on_applied=self._applied,
            )
        self.scheduler = RolloutScheduler(
            reconciler=self.reconciler,
            objects=self.objects,
            namespaces=settings.watch_namespaces,
            is_leader=is_leader,
            resync_seconds=settings.resync_seconds,
            default_interval=settings.default_interval_seconds,
            workers=settings.workers,
            policy_sync=self.policies.sync if self.policies else None,
            policy_poll_seconds=settings.policy_poll_seconds,
        )
        self._seen: dict[str, tuple[Any, ...]] = {}
        self.watcher = RolloutWatcher(self.client, settings.watch_namespaces, self._changed)
        self.server = DaemonServer(
            settings.host,
            settings.port,
            registry=self.telemetry.registry,
            healthy=self._healthy,
            ready=self._ready,
            interactions=self._interactions(),
            interactions_host=settings.interactions_host,
            interactions_port=settings.interactions_port,
        )
        self._stop = threading.Event()

    def _notifier(self) -> Notifier:
        slack = self.settings.slack
        if slack.bot_token is None:
            return NullNotifier()
        return SlackNotifier.connect(
            slack.bot_token.get_secret_value(),
            base_url=slack.base_url,
            timeout=slack.timeout_seconds,
            default_channel=slack.default_channel,
            channel_for=self._channel_for,
            links=slack.links,
        )

    def _channel_for(self, key: str) -> str | None:
        policy = self.reconciler.policies.get(key)
        target = policy.spec.notifications.slack if policy is not None else None
        return target.channel if target is not None else None

    def _approvers_for(self, key: str) -> list[str] | None:
        policy = self.reconciler.policies.get(key)
        slack = policy.spec.approvals.slack if policy is not None else None
        return list(slack.approvers) if slack is not None else None

    def _interactions(self) -> Interactions | None:
        secret = self.settings.slack.signing_secret
        if secret is None:
            return None

        def submit(namespace: str, name: str, command: Command) -> None:
            KUBE_WRITES.call(lambda: self.objects.add_command(namespace, name, command))
            self.scheduler.wake(f"{namespace}/{name}")

        return SlackInteractions(secret.get_secret_value(), submit, self._approvers_for, _now).handle

    def _router_for(self, guard: Any) -> Any:
        def build(policy: Rollout) -> Router:
            return router_for(policy, self.client, guard)

        return build

    def _applied(self, namespace: str, name: str) -> None:
        self.scheduler.ensure(namespace, name, self.settings.default_interval_seconds, now=True)

    def _changed(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        """Wake a rollout when its spec or its commands change (not on our own status writes)."""
        meta = obj.get("metadata") or {}
        signature = (meta.get("generation"), (meta.get("annotations") or {}).get(COMMANDS_ANNOTATION))
        key = f"{namespace}/{name}"
        if self._seen.get(key) == signature:
            return
        first = key not in self._seen
        self._seen[key] = signature
        if not first:
            self.scheduler.wake(key)

    def _healthy(self) -> tuple[bool, str]:
        return (not self._stop.is_set(), "ok" if not self._stop.is_set() else "shutting down")

    def _ready(self) -> tuple[bool, str]:
        last = self.scheduler.last_resync_ok
        if last is None:
            return False, "waiting for the first list of Rollouts"
        age = (datetime.now(UTC) - last).total_seconds()
        if age > 3 * self.settings.resync_seconds + 10:
            return False, f"the last successful list of Rollouts was {age:.0f}s ago"
        role = "leader" if self.elector is None or self.elector.is_leader() else "standby"
        return True, f"ok ({role})"

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.server.start()
            log.info(
                "started",
                extra={
                    "event": "rollout.started",
                    "identity": self.identity,
                    "port": self.server.port,
                    "interactions_port": self.server.interactions_port or "",
                    "namespaces": ",".join(self.settings.watch_namespaces) or "all",
                    "policy_dir": str(self.settings.policy_dir or ""),
                },
            )
            if self.elector is not None:
                self.elector.start()
            self.scheduler.start()
            self.watcher.start()
            self._stop.wait()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("stopping", extra={"event": "rollout.stopping", "signal": signal.Signals(signum).name})
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        self._stop.set()
        self.scheduler.shutdown(timeout=self.settings.shutdown_grace_seconds)
        self.watcher.stop()
        self.server.stop()
        if self.elector is not None:
            self.elector.stop(release=True)
        self.provider.close()
        self.client.close()
        log.info("stopped", extra={"event": "rollout.stopped", "identity": self.identity})


def _always() -> None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)
