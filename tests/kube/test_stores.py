"""The stores' indexes, kept by the informers' handlers: a rollout's unhandled commands (in the order
the cache first saw them; handled or deleted ones leave) and the Rollouts that name a route (in
their spec or in the run they are in; an update moves them, a delete drops them). Objects arrive
through a real informer watching a scripted list + watch source."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from rollout.kube.client import KubeClient
from rollout.kube.commands import CommandObjects
from rollout.kube.informers import Informer
from rollout.kube.stores import CommandStore, RolloutsByRoute, route_refs
from tests.fakes.listwatch import FakeListWatch


@pytest.fixture
def source() -> FakeListWatch:
    return FakeListWatch()


@pytest.fixture
def informer(source: FakeListWatch) -> Iterator[Informer]:
    informer = Informer(source)
    yield informer
    informer.stop()


def started(informer: Informer) -> None:
    informer.start()
    assert informer.wait_synced(5)


def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "the informer never delivered the change"
        time.sleep(0.005)


def settled(informer: Informer, source: FakeListWatch) -> None:
    """Every change the source made has reached the cache (and its handlers)."""
    until(lambda: informer.resource_version(None) == str(source.version))


def command(source: FakeListWatch, name: str, rollout: str, namespace: str = "shop", handled: bool = False) -> None:
    status = {"phase": "Accepted"} if handled else None
    source.put(namespace, name, status=status, rollout=rollout, command="pause", by="alice")


def test_pending_commands_are_indexed_by_rollout(source: FakeListWatch, informer: Informer) -> None:
    store = CommandStore(informer, CommandObjects(cast(KubeClient, None)))
    command(source, "c0", "recs")  # listed before the watch starts
    started(informer)
    command(source, "c1", "cart")
    command(source, "c2", "recs")
    command(source, "c3", "recs", namespace="other")
    settled(informer, source)
    assert [c.name for c in store.pending("shop", "recs")] == ["c0", "c2"]
    command(source, "c0", "recs", handled=True)  # acknowledged
    command(source, "c2", "recs")  # a newer version of a pending one keeps its place
    settled(informer, source)
    assert [c.name for c in store.pending("shop", "recs")] == ["c2"]
    source.remove("shop", "c2")
    settled(informer, source)
    assert store.pending("shop", "recs") == []
    assert [c.name for c in store.pending("other", "recs")] == ["c3"]
    assert [c.name for c in store.pending("shop", "cart")] == ["c1"]


def test_rollouts_are_indexed_by_the_routes_they_name(source: FakeListWatch, informer: Informer) -> None:
    index = RolloutsByRoute(informer)
    started(informer)
    source.put("shop", "a", router={"gatewayRoute": {"name": "gr"}})
    source.put("shop", "b", router={"httpRoute": {"name": "web", "namespace": "edge"}})
    settled(informer, source)
    assert index.rollouts("shop", "gr") == {"shop/a"}
    assert index.rollouts("edge", "web") == {"shop/b"}
    # a run in progress on its own route after the spec changed: both routes lead to it
    run = {"state": {"router": {"gatewayRoute": {"name": "gr"}}}}
    source.put("shop", "a", status=run, router={"gatewayRoute": {"name": "gr2"}})
    settled(informer, source)
    assert index.rollouts("shop", "gr") == {"shop/a"} and index.rollouts("shop", "gr2") == {"shop/a"}
    source.put("shop", "a", status={"state": {}}, router={"gatewayRoute": {"name": "gr2"}})  # the run ended
    source.remove("shop", "b")
    settled(informer, source)
    assert index.rollouts("shop", "gr") == set() and index.rollouts("shop", "gr2") == {"shop/a"}
    assert index.rollouts("edge", "web") == set()


def test_route_refs_read_the_spec_and_the_runs_route_namespace() -> None:
    obj: dict[str, Any] = {
        "metadata": {"namespace": "shop", "name": "a"},
        "spec": {"router": {"virtualRouter": {"name": "vr", "route": "r"}}},
        "status": {"state": {"router": {"virtualRouter": {"name": "vr-old"}}, "routeNamespace": "mesh"}},
    }
    assert route_refs(obj) == {("shop", "vr"), ("mesh", "vr-old")}
    assert route_refs({"metadata": {"namespace": "x"}, "spec": "garbage", "status": []}) == set()
