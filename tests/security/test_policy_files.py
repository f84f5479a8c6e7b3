"""Item 5: a hostile policy file cannot take the daemon down, and ``rollout validate`` cannot be hung.

The real daemon process (``rollout run``) on a real API server, with a policy directory holding a
484-byte-class alias bomb, a FIFO and a ``/dev/zero`` symlink named ``*.yaml``, a 20 MiB file and a
file with too many steps next to one good policy whose Rollout has a 253-character name: the good
one is applied, ``/healthz`` answers throughout, memory stays under the Deployment's limit, every bad
file is logged (warnings for the non-regular ones), and when the good file turns bad an Event is
recorded on its 253-character Rollout. ``rollout validate`` is run as a subprocess on each file, with
its time and peak RSS measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rollout.kube.client import KubeClient
from rollout.kube.crd import ROLLOUTS
from rollout.policy.composing import MAX_NODES
from tests.deploy.test_crd import install_crd
from tests.harness.kube import REPO_ROOT, ControlPlane, free_port
from tests.harness.stack import Daemon, wait_until
from tests.policy.test_limits import alias_bomb
from tests.security.conftest import Ledger

LIMIT_KIB = 256 * 1024
LONG_NAME = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61


def policy(name: str, namespace: str, weights: tuple[int, ...] = (5, 100)) -> str:
    steps = ", ".join(f"{{setWeight: {w}}}" for w in weights)
    return (
        "apiVersion: delivery.rollout.dev/v1alpha1\nkind: Rollout\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec:\n  router: {gatewayRoute: {name: missing-route}}\n  stable: web-v1\n  canary: web-v2\n"
        f"  steps: [{steps}]\n  analysis: {{slos: {{errorRate: {{max: 1%}}}}}}\n"
    )


def hostile_directory(directory: Path, namespace: str) -> dict[str, str]:
    """Write the attack files; returns file name -> what it is."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bomb.yaml").write_text(alias_bomb())
    os.mkfifo(directory / "pipe.yaml")
    (directory / "zero.yaml").symlink_to("/dev/zero")
    with (directory / "big.yaml").open("w") as f:
        f.write(policy("big", namespace))
        f.write("#" * (20 << 20))
    many = ", ".join(["{setWeight: 1}"] * 8000)
    (directory / "steps.yaml").write_text(
        policy("steps", namespace).replace("[{setWeight: 5}, {setWeight: 100}]", f"[{many}]")
    )
    (directory / "good.yaml").write_text(policy(LONG_NAME, namespace))
    return {
        "bomb.yaml": "alias bomb",
        "pipe.yaml": "FIFO",
        "zero.yaml": "symlink to /dev/zero",
        "big.yaml": "20 MiB",
        "steps.yaml": "8,000 steps",
    }


def _status(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"peak_kib": int(fields["VmHWM"].split()[0]), "threads": int(fields["Threads"])}


@pytest.mark.kube
def test_hostile_policy_files_do_not_block_the_daemon(
    control_plane: ControlPlane, kube: KubeClient, namespace: str, tmp_path: Path, ledger: Ledger
) -> None:
    install_crd(control_plane, kube)
    policies = tmp_path / "policies"
    attacks = hostile_directory(policies, namespace)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(
        {
            "ROLLOUT_KUBE__KUBECONFIG": str(control_plane.kubeconfig),
            "ROLLOUT_PORT": str(free_port()),
            "ROLLOUT_HOST": "127.0.0.1",
            "ROLLOUT_POLICY_DIR": str(policies),
            "ROLLOUT_POLICY_POLL_SECONDS": "0.5",
            "ROLLOUT_WATCH_NAMESPACES": namespace,
            "ROLLOUT_RESYNC_SECONDS": "2",
            "ROLLOUT_LEADER__ENABLED": "false",
            "ROLLOUT_PROMETHEUS__URL": "http://127.0.0.1:9",
            "ROLLOUT_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    daemon = Daemon(env, tmp_path).start()
    assert daemon.process is not None
    probes: list[tuple[int, float]] = []
    try:
        started = time.monotonic()

        def applied() -> bool:
            t0 = time.monotonic()
            probes.append((daemon.get("/healthz")[0], time.monotonic() - t0))
            return bool(kube.get(ROLLOUTS, namespace, LONG_NAME))

        wait_until(applied, timeout=60, interval=0.25, what=f"the good policy applied\n{daemon.tail()}")
        to_apply = time.monotonic() - started
        for _ in range(8):  # the directory is re-read on every change; keep probing a while
            t0 = time.monotonic()
            probes.append((daemon.get("/healthz")[0], time.monotonic() - t0))
            time.sleep(0.25)
        # the good file turns bad: its 253-character Rollout gets an Event (its name must fit)
        (policies / "good.yaml").write_text(policy(LONG_NAME, namespace, weights=(50, 10, 100)))

        def event() -> dict[str, Any] | None:
            items = control_plane.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")["items"]
            return next((e for e in items if e["regarding"]["name"] == LONG_NAME), None)

        recorded = wait_until(event, timeout=30, what=f"an Event on the 253-character Rollout\n{daemon.tail()}")
        status = _status(daemon.process.pid)
    finally:
        daemon.terminate(timeout=20)
    logs = daemon.logs()
    text = daemon.log_file.read_text()
    warned = {Path(e["file"]).name for e in logs if e.get("event") == "rollout.policy-warning"}
    invalid = {Path(e["file"]).name for e in logs if e.get("event") == "rollout.policy-invalid"}
    up = [t for s, t in probes if s == 200]
    ledger.note(
        f"daemon with {len(attacks)} hostile policy files + 1 good: good applied after {to_apply:.1f}s, "
        f"{len(up)}/{len(probes)} /healthz probes 200 once listening (max {max(up) * 1000:.0f} ms), "
        f"peak RSS {status['peak_kib'] / 1024:.1f} MiB, threads {status['threads']}"
    )
    ledger.rss("daemon, hostile policy directory", status["peak_kib"])
    for name in attacks:
        ledger.case(refused=name in warned | invalid, traceback="Traceback" in text)
    assert warned == {"pipe.yaml", "zero.yaml"}
    assert {"bomb.yaml", "big.yaml", "steps.yaml", "good.yaml"} <= invalid
    assert "Traceback" not in text
    assert status["peak_kib"] < LIMIT_KIB
    assert len(recorded["metadata"]["name"]) <= 253
    assert recorded["reason"] == "InvalidPolicyFile"
    first_up = next(i for i, (s, _) in enumerate(probes) if s == 200)
    assert all(s == 200 for s, _ in probes[first_up:]), probes
    assert max(up) < 2.0


# ``rollout validate`` that reports its own peak RSS (VmHWM is per address space, so it is the
# command's own; a parent's rusage would count the pages it shared with the child before exec).
_VALIDATE = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    sys.stderr.write('\\nVmHWM ' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "from rollout.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_validate(path: Path, timeout: float = 60) -> tuple[int, str, float, int]:
    """``rollout validate PATH`` as a subprocess: (exit code, stderr+stdout, seconds, peak RSS KiB)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", _VALIDATE, "validate", "-q", str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = started + timeout
    try:
        output, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    text = output.decode(errors="replace")
    peaks = [int(line.split()[1]) for line in text.splitlines() if line.startswith("VmHWM ")]
    return process.returncode, text, time.monotonic() - started, peaks[-1] if peaks else 0


def test_validate_refuses_every_hostile_file_quickly(tmp_path: Path, ledger: Ledger) -> None:
    attacks = hostile_directory(tmp_path, "default")
    million = tmp_path / "million.yaml"
    with million.open("w") as f:
        f.write(policy("million", "default").replace("  steps: [{setWeight: 5}, {setWeight: 100}]\n", "  steps:\n"))
        f.write("    - setWeight: 100\n" * 1_000_000)
    attacks["million.yaml"] = "a million steps (21 MB)"
    rows = []
    for name, what in attacks.items():
        code, output, seconds, peak = run_validate(tmp_path / name)
        rows.append(f"{what}: exit {code}, {seconds:.2f}s, peak RSS {peak / 1024:.0f} MiB")
        ledger.case(refused=code == 1, traceback="Traceback" in output, hung=code == -9)
        ledger.rss(f"rollout validate, {what}", peak)
        assert code == 1, output
        assert "Traceback" not in output
        assert seconds < 30
        assert peak < LIMIT_KIB
    code, output, seconds, peak = run_validate(tmp_path)
    rows.append(f"the whole directory: exit {code}, {seconds:.2f}s, peak RSS {peak / 1024:.0f} MiB")
    assert code == 1
    assert "pipe.yaml:0:0: warning: a FIFO" in output
    assert f"past {MAX_NODES:,} YAML nodes once its aliases are expanded" in output
    ledger.note("rollout validate: " + "; ".join(rows))
