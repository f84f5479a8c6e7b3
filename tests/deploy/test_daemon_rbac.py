"""The daemon as the kustomize base installs it, on a real API server with the base applied: the real
daemon process, authenticated with a token of the base's ServiceAccount (TokenRequest) and given the
base's settings, starts, becomes ready, finds the admission policy, writes a route's weights and a
Rollout's status, records a Slack click as a RolloutCommand, and carries out or refuses people's
commands by the RBAC verbs of the base's people roles (SubjectAccessReview). Any permission the
base lacks shows up here as a daemon that never gets there (and as ``403`` lines in its log).

The base is installed with the ``slack-http`` component (Slack's HTTP mode, its settings from the
rendered ConfigMap) so that a signed click can be POSTed to the daemon here; clicks through Socket
Mode, the base's default, are tested against a Slack stand-in in tests/runtime/test_listening.py
and tests/e2e/test_slack.py.

Users are impersonated through the admin token; the daemon's Prometheus is a closed port (no
rollout here needs a verdict); its Slack is the stand-in of tests/harness/slack.py (without a bot
token there is no Slack, and so no interactions listener)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.core.states import CommandKind
from rollout.kube.commands import ROLLOUT_COMMANDS, command_body
from rollout.kube.crd import ROLLOUTS
from rollout.notifiers.slack import APPROVE_ACTION, ApprovalRef
from tests.deploy.manifests import BASE, SLACK_HTTP, find
from tests.harness.deploy_tools import Applier, ToolError, kustomize_build_with
from tests.harness.kube import CRD_FIXTURES, REPO_ROOT, ControlPlane, ControlPlaneError, free_port
from tests.harness.slack import DEFAULT_TOKEN, SlackStandIn
from tests.harness.stack import CANARY, ROUTE, Daemon, gateway_route

pytestmark = pytest.mark.kube

SYSTEM, NS, NAME = "rollout-system", "shop", "recommendations"
SIGNING_SECRET = "deploy-test-signing-secret"
SLACK_APPROVER = "U0ONCALL1"
COMMANDS = f"/apis/{ROLLOUT_COMMANDS.api_version}/namespaces/{NS}/{ROLLOUT_COMMANDS.plural}"
ROUTES = f"/apis/appmesh.k8s.aws/v1beta2/namespaces/{NS}/gatewayroutes/{ROUTE}"
ROLLOUT = f"/apis/{ROLLOUTS.api_version}/namespaces/{NS}/{ROLLOUTS.plural}/{NAME}"


def _token_kubeconfig(plane: ControlPlane, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of the base's ServiceAccount ``rollout``."""
    token = plane.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM}/serviceaccounts/rollout/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]
    assert plane.workdir is not None
    ca = base64.b64encode((plane.workdir / "certs" / "apiserver.crt").read_bytes()).decode()
    user = f"system:serviceaccount:{SYSTEM}:rollout"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "base",
                "clusters": [{"name": "base", "cluster": {"server": plane.url, "certificate-authority-data": ca}}],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "base", "context": {"cluster": "base", "user": user}}],
            }
        )
    )
    path.chmod(0o600)
    return path


def _bind(plane: ControlPlane, user: str, role: str) -> None:
    Applier(plane).apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role}", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Daemon]]:
    """A cluster with the base (and the slack-http component) applied, the route CRDs, a route and
    its Rollout; the daemon running, its Slack the stand-in."""
    workdir = tmp_path_factory.mktemp("daemon-rbac")
    objs = kustomize_build_with(BASE, [SLACK_HTTP])
    try:
        plane = ControlPlane(name="rollout-daemon-rbac").start()
    except (ToolError, ControlPlaneError) as e:
        pytest.fail(str(e), pytrace=False)
    daemon: Daemon | None = None
    slack = SlackStandIn()
    try:
        slack.start()
        plane.apply_crds(sorted(CRD_FIXTURES.glob("*.yaml")))
        Applier(plane).apply_all(objs)
        plane.create_namespace(NS)
        plane.request("POST", ROUTES.rsplit("/", 1)[0], gateway_route(NS, canary=CANARY))
        policy = yaml.safe_load((REPO_ROOT / "policies" / "recommendations-canary.yaml").read_text())
        policy["metadata"]["namespace"] = NS
        policy["spec"]["approvals"] = {"slack": {"channel": "#deploys", "approvers": [SLACK_APPROVER]}}
        plane.request("POST", f"/apis/{ROLLOUTS.api_version}/namespaces/{NS}/{ROLLOUTS.plural}", policy)
        _bind(plane, "oncall", "rollout-operator")
        _bind(plane, "releaser", "rollout-approver")

        settings = find(objs, "ConfigMap", "rollout-settings")["data"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env.update(settings)
        env.pop("ROLLOUT_POLICY_DIR")  # the mounted ConfigMap directory; no policy files here
        env.update(
            {
                "ROLLOUT_KUBE__KUBECONFIG": str(_token_kubeconfig(plane, workdir / "kubeconfig")),
                "ROLLOUT_PROMETHEUS__URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
                "ROLLOUT_HOST": "127.0.0.1",
                "ROLLOUT_PORT": str(free_port()),
                "ROLLOUT_INTERACTIONS_HOST": "127.0.0.1",
                "ROLLOUT_INTERACTIONS_PORT": str(free_port()),
                "ROLLOUT_LEADER__NAMESPACE": SYSTEM,  # the Deployment's fieldRefs
                "ROLLOUT_LEADER__IDENTITY": "rollout-0",
                "ROLLOUT_SLACK__BOT_TOKEN": DEFAULT_TOKEN,  # the Secret's keys token and signing-secret
                "ROLLOUT_SLACK__SIGNING_SECRET": SIGNING_SECRET,
                "ROLLOUT_SLACK__BASE_URL": slack.base_url,
                "ROLLOUT_SLACK__RESPONSE_URL_PREFIX": slack.hooks,
                "ROLLOUT_RESYNC_SECONDS": "2",
                "PYTHONUNBUFFERED": "1",
            }
        )
        daemon = Daemon(env, workdir, "rollout-0").start()
        yield plane, daemon
    finally:
        if daemon is not None:
            daemon.terminate(timeout=20)
        slack.stop()
        plane.stop()


def _until(check: Callable[[], Any], what: str, daemon: Daemon, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if not daemon.running or time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s; daemon log:\n{daemon.tail(60)}", pytrace=False)
        time.sleep(0.25)


def _forbidden(daemon: Daemon) -> list[str]:
    return [line for line in daemon.tail(2000).splitlines() if "forbidden" in line.lower() or " 403" in line]


def test_the_daemon_starts_ready_as_the_base_service_account(installed: tuple[ControlPlane, Daemon]) -> None:
    plane, daemon = installed
    _until(lambda: daemon.get("/readyz")[0] == 200, "/readyz", daemon)  # ready: caches listed
    _until(lambda: "shards [0] of 1" in daemon.get("/readyz")[1], "the lease taken", daemon)
    started = next(r for r in daemon.logs() if r.get("event") == "rollout.started")
    assert started["user"] == f"system:serviceaccount:{SYSTEM}:rollout"  # SelfSubjectReview answered
    lease = plane.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM}/leases/rollout-daemon")
    assert lease["spec"]["holderIdentity"] == "rollout-0"
    assert daemon.env["ROLLOUT_SLACK__MODE"] == "http"  # from the component's ConfigMap
    assert started["interactions_port"] == int(daemon.env["ROLLOUT_INTERACTIONS_PORT"])
    assert _forbidden(daemon) == []


def test_the_daemon_finds_the_admission_policy_the_base_installs(installed: tuple[ControlPlane, Daemon]) -> None:
    _, daemon = installed
    _until(lambda: daemon.get("/readyz")[0] == 200, "/readyz", daemon)
    events = {r.get("event") for r in daemon.logs()}
    assert "rollout.no-admission-policy" not in events, daemon.tail(60)


def test_the_daemon_writes_the_route_and_the_status(installed: tuple[ControlPlane, Daemon]) -> None:
    plane, daemon = installed

    def canary_weight() -> int:
        route = plane.request("GET", ROUTES)
        targets = route["spec"]["httpRoute"]["action"]["weightedTargets"]
        return next(int(t["weight"]) for t in targets if t["virtualService"]["virtualServiceRef"]["name"] == CANARY)

    _until(lambda: canary_weight() == 5, "the first step's weight on the route", daemon)
    status = _until(lambda: plane.request("GET", ROLLOUT).get("status"), "the Rollout's status", daemon)
    assert (status["phase"], status["step"]) == ("Progressing", 1), status
    assert _forbidden(daemon) == []


def _command(plane: ControlPlane, user: str, kind: CommandKind) -> str:
    _, review = plane.request_as(
        user,
        None,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    groups = review["status"]["userInfo"].get("groups", [])
    status, created = plane.request_as(
        user, None, "POST", COMMANDS, command_body(NS, NAME, kind, by=user, groups=groups)
    )
    assert status == 201, created
    return str(created["metadata"]["name"])


def _handled(plane: ControlPlane, daemon: Daemon, name: str) -> dict[str, Any]:
    def status() -> dict[str, Any] | None:
        code, obj = plane.request_as("oncall", None, "GET", f"{COMMANDS}/{name}")
        return obj.get("status") if code == 200 and (obj.get("status") or {}).get("phase") else None

    answer: dict[str, Any] = _until(status, f"RolloutCommand {name} handled", daemon)
    return answer


def test_a_persons_command_is_carried_out_by_the_rbac_verbs_of_their_role(
    installed: tuple[ControlPlane, Daemon],
) -> None:
    plane, daemon = installed
    _until(lambda: daemon.get("/readyz")[0] == 200, "/readyz", daemon)
    refused = _handled(plane, daemon, _command(plane, "releaser", CommandKind.ABORT))
    assert refused["phase"] == "Refused", refused
    assert "releaser may not abort rollouts in shop" in refused["message"]
    paused = _handled(plane, daemon, _command(plane, "oncall", CommandKind.PAUSE))
    assert paused["phase"] in ("Accepted", "Ignored"), paused  # the SubjectAccessReview said yes
    assert "may not" not in paused["message"] and "admission policy" not in paused["message"]
    assert paused["handledBy"] == "rollout-0"
    assert _forbidden(daemon) == []


def _click(daemon: Daemon, payload: dict[str, Any]) -> tuple[int, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()))
    signature = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    port = int(daemon.env["ROLLOUT_INTERACTIONS_PORT"])
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/interactions",
        data=body,
        headers={
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={signature}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode()


def test_a_slack_click_becomes_a_command_recorded_by_the_daemon(installed: tuple[ControlPlane, Daemon]) -> None:
    plane, daemon = installed
    _until(lambda: daemon.get("/readyz")[0] == 200, "/readyz", daemon)
    _until(lambda: "status" in plane.request("GET", ROLLOUT), "the Rollout reconciled", daemon)
    value = ApprovalRef(NS, NAME, "approval-1-3", 3).encode()
    payload = {
        "type": "block_actions",
        "trigger_id": "1234.5678.deploy",
        "user": {"id": SLACK_APPROVER},
        "actions": [{"action_id": APPROVE_ACTION, "value": value}],
    }
    status, answer = _click(daemon, payload)
    assert status == 200 and "was recorded" in answer, f"{status} {answer}\n{daemon.tail(20)}"

    def recorded() -> list[dict[str, Any]]:
        items = plane.request("GET", COMMANDS).get("items", [])
        return [c for c in items if c["spec"].get("slackUser") == SLACK_APPROVER]

    (command,) = _until(recorded, "the click's RolloutCommand", daemon)
    assert command["spec"]["by"] == f"system:serviceaccount:{SYSTEM}:rollout"
    assert command["spec"]["ref"] == "approval-1-3"
    assert _forbidden(daemon) == []
