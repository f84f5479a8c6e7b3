"""Helpers for the real-API-server tests of informers and leases: a loopback TCP proxy whose
connections the test can cut (a network fault, not a patched client), a kubeconfig that goes
through it, the API server's audit log as the count of requests, and etcd compaction on demand.

Owns nothing the product uses; it only talks to the processes the harness started.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from tests.harness.kube import ControlPlane

AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0, interval: float = 0.01) -> float:
    """Wait until ``predicate()`` (exceptions propagate); returns the seconds it took."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - began


class CutProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; ``cut()`` drops every connection and refuses
    new ones until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._refusing = False
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, name="cut-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                if self._refusing or self._closed:
                    client.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()


def kubeconfig_via(source: Path, port: int, dest: Path) -> Path:
    """A copy of the kubeconfig ``source`` whose server is 127.0.0.1:``port``."""
    config = yaml.safe_load(source.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dest.write_text(yaml.safe_dump(config))
    return dest


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str
    received: datetime


def audited_requests(log: Path, user: str) -> list[Request]:
    """Every request ``user`` made, once each, from the API server's audit log."""
    seen: dict[str, Request] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != user or event["auditID"] in seen:
            continue
        ref = event.get("objectRef") or {}
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        seen[event["auditID"]] = Request(user, event["verb"], ref.get("resource", ""), received)
    return sorted(seen.values(), key=lambda r: r.received)


def compact_etcd(plane: ControlPlane) -> int:
    """Compact etcd's history up to its current revision (through its HTTP gateway); returns that revision."""

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        req = urllib.request.Request(
            plane.etcd_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer: dict[str, object] = json.loads(resp.read())
            return answer

    header = post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]
    assert isinstance(header, dict)
    revision = int(header["revision"])
    post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision
