"""Tenants on the real stack: a Rollout author with a real ServiceAccount token in ``tenant-a`` can
neither move ``tenant-b``'s traffic nor have the daemon's Prometheus credentials sent anywhere.

The real daemon process (holding a Prometheus bearer token and a tenant header of the platform
team's), a real kube-apiserver + etcd, a real Prometheus, and a loopback listener standing in for
the attacker's endpoint. The author may only write Rollouts in its own namespace (a Role, a token
from the TokenRequest API); everything it names is untrusted.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.errors import KubeForbidden
from rollout.kube.client import KubeClient
from rollout.kube.rollouts import ROLLOUTS
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.e2e.conftest import fast_policy
from tests.e2e.observing import wait_status
from tests.harness.kube import free_port
from tests.harness.stack import ROUTE, Stack
from tests.security.conftest import Ledger

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
TOKEN = "platform-secret-token-0123456789"
TENANT_HEADER = "platform-org"
EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()


class Listener:
    """The attacker's endpoint: records every request's path and headers, answers like Prometheus."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(EMPTY)))
                self.end_headers()
                self.wfile.write(EMPTY)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Stack]:
    with Stack(total_rps=500.0) as found:
        yield found


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def _tenant(stack: Stack, namespace: str) -> KubeClient:
    """A real ServiceAccount token that may write Rollouts in ``namespace`` only."""
    rules = [{"apiGroups": ["delivery.rollout.dev"], "resources": ["rollouts"], "verbs": ["create", "get", "list"]}]
    path = stack.plane.service_account_kubeconfig(namespace, "author", rules)
    return KubeClient.from_kubeconfig(str(path))


def _route_version(stack: Stack, namespace: str) -> tuple[str, Any]:
    assert stack.kube is not None
    route = stack.kube.get(GATEWAY_ROUTES, namespace, ROUTE)
    return route["metadata"]["resourceVersion"], route["spec"]


def test_a_tenant_cannot_move_another_tenants_route_or_receive_the_metrics_credentials(
    shared: Stack, listener: Listener, ledger: Ledger
) -> None:
    stack = shared
    assert stack.kube is not None
    for namespace in ("tenant-a", "tenant-b"):
        stack.plane.create_namespace(namespace)
        stack.add_route(namespace)
    author = _tenant(stack, "tenant-a")
    daemon = stack.daemon(
        namespaces=["tenant-a", "tenant-b"],
        name="tenancy",
        ROLLOUT_LEADER__ENABLED="false",
        ROLLOUT_PROMETHEUS__BEARER_TOKEN=TOKEN,
        ROLLOUT_PROMETHEUS__HEADERS=json.dumps({"X-Scope-OrgID": TENANT_HEADER}),
        ROLLOUT_PROMETHEUS_POLICY_ADDRESSES=json.dumps([f"{listener.url}/allowed/"]),
    )
    before_b = _route_version(stack, "tenant-b")

    # 1. Writing a Rollout in the other tenant's namespace: the API server refuses the token.
    with pytest.raises(KubeForbidden):
        author.create(ROLLOUTS, "tenant-b", fast_policy("tenant-b", name="direct"))
    ledger.case(refused=True)

    # 2. A Rollout of its own that names the other tenant's route: held, never written.
    hijack = fast_policy("tenant-a", name="hijack")
    hijack["spec"]["router"]["gatewayRoute"]["namespace"] = "tenant-b"
    author.create(ROLLOUTS, "tenant-a", hijack)
    # 3. A Rollout that sends the analysis to the attacker's endpoint, outside the allowed prefix.
    leak = fast_policy("tenant-a", name="leak", prometheus={"address": f"{listener.url}/steal/"})
    author.create(ROLLOUTS, "tenant-a", leak)
    for name, says in (("hijack", "namespace 'tenant-b'"), ("leak", "address is not allowed")):
        held = wait_status(
            stack,
            "tenant-a",
            lambda s: any(c["type"] == "PolicyValid" and c["status"] == "False" for c in s.get("conditions", [])),
            timeout=60,
            what="held as invalid",
            name=name,
            daemons=(daemon,),
        )
        reason = next(c["message"] for c in held["conditions"] if c["type"] == "PolicyValid")
        assert says in reason, reason
        ledger.case(refused=True)

    # 4. An address the platform team allows: queried, but never with the daemon's credentials.
    own = fast_policy("tenant-a", name="own", prometheus={"address": f"{listener.url}/allowed/"})
    author.create(ROLLOUTS, "tenant-a", own)
    wait_status(stack, "tenant-a", lambda s: s.get("phase") == "Progressing", timeout=60, what="running", name="own")
    deadline = time.monotonic() + 30
    while not any(path.startswith("/allowed/") for path, _ in listener.seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5)  # several more ticks of the hijack and leak Rollouts

    assert _route_version(stack, "tenant-b") == before_b, "the other tenant's route was written"
    paths = [path for path, _ in listener.seen]
    assert paths and all(p.startswith("/allowed/") for p in paths), paths
    for _, headers in listener.seen:
        assert "authorization" not in headers
        assert not any(TOKEN in value or TENANT_HEADER in value for value in headers.values()), headers
    ledger.case(refused=True)
    ledger.note(
        f"tenancy: 3 refusals (403, foreign route held, foreign address held); {len(paths)} queries to an "
        "allowed policy address, none with the daemon's token or headers; tenant-b's route unchanged"
    )
