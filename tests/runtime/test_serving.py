"""DaemonServer: routes, status codes and limits of the two listeners, over real loopback sockets."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from rollout.errors import SettingsError
from rollout.runtime.serving import INTERACTIONS_PATH, DaemonServer, Limits
from rollout.settings import Settings


class Interactions:
    """Records what reached the interactions handler."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail: Exception | None = None

    def __call__(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if self.fail is not None:
            raise self.fail
        self.calls.append((dict(headers), body))
        return 200, {"ok": True, "bytes": len(body)}


SMALL = Limits(threads=2, connections=8, backlog=16, idle_seconds=3, header_bytes=4096, body_bytes=1024)


@pytest.fixture
def handler() -> Interactions:
    return Interactions()


@pytest.fixture
def server(handler: Interactions) -> Iterator[DaemonServer]:
    registry = CollectorRegistry()
    Counter("rollout_test_total", "a test counter", registry=registry).inc()
    s = DaemonServer(
        "127.0.0.1",
        0,
        registry=registry,
        healthy=lambda: (True, "ok"),
        ready=lambda: (False, "waiting for the first list of Rollouts"),
        interactions=handler,
        interactions_host="127.0.0.1",
        interactions_port=0,
        interaction_limits=SMALL,
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


def raw(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send bytes, read the answer until the server closes: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def post(path: str, headers: str = "", body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n".encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()


def test_health_ready_and_metrics(server: DaemonServer) -> None:
    assert raw(server.port, get("/healthz")) == (200, b"ok\n")
    assert raw(server.port, get("/readyz")) == (503, b"waiting for the first list of Rollouts\n")
    status, body = raw(server.port, get("/metrics"))
    assert status == 200
    assert b"rollout_test_total 1.0" in body


def test_each_listener_serves_only_its_own_paths(server: DaemonServer) -> None:
    assert server.interactions_port is not None
    assert raw(server.port, post(INTERACTIONS_PATH, "Content-Length: 2\r\n", b"{}"))[0] == 404
    assert raw(server.interactions_port, get("/healthz"))[0] == 404
    assert raw(server.port, get("/nope"))[0] == 404
    assert raw(server.port, post("/healthz", "Content-Length: 0\r\n"))[0] == 405
    assert raw(server.interactions_port, get(INTERACTIONS_PATH))[0] == 405


def test_a_signed_post_reaches_the_handler_with_lowercase_headers(server: DaemonServer, handler: Interactions) -> None:
    assert server.interactions_port is not None
    status, body = raw(
        server.interactions_port,
        post(INTERACTIONS_PATH, "Content-Length: 9\r\nX-Slack-Signature: v0=ab\r\n", b"payload=x"),
    )
    assert (status, body) == (200, b'{"ok": true, "bytes": 9}')
    [(headers, received)] = handler.calls
    assert received == b"payload=x"
    assert headers["x-slack-signature"] == "v0=ab"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param("", b"", 411, id="no-content-length"),
        pytest.param("Content-Length: -1\r\n", b"", 400, id="negative"),
        pytest.param("Content-Length: abc\r\n", b"", 400, id="non-numeric"),
        pytest.param("Content-Length: 1e3\r\n", b"", 400, id="exponent"),
        pytest.param("Content-Length: 1025\r\n", b"", 413, id="over-the-cap-unsent"),
        pytest.param("Content-Length: 209715200\r\n", b"", 413, id="200MiB-unsent"),
        pytest.param("Transfer-Encoding: gzip\r\n", b"", 501, id="unknown-transfer-encoding"),
        pytest.param("Transfer-Encoding: chunked\r\n", b"800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n", 413, id="chunked"),
        pytest.param("X-Big: " + "h" * 5000 + "\r\nContent-Length: 0\r\n", b"", 431, id="header-cap"),
    ],
)
def test_bad_lengths_are_refused_before_the_handler(
    server: DaemonServer, handler: Interactions, headers: str, body: bytes, status: int
) -> None:
    assert server.interactions_port is not None
    assert raw(server.interactions_port, post(INTERACTIONS_PATH, headers, body))[0] == status
    assert handler.calls == []


def test_the_body_cap_is_inclusive(server: DaemonServer, handler: Interactions) -> None:
    assert server.interactions_port is not None
    status, _ = raw(server.interactions_port, post(INTERACTIONS_PATH, "Content-Length: 1024\r\n", b"x" * 1024))
    assert status == 200
    assert len(handler.calls[0][1]) == 1024


def test_a_handler_exception_is_a_bare_500(server: DaemonServer, handler: Interactions) -> None:
    assert server.interactions_port is not None
    handler.fail = RuntimeError("boom\nTraceback (most recent call last):")
    status, body = raw(server.interactions_port, post(INTERACTIONS_PATH, "Content-Length: 2\r\n", b"{}"))
    assert (status, body) == (500, b"internal error\n")


def test_no_interactions_listener_without_a_handler() -> None:
    s = DaemonServer(
        "127.0.0.1", 0, registry=CollectorRegistry(), healthy=lambda: (True, "ok"), ready=lambda: (True, "ok")
    )
    try:
        assert s.interactions_port is None
    finally:
        s.stop()


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError, match=f"health server cannot listen on 127.0.0.1:{port}"):
            DaemonServer(
                "127.0.0.1", port, registry=CollectorRegistry(), healthy=lambda: (True, ""), ready=lambda: (True, "")
            )


def test_stop_closes_the_sockets_and_ends_the_threads() -> None:
    before = {t.name for t in threading.enumerate()}
    s = DaemonServer(
        "127.0.0.1",
        0,
        registry=CollectorRegistry(),
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, "ok"),
        interactions=Interactions(),
        interactions_host="127.0.0.1",
        interactions_port=0,
    )
    s.start()
    idle = socket.create_connection(("127.0.0.1", s.port))  # an open keep-alive connection
    s.stop()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
    after = {t.name for t in threading.enumerate() if t.is_alive()}
    assert not {n for n in after - before if n.startswith(("http-", "waitress"))}


def test_a_slow_client_is_dropped_after_the_idle_timeout(server: DaemonServer) -> None:
    assert server.interactions_port is not None
    with socket.create_connection(("127.0.0.1", server.interactions_port), timeout=15) as conn:
        conn.sendall(b"POST /slack/interactions HTTP/1.1\r\n")  # then nothing
        assert conn.recv(1) == b""  # closed by the server (SMALL: 3 s idle, checked every second)


def test_one_address_per_purpose_is_a_setting() -> None:
    defaults = Settings()
    assert (defaults.host, defaults.port, defaults.interactions_host, defaults.interactions_port) == (
        "0.0.0.0",
        8080,
        "0.0.0.0",
        8081,
    )
    with pytest.raises(ValueError, match="both 9000"):
        Settings(port=9000, interactions_port=9000)
    assert Settings(port=0, interactions_port=0).port == 0


def test_urllib_can_talk_to_it(server: DaemonServer) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as answer:
        assert answer.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=5)
    assert refused.value.code == 503
