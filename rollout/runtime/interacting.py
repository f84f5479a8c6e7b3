"""Slack interactions: turns a click on an Approve / Reject button into an operator Command.

Owns the handling of an interaction payload from either way Slack delivers it: a POST to the
Request URL (HTTP mode: signature and timestamp verified over the raw body *before* anything in it
is parsed, slack-sdk's ``SignatureVerifier`` after a strict shape check of the headers, 401 on
failure; the form-encoded ``payload`` then parsed) or a Socket Mode envelope (``handle_payload``:
the connection is authenticated by the app-level token, so there is no signature). Every field's
type is checked (an odd shape is a 400 or a no-op 200, any unforeseen failure a 500, never an
exception). Then the approver check against the policy's *current* approvers (user IDs, and user
groups whose members ``members`` lists: a member is recorded with the groups that let them in),
and the hand-over of an ``approve`` / ``abort`` ``Command`` to ``submit`` (which records it as a
RolloutCommand, where the engine acts on it on its next tick). The command id is derived from
Slack's ``trigger_id``, so a repeated delivery of the same click is one command for the engine.

It keeps no state of its own: everything comes from the button value (``ApprovalRef``) and the
payload, so it works after restarts and on any replica. The clicker is answered privately through
the payload's ``response_url`` (only URLs under ``response_prefix``): at once when nothing was
recorded (not an approver, unknown rollout, recording failed), otherwise once the daemon has acted
(``expect`` hands the click to ``answering``). The synchronous reply (an HTTP body Slack ignores
for block_actions) says a click was *recorded*, never that something was approved: the handler
cannot know whether the approval request is still pending. It must not decide about the rollout.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from rollout.core.states import Command, CommandKind
from rollout.errors import NotifierError, RolloutError
from rollout.notifiers.blocks import APPROVE_ACTION, REJECT_ACTION, ApprovalRef
from rollout.runtime.answering import Click

log = logging.getLogger("rollout.interacting")

Answer = tuple[int, dict[str, Any]]
_KINDS = {APPROVE_ACTION: CommandKind.APPROVE, REJECT_ACTION: CommandKind.ABORT}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_USER = re.compile(r"[UW][A-Z0-9]{2,31}")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_URL = re.compile(r"https?://[A-Za-z0-9.:-]+/[A-Za-z0-9/_.%-]{1,400}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class _WallClock(Clock):
    """slack-sdk's clock interface over rollout's injected clock (stale-timestamp check)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


class SlackInteractions:
    """Verifies and acts on Slack interaction payloads; see the module docstring.

    ``submit(namespace, name, command)`` records the command and returns the RolloutCommand's name
    (None when it cannot tell); ``approvers_for(rollout)`` the policy's approvers (None: unknown
    rollout or no Slack approvals); ``members(group)`` a user group's users (raises
    ``NotifierError``); ``respond(url, text)`` answers the clicker; ``expect(namespace, command,
    click)`` waits for the command's result; ``resolve`` maps a hashed rollout in a button back.
    """

    def __init__(
        self,
        signing_secret: str | None,
        submit: Callable[[str, str, Command], str | None],
        approvers_for: Callable[[str], Sequence[str] | None],
        clock: Callable[[], datetime],
        *,
        members: Callable[[str], frozenset[str]] | None = None,
        respond: Callable[[str, str], None] | None = None,
        expect: Callable[[str, str, Click], None] | None = None,
        resolve: Callable[[str], str | None] = lambda _: None,
        response_prefix: str = "https://hooks.slack.com/",
    ) -> None:
        self._verifier = (
            SignatureVerifier(signing_secret, clock=_WallClock(clock)) if signing_secret is not None else None
        )
        self._submit, self._approvers_for, self._clock = submit, approvers_for, clock
        self._members, self._respond, self._expect, self._resolve = members, respond, expect, resolve
        self._prefix = response_prefix

    def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one POST from Slack (HTTP mode): (HTTP status, JSON body). Never raises."""
        try:
            return self._handle(headers, body)
        except Exception as e:  # a shape nobody foresaw: answer, log one line, no traceback
            return _failed(e)

    def handle_payload(self, payload: object) -> Answer:
        """Act on one interaction payload from a Socket Mode envelope (no signature: the socket is
        authenticated). Never raises."""
        try:
            return self._payload(payload)
        except Exception as e:
            return _failed(e)

    def _handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        if not self._genuine(headers, body):
            log.warning("slack request rejected", extra={"event": "slack.bad-signature"})
            return 401, {"ok": False, "error": "invalid signature or stale timestamp"}
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=16)
            payload = json.loads(form["payload"][0])
        except (UnicodeDecodeError, ValueError, KeyError, RecursionError) as e:
            return 400, {"ok": False, "error": f"no interaction payload: {type(e).__name__}"}
        return self._payload(payload)

    def _payload(self, payload: object) -> Answer:
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return 200, {"ok": True}  # other interaction types are not ours to handle
        actions = payload.get("actions")
        ours = [
            a
            for a in (actions if isinstance(actions, list) else ())
            if isinstance(a, dict) and isinstance(a.get("action_id"), str) and a["action_id"] in _KINDS
        ]
        if not ours:
            return 200, {"ok": True}
        return self._act(payload, ours[0])

    def _genuine(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Slack's signature over the raw body, checked before anything in the body is parsed."""
        if self._verifier is None:
            return False  # no signing secret: no request can be verified
        lowered = {str(k).lower(): v for k, v in headers.items()}
        timestamp, signature = lowered.get("x-slack-request-timestamp"), lowered.get("x-slack-signature")
        if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
            return False
        if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
            return False
        try:
            body.decode("utf-8")  # slack-sdk decodes the body to sign it
        except UnicodeDecodeError:
            return False
        return self._verifier.is_valid(body, timestamp, signature)

    def _act(self, payload: Mapping[str, Any], action: Mapping[str, Any]) -> Answer:
        who = payload.get("user")
        user = who.get("id") if isinstance(who, dict) else None
        value = action.get("value")
        url = payload.get("response_url")
        url = url if isinstance(url, str) and _URL.fullmatch(url) and url.startswith(self._prefix) else ""
        try:
            ref = ApprovalRef.decode(value if isinstance(value, str) else "", self._resolve)
        except (ValueError, RecursionError) as e:
            return 400, {"ok": False, "error": str(e)[:200]}
        if not (_NAMESPACE.fullmatch(ref.namespace) and _NAME.fullmatch(ref.name)):
            return 400, {"ok": False, "error": "button value names no valid rollout"}
        if not isinstance(user, str) or not _USER.fullmatch(user):
            return 400, {"ok": False, "error": "the payload names no Slack user"}
        kind = _KINDS[str(action["action_id"])]
        noun = "approval" if kind is CommandKind.APPROVE else "rejection"
        context = {"rollout": ref.rollout, "user": user, "step": ref.step, "action": action.get("action_id")}
        approvers = self._approvers_for(ref.rollout)
        if approvers is None:
            log.warning("click for an unknown rollout", extra={"event": "slack.unknown-rollout", **context})
            text = f"{ref.rollout} no longer exists or takes no Slack approvals; nothing was recorded."
            return self._tell(200, url, text)
        try:
            groups = self._groups_of(user, approvers)
        except NotifierError as e:
            log.error("cannot list a user group", extra={"event": "slack.groups-failed", **context, "error": str(e)})
            return self._tell(503, url, f"Could not check the approver groups of {ref.rollout}; try again. ({e})")
        if approvers and user not in approvers and not groups:
            log.warning("click by a non-approver", extra={"event": "slack.not-approver", **context})
            return self._tell(200, url, f"<@{user}> is not an approver of {ref.rollout}; nothing was recorded.")
        verb = "approved" if kind is CommandKind.APPROVE else "rejected"
        command = Command(
            kind=kind,
            by=f"slack:{user}",
            at=self._clock(),
            id=f"slack-{_unique(payload, action)}",
            reason=f"{verb} in Slack at step {ref.step} ({ref.key})",
            ref=ref.key,
            slack_groups=groups,
        )
        try:
            created = self._submit(ref.namespace, ref.name, command)
        except RolloutError as e:
            log.error("could not record the click", extra={"event": "slack.submit-failed", **context, "error": str(e)})
            return self._tell(503, url, f"Could not record the {noun} for {ref.rollout}: {str(e)[:300]}")
        log.info("click recorded", extra={"event": "slack.command", **context, "id": command.id})
        if created and url and self._expect is not None:
            self._expect(ref.namespace, created, Click(url, user, kind, ref.rollout, ref.step, ref.key))
        # The handler cannot know the engine's state: the click is recorded, and acted on only if
        # that approval request is still the pending one when the daemon next looks.
        return 200, _ephemeral(
            f"Your {noun} of {ref.rollout} at step {ref.step} was recorded (by <@{user}>); the daemon acts on it "
            "only if that approval is still pending."
        )

    def _groups_of(self, user: str, approvers: Sequence[str]) -> tuple[str, ...]:
        """The approver groups ``user`` is in (none are looked up when the user is listed by ID)."""
        if not approvers or user in approvers or self._members is None:
            return ()
        return tuple(g for g in approvers if g.startswith("S") and user in self._members(g))

    def _tell(self, status: int, url: str, text: str) -> Answer:
        """Answer now: through the response_url (where Slack shows it) and in the HTTP body."""
        if url and self._respond is not None:
            try:
                self._respond(url, text)
            except RolloutError as e:
                log.warning("cannot answer the click", extra={"event": "slack.answer-failed", "error": str(e)})
        return status, _ephemeral(text)


def _failed(e: Exception) -> Answer:
    log.error(
        "slack request failed",
        extra={"event": "slack.handler-error", "error": f"{type(e).__name__}: {e}"[:300]},
    )
    return 500, {"ok": False, "error": "internal error"}


def _unique(payload: Mapping[str, Any], action: Mapping[str, Any]) -> str:
    """What makes this click one click: Slack's trigger_id, else the message and action timestamps."""
    trigger = payload.get("trigger_id")
    if isinstance(trigger, str) and _TOKEN.fullmatch(trigger):
        return trigger
    container = payload.get("container")
    message_ts = container.get("message_ts") if isinstance(container, dict) else None
    action_ts = action.get("action_ts")
    parts = [p if isinstance(p, str) and _TOKEN.fullmatch(p) else "-" for p in (message_ts, action_ts)]
    return "-".join(parts)
