"""Crash safety: the daemon is killed with SIGKILL at random moments (seeded) while several
rollouts run, restarted at once, and every rollout still finishes without breaking an invariant.

Observed from outside, by polling every route every 0.2 s for the whole run: weights always sum
to 100 and name only the two backends; the canary weight never goes down except in a rollback
(and then straight to 0); no step is skipped (healthy runs show every step's weight, in order);
no notification key is recorded twice in the status and no one-off Event is recorded twice.
The number of trials (kills) and what each round did are recorded in the report file.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import DaemonFactory, apply, fast_policy, forget_namespace, new_namespace
from tests.e2e.observing import RouteRecorder, events, record, status
from tests.harness.stack import CANARY, Daemon, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]
SEED = 20261126
STEPS = [10, 25, 50, 75, 100]
ROLLOUTS_PER_ROUND = 3
MIN_TRIALS = 20


@pytest.fixture
def healthy_canary(stack: Stack) -> Iterator[None]:
    yield
    stack.exporter.set_backend(CANARY, error_rate=0.001)


def test_sigkill_at_random_moments_always_resumes(stack: Stack, daemons: DaemonFactory, healthy_canary: None) -> None:
    rng = random.Random(SEED)
    # Leader election on, with a fixed identity: a restarted pod keeps its name and its lease.
    daemon = daemons(namespaces=[], name="crash-daemon", ROLLOUT_LEADER__ENABLED="true")
    trials, rounds = 0, list[dict[str, object]]()
    kinds = iter(["healthy", "healthy", "spike"])
    while trials < MIN_TRIALS or len(rounds) < 3:
        kind = next(kinds, "healthy")
        kills = rng.randint(3, 6)
        rounds.append(run_round(stack, daemon, rng, kind=kind, kills=kills))
        trials += kills
    record("sigkill_trials", {"seed": SEED, "trials": trials, "rounds": rounds})
    assert trials >= MIN_TRIALS


def run_round(stack: Stack, daemon: Daemon, rng: random.Random, *, kind: str, kills: int) -> dict[str, object]:
    namespaces = [new_namespace(stack) for _ in range(ROLLOUTS_PER_ROUND)]
    routes = {ns: RouteRecorder(stack, ns).start() for ns in namespaces}
    for ns in namespaces:
        policy = fast_policy(ns, stepDuration="4s")
        policy["spec"]["steps"] = [{"setWeight": w} for w in STEPS]
        apply(stack, policy)
    delays = []
    began = time.monotonic()
    try:
        for kill in range(kills):
            delay = round(rng.uniform(0.3, 5.0), 2)
            delays.append(delay)
            time.sleep(delay)
            daemon.kill()
            if kind == "spike" and kill == 0:
                stack.exporter.set_backend(CANARY, error_rate=0.3)
            daemon.start()
        finals = {
            ns: wait_until(lambda ns=ns: final_phase(stack, ns), timeout=240, interval=0.5, what=f"{ns}: a final phase")
            for ns in namespaces
        }
    except TimeoutError:
        print(daemon.tail(80))
        raise
    finally:
        for recorder in routes.values():
            recorder.stop()
        stack.exporter.set_backend(CANARY, error_rate=0.001)
        for ns in namespaces:
            forget_namespace(stack, ns)
    for ns in namespaces:
        check_invariants(stack, ns, routes[ns], finals[ns], kind)
    return {
        "kind": kind,
        "kills": kills,
        "delays_seconds": delays,
        "finals": sorted(finals.values()),
        "seconds": round(time.monotonic() - began, 1),
    }


def final_phase(stack: Stack, ns: str) -> str | None:
    phase = status(stack, ns).get("phase")
    return str(phase) if phase in ("Promoted", "RolledBack") else None


def check_invariants(stack: Stack, ns: str, route: RouteRecorder, final: str, kind: str) -> None:
    canaries = route.canaries()
    assert route.sums() == {100}, f"{ns}: weights must always sum to 100: {route.sums()}"
    if kind == "healthy":
        assert final == "Promoted", f"{ns}: a healthy canary ends Promoted, not {final}"
    if final == "Promoted":
        assert canaries == [0, *STEPS], f"{ns}: every step, in order, never backwards: {canaries}"
    else:
        rising, last = canaries[:-1], canaries[-1]
        assert last == 0, f"{ns}: a rollback ends at stable 100: {canaries}"
        assert rising == [0, *STEPS[: len(rising) - 1]], f"{ns}: steps in order until the rollback: {canaries}"
    state = status(stack, ns)["state"]
    notified = state["notified"]
    assert len(notified) == len(set(notified)), f"{ns}: a notification key twice: {notified}"
    reasons = Counter(e["reason"] for e in events(stack, ns))
    for once in ("Started", "Promoted", "RolledBack"):
        assert reasons[once] <= 1, f"{ns}: Event {once} recorded {reasons[once]} times"
    assert reasons["Step"] <= len(STEPS), f"{ns}: {reasons}"
