"""Informer caches: one resource type (Rollouts, or a route kind) kept in memory by LIST + WATCH.

Owns the cache and the connection that keeps it: an initial LIST per scope (every namespace, or
each namespace given), then a WATCH from the list's resourceVersion with bookmarks, tracking the
last resourceVersion seen (bookmarks included). A ``410 Gone`` ("too old resource version")
re-LISTs and resyncs the cache, emitting deletes for objects that vanished and updates for the
ones that changed; transport and API errors reconnect after a bounded, jittered backoff that waits
on the stop event, so ``stop()`` is prompt. A resource that is not served (its CRD not installed)
counts as listed and empty, so readiness does not wait for it, and is listed again with backoff
until it is. Readers get ``get`` / ``list`` from memory; handlers
(``on_add``, ``on_update(old, new)``, ``on_delete``) run outside the store lock, one change at a
time in the order the cache changed, and every change of the cache is reported exactly once,
whoever caused it. ``apply(obj)`` puts the object a write returned into the cache (the newer
resourceVersion wins), so the next read needs no GET and the watch echo of that write is nothing
new. Cached objects lose ``metadata.managedFields``; they are shared: treat them as read-only.
With ``resync_seconds``, every cached object is re-delivered as ``on_update(obj, obj)`` that often.
One ``start()`` per informer; ``stop()`` is final.

Resource versions are opaque by API convention; the etcd-backed API server issues decimal revision
numbers, which this module compares numerically (anything else: a different version is newer).
It never decides anything about rollouts, and it does not retry writes (it makes none).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from rollout.errors import KubeError, KubeNotFound
from rollout.kube.watches import Listing, ResourceExpired, WatchEvent

log = logging.getLogger("rollout.informer")

Obj = dict[str, Any]
Objs = list[Obj]
Changes = list["Change"]
Key = tuple[str, str]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


class WatchStream(Protocol):
    """One WATCH request: its events until the server ends it; ``stop()`` ends it from another thread."""

    def __iter__(self) -> Iterator[WatchEvent]: ...

    def stop(self) -> None: ...


class ListWatch(Protocol):
    """Where an informer lists and watches from (``rollout.kube.watches.KubeListWatch``, or a fake).

    ``list`` and ``watch`` raise ``ResourceExpired`` on 410 Gone and another ``KubeError`` otherwise.
    """

    what: str

    def list(self, namespace: str | None) -> Listing: ...

    def watch(self, namespace: str | None, resource_version: str) -> WatchStream: ...


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def version_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def is_newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion ``candidate`` is newer than ``current`` (see the module docstring)."""
    if candidate.isdigit() and current.isdigit():
        return int(candidate) > int(current)
    return candidate != current


def drop_managed_fields(obj: Obj) -> Obj:
    """The default transform: the object without ``metadata.managedFields`` (often half its size)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


@dataclass(frozen=True)
class Change:
    """One change of the cache: ``added`` (old is None), ``updated``, ``deleted`` (new is None)."""

    old: Obj | None
    new: Obj | None


@dataclass(frozen=True)
class InformerStats:
    """Counters for metrics and tests: requests made, 410s seen, errors, events received."""

    lists: int
    watches: int
    expired: int
    errors: int
    events: int


class _Store:
    """The objects by (namespace, name); every method returns the changes it made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, Obj] = {}

    def get(self, key: Key) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def values(self, namespace: str | None) -> Objs:
        with self._lock:
            if namespace is None:
                return list(self._items.values())
            return [obj for (ns, _), obj in self._items.items() if ns == namespace]

    def upsert(self, obj: Obj) -> Changes:
        key = key_of(obj)
        with self._lock:
            old = self._items.get(key)
            if old is not None and not is_newer(version_of(obj), version_of(old)):
                return []
            self._items[key] = obj
            return [Change(old, obj)]

    def remove(self, obj: Obj) -> Changes:
        key = key_of(obj)
        with self._lock:
            old = self._items.get(key)
            if old is None or is_newer(version_of(old), version_of(obj)):
                return []  # not cached, or cached from a later write (deleted and created again)
            del self._items[key]
            return [Change(old, None)]

    def replace(self, namespace: str | None, items: Sequence[Obj], listed: str) -> Changes:
        """Resync one scope to a fresh list taken at ``listed``; keep what was written after it."""
        fresh = {key_of(obj): obj for obj in items}
        changes: Changes = []
        with self._lock:
            for key, cached in list(self._items.items()):
                in_scope = namespace is None or key[0] == namespace
                if in_scope and key not in fresh and not is_newer(version_of(cached), listed):
                    del self._items[key]
                    changes.append(Change(cached, None))
            for key, obj in fresh.items():
                old = self._items.get(key)
                if old is None or is_newer(version_of(obj), version_of(old)):
                    self._items[key] = obj
                    changes.append(Change(old, obj))
        return changes


class Informer:
    """A cache of one resource type over ``namespaces`` (empty: every namespace); see the module docstring."""

    def __init__(
        self,
        source: ListWatch,
        *,
        namespaces: Sequence[str] = (),
        transform: Callable[[Obj], Obj] = drop_managed_fields,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        resync_seconds: float | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._transform, self._jitter = transform, jitter
        self._backoff, self._max_backoff, self._resync = backoff_seconds, max_backoff_seconds, resync_seconds
        self._store = _Store()
        self._dispatch = threading.RLock()  # held while changing the store and running handlers
        self._handlers: list[tuple[AddHandler | None, UpdateHandler | None, DeleteHandler | None]] = []
        self._stop = threading.Event()
        self._synced: set[str | None] = set()
        self._synced_cond = threading.Condition()
        self._versions: dict[str | None, str] = {}
        self._streams: dict[str | None, WatchStream] = {}
        self._threads: list[threading.Thread] = []
        self._counts = {"lists": 0, "watches": 0, "expired": 0, "errors": 0, "events": 0}
        self._counts_lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._store.get((namespace, name))

    def list(self, namespace: str | None = None) -> Objs:
        return self._store.values(namespace)

    def has_synced(self) -> bool:
        with self._synced_cond:
            return len(self._synced) == len(self._scopes)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until every scope has been listed once (or ``timeout``); returns ``has_synced()``."""
        with self._synced_cond:
            self._synced_cond.wait_for(lambda: len(self._synced) == len(self._scopes), timeout)
            return len(self._synced) == len(self._scopes)

    def resource_version(self, namespace: str | None = None) -> str:
        """The last resourceVersion seen in ``namespace``'s scope (``None``: the all-namespaces scope)."""
        return self._versions.get(namespace, "")

    def stats(self) -> InformerStats:
        with self._counts_lock:
            return InformerStats(**self._counts)

    def _count(self, what: str) -> None:
        with self._counts_lock:
            self._counts[what] += 1

    # --- changing -----------------------------------------------------------------------------

    def add_handlers(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register handlers (before ``start``); they must be quick and must not block on the informer."""
        self._handlers.append((on_add, on_update, on_delete))

    def apply(self, obj: Obj) -> bool:
        """Put an object a write returned into the cache; returns whether it was newer than the cache."""
        with self._dispatch:
            changes = self._store.upsert(self._transform(obj))
            self._run_handlers(changes)
        return bool(changes)

    def _change(self, op: Callable[[], Changes]) -> None:
        with self._dispatch:
            self._run_handlers(op())

    def _run_handlers(self, changes: Changes) -> None:
        for change in changes:
            for on_add, on_update, on_delete in self._handlers:
                try:
                    if change.old is None and change.new is not None and on_add is not None:
                        on_add(change.new)
                    elif change.old is not None and change.new is not None and on_update is not None:
                        on_update(change.old, change.new)
                    elif change.new is None and change.old is not None and on_delete is not None:
                        on_delete(change.old)
                except Exception:  # a handler's bug must not stop the cache
                    log.exception("informer handler failed", extra={"event": "rollout.informer-handler"})

    # --- the loops ----------------------------------------------------------------------------

    def start(self) -> None:
        for scope in self._scopes:
            thread = threading.Thread(target=self._run, args=(scope,), name=f"informer-{scope or 'all'}", daemon=True)
            self._threads.append(thread)
            thread.start()
        if self._resync:
            thread = threading.Thread(target=self._resync_loop, name="informer-resync", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every loop; ends open watches at once (repeating until the threads are gone)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline:
                for stream in list(self._streams.values()):
                    stream.stop()
                thread.join(0.05)
        self._threads.clear()

    def _run(self, scope: str | None) -> None:
        delay, relist, expired_before = self._backoff, True, False
        while not self._stop.is_set():
            try:
                if relist:
                    self._relist(scope)
                    relist, delay = False, self._backoff
                if self._watch(scope):
                    delay, expired_before = self._backoff, False
                    continue
                error = "the watch ended at once without an event"
            except ResourceExpired as e:
                self._count("expired")
                log.info("resource version expired; listing again", extra=_extra(self.source, scope, e))
                relist = True
                if not expired_before:  # list again at once; a second 410 in a row backs off first
                    expired_before = True
                    continue
                error = str(e)
            except KubeNotFound as e:  # the resource is not served (its CRD is not installed)
                self._count("errors")
                error = str(e)
                relist = True
                if scope not in self._synced:
                    log.warning("resource not served; empty until it is", extra=_extra(self.source, scope, error))
                    self._mark_synced(scope)
            except KubeError as e:
                self._count("errors")
                error = str(e)
            if self._stop.is_set():
                break
            log.info("watch interrupted; reconnecting", extra={**_extra(self.source, scope, error), "delay": delay})
            self._stop.wait(delay * (0.5 + self._jitter() / 2))
            delay = min(delay * 2, self._max_backoff)

    def _relist(self, scope: str | None) -> None:
        self._count("lists")
        listing = self.source.list(scope)
        items = [self._transform(obj) for obj in listing.items]
        self._change(lambda: self._store.replace(scope, items, listing.resource_version))
        self._versions[scope] = listing.resource_version
        self._mark_synced(scope)

    def _mark_synced(self, scope: str | None) -> None:
        with self._synced_cond:
            self._synced.add(scope)
            self._synced_cond.notify_all()

    def _watch(self, scope: str | None) -> bool:
        """One WATCH until the server ends it; returns whether it was healthy (an event, or it lasted)."""
        self._count("watches")
        began, events = time.monotonic(), 0
        stream = self.source.watch(scope, self._versions[scope])
        self._streams[scope] = stream
        try:
            for event in stream:
                events += 1
                self._count("events")
                obj = event.object
                if event.type in ("ADDED", "MODIFIED"):
                    self._change(partial(self._store.upsert, self._transform(obj)))
                elif event.type == "DELETED":
                    self._change(partial(self._store.remove, self._transform(obj)))
                if version_of(obj):
                    self._versions[scope] = version_of(obj)
                if self._stop.is_set():
                    break
        finally:
            self._streams.pop(scope, None)
            stream.stop()
        return events > 0 or time.monotonic() - began >= 1.0

    def _resync_loop(self) -> None:
        assert self._resync is not None
        while not self._stop.wait(self._resync):
            with self._dispatch:
                self._run_handlers([Change(obj, obj) for obj in self._store.values(None)])


def _extra(source: ListWatch, scope: str | None, error: object) -> dict[str, Any]:
    return {"event": "rollout.informer", "what": source.what, "scope": scope or "all", "error": str(error)[:300]}
