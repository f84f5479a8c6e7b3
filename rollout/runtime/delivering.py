"""Delivering notifications without ever holding up a rollout: a bounded queue and one sender.

Owns the hand-over from reconciles (which must never wait on Slack) to the notifier: ``notify`` and
``request_approval`` only enqueue; one background thread sends, in order (so a rollout's messages
stay in order), retrying through ``rollout.runtime.retrying.SLACK_CALLS``. When the queue is full a
message is dropped and counted (``dropped``), never blocking the caller: a Slack outage delays
no rollback. It decides nothing about what is said.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.errors import NotifierError
from rollout.notifiers.base import Notifier, RolloutSnapshot
from rollout.policy.models import Rollout
from rollout.runtime.retrying import SLACK_CALLS

log = logging.getLogger("rollout.delivery")
Send = Callable[[], None]


class Delivery:
    """Queues notifications for ``notifier`` (see the module docstring)."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        capacity: int = 1000,
        call: Callable[[Send], None] = SLACK_CALLS.call,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.notifier = notifier
        self._call = call
        self._queue: queue.Queue[tuple[str, Send] | None] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.sent = 0
        self.failed = 0

    def notify(self, key: str, action: Notify, policy: Rollout | None) -> None:
        del policy
        self._put(key, lambda: self.notifier.notify(key, action))

    def request_approval(self, key: str, action: RequestApproval, policy: Rollout | None) -> None:
        del policy
        self._put(key, lambda: self.notifier.request_approval(key, action))

    def approval_resolved(self, key: str, action: ApprovalResolved, policy: Rollout | None) -> None:
        del policy
        self._put(key, lambda: self.notifier.approval_resolved(key, action))

    def update(self, snapshot: RolloutSnapshot, policy: Rollout | None) -> None:
        del policy
        self._put(snapshot.rollout, lambda: self.notifier.update(snapshot))

    def _put(self, key: str, send: Send) -> None:
        try:
            self._queue.put_nowait((key, send))
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            log.warning(
                "notification dropped: the queue is full", extra={"event": "rollout.notify-dropped", "rollout": key}
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (for up to ``timeout``), then stop."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        done = threading.Event()
        try:
            self._queue.put(("", done.set), timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, send = item
            if not key:
                send()  # a drain marker
                continue
            try:
                self._call(send)
                self.sent += 1
            except NotifierError as e:
                self.failed += 1
                log.warning(
                    "notification failed", extra={"event": "rollout.notify-failed", "rollout": key, "error": str(e)}
                )
            except Exception:  # a bug in a notifier must not kill the sender
                self.failed += 1
                log.exception("notifier crashed", extra={"event": "rollout.notify-crashed", "rollout": key})
