"""A watch on Rollout objects that wakes a rollout's job as soon as its object changes (a spec
edit, an operator command), so nobody waits for the next interval.

Owns the watch connection: it reconnects after errors with a short backoff and never decides
anything; the periodic resync remains the safety net for any event the watch misses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import watch

from rollout.kube.client import KubeClient
from rollout.kube.rollouts import ROLLOUTS

log = logging.getLogger("rollout.watch")


class RolloutWatcher:
    def __init__(
        self,
        client: KubeClient,
        namespaces: Sequence[str],
        on_change: Callable[[str, str, dict[str, Any]], None],
    ) -> None:
        self.client, self.namespaces, self.on_change = client, list(namespaces) or [""], on_change
        self._stop = threading.Event()
        self._watches: list[watch.Watch] = []
        self._threads = [
            threading.Thread(target=self._loop, args=(ns,), name=f"watch-{ns or 'all'}", daemon=True)
            for ns in self.namespaces
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()  # type: ignore[no-untyped-call]

    def _loop(self, namespace: str) -> None:
        api = self.client.custom_api
        backoff = 1.0
        while not self._stop.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            self._watches.append(w)
            try:
                if namespace:
                    stream = w.stream(  # type: ignore[no-untyped-call]
                        api.list_namespaced_custom_object,
                        ROLLOUTS.group,
                        ROLLOUTS.version,
                        namespace,
                        ROLLOUTS.plural,
                        timeout_seconds=60,
                    )
                else:
                    stream = w.stream(  # type: ignore[no-untyped-call]
                        api.list_cluster_custom_object,
                        ROLLOUTS.group,
                        ROLLOUTS.version,
                        ROLLOUTS.plural,
                        timeout_seconds=60,
                    )
                for event in stream:
                    backoff = 1.0
                    obj = event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    if event.get("type") in ("ADDED", "MODIFIED") and meta.get("name"):
                        self.on_change(str(meta.get("namespace", "")), str(meta["name"]), obj)
                    if self._stop.is_set():
                        break
            except Exception as e:  # any transport or API failure: reconnect after a pause
                if self._stop.is_set():
                    break
                log.info("watch interrupted; reconnecting", extra={"event": "rollout.watch", "error": str(e)[:200]})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                w.stop()  # type: ignore[no-untyped-call]
                self._watches.remove(w)
