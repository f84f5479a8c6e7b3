"""Slack interactions: turns a signed click on an Approve / Reject button into an operator Command.

Owns the HTTP-agnostic handling of a POST from Slack's interactivity endpoint: signature and
timestamp verification (slack-sdk's ``SignatureVerifier``; 401 on failure), parsing the
form-encoded ``payload``, the approver check against the policy's *current* approvers, and the
hand-over of an ``approve`` / ``abort`` ``Command`` to ``submit`` (which appends it to the Rollout
object, where the engine acts on it on its next tick). The command id is derived from Slack's
``trigger_id``, so a repeated delivery of the same click is one command for the engine.

It keeps no state: everything comes from the button value (``ApprovalRef``) and the payload, so
it works after restarts and on any replica. It answers quickly and must not call Slack itself
(a block_actions acknowledgment body is ignored by Slack; the dict returned is what a
``response_url`` follow-up would carry) nor decide anything about the rollout's phase.
"""

from __future__ import annotations

import json
import logging
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
        """Answer one POST from Slack: (HTTP status, JSON body)."""
        try:
            genuine = self._verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp header that is not an integer
            genuine = False
        if not genuine:
            log.warning("slack request rejected", extra={"event": "slack.bad-signature"})
            return 401, {"ok": False, "error": "invalid signature or stale timestamp"}
        try:
            payload = json.loads(parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0])
        except (UnicodeDecodeError, ValueError, KeyError) as e:
            return 400, {"ok": False, "error": f"no interaction payload: {e}"}
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return 200, {"ok": True}  # other interaction types are not ours to handle
        ours = [a for a in payload.get("actions") or () if isinstance(a, dict) and a.get("action_id") in _KINDS]
        if not ours:
            return 200, {"ok": True}
        return self._act(payload, ours[0])

    def _act(self, payload: Mapping[str, Any], action: Mapping[str, Any]) -> Answer:
        who = payload.get("user")
        user = str(who.get("id", "")) if isinstance(who, dict) else ""
        try:
            ref = ApprovalRef.decode(str(action.get("value", "")))
        except ValueError as e:
            return 400, {"ok": False, "error": str(e)}
        if not user:
            return 400, {"ok": False, "error": "the payload names no user"}
        approvers = self._approvers_for(ref.rollout)
        context = {"rollout": ref.rollout, "user": user, "step": ref.step, "action": action.get("action_id")}
        if approvers is None:
            log.warning("click for an unknown rollout", extra={"event": "slack.unknown-rollout", **context})
            return 200, _ephemeral(f"{ref.rollout} no longer exists or takes no Slack approvals.")
        if approvers and user not in approvers:
            log.warning("click by a non-approver", extra={"event": "slack.not-approver", **context})
            return 200, _ephemeral(f"<@{user}> is not an approver of {ref.rollout}; nothing was done.")
        kind = _KINDS[str(action["action_id"])]
        unique = (
            payload.get("trigger_id") or f"{payload.get('container', {}).get('message_ts')}-{action.get('action_ts')}"
        )
        verb = "approved" if kind is CommandKind.APPROVE else "rejected"
        command = Command(
            kind=kind,
            by=f"slack:{user}",
            at=self._clock(),
            id=f"slack-{unique}",
            reason=f"{verb} in Slack at step {ref.step} ({ref.key})",
            ref=ref.key,
        )
        try:
            self._submit(ref.namespace, ref.name, command)
        except RolloutError as e:
            log.error("could not record the click", extra={"event": "slack.submit-failed", **context, "error": str(e)})
            return 503, _ephemeral(f"Could not record the {kind.value} for {ref.rollout}: {e}")
        log.info("click recorded", extra={"event": "slack.command", **context, "id": command.id})
        return 200, _ephemeral(f"{verb.capitalize()} {ref.rollout} at step {ref.step} (by <@{user}>).")
