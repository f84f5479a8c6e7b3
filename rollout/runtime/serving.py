"""The daemon's HTTP servers: ``/healthz``, ``/readyz``, ``/metrics`` on one listener and
``POST /slack/interactions`` on another, each a bounded waitress server.

Owns the HTTP surface and its limits; each route calls back into the daemon (health is computed by
the daemon, metrics come from the Telemetry registry, Slack clicks go to the interactions handler).
Why waitress: one event-loop thread owns every socket, so a slow or half-open client costs a socket
and a bounded buffer, never a thread; requests reach a fixed pool of worker threads only once they
are complete. Every listener has a connection limit, an inactivity timeout, a header-size cap, a
body cap checked against ``Content-Length`` *before* reading (non-numeric or negative lengths are a
400 from waitress's parser, also before reading), a listen backlog, and keeps bodies in memory
(``inbuf_overflow`` above the cap: nothing spills to the pod's small ``/tmp``). The worst case of
buffered request bytes is ``connections x (header cap + body cap)`` per listener (``Limits.worst_case``).

Handlers never let an exception escape: a failure is a logged one-line error and a 500 without a
traceback. It must not decide anything about rollouts or parse what the interactions handler
parses (the signature is checked there, before any parsing).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from waitress import wasyncore
from waitress.server import create_server
from waitress.trigger import trigger

from rollout.errors import SettingsError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("rollout.serving")
# waitress logs "Task queue depth is N" for every request queued behind busy workers: under a
# burst that is one line per request, which an attacker could turn into a log flood.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

Check = Callable[[], tuple[bool, str]]
Interactions = Callable[[Mapping[str, str], bytes], tuple[int, dict[str, Any]]]

KiB, MiB = 1 << 10, 1 << 20
INTERACTIONS_PATH = "/slack/interactions"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Limits:
    """What one listener admits; see the module docstring."""

    threads: int  # worker threads running handlers (the event loop is one more)
    connections: int  # open connections; further ones wait in the kernel's backlog
    backlog: int  # listen(2) queue
    idle_seconds: int  # a connection silent this long is closed (checked every ``idle_seconds / 3``)
    header_bytes: int  # request line + headers
    body_bytes: int  # largest accepted body

    @property
    def worst_case(self) -> int:
        """Bytes of request data this listener can be made to buffer at once."""
        return self.connections * (self.header_bytes + self.body_bytes)

    def adjustments(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "connection_limit": self.connections,
            "backlog": self.backlog,
            "channel_timeout": self.idle_seconds,
            "cleanup_interval": max(1, self.idle_seconds // 3),
            "max_request_header_size": self.header_bytes,
            "max_request_body_size": self.body_bytes + 1,  # waitress refuses lengths >= this
            "inbuf_overflow": self.body_bytes + self.header_bytes + 1,  # never spill to /tmp
            "outbuf_overflow": 16 * MiB,  # /metrics answers stay in memory too
            "asyncore_use_poll": True,  # select() cannot watch descriptors above 1023
            "expose_tracebacks": False,
            "ident": "rollout",
            "clear_untrusted_proxy_headers": True,
        }


# Health and metrics: many cheap connections (probes, scrapes, and whoever else reaches the port),
# no bodies. 2,048 x 16 KiB of headers is at most 32 MiB.
HEALTH_LIMITS = Limits(
    threads=4, connections=2048, backlog=1024, idle_seconds=15, header_bytes=16 * KiB, body_bytes=1 * KiB
)
# Slack interactions: few connections, bodies up to 1 MiB; 64 x (1 MiB + 16 KiB) is at most 65 MiB.
INTERACTION_LIMITS = Limits(
    threads=2, connections=64, backlog=256, idle_seconds=15, header_bytes=16 * KiB, body_bytes=1 * MiB
)


def _answer(start_response: StartResponse, status: int, body: bytes, content_type: str = TEXT) -> Iterable[bytes]:
    phrase = HTTPStatus(status).phrase
    start_response(f"{status} {phrase}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _guarded(name: str, app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]) -> WSGIApplication:
    """Wrap a handler: any exception becomes a logged one-line error and a bare 500."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except Exception as e:
            log.error(
                "request failed",
                extra={"event": "http.handler-error", "listener": name, "error": f"{type(e).__name__}: {e}"[:300]},
            )
            return _answer(start_response, 500, b"internal error\n")

    return guarded


def health_app(registry: CollectorRegistry, healthy: Check, ready: Check) -> WSGIApplication:
    """``GET /healthz``, ``/readyz``, ``/metrics``; anything else is 404 (unknown path) or 405."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path not in ("/metrics", "/healthz", "/readyz"):
            return _answer(start_response, 404, b"not found\n")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, 405, b"method not allowed\n")
        if path == "/metrics":
            return _answer(start_response, 200, generate_latest(registry), CONTENT_TYPE_LATEST)
        ok, why = (healthy if path == "/healthz" else ready)()
        return _answer(start_response, 200 if ok else 503, (why + "\n").encode())

    return _guarded("health", app)


def interactions_app(interactions: Interactions, limit: int = INTERACTION_LIMITS.body_bytes) -> WSGIApplication:
    """``POST /slack/interactions`` with a declared, bounded ``Content-Length``; the rest is 404/405/411/413."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") != INTERACTIONS_PATH:
            return _answer(start_response, 404, b"not found\n")
        if environ.get("REQUEST_METHOD", "") != "POST":
            return _answer(start_response, 405, b"method not allowed\n")
        declared = environ.get("CONTENT_LENGTH")
        if declared is None or declared == "":
            return _answer(start_response, 411, b"Content-Length required\n")
        if not (declared.isascii() and declared.isdigit()):
            return _answer(start_response, 400, b"bad Content-Length\n")
        length = int(declared)
        if length > limit:
            return _answer(start_response, 413, b"too large\n")
        body = environ["wsgi.input"].read(length)
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_") and isinstance(value, str)
        }
        headers["content-type"] = str(environ.get("CONTENT_TYPE", ""))
        status, answer = interactions(headers, body)
        return _answer(start_response, status, json.dumps(answer).encode(), "application/json")

    return _guarded("interactions", app)


class Listener:
    """One waitress server on one address, served by its own event-loop thread."""

    def __init__(self, name: str, app: WSGIApplication, host: str, port: int, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self._map: dict[int, Any] = {}
        server: Any
        try:
            server = create_server(app, map=self._map, host=host, port=port, **limits.adjustments())
        except (OSError, ValueError) as e:  # address in use, not permitted, not resolvable
            raise SettingsError(f"the {name} server cannot listen on {host}:{port}: {e}") from e
        self._server = server
        # One address gives one server; a name resolving to several gives a MultiSocketServer.
        first = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
        self.host, self.port = str(first[0][0]), int(first[0][1])
        self._thread = threading.Thread(target=self._server.run, name=f"http-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listening socket from the loop thread, then stop the workers."""
        triggers = [d for d in list(self._map.values()) if isinstance(d, trigger)]
        if self._thread.is_alive() and triggers:
            close: Any = lambda: wasyncore.close_all(self._map)  # stubs type the thunk wrongly  # noqa: E731
            triggers[0].pull_trigger(close)
            self._thread.join(timeout)
        else:
            wasyncore.close_all(self._map)
        self._server.task_dispatcher.shutdown(timeout=timeout)


class DaemonServer:
    """The health/metrics listener on ``host:port`` and, when Slack interactions are enabled, the
    interactions listener on ``interactions_host:interactions_port`` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        healthy: Check,
        ready: Check,
        interactions: Interactions | None = None,
        interactions_host: str = "0.0.0.0",
        interactions_port: int = 8081,
        health_limits: Limits = HEALTH_LIMITS,
        interaction_limits: Limits = INTERACTION_LIMITS,
    ) -> None:
        self.health = Listener("health", health_app(registry, healthy, ready), host, port, health_limits)
        self.interactions: Listener | None = None
        if interactions is not None:
            app = interactions_app(interactions, interaction_limits.body_bytes)
            try:
                self.interactions = Listener(
                    "interactions", app, interactions_host, interactions_port, interaction_limits
                )
            except BaseException:
                self.health.stop()
                raise
        self.port = self.health.port
        self.interactions_port = self.interactions.port if self.interactions is not None else None

    def start(self) -> None:
        self.health.start()
        if self.interactions is not None:
            self.interactions.start()

    def stop(self) -> None:
        if self.interactions is not None:
            self.interactions.stop()
        self.health.stop()
