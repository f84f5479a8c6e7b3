"""A local stand-in of Slack for tests: the Web API, Socket Mode, and the ``response_url`` endpoint.

Owns the fake side of Slack: a threaded HTTP server on a loopback port that answers
``POST|GET /api/<method>`` like https://slack.com/api/<method> (point slack-sdk at it with
``base_url``), and a Socket Mode WebSocket server (``slack_socket``). It honours Slack's contract as
far as rollout uses it:

- auth: ``Authorization: Bearer`` or a ``token`` field; none -> ``not_authed``, unknown ->
  ``invalid_auth``, a bot token on ``apps.connections.open`` or an app-level token elsewhere ->
  ``not_allowed_token_type`` (HTTP 200, ``{"ok": false, "error": ...}`` as Slack answers);
- bodies: JSON or form-encoded (``blocks``/``attachments``/``metadata`` as JSON strings) plus the
  query string;
- methods: ``auth.test``; ``chat.postMessage`` (``thread_ts`` must name a top-level message of the
  channel: ``thread_not_found``; ``reply_broadcast``; ``metadata``) and ``chat.update``, Block Kit
  checked against Slack's limits (``slack_blocks``); ``conversations.info``,
  ``conversations.history`` and ``conversations.replies`` (channel IDs only, ``oldest``, ``limit``,
  cursors, ``metadata`` with ``include_all_metadata``); ``usergroups.users.list``
  (``no_such_subteam``); ``apps.connections.open`` (a ``wss://`` URL with a one-time ticket); others
  ``unknown_method``;
- ``POST /actions/...``: a ``response_url``; every answer is recorded in ``responses``;
- failures on demand: ``rate_limit(n, retry_after)`` (HTTP 429 + ``Retry-After``), ``fail_next``;
  ``stop()`` and ``start()`` again: an outage, the same ports afterwards.

Every accepted message is recorded (``messages``), every call too (``calls``); ``click`` delivers a
button click through Socket Mode and waits for the app's ack. Standard library only; it must not
import rollout.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.harness.slack_blocks import content, validate_blocks
from tests.harness.slack_payloads import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    block_actions,
    message_json,
    signed_interaction,
)
from tests.harness.slack_socket import SocketModeServer

__all__ = [
    "APP_TOKEN",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_TOKEN",
    "TEAM_ID",
    "Call",
    "Message",
    "SlackStandIn",
    "block_actions",
    "signed_interaction",
    "validate_blocks",
]
DEFAULT_TOKEN = "xoxb-1111-2222-rollouttest"
APP_TOKEN = "xapp-1-A0ROLLOUT-1111-rollouttest"


@dataclass
class Message:
    """A message the stand-in accepted; ``updates`` keeps the previous versions after chat.update."""

    channel: str  # the channel ID
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    updates: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    thread_ts: str | None = None  # the parent's ts for a reply
    broadcast: bool = False  # a reply also shown in the channel
    metadata: dict[str, Any] | None = None

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

    def shown(self) -> str:
        """Every text of the message as one string (what a person reads)."""
        texts = [self.text]
        for block in self.all_blocks():
            texts.append(str((block.get("text") or {}).get("text", "")))
            texts += [str(e.get("text", "")) for e in block.get("elements", ()) if isinstance(e.get("text"), str)]
        return "\n".join(t for t in texts if t)


@dataclass(frozen=True)
class Call:
    method: str
    status: int
    error: str | None  # None when ok


class SlackStandIn:
    """Slack on 127.0.0.1; ``channels`` maps a name (without #) to its ID, ``groups`` a user group to its users."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        app_tokens: Iterable[str] = (APP_TOKEN,),
        channels: Mapping[str, str] | None = None,
        not_member_of: Iterable[str] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.tokens, self.app_tokens = set(tokens), set(app_tokens)
        self.channels = dict(channels if channels is not None else {"deploys": "C0DEPLOYS", "general": "C0GENERAL"})
        self.not_member_of = set(not_member_of)  # names or IDs where the bot is not a member
        self.groups = {k: list(v) for k, v in (groups or {}).items()}
        self.messages: list[Message] = []
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []  # (response_url path, JSON body)
        self.socket = SocketModeServer()
        self._rate_limited, self._retry_after, self._errors = 0, 1, list[str]()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        """Serve (again: on the same ports as before, after ``stop``)."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._serve(self)

            def do_GET(self) -> None:
                stand_in._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="slack-stand-in", daemon=True
        )
        self._thread.start()
        self.socket.start()
        return self

    def stop(self) -> None:
        """Stop answering: the Web API and every Socket Mode connection go away."""
        self.socket.stop()
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
        assert self._port, "the stand-in was never started"
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def hooks(self) -> str:
        """The prefix of the ``response_url`` in clicks (``ROLLOUT_SLACK__RESPONSE_URL_PREFIX``)."""
        return f"http://127.0.0.1:{self._port}/"

    # --- test controls --------------------------------------------------------------------

    def rate_limit(self, calls: int, retry_after: int = 1) -> None:
        """Answer the next ``calls`` calls with HTTP 429 ``ratelimited`` and ``Retry-After``."""
        with self._lock:
            self._rate_limited, self._retry_after = calls, retry_after

    def fail_next(self, error: str, calls: int = 1) -> None:
        """Answer the next ``calls`` authenticated calls with ``{"ok": false, "error": error}``."""
        with self._lock:
            self._errors.extend([error] * calls)

    def channel_id(self, channel: str) -> str:
        return self.channels[channel.removeprefix("#")]

    def in_channel(self, channel: str) -> list[Message]:
        cid = self._resolve(channel)
        with self._lock:
            return [m for m in self.messages if m.channel == cid]

    def top_level(self, channel: str) -> list[Message]:
        """The channel's messages that are not thread replies."""
        return [m for m in self.in_channel(channel) if m.thread_ts is None]

    def replies(self, parent: Message) -> list[Message]:
        return [m for m in self.in_channel(parent.channel) if m.thread_ts == parent.ts]

    def click(self, message: Message, action_id: str, *, user_id: str, timeout: float = 3.0) -> bool:
        """``user_id`` clicks a button of ``message``, delivered through Socket Mode; True once acked."""
        payload = block_actions(message, action_id, user_id=user_id, hooks=self.hooks)
        return self.socket.acked(self.socket.send(payload), timeout)

    # --- the API --------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if url.path.startswith("/actions/"):
            status, body, headers = self._response_url(url.path, raw)
        else:
            method = url.path.removeprefix("/api/") if url.path.startswith("/api/") else ""
            status, body, headers = self._answer(method, request.headers, raw, parse_qs(url.query))
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _response_url(self, path: str, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"ok": False, "error": "invalid_json"}, {}
        with self._lock:
            self.responses.append((path, body))
        return 200, {"ok": True}, {}

    def _answer(
        self, method: str, headers: Any, raw: bytes, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        args: dict[str, Any] = {k: v[0] for k, v in query.items()}
        try:
            if str(headers.get("Content-Type") or "").startswith("application/json"):
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
            limited = self._rate_limited > 0
            self._rate_limited -= int(limited)
            retry = str(self._retry_after)
        if limited:
            return self._done(method, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry})
        if not token:
            return self._done(method, 200, {"ok": False, "error": "not_authed"})
        if token not in self.tokens | self.app_tokens:
            return self._done(method, 200, {"ok": False, "error": "invalid_auth"})
        if (method == "apps.connections.open") != (token in self.app_tokens):
            return self._done(method, 200, {"ok": False, "error": "not_allowed_token_type"})
        with self._lock:
            injected = self._errors.pop(0) if self._errors else None
        if injected is not None:
            return self._done(method, 200, {"ok": False, "error": injected})
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.info": self._conversation_info,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "usergroups.users.list": self._group_users,
            "apps.connections.open": self._connections_open,
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

    def _connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        del args
        return {"ok": True, "url": self.socket.url(self.socket.ticket())}

    def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = str(args.get("channel", ""))
        names = {v: k for k, v in self.channels.items()}
        if cid not in names:
            return {"ok": False, "error": "channel_not_found"}
        member = cid not in self.not_member_of and names[cid] not in self.not_member_of
        return {"ok": True, "channel": {"id": cid, "name": names[cid], "is_channel": True, "is_member": member}}

    def _group_users(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup", ""))
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.groups[group])}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._resolve(str(args.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if cid in self.not_member_of or any(self.channels.get(n) == cid for n in self.not_member_of):
            return {"ok": False, "error": "not_in_channel"}
        found = content(args)
        if isinstance(found, dict):
            return found
        text, blocks, attachments = found
        thread = str(args["thread_ts"]) if args.get("thread_ts") else None
        meta = args.get("metadata")
        meta = json.loads(meta) if isinstance(meta, str) and meta else meta
        with self._lock:
            if thread is not None and not any(
                m.channel == cid and m.ts == thread and m.thread_ts is None for m in self.messages
            ):
                return {"ok": False, "error": "thread_not_found"}
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            broadcast = thread is not None and str(args.get("reply_broadcast")).lower() in ("true", "1")
            message = Message(cid, ts, text, blocks, attachments, thread_ts=thread, broadcast=broadcast)
            message.metadata = meta if isinstance(meta, dict) else None
            self.messages.append(message)
        return {"ok": True, "channel": cid, "ts": ts, "message": message_json(message)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if cid not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        found = content(args)
        if isinstance(found, dict):
            return found
        text, blocks, attachments = found
        with self._lock:
            message = next((m for m in self.messages if m.channel == cid and m.ts == ts), None)
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.updates.append((message.text, message.blocks))
            message.text, message.blocks, message.attachments = text, blocks, attachments
        return {"ok": True, "channel": cid, "ts": ts, "text": text, "message": message_json(message)}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = str(args.get("channel", ""))
        if cid not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        with self._lock:
            found = [m for m in self.messages if m.channel == cid and (m.thread_ts is None or m.broadcast)]
        found = [m for m in reversed(found) if float(m.ts) >= oldest]  # newest first, as Slack lists them
        return self._page(found, args)

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        cid, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if cid not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            parent = [m for m in self.messages if m.channel == cid and m.ts == ts and m.thread_ts is None]
            found = parent + [m for m in self.messages if m.channel == cid and m.thread_ts == ts]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(found, args)

    def _page(self, found: list[Message], args: dict[str, Any]) -> dict[str, Any]:
        start, limit = int(args.get("cursor") or 0), max(1, min(int(args.get("limit") or 100), 999))
        page = found[start : start + limit]
        with_meta = str(args.get("include_all_metadata")).lower() in ("true", "1")
        messages = [message_json(m) | ({"metadata": m.metadata} if with_meta and m.metadata else {}) for m in page]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _resolve(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.removeprefix("#"))
