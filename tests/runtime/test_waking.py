"""Which watch events wake which rollouts (``runtime.waking``), and who vouches for a command's
author (``runtime.vouching``): the daemon's rules between its caches, its scheduler and the API
server's answers, without a server."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from rollout.core.states import CommandKind
from rollout.errors import KubeError
from rollout.kube.commands import command_body
from rollout.runtime.vouching import Vouching
from rollout.runtime.waking import Waker


class Scheduler:
    def __init__(self) -> None:
        self.woken: list[str] = []
        self.removed: list[str] = []

    def wake(self, key: str) -> None:
        self.woken.append(key)

    def remove(self, key: str) -> None:
        self.removed.append(key)


class Routes:
    def __init__(self, index: dict[tuple[str, str], list[str]]) -> None:
        self.index = index

    def rollouts(self, namespace: str, name: str) -> Iterable[str]:
        return self.index.get((namespace, name), [])


def rollout(name: str, *, generation: int = 1, phase: str = "", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "shop", "name": name, "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T12:00:00Z"
    return {"metadata": meta, "status": {"phase": phase} if phase else {}}


def route(spec: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return {"metadata": {"namespace": "shop", "name": name}, "spec": spec}


def waker(
    *, owned: set[str] | None = None, cached: dict[str, dict[str, Any]] | None = None
) -> tuple[Waker, Scheduler, list[str], list[Mapping[str, Any]]]:
    scheduler = Scheduler()
    forgotten: list[str] = []
    handled: list[Mapping[str, Any]] = []
    cache = cached or {}
    w = Waker(
        scheduler,
        owns=lambda key: owned is None or key in owned,
        rollout=lambda ns, name: cache.get(f"{ns}/{name}"),
        by_route=Routes({("shop", "web"): ["shop/a", "shop/b", "shop/c"]}),
        forget=forgotten.append,
        handled=handled.append,
    )
    return w, scheduler, forgotten, handled


def test_a_new_rollout_or_a_spec_change_wakes_it_and_our_own_status_writes_do_not() -> None:
    w, scheduler, _, _ = waker()
    w.rollout_added(rollout("a"))
    w.rollout_updated(rollout("a", phase="Progressing"), rollout("a", phase="Paused"))  # status only
    w.rollout_updated(rollout("b"), rollout("b", generation=2))
    w.rollout_updated(rollout("c"), rollout("c", deleting=True))
    assert scheduler.woken == ["shop/a", "shop/b", "shop/c"]


def test_only_rollouts_this_replica_owns_are_woken() -> None:
    w, scheduler, _, _ = waker(owned={"shop/a"})
    w.rollout_added(rollout("a"))
    w.rollout_added(rollout("b"))
    w.batched(["shop/a", "shop/b"])
    w.wake_all(["shop/b", "shop/a"])
    assert scheduler.woken == ["shop/a", "shop/a", "shop/a"]


def test_a_deleted_rollout_is_unscheduled_and_forgotten_whoever_owns_it() -> None:
    w, scheduler, forgotten, _ = waker(owned=set())
    w.rollout_deleted(rollout("a"))
    assert scheduler.removed == ["shop/a"] and forgotten == ["shop/a"] and not scheduler.woken


def test_a_route_edit_wakes_the_active_rollouts_that_name_it_only() -> None:
    cached = {"shop/a": rollout("a", phase="Progressing"), "shop/b": rollout("b", phase="Promoted")}
    w, scheduler, _, _ = waker(cached=cached)  # shop/c names the route but is not cached
    w.route_updated(route({"w": 1}), route({"w": 1}))  # metadata or status only: nothing
    assert scheduler.woken == []
    w.route_updated(route({"w": 1}), route({"w": 2}))
    assert scheduler.woken == ["shop/a"]
    w.route_updated(route({"w": 1}, "other"), route({"w": 2}, "other"))  # nobody names it
    assert scheduler.woken == ["shop/a"]


@pytest.mark.parametrize("phase", ["Progressing", "Paused", "AwaitingApproval", "Promoting", "RollingBack"])
def test_every_active_phase_is_woken_by_a_route_edit(phase: str) -> None:
    w, scheduler, _, _ = waker(cached={"shop/a": rollout("a", phase=phase)})
    w.route_updated(route({"w": 1}), route({"w": 2}))
    assert scheduler.woken == ["shop/a"]


def test_a_new_unhandled_command_wakes_its_rollout_and_a_handled_one_answers_its_click() -> None:
    w, scheduler, _, handled = waker()
    command = command_body("shop", "a", CommandKind.ABORT, by="alice")
    command["metadata"]["name"] = "a-abort-x"
    w.command_added(command)
    done = {**command, "status": {"phase": "Accepted"}}
    w.command_added(done)  # handled already (a relist): nothing to do
    assert scheduler.woken == ["shop/a"]
    w.command_updated(command, done)
    w.command_updated(done, {**done, "metadata": {**done["metadata"], "labels": {"x": "y"}}})  # once only
    assert handled == [done]


class Reviews:
    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, ...], str, str, str, str, str]] = []

    def allowed(
        self, user: str, groups: Sequence[str], *, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> tuple[bool, str]:
        self.asked.append((user, tuple(groups), verb, group, resource, namespace, name))
        return user == "alice", "RBAC: allowed" if user == "alice" else ""


def test_the_authorizer_is_asked_about_the_verb_on_that_rollout() -> None:
    reviews = Reviews()
    vouching = Vouching(reviews, lambda: True)
    assert vouching.allowed("alice", ["team"], "approve", "shop", "web") == (True, "RBAC: allowed")
    assert vouching.allowed("bob", [], "abort", "shop", "web")[0] is False
    assert reviews.asked[0] == ("alice", ("team",), "approve", "delivery.rollout.dev", "rollouts", "shop", "web")


def test_commands_are_verified_only_while_the_admission_policy_is_installed(caplog: pytest.LogCaptureFixture) -> None:
    answers: list[bool | KubeError] = [True, KubeError("timeout"), False, False, True]

    def installed() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, KubeError):
            raise answer
        return answer

    vouching = Vouching(Reviews(), installed, policy="rollout-commands")
    assert not vouching.verified()  # not looked up yet: refuse
    seen = []
    caplog.set_level(logging.WARNING, logger="rollout.commands")
    for _ in range(5):
        vouching.check()
        seen.append(vouching.verified())
    assert seen == [True, True, False, False, True]  # a failed lookup keeps the last answer
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and getattr(errors[0], "policy", "") == "rollout-commands"  # said once, not every minute


def test_without_the_policy_required_every_command_is_taken_as_verified() -> None:
    def never() -> bool:
        raise AssertionError("not looked up")

    vouching = Vouching(Reviews(), never, required=False)
    vouching.check()
    assert vouching.verified()
