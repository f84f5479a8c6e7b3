"""Slack on the real stack, through the stand-in: one parent message per run updated in place and a
thread of replies; a click delivered through Socket Mode approves (a stranger's is refused), the
clicker is answered through response_url, and the approval message ends without buttons naming the
approver; a daemon killed mid-run is replaced and continues the same thread; with two replicas only
the leader holds the Socket Mode connection; Slack gone for 30 s delays no rollback, and the parent
shows the final state once Slack is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollout.notifiers.slack import APPROVE_ACTION
from tests.e2e.conftest import DaemonFactory, apply, fast_policy
from tests.e2e.observing import lease_holder, phase_is, record, status, wait_ready, wait_status
from tests.harness.slack import APP_TOKEN, DEFAULT_TOKEN, Message, SlackStandIn
from tests.harness.slack_fixtures import APPROVERS_GROUP, GROUP_MEMBER
from tests.harness.stack import CANARY, Daemon, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
APPROVER, STRANGER = "U0APPROVER", "U0STRANGER"
HEALTHY = {"error_rate": 0.001, "latency_median_ms": 20.0, "latency_p99_ms": 120.0}


@pytest.fixture
def slack(stack: Stack) -> Iterator[SlackStandIn]:
    with SlackStandIn(groups={APPROVERS_GROUP: [GROUP_MEMBER]}) as stand_in:
        yield stand_in
    stack.exporter.set_backend(CANARY, **HEALTHY)


def slack_env(stand_in: SlackStandIn) -> dict[str, str]:
    return {
        "ROLLOUT_SLACK__BOT_TOKEN": DEFAULT_TOKEN,
        "ROLLOUT_SLACK__APP_TOKEN": APP_TOKEN,
        "ROLLOUT_SLACK__MODE": "socket",
        "ROLLOUT_SLACK__BASE_URL": stand_in.base_url,
        "ROLLOUT_SLACK__RESPONSE_URL_PREFIX": stand_in.hooks,
    }


def approval_policy(namespace: str) -> dict[str, Any]:
    policy = fast_policy(namespace)
    spec = policy["spec"]
    spec["steps"] = [{"setWeight": 20}, {"approval": {"message": "20% looks fine: go to 50%?"}}, {"setWeight": 50},
                     {"setWeight": 100}]  # fmt: skip
    spec["notifications"] = {"slack": {"channel": "#deploys"}}
    spec["approvals"] = {"slack": {"channel": "#deploys", "approvers": [APPROVER, APPROVERS_GROUP]}, "timeout": "10m"}
    return policy


def the_request(stand_in: SlackStandIn) -> Message:
    """The approval request (a reply in the run's thread)."""
    for message in stand_in.in_channel("#deploys"):
        key = str(((message.metadata or {}).get("event_payload") or {}).get("key", ""))
        if message.thread_ts is not None and key.startswith("approval:"):
            return message
    raise LookupError("no approval request yet")


def answers(stand_in: SlackStandIn) -> list[str]:
    return [str(body.get("text", "")) for _, body in stand_in.responses]


def one_thread(stack: Stack, stand_in: SlackStandIn, ns: str) -> tuple[Message, list[Message]]:
    """The run's parent and its replies; fails unless every message in the channel belongs to them."""
    [parent] = stand_in.top_level("#deploys")
    replies = stand_in.replies(parent)
    assert len(replies) + 1 == len(stand_in.in_channel("#deploys"))
    assert status(stack, ns)["state"]["thread"]["ts"] == parent.ts  # recorded in status
    return parent, replies


def click(stand_in: SlackStandIn, daemon: Daemon, user: str) -> None:
    wait_until(stand_in.socket.open, timeout=30, what=f"{daemon.name}'s Socket Mode connection")
    assert stand_in.click(the_request(stand_in), APPROVE_ACTION, user_id=user), "the envelope was not acknowledged"


def test_one_thread_per_run_and_an_approval_through_socket_mode(
    stack: Stack, ns: str, daemons: DaemonFactory, slack: SlackStandIn
) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon", **slack_env(slack))
    apply(stack, approval_policy(ns))
    wait_status(stack, ns, phase_is("AwaitingApproval"), timeout=120, what="AwaitingApproval", daemons=(daemon,))
    wait_until(lambda: the_request(slack), timeout=30, what="the approval request in Slack")

    click(slack, daemon, STRANGER)
    wait_until(lambda: any("not an approver" in a for a in answers(slack)), timeout=30, what="the stranger's answer")
    assert status(stack, ns)["phase"] == "AwaitingApproval"
    clicked = time.monotonic()
    click(slack, daemon, GROUP_MEMBER)  # an approver through the user group
    wait_until(lambda: any("You approved step 2" in a for a in answers(slack)), timeout=60, what="the answer")
    answered = time.monotonic()
    final = wait_status(stack, ns, phase_is("Promoted"), timeout=120, what="Promoted", daemons=(daemon,))
    assert final["state"]["approvals"] == [f"step 2: {GROUP_MEMBER}"]

    wait_until(lambda: "*promoted*" in slack.top_level("#deploys")[0].shown(), timeout=30, what="parent: Promoted")
    parent, replies = one_thread(stack, slack, ns)
    request = the_request(slack)
    with pytest.raises(KeyError):
        request.button(APPROVE_ACTION)  # no buttons once decided
    with pytest.raises(KeyError):
        parent.button(APPROVE_ACTION)
    assert f"*Approved* by <@{GROUP_MEMBER}>" in request.shown()
    assert not any(r.broadcast for r in replies)  # nothing failed: nothing broadcast
    keys = [str(((r.metadata or {}).get("event_payload") or {}).get("key")) for r in replies]
    assert keys[0] == "event:started" and keys[-1] == "event:promoted", keys
    assert len(keys) == len(set(keys)), "no message posted twice"
    print("\n".join(f"{'  ' if m.thread_ts else ''}{m.shown().replace(chr(10), ' | ')}" for m in [parent, *replies]))
    record(
        "slack_thread",
        {
            "parent_messages": 1,
            "parent_updates": len(parent.updates),
            "replies": len(replies),
            "click_to_answer_seconds": round(answered - clicked, 2),
            "calls": len(slack.calls),
        },
    )


def test_a_daemon_killed_mid_run_is_replaced_and_continues_the_same_thread(
    stack: Stack, ns: str, daemons: DaemonFactory, slack: SlackStandIn
) -> None:
    first = daemons(namespaces=[ns], name=f"{ns}-first", **slack_env(slack))
    apply(stack, approval_policy(ns))
    wait_status(stack, ns, lambda s: (s.get("state") or {}).get("thread"), timeout=120, what="the thread recorded")
    wait_status(stack, ns, phase_is("AwaitingApproval"), timeout=120, what="AwaitingApproval", daemons=(first,))
    wait_until(lambda: the_request(slack), timeout=30, what="the approval request in Slack")
    first.kill()  # SIGKILL mid-run: no goodbye
    wait_until(lambda: not slack.socket.open(), timeout=30, what="the dead daemon's connection gone")

    second = daemons(namespaces=[ns], name=f"{ns}-second", **slack_env(slack))
    click(slack, second, APPROVER)
    wait_status(stack, ns, phase_is("Promoted"), timeout=120, what="Promoted", daemons=(second,))
    wait_until(lambda: "*promoted*" in slack.top_level("#deploys")[0].shown(), timeout=30, what="parent: Promoted")
    _, replies = one_thread(stack, slack, ns)
    assert f"*Approved* by <@{APPROVER}>" in the_request(slack).shown()  # found again after the restart
    keys = [str(((r.metadata or {}).get("event_payload") or {}).get("key")) for r in replies]
    assert len(keys) == len(set(keys)), f"no message posted twice: {keys}"
    assert "event:promoted" in keys


def test_only_the_leader_holds_the_socket_mode_connection(
    stack: Stack, ns: str, daemons: DaemonFactory, slack: SlackStandIn
) -> None:
    lease = f"lease-{ns}"
    env = {
        **slack_env(slack),
        "ROLLOUT_LEADER__ENABLED": "true",
        "ROLLOUT_LEADER__NAME": lease,
        "ROLLOUT_LEADER__LEASE_SECONDS": "6",
        "ROLLOUT_LEADER__RENEW_DEADLINE_SECONDS": "4",
        "ROLLOUT_LEADER__RETRY_SECONDS": "1",
    }
    a = daemons(namespaces=[ns], name=f"{ns}-a", **env)
    wait_until(lambda: lease_holder(stack, lease) == a.name, timeout=60, what="a holds the lease")
    b = daemons(namespaces=[ns], name=f"{ns}-b", **env)
    wait_ready(b)
    wait_until(lambda: len(slack.socket.open()) == 1, timeout=30, what="the leader's connection")
    time.sleep(5)  # b had every chance to connect
    assert (len(slack.socket.open()), slack.socket.opened) == (1, 1)
    assert [c.method for c in slack.calls].count("apps.connections.open") == 1
    a.kill()
    wait_until(lambda: lease_holder(stack, lease) == b.name, timeout=30, what="b leads")
    wait_until(lambda: len(slack.socket.open()) == 1 and slack.socket.opened == 2, timeout=30, what="b connects")


def test_slack_gone_for_30_seconds_delays_no_rollback(
    stack: Stack, ns: str, daemons: DaemonFactory, slack: SlackStandIn
) -> None:
    daemon = daemons(namespaces=[ns], name=f"{ns}-daemon", **slack_env(slack))
    policy = fast_policy(ns)
    policy["spec"]["steps"] = [{"setWeight": w} for w in (20, 40, 60, 80, 100)]
    policy["spec"]["notifications"] = {"slack": {"channel": "#deploys"}}
    apply(stack, policy)
    wait_status(stack, ns, lambda s: s.get("canaryWeight") == 40, timeout=120, what="40%", daemons=(daemon,))
    slack.stop()
    down = time.monotonic()
    stack.exporter.set_backend(CANARY, error_rate=0.3)
    final = wait_status(stack, ns, phase_is("RolledBack"), timeout=60, what="RolledBack", daemons=(daemon,))
    rolled_back = time.monotonic()
    assert rolled_back - down < 30, "rolled back while Slack was still down"
    assert final["stableWeight"] == 100
    time.sleep(max(0.0, 30 - (time.monotonic() - down)))
    slack.start()
    up = time.monotonic()
    [parent] = slack.top_level("#deploys")
    wait_until(lambda: "*rolled back*" in parent.shown(), timeout=90, what="the parent showing RolledBack")
    shown = time.monotonic()
    record(
        "slack_outage",
        {
            "outage_seconds": round(up - down, 1),
            "fault_to_status_rolled_back_seconds_with_slack_down": round(rolled_back - down, 2),
            "slack_back_to_parent_current_seconds": round(shown - up, 2),
        },
    )
