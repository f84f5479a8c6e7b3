"""Which watch events wake which rollouts: the rules between the informers and the scheduler.

Owns the answer to "this object changed: whose reconcile is due now?". A Rollout added, or its spec
changed (a new ``generation``) or its deletion started, wakes that rollout; a change of status alone
(most often our own write echoing back) wakes nothing. A deleted Rollout is unscheduled and
forgotten. A new, unhandled RolloutCommand wakes its rollout; a command that became handled tells
the Slack click that created it what happened. A route whose ``spec`` changed wakes the *active*
rollouts that name it (the edit may be drift); finished rollouts stay asleep. A new set of shards
wakes every cached rollout (ownership changed). Only rollouts this replica owns are woken. It
decides nothing about rollouts and does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.core.states import Phase
from rollout.kube.commands import CommandObject
from rollout.kube.stores import key_of

ACTIVE_PHASES = frozenset(p.value for p in Phase if p.active)  # as status.phase spells them


class Scheduler(Protocol):
    def wake(self, key: str) -> None: ...

    def remove(self, key: str) -> None: ...


class RouteIndex(Protocol):
    def rollouts(self, namespace: str, name: str) -> Iterable[str]: ...


@dataclass
class Waker:
    """The watch handlers (see the module docstring). ``owns``: whether this replica holds the
    rollout's shard; ``rollout``: the cached Rollout (None: not cached); ``forget``: release what is
    held for a deleted rollout; ``handled``: tell a Slack click its command's outcome."""

    scheduler: Scheduler
    owns: Callable[[str], bool]
    rollout: Callable[[str, str], Mapping[str, Any] | None]
    by_route: RouteIndex
    forget: Callable[[str], None]
    handled: Callable[[Mapping[str, Any]], None]

    def wake(self, key: str) -> None:
        if self.owns(key):
            self.scheduler.wake(key)

    def wake_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.wake(key)

    def rollout_added(self, obj: Mapping[str, Any]) -> None:
        self.wake(key_of(obj))

    def rollout_updated(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        before, after = old.get("metadata") or {}, new.get("metadata") or {}
        if before.get("generation") != after.get("generation") or after.get("deletionTimestamp"):
            self.wake(key_of(new))  # a spec change; our own status writes change nothing here

    def rollout_deleted(self, obj: Mapping[str, Any]) -> None:
        key = key_of(obj)
        self.scheduler.remove(key)
        self.forget(key)

    def command_added(self, obj: Mapping[str, Any]) -> None:
        command = CommandObject(obj)
        if command.rollout and not command.handled:
            self.wake(f"{command.namespace}/{command.rollout}")

    def command_updated(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        if not (old.get("status") or {}).get("phase") and (new.get("status") or {}).get("phase"):
            self.handled(new)  # the click that became this command hears what it did

    def route_updated(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        if (old.get("spec") or {}) == (new.get("spec") or {}):
            return
        meta = new.get("metadata") or {}
        for key in self.by_route.rollouts(str(meta.get("namespace", "")), str(meta.get("name", ""))):
            namespace, _, name = key.partition("/")
            rollout = self.rollout(namespace, name) or {}
            # a route edit may be drift: the active rollouts that name this route look now
            if (rollout.get("status") or {}).get("phase") in ACTIVE_PHASES:
                self.wake(key)

    def batched(self, keys: Sequence[str]) -> None:
        """A metrics batch for ``keys`` arrived: they judge it now."""
        self.wake_all(keys)
