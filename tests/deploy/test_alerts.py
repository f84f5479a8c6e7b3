"""The alerts and the dashboard against the metrics: ``promtool check rules`` on the rule file and on
the PrometheusRule component, ``promtool test rules`` on tests/deploy/promtool (which fails when an
alert loses its failover-proof aggregation), and every metric name the rules and the dashboard use
is one the daemon's telemetry exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.runtime.telemetry import Telemetry
from tests.deploy.manifests import COMPONENTS, documents, find
from tests.harness.deploy_tools import CHART

RULES = CHART / "files" / "rolloutd.rules.yaml"
DASHBOARD = CHART / "files" / "rolloutd-dashboard.json"
UNIT_TESTS = Path(__file__).parent / "promtool" / "rolloutd.rules.test.yaml"
_METRIC = re.compile(r"\b((?:rolloutd|process|python)_[a-z_]+)\b")
_NOT_METRICS = re.compile(r'\b(?:by|without|on|ignoring)\s*\([^)]*\)|\{[^}]*\}|"[^"]*"')


def metrics_in(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label names in by/on clauses and selectors are not)."""
    return set(_METRIC.findall(_NOT_METRICS.sub(" ", expr)))


def promtool() -> str:
    beside = Path(os.environ.get("PROMETHEUS_BIN", "/nonexistent")).with_name("promtool")
    found = shutil.which("promtool") or (str(beside) if os.access(beside, os.X_OK) else None)
    if found is None:
        pytest.fail("promtool not found: `make prometheus` installs Debian's prometheus package, which has it")
    return found


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [promtool(), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def test_promtool_checks_the_rule_file_and_the_prometheusrule(tmp_path: Path) -> None:
    component = find(documents(COMPONENTS / "prometheusrule" / "prometheusrule.yaml"), "PrometheusRule")
    spec = tmp_path / "component.rules.yaml"
    spec.write_text(yaml.safe_dump(component["spec"]))
    done = run_promtool("check", "rules", RULES, spec)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS: 8 rules found") == 2, done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = run_promtool("test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_catch_an_alert_that_forgets_failover(tmp_path: Path) -> None:
    """Without ``max by`` the paused alert starts over when the series move to the other replica."""
    broken = RULES.read_text().replace(
        'max by (namespace, name, phase) (rolloutd_rollout_info{phase=~"Paused|AwaitingApproval"})',
        'rolloutd_rollout_info{phase=~"Paused|AwaitingApproval"}',
    )
    assert broken != RULES.read_text()
    rules_dir = tmp_path / "deploy" / "helm" / "rollout" / "files"
    rules_dir.mkdir(parents=True)
    (rules_dir / RULES.name).write_text(broken)
    tests_dir = tmp_path / "tests" / "deploy" / "promtool"
    tests_dir.mkdir(parents=True)
    shutil.copy(UNIT_TESTS, tests_dir)
    done = run_promtool("test", "rules", UNIT_TESTS.name, cwd=tests_dir)
    assert done.returncode != 0
    assert "RolloutPausedTooLong" in done.stdout + done.stderr


def exported_names() -> set[str]:
    """Every sample name a daemon exports once a rollout was judged and each counter moved."""
    t = Telemetry()
    check = Check(name="errorRate", verdict=VerdictKind.PASS, value=0.001, limit=0.01, evidence=-2.0, threshold=4.6)
    verdict = Verdict(kind=VerdictKind.PASS, checks=(check,), enough_data=True, summary="")
    t.observe("shop", "recs", phase="Progressing", step=1, steps=3, canary_weight=20, desired_canary_weight=20,
              verdict=verdict)  # fmt: skip
    t.set_leader(True)
    for record in (t.api_error, t.reconcile_error, t.prometheus_error):
        record("x")
    text = generate_latest(t.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def dashboard_queries() -> list[str]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [v["query"]["query"] for v in board["templating"]["list"] if isinstance(v.get("query"), dict)]
    return queries


def test_every_metric_the_rules_and_the_dashboard_use_is_exported() -> None:
    exported = exported_names()
    rules = yaml.safe_load(RULES.read_text())
    expressions = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for expr in [*expressions, *dashboard_queries()] for m in metrics_in(expr)}
    assert used, "no metric found in the rules or the dashboard"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    alerting = {m for expr in expressions for m in metrics_in(expr)}
    assert {"rolloutd_rollbacks_total", "rolloutd_rollout_info", "rolloutd_leader_shards"} <= alerting


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "rolloutd" and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels}
    assert {"Rollouts by phase", "Canary weight", "Last verdict", "Promotions and rollbacks"} <= titles
    assert {"Reconcile latency", "Scheduler lag and backlog"} <= titles
