"""SlackInteractions: clicks on the buttons SlackNotifier posted (signed HTTP posts or Socket Mode
payloads) become operator Commands; the clicker is answered through the payload's response_url."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from rollout.core.states import Command, CommandKind
from rollout.errors import KubeConflict, NotifierError
from rollout.kube.commands import CommandObject, command_body
from rollout.notifiers.slack import APPROVE_ACTION, REJECT_ACTION, SlackNotifier
from rollout.runtime.answering import Click
from rollout.runtime.interacting import SlackInteractions
from tests.harness.slack import Message, SlackStandIn, block_actions, signed_interaction
from tests.harness.slack_fixtures import SIGNING_SECRET as SECRET
from tests.notifiers.samples import APPROVAL, WAITING

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
APPROVER, STRANGER = "U012AB3CD", "U0STRANGER"
HOOKS = "https://hooks.slack.com/"


@dataclass
class Recorder:
    approvers: dict[str, Sequence[str]] = field(default_factory=lambda: {"shop/recs": [APPROVER]})
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    submitted: list[tuple[str, str, Command]] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)
    expected: list[tuple[str, str, Click]] = field(default_factory=list)
    fail: Exception | None = None

    def submit(self, namespace: str, name: str, command: Command) -> str:
        if self.fail is not None:
            raise self.fail
        self.submitted.append((namespace, name, command))
        return f"{name}-approve-{len(self.submitted)}"

    def members(self, group: str) -> frozenset[str]:
        if group not in self.groups:
            raise NotifierError(f"slack usergroups.users.list failed: no_such_subteam ({group})")
        return self.groups[group]

    def interactions(self, secret: str | None) -> SlackInteractions:
        return SlackInteractions(
            secret,
            self.submit,
            self.approvers.get,
            lambda: NOW,
            members=self.members,
            respond=lambda url, text: self.answered.append((url, text)),
            expect=lambda ns, name, click: self.expected.append((ns, name, click)),
        )


def post_approval(api: SlackStandIn, token: str, rollout: str = "shop/recs") -> Message:
    notifier = SlackNotifier.connect(token, base_url=api.base_url)
    snapshot = replace(WAITING, rollout=rollout)
    notifier.request_approval(snapshot, replace(APPROVAL, key="approval-2", number=2, approvers=(APPROVER,)))
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
    assert rec.answered == []  # the truthful answer comes once the daemon has acted on the command
    [(ns, name, waiting)] = rec.expected
    assert (ns, name, waiting.kind, waiting.user, waiting.step, waiting.key) == (
        "shop",
        "recs-approve-1",
        CommandKind.APPROVE,
        APPROVER,
        2,
        "approval-2",
    )
    assert waiting.response_url.startswith(HOOKS)
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
    text = "<@U0STRANGER> is not an approver of shop/recs; nothing was recorded."
    assert answer == {"response_type": "ephemeral", "replace_original": False, "text": text}
    assert [t for _, t in rec.answered] == [text]  # said where Slack shows it: through the response_url
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
    assert [t for _, t in rec.answered] == [answer["text"]]


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


# --- user groups, Socket Mode, response_url ---------------------------------------------------------


def test_a_member_of_an_approver_group_may_approve_and_the_group_is_recorded(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder(approvers={"shop/recs": [APPROVER, "S0RELEASE"]}, groups={"S0RELEASE": frozenset({"U0GROUPIE"})})
    message = post_approval(slack_api, slack_token)
    handler = rec.interactions(slack_signing_secret)
    assert handler.handle(*click(message, APPROVE_ACTION, "U0GROUPIE", slack_signing_secret))[0] == 200
    assert handler.handle(*click(message, APPROVE_ACTION, APPROVER, slack_signing_secret))[0] == 200
    [(_, _, by_group), (_, _, by_id)] = rec.submitted
    assert (by_group.slack_groups, by_id.slack_groups) == (("S0RELEASE",), ())  # an ID match looks nothing up
    body = command_body("shop", "recs", by_group.kind, by="daemon", slack_user="U0GROUPIE", slack_groups=("S0RELEASE",))
    body["metadata"] |= {"name": "c", "uid": "u1", "creationTimestamp": "2025-03-04T12:00:00Z"}
    parsed = CommandObject(body).parse()
    assert not isinstance(parsed, str) and parsed.slack_groups == ("S0RELEASE",)
    handler.handle(*click(message, APPROVE_ACTION, STRANGER, slack_signing_secret))
    assert len(rec.submitted) == 2
    assert rec.answered[-1][1] == "<@U0STRANGER> is not an approver of shop/recs; nothing was recorded."


def test_a_group_that_cannot_be_listed_records_nothing(
    slack_api: SlackStandIn, slack_token: str, slack_signing_secret: str
) -> None:
    rec = Recorder(approvers={"shop/recs": ["S0GONE"]})
    message = post_approval(slack_api, slack_token)
    status, answer = rec.interactions(slack_signing_secret).handle(
        *click(message, APPROVE_ACTION, APPROVER, slack_signing_secret)
    )
    assert (status, rec.submitted) == (503, [])
    assert "Could not check the approver groups of shop/recs" in answer["text"]


def test_a_socket_mode_payload_is_handled_without_a_signature(slack_api: SlackStandIn, slack_token: str) -> None:
    rec = Recorder()
    handler = rec.interactions(None)  # Socket Mode: no signing secret at all
    payload = block_actions(post_approval(slack_api, slack_token), APPROVE_ACTION, user_id=APPROVER)
    assert handler.handle_payload(payload)[0] == 200
    assert [(ns, name, c.kind) for ns, name, c in rec.submitted] == [("shop", "recs", CommandKind.APPROVE)]
    headers, body = signed_interaction(SECRET, payload, TS)
    assert handler.handle(headers, body)[0] == 401  # and nothing POSTed can be verified
    assert handler.handle_payload("not a payload") == (200, {"ok": True})
    assert handler.handle_payload({"type": "block_actions", "actions": [{"action_id": APPROVE_ACTION}]})[0] == 400


def test_a_response_url_elsewhere_is_never_used(slack_api: SlackStandIn, slack_token: str) -> None:
    rec = Recorder()
    payload = block_actions(post_approval(slack_api, slack_token), APPROVE_ACTION, user_id=STRANGER)
    payload["response_url"] = "https://attacker.example/actions/1"
    assert rec.interactions(None).handle_payload(payload)[0] == 200
    assert (rec.answered, rec.submitted) == ([], [])


def test_an_answer_that_cannot_be_sent_is_logged_not_raised(slack_api: SlackStandIn, slack_token: str) -> None:
    def respond(url: str, text: str) -> None:
        raise NotifierError("slack response_url failed: connection_error")

    handler = SlackInteractions(None, Recorder().submit, {"shop/recs": [APPROVER]}.get, lambda: NOW, respond=respond)
    payload = block_actions(post_approval(slack_api, slack_token), APPROVE_ACTION, user_id=STRANGER)
    assert handler.handle_payload(payload)[0] == 200


def test_odd_socket_payloads_get_json_replies() -> None:
    odd: list[object] = [{}, [], None, 3]
    replies: list[Any] = [Recorder().interactions(None).handle_payload(x) for x in odd]
    assert replies == [(200, {"ok": True})] * 4
