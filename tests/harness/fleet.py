"""A fleet of N rollouts on the real local stack, and what it costs, for the scale benchmark and
the shard e2e test.

Owns one stack per run: a real kube-apiserver + etcd whose audit log records every request of the
daemon's own user (``rollout-daemon``, an admin with its own token: the harness's requests are not
counted), the synthetic exporter in its cheap ``exact`` mode with a pool of backend pairs that the
rollouts share round-robin (at most ``POOL`` pairs: Prometheus' series and each batched query stay
small at any N; the daemon's work per rollout is the same as with backends of its own), a real
Prometheus scraping it every 2 s, N GatewayRoutes and N Rollouts created before the daemon starts
(so every run starts in the same few ticks), and the daemon as a subprocess.

``Probe`` reads what the fleet costs at one instant, from outside the daemon except for the
scheduler's lag histogram: the daemon's and the API server's CPU seconds and resident memory
(``/proc``), Prometheus' own count of instant queries, the daemon's ``/metrics`` (lag histogram,
reconciles) and the audit log. It measures; it decides nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rollout.core.states import CommandKind
from rollout.kube.access import whoami
from rollout.kube.client import KubeClient
from rollout.kube.commands import ROLLOUT_COMMANDS, command_body
from rollout.kube.rollouts import ROLLOUTS
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.harness.audit import AuditedRequest, AuditLog
from tests.harness.exporter import TrafficExporter
from tests.harness.kube import CRD_FIXTURES, ControlPlane, ControlPlaneError, free_port
from tests.harness.prometheus import PrometheusServer
from tests.harness.stack import COMMANDS_CRD, ROLLOUT_CRD, Daemon, gateway_route, install_admission_policy

DAEMON_USER = "rollout-daemon"
NAMESPACE = "fleet"
POOL = 50  # backend pairs shared by the rollouts
CANARY_RPS, STABLE_RPS = 40.0, 200.0


def policy(i: int, interval: float, *, step_duration: str = "1h") -> dict[str, Any]:
    """Rollout ``r<i>``: 10% then 100%, judged every ``interval`` (error rate and p99 latency) on
    shared backends; with the default 1 h step it stays at 10% for the whole benchmark."""
    pair = i % POOL
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": f"r{i}", "namespace": NAMESPACE},
        "spec": {
            "router": {"gatewayRoute": {"name": f"route-{i}"}},
            "stable": f"svc{pair}-v1",
            "canary": f"svc{pair}-v2",
            "steps": [{"setWeight": 10}, {"setWeight": 100}],
            "analysis": {
                "interval": f"{interval:g}s",
                "stepDuration": step_duration,
                "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "250ms"}},
                "minRequests": 50,
                "sequential": {"alpha": 0.0001},
            },
            "progressDeadline": "4h",
        },
    }


class Fleet:
    """The stack with N rollouts; a context manager that stops everything it started."""

    def __init__(self, n: int, interval: float, *, users: Sequence[str] = (DAEMON_USER,)) -> None:
        self.n, self.interval = n, interval
        self.workdir = Path(tempfile.mkdtemp(prefix="rollout-fleet-"))
        self.audit = AuditLog(self.workdir, users)
        self.plane = ControlPlane(name="rollout-fleet", apiserver_args=self.audit.apiserver_args, users=users)
        self.exporter = TrafficExporter(seed=1, exact=True, tick_seconds=0.5, history_seconds=0)
        self.prometheus: PrometheusServer | None = None
        self.kube: KubeClient | None = None
        self.daemons: list[Daemon] = []

    def __enter__(self) -> Fleet:
        try:
            self.plane.start()
            self.plane.apply_crds([ROLLOUT_CRD, COMMANDS_CRD, *sorted(CRD_FIXTURES.glob("*.yaml"))])
            install_admission_policy(self.plane, daemon=DAEMON_USER)
            self.plane.create_namespace("rollout-system")
            self.plane.create_namespace(NAMESPACE)
            self.kube = KubeClient.from_kubeconfig(str(self.plane.kubeconfig))
            for pair in range(min(self.n, POOL)):
                for backend, rps in ((f"svc{pair}-v1", STABLE_RPS), (f"svc{pair}-v2", CANARY_RPS)):
                    self.exporter.set_backend(
                        backend, rps=rps, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120
                    )
            self.exporter.start()
            self.prometheus = PrometheusServer([self.exporter.address], scrape_interval="2s").start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for daemon in self.daemons:
            with contextlib.suppress(Exception):
                daemon.terminate(timeout=30)
        if self.prometheus is not None:
            self.prometheus.close()
        self.exporter.stop()
        if self.kube is not None:
            self.kube.close()
        self.plane.stop()
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- objects ----------------------------------------------------------------------------

    def create(self, make: Callable[[int], dict[str, Any]] | None = None) -> float:
        """Create the N routes and Rollouts (8 threads); returns the seconds it took."""
        kube = self.kube
        assert kube is not None
        make = make or (lambda i: policy(i, self.interval))

        def one(i: int) -> None:
            kube.create(GATEWAY_ROUTES, NAMESPACE, gateway_route(NAMESPACE, f"route-{i}", stable=f"svc{i % POOL}-v1"))
            kube.create(ROLLOUTS, NAMESPACE, make(i))

        began = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(self.n)))
        return time.monotonic() - began

    def phases(self) -> dict[str, int]:
        """How many rollouts are in each ``Phase@canaryWeight`` (one LIST as a table, as the
        harness's admin: printer columns only, cheap for the API server at any N)."""
        counts: dict[str, int] = {}
        path = f"/apis/{ROLLOUTS.group}/{ROLLOUTS.version}/namespaces/{NAMESPACE}/{ROLLOUTS.plural}"
        for row in self.plane.table(path):
            phase = f"{row.get('Phase') or 'none'}@{row.get('Canary') or 0}"
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def wait_phase(self, phase: str, *, timeout: float) -> float:
        """Wait until every rollout shows ``phase`` (``Phase@weight``); returns the seconds it took."""
        began, poll = time.monotonic(), max(3.0, self.n / 1000)
        counts: dict[str, int] = {}
        while True:
            with contextlib.suppress(OSError, ControlPlaneError):  # a busy API server: ask again
                counts = self.phases()
            if counts.get(phase, 0) == self.n:
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"not every rollout reached {phase} in {timeout:.0f}s: {counts}")
            time.sleep(poll)

    def command_all(self, kind: CommandKind) -> None:
        """One RolloutCommand per rollout, by the harness's admin (as ``kubectl``/the CLI would)."""
        kube = self.kube
        assert kube is not None
        me = whoami(kube)

        def one(i: int) -> None:
            body = command_body(NAMESPACE, f"r{i}", kind, by=me.username, groups=me.groups)
            kube.create(ROLLOUT_COMMANDS, NAMESPACE, body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(self.n)))

    # --- daemons ----------------------------------------------------------------------------

    def daemon(self, name: str = "daemon", *, user: str = DAEMON_USER, **extra: str) -> Daemon:
        assert self.prometheus is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env |= {
            "ROLLOUT_KUBE__KUBECONFIG": str(self.plane.user_kubeconfig(user)),
            "ROLLOUT_PROMETHEUS__URL": self.prometheus.url,
            "ROLLOUT_PORT": str(free_port()),
            "ROLLOUT_HOST": "127.0.0.1",
            "ROLLOUT_WATCH_NAMESPACES": NAMESPACE,
            "ROLLOUT_LOG_FORMAT": "json",
            "ROLLOUT_LEADER__IDENTITY": name,
            "ROLLOUT_MAX_CONCURRENT_ROLLOUTS": str(max(10, self.n)),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        daemon = Daemon(env, self.workdir, name).start()
        self.daemons.append(daemon)
        return daemon


# --- measuring ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Snapshot:
    """What the fleet had cost at one instant (counters since start)."""

    at: float
    daemon_cpu: float
    daemon_rss: float
    apiserver_cpu: float
    queries: float
    lag: dict[float, float]  # cumulative histogram: upper bound -> count
    reconciles: float


@dataclass
class Probe:
    fleet: Fleet
    daemon: Daemon
    samples: list[Snapshot] = field(default_factory=list)

    def snap(self, *, metrics: bool = True) -> Snapshot:
        """Read every counter now (``metrics``: the daemon's /metrics too, which costs it some CPU,
        so the periodic samples leave it out and only phase boundaries read it)."""
        assert self.daemon.process is not None and self.fleet.prometheus is not None
        apiserver = self.fleet.plane.apiserver_pid
        lag, reconciles = daemon_metrics(self.daemon) if metrics else ({}, math.nan)
        s = Snapshot(
            at=time.time(),
            daemon_cpu=cpu_seconds(self.daemon.process.pid),
            daemon_rss=rss_mib(self.daemon.process.pid),
            apiserver_cpu=cpu_seconds(apiserver),
            queries=self.fleet.prometheus.engine_queries(),
            lag=lag,
            reconciles=reconciles,
        )
        self.samples.append(s)
        return s

    def every(self, seconds: float, until: Callable[[], bool]) -> Iterator[Snapshot]:
        """Snapshots every ``seconds`` until ``until()``."""
        while True:
            yield self.snap()
            if until():
                return
            time.sleep(max(0.0, seconds - (time.time() - self.samples[-1].at)))

    def requests(self, start: float, end: float) -> list[AuditedRequest]:
        return self.fleet.audit.since(start, end, user=DAEMON_USER)


def daemon_metrics(daemon: Daemon) -> tuple[dict[float, float], float]:
    """The daemon's scheduler lag histogram (cumulative, by upper bound) and its reconcile count
    (its /metrics: at 10,000 rollouts about 12 MB that take it a second or more to render)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=60) as answer:
        text = answer.read().decode()
    lag: dict[float, float] = {}
    reconciles = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rolloutd_scheduler_lag_seconds_bucket":
                lag[float(sample.labels["le"])] = sample.value
            elif sample.name == "rolloutd_reconcile_duration_seconds_count":
                reconciles = sample.value
    return lag, reconciles


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The ``q`` quantile of the observations between two cumulative histograms (linear inside a
    bucket, as ``histogram_quantile`` does); NaN without observations."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def max_bucket(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the highest bucket any observation between the two histograms fell in."""
    bounds = sorted(after)
    top, previous = 0.0, 0.0
    for bound in bounds:
        count = after[bound] - before.get(bound, 0.0)
        if count > previous:
            top = bound
        previous = count
    return top
