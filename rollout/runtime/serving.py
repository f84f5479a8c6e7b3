"""The daemon's HTTP server: ``/healthz``, ``/readyz``, ``/metrics`` and ``/slack/interactions``.

Owns the HTTP surface only; each route calls back into the daemon (health is computed by the
daemon, metrics come from the Telemetry registry, Slack clicks go to the interactions handler).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], tuple[bool, str]]
Interactions = Callable[[Mapping[str, str], bytes], tuple[int, dict[str, Any]]]
_MAX_BODY = 1 << 20


class DaemonServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        healthy: Check,
        ready: Check,
        interactions: Interactions | None = None,
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path in ("/healthz", "/readyz"):
                    ok, why = (healthy if self.path == "/healthz" else ready)()
                    self._send(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, (why + "\n").encode())
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n")

            def do_POST(self) -> None:
                if self.path != "/slack/interactions" or server.interactions is None:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"too large\n")
                    return
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = server.interactions(headers, body)
                self._send(HTTPStatus(status), json.dumps(answer).encode(), "application/json")

            def _send(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # access logs would drown the decision log

        self.interactions = interactions
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
