"""The CLI through a subprocess, as a user runs it: exit codes, output formats, no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "policies" / "recommendations-canary.yaml"
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))


def rollout(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def simulate_json(*args: str) -> dict[str, Any]:
    result = rollout("simulate", str(SEED), "--json", *args)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_every_example_policy_validates() -> None:
    result = rollout("validate", *map(str, POLICIES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(POLICIES)} rollout(s) valid" in result.stderr


def test_validate_reports_every_problem_with_file_line_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: delivery.rollout.dev/v1alpha1\n"
        "kind: Rollout\n"
        "metadata: {name: web}\n"
        "spec:\n"
        "  router: {gatewayRoute: {name: gr}}\n"
        "  stable: a\n"
        "  canary: b\n"
        "  steps:\n"
        "    - setWeight: 150\n"
        "  analysis:\n"
        "    intervall: 30s\n"
    )
    result = rollout("validate", str(bad))
    assert result.returncode == 1
    no_traceback(result)
    lines = result.stdout.strip().splitlines()
    assert any(re.match(rf"{re.escape(str(bad))}:9:\d+: spec\.steps\[0\]\.setWeight: ", ln) for ln in lines), lines
    assert any(":11:5: spec.analysis.intervall: " in ln and "did you mean `interval`" in ln for ln in lines), lines


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\xff\xfe binary", b"- a\n- b\n", b"key: [unclosed\n"],
    ids=["empty", "binary", "list", "syntax"],
)
def test_validate_never_shows_a_traceback(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_bytes(content)
    result = rollout("validate", str(bad))
    assert result.returncode == 1
    no_traceback(result)
    assert result.stdout.startswith(str(bad) + ":")


def test_validate_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = rollout("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    no_traceback(result)
    assert "nope.yaml" in result.stdout


def test_simulate_error_spike_at_step_3_rolls_back_and_names_the_slo() -> None:
    data = simulate_json("--scenario", "error-spike", "--at-step", "3")
    assert data["phase"] == "RolledBack"
    assert (data["canaryWeight"], data["stableWeight"]) == (0, 100)
    verdict = data["lastVerdict"]
    failed = [c for c in verdict["checks"] if c["verdict"] == "fail"]
    assert [c["name"] for c in failed] == ["errorRate"]
    assert failed[0]["value"] > failed[0]["limit"]  # canary/stable error ratio above the tolerated ratio
    assert "canary" in failed[0]["detail"] and "vs stable" in failed[0]["detail"]
    assert failed[0]["canaryRate"] > 0.05 > failed[0]["stableRate"]  # rates as fractions, never percents of percents
    assert "errorRate" in data["endReason"]
    assert {"phase", "canaryWeight", "stableWeight", "events"} <= data.keys()
    assert data["faultStartedAt"] is not None


def test_simulate_healthy_promotes() -> None:
    data = simulate_json("--scenario", "healthy")
    assert data["phase"] == "Promoted"
    assert (data["canaryWeight"], data["stableWeight"]) == (100, 0)
    weights = [e["canaryWeight"] for e in data["events"]]
    assert weights == sorted(weights)  # traffic only ever moved toward the canary


def test_simulate_no_traffic_never_promotes_and_says_why() -> None:
    data = simulate_json("--scenario", "no-traffic")
    assert data["phase"] not in ("Promoted", "Promoting")
    assert all(e["canaryWeight"] <= 5 for e in data["events"])
    assert "progressDeadline" in data["message"]


def test_simulate_latency_spike_rolls_back_on_latency() -> None:
    data = simulate_json("--scenario", "latency-spike", "--at-step", "2")
    assert data["phase"] == "RolledBack"
    failed = [c["name"] for c in data["lastVerdict"]["checks"] if c["verdict"] == "fail"]
    assert "latency" in failed


def test_simulate_timeline_and_chart(tmp_path: Path) -> None:
    chart = tmp_path / "run.svg"
    result = rollout("simulate", str(SEED), "--scenario", "error-spike", "--at-step", "2", "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert "result: RolledBack" in result.stdout
    svg = chart.read_text()
    assert svg.startswith("<svg") and "stroke-dasharray" in svg and "polyline" in svg


def test_simulate_rejects_a_step_out_of_range() -> None:
    result = rollout("simulate", str(SEED), "--at-step", "99")
    assert result.returncode == 2
    assert "--at-step must be between 1 and" in result.stderr


def test_plan_shows_steps_and_minimum_time() -> None:
    result = rollout("plan", str(SEED), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["canaryWeight"] for s in data["steps"]] == [5, 10, 25, 25, 50, 100]
    assert data["minTimeToPromoteSeconds"] == 5 * 60 + 2 * 60
    text = rollout("plan", str(SEED))
    assert "minimum time to promote: 07m00s" in text.stdout


def test_schema_is_json_schema_with_camel_case_fields() -> None:
    result = rollout("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "spec" in schema["properties"]
    assert "setWeight" in json.dumps(schema)


def test_help_lists_every_command() -> None:
    result = rollout("--help")
    for command in ("validate", "plan", "simulate", "schema"):
        assert command in result.stdout
