"""``rollout run``: wires settings to adapters, caches, leadership, the reconciler, the scheduler,
the metrics batches, Slack (``chatting``) and the HTTP servers, and shuts them down gracefully on SIGTERM.

Owns process lifetime only. Start-up: the HTTP servers, the informers (Rollouts, RolloutCommands,
routes) until they have listed once, the shard leases, the Event sender, Slack's delivery (and its
Socket Mode connection, held by the replica holding shard 0), then scheduling. Every rollout belongs
to one shard (``leader.shards``; one by default) and only the replica holding that shard's Lease
reconciles it and writes for it. Shutdown order: stop scheduling new work, let reconciles in flight
finish their writes (bounded by ``shutdown_grace_seconds``), send queued Events, close the Socket
Mode connection and flush queued notifications, stop the caches and servers, then release the
leases so another replica takes over at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from rollout.core.states import Command
from rollout.errors import KubeError, NotLeader
from rollout.kube.access import AccessReviews, admission_policy_installed, whoami
from rollout.kube.client import KubeClient
from rollout.kube.commands import POLICY_NAME, ROLLOUT_COMMANDS, CommandObjects, command_body
from rollout.kube.events import EventRecorder
from rollout.kube.informers import Informer
from rollout.kube.leases import LeaseCache
from rollout.kube.rollouts import ROLLOUTS, RolloutObjects
from rollout.kube.stores import CachedReader, CommandStore, RolloutsByRoute, RolloutStore, key_of
from rollout.kube.watches import KubeListWatch
from rollout.metrics.prometheus import PrometheusProvider
from rollout.policy.models import RouterSpec
from rollout.routers.base import Router
from rollout.routers.building import router_for
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from rollout.routers.httproute import HTTP_ROUTES
from rollout.routers.virtualrouter import VIRTUAL_ROUTERS
from rollout.runtime.acting import Actor
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.chatting import Chat
from rollout.runtime.gathering import vet
from rollout.runtime.inmemory import AlwaysLeader
from rollout.runtime.leadership import ShardedElector
from rollout.runtime.reconciling import Capacity, Reconciler
from rollout.runtime.recording import EventQueue
from rollout.runtime.retrying import KUBE_WRITES, METRICS_READS
from rollout.runtime.scheduling import Periodic, RolloutScheduler, SchedulerStats
from rollout.runtime.serving import DaemonServer
from rollout.runtime.syncing import PolicyDirectory
from rollout.runtime.telemetry import Telemetry
from rollout.runtime.vouching import Vouching
from rollout.runtime.waking import Waker
from rollout.settings import Settings

log = logging.getLogger("rollout.daemon")
ROUTES = (GATEWAY_ROUTES, VIRTUAL_ROUTERS, HTTP_ROUTES)


def kube_client(settings: Settings) -> KubeClient:
    """From the configured kubeconfig, else in-cluster, else ``$KUBECONFIG`` / ``~/.kube/config``;
    with a connection for every thread that may talk to the API server at once (the reconcile
    workers, a watch per informer and namespace, the lease, the Event sender and a few more)."""
    kube = settings.kube
    pool = settings.workers + 5 * max(1, len(settings.watch_namespaces)) + 8
    if kube.kubeconfig is not None:
        client = KubeClient.from_kubeconfig(str(kube.kubeconfig), context=kube.context, pool_size=pool)
    else:
        try:
            client = KubeClient.in_cluster(pool_size=pool)
        except KubeError:
            from_env = (settings.kubeconfig_env or "").split(os.pathsep)[0]
            default = Path(from_env) if from_env else Path.home() / ".kube" / "config"
            client = KubeClient.from_kubeconfig(str(default), context=kube.context, pool_size=pool)
    client.timeout = kube.timeout_seconds
    return client


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = kube_client(settings)
        self.identity = settings.leader.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.username = self.identity  # replaced by the API server's answer at start-up (whoami)
        self.groups: tuple[str, ...] = ()  # the groups it authenticated, recorded with Slack clicks
        self.telemetry = Telemetry()
        namespaces = list(settings.watch_namespaces)
        self.rollout_cache = Informer(KubeListWatch(self.client, ROLLOUTS), namespaces=namespaces)
        self.command_cache = Informer(KubeListWatch(self.client, ROLLOUT_COMMANDS), namespaces=namespaces)
        self.route_caches = {r: Informer(KubeListWatch(self.client, r), namespaces=namespaces) for r in ROUTES}
        self.reader = CachedReader(self.client, self.route_caches, namespaces=namespaces)
        self.rollouts = RolloutStore(self.rollout_cache, RolloutObjects(self.client))
        self.commands = CommandStore(self.command_cache, CommandObjects(self.client))
        self.by_route = RolloutsByRoute(self.rollout_cache)
        lead = settings.leader
        self.leases: LeaseCache | None = None
        self.elector: ShardedElector | None = None
        if lead.enabled:
            self.leases = LeaseCache(self.client, lead.namespace)
            self.elector = ShardedElector(
                self.leases,
                self.identity,
                name=lead.name,
                shards=lead.shards,
                expected_replicas=lead.expected_replicas,
                lease_seconds=lead.lease_seconds,
                renew_deadline_seconds=lead.renew_deadline_seconds,
                retry_seconds=lead.retry_seconds,
                on_change=self._shards_changed,
            )
        self.leadership: ShardedElector | AlwaysLeader = self.elector or AlwaysLeader()
        endpoints = {"default": settings.prometheus, **settings.prometheus_endpoints}
        self.provider = PrometheusProvider(endpoints, call=METRICS_READS.call)
        self.batcher = MetricsBatcher(
            self.provider,
            delay_seconds=settings.metrics_delay_seconds,
            on_batch=lambda keys: self.waker.batched(keys),  # noqa: PLW0108 - the waker is built later
            on_interval=self._batch_every,
        )
        self.chat = Chat(
            settings.slack,
            rollouts=RolloutObjects(self.client),
            submit=self._submit,
            approvers_for=self._approvers_for,
            known=lambda: list(self.reconciler.policies),
            rollout=self.rollout_cache.get,
            owns=self.leadership.owns,
            guard=self.leadership.guard,
            leading=self._leads_shard_zero,
            clock=_now,
            on_drop=lambda: self.telemetry.api_error("NotificationDropped"),
        )
        self.delivery = self.chat.delivery
        self.events = EventRecorder(self.client, instance=self.identity)
        self.event_queue = EventQueue(
            self.events, guard=self.leadership.guard, on_drop=lambda: self.telemetry.api_error("EventDropped")
        )
        self.vouching = Vouching(
            AccessReviews(self.client),
            lambda: admission_policy_installed(self.client, POLICY_NAME),
            required=settings.commands.require_admission_policy,
            policy=POLICY_NAME,
        )
        self.actor = Actor(
            acknowledger=self.commands,
            notifications=self.delivery,
            events=self.event_queue,
            guard=self.leadership.guard,
            telemetry=self.telemetry,
            identity=self.identity,
        )
        self.reconciler = Reconciler(
            rollouts=self.rollouts,
            commands=self.commands,
            router_for=self._router_for,
            readings=self.batcher,
            actor=self.actor,
            leadership=self.leadership,
            capacity=Capacity(settings.max_concurrent_rollouts),
            clock=_now,
            identity=self.username,
            allowed=self.vouching.allowed,
            commands_verified=self.vouching.verified,
            vet=vet(settings.tenancy.cross_namespace, tuple(endpoints), settings.prometheus_policy_addresses),
            retry_seconds=settings.default_interval_seconds,
            flush_seconds=settings.status_flush_seconds,
            reconcile_seconds=self.telemetry.reconciled,
        )
        self.scheduler = RolloutScheduler(
            self.reconciler.reconcile,
            workers=settings.workers,
            stats=SchedulerStats(
                lag=self.telemetry.scheduled,
                backlog=self.telemetry.set_backlog,
                coalesced=self.telemetry.coalesced,
                crashed=lambda: self.telemetry.reconcile_error("crash"),
            ),
        )
        self.waker = Waker(
            self.scheduler,
            owns=self.leadership.owns,
            rollout=self.rollout_cache.get,
            by_route=self.by_route,
            forget=self.reconciler.forget,
            handled=self.chat.answers.handled,
        )
        self.periodic = Periodic()
        self.policies: PolicyDirectory | None = None
        if settings.policy_dir is not None:
            self.policies = PolicyDirectory(
                settings.policy_dir,
                RolloutObjects(self.client),
                events=self.events,
                guard=self._guard_policies,
                clock=_now,
                on_applied=lambda ns, name: self.waker.wake(f"{ns}/{name}"),
            )
        self.server = DaemonServer(
            settings.host,
            settings.port,
            registry=self.telemetry.registry,
            healthy=self._healthy,
            ready=self._ready,
            interactions=self.chat.http,
            interactions_host=settings.interactions_host,
            interactions_port=settings.interactions_port,
        )
        self._stop = threading.Event()
        self._handlers()

    # --- wiring ------------------------------------------------------------------------------

    def _approvers_for(self, key: str) -> list[str] | None:
        policy = self.reconciler.policies.get(key)
        slack = policy.spec.approvals.slack if policy is not None else None
        return list(slack.approvers) if slack is not None else None

    def _submit(self, namespace: str, name: str, command: Command) -> str:
        """A verified Slack click becomes a RolloutCommand recorded by the daemon itself (its name)."""
        rollout = self.rollout_cache.get(namespace, name)
        uid = str(((rollout or {}).get("metadata") or {}).get("uid") or "") or None
        body = command_body(
            namespace,
            name,
            command.kind,
            by=self.username,
            groups=self.groups,  # the admission policy wants the creator's own groups
            reason=command.reason,
            ref=command.ref,
            slack_user=command.by.removeprefix("slack:"),
            slack_groups=command.slack_groups,
            rollout_uid=uid,
        )
        created = KUBE_WRITES.call(lambda: self.commands.objects.create(body))
        self.waker.wake(f"{namespace}/{name}")
        return created.name

    def _leads_shard_zero(self) -> bool:
        """The replica holding shard 0 holds the Slack Socket Mode connection (and applies policy files)."""
        return self.elector is None or self.elector.holds(0)

    def _router_for(self, spec: RouterSpec, namespace: str, stable: str, canary: str, key: str) -> Router:
        """The run's router; its write guard checks, right before each PATCH, that this replica
        still holds the shard of rollout ``key``."""

        def guard() -> None:
            self.leadership.guard(key)

        return router_for(spec, namespace, stable, canary, client=self.client, guard=guard, reader=self.reader)

    def _guard_policies(self) -> None:
        """Policy files are applied by the replica that holds shard 0 only."""
        if self.elector is not None and not self.elector.holds(0):
            raise NotLeader(f"{self.identity} does not hold shard 0, which applies the policy directory")

    # --- reacting to the caches and the leases ------------------------------------------------

    def _handlers(self) -> None:
        w = self.waker
        self.rollout_cache.add_handlers(w.rollout_added, w.rollout_updated, w.rollout_deleted)
        self.command_cache.add_handlers(w.command_added, w.command_updated, None)
        for cache in self.route_caches.values():
            cache.add_handlers(None, w.route_updated, None)

    def _shards_changed(self, owned: frozenset[int]) -> None:
        shards = self.settings.leader.shards
        self.telemetry.set_leader(owned, shards=shards)
        log.warning("shards changed", extra={"event": "rollout.leadership", "shards": sorted(owned)})
        self.waker.wake_all(key_of(obj) for obj in self.rollout_cache.list())

    # --- periodic jobs -------------------------------------------------------------------------

    def _resync(self) -> None:
        """The safety net: every cached rollout this replica owns is scheduled; batches exist for
        every interval in use; gone rollouts are forgotten."""
        cached = {key_of(o) for o in self.rollout_cache.list()}
        self.waker.wake_all(cached - self.scheduler.known())
        for key in self.scheduler.known() - cached:
            self.scheduler.remove(key)
            self.reconciler.forget(key)
        for interval in self.batcher.intervals():
            self._batch_every(interval)

    def _batch_every(self, interval: float) -> None:
        """Collect the batch of ``interval`` at every multiple of it (from the first rollout that needs it)."""
        job = f"batch-{interval:g}"
        if not self.periodic.has(job):
            self.periodic.every(job, interval, functools.partial(self._collect, interval), aligned=True)

    def _collect(self, interval: float) -> None:
        try:
            self.batcher.collect(interval)
        except Exception:  # a failing batch must not kill the job; the next slot tries again
            log.exception("metrics batch failed", extra={"event": "rollout.batch-failed"})

    def _clean_commands(self) -> None:
        retention = timedelta(seconds=self.settings.commands.retention_seconds)
        for command in self.commands.expired(_now(), retention):
            if not self.leadership.owns(f"{command.namespace}/{command.rollout}"):
                continue
            with contextlib.suppress(KubeError):
                self.commands.objects.delete(command)

    def _sync_policies(self) -> None:
        if self.policies is None:
            return
        try:
            self.policies.sync()
        except NotLeader:
            return

    # --- health --------------------------------------------------------------------------------

    def _healthy(self) -> tuple[bool, str]:
        return (not self._stop.is_set(), "ok" if not self._stop.is_set() else "shutting down")

    def _ready(self) -> tuple[bool, str]:
        caches = {"rollouts": self.rollout_cache, "rolloutcommands": self.command_cache}
        waiting = [name for name, cache in caches.items() if not cache.has_synced()]
        if waiting:
            return False, f"waiting for the first list of {', '.join(waiting)}"
        if self.elector is None:
            return True, "ok (leader election off)"
        owned = sorted(self.elector.owned())
        return True, f"ok (shards {owned or 'none'} of {self.settings.leader.shards})"

    # --- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.server.start()
            try:
                me = whoami(self.client)
                self.username, self.groups = me.username, me.groups
                self.reconciler.identity = self.username
            except KubeError as e:
                log.warning("cannot tell who I am; Slack clicks are recorded as the replica", extra={"error": str(e)})
            for cache in (self.rollout_cache, self.command_cache, *self.route_caches.values()):
                cache.start()
            if self.leases is not None:
                self.leases.start()
                self.leases.wait_synced(30)
            self.vouching.check()
            self.event_queue.start()
            for warning in self.chat.warnings():
                log.warning(warning, extra={"event": "slack.settings"})
            self.chat.start()
            if self.elector is not None:
                self.elector.start()
            else:
                self.telemetry.set_leader(True)
            self.rollout_cache.wait_synced(60)
            self.command_cache.wait_synced(60)
            self.scheduler.start()
            s = self.settings
            self.periodic.every("resync", s.resync_seconds, self._resync)
            self.periodic.every("admission-policy", 60.0, self.vouching.check)
            self.periodic.every("commands-cleanup", 60.0, self._clean_commands)
            if self.policies is not None:
                self.periodic.every("policy-files", s.policy_poll_seconds, self._sync_policies)
            self.periodic.start()
            self._resync()
            self._sync_policies()
            log.info(
                "started",
                extra={
                    "event": "rollout.started",
                    "identity": self.identity,
                    "user": self.username,
                    "port": self.server.port,
                    "interactions_port": self.server.interactions_port or "",
                    "namespaces": ",".join(s.watch_namespaces) or "all",
                    "policy_dir": str(s.policy_dir or ""),
                    "shards": s.leader.shards if self.elector else 0,
                },
            )
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
        self.periodic.shutdown()
        self.scheduler.shutdown(timeout=self.settings.shutdown_grace_seconds)
        self.event_queue.stop(timeout=5.0)
        self.chat.stop(timeout=5.0)
        for cache in (self.rollout_cache, self.command_cache, *self.route_caches.values()):
            cache.stop()
        self.server.stop()
        if self.elector is not None:
            self.elector.stop(release=True)
        if self.leases is not None:
            self.leases.stop()
        self.provider.close()
        self.client.close()
        log.info("stopped", extra={"event": "rollout.stopped", "identity": self.identity})


def _now() -> datetime:
    return datetime.now(UTC)
