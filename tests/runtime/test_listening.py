"""The Socket Mode listener against the stand-in's real WebSocket server: it connects only while
leading (a standby never does), acknowledges each envelope and hands its payload over, reconnects
after Slack's ``disconnect`` and after an outage, and leaves an envelope that arrives after
leadership was lost unacknowledged."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from rollout.notifiers.slack import APPROVE_ACTION, SlackNotifier
from rollout.runtime.listening import SocketModeListener
from tests.harness.slack import APP_TOKEN, Message, SlackStandIn
from tests.notifiers.samples import APPROVAL, WAITING


def wait(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class Leader:
    def __init__(self, leading: bool) -> None:
        self.leading = leading

    def __call__(self) -> bool:
        return self.leading


@pytest.fixture
def approval(slack_api: SlackStandIn, slack_token: str) -> Message:
    SlackNotifier.connect(slack_token, base_url=slack_api.base_url).request_approval(WAITING, APPROVAL)
    return slack_api.messages[-1]


@contextlib.contextmanager
def listening(api: SlackStandIn, leader: Leader, got: list[Any], **kwargs: Any) -> Iterator[SocketModeListener]:
    listener = SocketModeListener(
        APP_TOKEN, handle=got.append, leading=leader, base_url=api.base_url, ping_seconds=1.0, **kwargs
    )
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


def test_the_leader_connects_acks_envelopes_and_hands_over_their_payload(
    slack_api: SlackStandIn, approval: Message
) -> None:
    got: list[Any] = []
    with listening(slack_api, Leader(True), got, check_seconds=0.1) as listener:
        wait(lambda: listener.connected and slack_api.socket.open(), "a connection")
        assert slack_api.click(approval, APPROVE_ACTION, user_id="U012AB3CD")  # acknowledged within 3 s
        wait(lambda: got, "the payload")
        [payload] = got
        assert (payload["type"], payload["user"]["id"], payload["actions"][0]["action_id"]) == (
            "block_actions",
            "U012AB3CD",
            APPROVE_ACTION,
        )
        assert payload["response_url"].startswith(slack_api.hooks)
        assert listener.envelopes == 1
        assert [c.method for c in slack_api.calls].count("apps.connections.open") == 1


def test_a_standby_never_connects_and_a_deposed_leader_disconnects(slack_api: SlackStandIn, approval: Message) -> None:
    leader, got = Leader(False), list[Any]()
    with listening(slack_api, leader, got, check_seconds=0.1) as listener:
        time.sleep(1.0)
        assert (slack_api.socket.opened, listener.connected) == (0, False)
        assert "apps.connections.open" not in [c.method for c in slack_api.calls]
        leader.leading = True
        wait(slack_api.socket.open, "the new leader's connection")
        leader.leading = False
        wait(lambda: not slack_api.socket.open(), "the deposed leader to close its connection")
        with pytest.raises(ConnectionError):
            slack_api.socket.send({"type": "block_actions"})  # Slack has nobody to hand a click to
    assert got == []


def test_an_envelope_after_leadership_was_lost_is_not_acknowledged(slack_api: SlackStandIn, approval: Message) -> None:
    leader, got = Leader(True), list[Any]()
    with listening(slack_api, leader, got, check_seconds=60.0) as listener:  # no periodic check in time
        wait(slack_api.socket.open, "a connection")
        leader.leading = False
        assert not slack_api.click(approval, APPROVE_ACTION, user_id="U012AB3CD", timeout=1.0)
        wait(lambda: not slack_api.socket.open(), "the connection closed")
        assert (got, listener.refused) == ([], 1)


def test_slacks_disconnect_is_followed_by_a_new_connection(slack_api: SlackStandIn, approval: Message) -> None:
    got: list[Any] = []
    with listening(slack_api, Leader(True), got, check_seconds=0.1):
        wait(slack_api.socket.open, "a connection")
        slack_api.socket.disconnect(close_after=0.5)
        wait(lambda: slack_api.socket.opened == 2 and len(slack_api.socket.open()) == 1, "the reconnection")
        assert slack_api.click(approval, APPROVE_ACTION, user_id="U012AB3CD")
        wait(lambda: got, "the payload")


def test_after_an_outage_the_listener_connects_again(slack_api: SlackStandIn, approval: Message) -> None:
    got: list[Any] = []
    with listening(slack_api, Leader(True), got, check_seconds=0.1):
        wait(slack_api.socket.open, "a connection")
        slack_api.stop()
        time.sleep(2.5)  # a few failed reconnection attempts (every ping interval, 1 s here)
        slack_api.start()
        wait(slack_api.socket.open, "the connection after the outage", timeout=20)
        assert slack_api.click(replace(approval), APPROVE_ACTION, user_id="U012AB3CD")
        wait(lambda: got, "the payload")
