"""The daemon's HTTP servers in a process of their own, for attacks whose memory and threads are measured.

``python -m tests.security.target SECRET`` builds the real ``DaemonServer`` (real limits) with the
real ``SlackInteractions`` handler (signature checked with SECRET; accepted clicks are counted, not
sent anywhere) and a ``Telemetry`` registry filled for 50 rollouts, prints ``HEALTH_PORT
INTERACTIONS_PORT`` on one line, and serves on 127.0.0.1 until stdin closes.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from rollout.core.states import Command
from rollout.runtime.interacting import SlackInteractions
from rollout.runtime.serving import DaemonServer
from rollout.runtime.telemetry import Telemetry


def main() -> None:
    telemetry = Telemetry()
    for i in range(50):
        telemetry.observe(
            "ns",
            f"rollout-{i}",
            phase="Progressing",
            step=i % 7 + 1,
            steps=7,
            canary_weight=i % 100,
            desired_canary_weight=i % 100,
        )
    accepted: list[Command] = []

    def submit(namespace: str, name: str, command: Command) -> None:
        del namespace, name
        accepted.append(command)

    handler = SlackInteractions(sys.argv[1], submit, lambda key: [], lambda: datetime.now(UTC))
    server = DaemonServer(
        "127.0.0.1",
        0,
        registry=telemetry.registry,
        healthy=lambda: (True, "ok"),
        ready=lambda: (True, "ok (leader)"),
        interactions=handler.handle,
        interactions_host="127.0.0.1",
        interactions_port=0,
    )
    server.start()
    print(server.port, server.interactions_port, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.stop()


if __name__ == "__main__":
    main()
