"""LIST (paged) and WATCH of one custom resource type with the official client, for the informers.

Owns the two requests an informer makes and their error translation: ``410 Gone`` (an expired
resourceVersion or continue token, as an HTTP status or as a watch ``ERROR`` event) becomes
``ResourceExpired``; every other failure becomes a ``KubeError`` naming the resource and scope.
A watch asks for bookmarks and a server-side timeout (jittered, 5 to 10 minutes by default, so
many replicas do not reconnect together) and reads with a client timeout a little longer than
that, so a silently dead connection is noticed. ``stop()`` shuts the socket so a blocked read
ends at once. It keeps no state between requests and never retries (the informer reconnects).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from rollout.errors import KubeError
from rollout.kube.client import KubeClient, Resource, translate


class ResourceExpired(KubeError):
    """410 Gone: the resourceVersion (or continue token) asked for is too old; list again."""


@dataclass(frozen=True)
class Listing:
    """A full list of one scope and the resourceVersion it was read at."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK`` (whose object carries only a resourceVersion)."""

    type: str
    object: dict[str, Any]


class KubeListWatch:
    """Lists and watches ``resource`` through ``client`` (cluster-wide when the namespace is ``None``)."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        label_selector: str | None = None,
        page_size: int = 500,
        watch_seconds: tuple[int, int] = (300, 600),
    ) -> None:
        self.client, self.resource = client, resource
        self.label_selector, self.page_size, self.watch_seconds = label_selector, page_size, watch_seconds
        self.what = resource.name

    def _scope(self, namespace: str | None) -> str:
        return (
            f"{self.resource.name} in namespace {namespace}" if namespace else f"{self.resource.name} (all namespaces)"
        )

    def _request(self, namespace: str | None, **kwargs: Any) -> Any:
        api, r = self.client.custom_api, self.resource
        if self.label_selector:
            kwargs["label_selector"] = self.label_selector
        if namespace:
            return api.list_namespaced_custom_object(r.group, r.version, namespace, r.plural, **kwargs)
        return api.list_cluster_custom_object(r.group, r.version, r.plural, **kwargs)

    def list(self, namespace: str | None) -> Listing:
        """Every object in the scope, read in pages of ``page_size`` from one snapshot."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size, "_request_timeout": self.client.timeout}
            if token:
                kwargs["_continue"] = token
            page = _call("list", self._scope(namespace), partial(self._request, namespace, **kwargs))
            if not isinstance(page, dict):
                raise KubeError(f"cannot list {self._scope(namespace)}: unexpected answer {type(page).__name__}")
            items.extend(dict(item) for item in page.get("items") or [])
            meta = page.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                return Listing(items, str(meta.get("resourceVersion") or ""))

    def watch(self, namespace: str | None, resource_version: str) -> KubeWatchStream:
        low, high = self.watch_seconds
        return KubeWatchStream(self, namespace, resource_version, random.randint(low, high))


class KubeWatchStream:
    """One WATCH request from ``resource_version``; iterate it once."""

    def __init__(self, source: KubeListWatch, namespace: str | None, resource_version: str, seconds: int) -> None:
        self._source, self._namespace, self._version, self._seconds = source, namespace, resource_version, seconds
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]  # kubernetes.watch has no annotations
        self._stopped = threading.Event()

    def stop(self) -> None:
        """End the request from any thread (shuts its socket down so a blocked read returns)."""
        self._stopped.set()
        self._watch.stop()  # type: ignore[no-untyped-call]  # kubernetes.watch has no annotations

    def __iter__(self) -> Iterator[WatchEvent]:
        source, scope = self._source, self._source._scope(self._namespace)
        if self._stopped.is_set():
            return
        stream = self._watch.stream(  # type: ignore[no-untyped-call]  # kubernetes.watch has no annotations
            source._request,
            self._namespace,
            resource_version=self._version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._seconds,
            _request_timeout=(source.client.timeout, self._seconds + 30),
        )
        try:
            for event in stream:
                if not isinstance(event, dict):
                    continue  # a blank or unparsable line (the client drops those as None)
                raw = event.get("raw_object")
                yield WatchEvent(str(event.get("type")), raw if isinstance(raw, dict) else {})
                if self._stopped.is_set():
                    return
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            if self._stopped.is_set():
                return
            raise _translated(e, "watch", scope) from e


def _call(verb: str, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        raise _translated(e, verb, what) from e


def _translated(exc: Exception, verb: str, what: str) -> KubeError:
    if isinstance(exc, ApiException) and exc.status == 410:
        return ResourceExpired(f"cannot {verb} {what} from that resourceVersion: 410 Gone ({exc.reason})")
    if isinstance(exc, ValueError):  # a watch line that is not an event
        return KubeError(f"cannot {verb} {what}: malformed watch event ({exc})")
    return translate(exc, verb, what)
