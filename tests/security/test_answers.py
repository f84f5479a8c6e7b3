"""Item 8: truthful Slack replies, one-line errors for malformed kubeconfigs, Events for 253-character
Rollout names (on the real API server)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollout.core.states import Command
from rollout.kube.client import KubeClient
from rollout.kube.events import EventRecorder, event_name
from rollout.runtime.interacting import SlackInteractions
from tests.harness.kube import REPO_ROOT, ControlPlane
from tests.security.conftest import Ledger
from tests.security.test_http import SECRET, click, signed

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LONG_NAME = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61

KUBECONFIGS = {
    "not YAML": "not: [valid",
    "a scalar": "just a string",
    "wrong shapes": "apiVersion: v1\nclusters: 5\ncontexts: []\n",
    "bad base64 CA": (
        "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', certificate-authority-data: '!!x'}\n"
        "users:\n- name: u\n  user: {token: t}\n"
    ),
    "missing CA file": (
        "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', certificate-authority: /nonexistent/ca}\n"
        "users:\n- name: u\n  user: {token: t}\n"
    ),
    "unknown context": (
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\ncontexts: []\nclusters: []\nusers: []\n"
    ),
    "binary": "\x00\xff\xfe",
    "empty": "",
}


def _kubeconfig(tmp_path: Path, name: str) -> Path:
    if name == "a FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)
        return path
    if name == "a directory":
        return tmp_path
    path = tmp_path / "kubeconfig"
    path.write_bytes(KUBECONFIGS[name].encode("latin-1"))
    return path


@pytest.mark.parametrize("command", [["status"], ["approve", "web"], ["run"]], ids=["status", "approve", "run"])
@pytest.mark.parametrize("name", [*KUBECONFIGS, "a FIFO", "a directory"])
def test_a_malformed_kubeconfig_is_one_line_and_exit_1(
    command: list[str], name: str, tmp_path: Path, ledger: Ledger
) -> None:
    path = _kubeconfig(tmp_path, name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_") and k != "KUBECONFIG"}
    env.update({"ROLLOUT_PORT": "0", "ROLLOUT_INTERACTIONS_PORT": "0"})
    # the daemon reads its setting; the people's commands read the file the way kubectl does
    env["ROLLOUT_KUBE__KUBECONFIG" if command == ["run"] else "KUBECONFIG"] = str(path)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rollout", *command],
            check=False,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        ledger.case(refused=False, hung=True)
        raise
    lines = done.stderr.strip().splitlines()
    ledger.case(refused=done.returncode == 1, traceback="Traceback" in done.stderr)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"rollout {command[0]}: "), lines[0]
    assert "kubeconfig" in lines[0] or "cannot" in lines[0]


def test_event_names_fit_and_stay_unique_and_deterministic() -> None:
    names = {event_name(LONG_NAME, "InvalidPolicyFile", f"problem {i}", NOW) for i in range(100)}
    assert len(names) == 100
    assert all(len(n) <= 253 and not n.split(".")[-2].endswith("-") for n in names)
    assert event_name(LONG_NAME, "R", "m", NOW) == event_name(LONG_NAME, "R", "m", NOW)
    assert event_name("web", "R", "m", NOW).startswith("web.")


@pytest.mark.kube
def test_events_are_recorded_for_a_253_character_rollout(
    control_plane: ControlPlane, kube: KubeClient, namespace: str, ledger: Ledger
) -> None:
    recorder = EventRecorder(kube, instance="security-test")
    for i in range(3):
        recorder.record(
            namespace,
            LONG_NAME,
            uid=None,
            reason="InvalidPolicyFile",
            message="é" * 2000,  # 4,000 bytes of UTF-8: clipped to the API's 1 kB note
            warning=True,
            now=NOW + timedelta(seconds=i),
        )
    items = control_plane.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")["items"]
    ours = [e for e in items if e["regarding"]["name"] == LONG_NAME]
    ledger.case(refused=False)
    assert len(ours) == 3
    assert all(len(e["note"].encode()) <= 1024 for e in ours)
    # a cause that repeats: its Event's series, as the API server stores it
    first = ours[0]["metadata"]["name"]
    recorder.repeat(namespace, first, regarding=LONG_NAME, count=42, now=NOW + timedelta(minutes=5))
    stored = control_plane.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events/{first}")
    assert stored["series"]["count"] == 42
    assert stored["series"]["lastObservedTime"].startswith((NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"))


def test_slack_replies_say_recorded_never_approved(ledger: Ledger) -> None:
    submitted: list[Command] = []

    def submit(namespace: str, name: str, command: Command) -> None:
        del namespace, name
        submitted.append(command)

    handler = SlackInteractions(SECRET, submit, lambda key: [], lambda: datetime.now(UTC))
    for action in ("rollout.approve", "rollout.reject"):
        payload = click()
        payload["actions"] = [{**payload["actions"][0], "action_id": action}]  # type: ignore[index]
        status, answer = handler.handle(*signed(payload))
        ledger.case(refused=False)
        assert status == 200
        assert "was recorded" in answer["text"]
        assert "only if that approval is still pending" in answer["text"]
        assert "Approved" not in answer["text"] and "Rejected" not in answer["text"]
    assert len(submitted) == 2
