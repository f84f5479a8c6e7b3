"""Kubernetes Events recorded off the reconcile path: a bounded queue and one sender thread.

Owns the hand-off between a reconcile that decides an Event is due (``Actor.event``, once per
cause, or a repeat of it) and the API request that creates (or, for a repeat, patches the series of)
it, so a reconcile never waits for an Event: when many runs start at once their workers go on with
the next rollout while the Events follow. An Event's name is known before it is sent
(``event_name``), so a repeat queued later patches the Event its record created (one sender, in
order). The
leadership guard is checked again right before each request (time passes in the queue: a replica
that lost the rollout's shard meanwhile records nothing). The queue is bounded; when it is full the
Event is dropped and counted (``on_drop``; logged on the first drop and then once per thousand),
never blocking. ``stop()`` sends what is queued, for at
most its timeout. It decides nothing and retries nothing: an Event that fails is logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rollout.errors import KubeError, NotLeader
from rollout.kube.events import event_name
from rollout.runtime.acting import Events

log = logging.getLogger("rollout.events")


@dataclass(frozen=True)
class _Event:
    namespace: str
    name: str
    uid: str | None
    reason: str
    message: str
    warning: bool
    now: datetime
    event: str  # its name
    count: int = 0  # a repeat: how often in all (0: the first record)


class EventQueue:
    """``Events`` that queue for ``recorder`` (see the module docstring)."""

    def __init__(
        self,
        recorder: Events,
        *,
        guard: Callable[[str], object],
        capacity: int = 10_000,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        self.recorder, self.guard, self.on_drop = recorder, guard, on_drop
        self._queue: queue.Queue[_Event | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0

    def record(
        self, namespace: str, name: str, *, uid: str | None, reason: str, message: str, warning: bool, now: datetime
    ) -> str:
        event = event_name(name, reason, message, now)
        self._put(_Event(namespace, name, uid, reason, message, warning, now, event))
        return event

    def repeat(self, namespace: str, event: str, *, regarding: str, count: int, now: datetime) -> None:
        """Queue a series update of ``event`` (regarding Rollout ``regarding``; recorded earlier
        through this queue)."""
        self._put(_Event(namespace, regarding, None, "", "", False, now, event, count))

    def _put(self, item: _Event) -> None:
        namespace, name = item.namespace, item.name
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self.on_drop()
            if self.dropped % 1000 == 1:  # the first drop, then one line per thousand
                log.warning(
                    "event queue full; events dropped",
                    extra={"event": "rollout.event-dropped", "rollout": f"{namespace}/{name}", "dropped": self.dropped},
                )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then end the sender."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            key = f"{event.namespace}/{event.name}"
            try:
                self.guard(key)
                if event.count:
                    self.recorder.repeat(
                        event.namespace, event.event, regarding=event.name, count=event.count, now=event.now
                    )
                else:
                    self.recorder.record(
                        event.namespace,
                        event.name,
                        uid=event.uid,
                        reason=event.reason,
                        message=event.message,
                        warning=event.warning,
                        now=event.now,
                    )
                self.sent += 1
            except (KubeError, NotLeader) as e:
                log.warning(
                    "event not recorded", extra={"event": "rollout.event-failed", "rollout": key, "error": str(e)}
                )
            except Exception:  # a bug must not end the sender
                log.exception("event not recorded", extra={"event": "rollout.event-failed", "rollout": key})
