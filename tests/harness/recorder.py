"""RecordingServer: a loopback HTTP listener that records every request and answers what the test says.

Owns one ``ThreadingHTTPServer`` on a free loopback port standing where a Prometheus (or a proxy in
front of one) would be, for tests about what is *sent* (which headers and credentials reach which
URL) and about answers a real Prometheus does not give (a proxy's 502 page, a 200 that is not
JSON, a hang). By default it answers like Prometheus with an empty vector. Standard library only.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

EMPTY_VECTOR = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = EMPTY_VECTOR
    content_type: str = "application/json"
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    params: dict[str, list[str]] = field(default_factory=dict)  # from the URL and a form body


class RecordingServer:
    """Records requests in ``requests``; ``answer`` may be changed at any time."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer or Answer()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="recorder", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with recorder._lock:
                    recorder.requests.append(
                        Recorded(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            {**parse_qs(urlparse(self.path).query), **parse_qs(body)},
                        )
                    )
                answer = recorder.answer
                if answer.delay_seconds:
                    time.sleep(answer.delay_seconds)
                data = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def do_GET(self) -> None:
                self._record()

            def do_POST(self) -> None:
                self._record()

        return Handler
