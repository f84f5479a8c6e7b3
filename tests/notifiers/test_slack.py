"""SlackNotifier against the Slack stand-in: one thread per run (the parent updated in place, events
as replies, failures broadcast), approvals asked in the thread or elsewhere and updated in place
when resolved, a restarted notifier continuing the same thread (recorded, or found by metadata),
answers through response_url, user groups, and the translation of Slack's failures."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest
from slack_sdk import WebClient

from rollout.core.actions import ApprovalResolved, Resolution
from rollout.core.states import ChatThread
from rollout.errors import NotifierError
from rollout.notifiers.slack import (
    APPROVE_ACTION,
    REJECT_ACTION,
    ApprovalRef,
    SlackError,
    SlackNotifier,
    SlackRateLimited,
)
from rollout.runtime.retrying import SLACK_CALLS
from tests.harness.slack import BOT_USER_ID, SlackStandIn
from tests.harness.slack_fixtures import APPROVERS_GROUP, GROUP_MEMBER
from tests.notifiers.samples import APPROVAL, BASE, EVENTS, WAITING

STARTED = EVENTS["started"][1]
STEP = EVENTS["step"][1]
ROLLED_BACK = EVENTS["rolled-back"][1]


class Recorded:
    """A notifier and the threads it asked to record."""

    def __init__(self, api: SlackStandIn, token: str, **kwargs: Any) -> None:
        self.threads: list[tuple[str, ChatThread]] = []
        self.notifier = SlackNotifier.connect(
            token,
            base_url=api.base_url,
            timeout=5,
            on_thread=lambda key, thread: self.threads.append((key, thread)),
            response_prefix=api.hooks,
            **kwargs,
        )


def methods(api: SlackStandIn) -> list[str]:
    return [c.method for c in api.calls]


def test_a_run_is_one_parent_message_updated_in_place_and_a_thread_of_replies(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    rec = Recorded(slack_api, slack_token)
    rec.notifier.notify(BASE, STARTED)
    rec.notifier.update(replace(BASE, message="step 2/6: canary to 10%", step=2))
    rec.notifier.update(replace(BASE, message="step 2/6: canary to 10%", step=2))  # shows that already: no call
    rec.notifier.notify(BASE, STEP)

    [parent] = slack_api.top_level("#deploys")
    assert parent.metadata == {"event_type": "rollout_run", "event_payload": {"rollout": BASE.rollout, "run": BASE.run}}
    assert len(parent.updates) == 1 and "step 2/6" in parent.shown()
    replies = slack_api.replies(parent)
    assert [r.shown().split("\n")[0] for r in replies] == [
        f"{BASE.rollout}: {STARTED.message}",
        f"{BASE.rollout}: {STEP.message}",
    ]
    assert [r.broadcast for r in replies] == [False, False]
    assert rec.threads == [(BASE.rollout, ChatThread("C0DEPLOYS", parent.ts, BASE.run))]  # recorded once
    assert methods(slack_api).count("conversations.history") == 0  # "#deploys" is a name: nothing to look up


def test_failures_are_also_broadcast_to_the_channel(slack_api: SlackStandIn, slack_token: str) -> None:
    n = Recorded(slack_api, slack_token).notifier
    for name in ("step", "drift", "deadline", "route-error", "canary-failed", "rolled-back", "promoted"):
        snapshot, note = EVENTS[name]
        n.notify(replace(snapshot, run=BASE.run), note)
    [parent] = slack_api.top_level("#deploys")
    broadcast = {r.metadata["event_payload"]["key"] for r in slack_api.replies(parent) if r.broadcast and r.metadata}
    assert broadcast == {"event:drift-1-30", "event:deadline-1", "event:route-RouteNotFound-1", "event:ended"}


def test_an_approval_in_the_notification_channel_is_asked_in_the_thread_and_on_the_parent(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    n = Recorded(slack_api, slack_token).notifier
    n.request_approval(WAITING, APPROVAL)
    n.update(WAITING)
    [parent] = slack_api.top_level("#deploys")
    [request] = slack_api.replies(parent)
    assert "<@U012AB3CD>, <!subteam^S0RELEASE>" in request.shown()
    for message in (parent, request):
        _, button = message.button(APPROVE_ACTION)
        assert ApprovalRef.decode(button["value"]) == ApprovalRef("shop", "recommendations", APPROVAL.key, 4)
        assert message.button(REJECT_ACTION)[1]["confirm"]["confirm"]["text"] == "Reject"

    n.approval_resolved(WAITING, ApprovalResolved(APPROVAL.key, 4, Resolution.APPROVED, by="U012AB3CD"))
    n.update(replace(WAITING, phase="Progressing", approval=""))
    for message in (parent, request):
        with pytest.raises(KeyError):
            message.button(APPROVE_ACTION)  # no buttons once decided
    assert "*Approved* by <@U012AB3CD> at <!date^" in request.shown()
    assert "Asked: 25% for 10m" in request.shown()


def test_an_approval_in_another_channel_is_top_level_there_with_a_pointer_in_the_thread(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    n = Recorded(slack_api, slack_token).notifier
    elsewhere = replace(WAITING, approval_channel="#general")
    n.request_approval(elsewhere, replace(APPROVAL, channel="#general"))
    n.update(elsewhere)
    [parent] = slack_api.top_level("#deploys")
    [request] = slack_api.top_level("#general")
    [pointer] = slack_api.replies(parent)
    assert "asked in <#C0GENERAL>" in pointer.shown()
    with pytest.raises(KeyError):
        parent.button(APPROVE_ACTION)  # people in #deploys may not be the approvers of #general
    request.button(APPROVE_ACTION)

    restarted = Recorded(slack_api, slack_token).notifier  # the thread is recorded: the pointer is found
    thread = ChatThread("C0DEPLOYS", parent.ts, BASE.run)
    restarted.approval_resolved(
        replace(elsewhere, thread=thread), ApprovalResolved(APPROVAL.key, 4, Resolution.TIMED_OUT, detail="paused")
    )
    assert "*Timed out* at" in request.shown() and "→ paused" in request.shown()


def test_a_restarted_notifier_continues_the_recorded_thread(slack_api: SlackStandIn, slack_token: str) -> None:
    first = Recorded(slack_api, slack_token)
    first.notifier.notify(WAITING, STARTED)
    first.notifier.request_approval(WAITING, APPROVAL)
    [(_, thread)] = first.threads

    second = Recorded(slack_api, slack_token)  # a new process: only status (the thread) and Slack remain
    recorded = replace(WAITING, thread=thread)
    second.notifier.update(recorded)  # continues the thread without reading it
    assert "conversations.replies" not in methods(slack_api)
    second.notifier.approval_resolved(recorded, ApprovalResolved(APPROVAL.key, 4, Resolution.REJECTED, by="U012AB3CD"))
    second.notifier.notify(recorded, STARTED)  # the thread was read: a message already there is not posted again
    second.notifier.notify(recorded, ROLLED_BACK)
    assert methods(slack_api).count("conversations.replies") == 1

    [parent] = slack_api.top_level("#deploys")
    request = next(r for r in slack_api.replies(parent) if "Rejected" in r.shown())
    assert "*Rejected* by <@U012AB3CD>" in request.shown() and "→ rolling back" in request.shown()
    assert len(slack_api.replies(parent)) == 3  # started, the request (updated in place), rolled back
    assert second.threads == []  # nothing new to record


def test_a_thread_posted_but_not_recorded_is_found_by_its_metadata(slack_api: SlackStandIn, slack_token: str) -> None:
    by_id = replace(BASE, channel="C0DEPLOYS")
    first = Recorded(slack_api, slack_token)
    first.notifier.notify(by_id, STARTED)  # ... and the daemon dies before the thread reaches status

    second = Recorded(slack_api, slack_token)
    second.notifier.notify(by_id, STEP)
    [parent] = slack_api.top_level("#deploys")
    assert [r.metadata["event_payload"]["key"] for r in slack_api.replies(parent) if r.metadata] == [
        "event:started",
        "event:step-1",
    ]
    assert second.threads == [(BASE.rollout, ChatThread("C0DEPLOYS", parent.ts, BASE.run))]  # recorded now


def test_with_a_channel_name_an_unrecorded_thread_cannot_be_found_by_a_new_process(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    """The documented limit: ``#name`` cannot be read back without the channel ID, which a new
    process learns only from its first post; the old parent stays, a second one is posted."""
    Recorded(slack_api, slack_token).notifier.notify(BASE, STARTED)
    Recorded(slack_api, slack_token).notifier.notify(BASE, STEP)
    assert len(slack_api.top_level("#deploys")) == 2


def test_a_new_run_gets_a_new_thread(slack_api: SlackStandIn, slack_token: str) -> None:
    n = Recorded(slack_api, slack_token).notifier
    n.notify(BASE, STARTED)
    n.notify(replace(BASE, run="7d0c3e5b9f21@2025-03-04T13:00:00+00:00"), STARTED)
    assert len(slack_api.top_level("#deploys")) == 2


def test_without_a_run_or_a_channel(slack_api: SlackStandIn, slack_token: str) -> None:
    n = Recorded(slack_api, slack_token).notifier
    n.notify(replace(BASE, channel=None), STARTED)
    n.update(replace(BASE, channel=None))
    assert slack_api.calls == []
    n.notify(replace(BASE, run=""), EVENTS["superseded"][1])  # no run: a top-level message naming the rollout
    [message] = slack_api.top_level("#deploys")
    assert message.metadata is None and message.shown().startswith(f"{BASE.rollout}: spec changed")
    default = Recorded(slack_api, slack_token, default_channel="C0GENERAL").notifier
    default.notify(replace(BASE, channel=None), STARTED)
    assert len(slack_api.top_level("#general")) == 1


def test_an_answer_goes_to_the_response_url_only(slack_api: SlackStandIn, slack_token: str) -> None:
    n = Recorded(slack_api, slack_token).notifier
    n.respond(f"{slack_api.hooks}actions/T0ROLLOUT/1/abc", "You approved step 4.")
    assert slack_api.responses == [
        (
            "/actions/T0ROLLOUT/1/abc",
            {"response_type": "ephemeral", "replace_original": False, "text": "You approved step 4."},
        )
    ]
    with pytest.raises(SlackError, match="refused"):
        n.respond("https://attacker.example/actions/1", "hello")


def test_user_group_members_are_listed_and_cached(slack_api: SlackStandIn, slack_token: str) -> None:
    now = [0.0]
    n = SlackNotifier.connect(slack_token, base_url=slack_api.base_url, group_seconds=60, clock=lambda: now[0])
    assert n.members(APPROVERS_GROUP) == {GROUP_MEMBER}
    assert n.members(APPROVERS_GROUP) == {GROUP_MEMBER}
    now[0] = 61.0
    n.members(APPROVERS_GROUP)
    assert methods(slack_api) == ["usergroups.users.list"] * 2
    with pytest.raises(SlackError, match="no_such_subteam"):
        n.members("S0NOPE")


# --- Slack's failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "code"), [("#nowhere", "channel_not_found"), ("#secret", "not_in_channel")])
def test_channel_errors_name_method_channel_and_code(slack_token: str, channel: str, code: str) -> None:
    stand_in = SlackStandIn(channels={"deploys": "C0DEPLOYS", "secret": "C0SECRET"}, not_member_of=["secret"])
    with stand_in as api, pytest.raises(NotifierError) as caught:
        Recorded(api, slack_token).notifier.notify(replace(BASE, channel=channel), STARTED)
    assert isinstance(caught.value, SlackError)
    assert (caught.value.method, caught.value.channel, caught.value.code) == ("chat.postMessage", channel, code)
    assert str(caught.value) == f"slack chat.postMessage to {channel} failed: {code}"


@pytest.mark.parametrize(("token", "code"), [("xoxb-wrong", "invalid_auth"), ("", "not_authed")])
def test_bad_tokens_are_refused(slack_api: SlackStandIn, token: str, code: str) -> None:
    n = SlackNotifier(WebClient(token=token or None, base_url=slack_api.base_url, retry_handlers=[]))
    with pytest.raises(SlackError) as caught:
        n.notify(BASE, STARTED)
    assert caught.value.code == code
    with pytest.raises(SlackError, match=code):
        n.check()
    assert slack_api.messages == []


def test_check_answers_the_bot_user(slack_api: SlackStandIn, slack_token: str) -> None:
    assert Recorded(slack_api, slack_token).notifier.check() == BOT_USER_ID


def test_a_footer_too_long_for_slack_is_clipped_not_refused(slack_api: SlackStandIn, slack_token: str) -> None:
    n = Recorded(slack_api, slack_token, links={"runbook": "https://x/" + "a" * 3000}).notifier
    n.notify(BASE, STARTED)
    [parent] = slack_api.top_level("#deploys")
    footer = parent.blocks[-1]["elements"][0]["text"]
    assert len(footer) == 3000 and footer.endswith("…")


def test_an_injected_error_code_is_reported(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.fail_next("is_archived")
    n = Recorded(slack_api, slack_token).notifier
    with pytest.raises(SlackError, match="is_archived"):
        n.notify(BASE, STARTED)
    n.notify(BASE, STARTED)
    assert len(slack_api.messages) == 2  # the parent, then the note: nothing was half-posted before


def test_unreachable_slack_is_a_connection_error(slack_token: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = SlackNotifier.connect(slack_token, base_url=f"http://127.0.0.1:{port}/api/")
    with pytest.raises(SlackError) as caught:
        n.notify(BASE, STARTED)
    assert caught.value.code == "connection_error"
    assert isinstance(caught.value.__cause__, OSError)


def test_a_rate_limit_is_one_attempt_carrying_retry_after(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.rate_limit(1, retry_after=7)
    n = Recorded(slack_api, slack_token).notifier
    with pytest.raises(SlackRateLimited) as caught:
        n.notify(BASE, STARTED)
    assert (caught.value.retry_after, caught.value.code) == (7.0, "ratelimited")
    assert [(c.status, c.error) for c in slack_api.calls] == [(429, "ratelimited")]
    assert slack_api.messages == []


def test_the_retry_policy_waits_what_retry_after_says_then_posts_once(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    slack_api.rate_limit(2, retry_after=7)
    n = Recorded(slack_api, slack_token).notifier
    slept: list[float] = []
    SLACK_CALLS.call(lambda: n.notify(BASE, STARTED), sleep=slept.append)
    assert slept == [7.0, 7.0]
    assert [c.status for c in slack_api.calls] == [429, 429, 200, 200]
    assert len(slack_api.messages) == 2


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.rate_limit(1, retry_after=3600)
    n = Recorded(slack_api, slack_token).notifier
    slept: list[float] = []
    with pytest.raises(SlackRateLimited):
        SLACK_CALLS.call(lambda: n.notify(BASE, STARTED), sleep=slept.append)
    assert slept == []


def test_other_errors_are_not_retried(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.fail_next("channel_not_found", calls=3)
    n = Recorded(slack_api, slack_token).notifier
    with pytest.raises(SlackError, match="channel_not_found"):
        SLACK_CALLS.call(lambda: n.notify(BASE, STARTED), sleep=lambda _: None)
    assert len(slack_api.calls) == 1
