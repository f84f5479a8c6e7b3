"""PrometheusServer: the real Prometheus binary on a free loopback port, for tests and benchmarks.

Owns one server process: a generated config (1 s scrape and evaluation interval by default)
listing the given scrape targets (none: it only serves its data dir, e.g. backfilled blocks, see
``backfill.py``), a temporary data dir, readiness waiting, ``stop()``/``start()`` again on the
same port and data dir (outage tests), and cleanup of the process and the dir. It must not touch
any other Prometheus (e.g. a system service on :9090).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "install it with `make prometheus` (runs tests/harness/prometheus-install.sh: Debian package "
    "`prometheus`) or put a Prometheus 2.x/3.x binary on PATH / in PROMETHEUS_BIN"
)


def find_binary() -> str:
    """The Prometheus binary: ``$PROMETHEUS_BIN``, ``prometheus`` on PATH, or ``/usr/bin/prometheus``."""
    for candidate in (os.environ.get("PROMETHEUS_BIN"), shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"the Prometheus server binary was not found; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """A real Prometheus scraping ``targets`` (``host:port`` strings); use as a context manager."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        scrape_interval: str = "1s",
        port: int | None = None,
        binary: str | None = None,
        ready_timeout: float = 30.0,
        retention: str = "1h",
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.port = port or free_port()
        self.binary = binary or find_binary()
        self.ready_timeout = ready_timeout
        self.retention = retention
        self._dir = Path(tempfile.mkdtemp(prefix="rollout-prometheus-"))
        self.data_dir = self._dir / "data"
        self.config_file = self._dir / "prometheus.yml"
        self.log_file = self._dir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "scrape_configs": (
                [{"job_name": "traffic", "static_configs": [{"targets": self.targets}]}] if self.targets else []
            ),
        }
        self.config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def start(self) -> PrometheusServer:
        """Start (or restart) the server on the same port and data dir, and wait until it is ready."""
        if self.running:
            return self
        log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                f"--storage.tsdb.retention.time={self.retention}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"prometheus exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {self.ready_timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process (data dir and port are kept for ``start()``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def close(self) -> None:
        """Stop and delete the data dir."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_targets(self, targets: Sequence[str]) -> None:
        """Rewrite the scrape targets and reload the running server."""
        self.targets = list(targets)
        self._write_config()
        if self.running:
            request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- helpers for tests -------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query straight over HTTP (independent of the code under test)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, *, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until ``promql`` returns at least ``count`` series."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, urllib.error.URLError):
                result = self.query(promql)
                if len(result) >= count:
                    return result
            time.sleep(0.25)
        raise TimeoutError(f"{promql!r} returned {len(result)} series after {timeout}s (wanted {count})")

    def engine_queries(self) -> float:
        """How many instant queries the server has answered: its own
        ``prometheus_http_requests_total{handler="/api/v1/query"}``, read from its /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total
