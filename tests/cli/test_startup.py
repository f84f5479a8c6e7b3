"""What the CLI loads: offline commands (validate, plan, simulate) never import the Kubernetes
client, slack-sdk, apscheduler, pydantic-settings or the HTTP servers; ``run``'s flags are
settings, and a bad one is a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "policies" / "recommendations-canary.yaml"
DAEMON_STACK = ("kubernetes", "slack_sdk", "apscheduler", "pydantic_settings", "prometheus_api_client", "waitress")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", str(SEED)],
        ["plan", str(SEED)],
        ["simulate", str(SEED), "--scenario", "healthy"],
        ["simulate", str(SEED), "--scenario", "error-spike", "--at-step", "3", "--json"],
    ],
    ids=["validate", "plan", "simulate", "simulate-json"],
)
def test_offline_commands_do_not_load_the_daemon_stack(args: list[str]) -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from rollout.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    code = main({args!r})\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({DAEMON_STACK!r}))\n"
        "print(json.dumps({'code': code, 'loaded': loaded}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["loaded"] == [], f"rollout {args[0]} imported {result['loaded']}"
    assert result["code"] in (0, 1)


def test_a_bad_run_flag_is_one_line_naming_the_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "run", "--shards", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("rollout run: invalid settings: leader.shards")


def test_run_help_lists_the_shard_flags_and_every_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "run", "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0
    assert "--shards N" in done.stdout and "--expected-replicas N" in done.stdout
    assert "ROLLOUT_LEADER__SHARDS" in done.stdout and "ROLLOUT_STATUS_FLUSH_SECONDS" in done.stdout
