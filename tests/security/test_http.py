"""Item 4: the daemon's HTTP servers cannot be starved, exhausted or made to raise.

The servers run in their own process (``target.py``: the real ``DaemonServer`` with its real limits
and the real ``SlackInteractions`` handler), so its peak RSS and thread count are its own. Everything
stays on 127.0.0.1, every attack is bounded in count and time, and numbers are printed (``-s``) and
put in the security ledger; asserts on time are generous bounds, not targets.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.kube import REPO_ROOT
from tests.harness.slack import signed_interaction
from tests.security.conftest import Ledger

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LIMIT_KIB = 256 * 1024  # the Deployment's memory limit


@dataclass
class Target:
    process: subprocess.Popen[str]
    health: int
    interactions: int

    def status(self) -> dict[str, int]:
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return {
            "rss_kib": int(fields["VmRSS"].split()[0]),
            "peak_kib": int(fields["VmHWM"].split()[0]),
            "threads": int(fields["Threads"]),
        }


@pytest.fixture
def target() -> Iterator[Target]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security.target", SECRET],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    health, interactions = map(int, process.stdout.readline().split())
    try:
        yield Target(process, health, interactions)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read()
        assert "Traceback" not in stderr, stderr


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send ``data``, read until the server closes: (status, body); status 0 when no answer came."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except TimeoutError:
            return 0, answer
        except ConnectionResetError:  # answered and closed before reading all we sent: keep the answer
            if not answer:
                raise
    head, _, body = answer.partition(b"\r\n\r\n")
    parts = head.split(b" ")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


def post(headers: dict[str, str], body: bytes, *, length: str | None = "auto") -> bytes:
    lines = ["POST /slack/interactions HTTP/1.1", "Host: rollout", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {len(body) if length == 'auto' else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def signed(payload: object, ts: int | None = None) -> tuple[dict[str, str], bytes]:
    ts = int(time.time()) if ts is None else ts
    if isinstance(payload, dict):
        return signed_interaction(SECRET, payload, timestamp=ts)
    # shapes signed_interaction does not build: raw JSON text of any value, signed as Slack would
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), b"v0:" + str(ts).encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}, body


def click(**overrides: object) -> dict[str, object]:
    value = json.dumps({"v": 1, "rollout": "shop/recs", "key": "approval-2", "step": 2})
    payload: dict[str, object] = {
        "type": "block_actions",
        "user": {"id": "U012AB3CD"},
        "trigger_id": "1.2.abc",
        "container": {"message_ts": "1.1"},
        "actions": [{"action_id": "rollout.approve", "value": value, "action_ts": "1.3"}],
    }
    payload.update(overrides)
    return payload


def hostile_requests() -> dict[str, tuple[bytes, set[int]]]:
    """name -> (raw request, statuses that count as a correct answer)."""
    good_headers, good_body = signed(click())
    deep = "[" * 100_000 + "]" * 100_000
    out: dict[str, tuple[bytes, set[int]]] = {
        "no Content-Length": (post(good_headers, b"", length=None), {411}),
        "Content-Length -1": (post(good_headers, b"", length="-1"), {400}),
        "Content-Length abc": (post(good_headers, b"", length="abc"), {400}),
        "Content-Length 1e9": (post(good_headers, b"", length="1e9"), {400}),
        "Content-Length 200 MiB, never sent": (post(good_headers, b"", length=str(200 << 20)), {413}),
        "two Content-Lengths": (
            post({**good_headers, "Content-Length": "5"}, good_body),
            {400},
        ),
        "chunked body over the cap": (
            post(
                {**good_headers, "Transfer-Encoding": "chunked"},
                b"100001\r\n" + b"x" * 0x100001 + b"\r\n0\r\n\r\n",
                length=None,
            ),
            {413},
        ),
        "header block over 16 KiB": (post({**good_headers, "X-Pad": "p" * 20_000}, good_body), {431}),
        "non-ASCII signature": (post({**good_headers, "X-Slack-Signature": "v0=\xff\xfe\xe9"}, good_body), {401}),
        "non-ASCII timestamp": (post({**good_headers, "X-Slack-Request-Timestamp": "\xb9\xb2\xb3"}, good_body), {401}),
        "Arabic-Indic digits timestamp": (
            post({**good_headers, "X-Slack-Request-Timestamp": "١٢٣"}, good_body),
            {400, 401},
        ),
        "no signature": (post({"X-Slack-Request-Timestamp": str(int(time.time()))}, good_body), {401}),
        "stale signature": (
            post(signed(click(), int(time.time()) - 3600)[0], signed(click(), int(time.time()) - 3600)[1]),
            {401},
        ),
        "wrong secret": (post({**good_headers, "X-Slack-Signature": "v0=" + "0" * 64}, good_body), {401}),
        "binary body, signed": (post(*_signed_raw(b"\xff\xfe\x00payload")), {401}),
        "GET on interactions": (b"GET /slack/interactions HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n", {405}),
        "unknown path": (b"POST /admin HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", {404}),
        "garbage request line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400, 0}),
    }
    shapes: dict[str, object] = {
        "payload is a list": [1, 2],
        "payload is a number": 7,
        "payload is null": None,
        "payload is a string": "block_actions",
        "deeply nested payload": json.loads("[" * 50 + "]" * 50),
        "actions is a string": click(actions="rollout.approve"),
        "actions hold a list": click(actions=[["rollout.approve"]]),
        "action_id is a number": click(actions=[{"action_id": 5}]),
        "value is a number": click(actions=[{"action_id": "rollout.approve", "value": 5}]),
        "value is not JSON": click(actions=[{"action_id": "rollout.approve", "value": "{"}]),
        "value is deeply nested JSON": click(actions=[{"action_id": "rollout.approve", "value": deep}]),
        "value names a path": click(
            actions=[
                {
                    "action_id": "rollout.approve",
                    "value": json.dumps({"v": 1, "rollout": "../x", "key": "k", "step": 1}),
                }
            ]
        ),
        "step is a boolean": click(
            actions=[
                {
                    "action_id": "rollout.approve",
                    "value": json.dumps({"v": 1, "rollout": "a/b", "key": "k", "step": True}),
                }
            ]
        ),
        "user is a string": click(user="U012AB3CD"),
        "user id is a list": click(user={"id": ["U1"]}),
        "user id with markup": click(user={"id": "<!channel>"}),
        "no user": click(user=None),
        "container is a string": click(trigger_id=None, container="x"),
        "trigger_id is a dict": click(trigger_id={"a": 1}),
        "type is a list": click(type=["block_actions"]),
    }
    for name, payload in shapes.items():
        out[f"signed: {name}"] = (post(*signed(payload)), {200, 400})
    out["signed: a genuine click"] = (post(*signed(click())), {200})
    out["signed: no payload field"] = (post(*_signed_raw(b"token=x&command=%2Fdeploy")), {400})
    out["signed: 300 form fields"] = (post(*_signed_raw(("&".join(f"f{i}=1" for i in range(300))).encode())), {400})
    return out


def _approve(value: dict[str, object]) -> dict[str, object]:
    return {"action_id": "rollout.approve", "value": json.dumps(value)}


def _signed_raw(body: bytes) -> tuple[dict[str, str], bytes]:
    import hashlib
    import hmac

    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}, body


def test_every_hostile_request_gets_an_answer_and_no_traceback(target: Target, ledger: Ledger) -> None:
    wrong: list[str] = []
    for name, (request, expected) in hostile_requests().items():
        status, body = exchange(target.interactions, request)
        if status not in expected:
            wrong.append(f"{name}: {status} {body[:120]!r}")
        ledger.case(
            refused=status >= 400 or (status == 200 and b"recorded" not in body), hung=status == 0 and 0 not in expected
        )
        assert b"Traceback" not in body, name
        if name == "signed: a genuine click":
            assert b"was recorded" in body and b"Approved" not in body
    assert not wrong, "\n".join(wrong)
    assert target.status()["threads"] <= 12
    ledger.rss("HTTP servers, hostile requests", target.status()["peak_kib"])


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "raise the open-files limit (ulimit -n)"


def _probe(port: int, path: str = "/healthz", timeout: float = 10.0) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status, _ = exchange(port, f"GET {path} HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n".encode(), timeout)
    except OSError:
        status = 0
    return status, time.monotonic() - started


def test_a_thousand_slow_clients_do_not_starve_healthz(target: Target, ledger: Ledger) -> None:
    _raise_fd_limit(2500)
    slow: list[socket.socket] = []
    kinds = {"half-open": 0, "slowloris headers": 0, "slow body": 0}
    before = target.status()
    try:
        for i in range(1000):
            kind = ("half-open", "slowloris headers", "slow body")[i % 3]
            port = target.interactions if kind == "slow body" and i % 2 else target.health
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.setblocking(False)
            if kind == "slowloris headers":
                conn.send(b"GET /healthz HTTP/1.1\r\nHost: r\r\n")
            elif kind == "slow body":
                length = 1 << 20 if port == target.interactions else 900
                conn.send(post({"X-Slack-Request-Timestamp": "1"}, b"", length=str(length)))
            slow.append(conn)
            kinds[kind] += 1
        latencies: list[float] = []
        statuses: list[int] = []
        deadline = time.monotonic() + 8.0
        tick = 0
        while time.monotonic() < deadline:  # keep every slow client alive, probe /healthz 4 times a second
            tick += 1
            for n, conn in enumerate(slow):
                if n % 3 == 1 and tick % 4 == 0:
                    _quiet_send(conn, b"X-a: b\r\n")
                elif n % 3 == 2 and tick % 4 == 0:
                    _quiet_send(conn, b"x" * 64)
            status, latency = _probe(target.health)
            statuses.append(status)
            latencies.append(latency)
            time.sleep(0.25)
        during = target.status()
    finally:
        for conn in slow:
            conn.close()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    ledger.note(
        f"1,000 slow clients ({', '.join(f'{v} {k}' for k, v in kinds.items())}): {len(latencies)} /healthz probes, "
        f"all {set(statuses)}, latency median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; server threads {before['threads']} -> {during['threads']}, "
        f"RSS {before['rss_kib'] / 1024:.1f} -> {during['rss_kib'] / 1024:.1f} MiB "
        f"(peak {during['peak_kib'] / 1024:.1f})"
    )
    ledger.rss("HTTP servers, 1,000 slow clients", during["peak_kib"])
    ledger.case(refused=False, hung=set(statuses) != {200})
    assert set(statuses) == {200}
    assert p95 < 1.0, latencies  # generous: a probe takes about a millisecond
    assert max(latencies) < 5.0
    assert during["threads"] == before["threads"]  # one event loop and a fixed pool, whatever the clients
    assert during["peak_kib"] < LIMIT_KIB


def _quiet_send(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server dropped this slow client (idle timeout): that is the point
        conn.send(data)


def test_big_bodies_with_bad_signatures_stay_bounded(target: Target, ledger: Ledger) -> None:
    """64 clients at once each send a full 1 MiB body, unsigned: refused after a bounded read."""
    body = b"payload=" + b"x" * ((1 << 20) - 8)

    def send(_: int) -> int:
        return exchange(target.interactions, post({"X-Slack-Request-Timestamp": "1"}, body), timeout=30)[0]

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(send, range(128)))
    status = target.status()
    ledger.note(
        f"128 x 1 MiB unsigned bodies (64 at a time): {set(statuses)}, peak RSS {status['peak_kib'] / 1024:.1f} MiB"
    )
    ledger.rss("HTTP servers, 128 x 1 MiB bodies", status["peak_kib"])
    ledger.case(refused=set(statuses) == {401})
    assert set(statuses) == {401}
    assert status["peak_kib"] < LIMIT_KIB


def test_three_hundred_concurrent_metrics_scrapes_all_succeed(target: Target, ledger: Ledger) -> None:
    _raise_fd_limit(1000)
    barrier = threading.Barrier(300)

    def scrape(_: int) -> tuple[int, float]:
        barrier.wait()
        return _probe(target.health, "/metrics", timeout=30)

    with ThreadPoolExecutor(300) as pool:
        results = list(pool.map(scrape, range(300)))
    statuses = [s for s, _ in results]
    latencies = sorted(t for _, t in results)
    status = target.status()
    ledger.note(
        f"300 concurrent /metrics: {statuses.count(200)} x 200, "
        f"latency median {statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
        f"server threads {status['threads']}, peak RSS {status['peak_kib'] / 1024:.1f} MiB"
    )
    ledger.case(refused=False, hung=0 in statuses)
    assert statuses.count(200) == 300
    assert status["threads"] <= 12
