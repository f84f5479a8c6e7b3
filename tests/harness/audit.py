"""The API server's audit log as the count of requests a client made, for benchmarks and e2e tests.

Owns the audit policy file (every request of the named users at ``Metadata`` level, once each:
the ``RequestReceived`` and ``ResponseStarted`` stages are omitted, nothing of anyone else) and
an incremental reader of the JSON-lines log, so a long benchmark can sample it often without
re-reading what it has already parsed. It counts; it decides nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class AuditedRequest:
    """One request as the API server's audit log records it."""

    user: str
    verb: str  # get, list, watch, create, update, patch, delete
    resource: str  # e.g. rollouts, gatewayroutes, leases, events
    subresource: str  # e.g. status
    namespace: str
    name: str
    code: int  # the response's HTTP status
    received: float  # Unix time the request was received

    @property
    def write(self) -> bool:
        return self.verb in ("create", "update", "patch", "delete")

    @property
    def what(self) -> str:
        """``resource`` or ``resource/subresource``."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


class AuditLog:
    """An audit log of ``users``' requests at ``path``; ``apiserver_args`` turn it on."""

    def __init__(self, directory: Path, users: Sequence[str]) -> None:
        self.path = directory / "audit.log"
        self.policy = directory / "audit-policy.yaml"
        quoted = ", ".join(json.dumps(u) for u in users)
        self.policy.write_text(
            "apiVersion: audit.k8s.io/v1\n"
            "kind: Policy\n"
            "omitStages: [RequestReceived, ResponseStarted]\n"
            "rules:\n"
            f"  - level: Metadata\n    users: [{quoted}]\n"
            "  - level: None\n"
        )
        self._offset = 0
        self._partial = b""
        self.requests: list[AuditedRequest] = []

    @property
    def apiserver_args(self) -> list[str]:
        return [f"--audit-policy-file={self.policy}", f"--audit-log-path={self.path}", "--audit-log-maxsize=0"]

    def read(self) -> list[AuditedRequest]:
        """Parse what the API server appended since the last call; returns every request so far."""
        if not self.path.exists():
            return self.requests
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = self._partial + f.read()
            self._offset = f.tell()
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next call
        for line in lines:
            if line.strip():
                self.requests.append(_parse(json.loads(line)))
        return self.requests

    def since(self, start: float, end: float | None = None, *, user: str | None = None) -> list[AuditedRequest]:
        """The requests received in ``[start, end)`` (by ``user`` when given)."""
        return [
            r
            for r in self.read()
            if r.received >= start and (end is None or r.received < end) and (user is None or r.user == user)
        ]


def _parse(event: dict[str, object]) -> AuditedRequest:
    ref = event.get("objectRef")
    ref = ref if isinstance(ref, dict) else {}
    user = event.get("user")
    status = event.get("responseStatus")
    received = str(event.get("requestReceivedTimestamp", "1970-01-01T00:00:00Z"))
    return AuditedRequest(
        user=str(user.get("username", "")) if isinstance(user, dict) else "",
        verb=str(event.get("verb", "")),
        resource=str(ref.get("resource", "")),
        subresource=str(ref.get("subresource", "")),
        namespace=str(ref.get("namespace", "")),
        name=str(ref.get("name", "")),
        code=int(status.get("code", 0)) if isinstance(status, dict) else 0,
        received=datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp(),
    )
