"""Every query of the Grafana dashboard returns data from a real Prometheus while a rollout runs: the
local stack (kube-apiserver, exporter, Prometheus, the daemon as a subprocess) with Prometheus also
scraping the daemon's /metrics, a canary that reaches a manual pause with a verdict, and each panel's
and variable's query sent to Prometheus with Grafana's variables filled in as Grafana would."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.test_alerts import DASHBOARD
from tests.e2e.conftest import apply, fast_policy
from tests.e2e.observing import wait_status
from tests.harness.stack import ROUTE, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kube, pytest.mark.prometheus]

GRAFANA_VARIABLES = {"$namespace": ".*", "$name": ".*", "$__rate_interval": "1m", "$__range": "5m"}
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<metric>.+),\s*)?(?P<label>\w+)\)$")


def dashboard_queries() -> dict[str, str]:
    """``panel/legend`` (or ``$variable``) -> PromQL ready to send."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = {
        f"{p['title']}/{t.get('legendFormat') or t['refId']}": t["expr"]
        for p in board["panels"]
        for t in p.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["query"]["query"])
            assert match, variable["query"]
            queries[f"${variable['name']}"] = f"group by ({match['label']}) ({match['metric']})"
    for name, expr in queries.items():
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{name}: a Grafana variable this test does not fill in: {expr}"
        queries[name] = expr
    return queries


@pytest.fixture(scope="module")
def running() -> Iterator[Stack]:
    """The stack with one rollout held at a manual pause (20% -> 50% -> pause), judged and scraped."""
    with Stack(total_rps=200.0) as stack:
        assert stack.prometheus is not None
        ns = "dashboard"
        stack.plane.create_namespace(ns)
        stack.add_route(ns, ROUTE)
        daemon = stack.daemon(namespaces=[ns], name="dashboard-daemon")  # with leader election
        stack.prometheus.set_targets([stack.exporter.address, f"127.0.0.1:{daemon.port}"])
        policy = fast_policy(ns)
        policy["spec"]["steps"] = [{"setWeight": 20}, {"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
        apply(stack, policy)
        wait_status(
            stack,
            ns,
            lambda s: s.get("phase") == "Paused" and (s.get("state") or {}).get("verdict"),
            timeout=120,
            what="paused at 50% with a verdict",
            daemons=(daemon,),
        )
        prometheus = stack.prometheus
        wait_until(
            lambda: (
                prometheus.query('rolloutd_rollout_info{phase="Paused"}')
                and prometheus.query("rolloutd_verdict_check_value")
            ),
            timeout=30,
            what="Prometheus to scrape the daemon's paused rollout",
        )
        yield stack


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result]


def test_every_dashboard_query_returns_data_while_a_rollout_runs(running: Stack) -> None:
    prometheus = running.prometheus
    assert prometheus is not None
    queries = dashboard_queries()
    empty, nan = [], []
    for name, expr in queries.items():
        result = prometheus.query(expr)
        if not result:
            empty.append(f"{name}: {expr}")
        elif any(math.isnan(v) for v in _values(result)):
            nan.append(f"{name}: {expr}")
    assert empty == [], "queries without data"
    assert nan == [], "queries answering NaN"


def test_the_dashboard_shows_the_paused_rollout(running: Stack) -> None:
    prometheus = running.prometheus
    assert prometheus is not None
    queries = dashboard_queries()
    phases = {
        r["metric"]["phase"]: float(r["value"][1]) for r in prometheus.query(queries["Rollouts by phase/{{phase}}"])
    }
    assert phases == {"Paused": 1.0}
    weight = _values(prometheus.query(queries["Canary weight/{{namespace}}/{{name}}"]))
    assert weight == [0.5]
    checks = queries["Checks: value and limit/{{namespace}}/{{name}} {{check}}"]
    # A check's value is a canary/stable ratio: it exists once stable has had an event of that kind
    # (the limit always does); both SLOs are judged.
    assert {r["metric"]["check"] for r in prometheus.query(checks)} >= {"errorRate"}
    limits = checks.replace("rolloutd_verdict_check_value", "rolloutd_verdict_check_limit")
    assert {r["metric"]["check"] for r in prometheus.query(limits)} >= {"errorRate", "latency"}
    leading = _values(prometheus.query(queries["Leadership/shards led"]))
    assert leading == [1.0]
