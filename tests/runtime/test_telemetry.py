"""Telemetry: the daemon's metrics appear, change and vanish as the conventions say (names, labels,
units, one phase series per rollout, every per-rollout series removed on forget and on losing the
lease), read back from the exposition text exactly as Prometheus would scrape it."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.runtime.telemetry import JudgedVerdict, Telemetry

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ARGO_NAMES = ("rollout_info", "rollout_phase", "rollout_reconcile", "rollout_events_total", "analysis_run")


def scrape(telemetry: Telemetry) -> Series:
    """Every sample of the exposition, keyed by (name, sorted labels)."""
    text = generate_latest(telemetry.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def of_rollout(series: Series, namespace: str, name: str) -> dict[str, float]:
    """The samples labelled with this rollout, as ``name{other labels}``."""
    out = {}
    for (metric, labels), value in series.items():
        plain = dict(labels)
        if plain.get("namespace") == namespace and plain.get("name") == name:
            rest = ",".join(f"{k}={v}" for k, v in labels if k not in ("namespace", "name"))
            out[f"{metric}{{{rest}}}"] = value
    return out


def verdict(kind: VerdictKind, *checks: tuple[str, float | None, float | None, float | None]) -> Verdict:
    return Verdict(
        kind=kind,
        checks=tuple(
            Check(name=n, verdict=kind, value=v, limit=lim, evidence=e, threshold=4.6 if e is not None else None)
            for n, v, lim, e in checks
        ),
        enough_data=True,
        summary="",
    )


def observe(t: Telemetry, name: str = "recs", *, phase: str = "Progressing", v: JudgedVerdict | None = None) -> None:
    t.observe("shop", name, phase=phase, step=2, steps=5, canary_weight=25, desired_canary_weight=50, verdict=v)


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def test_a_rollout_is_exported_with_separate_labels_and_base_units(telemetry: Telemetry) -> None:
    observe(telemetry, v=verdict(VerdictKind.PASS, ("errorRate", 0.004, 0.01, -1.5)))
    assert of_rollout(scrape(telemetry), "shop", "recs") == {
        "rolloutd_rollout_info{phase=Progressing}": 1,
        "rolloutd_rollout_step{}": 2,
        "rolloutd_rollout_steps{}": 5,
        "rolloutd_rollout_canary_weight_ratio{}": 0.25,
        "rolloutd_rollout_desired_canary_weight_ratio{}": 0.5,
        "rolloutd_promotions_total{}": 0,
        "rolloutd_rollbacks_total{}": 0,
        "rolloutd_verdict_info{verdict=pass}": 1,
        "rolloutd_verdict_check_value{check=errorRate}": 0.004,
        "rolloutd_verdict_check_limit{check=errorRate}": 0.01,
        "rolloutd_verdict_check_evidence{check=errorRate}": -1.5,
        "rolloutd_verdict_check_evidence_threshold{check=errorRate}": 4.6,
    }


def test_the_phase_is_one_series_whose_label_is_replaced(telemetry: Telemetry) -> None:
    for phase in ("Pending", "Progressing", "Paused", "Progressing", "Promoted"):
        observe(telemetry, phase=phase)
        phases = [k for k in of_rollout(scrape(telemetry), "shop", "recs") if k.startswith("rolloutd_rollout_info")]
        assert phases == [f"rolloutd_rollout_info{{phase={phase}}}"]


def test_verdict_series_follow_the_last_verdict_and_vanish_with_it(telemetry: Telemetry) -> None:
    observe(telemetry, v=verdict(VerdictKind.HOLD, ("errorRate", 0.01, 0.02, 0.5), ("latency", 0.2, 0.3, 0.1)))
    observe(telemetry, v=verdict(VerdictKind.FAIL, ("latency", 0.9, 0.3, None)))
    series = of_rollout(scrape(telemetry), "shop", "recs")
    verdicts = {k: v for k, v in series.items() if k.startswith("rolloutd_verdict")}
    assert verdicts == {
        "rolloutd_verdict_info{verdict=fail}": 1,
        "rolloutd_verdict_check_value{check=latency}": 0.9,
        "rolloutd_verdict_check_limit{check=latency}": 0.3,
    }
    observe(telemetry, v=None)
    assert not [k for k in of_rollout(scrape(telemetry), "shop", "recs") if k.startswith("rolloutd_verdict")]


def test_forget_removes_every_series_of_that_rollout_only(telemetry: Telemetry) -> None:
    observe(telemetry, "recs", v=verdict(VerdictKind.PASS, ("errorRate", 0.001, 0.01, -3.0)))
    observe(telemetry, "cart", v=verdict(VerdictKind.PASS, ("errorRate", 0.002, 0.01, -2.0)))
    telemetry.rolled_back("shop", "recs")
    telemetry.forget("shop", "recs")
    series = scrape(telemetry)
    assert of_rollout(series, "shop", "recs") == {}
    assert len(of_rollout(series, "shop", "cart")) == 12
    telemetry.forget("shop", "cart")
    assert of_rollout(scrape(telemetry), "shop", "cart") == {}
    assert telemetry.rollouts() == []


def test_promotions_and_rollbacks_are_counted(telemetry: Telemetry) -> None:
    observe(telemetry, phase="Promoted")
    telemetry.promoted("shop", "recs")
    telemetry.promoted("shop", "recs")
    telemetry.rolled_back("shop", "recs")
    series = of_rollout(scrape(telemetry), "shop", "recs")
    assert (series["rolloutd_promotions_total{}"], series["rolloutd_rollbacks_total{}"]) == (2, 1)


def test_leadership_matches_what_the_daemon_sets_and_a_standby_exports_no_rollouts(telemetry: Telemetry) -> None:
    def leader() -> tuple[float, float, float]:
        s = scrape(telemetry)
        return s[("rolloutd_leader", ())], s[("rolloutd_leader_shards", ())], s[("rolloutd_shards", ())]

    assert leader() == (0, 0, 1)
    telemetry.set_leader(True)
    observe(telemetry)
    assert leader() == (1, 1, 1)
    telemetry.set_leader({0, 3}, shards=4)
    assert leader() == (1, 2, 4)
    assert telemetry.rollouts() == [("shop", "recs")]
    telemetry.set_leader(set(), shards=4)
    assert leader() == (0, 0, 4)
    assert of_rollout(scrape(telemetry), "shop", "recs") == {}


def test_daemon_wide_metrics(telemetry: Telemetry) -> None:
    telemetry.reconciled(0.03)
    telemetry.reconciled(0.2)
    telemetry.reconcile_error("KubeError")
    telemetry.api_error("KubeConflict")
    telemetry.api_error("KubeConflict")
    telemetry.prometheus_error("unavailable")
    telemetry.scheduled(1.5)
    telemetry.scheduled(-0.01)  # early: counted as no lag
    telemetry.set_backlog(7)
    telemetry.coalesced(3)
    s = scrape(telemetry)
    assert s[("rolloutd_reconcile_duration_seconds_count", ())] == 2
    assert s[("rolloutd_reconcile_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert s[("rolloutd_reconcile_errors_total", (("kind", "KubeError"),))] == 1
    assert s[("rolloutd_api_errors_total", (("kind", "KubeConflict"),))] == 2
    assert s[("rolloutd_prometheus_errors_total", (("outcome", "unavailable"),))] == 1
    assert s[("rolloutd_prometheus_errors_total", (("outcome", "query-error"),))] == 0
    assert s[("rolloutd_scheduler_lag_seconds_count", ())] == 2
    assert s[("rolloutd_scheduler_lag_seconds_sum", ())] == 1.5
    assert s[("rolloutd_scheduler_lag_seconds_bucket", (("le", "0.01"),))] == 1
    assert s[("rolloutd_scheduler_backlog", ())] == 7
    assert s[("rolloutd_scheduler_coalesced_total", ())] == 3


def test_names_follow_the_conventions_and_avoid_argo_rollouts(telemetry: Telemetry) -> None:
    observe(telemetry, v=verdict(VerdictKind.PASS, ("errorRate", 0.001, 0.01, -3.0)))
    telemetry.api_error("KubeError")
    text = generate_latest(telemetry.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_gc_objects_collected", "python_info"} <= (
        families.keys()
    )
    build = families["rolloutd_build_info"].samples[0]
    assert build.name == "rolloutd_build_info"
    assert set(build.labels) == {"version", "python_version"}
    ours = {n: f for n, f in families.items() if not n.startswith(("process_", "python_"))}
    assert all(n.startswith("rolloutd_") for n in ours), sorted(ours)
    for family in ours.values():
        assert "percent" not in family.name
        assert not family.name.startswith(ARGO_NAMES)
        for sample in family.samples:
            assert "rollout" not in sample.labels, sample  # no combined ns/name label
            if {"namespace", "name"} & sample.labels.keys():
                assert {"namespace", "name"} <= sample.labels.keys()
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
    assert "_created" not in text


def _model_of(ops: Iterable[tuple[str, str]]) -> dict[str, str]:
    alive: dict[str, str] = {}
    for op, arg in ops:
        name, phase = arg.split(":")
        if op == "observe":
            alive[name] = phase
        else:
            alive.pop(name, None)
    return alive


PHASES = ("Pending", "Progressing", "Paused", "Promoted", "RolledBack")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["observe", "forget"]),
            st.builds(lambda n, p: f"{n}:{p}", st.sampled_from(["a", "b", "c"]), st.sampled_from(PHASES)),
        ),
        max_size=25,
    )
)
def test_series_exist_exactly_for_observed_and_not_forgotten_rollouts(ops: list[tuple[str, str]]) -> None:
    t = Telemetry(runtime_collectors=False)
    for op, arg in ops:
        name, phase = arg.split(":")
        if op == "observe":
            observe(t, name, phase=phase, v=verdict(VerdictKind.HOLD, ("errorRate", 0.1, 0.2, 0.0)))
        else:
            t.forget("shop", name)
    series = scrape(t)
    for name in ("a", "b", "c"):
        exported = of_rollout(series, "shop", name)
        expected = _model_of(ops).get(name)
        if expected is None:
            assert exported == {}
        else:
            assert [k for k in exported if k.startswith("rolloutd_rollout_info")] == [
                f"rolloutd_rollout_info{{phase={expected}}}"
            ]
            assert len(exported) == 12


def test_core_verdicts_satisfy_the_protocol() -> None:
    v: JudgedVerdict = verdict(VerdictKind.PASS)  # mypy checks the structural match
    assert v.kind.value == "pass"
