"""Delivering notifications without ever holding up a rollout: a bounded queue and one sender.

Owns the hand-over from reconciles (which must never wait on Slack) to the notifier. ``Delivery``
has the notifier's methods and only enqueues; one background thread sends, in order (so a
rollout's messages stay in order), retrying through ``rollout.runtime.retrying.SLACK_CALLS``
(which waits what Slack's ``Retry-After`` says). When the queue is full a message is dropped and
counted (``dropped``), never blocking the caller: a Slack outage delays no rollback.

Refreshes of a run's parent message are coalesced (only the latest snapshot of a rollout is sent)
and one that failed is sent again when the queue is idle for ``retry_seconds``, so the parent ends
up showing the current state after an outage. A message about a rollout whose shard this replica
no longer holds (``owns``) is not sent: a deposed leader falls silent at once. Answers to clicks
(``respond``) go to one person and are sent whichever replica holds the rollout. It decides
nothing about what is said.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rollout.core.actions import ApprovalResolved, Notify, RequestApproval
from rollout.errors import NotifierError
from rollout.notifiers.base import Notifier, RolloutSnapshot
from rollout.runtime.retrying import SLACK_CALLS

log = logging.getLogger("rollout.delivery")
Send = Callable[[], None]


@dataclass(frozen=True)
class _Item:
    key: str  # the rollout (empty: a drain marker)
    send: Send
    guarded: bool = True  # only while this replica holds the rollout
    retried: bool = True  # sent through the retry policy (a parent refresh applies it itself)


class Delivery:
    """Queues notifications for ``notifier`` (see the module docstring); itself a ``Notifier``."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        capacity: int = 1000,
        call: Callable[[Send], None] = SLACK_CALLS.call,
        on_drop: Callable[[], None] | None = None,
        owns: Callable[[str], bool] = lambda _: True,
        retry_seconds: float = 30.0,
    ) -> None:
        self.notifier = notifier
        self._call = call
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._owns = owns
        self._retry_seconds = retry_seconds
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: dict[str, RolloutSnapshot] = {}  # the newest parent refresh waiting, by rollout
        self._stale: dict[str, RolloutSnapshot] = {}  # parent refreshes that failed, to send again
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self.skipped = 0  # not ours any more

    # --- the Notifier protocol (enqueue only) ----------------------------------------------------

    def notify(self, snapshot: RolloutSnapshot, note: Notify) -> None:
        self._put(_Item(snapshot.rollout, lambda: self.notifier.notify(snapshot, note)))

    def request_approval(self, snapshot: RolloutSnapshot, request: RequestApproval) -> None:
        self._put(_Item(snapshot.rollout, lambda: self.notifier.request_approval(snapshot, request)))

    def approval_resolved(self, snapshot: RolloutSnapshot, resolved: ApprovalResolved) -> None:
        self._put(_Item(snapshot.rollout, lambda: self.notifier.approval_resolved(snapshot, resolved)))

    def update(self, snapshot: RolloutSnapshot) -> None:
        key = snapshot.rollout
        with self._lock:
            waiting = key in self._latest
            self._latest[key] = snapshot
            self._stale.pop(key, None)
        if not waiting and not self._put(_Item(key, lambda: self._refresh(key), retried=False)):
            with self._lock:
                self._latest.pop(key, None)

    def respond(self, response_url: str, text: str) -> None:
        self._put(_Item("(answer)", lambda: self.notifier.respond(response_url, text), guarded=False))

    # --- life cycle -------------------------------------------------------------------------------

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
            self._queue.put(_Item("", done.set), timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    @property
    def stale(self) -> int:
        """Parent refreshes that failed and wait to be sent again."""
        with self._lock:
            return len(self._stale)

    # --- the sender -------------------------------------------------------------------------------

    def _put(self, item: _Item) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            log.warning(
                "notification dropped: the queue is full",
                extra={"event": "rollout.notify-dropped", "rollout": item.key},
            )
            return False

    def _refresh(self, key: str) -> None:
        with self._lock:
            snapshot = self._latest.pop(key, None)
        if snapshot is None:
            return
        try:
            self._call(lambda: self.notifier.update(snapshot))
        except NotifierError:
            with self._lock:
                if key not in self._latest:  # nothing newer is on its way: keep this one for later
                    self._stale[key] = snapshot
            raise

    def _retry_stale(self) -> None:
        with self._lock:
            stale, self._stale = self._stale, {}
        for snapshot in stale.values():
            self.update(snapshot)

    def _run(self) -> None:
        retried = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self._retry_seconds)
            except queue.Empty:
                item = _Item("", lambda: None)  # idle: nothing but the stale refreshes to look at
            if time.monotonic() - retried >= self._retry_seconds:
                retried = time.monotonic()
                self._retry_stale()
            if item is None:
                return
            if not item.key:
                item.send()  # a drain marker
                continue
            if item.guarded and not self._owns(item.key):
                self.skipped += 1
                log.info(
                    "notification not sent: this replica no longer holds the rollout",
                    extra={"event": "rollout.notify-skipped", "rollout": item.key},
                )
                continue
            try:
                if item.retried:
                    self._call(item.send)
                else:
                    item.send()
                self.sent += 1
            except NotifierError as e:
                self.failed += 1
                log.warning(
                    "notification failed",
                    extra={"event": "rollout.notify-failed", "rollout": item.key, "error": str(e)},
                )
            except Exception:  # a bug in a notifier must not kill the sender
                self.failed += 1
                log.exception("notifier crashed", extra={"event": "rollout.notify-crashed", "rollout": item.key})
