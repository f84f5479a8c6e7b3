"""The reconciler without any server: persist before act, conflicts, lost leadership, invalid specs,
tenancy, authorized commands, quiet ticks, deleted rollouts; with in-memory stand-ins and a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from rollout.core.states import STABLE_ONLY, CommandKind, Phase, Weights
from rollout.errors import KubeConflict, RouteSchemaError
from rollout.runtime.acting import Actor
from rollout.runtime.batching import MetricsBatcher
from rollout.runtime.gathering import vet
from rollout.runtime.reconciling import Capacity, Outcome, Reconciler
from tests.runtime.fakes import (
    Clock,
    CounterProvider,
    FakeCommands,
    FakeEvents,
    FakeLeadership,
    FakeNotifications,
    FakeRollouts,
    FakeTelemetry,
    Routes,
    rollout_doc,
)

DAEMON = "system:serviceaccount:rollout-system:rollout"


@dataclass
class Shell:
    """A reconciler on stand-ins; ``tick`` advances the clock, batches metrics and reconciles."""

    clock: Clock = field(default_factory=Clock)
    rollouts: FakeRollouts = field(default_factory=FakeRollouts)
    commands: FakeCommands = field(default_factory=FakeCommands)
    routes: Routes = field(default_factory=Routes)
    leadership: FakeLeadership = field(default_factory=FakeLeadership)
    telemetry: FakeTelemetry = field(default_factory=FakeTelemetry)
    events: FakeEvents = field(default_factory=FakeEvents)
    notes: FakeNotifications = field(default_factory=FakeNotifications)
    access: dict[str, bool] = field(default_factory=dict)
    cross_namespace: dict[str, list[str]] = field(default_factory=dict)
    provider: CounterProvider | None = None  # the metrics world (kept when a test restarts the daemon)

    def __post_init__(self) -> None:
        self.provider = self.provider or CounterProvider(self.routes, self.clock)
        self.batcher = MetricsBatcher(self.provider, delay_seconds=0)
        self.actor = Actor(
            acknowledger=self.commands,
            notifications=self.notes,
            events=self.events,
            guard=self.leadership.guard,
            telemetry=self.telemetry,
            identity="daemon-0",
        )
        self.capacity = Capacity(2)
        self.reconciler = Reconciler(
            rollouts=self.rollouts,
            commands=self.commands,
            router_for=self.routes.router_for,
            readings=self.batcher,
            actor=self.actor,
            leadership=self.leadership,
            capacity=self.capacity,
            clock=self.clock,
            identity=DAEMON,
            allowed=lambda user, groups, verb, ns, name: (self.access.get(user, True), "RBAC says no"),
            vet=vet(self.cross_namespace, ("default", "team-prom"), ("https://allowed.example/",)),
        )

    def reconcile(self, key: str = "team/shop") -> Outcome:
        namespace, _, name = key.partition("/")
        return self.reconciler.reconcile(namespace, name)

    def tick(self, seconds: float = 10.0, key: str = "team/shop") -> Outcome:
        self.clock.advance(seconds)
        self.batcher.collect(10.0, self.clock.now)
        return self.reconcile(key)

    def run(self, until: Any, limit: int = 200, key: str = "team/shop") -> Outcome:
        for _ in range(limit):
            outcome = self.tick(key=key)
            if until(self):
                return outcome
        raise AssertionError(f"not reached: {self.rollouts.status(key).get('message')}")

    def phase(self, key: str = "team/shop") -> str:
        return str(self.rollouts.status(key).get("phase"))


def test_a_healthy_rollout_is_promoted_and_status_shows_what_the_route_carries() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    outcome = shell.reconcile()
    assert outcome.phase is Phase.PROGRESSING and outcome.next_at == shell.clock.now  # see the write land
    route = shell.routes.route("team")
    assert route.get_weights() == Weights(20, 80)
    status = shell.rollouts.status("team/shop")
    assert (status["canaryWeight"], status["desiredCanaryWeight"]) == (0, 20)  # written before it was seen
    shell.reconcile()
    assert shell.rollouts.status("team/shop")["canaryWeight"] == 20
    shell.run(lambda s: s.phase() == "Promoted")
    assert route.writes == [Weights(20, 80), Weights(50, 50), Weights(100, 0)]
    assert ("team/shop", "Promoted") in shell.telemetry.ended_runs


def test_the_status_is_persisted_before_the_route_is_written() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    route = shell.routes.route("team")
    seen: list[Any] = []
    original = route.set_weights

    def spy(target: Weights, *, expected: Weights | None) -> Weights:
        seen.append(shell.rollouts.status("team/shop").get("desiredCanaryWeight"))
        return original(target, expected=expected)

    route.set_weights = spy  # type: ignore[method-assign]
    shell.reconcile()
    assert seen == [20]  # the intent was stored before the route moved


def test_a_crash_after_the_status_write_is_repaired_on_the_next_tick() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    route = shell.routes.route("team")

    def crash(target: Weights, *, expected: Weights | None) -> Weights:
        raise SystemExit("killed between persisting and writing")

    original = route.set_weights
    route.set_weights = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        shell.reconcile()
    route.set_weights = original  # type: ignore[method-assign]
    assert route.get_weights() == STABLE_ONLY
    shell.reconcile()  # a new process: the write is still pending in the status
    assert route.get_weights() == Weights(20, 80)


def test_a_conflict_on_the_status_write_acts_on_nothing() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.rollouts.fail_next_write = KubeConflict("someone wrote first")
    outcome = shell.reconcile()
    assert outcome.error and shell.routes.route("team").writes == []


def test_losing_leadership_before_the_write_writes_nothing() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.leadership.leader = False
    outcome = shell.reconcile()
    assert "lost the lease" in outcome.error
    assert shell.rollouts.writes == [] and shell.routes.route("team").writes == []


def test_losing_leadership_between_the_status_and_the_route_write() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.rollouts.on_write = lambda key, status: setattr(shell.leadership, "leader", False)
    outcome = shell.reconcile()
    assert "lost the lease" in outcome.error
    assert len(shell.rollouts.writes) == 1
    assert shell.routes.route("team").writes == []  # the guard ran again before the route write


def test_a_quiet_tick_writes_nothing_and_the_judges_progress_is_flushed_now_and_then() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=[{"setWeight": 20}, {"pause": {}}]))
    shell.run(lambda s: s.rollouts.status("team/shop").get("phase") == "Paused")
    writes = len(shell.rollouts.writes)
    for _ in range(5):
        shell.tick()
    assert len(shell.rollouts.writes) == writes
    shell.reconciler.flush_seconds = 0
    shell.tick()
    assert len(shell.rollouts.writes) == writes + 1


def test_a_permanent_write_failure_is_a_condition_and_the_status_keeps_the_true_weights() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    route = shell.routes.route("team")

    def refuse(target: Weights, *, expected: Weights | None) -> Weights:
        raise RouteSchemaError("the API server pruned weightedTargets")

    route.set_weights = refuse  # type: ignore[method-assign]
    for _ in range(6):
        shell.tick()
    status = shell.rollouts.status("team/shop")
    assert status["phase"] == "Paused" and status["canaryWeight"] == 0
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RouteWriteFailed")
    failures = [e for e in shell.events.recorded if e[1] == "RouteWriteFailed"]
    assert len(failures) == 1 and shell.actor.repeats("team/shop", *failures[0][1:]) == 1


def test_an_invalid_spec_is_phase_invalid_and_moves_nothing() -> None:
    shell = Shell()
    doc = rollout_doc()
    doc["spec"]["steps"] = [{"setWeight": 50}, {"setWeight": 20}]
    shell.rollouts.put(doc)
    shell.reconcile()
    status = shell.rollouts.status("team/shop")
    assert status["phase"] == "Invalid" and "never decrease" in status["message"]
    assert shell.routes.route("team").writes == []


def test_a_repeating_cause_is_one_event_whose_count_keeps_up() -> None:
    shell = Shell()
    doc = rollout_doc()
    doc["spec"]["steps"] = [{"setWeight": 50}, {"setWeight": 20}]
    shell.rollouts.put(doc)
    for _ in range(70):  # 70 reconciles, 10 s apart
        shell.tick()
    invalid = [e for e in shell.events.recorded if e[1] == "InvalidSpec"]
    assert len(invalid) == 1
    count = shell.actor.repeats("team/shop", *invalid[0][1:])
    assert count == 70
    ((updated, last),) = shell.events.series.values()
    assert 70 - 30 <= updated <= 70 and last >= shell.clock.now - timedelta(minutes=5)  # every 5 minutes


def test_an_invalid_spec_mid_run_holds_and_abort_still_rolls_back() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.run(lambda s: s.routes.route("team").get_weights() == Weights(20, 80))
    doc = rollout_doc()
    doc["spec"]["steps"] = [{"setWeight": "lots"}]
    shell.rollouts.put(doc)
    shell.tick()
    assert shell.routes.route("team").get_weights() == Weights(20, 80)
    shell.commands.create("team", "shop", CommandKind.ABORT, by="oncall")
    shell.tick()
    shell.tick()
    assert shell.routes.route("team").get_weights() == STABLE_ONLY
    assert shell.rollouts.status("team/shop")["state"]["phase"] == "Aborted"


def test_a_route_in_another_namespace_is_refused_unless_allowed() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(route_namespace="other-team"))
    shell.reconcile()
    assert shell.phase() == "Invalid" and "own namespace" in shell.rollouts.status("team/shop")["message"]
    assert shell.routes.route("other-team").writes == []
    allowed = Shell(cross_namespace={"team": ["other-team"]})
    allowed.rollouts.put(rollout_doc(route_namespace="other-team"))
    allowed.reconcile()
    assert allowed.routes.route("other-team").writes == [Weights(20, 80)]


def test_commands_need_the_rbac_verb_and_are_acknowledged() -> None:
    shell = Shell(access={"mallory": False})
    shell.rollouts.put(rollout_doc(steps=[{"setWeight": 20}, {"approval": {}}, {"setWeight": 100}]))
    shell.run(lambda s: s.phase() == "AwaitingApproval")
    shell.commands.create("team", "shop", CommandKind.APPROVE, by="mallory")
    shell.tick()
    assert shell.phase() == "AwaitingApproval"
    [(_, refused)] = shell.commands.acks
    assert not refused.accepted and "may not approve" in refused.message
    shell.commands.create("team", "shop", CommandKind.APPROVE, by="bob")
    shell.tick()
    assert shell.commands.acks[-1][1].accepted
    assert shell.rollouts.status("team/shop")["state"]["approvals"] == ["step 2: bob"]


def test_a_malformed_command_is_refused_and_never_wedges_the_rollout() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.run(lambda s: s.routes.route("team").get_weights() == Weights(20, 80))
    shell.commands.create("team", "shop", CommandKind.PAUSE)
    shell.commands.objects[-1]["spec"]["command"] = "explode"
    shell.commands.create("team", "shop", CommandKind.ABORT, by="oncall")
    shell.tick()
    shell.tick()
    assert shell.routes.route("team").get_weights() == STABLE_ONLY
    results = {name: r.accepted for name, r in shell.commands.acks}
    assert results == {"cmd-1": False, "cmd-2": True}


def test_a_slack_click_by_someone_not_listed_is_refused() -> None:
    shell = Shell()
    doc = rollout_doc(steps=[{"setWeight": 20}, {"approval": {}}])
    doc["spec"]["approvals"] = {"slack": {"channel": "#deploys", "approvers": ["U0OK"]}}
    shell.rollouts.put(doc)
    shell.run(lambda s: s.phase() == "AwaitingApproval")
    state = shell.rollouts.status("team/shop")["state"]
    ref = f"approval-{state['revision']}-1"
    shell.commands.create("team", "shop", CommandKind.APPROVE, by=DAEMON, slack_user="U0NOPE", ref=ref)
    shell.tick()
    assert shell.phase() == "AwaitingApproval" and "not an approver" in shell.commands.acks[-1][1].message


def test_a_deleted_rollout_releases_its_slot_and_its_batch() -> None:
    shell = Shell()
    for name in ("a", "b"):
        shell.rollouts.put(rollout_doc(name=name))
        shell.reconcile(f"team/{name}")
    assert shell.capacity.active == 2 and shell.batcher.registered() == 2
    shell.rollouts.delete("team/a")
    assert shell.reconcile("team/a").error == "deleted"
    assert shell.capacity.active == 1 and shell.batcher.registered() == 1
    shell.rollouts.put(rollout_doc(name="c"))
    assert shell.reconcile("team/c").phase is Phase.PROGRESSING


def test_a_failure_inside_decide_holds_instead_of_crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.run(lambda s: s.routes.route("team").get_weights() == Weights(20, 80))

    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("rollout.runtime.reconciling.decide", broken)
    shell.tick()
    assert "internal error" in shell.rollouts.status("team/shop")["message"]
    assert shell.routes.route("team").get_weights() == Weights(20, 80)


def test_not_leader_anywhere_writes_nothing_at_all() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc())
    shell.leadership.leader = False
    for _ in range(3):
        assert shell.tick().error
    assert shell.rollouts.writes == [] and shell.events.recorded == []


def test_timers_are_computed_from_the_stored_state() -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(steps=[{"setWeight": 20}, {"pause": {"duration": "7s"}}, {"setWeight": 100}]))
    shell.run(lambda s: s.rollouts.status("team/shop")["state"]["step"] == 1)
    state = shell.rollouts.status("team/shop")["state"]
    outcome = shell.reconcile()
    assert outcome.next_at is not None
    started = shell.clock.now.fromisoformat(state["stepStartedAt"])
    assert outcome.next_at == started + timedelta(seconds=7)


@pytest.mark.parametrize(
    ("prometheus", "refused"),
    [
        ({"endpoint": "team-prom"}, False),
        ({"endpoint": "someone-elses"}, True),
        ({"address": "https://allowed.example/api"}, False),
        ({"address": "http://attacker.example:9090"}, True),
    ],
)
def test_a_policy_picks_only_prometheus_endpoints_the_platform_allows(
    prometheus: dict[str, str], refused: bool
) -> None:
    shell = Shell()
    shell.rollouts.put(rollout_doc(prometheus=prometheus))
    shell.reconcile()
    assert (shell.phase() == "Invalid") is refused
    assert bool(shell.routes.route("team").writes) is not refused


def test_without_the_admission_policy_nobody_is_trusted_not_even_the_daemons_name() -> None:
    shell = Shell()
    shell.reconciler.commands_verified = lambda: False
    doc = rollout_doc(steps=[{"setWeight": 20}, {"approval": {}}])
    doc["spec"]["approvals"] = {"slack": {"channel": "#deploys", "approvers": ["U0OK"]}}
    shell.rollouts.put(doc)
    shell.run(lambda s: s.phase() == "AwaitingApproval")
    ref = f"approval-{shell.rollouts.status('team/shop')['state']['revision']}-1"
    # anyone allowed to create a RolloutCommand could write the daemon's name and an approver's Slack id
    shell.commands.create("team", "shop", CommandKind.APPROVE, by=DAEMON, slack_user="U0OK", ref=ref)
    shell.tick()
    assert shell.phase() == "AwaitingApproval"
    assert "not installed" in shell.commands.acks[-1][1].message
