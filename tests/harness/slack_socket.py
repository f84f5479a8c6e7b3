"""Slack's side of Socket Mode for the stand-in: a minimal WebSocket server (RFC 6455) on loopback.

Owns the Socket Mode contract as Slack runs it: a connection is accepted only on
``/link/?ticket=...`` with a ticket that ``apps.connections.open`` issued (each ticket once);
Slack's ``hello`` is the first message; the server answers pings with pongs; ``send`` delivers an
envelope (``envelope_id``, ``type``, ``payload``, ``accepts_response_payload``) on the newest open
connection and ``acked`` tells whether the app acknowledged it (a text frame ``{"envelope_id": ...}``);
``disconnect`` sends Slack's ``{"type": "disconnect", "reason": ...}`` (the app is expected to open a
new connection) and closes the old one a moment later; ``stop`` drops every connection (an outage).
The URL is ``wss://127.0.0.1:<port>/link/?ticket=...``: slack-sdk's built-in client speaks plain
WebSocket to any port but 443, so no certificate is needed. Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


@dataclass
class Connection:
    """One open Socket Mode connection."""

    sock: socket.socket
    ticket: str
    opened: float = field(default_factory=time.monotonic)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([n])
        elif n < 1 << 16:
            header += bytes([126]) + struct.pack("!H", n)
        else:
            header += bytes([127]) + struct.pack("!Q", n)
        with self.lock:
            self.sock.sendall(header + payload)

    def send_json(self, message: dict[str, Any]) -> None:
        self.send(TEXT, json.dumps(message).encode())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.send(CLOSE, struct.pack("!H", 1001) + b"going away")
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SocketModeServer:
    """The WebSocket end of Socket Mode; see the module docstring."""

    def __init__(self, app_id: str = "A0ROLLOUT") -> None:
        self.app_id = app_id
        self.port = 0
        self.connections: list[Connection] = []
        self.opened = 0  # connections accepted, ever
        self.acks: dict[str, float] = {}  # envelope_id -> when acknowledged
        self.received: list[dict[str, Any]] = []  # every text frame the app sent
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SocketModeServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), name="socket-mode", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection (the app sees Slack go away)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for c in self.open():
            c.close()

    def ticket(self) -> str:
        """A new connection URL's ticket (``apps.connections.open``)."""
        ticket = secrets.token_hex(8)
        with self._lock:
            self._tickets.add(ticket)
        return ticket

    def url(self, ticket: str) -> str:
        return f"wss://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    def open(self) -> list[Connection]:
        with self._lock:
            return [c for c in self.connections if not c.closed]

    def send(self, payload: dict[str, Any], kind: str = "interactive") -> str:
        """Deliver an envelope on the newest open connection; returns its ``envelope_id``."""
        live = self.open()
        if not live:
            raise ConnectionError("no Socket Mode connection is open")
        envelope_id = f"env-{next(self._ids)}-{secrets.token_hex(4)}"
        live[-1].send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": False}
        )
        return envelope_id

    def acked(self, envelope_id: str, timeout: float = 3.0) -> bool:
        """Whether the app acknowledged the envelope within ``timeout`` (Slack waits 3 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if envelope_id in self.acks:
                    return True
            time.sleep(0.02)
        return False

    def disconnect(self, reason: str = "refresh_requested", close_after: float = 1.0) -> None:
        """Ask every connection to reconnect, then close them (as Slack does before a restart)."""
        live = self.open()
        for c in live:
            with contextlib.suppress(OSError):
                c.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "stand-in"}})

        def close() -> None:
            time.sleep(close_after)
            for c in live:
                c.close()

        threading.Thread(target=close, name="socket-mode-disconnect", daemon=True).start()

    # --- the server ---------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), name="socket-mode-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        try:
            connection = self._handshake(sock)
        except (OSError, ValueError):
            sock.close()
            return
        if connection is None:
            return
        try:
            self._read(connection)
        except (OSError, ValueError):
            pass
        finally:
            connection.close()

    def _handshake(self, sock: socket.socket) -> Connection | None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                raise ValueError("closed during the handshake")
            request += chunk
            if len(request) > 16384:
                raise ValueError("handshake too long")
        lines = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        url = urlparse(target)
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        with self._lock:
            valid = url.path == "/link/" and ticket in self._tickets
            self._tickets.discard(ticket)
        key = headers.get("sec-websocket-key", "")
        if not valid or not key or headers.get("upgrade", "").lower() != "websocket":
            sock.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            sock.close()
            return None
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        connection = Connection(sock, ticket)
        with self._lock:
            self.connections.append(connection)
            self.opened += 1
            count = len([c for c in self.connections if not c.closed])
        time.sleep(0.05)  # Slack's hello follows the upgrade as a frame of its own
        connection.send_json(
            {
                "type": "hello",
                "num_connections": count,
                "debug_info": {"host": "stand-in", "approximate_connection_time": 3600},
                "connection_info": {"app_id": self.app_id},
            }
        )
        return connection

    def _read(self, connection: Connection) -> None:
        sock = connection.sock
        sock.settimeout(None)
        while not connection.closed:
            opcode, payload = _frame(sock)
            if opcode == PING:
                connection.send(PONG, payload)
            elif opcode == CLOSE:
                return
            elif opcode == TEXT:
                try:
                    message = json.loads(payload)
                except ValueError:
                    continue
                with self._lock:
                    self.received.append(message)
                    if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                        self.acks[message["envelope_id"]] = time.monotonic()


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


def _frame(sock: socket.socket) -> tuple[int, bytes]:
    """One whole message (continuation frames joined); client frames are masked, as RFC 6455 requires."""
    opcode, message = 0, b""
    while True:
        first, second = _exactly(sock, 2)
        fin, op = first & 0x80, first & 0x0F
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _exactly(sock, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", _exactly(sock, 8))
        if not second & 0x80:
            raise ValueError("an unmasked client frame")
        mask = _exactly(sock, 4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(_exactly(sock, length)))
        if op in (PING, PONG, CLOSE):
            return op, data  # control frames are never fragmented
        opcode = opcode or op
        message += data
        if fin:
            return opcode, message
