"""The Slack notifier's memory of each run's thread, and the message metadata that rebuilds it.

Owns ``Thread`` (a run's parent message and what was already posted in its thread: events by key,
approval requests by key and where they are), the bounded table of them, and the Slack message
``metadata`` every message of a run carries (``event_type`` ``rollout_run`` on the parent,
``rollout_event`` on replies, with the rollout, the run and the event key), so a restarted daemon
finds the parent (``conversations.history``) and everything in its thread (``conversations.replies``)
instead of posting them twice. Pure bookkeeping; the Slack calls live in ``slack``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RUN_EVENT = "rollout_run"
REPLY_EVENT = "rollout_event"
_MAX_THREADS = 10_000


@dataclass
class Posted:
    """A message of the run: where it is (the approval question is kept to show it once resolved)."""

    channel: str
    ts: str
    question: str = ""


@dataclass
class Thread:
    """One run's thread: ``channel`` is the channel ID, ``ts`` the parent message's timestamp."""

    rollout: str
    run: str
    channel: str
    ts: str
    posted: dict[str, Posted] = field(default_factory=dict)  # "event:<key>" / "approval:<key>" -> message
    parent: str = ""  # the parent's last rendering (an identical update is not sent)
    read: bool = True  # ``posted`` holds everything in the thread (False: continued after a restart, not read yet)


def metadata(event_type: str, rollout: str, run: str, key: str = "", **extra: str) -> dict[str, Any]:
    """The ``metadata`` of a message of ``run`` (values are strings, as Slack stores them)."""
    payload = {"rollout": rollout, "run": run, **({"key": key} if key else {}), **extra}
    return {"event_type": event_type, "event_payload": payload}


def ours(message: Mapping[str, Any], event_type: str, rollout: str, run: str) -> Mapping[str, Any] | None:
    """The metadata payload of ``message`` when it is a message of that rollout's run, else None."""
    meta = message.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("event_type") != event_type:
        return None
    payload = meta.get("event_payload")
    if not isinstance(payload, Mapping) or payload.get("rollout") != rollout or payload.get("run") != run:
        return None
    return payload


def remember(thread: Thread, messages: Iterable[Mapping[str, Any]]) -> None:
    """Index the replies of ``thread`` (from ``conversations.replies``) by the key in their metadata."""
    for message in messages:
        payload = ours(message, REPLY_EVENT, thread.rollout, thread.run)
        ts = message.get("ts")
        if payload is None or not isinstance(ts, str):
            continue
        key = str(payload.get("key", ""))
        where = Posted(str(payload.get("channel") or thread.channel), str(payload.get("ts") or ts))
        where.question = str(payload.get("question", ""))
        if key and key not in thread.posted:
            thread.posted[key] = where


def started(run: str) -> datetime | None:
    """When ``run`` (``<revision>@<start time>``) started."""
    _, _, at = run.partition("@")
    try:
        return datetime.fromisoformat(at) if at else None
    except ValueError:
        return None


class Threads:
    """The threads of the current runs, by rollout; bounded (the least recently used go first)."""

    def __init__(self, limit: int = _MAX_THREADS) -> None:
        self._threads: OrderedDict[str, Thread] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, rollout: str, run: str) -> Thread | None:
        with self._lock:
            thread = self._threads.get(rollout)
            if thread is None or thread.run != run:
                return None
            self._threads.move_to_end(rollout)
            return thread

    def put(self, thread: Thread) -> None:
        with self._lock:
            self._threads[thread.rollout] = thread
            self._threads.move_to_end(thread.rollout)
            while len(self._threads) > self._limit:
                self._threads.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._threads)
