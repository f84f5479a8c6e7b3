"""Informer driven by a scripted LIST + WATCH source (``tests.fakes.listwatch``): the initial list,
add / modify / delete, bookmarks, 410 Gone -> relist with deletions, errors -> reconnect with a
bounded backoff, a prompt stop, our own writes through ``apply``, per-namespace scopes, handlers
outside the lock, and the periodic resync. Real threads, no sleeps that decide anything: every
wait is for a condition, with a hang guard."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from rollout.errors import KubeError, KubeNotFound
from rollout.kube.informers import Informer, drop_managed_fields, is_newer
from rollout.kube.watches import ResourceExpired
from tests.fakes.listwatch import FakeListWatch

Obj = dict[str, Any]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


class Seen:
    """Every handler call, in order, as (kind, name, resourceVersion)."""

    def __init__(self, informer: Informer) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        informer.add_handlers(
            on_add=lambda o: self._add("add", o),
            on_update=lambda old, new: self._add("update", new),
            on_delete=lambda o: self._add("delete", o),
        )

    def _add(self, kind: str, obj: Obj) -> None:
        with self.lock:
            self.calls.append((kind, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))

    def take(self, count: int) -> list[tuple[str, str, str]]:
        wait_for(lambda: len(self.calls) >= count, f"{count} handler calls (have {self.calls})")
        with self.lock:
            taken, self.calls[:] = self.calls[:count], self.calls[count:]
        return taken


@pytest.fixture
def source() -> FakeListWatch:
    return FakeListWatch()


@pytest.fixture
def informer(source: FakeListWatch) -> Iterator[Informer]:
    inf = Informer(source, backoff_seconds=0.01, max_backoff_seconds=0.04, jitter=lambda: 1.0)
    yield inf
    inf.stop()


def test_lists_then_watches_and_reports_every_change(source: FakeListWatch, informer: Informer) -> None:
    source.put("a", "one", weight=1)
    source.put("b", "two", weight=2)
    seen = Seen(informer)
    assert not informer.has_synced()
    informer.start()
    assert informer.wait_synced(5)
    assert sorted(c[:2] for c in seen.take(2)) == [("add", "one"), ("add", "two")]
    assert informer.get("a", "one") == {
        "metadata": {"namespace": "a", "name": "one", "resourceVersion": "1"},
        "spec": {"weight": 1},
    }
    assert [o["metadata"]["name"] for o in informer.list("b")] == ["two"]
    assert len(informer.list()) == 2

    wait_for(lambda: source.open_watches() == 1, "the watch")
    assert source.watches == [(None, "2")]  # from the list's resourceVersion
    source.put("a", "one", weight=5)
    source.put("a", "three")
    source.remove("b", "two")
    assert seen.take(3) == [("update", "one", "3"), ("add", "three", "4"), ("delete", "two", "2")]
    assert (informer.get("a", "one") or {}).get("spec") == {"weight": 5}
    assert informer.get("b", "two") is None
    assert informer.resource_version() == "5"
    assert informer.stats().lists == 1 and informer.stats().watches == 1


def test_a_bookmark_moves_the_resource_version_and_the_next_watch_starts_there(
    source: FakeListWatch, informer: Informer
) -> None:
    source.put("a", "one")
    seen = Seen(informer)
    informer.start()
    seen.take(1)
    wait_for(lambda: source.open_watches() == 1, "the watch")
    source.bookmark()
    wait_for(lambda: informer.resource_version() == "2", "the bookmark's version")
    source.end_watches()  # the server's watch timeout
    wait_for(lambda: len(source.watches) == 2, "a new watch")
    assert source.watches[-1] == (None, "2")
    assert seen.calls == [] and source.lists == [None]  # no relist, no handler call


def test_410_gone_relists_and_resyncs_with_deletes_and_updates(source: FakeListWatch, informer: Informer) -> None:
    for name in ("keep", "change", "vanish"):
        source.put("a", name)
    seen = Seen(informer)
    informer.start()
    seen.take(3)
    wait_for(lambda: source.open_watches() == 1, "the watch")
    source.down = True  # cut off while the world moves on, and the history is compacted away
    source.break_watches(KubeError("cannot watch widgets.example.com: the API server is unreachable"))
    source.put("a", "change", weight=9)
    source.remove("a", "vanish")
    source.put("a", "new")
    source.compact()
    wait_for(lambda: len(source.watches) >= 3, "reconnect attempts")
    source.down = False
    changes = seen.take(3)
    assert sorted(changes) == [("add", "new", "6"), ("delete", "vanish", "3"), ("update", "change", "4")]
    assert informer.get("a", "keep") is not None and informer.get("a", "vanish") is None
    wait_for(lambda: source.open_watches() == 1, "the watch after the relist")
    stats = informer.stats()
    assert stats.expired == 1 and stats.lists == 2 and source.lists == [None, None]
    assert source.watches[-2:] == [(None, "3"), (None, "6")]  # the expired version, then the new list's
    source.put("a", "keep", weight=1)
    assert seen.take(1) == [("update", "keep", "7")]


def test_errors_reconnect_from_the_last_version_with_a_bounded_backoff(
    source: FakeListWatch, informer: Informer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rollout.informer")
    source.put("a", "one")
    source.fail_lists.append(KubeError("cannot list widgets: HTTP 500"))
    source.fail_watches.extend(KubeError(f"cannot watch widgets: refused #{i}") for i in range(5))
    informer.start()
    wait_for(lambda: source.open_watches() == 1, "a watch that finally opens")
    assert source.lists == [None, None]
    assert source.watches == [(None, "1")] * 6  # never a relist: the version was still good
    delays = [r.delay for r in caplog.records if getattr(r, "event", "") == "rollout.informer" and hasattr(r, "delay")]
    assert delays == [0.01, 0.01, 0.02, 0.04, 0.04, 0.04]  # reset by the successful list, doubled, capped
    assert informer.stats().errors == 6
    source.put("a", "two")
    wait_for(lambda: informer.get("a", "two") is not None, "the event after reconnecting")


def test_410_again_right_after_a_relist_backs_off_instead_of_spinning(source: FakeListWatch) -> None:
    source.put("a", "one")
    source.compacted = 10**9  # every version is too old, even a fresh list's
    informer = Informer(source, backoff_seconds=60.0, jitter=lambda: 1.0)
    informer.start()
    try:
        wait_for(lambda: informer.stats().expired == 2, "two 410s")
        time.sleep(0.2)
        assert source.lists == [None, None] and informer.stats().expired == 2  # now waiting 60 s
    finally:
        informer.stop()


def test_a_watch_that_ends_at_once_backs_off_instead_of_spinning(source: FakeListWatch, informer: Informer) -> None:
    informer.start()
    wait_for(lambda: source.open_watches() == 1, "the watch")
    for n in range(2, 5):
        source.end_watches()
        wait_for(partial(lambda count: len(source.watches) >= count, n), "a new watch")
    assert informer.stats().errors == 0 and len(source.watches) <= 5


def test_stop_is_prompt_during_a_long_backoff_and_during_a_watch(source: FakeListWatch) -> None:
    waiting = Informer(source, backoff_seconds=60.0, jitter=lambda: 1.0)
    source.fail_lists.append(KubeError("cannot list widgets: HTTP 503"))
    waiting.start()
    wait_for(lambda: source.lists == [None], "the failed list")
    waiting.stop(timeout=5)
    assert not waiting.has_synced() and len(source.lists) == 1
    watching = Informer(source)
    watching.start()
    wait_for(lambda: source.open_watches() == 1, "the watch")
    watching.stop(timeout=5)
    assert source.open_watches() == 0
    assert not any(t.name.startswith("informer-") for t in threading.enumerate())


def test_a_resource_not_served_counts_as_empty_and_is_listed_again_until_it_is(
    source: FakeListWatch, informer: Informer
) -> None:
    source.put("a", "one", weight=1)
    source.fail_lists.extend(KubeNotFound(f"cannot list widgets: not found #{i}") for i in range(3))
    seen = Seen(informer)
    informer.start()
    assert informer.wait_synced(5), "a missing CRD must not keep readiness waiting"
    assert seen.take(1) == [("add", "one", "1")]  # the CRD appears: its objects arrive
    assert len(source.lists) == 4 and informer.stats().errors == 3


def test_apply_puts_our_write_in_the_cache_and_the_echo_is_nothing_new(
    source: FakeListWatch, informer: Informer
) -> None:
    source.put("a", "one", weight=1)
    seen = Seen(informer)
    informer.start()
    seen.take(1)
    wait_for(lambda: source.open_watches() == 1, "the watch")
    source.paused = True  # the watch lags behind
    source.put("b", "other")  # someone else's change, still on its way
    written = source.put("a", "one", weight=2)  # our PATCH, as the API server answered it
    assert informer.apply(written)
    cached = informer.get("a", "one")
    assert cached is not None and cached["spec"] == {"weight": 2} and "managedFields" not in cached["metadata"]
    assert seen.take(1) == [("update", "one", "3")]  # reported once, by apply
    source.paused = False
    wait_for(lambda: informer.resource_version() == "3", "the watch to catch up")
    assert seen.take(1) == [("add", "other", "2")]
    assert not informer.apply(written)  # the same version again is nothing new
    assert not informer.apply({**written, "metadata": {**written["metadata"], "resourceVersion": "1"}})
    assert informer.get("a", "one") is cached and seen.calls == []


def test_a_write_newer_than_the_list_survives_the_relist(source: FakeListWatch) -> None:
    informer = Informer(source)
    ours = {"metadata": {"namespace": "a", "name": "made", "resourceVersion": "100"}, "spec": {}}
    informer.apply(ours)  # written (and cached) after the server took the list's snapshot
    stale = {"metadata": {"namespace": "a", "name": "old", "resourceVersion": "0"}, "spec": {}}
    informer.apply(stale)  # cached before the list, gone from it: deleted
    informer.start()
    try:
        assert informer.wait_synced(5)
        assert informer.get("a", "made") == ours and informer.get("a", "old") is None
    finally:
        informer.stop()


def test_a_delete_older_than_the_cached_object_is_ignored(source: FakeListWatch, informer: Informer) -> None:
    source.put("a", "x")
    informer.start()
    wait_for(lambda: source.open_watches() == 1, "the watch")
    source.remove("a", "x")  # version 2, delivered late ...
    recreated = {"metadata": {"namespace": "a", "name": "x", "resourceVersion": "50"}, "spec": {"v": 2}}
    informer.apply(recreated)  # ... after we had created it again and cached our answer
    wait_for(lambda: informer.resource_version() == "2", "the delete event")
    assert informer.get("a", "x") == recreated


def test_namespaces_are_separate_scopes(source: FakeListWatch) -> None:
    source.put("a", "one")
    source.put("b", "two")
    source.put("c", "ignored")
    informer = Informer(source, namespaces=["a", "b"], backoff_seconds=0.01)
    informer.start()
    try:
        assert informer.wait_synced(5)
        assert sorted(o["metadata"]["name"] for o in informer.list()) == ["one", "two"]
        wait_for(lambda: source.open_watches() == 2, "one watch per namespace")
        assert sorted(source.watches, key=str) == [("a", "3"), ("b", "3")]
        source.remove("a", "one")
        source.put("b", "three")
        source.put("c", "still-ignored")
        wait_for(lambda: informer.get("b", "three") is not None, "b's event")
        wait_for(lambda: informer.get("a", "one") is None, "a's event")
        assert informer.get("c", "still-ignored") is None
    finally:
        informer.stop()


def test_a_failing_handler_does_not_stop_the_cache_and_handlers_run_outside_the_lock(
    source: FakeListWatch, informer: Informer
) -> None:
    reads: list[Obj | None] = []

    def reads_the_cache(obj: Obj) -> None:
        reads.append(informer.get("a", obj["metadata"]["name"]))  # would deadlock under the store lock
        raise RuntimeError("a handler bug")

    informer.add_handlers(on_add=reads_the_cache)
    informer.start()
    wait_for(lambda: source.open_watches() == 1, "the watch")
    source.put("a", "one")
    source.put("a", "two")
    wait_for(lambda: len(reads) == 2, "both handler calls")
    assert [o["metadata"]["name"] for o in reads if o] == ["one", "two"]


def test_resync_redelivers_every_cached_object(source: FakeListWatch) -> None:
    source.put("a", "one")
    source.put("a", "two")
    informer = Informer(source, resync_seconds=0.01)
    resynced: list[str] = []
    informer.add_handlers(on_update=lambda old, new: resynced.append(new["metadata"]["name"]) if old is new else None)
    informer.start()
    try:
        wait_for(lambda: {"one", "two"} <= set(resynced), "a resync")
    finally:
        informer.stop()


def test_resource_versions_compare_as_numbers_and_managed_fields_are_dropped() -> None:
    assert is_newer("10", "9") and not is_newer("9", "10") and not is_newer("7", "7")
    assert is_newer("b", "a") and not is_newer("a", "a")
    obj = {"metadata": {"name": "x", "managedFields": [{}]}, "spec": {}}
    assert drop_managed_fields(obj) == {"metadata": {"name": "x"}, "spec": {}}
    assert obj["metadata"]["managedFields"] == [{}]  # the original is left alone
    assert isinstance(ResourceExpired("x"), KubeError)
