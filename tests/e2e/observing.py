"""What the e2e tests observe from outside the daemon: Rollout status, the live route (polled in a
thread, so every weight the route ever carried is seen), Events, the Lease, the operator CLI run
as a subprocess, the daemon's CPU and memory from ``/proc``, and a JSON file of measured numbers.

Nothing here decides anything or talks to the daemon's internals; it reads the API server and
the process table, like an operator would.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from rollout.kube.client import Resource
from rollout.kube.commands import ROLLOUT_COMMANDS
from rollout.kube.rollouts import ROLLOUTS
from tests.harness.stack import CANARY, ROOT, ROUTE, STABLE, Daemon, Stack, wait_until

EVENTS = Resource("events.k8s.io", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
REPORT = Path(os.environ.get("ROLLOUT_E2E_REPORT") or Path(tempfile.gettempdir()) / "rollout-e2e-measurements.json")


def record(key: str, value: Any) -> None:
    """Add one measured number (or record) to the report file and print it (visible with ``-s``).
    The e2e modules run in parallel workers (``make test``): the read-modify-write holds a lock."""
    with REPORT.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(REPORT.read_text())
        data[key] = value
        REPORT.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"[measured] {key} = {json.dumps(value)}  ({REPORT})")


def rollout(stack: Stack, namespace: str, name: str = "recommendations") -> dict[str, Any]:
    assert stack.kube is not None
    return stack.kube.get(ROLLOUTS, namespace, name)


def status(stack: Stack, namespace: str, name: str = "recommendations") -> dict[str, Any]:
    found = rollout(stack, namespace, name).get("status")
    return found if isinstance(found, dict) else {}


def wait_status(
    stack: Stack,
    namespace: str,
    predicate: Callable[[dict[str, Any]], Any],
    *,
    timeout: float,
    what: str,
    name: str = "recommendations",
    daemons: tuple[Daemon, ...] = (),
    interval: float = 0.2,
) -> dict[str, Any]:
    """Poll the status until ``predicate`` holds; on timeout print the daemons' last log lines."""
    try:
        found: dict[str, Any] = {}

        def check() -> bool:
            nonlocal found
            found = status(stack, namespace, name)
            return bool(predicate(found))

        wait_until(check, timeout=timeout, interval=interval, what=f"{namespace}/{name}: {what}")
        return found
    except TimeoutError:
        print(json.dumps(status(stack, namespace, name), indent=1)[:4000])
        for d in daemons:
            print(f"--- {d.name} ---\n{d.tail(60)}")
        raise


def commands(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    """Every RolloutCommand of the namespace."""
    assert stack.kube is not None
    return stack.kube.list(ROLLOUT_COMMANDS, namespace)


def phase_is(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s.get("phase") in phases


def events(stack: Stack, namespace: str, name: str = "recommendations") -> list[dict[str, Any]]:
    """The ``events.k8s.io`` Events regarding the Rollout."""
    assert stack.kube is not None
    return [e for e in stack.kube.list(EVENTS, namespace) if (e.get("regarding") or {}).get("name") == name]


def lease_holder(stack: Stack, name: str = "rollout-daemon") -> str:
    assert stack.kube is not None
    lease = stack.kube.get(LEASES, "rollout-system", name)
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def set_route(stack: Stack, namespace: str, stable: int, canary: int, route: str = ROUTE) -> None:
    """Edit the route's weights by hand, as a person with kubectl would."""
    assert stack.kube is not None
    from rollout.routers.gatewayroute import GATEWAY_ROUTES

    obj = stack.kube.get(GATEWAY_ROUTES, namespace, route)
    targets = obj["spec"]["httpRoute"]["action"]["weightedTargets"]
    for t in targets:
        backend = t["virtualService"]["virtualServiceRef"]["name"]
        t["weight"] = {STABLE: stable, CANARY: canary}[backend]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/spec/httpRoute/action/weightedTargets", "value": targets},
    ]
    stack.kube.json_patch(GATEWAY_ROUTES, namespace, route, ops)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m rollout ARGS --kubeconfig <admin>`` as a subprocess; fails the test if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    done = subprocess.run(
        [sys.executable, "-m", "rollout", *args, "--kubeconfig", str(stack.plane.kubeconfig)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"rollout {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


class Poller(abc.ABC):
    """Calls ``_read`` every ``period`` seconds in a thread, and once more when stopped."""

    namespace: str
    period: float
    _stop: threading.Event
    _thread: threading.Thread | None

    @abc.abstractmethod
    def _read(self) -> None:
        """Take one reading."""

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-{self.namespace}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Self:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read()
            self._stop.wait(self.period)
        self._read()  # the last word: what is there when the test stops watching


@dataclass
class RouteRecorder(Poller):
    """Polls a route's weights every ``period`` seconds in a thread and keeps every reading."""

    stack: Stack
    namespace: str
    route: str = ROUTE
    period: float = 0.2
    stable: str = STABLE  # the backends the route names
    canary: str = CANARY
    readings: list[tuple[float, int, int]] = field(default_factory=list)  # (monotonic, stable, canary)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _read(self) -> None:
        assert self.stack.mesh is not None
        try:
            weights = self.stack.mesh.weights(self.namespace, self.route)
        except Exception:  # a transient API error: count it, read again next period
            self.errors += 1
            return
        extra = set(weights) - {self.stable, self.canary}
        assert not extra, f"only the two named backends may appear on the route: {weights}"
        self.readings.append((time.monotonic(), weights.get(self.stable, 0), weights.get(self.canary, 0)))

    def wait(self, predicate: Callable[[int, int], bool], *, timeout: float, what: str, after: float = 0.0) -> float:
        """Block until a reading taken after ``after`` satisfies ``predicate(stable, canary)``; returns its time."""
        seen = 0

        def check() -> float | None:
            nonlocal seen
            readings = list(self.readings)
            for at, stable, canary in readings[seen:]:
                if at >= after and predicate(stable, canary):
                    return at
            seen = len(readings)
            return None

        found: float = wait_until(check, timeout=timeout, interval=0.05, what=f"{self.namespace}/{self.route}: {what}")
        return found

    def canaries(self) -> list[int]:
        """The canary weights seen, consecutive repeats collapsed."""
        out: list[int] = []
        for _, _, canary in list(self.readings):
            if not out or out[-1] != canary:
                out.append(canary)
        return out

    def sums(self) -> set[int]:
        return {stable + canary for _, stable, canary in list(self.readings)}

    def first_at(self, predicate: Callable[[int, int], bool], after: float = 0.0) -> float | None:
        """Monotonic time of the first reading after ``after`` for which ``predicate(stable, canary)``."""
        for at, stable, canary in list(self.readings):
            if at >= after and predicate(stable, canary):
                return at
        return None


@dataclass
class StatusRecorder(Poller):
    """Polls a Rollout's status every ``period`` seconds in a thread and keeps every distinct one."""

    stack: Stack
    namespace: str
    name: str = "recommendations"
    period: float = 0.2
    # (t, phase, canary, message, unavailableSince, approvals)
    seen: list[tuple[float, str, int, str, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # a transient API error: read again next period
            s = status(self.stack, self.namespace, self.name)
            state = s.get("state") or {}
            since = str(state.get("unavailableSince") or "")
            approvals = "; ".join(state.get("approvals") or ())
            entry = (
                str(s.get("phase", "")),
                int(s.get("canaryWeight", 0)),
                str(s.get("message", "")),
                since,
                approvals,
            )
            if not self.seen or self.seen[-1][1:] != entry:
                self.seen.append((time.monotonic(), *entry))


def is_subsequence(seen: list[int], allowed: list[int]) -> bool:
    it = iter(allowed)
    return all(any(x == y for y in it) for x in seen)


def proc_usage(pid: int, seconds: float) -> dict[str, float]:
    """CPU share (of one core) and resident memory of ``pid`` over ``seconds``, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime (fields 14, 15)

    def rss_kib() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    c0, t0 = cpu(), time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, rss_kib())
        time.sleep(0.5)
    c1, t1 = cpu(), time.monotonic()
    return {
        "seconds": round(t1 - t0, 1),
        "cpu_percent_of_one_core": round(100 * (c1 - c0) / (t1 - t0), 2),
        "rss_mib": round(peak / 1024, 1),
    }


def daemon_log_events(daemon: Daemon, event: str) -> list[dict[str, Any]]:
    return [line for line in daemon.logs() if line.get("event") == event]


def wait_ready(daemon: Daemon, timeout: float = 60) -> None:
    wait_until(lambda: daemon.get("/readyz")[0] == 200, timeout=timeout, what=f"{daemon.name} /readyz 200")
