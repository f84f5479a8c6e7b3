"""SlackNotifier against the Slack Web API stand-in: message and button shapes, channels, the
translation of Slack's error codes and transport failures, and rate limits under SLACK_CALLS."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rollout.core.actions import Level, Notify, RequestApproval
from rollout.core.readings import ArmCounts
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.errors import NotifierError
from rollout.notifiers.slack import (
    APPROVAL_BLOCK,
    APPROVE_ACTION,
    REJECT_ACTION,
    ApprovalRef,
    SlackError,
    SlackNotifier,
    SlackRateLimited,
)
from rollout.runtime.retrying import SLACK_CALLS
from tests.harness.slack import BOT_USER_ID, SlackStandIn

ROLLOUT = "shop/recommendations"

VERDICT = Verdict(
    kind=VerdictKind.FAIL,
    checks=(
        Check("errorRate", VerdictKind.FAIL, value=0.025, limit=0.01, detail="error rate 2.50% (25/1000) > max 1.00%"),
        Check("latency", VerdictKind.PASS, value=0.004, limit=0.01, evidence=-1.25, threshold=4.6),
        Check("queue_depth", VerdictKind.HOLD, value=None, limit=30.0, detail="queue_depth: no value"),
    ),
    enough_data=True,
    summary="error rate above its SLO",
    canary=ArmCounts(requests=1000, errors=25),
    stable=ArmCounts(requests=19000, errors=19),
)


def notifier(stand_in: SlackStandIn, token: str, **kwargs: Any) -> SlackNotifier:
    return SlackNotifier.connect(token, base_url=stand_in.base_url, timeout=5, **kwargs)


def approval(**kwargs: Any) -> RequestApproval:
    fields: dict[str, Any] = {
        "key": "approval-3",
        "number": 3,
        "message": "25% for 10m, all SLOs met",
        "approvers": ("U012AB3CD",),
        "channel": "#deploys",
    }
    return RequestApproval(**{**fields, **kwargs})


def test_notify_posts_the_message_and_every_number_of_the_verdict(slack_api: SlackStandIn, slack_token: str) -> None:
    n = notifier(
        slack_api,
        slack_token,
        channel_for={ROLLOUT: "#deploys"}.get,
        links={"dashboard": "https://grafana.example/d/canary?var-rollout={namespace}/{name}"},
    )
    n.notify(ROLLOUT, Notify("rolled-back-1", "rollout.rolled-back", Level.FAILURE, "rolled back <now>", VERDICT))

    [message] = slack_api.in_channel("#deploys")
    assert message.channel == "C0DEPLOYS"
    assert message.text == f"{ROLLOUT}: rolled back <now>"
    head = message.blocks[0]["text"]
    assert head["type"] == "mrkdwn"
    assert head["text"].startswith(":rotating_light: *shop/recommendations*")
    assert "rolled back &lt;now&gt;" in head["text"]  # mrkdwn control characters escaped
    assert message.blocks[1]["elements"][0]["text"] == (
        "<https://grafana.example/d/canary?var-rollout=shop/recommendations|dashboard>"
    )
    [attachment] = message.attachments
    assert attachment["color"] == "#e01e5a"
    lines = [b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in attachment["blocks"]]
    assert lines[0] == ":red_circle: *Verdict: fail* — error rate above its SLO"
    assert lines[1] == "*canary* 1,000 requests, 25 errors (2.50%) · *stable* 19,000 requests, 19 errors (0.10%)"
    assert lines[2].startswith(":red_circle: *errorRate*: 2.50% vs limit 1.00%\nerror rate 2.50% (25/1000)")
    assert lines[3] == ":large_green_circle: *latency*: 0.40% vs limit 1.00% · evidence -1.25 vs threshold 4.6"
    assert lines[4] == ":white_circle: *queue_depth*: n/a vs limit 30\nqueue_depth: no value"


def test_notify_without_a_verdict_has_no_attachment_and_uses_the_default_channel(
    slack_api: SlackStandIn, slack_token: str
) -> None:
    n = notifier(slack_api, slack_token, default_channel="C0GENERAL", channel_for=lambda _: None)
    n.notify(ROLLOUT, Notify("step-1", "rollout.step", Level.INFO, "step 1: canary 5%"))
    [message] = slack_api.in_channel("#general")
    assert message.attachments == []
    assert (
        message.blocks[0]["text"]["text"]
        == ":information_source: *shop/recommendations* · `rollout.step`\nstep 1: canary 5%"
    )


def test_notify_without_any_channel_posts_nothing(slack_api: SlackStandIn, slack_token: str) -> None:
    notifier(slack_api, slack_token).notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert slack_api.calls == []


def test_approval_request_carries_buttons_that_need_no_memory(slack_api: SlackStandIn, slack_token: str) -> None:
    notifier(slack_api, slack_token).request_approval(ROLLOUT, approval())

    [message] = slack_api.in_channel("#deploys")
    assert "Approval needed for shop/recommendations" in message.text
    assert "at step 3" in message.blocks[0]["text"]["text"]
    assert message.blocks[1]["elements"][0]["text"] == "Approvers: <@U012AB3CD>"
    block_id, approve = message.button(APPROVE_ACTION)
    _, reject = message.button(REJECT_ACTION)
    assert block_id == APPROVAL_BLOCK
    assert (approve["style"], reject["style"]) == ("primary", "danger")
    assert approve["text"] == {"type": "plain_text", "text": "Approve", "emoji": True}
    assert reject["confirm"]["confirm"]["text"] == "Reject"
    assert approve["value"] == reject["value"]
    ref = ApprovalRef.decode(approve["value"])
    assert ref == ApprovalRef(namespace="shop", name="recommendations", key="approval-3", step=3)
    assert len(approve["value"]) < 100


def test_approval_without_approvers_says_anyone_may_approve(slack_api: SlackStandIn, slack_token: str) -> None:
    notifier(slack_api, slack_token).request_approval(ROLLOUT, approval(approvers=(), channel="C0GENERAL"))
    [message] = slack_api.in_channel("C0GENERAL")
    assert message.blocks[1]["elements"][0]["text"] == "Anyone in this channel may approve."


def test_approval_without_a_slack_channel_is_not_posted(slack_api: SlackStandIn, slack_token: str) -> None:
    n = notifier(slack_api, slack_token, default_channel="#deploys")
    n.request_approval(ROLLOUT, approval(channel=None))
    assert slack_api.messages == []


@pytest.mark.parametrize(("channel", "code"), [("#nowhere", "channel_not_found"), ("#secret", "not_in_channel")])
def test_channel_errors_name_method_channel_and_code(slack_token: str, channel: str, code: str) -> None:
    stand_in = SlackStandIn(channels={"deploys": "C0DEPLOYS", "secret": "C0SECRET"}, not_member_of=["secret"])
    with stand_in as api, pytest.raises(NotifierError) as caught:
        notifier(api, slack_token).request_approval(ROLLOUT, approval(channel=channel))
    assert isinstance(caught.value, SlackError)
    assert (caught.value.method, caught.value.channel, caught.value.code) == ("chat.postMessage", channel, code)
    assert str(caught.value) == f"slack chat.postMessage to {channel} failed: {code}"


@pytest.mark.parametrize(("token", "code"), [("xoxb-wrong", "invalid_auth"), ("", "not_authed")])
def test_bad_tokens_are_refused(slack_api: SlackStandIn, token: str, code: str) -> None:
    n = SlackNotifier(
        WebClient(token=token or None, base_url=slack_api.base_url, retry_handlers=[]), default_channel="#deploys"
    )
    with pytest.raises(SlackError) as caught:
        n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert caught.value.code == code
    with pytest.raises(SlackError, match=code):
        n.check()
    assert slack_api.messages == []


def test_check_answers_the_bot_user(slack_api: SlackStandIn, slack_token: str) -> None:
    assert notifier(slack_api, slack_token).check() == BOT_USER_ID


def test_invalid_blocks_carry_slack_reasons(slack_api: SlackStandIn, slack_token: str) -> None:
    n = notifier(slack_api, slack_token, default_channel="#deploys", links={"runbook": "https://x/" + "a" * 3000})
    with pytest.raises(SlackError) as caught:
        n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert caught.value.code == "invalid_blocks"
    assert "blocks[1].elements[0].text: must be at most 3000 characters" in str(caught.value)


def test_an_injected_error_code_is_reported(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.fail_next("is_archived")
    n = notifier(slack_api, slack_token, default_channel="#deploys")
    with pytest.raises(SlackError, match="is_archived"):
        n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert len(slack_api.messages) == 1


def test_unreachable_slack_is_a_connection_error(slack_token: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = SlackNotifier.connect(slack_token, base_url=f"http://127.0.0.1:{port}/api/", default_channel="#deploys")
    with pytest.raises(SlackError) as caught:
        n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert caught.value.code == "connection_error"
    assert isinstance(caught.value.__cause__, OSError)


def test_rate_limit_is_one_attempt_with_retry_after(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.rate_limit(1, retry_after=7)
    n = notifier(slack_api, slack_token, default_channel="#deploys")
    with pytest.raises(SlackRateLimited) as caught:
        n.notify(ROLLOUT, Notify("k", "rollout.step", Level.INFO, "hello"))
    assert caught.value.retry_after == 7.0
    assert caught.value.code == "ratelimited"
    assert [(c.status, c.error) for c in slack_api.calls] == [(429, "ratelimited")]
    assert slack_api.messages == []


def test_slack_calls_policy_retries_a_rate_limit_then_posts_once(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.rate_limit(1, retry_after=1)
    n = notifier(slack_api, slack_token)
    SLACK_CALLS.call(lambda: n.request_approval(ROLLOUT, approval()))
    assert [c.status for c in slack_api.calls] == [429, 200]
    assert len(slack_api.messages) == 1


def test_slack_calls_policy_does_not_retry_other_errors(slack_api: SlackStandIn, slack_token: str) -> None:
    slack_api.fail_next("channel_not_found", calls=3)
    n = notifier(slack_api, slack_token)
    with pytest.raises(SlackError, match="channel_not_found"):
        SLACK_CALLS.call(lambda: n.request_approval(ROLLOUT, approval()))
    assert len(slack_api.calls) == 1


def test_stand_in_speaks_form_bodies_update_and_conversations_info(slack_api: SlackStandIn, slack_token: str) -> None:
    client = WebClient(token=slack_token, base_url=slack_api.base_url, retry_handlers=[])
    posted = client.api_call(
        "chat.postMessage", params={"channel": "deploys", "text": "plain", "blocks": '[{"type":"divider"}]'}
    )
    assert posted["channel"] == "C0DEPLOYS"
    updated = client.chat_update(channel="C0DEPLOYS", ts=posted["ts"], text="approved by <@U1>", blocks=[])
    assert updated["ts"] == posted["ts"]
    [message] = slack_api.messages
    assert message.text == "approved by <@U1>"
    assert message.updates == [("plain", [{"type": "divider"}])]
    info = client.conversations_info(channel="C0DEPLOYS")
    assert info["channel"]["is_member"] is True
    refused = {
        "chat.update": ({"channel": "C0DEPLOYS", "ts": "1.000000", "text": "x"}, "message_not_found"),
        "conversations.info": ({"channel": "C0NOPE"}, "channel_not_found"),
        "chat.delete": ({"channel": "C0DEPLOYS", "ts": posted["ts"]}, "unknown_method"),
        "chat.postMessage": ({"channel": "C0DEPLOYS"}, "no_text"),
    }
    for method, (params, code) in refused.items():
        with pytest.raises(SlackApiError) as caught:
            client.api_call(method, params=params)
        assert caught.value.response["error"] == code
