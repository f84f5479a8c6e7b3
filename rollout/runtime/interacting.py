"""Slack interactions: turns a signed click on an Approve / Reject button into an operator Command.

Owns the HTTP-agnostic handling of a POST from Slack's interactivity endpoint: signature and
timestamp verification over the raw body *before* anything in it is parsed (slack-sdk's
``SignatureVerifier`` after a strict shape check of the headers; 401 on failure), parsing the
form-encoded ``payload`` (every field's type checked: an odd shape is a 400 or a no-op 200, any
unforeseen failure a 500, never an exception), the approver check against the policy's *current* approvers, and the
hand-over of an ``approve`` / ``abort`` ``Command`` to ``submit`` (which appends it to the Rollout
object, where the engine acts on it on its next tick). The command id is derived from Slack's
``trigger_id``, so a repeated delivery of the same click is one command for the engine.

It keeps no state: everything comes from the button value (``ApprovalRef``) and the payload, so
it works after restarts and on any replica. It answers quickly and must not call Slack itself
(a block_actions acknowledgment body is ignored by Slack; the dict returned is what a
``response_url`` follow-up would carry) nor decide anything about the rollout's phase: it cannot
know whether the approval request is still pending, so its replies say a click was *recorded*,
never that something was approved.
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
from rollout.errors import RolloutError
from rollout.notifiers.slack import APPROVE_ACTION, REJECT_ACTION, ApprovalRef

log = logging.getLogger("rollout.interacting")

Answer = tuple[int, dict[str, Any]]
_KINDS = {APPROVE_ACTION: CommandKind.APPROVE, REJECT_ACTION: CommandKind.ABORT}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_USER = re.compile(r"[UW][A-Z0-9]{2,31}")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")
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
    """Verifies and acts on Slack interaction payloads; see the module docstring."""

    def __init__(
        self,
        signing_secret: str,
        submit: Callable[[str, str, Command], None],
        approvers_for: Callable[[str], Sequence[str] | None],
        clock: Callable[[], datetime],
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock=_WallClock(clock))
        self._submit, self._approvers_for, self._clock = submit, approvers_for, clock

    def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one POST from Slack: (HTTP status, JSON body). Never raises."""
        try:
            return self._handle(headers, body)
        except Exception as e:  # a shape nobody foresaw: answer, log one line, no traceback
            log.error(
                "slack request failed",
                extra={"event": "slack.handler-error", "error": f"{type(e).__name__}: {e}"[:300]},
            )
            return 500, {"ok": False, "error": "internal error"}

    def _handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        if not self._genuine(headers, body):
            log.warning("slack request rejected", extra={"event": "slack.bad-signature"})
            return 401, {"ok": False, "error": "invalid signature or stale timestamp"}
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=16)
            payload = json.loads(form["payload"][0])
        except (UnicodeDecodeError, ValueError, KeyError, RecursionError) as e:
            return 400, {"ok": False, "error": f"no interaction payload: {type(e).__name__}"}
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
        try:
            ref = ApprovalRef.decode(value if isinstance(value, str) else "")
        except (ValueError, RecursionError) as e:
            return 400, {"ok": False, "error": str(e)[:200]}
        if not (_NAMESPACE.fullmatch(ref.namespace) and _NAME.fullmatch(ref.name)):
            return 400, {"ok": False, "error": "button value names no valid rollout"}
        if not isinstance(user, str) or not _USER.fullmatch(user):
            return 400, {"ok": False, "error": "the payload names no Slack user"}
        approvers = self._approvers_for(ref.rollout)
        context = {"rollout": ref.rollout, "user": user, "step": ref.step, "action": action.get("action_id")}
        if approvers is None:
            log.warning("click for an unknown rollout", extra={"event": "slack.unknown-rollout", **context})
            return 200, _ephemeral(f"{ref.rollout} no longer exists or takes no Slack approvals; nothing was recorded.")
        if approvers and user not in approvers:
            log.warning("click by a non-approver", extra={"event": "slack.not-approver", **context})
            return 200, _ephemeral(f"<@{user}> is not an approver of {ref.rollout}; nothing was recorded.")
        kind = _KINDS[str(action["action_id"])]
        verb = "approved" if kind is CommandKind.APPROVE else "rejected"
        command = Command(
            kind=kind,
            by=f"slack:{user}",
            at=self._clock(),
            id=f"slack-{_unique(payload, action)}",
            reason=f"{verb} in Slack at step {ref.step} ({ref.key})",
            ref=ref.key,
        )
        noun = "approval" if kind is CommandKind.APPROVE else "rejection"
        try:
            self._submit(ref.namespace, ref.name, command)
        except RolloutError as e:
            log.error("could not record the click", extra={"event": "slack.submit-failed", **context, "error": str(e)})
            return 503, _ephemeral(f"Could not record the {noun} for {ref.rollout}: {str(e)[:300]}")
        log.info("click recorded", extra={"event": "slack.command", **context, "id": command.id})
        # The handler cannot know the engine's state: the click is recorded, and acted on only if
        # that approval request is still the pending one when the daemon next looks.
        return 200, _ephemeral(
            f"Your {noun} of {ref.rollout} at step {ref.step} was recorded (by <@{user}>); the daemon acts on it "
            "only if that approval is still pending."
        )


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
