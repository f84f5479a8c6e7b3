"""A local stand-in of the Slack Web API, and interaction payloads signed exactly as Slack signs them.

Owns the fake side of Slack for tests: a threaded HTTP server on a free loopback port that
answers ``POST /api/<method>`` like https://slack.com/api/<method> (point slack-sdk at it with
``WebClient(base_url=stand_in.base_url)``). It honours Slack's contract as far as rollout uses it:

- auth: ``Authorization: Bearer xoxb-...`` (or a ``token`` form field); none -> ``not_authed``,
  unknown -> ``invalid_auth`` (HTTP 200, ``{"ok": false, "error": ...}`` as Slack answers);
- bodies: JSON (``application/json``, what slack-sdk sends for chat.*) or form-encoded (where
  ``blocks``/``attachments`` are JSON strings), plus query-string arguments;
- methods: ``auth.test``, ``chat.postMessage``, ``chat.update``, ``conversations.info``; others
  answer ``unknown_method``; channels by ``#name``, ``name`` or ID (``channel_not_found``,
  ``not_in_channel``), Block Kit checked against Slack's documented limits (``invalid_blocks``
  with the reasons in ``errors``), ``no_text``, ``message_not_found``;
- failures on demand: ``rate_limit(n, retry_after)`` answers the next n calls with HTTP 429,
  ``Retry-After`` and ``ratelimited``; ``fail_next(code, n)`` answers ``ok: false`` with ``code``.

Every accepted message is recorded (``messages``), every call too (``calls``). ``signed_interaction``
produces the headers and form body Slack POSTs to an app's interactivity URL, and
``block_actions`` builds the payload of a click on a recorded message's button.
Standard library only; it must not import rollout.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

DEFAULT_TOKEN = "xoxb-1111-2222-rollouttest"
TEAM_ID = "T0ROLLOUT"
BOT_USER_ID = "U0ROLLBOT"
BOT_ID = "B0ROLLBOT"
_BLOCK_TYPES = frozenset(
    {"section", "actions", "context", "header", "divider", "image", "rich_text", "input", "file", "video", "markdown"}
)


@dataclass
class Message:
    """A message the stand-in accepted; ``updates`` keeps the previous versions after chat.update."""

    channel: str  # the channel ID
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    updates: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def all_blocks(self) -> list[dict[str, Any]]:
        """The message's blocks and those inside its attachments."""
        return [*self.blocks, *(b for a in self.attachments for b in a.get("blocks", ()))]

    def button(self, action_id: str) -> tuple[str, dict[str, Any]]:
        """(block_id, element) of the button with ``action_id``; KeyError if there is none."""
        for block in self.all_blocks():
            for element in block.get("elements", ()) if block.get("type") == "actions" else ():
                if element.get("action_id") == action_id:
                    return str(block.get("block_id", "")), element
        raise KeyError(f"no button {action_id!r} in message {self.ts}")


@dataclass(frozen=True)
class Call:
    method: str
    status: int
    error: str | None  # None when ok


class _Failures:
    def __init__(self) -> None:
        self.rate_limited = 0
        self.retry_after = 1
        self.errors: list[str] = []


class SlackStandIn:
    """The Slack Web API on 127.0.0.1; ``channels`` maps a name (without #) to its ID."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        channels: Mapping[str, str] | None = None,
        not_member_of: Iterable[str] = (),
    ) -> None:
        self.tokens = set(tokens)
        self.channels = dict(channels if channels is not None else {"deploys": "C0DEPLOYS", "general": "C0GENERAL"})
        self.not_member_of = set(not_member_of)  # names or IDs where the bot is not a member
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self._failures = _Failures()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._serve(self)

            def do_GET(self) -> None:
                stand_in._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="slack-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the stand-in is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    # --- test controls --------------------------------------------------------------------

    def rate_limit(self, calls: int, retry_after: int = 1) -> None:
        """Answer the next ``calls`` calls with HTTP 429 ``ratelimited`` and ``Retry-After``."""
        with self._lock:
            self._failures.rate_limited, self._failures.retry_after = calls, retry_after

    def fail_next(self, error: str, calls: int = 1) -> None:
        """Answer the next ``calls`` authenticated calls with ``{"ok": false, "error": error}``."""
        with self._lock:
            self._failures.errors.extend([error] * calls)

    def channel_id(self, channel: str) -> str:
        return self.channels[channel.removeprefix("#")]

    def in_channel(self, channel: str) -> list[Message]:
        cid = self._resolve(channel)
        with self._lock:
            return [m for m in self.messages if m.channel == cid]

    # --- the API --------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        method = url.path.removeprefix("/api/") if url.path.startswith("/api/") else ""
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        status, body, headers = self._answer(method, request.headers, raw, parse_qs(url.query))
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _answer(
        self, method: str, headers: Any, raw: bytes, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        args: dict[str, Any] = {k: v[0] for k, v in query.items()}
        content_type = str(headers.get("Content-Type") or "")
        try:
            if content_type.startswith("application/json"):
                parsed = json.loads(raw or b"{}")
            else:
                parsed = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return self._done(method, 200, {"ok": False, "error": "invalid_json"})
        args.update(parsed)
        auth = str(headers.get("Authorization") or "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.pop("token", None)
        with self._lock:
            limited = self._failures.rate_limited > 0
            if limited:
                self._failures.rate_limited -= 1
            retry = str(self._failures.retry_after)
        if limited:
            return self._done(method, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry})
        if not token:
            return self._done(method, 200, {"ok": False, "error": "not_authed"})
        if token not in self.tokens:
            return self._done(method, 200, {"ok": False, "error": "invalid_auth"})
        with self._lock:
            injected = self._failures.errors.pop(0) if self._failures.errors else None
        if injected is not None:
            return self._done(method, 200, {"ok": False, "error": injected})
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.info": self._conversation_info,
        }.get(method)
        if handler is None:
            return self._done(method, 200, {"ok": False, "error": "unknown_method"})
        return self._done(method, 200, handler(args))

    def _done(
        self, method: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.calls.append(Call(method, status, None if body.get("ok") else str(body.get("error"))))
        return status, body, headers or {}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        del args
        return {
            "ok": True,
            "url": "https://rollout-test.slack.com/",
            "team": "rollout test",
            "user": "rollout",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = str(args.get("channel", ""))
        names = {v: k for k, v in self.channels.items()}
        if cid not in names:
            return {"ok": False, "error": "channel_not_found"}
        member = cid not in self.not_member_of and names[cid] not in self.not_member_of
        return {"ok": True, "channel": {"id": cid, "name": names[cid], "is_channel": True, "is_member": member}}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._resolve(str(args.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if cid in self.not_member_of or any(self.channels.get(n) == cid for n in self.not_member_of):
            return {"ok": False, "error": "not_in_channel"}
        content = _content(args)
        if isinstance(content, dict):
            return content
        text, blocks, attachments = content
        with self._lock:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            self.messages.append(Message(cid, ts, text, blocks, attachments))
        return {"ok": True, "channel": cid, "ts": ts, "message": _message_json(ts, text, blocks, attachments)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if cid not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        content = _content(args)
        if isinstance(content, dict):
            return content
        text, blocks, attachments = content
        with self._lock:
            found = next((m for m in self.messages if m.channel == cid and m.ts == ts), None)
            if found is None:
                return {"ok": False, "error": "message_not_found"}
            found.updates.append((found.text, found.blocks))
            found.text, found.blocks, found.attachments = text, blocks, attachments
        return {
            "ok": True,
            "channel": cid,
            "ts": ts,
            "text": text,
            "message": _message_json(ts, text, blocks, attachments),
        }

    def _resolve(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.removeprefix("#"))


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]] | dict[str, Any]:
    """(text, blocks, attachments) of a chat.* call, or Slack's error answer."""
    try:
        blocks = _json_list(args.get("blocks"))
        attachments = _json_list(args.get("attachments"))
    except ValueError as e:
        return {"ok": False, "error": "invalid_blocks", "errors": [str(e)]}
    text = str(args.get("text") or "")
    if not text and not blocks and not attachments:
        return {"ok": False, "error": "no_text"}
    if len(text) > 40000:
        return {"ok": False, "error": "msg_too_long"}
    problems = validate_blocks(blocks)
    for i, attachment in enumerate(attachments):
        problems += [f"attachments[{i}].{p}" for p in validate_blocks(_json_list(attachment.get("blocks")))]
    if problems:
        return {
            "ok": False,
            "error": "invalid_blocks",
            "errors": problems,
            "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
        }
    return text, blocks, attachments


def _json_list(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("must be a JSON array of objects")
    return value


def _text_problem(obj: Any, where: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"{where}: must be a text object"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text: must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}.text: must be at most {limit} characters"]
    return []


def validate_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    """Slack's documented Block Kit limits for the blocks rollout sends; each problem names its path."""
    problems: list[str] = []
    if len(blocks) > 50:
        problems.append("blocks: at most 50 blocks")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where, kind = f"blocks[{i}]", block.get("type")
        if kind not in _BLOCK_TYPES:
            problems.append(f"{where}.type: unknown block type {kind!r}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255 or block_id in block_ids:
                problems.append(f"{where}.block_id: must be unique and at most 255 characters")
            block_ids.add(str(block_id))
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                problems += _text_problem(block["text"], f"{where}.text", limit=3000)
            for j, f in enumerate(block.get("fields", ())):
                problems += _text_problem(f, f"{where}.fields[{j}]", limit=2000)
        elif kind == "header":
            problems += _text_problem(block.get("text"), f"{where}.text", limit=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements", ())
            if not 1 <= len(elements) <= 10:
                problems.append(f"{where}.elements: 1 to 10 elements")
            for j, e in enumerate(elements):
                if e.get("type") != "image":
                    problems += _text_problem(e, f"{where}.elements[{j}]", limit=3000)
        elif kind == "actions":
            elements = block.get("elements", ())
            if not 1 <= len(elements) <= 25:
                problems.append(f"{where}.elements: 1 to 25 elements")
            for j, e in enumerate(elements):
                problems += _button_problems(e, f"{where}.elements[{j}]", action_ids)
    return problems


def _button_problems(element: dict[str, Any], where: str, action_ids: set[str]) -> list[str]:
    if element.get("type") != "button":
        return []  # other interactive elements are not used by rollout
    problems = _text_problem(element.get("text"), f"{where}.text", limit=75, plain_only=True)
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or len(action_id) > 255 or action_id in action_ids:
            problems.append(f"{where}.action_id: must be unique in the message and at most 255 characters")
        action_ids.add(str(action_id))
    if len(str(element.get("value", ""))) > 2000:
        problems.append(f"{where}.value: must be at most 2000 characters")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style: must be primary or danger")
    confirm = element.get("confirm")
    if confirm is not None:
        problems += _text_problem(confirm.get("title"), f"{where}.confirm.title", limit=100, plain_only=True)
        problems += _text_problem(confirm.get("text"), f"{where}.confirm.text", limit=300)
        problems += _text_problem(confirm.get("confirm"), f"{where}.confirm.confirm", limit=30, plain_only=True)
        problems += _text_problem(confirm.get("deny"), f"{where}.confirm.deny", limit=30, plain_only=True)
    return problems


def _message_json(
    ts: str, text: str, blocks: list[dict[str, Any]], attachments: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "blocks": blocks,
        "attachments": attachments,
    }


# --- what Slack sends to the app ----------------------------------------------------------------


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


_triggers = itertools.count(1)


def block_actions(
    message: Message,
    action_id: str,
    *,
    user_id: str,
    channel_name: str = "deploys",
    trigger_id: str | None = None,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """The ``block_actions`` payload of ``user_id`` clicking the button ``action_id`` of ``message``."""
    block_id, button = message.button(action_id)
    n = next(_triggers)
    trigger = trigger_id or f"{n}.{int(time.time())}.{hashlib.sha1(str(n).encode()).hexdigest()[:32]}"
    team = {"id": TEAM_ID, "domain": "rollout-test"}
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0ROLLOUT",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger,
        "team": team,
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": message.channel, "name": channel_name},
        "message": _message_json(message.ts, message.text, message.blocks, message.attachments),
        "state": {"values": {}},
        "response_url": f"https://hooks.slack.com/actions/{TEAM_ID}/{n}/{hashlib.sha1(trigger.encode()).hexdigest()}",
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
