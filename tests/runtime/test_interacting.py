"""SlackInteractions: signed clicks on the buttons SlackNotifier posted become operator Commands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from rollout.core.actions import RequestApproval
from rollout.core.states import Command, CommandKind
from rollout.errors import KubeConflict
from rollout.kube.commands import CommandObject, command_body
from rollout.notifiers.slack import APPROVE_ACTION, REJECT_ACTION, SlackNotifier
from rollout.runtime.interacting import SlackInteractions
from tests.harness.slack import Message, SlackStandIn, block_actions, signed_interaction
from tests.harness.slack_fixtures import SIGNING_SECRET as SECRET

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
APPROVER, STRANGER = "U012AB3CD", "U0STRANGER"


@dataclass
class Recorder:
    approvers: dict[str, Sequence[str]] = field(default_factory=lambda: {"shop/recs": [APPROVER]})
    submitted: list[tuple[str, str, Command]] = field(default_factory=list)
    fail: Exception | None = None

    def submit(self, namespace: str, name: str, command: Command) -> None:
        if self.fail is not None:
            raise self.fail
        self.submitted.append((namespace, name, command))

    def interactions(self, secret: str) -> SlackInteractions:
        return SlackInteractions(secret, self.submit, self.approvers.get, lambda: NOW)


def post_approval(api: SlackStandIn, token: str, rollout: str = "shop/recs") -> Message:
    notifier = SlackNotifier.connect(token, base_url=api.base_url)
    notifier.request_approval(rollout, RequestApproval("approval-2", 2, "go on?", (APPROVER,), "#deploys"))
    return api.messages[-1]


def click(message: Message, action: str, user: str, secret: str, **kw: Any) -> tuple[dict[str, str], bytes]:
    return signed_interaction(secret, block_actions(message, action, user_id=user, **kw), timestamp=TS)


def test_approve_click_submits_an_approve_command_for_the_rollout(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder()
    message = post_approval(slack_api, slack_token)
    headers, body = click(message, APPROVE_ACTION, APPROVER, slack_signing_secret, trigger_id="111.222.abc")
    status, answer = rec.interactions(slack_signing_secret).handle(headers, body)
    assert status == 200
    assert answer["response_type"] == "ephemeral"
    # the handler cannot know whether the request is still pending: it says "recorded", never "approved"
    assert answer["text"] == (
        "Your approval of shop/recs at step 2 was recorded (by <@U012AB3CD>); "
        "the daemon acts on it only if that approval is still pending."
    )
    assert rec.submitted == [
        (
            "shop",
            "recs",
            Command(
                CommandKind.APPROVE,
                "slack:U012AB3CD",
                NOW,
                "slack-111.222.abc",
                "approved in Slack at step 2 (approval-2)",
                ref="approval-2",  # the engine ignores it unless that request is still the pending one
            ),
        )
    ]
    # the daemon records it as a RolloutCommand of its own, naming the Slack user who clicked
    command = rec.submitted[0][2]
    recorded = command_body(
        "shop",
        "recs",
        command.kind,
        by="system:serviceaccount:rollout-system:rollout",
        reason=command.reason,
        ref=command.ref,
        slack_user=command.by.removeprefix("slack:"),
    )
    recorded["metadata"] |= {"name": "c", "uid": "u1", "creationTimestamp": "2025-03-04T12:00:00Z"}
    parsed = CommandObject(recorded).parse()
    assert not isinstance(parsed, str)
    assert (parsed.kind, parsed.ref, parsed.slack_user) == (CommandKind.APPROVE, "approval-2", "U012AB3CD")


def test_a_repeated_delivery_yields_the_same_command_id(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder()
    message = post_approval(slack_api, slack_token)
    headers, body = click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)
    handler = rec.interactions(slack_signing_secret)
    assert handler.handle(headers, body)[0] == 200
    assert handler.handle(headers, body)[0] == 200
    [first, second] = [c for _, _, c in rec.submitted]
    assert first.id == second.id
    assert first.id.startswith("slack-")
    other = click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)  # a second, separate click
    handler.handle(*other)
    assert rec.submitted[-1][2].id != first.id


def test_reject_click_submits_an_abort(slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str) -> None:
    rec = Recorder()
    message = post_approval(slack_api, slack_token)
    status, _ = rec.interactions(slack_signing_secret).handle(
        *click(message, REJECT_ACTION, APPROVER, slack_signing_secret)
    )
    assert status == 200
    [(_, _, command)] = rec.submitted
    assert (command.kind, command.by, command.reason) == (
        CommandKind.ABORT,
        "slack:U012AB3CD",
        "rejected in Slack at step 2 (approval-2)",
    )


def test_a_non_approver_is_refused(slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str) -> None:
    rec = Recorder()
    message = post_approval(slack_api, slack_token)
    status, answer = rec.interactions(slack_signing_secret).handle(
        *click(message, APPROVE_ACTION, STRANGER, slack_signing_secret)
    )
    assert status == 200
    assert answer == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "<@U0STRANGER> is not an approver of shop/recs; nothing was recorded.",
    }
    assert rec.submitted == []


def test_empty_approvers_let_anyone_approve(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder(approvers={"shop/recs": []})
    message = post_approval(slack_api, slack_token)
    rec.interactions(slack_signing_secret).handle(*click(message, APPROVE_ACTION, STRANGER, slack_signing_secret))
    assert [c.by for _, _, c in rec.submitted] == ["slack:U0STRANGER"]


def test_a_click_for_an_unknown_rollout_is_refused(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder()
    message = post_approval(slack_api, slack_token, rollout="shop/deleted")
    status, answer = rec.interactions(slack_signing_secret).handle(
        *click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)
    )
    assert (status, rec.submitted) == (200, [])
    assert "no longer exists" in answer["text"]


def test_a_click_after_a_restart_still_works(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    message = post_approval(slack_api, slack_token)  # posted by a daemon that has since exited
    headers, body = click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)
    fresh = Recorder()  # a new process (or the other replica): nothing shared but Slack and the secret
    assert fresh.interactions(slack_signing_secret).handle(headers, body)[0] == 200
    assert [(ns, name, c.kind) for ns, name, c in fresh.submitted] == [("shop", "recs", CommandKind.APPROVE)]


def test_a_failed_submit_is_a_503(slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str) -> None:
    rec = Recorder(fail=KubeConflict("resourceVersion changed"))
    message = post_approval(slack_api, slack_token)
    status, answer = rec.interactions(slack_signing_secret).handle(
        *click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)
    )
    assert status == 503
    assert "resourceVersion changed" in answer["text"]


# --- signatures ------------------------------------------------------------------------------


def _approve_payload(api: SlackStandIn, token: str) -> dict[str, Any]:
    return block_actions(post_approval(api, token), APPROVE_ACTION, user_id=APPROVER)


def test_a_valid_signature_is_accepted_case_insensitively(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder()
    headers, body = signed_interaction(slack_signing_secret, _approve_payload(slack_api, slack_token), TS - 299)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert rec.interactions(slack_signing_secret).handle(lowered, body)[0] == 200
    assert len(rec.submitted) == 1


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: signed_interaction("not-the-secret", p, TS), id="wrong-secret"),
        pytest.param(lambda p: signed_interaction(SECRET, p, TS - 301), id="stale"),
        pytest.param(lambda p: signed_interaction(SECRET, p, TS + 301), id="future"),
        pytest.param(lambda p: _tampered(signed_interaction(SECRET, p, TS)), id="tampered-body"),
        pytest.param(lambda p: ({}, signed_interaction(SECRET, p, TS)[1]), id="no-headers"),
        pytest.param(
            lambda p: (
                {**signed_interaction(SECRET, p, TS)[0], "X-Slack-Request-Timestamp": "soon"},
                signed_interaction(SECRET, p, TS)[1],
            ),
            id="non-numeric-timestamp",
        ),
    ],
)
def test_forged_or_stale_requests_are_401(
    forge: Any, slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    assert slack_signing_secret == SECRET
    rec = Recorder()
    headers, body = forge(_approve_payload(slack_api, slack_token))
    status, _ = rec.interactions(slack_signing_secret).handle(headers, body)
    assert status == 401
    assert rec.submitted == []


def _tampered(signed: tuple[dict[str, str], bytes]) -> tuple[dict[str, str], bytes]:
    headers, body = signed
    return headers, body.replace(APPROVER.encode(), b"U0ATTACKER")


# --- payloads that are not ours ----------------------------------------------------------------


def test_foreign_payloads_are_acknowledged_without_a_command(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder()
    handler = rec.interactions(slack_signing_secret)
    payload = _approve_payload(slack_api, slack_token)
    other_button = {**payload, "actions": [{**payload["actions"][0], "action_id": "someone.else"}]}
    modal = {"type": "view_submission", "user": {"id": APPROVER}, "view": {}}
    for foreign in (other_button, modal):
        assert handler.handle(*signed_interaction(SECRET, foreign, TS)) == (200, {"ok": True})
    broken_value = {**payload, "actions": [{**payload["actions"][0], "value": "{}"}]}
    assert handler.handle(*signed_interaction(SECRET, broken_value, TS))[0] == 400
    headers, _ = signed_interaction(SECRET, payload, TS)
    body = b"token=x&command=%2Fdeploy"  # a slash command, signed, but with no payload
    headers["X-Slack-Signature"] = str(SignatureVerifier(SECRET).generate_signature(timestamp=str(TS), body=body))
    assert handler.handle(headers, body)[0] == 400
    assert rec.submitted == []
