"""The Slack stand-in keeps Slack's contract where rollout relies on it: form and JSON bodies,
threads (``thread_not_found``), history and replies with metadata and cursors, token types, unknown
methods, and Socket Mode's one-time tickets and ``hello``."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.harness.slack import APP_TOKEN, SlackStandIn


def test_form_bodies_threads_update_and_conversations_info(slack_api: SlackStandIn, slack_token: str) -> None:
    client = WebClient(token=slack_token, base_url=slack_api.base_url, retry_handlers=[])
    posted = client.api_call(
        "chat.postMessage", params={"channel": "deploys", "text": "plain", "blocks": '[{"type":"divider"}]'}
    )
    assert posted["channel"] == "C0DEPLOYS"
    reply = client.chat_postMessage(channel="C0DEPLOYS", text="r", thread_ts=posted["ts"], reply_broadcast=True)
    updated = client.chat_update(channel="C0DEPLOYS", ts=posted["ts"], text="approved by <@U1>", blocks=[])
    assert updated["ts"] == posted["ts"]
    parent, answer = slack_api.messages
    assert (parent.text, parent.updates) == ("approved by <@U1>", [("plain", [{"type": "divider"}])])
    assert (answer.ts, answer.thread_ts, answer.broadcast) == (reply["ts"], posted["ts"], True)
    assert client.conversations_info(channel="C0DEPLOYS")["channel"]["is_member"] is True
    refused = {
        "chat.update": ({"channel": "C0DEPLOYS", "ts": "1.000000", "text": "x"}, "message_not_found"),
        "conversations.info": ({"channel": "C0NOPE"}, "channel_not_found"),
        "chat.delete": ({"channel": "C0DEPLOYS", "ts": posted["ts"]}, "unknown_method"),
        "chat.postMessage": ({"channel": "C0DEPLOYS"}, "no_text"),
        "conversations.replies": ({"channel": "C0DEPLOYS", "ts": reply["ts"]}, "thread_not_found"),
        "conversations.history": ({"channel": "#deploys"}, "channel_not_found"),  # IDs only, as Slack
    }
    for method, (params, code) in refused.items():
        with pytest.raises(SlackApiError) as caught:
            client.api_call(method, params=params)
        assert caught.value.response["error"] == code, method
    with pytest.raises(SlackApiError, match="thread_not_found"):
        client.chat_postMessage(channel="C0DEPLOYS", text="r", thread_ts=reply["ts"])  # a reply is no parent


def test_history_and_replies_page_and_carry_metadata_only_when_asked(slack_api: SlackStandIn, slack_token: str) -> None:
    client = WebClient(token=slack_token, base_url=slack_api.base_url, retry_handlers=[])
    meta = {"event_type": "rollout_run", "event_payload": {"rollout": "a/b", "run": "r"}}
    first = client.chat_postMessage(channel="C0DEPLOYS", text="parent", metadata=meta)
    for i in range(5):
        client.chat_postMessage(channel="C0DEPLOYS", text=f"reply {i}", thread_ts=first["ts"])
    client.chat_postMessage(channel="C0DEPLOYS", text="later")
    history = client.conversations_history(channel="C0DEPLOYS", limit=1)
    assert [m["text"] for m in history["messages"]] == ["later"]  # newest first; replies are not history
    rest = client.conversations_history(channel="C0DEPLOYS", cursor=history["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["parent"] and "metadata" not in rest["messages"][0]
    with_meta = client.conversations_history(channel="C0DEPLOYS", include_all_metadata=True)
    assert with_meta["messages"][1]["metadata"] == meta
    replies = client.conversations_replies(channel="C0DEPLOYS", ts=first["ts"], limit=4)
    assert [m["text"] for m in replies["messages"]] == ["parent", "reply 0", "reply 1", "reply 2"]
    assert replies["has_more"] is True


def test_token_types(slack_api: SlackStandIn, slack_token: str) -> None:
    bot = WebClient(token=slack_token, base_url=slack_api.base_url, retry_handlers=[])
    app = WebClient(token=APP_TOKEN, base_url=slack_api.base_url, retry_handlers=[])
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        bot.apps_connections_open(app_token=slack_token)
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        app.chat_postMessage(channel="C0DEPLOYS", text="x")
    url = bot.apps_connections_open(app_token=APP_TOKEN)["url"]
    assert url.startswith(f"wss://127.0.0.1:{slack_api.socket.port}/link/?ticket=")


def _upgrade(port: int, path: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1024)
    return sock, answer


def test_socket_mode_tickets_are_single_use_and_hello_comes_first(slack_api: SlackStandIn, slack_token: str) -> None:
    url = WebClient(base_url=slack_api.base_url).apps_connections_open(app_token=APP_TOKEN)["url"]
    path = url.split(str(slack_api.socket.port), 1)[1]
    sock, answer = _upgrade(slack_api.socket.port, path)
    with sock:
        assert answer.startswith(b"HTTP/1.1 101")
        frame = answer.split(b"\r\n\r\n", 1)[1]
        while len(frame) < 4:
            frame += sock.recv(4096)
        assert frame[0] == 0x81 and frame[1] == 126  # one unmasked text frame, a 16-bit length
        length = struct.unpack("!H", frame[2:4])[0]
        while len(frame) < 4 + length:
            frame += sock.recv(4096)
        hello = json.loads(frame[4 : 4 + length])
        assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == "A0ROLLOUT"
    again, refused = _upgrade(slack_api.socket.port, path)  # the same ticket twice
    again.close()
    assert refused.startswith(b"HTTP/1.1 401")
