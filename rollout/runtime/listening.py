"""Slack Socket Mode: receiving button clicks over an outbound WebSocket, with no inbound endpoint.

Owns the Socket Mode connection (slack-sdk's built-in ``SocketModeClient``: ``apps.connections.open``
with the app-level token, the ``wss://`` connection, Slack's ``hello``, pings, reconnecting on
``disconnect`` or a dead socket) and its life cycle: the connection is open only while ``leading()``
is true (the daemon passes "holds shard 0"), checked every ``check_seconds``; a standby never
connects, so Slack never hands it an envelope. Each envelope is acknowledged at once with its
``envelope_id`` (Slack wants the ack within 3 s) and its ``interactive`` payload handed to
``handle`` (``SlackInteractions.handle_payload``). An envelope arriving after leadership was lost
is not acknowledged, and the connection is closed. It decides nothing about rollouts; slack-sdk
is imported here by leave of the import contract (pyproject: "slack-sdk is used only in ...").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

log = logging.getLogger("rollout.socket")


class SocketModeListener:
    """Holds the Socket Mode connection while ``leading()``; see the module docstring."""

    def __init__(
        self,
        app_token: str,
        *,
        handle: Callable[[Mapping[str, Any]], object],
        leading: Callable[[], bool],
        base_url: str = WebClient.BASE_URL,
        timeout: float = 10.0,
        check_seconds: float = 2.0,
        ping_seconds: float = 5.0,
    ) -> None:
        self._token, self._handle, self._leading = app_token, handle, leading
        self._base_url, self._timeout = base_url, timeout
        self._check, self._ping = check_seconds, ping_seconds
        self._client: SocketModeClient | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.envelopes = 0  # acknowledged and handled
        self.refused = 0  # arrived while not leading: neither acknowledged nor handled

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._client is not None and self._client.is_connected()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slack-socket", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                leading = self._leading()
            except Exception:  # a leadership check that fails means: not leading
                leading = False
            with self._lock:
                open_ = self._client is not None
            if leading and not open_:
                self._open()
            elif not leading and open_:
                log.info("not leading: closing the Socket Mode connection", extra={"event": "slack.socket-closed"})
                self._close()
            self._stop.wait(self._check)

    def _open(self) -> None:
        web = WebClient(base_url=self._base_url, timeout=int(self._timeout), retry_handlers=[])
        client = SocketModeClient(
            app_token=self._token,
            web_client=web,
            logger=logging.getLogger("rollout.socket.sdk"),
            ping_interval=self._ping,
            concurrency=2,
        )
        client.socket_mode_request_listeners.append(self._on_request)
        try:
            client.connect()
        except (SlackApiError, SlackClientError, OSError) as e:
            client.close()
            log.warning("cannot open a Socket Mode connection", extra={"event": "slack.socket-failed", "error": str(e)})
            return
        with self._lock:
            self._client = client
        log.info("Socket Mode connection open", extra={"event": "slack.socket-open"})

    def _close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _on_request(self, client: Any, request: SocketModeRequest) -> None:
        if not self._leading():
            self.refused += 1
            log.warning("envelope while not leading: left unacknowledged", extra={"event": "slack.socket-refused"})
            threading.Thread(target=self._close, name="slack-socket-close", daemon=True).start()
            return
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        self.envelopes += 1
        if request.type == "interactive":
            self._handle(request.payload)
