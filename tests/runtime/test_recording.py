"""Events off the reconcile path: queued without waiting, sent in order by one thread, the
leadership guard checked again right before each request, dropped and counted when the queue is
full, what is queued sent on stop, and a failing request never ends the sender."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rollout.errors import KubeError, NotLeader
from rollout.kube.events import event_name
from rollout.runtime.recording import EventQueue

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: set[str] = set()
        self.created: list[str] = []
        self.series: list[tuple[str, int]] = []

    def record(
        self, namespace: str, name: str, *, uid: str | None, reason: str, message: str, warning: bool, now: datetime
    ) -> str:
        self.gate.wait(5)
        if reason in self.fail:
            raise KubeError(f"cannot create event {reason}")
        self.recorded.append((f"{namespace}/{name}", reason))
        self.created.append(event_name(name, reason, message, now))
        return self.created[-1]

    def repeat(self, namespace: str, event: str, *, regarding: str, count: int, now: datetime) -> None:
        assert event in self.created, "a series is patched only after its Event was created"
        self.series.append((event, count))


def record(queue: EventQueue, name: str, reason: str) -> None:
    queue.record("ns", name, uid=None, reason=reason, message="m", warning=False, now=NOW)


def test_events_are_queued_and_sent_in_order_with_the_guard_checked_at_send_time() -> None:
    recorder, ours = Recorder(), {"ns/a", "ns/b"}

    def guard(key: str) -> None:
        if key not in ours:
            raise NotLeader(f"{key} is not ours")

    queue = EventQueue(recorder, guard=guard)
    recorder.gate.clear()  # the API server is slow: recording does not wait for it
    queue.start()
    record(queue, "a", "RunStarted")
    record(queue, "b", "RunStarted")
    record(queue, "a", "StepPassed")
    ours.discard("ns/b")  # b's shard is handed over while its Event waits in the queue
    recorder.fail.add("StepPassed")
    record(queue, "a", "Promoted")
    recorder.gate.set()
    queue.stop(timeout=5)
    assert recorder.recorded == [("ns/a", "RunStarted"), ("ns/a", "Promoted")]
    assert queue.pending() == 0


def test_an_events_name_is_known_when_queued_and_its_repeats_follow_its_creation() -> None:
    recorder, ours = Recorder(), {"ns/a"}

    def guard(key: str) -> None:
        if key not in ours:
            raise NotLeader(f"{key} is not ours")

    queue = EventQueue(recorder, guard=guard)
    recorder.gate.clear()  # the API server is slow: the name is returned before the Event exists
    queue.start()
    name = queue.record("ns", "a", uid=None, reason="RouteWriteFailed", message="m", warning=True, now=NOW)
    assert name == event_name("a", "RouteWriteFailed", "m", NOW)
    queue.repeat("ns", name, regarding="a", count=2, now=NOW)
    queue.repeat("ns", name, regarding="a", count=7, now=NOW)
    recorder.gate.set()
    deadline = time.monotonic() + 5
    while len(recorder.series) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ours.discard("ns/a")
    queue.repeat("ns", name, regarding="a", count=9, now=NOW)  # no longer ours when sent: not patched
    queue.stop(timeout=5)
    assert recorder.created == [name]
    assert recorder.series == [(name, 2), (name, 7)]


def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    recorder, dropped = Recorder(), []
    queue = EventQueue(recorder, guard=lambda key: None, capacity=2, on_drop=lambda: dropped.append(1))
    for i in range(5):  # not started: nothing is sent, the queue fills
        record(queue, f"r{i}", "RunStarted")
    assert queue.dropped == 3 and len(dropped) == 3
    queue.start()
    queue.stop(timeout=5)
    assert recorder.recorded == [("ns/r0", "RunStarted"), ("ns/r1", "RunStarted")]


def test_stop_gives_up_after_its_timeout() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    queue = EventQueue(recorder, guard=lambda key: None)
    queue.start()
    for i in range(3):
        record(queue, f"r{i}", "RunStarted")
    queue.stop(timeout=0.2)  # the API server never answers: stop returns anyway
    recorder.gate.set()
