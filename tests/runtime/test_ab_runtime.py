"""A/B steps through the reconciler: the managed route is written after the status that records it,
owned by the Rollout, shown in status, and never left behind however the daemon dies: the daemon
is killed before and after each of its route writes in turn, restarted, and the run ends with no
managed route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rollout.core.matches import MatchKind, MatchRule, RouteMatch
from rollout.core.states import CANARY_ONLY, STABLE_ONLY, CommandKind, Weights
from rollout.policy.loading import load_paths
from rollout.routers.base import RouteOwner
from rollout.routers.memory import MemoryRouter
from rollout.runtime.simulating import Scenario, simulate
from tests.harness.kube import REPO_ROOT as ROOT
from tests.runtime.fakes import rollout_doc
from tests.runtime.test_reconciling import Shell

BETA = RouteMatch(headers=(MatchRule("X-Experiment-ID", MatchKind.EXACT, "beta"),))
AB: list[dict[str, Any]] = [
    {"match": {"headers": [{"name": "X-Experiment-ID", "exact": "beta"}]}},
    {"pause": {"duration": "30s"}},
]
PROMOTE: list[dict[str, Any]] = [*AB, {"setWeight": 100}]
WITH_WEIGHT: list[dict[str, Any]] = [
    {"match": {"headers": [{"name": "X-Experiment-ID", "exact": "beta"}], "weight": 20}},
    {"pause": {"duration": "30s"}},
    {"setWeight": 100},
]


class Killed(BaseException):
    """The daemon process dies (SIGKILL): nothing after this point runs."""


def _restart(old: Shell) -> Shell:
    """A new daemon on the same cluster and metrics: everything it knew in memory is gone."""
    return Shell(
        clock=old.clock, rollouts=old.rollouts, commands=old.commands, routes=old.routes, provider=old.provider
    )


def _kill_at(route: MemoryRouter, n: int, *, after: bool) -> list[str]:
    """Make the ``n``-th route write (0-based, weights or managed route) kill the daemon, before or
    after it lands; returns the log of writes attempted."""
    calls: list[str] = []
    set_weights, set_match = route.set_weights, route.set_match

    def wrap(kind: str, write: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(kind)
            if len(calls) - 1 == n and not after:
                raise Killed
            result = write(*args, **kwargs)
            if len(calls) - 1 == n:
                raise Killed
            return result

        return call

    route.set_weights = wrap("weights", set_weights)  # type: ignore[method-assign]
    route.set_match = wrap("match", set_match)  # type: ignore[method-assign]
    return calls


def test_an_a_b_run_is_promoted_with_the_managed_route_owned_shown_and_removed_first() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=PROMOTE))
    route = shell.routes.route("team")
    shell.reconcile()
    assert route.get_match() == BETA and route.owner == RouteOwner("shop", "team", "uid-team/shop")
    status = shell.rollouts.status("team/shop")
    assert status["match"] == "" and status["state"]["match"] is not None  # written before it was seen
    shell.reconcile()
    assert shell.rollouts.status("team/shop")["match"] == "X-Experiment-ID=beta"
    shell.run(lambda s: s.phase() == "Promoted")
    assert route.match_writes == [BETA, None] and route.writes == [CANARY_ONLY]
    assert shell.rollouts.status("team/shop")["match"] == ""


def test_a_beta_that_fails_for_matching_requests_is_rolled_back_and_stable_never_moves() -> None:
    shell = Shell()
    shell.provider.error_rate["v2"] = 0.3  # type: ignore[union-attr]
    shell.rollouts.put(rollout_doc(steps=PROMOTE))
    shell.run(lambda s: s.phase() == "RolledBack")
    route = shell.routes.route("team")
    assert route.match_writes == [BETA, None] and route.writes == [] and route.get_weights() == STABLE_ONLY


@pytest.mark.parametrize("steps", [PROMOTE, WITH_WEIGHT], ids=["match", "match+weight"])
@pytest.mark.parametrize("ending", ["promote", "fail", "abort"])
def test_killing_the_daemon_before_or_after_any_route_write_never_leaves_a_managed_route(
    steps: list[dict[str, Any]], ending: str
) -> None:
    """Every write of the run, in turn, kills the daemon before it lands and after it lands."""
    writes = _count_writes(steps, ending)
    assert writes >= 2
    for n in range(writes):
        for after in (False, True):
            shell = Shell()
            shell.rollouts.put(rollout_doc(steps=steps))
            route = shell.routes.route("team")
            if ending == "fail":
                shell.provider.error_rate["v2"] = 0.3  # type: ignore[union-attr]
            calls = _kill_at(route, n, after=after)
            for _ in range(300):
                try:
                    _step(shell, ending)
                except Killed:
                    shell = _restart(shell)
                if shell.phase() in ("Promoted", "RolledBack", "Aborted"):
                    break
            assert len(calls) > n, "the daemon was killed at that write"
            where = f"killed {'after' if after else 'before'} write {n} ({calls[n]})"
            assert shell.phase() == {"promote": "Promoted", "fail": "RolledBack", "abort": "Aborted"}[ending], where
            assert route.get_match() is None, where
            assert route.get_weights() == (CANARY_ONLY if ending == "promote" else STABLE_ONLY), where


def _step(shell: Shell, ending: str) -> None:
    status = shell.rollouts.status("team/shop")
    if ending == "abort" and status.get("match") and not shell.commands.objects:
        shell.commands.create("team", "shop", CommandKind.ABORT, by="alice")
    shell.tick()


def _count_writes(steps: list[dict[str, Any]], ending: str) -> int:
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=steps))
    if ending == "fail":
        shell.provider.error_rate["v2"] = 0.3  # type: ignore[union-attr]
    calls = _kill_at(shell.routes.route("team"), 10_000, after=False)
    for _ in range(300):
        _step(shell, ending)
        if shell.phase() in ("Promoted", "RolledBack", "Aborted"):
            break
    return len(calls)


def test_the_route_is_read_with_its_managed_route_only_when_the_run_may_have_one() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=[{"setWeight": 20}, {"setWeight": 100}]))
    route = shell.routes.route("team")
    reads: list[int] = []
    original = route.get_match

    def counting() -> RouteMatch | None:
        reads.append(1)
        return original()

    route.get_match = counting  # type: ignore[method-assign]
    shell.run(lambda s: s.phase() == "Promoted")
    assert reads == []  # a run without A/B steps costs no extra read
    assert route.get_weights() == Weights(100, 0)
    shell.rollouts.put(rollout_doc(steps=PROMOTE))
    shell.tick()
    assert reads  # a run with A/B steps reads its managed route from its first tick


@pytest.mark.parametrize(("scenario", "ends"), [("healthy", "Promoted"), ("error-spike", "RolledBack")])
def test_simulate_runs_the_checkout_a_b_policy_with_its_expected_share_matching(scenario: str, ends: str) -> None:
    [loaded] = load_paths([ROOT / "policies" / "checkout-ab.yaml"]).rollouts
    sim = simulate(loaded.rollout, Scenario(scenario), rps=400)
    assert sim.state.phase.value == ends
    assert sim.state.match is None and sim.state.match_observed is None
    judged = [e.verdict for e in sim.events if e.verdict is not None and e.step == 1]
    assert judged and judged[-1].canary is not None
    assert judged[-1].canary.requests > 0  # at 0% weight: the 5% that match (expectedShare)
