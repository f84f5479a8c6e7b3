"""Block Kit messages of a rollout run: the parent message, the thread replies, the approval request
and how it ended; and the contract of the approval buttons.

Owns what people see in Slack (the words and numbers come from ``wording``): the parent message
shows the run's current state (phase, step n/N, the weights on the route, the last verdict in one
line, the commands to act, Approve/Reject while an approval is pending in its channel); a reply
says one event, its decision sentence first and the statistics folded into a context line; an
approval request names its approvers and carries the buttons; once resolved it shows who decided
and when, without buttons. Every message keeps within Slack's limits (``MAX_BLOCKS`` blocks,
``MAX_TEXT`` characters per text, ``MAX_VALUE`` characters per button value). The button value
(``ApprovalRef``) carries what is needed to act on a click with no memory. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, Resolution
from rollout.notifiers.base import RolloutSnapshot
from rollout.notifiers.wording import (
    LEVEL,
    MARK,
    approver,
    check_line,
    details_line,
    escape,
    headline,
    person,
    readable,
    when,
)

APPROVE_ACTION = "rollout.approve"
REJECT_ACTION = "rollout.reject"
APPROVAL_BLOCK = "rollout.approval"
MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_VALUE = 150
Block = dict[str, Any]

_PHASES = {
    "Pending": (":hourglass_flowing_sand:", "pending"),
    "Progressing": (":large_blue_circle:", "progressing"),
    "Paused": (":double_vertical_bar:", "paused"),
    "AwaitingApproval": (":raised_hand:", "waiting for approval"),
    "Promoting": (":rocket:", "promoting"),
    "Promoted": (":white_check_mark:", "promoted"),
    "RollingBack": (":rewind:", "rolling back"),
    "RolledBack": (":x:", "rolled back"),
    "Aborted": (":no_entry_sign:", "aborted"),
    "Invalid": (":warning:", "invalid spec"),
}
_COMMANDS = {
    "Progressing": ("pause", "promote", "abort"),
    "Paused": ("resume", "abort"),
    "AwaitingApproval": ("approve", "abort"),
    "Promoting": ("abort",),
    "RolledBack": ("retry",),
    "Aborted": ("retry",),
}
_RESOLVED = {
    Resolution.APPROVED: (":white_check_mark:", "Approved"),
    Resolution.REJECTED: (":no_entry:", "Rejected"),
    Resolution.TIMED_OUT: (":alarm_clock:", "Timed out"),
    Resolution.CLOSED: (":heavy_minus_sign:", "No longer asked"),
}


@dataclass(frozen=True)
class Rendered:
    """A message: ``text`` is the notification and accessibility fallback, ``blocks`` what is shown."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True)
class ApprovalRef:
    """What an approval button carries in its ``value``: enough to act on a click with no memory.

    A rollout whose ``namespace/name`` would not fit in ``MAX_VALUE`` characters is carried as
    ``sha256:<24 hex>`` of it; the receiver resolves that against the rollouts it knows.
    """

    namespace: str
    name: str
    key: str
    step: int

    @property
    def rollout(self) -> str:
        return f"{self.namespace}/{self.name}"

    def encode(self) -> str:
        def value(rollout: str) -> str:
            data = {"v": 1, "rollout": rollout, "key": self.key, "step": self.step}
            return json.dumps(data, separators=(",", ":"))

        full = value(self.rollout)
        return full if len(full) <= MAX_VALUE else value(digest(self.rollout))

    @classmethod
    def decode(cls, value: str, resolve: Callable[[str], str | None] = lambda _: None) -> ApprovalRef:
        """Parse a button value; raises ``ValueError`` if it is not one of ours (``resolve`` maps a
        ``sha256:`` digest back to ``namespace/name``)."""
        try:
            data = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"button value is not JSON: {e}") from e
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("button value is not a rollout approval (v1)")
        rollout, key, step = data.get("rollout"), data.get("key"), data.get("step")
        if isinstance(rollout, str) and rollout.startswith("sha256:"):
            rollout = resolve(rollout)
            if rollout is None:
                raise ValueError("button value names a rollout this daemon does not know")
        if not isinstance(rollout, str) or rollout.count("/") != 1 or not all(rollout.split("/")):
            raise ValueError(f"button value names no rollout namespace/name: {rollout!r}")
        if not isinstance(key, str) or not isinstance(step, int) or isinstance(step, bool):
            raise ValueError("button value lacks the approval key or step")
        namespace, name = rollout.split("/")
        return cls(namespace=namespace, name=name, key=key, step=step)


def digest(rollout: str) -> str:
    return "sha256:" + hashlib.sha256(rollout.encode()).hexdigest()[:24]


# --- the messages --------------------------------------------------------------------------------


def parent(s: RolloutSnapshot, *, links: Mapping[str, str] | None = None, buttons: bool = False) -> Rendered:
    """The run's parent message: its current state, always (updated in place)."""
    emoji, words = _PHASES.get(s.phase, (":grey_question:", s.phase))
    step = f" · step {min(s.step, s.steps)}/{s.steps}" if s.steps else ""
    blocks = [
        section(f"{emoji} *{escape(s.rollout)}* · *{words}*{step}"),
        section(escape(readable(s.message, s.verdict) or words)),
        section(_traffic(s)),
    ]
    if s.verdict is not None:
        lines = [f"{MARK[s.verdict.kind]} {escape(headline(s.verdict))}"]
        lines += [f"• {escape(check_line(c))}" for c in s.verdict.checks[:10]]
        blocks.append(section("\n".join(lines)))
        details = details_line(s.verdict)
        if details:
            blocks.append(context(escape(details)))
    if buttons and s.approval:
        blocks.append(_buttons(s, s.approval, s.step))
    blocks.append(context(_footer(s, links or {})))
    text = f"{s.rollout}: {words}{step}, canary {s.canary_weight}%"
    return Rendered(text, blocks)


def event(s: RolloutSnapshot, note: Notify) -> Rendered:
    """One event of the run, as a reply in its thread: the decision sentence first; for an event
    about a verdict (``VERDICT_EVENTS``) its checks and a details line below."""
    verdict = note.verdict or s.verdict
    said = readable(note.message, verdict).removeprefix(f"{s.rollout}: ")  # the thread is about it already
    blocks = [section(f"{LEVEL[note.level]} {escape(said)}")]
    if verdict is not None and verdict.checks and note.event in VERDICT_EVENTS:
        lines = [f"{MARK[c.verdict]} {escape(check_line(c))}" for c in verdict.checks[:10]]
        blocks.append(section("\n".join(lines)))
        details = details_line(verdict)
        if details:
            blocks.append(context(escape(details)))
    return Rendered(f"{s.rollout}: {said}", blocks)


def top_level(s: RolloutSnapshot, note: Notify) -> Rendered:
    """An event outside any run's thread (no run yet): it names the rollout itself."""
    said = readable(note.message, note.verdict)
    return Rendered(f"{s.rollout}: {said}", [section(f"{LEVEL[note.level]} *{escape(s.rollout)}*: {escape(said)}")])


def approval(s: RolloutSnapshot, request: RequestApproval) -> Rendered:
    """An approval request with Approve / Reject buttons and who may press them."""
    of = f"step {request.number}/{s.steps}" if s.steps else f"step {request.number}"
    who = (
        "Approvers: " + ", ".join(approver(a) for a in request.approvers)
        if request.approvers
        else "Anyone in this channel may approve."
    )
    blocks = [
        section(f":raised_hand: *Approval needed*: {of} of *{escape(s.rollout)}*\n{escape(request.message)}"),
        context(f"{who} · or `rollout approve {escape(s.name)} -n {escape(s.namespace)}`"),
        _buttons(s, request.key, request.number),
    ]
    return Rendered(f"Approval needed for {s.rollout}: {request.message}", blocks)


def resolved(s: RolloutSnapshot, answer: ApprovalResolved, question: str = "") -> Rendered:
    """The approval request once answered or no longer asked: who decided and when, no buttons."""
    emoji, word = _RESOLVED[answer.resolution]
    head = f"{emoji} *{word}*"
    if answer.by and answer.resolution in (Resolution.APPROVED, Resolution.REJECTED):
        head += f" by {person(answer.by)}"
    head += f" at {when(s.at)}"
    if answer.resolution is Resolution.REJECTED:
        head += " → rolling back"
    elif answer.resolution is Resolution.TIMED_OUT:
        head += f" → {escape(answer.detail or 'paused')}"
    elif answer.resolution is Resolution.CLOSED and answer.detail:
        head += f": {escape(answer.detail)}"
    of = f"step {answer.number}/{s.steps}" if s.steps else f"step {answer.number}"
    blocks = [section(f"{head}\n{of} of *{escape(s.rollout)}*")]
    if question:
        blocks.append(context(f"Asked: {escape(question)}"))
    plain = f"{word}: {of} of {s.rollout}" + (f" by {answer.by.removeprefix('slack:')}" if answer.by else "")
    return Rendered(plain, blocks)


def fits(blocks: list[Block]) -> list[Block]:
    """At most ``MAX_BLOCKS`` blocks (the last ones, the footer, are kept)."""
    return blocks if len(blocks) <= MAX_BLOCKS else [*blocks[: MAX_BLOCKS - 1], blocks[-1]]


# --- pieces --------------------------------------------------------------------------------------


def _traffic(s: RolloutSnapshot) -> str:
    line = (
        f"*Traffic* canary `{escape(s.canary)}` *{s.canary_weight}%* · stable `{escape(s.stable)}` *{s.stable_weight}%*"
    )
    if s.desired_canary_weight != s.canary_weight and s.phase in ("Progressing", "Promoting", "RollingBack"):
        line += f" (moving canary to {s.desired_canary_weight}%)"
    return line


def _footer(s: RolloutSnapshot, links: Mapping[str, str]) -> str:
    target = f"{escape(s.name)} -n {escape(s.namespace)}"
    parts = [f"revision `{escape(s.revision)}`", f"updated {when(s.at)}"]
    commands = _COMMANDS.get(s.phase, ())
    if commands:
        parts.append(" ".join(f"`rollout {c} {target}`" for c in commands))
    parts.append(f"`rollout status {target}`")
    for label, url in links.items():
        link = url.format(namespace=s.namespace, name=s.name, rollout=s.rollout)
        parts.append(f"<{link}|{escape(label)}>")
    return " · ".join(parts)


def _buttons(s: RolloutSnapshot, key: str, step: int) -> Block:
    value = ApprovalRef(namespace=s.namespace, name=s.name, key=key, step=step).encode()
    return {
        "type": "actions",
        "block_id": APPROVAL_BLOCK,
        "elements": [
            _button("Approve", APPROVE_ACTION, value, "primary"),
            {
                **_button("Reject", REJECT_ACTION, value, "danger"),
                "confirm": {
                    "title": plain("Reject and roll back?"),
                    "text": plain(f"{s.rollout} will roll back to {s.stable or 'the stable version'}."[:300]),
                    "confirm": plain("Reject"),
                    "deny": plain("Cancel"),
                    "style": "danger",
                },
            },
        ],
    }


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _button(label: str, action_id: str, value: str, style: str) -> Block:
    return {"type": "button", "text": plain(label), "action_id": action_id, "value": value, "style": style}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


VERDICT_EVENTS = frozenset({"rollout.step-passed", "rollout.check-failed", "rollout.deadline", "rollout.rolled-back"})
"""Events whose reply shows the verdict's checks (every note carries the last verdict; most are not about it)."""

BROADCAST = frozenset(
    {
        "rollout.rolled-back",
        "rollout.aborted",
        "rollout.drift",
        "rollout.deadline",
        "rollout.route-error",
        "rollout.approval-timeout",
    }
)
"""Events also shown in the channel (``reply_broadcast``): the run failed or stopped and needs people."""


def broadcast(note: Notify) -> bool:
    return note.event in BROADCAST or (note.level is Level.FAILURE and note.event != "rollout.check-failed")
