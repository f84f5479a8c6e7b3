"""What Slack sends to an app about a click: the ``block_actions`` payload, and its signed HTTP form.

Owns ``block_actions`` (a person clicking a button of a recorded message, with the thread, channel,
``trigger_id`` and ``response_url`` Slack includes) and ``signed_interaction`` (the headers and
form body Slack POSTs to an app's Request URL, signed with the signing secret exactly as Slack
signs). Socket Mode carries the same payload in an envelope (``slack_socket``). Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.harness.slack import Message

TEAM_ID = "T0ROLLOUT"
BOT_USER_ID = "U0ROLLBOT"
BOT_ID = "B0ROLLBOT"
HOOKS = "https://hooks.slack.com/"

_triggers = itertools.count(1)


def message_json(message: Message) -> dict[str, Any]:
    """A message as Slack's API returns it (history, replies, interaction payloads)."""
    out: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": message.text,
        "ts": message.ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "blocks": message.blocks,
        "attachments": message.attachments,
    }
    if message.thread_ts is not None:
        out["thread_ts"] = message.thread_ts
        if message.broadcast:
            out["subtype"] = "thread_broadcast"
    return out


def signed_interaction(
    signing_secret: str, payload: Mapping[str, Any], timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of Slack's POST to an interactivity URL: ``payload=<json>`` form-encoded,
    signed ``v0=hex(hmac_sha256(secret, "v0:{timestamp}:{body}"))``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }
    return headers, body


def block_actions(
    message: Message,
    action_id: str,
    *,
    user_id: str,
    channel_name: str = "deploys",
    trigger_id: str | None = None,
    action_ts: str | None = None,
    hooks: str = HOOKS,
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user_id`` clicking the button ``action_id`` of ``message``
    (its ``response_url`` under ``hooks``)."""
    block_id, button = message.button(action_id)
    n = next(_triggers)
    trigger = trigger_id or f"{n}.{int(time.time())}.{hashlib.sha1(str(n).encode()).hexdigest()[:32]}"
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": message.channel,
        "is_ephemeral": False,
    }
    if message.thread_ts is not None:
        container["thread_ts"] = message.thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0ROLLOUT",
        "token": "deprecated-verification-token",
        "container": container,
        "trigger_id": trigger,
        "team": {"id": TEAM_ID, "domain": "rollout-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message.channel, "name": channel_name},
        "message": message_json(message),
        "state": {"values": {}},
        "response_url": f"{hooks}actions/{TEAM_ID}/{n}/{hashlib.sha1(trigger.encode()).hexdigest()}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": button.get("text"),
                "value": button.get("value"),
                "style": button.get("style"),
                "type": "button",
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
