"""Slack notifier: Block Kit messages and approval requests with Approve / Reject buttons (slack-sdk).

Owns how a ``Notify`` or ``RequestApproval`` looks in Slack and which channel it goes to, the
contract of the approval buttons (``APPROVE_ACTION``/``REJECT_ACTION`` and the JSON ``value``
that ``ApprovalRef`` encodes), and the translation of slack-sdk failures into ``NotifierError``
subclasses naming the method, the channel and Slack's error code.

The buttons carry everything needed to act on a click (rollout, approval key and step), so a
click still works after a daemon restart or on another replica: nothing is remembered here.
It makes one attempt per call and never sleeps or retries (a rate limit raises ``SlackRateLimited``
with Slack's ``Retry-After``; ``rollout.runtime.retrying.SLACK_CALLS`` decides whether to try
again). It must not import the runtime or kube layers, nor read settings or the environment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, Resolution
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.errors import NotifierError
from rollout.notifiers.base import RolloutSnapshot

APPROVE_ACTION = "rollout.approve"
REJECT_ACTION = "rollout.reject"
APPROVAL_BLOCK = "rollout.approval"

_EMOJI = {
    Level.INFO: ":information_source:",
    Level.SUCCESS: ":white_check_mark:",
    Level.WARNING: ":warning:",
    Level.FAILURE: ":rotating_light:",
}
_COLOUR = {
    Level.INFO: "#439fe0",
    Level.SUCCESS: "#2eb67d",
    Level.WARNING: "#ecb22e",
    Level.FAILURE: "#e01e5a",
}
_MARK = {
    VerdictKind.PASS: ":large_green_circle:",
    VerdictKind.FAIL: ":red_circle:",
    VerdictKind.HOLD: ":white_circle:",
}
_RATIO_CHECKS = frozenset({"errorRate", "latency"})  # values and limits are shares of requests
_SECTION_MAX = 3000  # Slack's limit for a section's text


class SlackError(NotifierError):
    """Slack answered ``ok: false`` (or could not be reached: ``code`` is ``connection_error``)."""

    def __init__(self, method: str, channel: str | None, code: str, detail: str = "") -> None:
        where = f" to {channel}" if channel else ""
        super().__init__(f"slack {method}{where} failed: {code}" + (f" ({detail})" if detail else ""))
        self.method, self.channel, self.code = method, channel, code


class SlackRateLimited(SlackError):
    """Slack answered HTTP 429 ``ratelimited``; nothing was posted, so trying again is safe."""

    def __init__(self, method: str, channel: str | None, retry_after: float) -> None:
        super().__init__(method, channel, "ratelimited", f"retry after {retry_after:g}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ApprovalRef:
    """What an approval button carries in its ``value``: enough to act on a click with no memory."""

    namespace: str
    name: str
    key: str
    step: int

    @property
    def rollout(self) -> str:
        return f"{self.namespace}/{self.name}"

    def encode(self) -> str:
        return json.dumps({"v": 1, "rollout": self.rollout, "key": self.key, "step": self.step}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> ApprovalRef:
        """Parse a button value; raises ``ValueError`` if it is not one of ours."""
        try:
            data = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"button value is not JSON: {e}") from e
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("button value is not a rollout approval (v1)")
        rollout, key, step = data.get("rollout"), data.get("key"), data.get("step")
        if not isinstance(rollout, str) or rollout.count("/") != 1 or not all(rollout.split("/")):
            raise ValueError(f"button value names no rollout namespace/name: {rollout!r}")
        if not isinstance(key, str) or not isinstance(step, int) or isinstance(step, bool):
            raise ValueError("button value lacks the approval key or step")
        namespace, name = rollout.split("/")
        return cls(namespace=namespace, name=name, key=key, step=step)


class SlackNotifier:
    """Posts notifications and approval requests through ``client`` (one attempt per call).

    Channels: a ``RequestApproval`` goes to its own ``channel`` (the policy's approvals channel);
    without one, no Slack message is posted (the policy asked for CLI approvals only). A ``Notify``
    goes to ``channel_for(rollout)`` (the policy's notification channel), else ``default_channel``,
    else nowhere. ``links`` maps a label to a URL template with ``{namespace}``, ``{name}`` and
    ``{rollout}`` placeholders (a dashboard, the runbook), shown under every message.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        default_channel: str | None = None,
        channel_for: Callable[[str], str | None] | None = None,
        links: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.default_channel = default_channel
        self.channel_for = channel_for
        self.links = dict(links or {})

    @classmethod
    def connect(
        cls,
        token: str,
        *,
        base_url: str = WebClient.BASE_URL,
        timeout: float = 10.0,
        default_channel: str | None = None,
        channel_for: Callable[[str], str | None] | None = None,
        links: Mapping[str, str] | None = None,
    ) -> SlackNotifier:
        """A notifier over a fresh ``WebClient`` whose own retry handlers are disabled."""
        client = WebClient(token=token, base_url=base_url, timeout=int(timeout), retry_handlers=[])
        return cls(client, default_channel=default_channel, channel_for=channel_for, links=links)

    def check(self) -> str:
        """``auth.test``: the token works; returns the bot's user id."""
        answer = self._call("auth.test", None, self.client.auth_test)
        return str(answer.get("user_id", ""))

    def notify(self, rollout: str, note: Notify) -> None:
        channel = (self.channel_for(rollout) if self.channel_for else None) or self.default_channel
        if channel is None:
            return
        text = f"{rollout}: {note.message}"
        blocks: list[dict[str, Any]] = [
            _section(f"{_EMOJI[note.level]} *{_escape(rollout)}* · `{note.event}`\n{_escape(note.message)}"),
            *self._link_blocks(rollout),
        ]
        attachments = (
            [
                {
                    "color": _COLOUR[note.level],
                    "fallback": note.verdict.summary,
                    "blocks": _verdict_blocks(note.verdict),
                }
            ]
            if note.verdict is not None
            else None
        )
        self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, attachments=attachments, unfurl_links=False
            ),
        )

    def approval_resolved(self, rollout: str, resolved: ApprovalResolved) -> None:
        """Say in the notification channel how the approval request ended."""
        who = f" by {resolved.by}" if resolved.by else ""
        detail = f" ({resolved.detail})" if resolved.detail else ""
        note = Notify(
            key=f"{resolved.key}-{resolved.resolution.value}",
            event="rollout.approval-resolved",
            level=Level.INFO if resolved.resolution is Resolution.APPROVED else Level.WARNING,
            message=f"approval of step {resolved.number}: {resolved.resolution.value}{who}{detail}",
        )
        self.notify(rollout, note)

    def update(self, snapshot: RolloutSnapshot) -> None:
        """Nothing: this notifier posts events only, it keeps no message that shows the current state."""
        del snapshot

    def request_approval(self, rollout: str, request: RequestApproval) -> None:
        channel = request.channel
        if channel is None:
            return
        namespace, _, name = rollout.partition("/")
        value = ApprovalRef(namespace=namespace, name=name, key=request.key, step=request.number).encode()
        who = (
            "Approvers: " + ", ".join(f"<@{u}>" for u in request.approvers)
            if request.approvers
            else "Anyone in this channel may approve."
        )
        blocks: list[dict[str, Any]] = [
            _section(
                f":raised_hand: *Approval needed* for *{_escape(rollout)}* at step {request.number}\n"
                f"{_escape(request.message)}"
            ),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": who}]},
            {
                "type": "actions",
                "block_id": APPROVAL_BLOCK,
                "elements": [
                    _button("Approve", APPROVE_ACTION, value, "primary"),
                    {
                        **_button("Reject", REJECT_ACTION, value, "danger"),
                        "confirm": {
                            "title": _plain("Reject and roll back?"),
                            "text": _plain(f"{rollout} will roll back to the stable version."),
                            "confirm": _plain("Reject"),
                            "deny": _plain("Cancel"),
                            "style": "danger",
                        },
                    },
                ],
            },
            *self._link_blocks(rollout),
        ]
        self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=f"Approval needed for {rollout}: {request.message}", blocks=blocks
            ),
        )

    def _link_blocks(self, rollout: str) -> list[dict[str, Any]]:
        if not self.links:
            return []
        namespace, _, name = rollout.partition("/")
        parts = [
            f"<{url.format(namespace=namespace, name=name, rollout=rollout)}|{_escape(label)}>"
            for label, url in self.links.items()
        ]
        return [{"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)}]}]

    def _call(self, method: str, channel: str | None, send: Callable[[], Any]) -> Mapping[str, Any]:
        try:
            response = send()
        except SlackApiError as e:
            status = getattr(e.response, "status_code", 0)
            if status == 429:
                raise SlackRateLimited(method, channel, _retry_after(e.response.headers)) from e
            code = str(e.response.get("error", f"http_{status}"))
            detail = "; ".join(str(m) for m in e.response.get("errors", ()) or ())
            raise SlackError(method, channel, code, detail) from e
        except (SlackClientError, OSError) as e:
            raise SlackError(method, channel, "connection_error", str(e) or type(e).__name__) from e
        data: Mapping[str, Any] = response.data if isinstance(response.data, dict) else {}
        return data


def _retry_after(headers: Mapping[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0


def _verdict_blocks(verdict: Verdict) -> list[dict[str, Any]]:
    head = f"{_MARK[verdict.kind]} *Verdict: {verdict.kind.value}* — {_escape(verdict.summary)}"
    if not verdict.enough_data:
        head += "\n_not enough data to decide_"
    blocks = [_section(head)]
    arms = [
        f"*{label}* {_arm(counts.requests, counts.errors)}"
        for label, counts in (("canary", verdict.canary), ("stable", verdict.stable))
        if counts is not None
    ]
    if arms:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(arms)}]})
    blocks.extend(_section(_check_line(c)) for c in verdict.checks[:20])
    return blocks


def _arm(requests: float, errors: float) -> str:
    ratio = f" ({errors / requests:.2%})" if requests > 0 else ""
    return f"{requests:,.0f} requests, {errors:,.0f} errors{ratio}"


def _check_line(check: Check) -> str:
    fmt = _pct if check.name in _RATIO_CHECKS else _num
    line = f"{_MARK[check.verdict]} *{_escape(check.name)}*: {fmt(check.value)} vs limit {fmt(check.limit)}"
    if check.evidence is not None or check.threshold is not None:
        line += f" · evidence {_num(check.evidence)} vs threshold {_num(check.threshold)}"
    if check.detail:
        line += f"\n{_escape(check.detail)}"
    return line


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _escape(text: str) -> str:
    """Slack's mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    if len(text) > _SECTION_MAX:
        text = text[: _SECTION_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _button(label: str, action_id: str, value: str, style: str) -> dict[str, Any]:
    return {"type": "button", "text": _plain(label), "action_id": action_id, "value": value, "style": style}
