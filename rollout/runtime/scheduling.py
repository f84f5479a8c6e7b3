"""When reconciles run: a due-time queue per rollout, a bounded worker pool, and periodic jobs.

Owns *when* work happens, never what. Every rollout has at most one due time: a reconcile's
``Outcome.next_at`` (the engine's ``ScheduleNext``: next analysis interval, pause end, step
minimum, approval timeout, progress deadline, or "now" to see a write land) replaces it, a wake
(an object change, a new metrics batch, an operator command) brings it forward to now, and a
finished rollout has none until it is woken. A dispatcher thread hands due rollouts to a fixed
pool of workers; a rollout never runs twice at once (a wake while it runs makes it run again
right after). How late work starts (due -> start lag), how much is waiting (backlog) and how many
wakes were folded into an already-due run are exported. Periodic jobs (resync, policy files,
aligned metrics batches) run on apscheduler's ``BackgroundScheduler``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rollout.runtime.reconciling import Outcome

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("rollout.scheduling")
_EPSILON = 0.001  # due times within a millisecond of now are due (datetime rounds to microseconds)


@dataclass
class SchedulerStats:
    """What the scheduler reports to telemetry."""

    lag: Callable[[float], None] = lambda _: None  # seconds between due time and start, per run
    backlog: Callable[[int], None] = lambda _: None  # rollouts due and not yet started
    coalesced: Callable[[], None] = lambda: None  # a wake folded into a run already due or running
    crashed: Callable[[], None] = lambda: None  # a reconcile raised (a bug)


@dataclass
class _Entry:
    due: float
    running: bool = False
    again: bool = False  # woken while running


@dataclass
class RolloutScheduler:
    """Runs ``reconcile(namespace, name)`` for each rollout when it is due (see the module docstring)."""

    reconcile: Callable[[str, str], Outcome]
    workers: int = 8
    clock: Callable[[], float] = time.time
    min_delay: float = 0.2  # the soonest a rollout runs again after its own run
    stats: SchedulerStats = field(default_factory=SchedulerStats)

    def __post_init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._dispatcher: threading.Thread | None = None
        self._backlog_at = 0.0

    # --- what others call ----------------------------------------------------------------------

    def schedule(self, key: str, at: float | None) -> None:
        """Set ``key``'s next due time (None: not due until woken)."""
        with self._cond:
            entry = self._entries.get(key)
            if at is None:
                if entry is not None and not entry.running:
                    entry.due = float("inf")
                return
            if entry is None:
                entry = self._entries[key] = _Entry(due=at)
            elif not entry.running:
                entry.due = at
            self._push(key, at)

    def wake(self, key: str) -> None:
        """Run ``key`` as soon as possible (after its current run, if it is running)."""
        now = self.clock()
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(due=now)
            elif entry.running:
                if entry.again:
                    self.stats.coalesced()
                entry.again = True
                return
            elif entry.due <= now:
                self.stats.coalesced()
                return
            entry.due = now
            self._push(key, now)

    def remove(self, key: str) -> None:
        with self._cond:
            self._entries.pop(key, None)

    def known(self) -> set[str]:
        with self._cond:
            return set(self._entries)

    def due_in(self, key: str) -> float | None:
        """Seconds until ``key`` is due (None: unknown or not due until woken)."""
        with self._cond:
            entry = self._entries.get(key)
            if entry is None or entry.due == float("inf"):
                return None
            return entry.due - self.clock()

    # --- running -------------------------------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="reconcile")
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        self._dispatcher.start()

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop taking work; wait up to ``timeout`` for runs in flight (their writes) to finish."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        pool = self._pool
        if pool is not None:
            done = threading.Event()

            def wait_for_workers() -> None:
                pool.shutdown(wait=True)
                done.set()

            threading.Thread(target=wait_for_workers, daemon=True).start()
            done.wait(timeout)

    def run_due(self) -> list[str]:
        """Run, on this thread, every rollout due now (for tests and the simulator); returns them."""
        ran: list[str] = []
        while True:
            key = self._next_due(block=False)
            if key is None:
                return ran
            self._run(key)
            ran.append(key)

    def _push(self, key: str, at: float) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), key))
        self._cond.notify_all()

    def _next_due(self, *, block: bool) -> str | None:
        with self._cond:
            while not self._stop.is_set():
                now = self.clock()
                while self._heap:
                    at, _, key = self._heap[0]
                    entry = self._entries.get(key)
                    if entry is None or entry.running or entry.due != at:
                        heapq.heappop(self._heap)  # stale
                        continue
                    break
                if self._heap and self._heap[0][0] <= now + _EPSILON:
                    at, _, key = heapq.heappop(self._heap)
                    entry = self._entries[key]
                    entry.running = True
                    self.stats.lag(max(0.0, now - at))
                    if now - self._backlog_at >= 1.0:  # O(n): at most once a second
                        self._backlog_at = now
                        self.stats.backlog(sum(1 for a, _, k in self._heap if a <= now and k in self._entries))
                    return key
                if not block:
                    return None
                wait = min(self._heap[0][0] - now, 1.0) if self._heap else 1.0
                self._cond.wait(timeout=max(wait, 0.001))
            return None

    def _dispatch(self) -> None:
        assert self._pool is not None
        slots = threading.BoundedSemaphore(self.workers)
        while not self._stop.is_set():
            slots.acquire()
            key = self._next_due(block=True)
            if key is None:
                slots.release()
                return

            def work(k: str = key) -> None:
                try:
                    self._run(k)
                finally:
                    slots.release()

            self._pool.submit(work)

    def _run(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        outcome: Outcome | None = None
        try:
            outcome = self.reconcile(namespace, name)
        except Exception:  # a bug must not kill a worker; it is logged with its traceback
            self.stats.crashed()
            log.exception("reconcile crashed", extra={"event": "rollout.crash", "rollout": key})
        now = self.clock()
        with self._cond:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.running = False
            if outcome is not None and outcome.error == "deleted":
                del self._entries[key]
                return
            if outcome is None:
                due = now + 30.0  # crashed: try again later, not in a hot loop
            elif outcome.next_at is None:
                due = float("inf")
            else:
                due = max(outcome.next_at.timestamp(), now + self.min_delay)
            if entry.again:
                entry.again = False
                due = min(due, now + self.min_delay)
            entry.due = due
            if due != float("inf"):
                self._push(key, due)


class Periodic:
    """Periodic jobs on apscheduler: each runs alone (``max_instances=1``), missed runs coalesced,
    optionally aligned to multiples of its period since the Unix epoch (metrics batches).
    apscheduler is imported when the first ``Periodic`` is made: ``rollout simulate`` runs the
    shell's scheduler without it."""

    def __init__(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415 - see the docstring

        self.scheduler: BackgroundScheduler = BackgroundScheduler(timezone=UTC)

    def every(self, job_id: str, seconds: float, fn: Callable[[], None], *, aligned: bool = False) -> None:
        from apscheduler.triggers.interval import IntervalTrigger  # noqa: PLC0415 - see the class docstring

        start = None
        if aligned:
            now = time.time()
            start = datetime.fromtimestamp((now // seconds + 1) * seconds, UTC)
        self.scheduler.add_job(
            fn,
            IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC),
            id=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
        )

    def has(self, job_id: str) -> bool:
        return self.scheduler.get_job(job_id) is not None

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
