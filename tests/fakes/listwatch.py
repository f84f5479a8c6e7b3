"""An in-memory LIST + WATCH source (``rollout.kube.informers.ListWatch``) that a test scripts.

``FakeListWatch`` keeps objects with increasing resourceVersions and the history of their events,
as the API server does. A watch replays the history after the version it starts from and then
waits for new events; ``bookmark()`` sends a BOOKMARK, ``compact()`` makes every version so far
too old (the next watch from one gets ``ResourceExpired``), ``break_watches(error)`` fails the open
watches, ``end_watches()`` ends them as a server timeout does, ``fail_lists`` / ``fail_watches``
make the next calls fail, ``down`` makes every call fail (a partition) and ``paused`` holds the
open watches' events back (a slow connection). Every call is recorded.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

from rollout.errors import KubeError
from rollout.kube.watches import Listing, ResourceExpired, WatchEvent

Obj = dict[str, Any]


class FakeListWatch:
    what = "widgets.example.com"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.objects: dict[tuple[str, str], Obj] = {}
        self.events: list[WatchEvent] = []
        self.version = 0
        self.compacted = 0
        self.lists: list[str | None] = []
        self.watches: list[tuple[str | None, str]] = []
        self.fail_lists: list[KubeError] = []
        self.fail_watches: list[KubeError] = []
        self._open: list[FakeWatch] = []
        self.down = False
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        with self._cond:
            self._paused = value
            self._cond.notify_all()

    # --- what other clients do ------------------------------------------------------------

    def put(self, namespace: str, name: str, *, status: Obj | None = None, **spec: Any) -> Obj:
        """Create or update an object (with ``status`` when given); returns it as the API server
        answers the write."""
        with self._cond:
            self.version += 1
            key = (namespace, name)
            kind = "MODIFIED" if key in self.objects else "ADDED"
            obj: Obj = {
                "metadata": {
                    "namespace": namespace,
                    "name": name,
                    "resourceVersion": str(self.version),
                    "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                },
                "spec": dict(spec),
            }
            if status is not None:
                obj["status"] = copy.deepcopy(status)
            self.objects[key] = obj
            self.events.append(WatchEvent(kind, copy.deepcopy(obj)))
            self._cond.notify_all()
            return copy.deepcopy(obj)

    def remove(self, namespace: str, name: str) -> None:
        with self._cond:
            self.version += 1
            obj = self.objects.pop((namespace, name))
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = str(self.version)
            self.events.append(WatchEvent("DELETED", gone))
            self._cond.notify_all()

    def bookmark(self) -> None:
        with self._cond:
            self.version += 1  # other resources' writes moved the store's revision on
            self.events.append(WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": str(self.version)}}))
            self._cond.notify_all()

    def compact(self) -> None:
        with self._cond:
            self.compacted = self.version

    def break_watches(self, error: KubeError) -> None:
        with self._cond:
            for w in self._open:
                w.error = error
            self._cond.notify_all()

    def end_watches(self) -> None:
        with self._cond:
            for w in self._open:
                w.ended = True
            self._cond.notify_all()

    def open_watches(self) -> int:
        with self._cond:
            return len(self._open)

    # --- the ListWatch protocol -----------------------------------------------------------

    def list(self, namespace: str | None) -> Listing:
        with self._cond:
            self.lists.append(namespace)
            if self.down:
                raise KubeError(f"cannot list {self.what}: the API server is unreachable")
            if self.fail_lists:
                raise self.fail_lists.pop(0)
            items = [copy.deepcopy(o) for (ns, _), o in sorted(self.objects.items()) if namespace in (None, ns)]
            return Listing(items, str(self.version))

    def watch(self, namespace: str | None, resource_version: str) -> FakeWatch:
        with self._cond:
            self.watches.append((namespace, resource_version))
            if self.down:
                raise KubeError(f"cannot watch {self.what}: the API server is unreachable")
            if self.fail_watches:
                raise self.fail_watches.pop(0)
            if int(resource_version) < self.compacted:
                raise ResourceExpired(f"cannot watch {self.what} from that resourceVersion: 410 Gone (Expired)")
            watch = FakeWatch(self, namespace, int(resource_version))
            self._open.append(watch)
            return watch


class FakeWatch:
    def __init__(self, source: FakeListWatch, namespace: str | None, since: int) -> None:
        self.source, self.namespace = source, namespace
        self.position = next(
            (i for i, e in enumerate(source.events) if int(e.object["metadata"]["resourceVersion"]) > since),
            len(source.events),
        )
        self.error: KubeError | None = None
        self.ended = self.stopped = False

    def stop(self) -> None:
        with self.source._cond:
            self.stopped = True
            self.source._cond.notify_all()

    def __iter__(self) -> Iterator[WatchEvent]:
        cond = self.source._cond
        try:
            while True:
                with cond:
                    cond.wait_for(
                        lambda: (
                            self.stopped
                            or self.ended
                            or self.error is not None
                            or (not self.source.paused and self.position < len(self.source.events))
                        )
                    )
                    if self.error is not None:
                        raise self.error
                    if self.stopped or (
                        self.ended and (self.source.paused or self.position >= len(self.source.events))
                    ):
                        return
                    event = self.source.events[self.position]
                    self.position += 1
                ns = (event.object.get("metadata") or {}).get("namespace")
                if event.type == "BOOKMARK" or self.namespace in (None, ns):
                    yield WatchEvent(event.type, copy.deepcopy(event.object))
        finally:
            with cond:
                if self in self.source._open:
                    self.source._open.remove(self)
