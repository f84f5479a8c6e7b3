"""The embedded local stack for e2e tests and ``make demo``: a real kube-apiserver + etcd with the
Rollout CRD and the route CRDs (the fixtures, or the real upstream ones), the seed's GatewayRoute,
the synthetic traffic exporter, a real Prometheus scraping it, a "mesh" thread that routes
synthetic requests by the live routes (weights, and the header matches and priorities of an A/B
step's managed route, as Envoy would; see ``mesh.py``), and the daemon itself as a subprocess.

Owns start-up order and clean-up of all of it; it decides nothing about rollouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rollout.kube.client import KubeClient, Resource
from rollout.kube.commands import admission_policy
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.harness.exporter import TrafficExporter
from tests.harness.kube import CRD_FIXTURES, ControlPlane, free_port, upstream_crds_dir
from tests.harness.mesh import Mesh, MeshRoute
from tests.harness.prometheus import PrometheusServer

ROOT = Path(__file__).resolve().parents[2]
ROLLOUT_CRD = ROOT / "deploy" / "base" / "crd.yaml"
COMMANDS_CRD = ROOT / "deploy" / "base" / "crd-rolloutcommands.yaml"
ADMIN = "rollout-admin"  # the harness's admin user: the daemons here run as it, so it is "the daemon" for the policy
STABLE, CANARY = "recommendation-service-v1", "recommendation-service-v2"
ROUTE = "recommendation-canary-gateway-route"
UPSTREAM_CRDS = (
    "appmesh.k8s.aws_gatewayroutes.yaml",
    "appmesh.k8s.aws_virtualrouters.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)


def gateway_route(namespace: str, name: str = ROUTE, stable: str = STABLE, canary: str | None = None) -> dict[str, Any]:
    """The seed's GatewayRoute: all traffic on ``stable`` (the canary entry is added by rollout)."""
    targets: list[dict[str, Any]] = [{"virtualService": {"virtualServiceRef": {"name": stable}}, "weight": 100}]
    if canary:
        targets.append({"virtualService": {"virtualServiceRef": {"name": canary}}, "weight": 0})
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "httpRoute": {
                "match": {"prefix": "/recommendations"},
                "action": {"weightedTargets": targets},
            }
        },
    }


class Daemon:
    """``python -m rollout run`` as a subprocess, JSON logs to a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str = "daemon") -> None:
        self.env, self.name = dict(env), name
        self.port = int(self.env["ROLLOUT_PORT"])
        self.log_file = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rollout", "run"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a node failure or OOM kill would do."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the graceful shutdown."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def get(self, path: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode()
        except OSError as e:
            return 0, str(e)


class Stack:
    """Everything ``make demo`` and the e2e tests run against; a context manager."""

    def __init__(self, *, total_rps: float = 200.0, workdir: Path | None = None, upstream_crds: bool = False) -> None:
        """``upstream_crds``: install the real upstream App Mesh and Gateway API CRDs
        (``../shared/crds``) instead of the fixtures (whose GatewayRoute has weighted targets)."""
        self.total_rps = total_rps
        self.upstream_crds = upstream_crds
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rollout-stack-"))
        self.plane = ControlPlane(name="rollout-stack")
        self.exporter = TrafficExporter(seed=1)
        self.prometheus: PrometheusServer | None = None
        self.kube: KubeClient | None = None
        self.mesh: Mesh | None = None
        self.daemons: list[Daemon] = []

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Stack:
        try:
            self.plane.start()
            self.plane.apply_crds([ROLLOUT_CRD, COMMANDS_CRD, *self._route_crds()])
            install_admission_policy(self.plane, daemon=ADMIN)
            self.plane.create_namespace("rollout-system")
            self.kube = KubeClient.from_kubeconfig(str(self.plane.kubeconfig))
            self.exporter.start()
            for backend in (STABLE, CANARY):
                self.exporter.set_backend(backend, rps=0.0, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120)
            self.prometheus = PrometheusServer([self.exporter.address]).start()
            self.mesh = Mesh(self.kube, self.exporter, total_rps=self.total_rps, canary=CANARY).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _route_crds(self) -> list[Path]:
        if not self.upstream_crds:
            return sorted(CRD_FIXTURES.glob("*.yaml"))
        where = upstream_crds_dir()
        if where is None:
            raise FileNotFoundError("../shared/crds (the upstream CRDs) is not present next to this clone")
        return [where / f for f in UPSTREAM_CRDS]

    def add_route(
        self,
        namespace: str,
        name: str = ROUTE,
        *,
        manifest: dict[str, Any] | None = None,
        resource: Resource = GATEWAY_ROUTES,
        path: str | None = None,
        stable: str = STABLE,
    ) -> None:
        """Create a route (default: the seed's GatewayRoute) and send the mesh's traffic through it."""
        assert self.kube is not None and self.mesh is not None
        self.kube.create(resource, namespace, manifest or gateway_route(namespace, name, stable=stable))
        kind = resource.kind.lower()
        self.mesh.routes.append(MeshRoute(namespace, name, kind, path))

    def daemon_env(self, *, namespaces: list[str], name: str = "daemon", **extra: str) -> dict[str, str]:
        assert self.prometheus is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env.update(
            {
                "ROLLOUT_KUBE__KUBECONFIG": str(self.plane.kubeconfig),
                "ROLLOUT_PROMETHEUS__URL": self.prometheus.url,
                "ROLLOUT_PORT": str(free_port()),
                "ROLLOUT_HOST": "127.0.0.1",
                "ROLLOUT_WATCH_NAMESPACES": ",".join(namespaces),
                "ROLLOUT_RESYNC_SECONDS": "2",
                "ROLLOUT_LOG_FORMAT": "json",
                "ROLLOUT_LEADER__IDENTITY": name,
                "ROLLOUT_SHUTDOWN_GRACE_SECONDS": "10",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def daemon(self, *, namespaces: list[str], name: str = "daemon", **extra: str) -> Daemon:
        d = Daemon(self.daemon_env(namespaces=namespaces, name=name, **extra), self.workdir, name).start()
        self.daemons.append(d)
        return d

    def stop(self) -> None:
        for d in self.daemons:
            with contextlib.suppress(Exception):
                d.terminate(timeout=15)
        if self.mesh is not None:
            self.mesh.stop()
        if self.prometheus is not None:
            self.prometheus.close()
        self.exporter.stop()
        if self.kube is not None:
            self.kube.close()
        self.plane.stop()
        if self._own_dir:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)


def install_admission_policy(plane: ControlPlane, *, daemon: str) -> None:
    """The admission policy that makes a RolloutCommand's spec.by trustworthy, as deploy/base installs it."""
    for obj in admission_policy(daemon=daemon):
        kind = "validatingadmissionpolicies"
        if obj["kind"] != "ValidatingAdmissionPolicy":
            kind = "validatingadmissionpolicybindings"
        plane.request("POST", f"/apis/admissionregistration.k8s.io/v1/{kind}", obj)


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; raises TimeoutError naming ``what`` with
    the last value, and the last exception the predicate raised (chained), if it raised."""
    deadline = time.monotonic() + timeout
    last: Any = None
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            error = None
        except Exception as e:  # the object may not exist yet; remembered for the report
            error = e
        else:
            if last:
                return last
        time.sleep(interval)
    raised = f"; the predicate last raised {error!r}" if error is not None else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r}{raised})") from error


@contextlib.contextmanager
def running_stack(**kwargs: Any) -> Iterator[Stack]:
    with Stack(**kwargs) as stack:
        yield stack
