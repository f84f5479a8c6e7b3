"""The daemon's Slack side: which pieces exist for which settings, and the run's thread written into
status at once (only while leading, only into the same run's state, kept by later reconciles)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from rollout.core import persisting
from rollout.core.states import ChatThread, Phase, RolloutState
from rollout.errors import NotLeader
from rollout.notifiers.null import NullNotifier
from rollout.notifiers.slack import SlackNotifier
from rollout.runtime.chatting import Chat
from rollout.runtime.inmemory import InMemoryRollouts
from rollout.settings import SlackSettings

T0 = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
STATE = RolloutState(phase=Phase.PROGRESSING, revision="a10e06a5a254", run_started_at=T0)
THREAD = ChatThread("C0DEPLOYS", "1741089600.000100", STATE.run_id)


def chat(settings: SlackSettings, rollouts: InMemoryRollouts | None = None, leading: bool = True) -> Chat:
    def guard(key: str) -> None:
        if not leading:
            raise NotLeader(f"not the leader of {key}")

    return Chat(
        settings,
        rollouts=rollouts or InMemoryRollouts(),
        submit=lambda ns, name, command: "c",
        approvers_for=lambda key: [],
        known=lambda: ["shop/recs"],
        rollout=lambda ns, name: None,
        owns=lambda key: leading,
        guard=guard,
        leading=lambda: leading,
        clock=lambda: T0,
    )


def stored(state: RolloutState) -> InMemoryRollouts:
    rollouts = InMemoryRollouts()
    key = rollouts.put({"metadata": {"namespace": "shop", "name": "recs"}, "spec": {}})
    obj = rollouts.get("shop", "recs")
    rollouts.write_status(obj, {"phase": state.phase.value, "state": persisting.dump(state)})
    assert key == "shop/recs"
    return rollouts


def test_the_thread_is_written_into_the_runs_state_and_survives_the_next_status_write() -> None:
    rollouts = stored(STATE)
    chat(SlackSettings(), rollouts).record_thread("shop/recs", THREAD)
    chat(SlackSettings(), rollouts).record_thread("shop/recs", THREAD)  # the same again: no write
    assert len(rollouts.writes) == 2
    state = rollouts.get(["shop", "recs"][0], "recs").state()
    assert state.thread == THREAD
    assert rollouts.status("shop/recs")["phase"] == "Progressing"  # the rest of status as it was


def test_a_thread_of_another_run_or_while_not_leading_is_not_written() -> None:
    rollouts = stored(STATE)
    chat(SlackSettings(), rollouts).record_thread("shop/recs", ChatThread("C0DEPLOYS", "1.2", "old@run"))
    chat(SlackSettings(), rollouts, leading=False).record_thread("shop/recs", THREAD)
    chat(SlackSettings(), rollouts).record_thread("shop/gone", THREAD)  # deleted meanwhile: logged, not raised
    assert len(rollouts.writes) == 1


@pytest.mark.parametrize(
    ("settings", "pieces"),
    [
        ({}, (NullNotifier, False, False, False)),
        ({"bot_token": "xoxb-1"}, (SlackNotifier, True, False, False)),
        ({"bot_token": "xoxb-1", "app_token": "xapp-1"}, (SlackNotifier, True, True, False)),
        ({"bot_token": "xoxb-1", "mode": "http", "signing_secret": "s"}, (SlackNotifier, True, False, True)),
        ({"bot_token": "xoxb-1", "mode": "http", "app_token": "xapp-1"}, (SlackNotifier, True, False, False)),
    ],
    ids=["no-slack", "socket-without-app-token", "socket", "http", "http-without-secret"],
)
def test_the_pieces_for_each_setting(settings: dict[str, Any], pieces: tuple[type, bool, bool, bool]) -> None:
    c = chat(SlackSettings.model_validate(settings))
    assert (type(c.delivery.notifier), c.interactions is not None, c.listener is not None, c.http is not None) == pieces


def test_settings_that_leave_clicks_unheard_are_named() -> None:
    assert chat(SlackSettings()).warnings() == []
    socket = chat(SlackSettings(bot_token=SecretStr("xoxb-1"), signing_secret=SecretStr("s"))).warnings()
    assert socket == [
        "slack.mode is socket but slack.app_token is not set: clicks are not received",
        "slack.signing_secret is set but slack.mode is socket: /slack/interactions is off",
    ]
    http = chat(SlackSettings(bot_token=SecretStr("xoxb-1"), mode="http")).warnings()
    assert http == ["slack.mode is http but slack.signing_secret is not set: clicks are not received"]
