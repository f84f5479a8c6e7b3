"""``make demo``: the main job, for real, on the embedded local stack.

Starts a real kube-apiserver + etcd (with the Rollout CRD and the App Mesh GatewayRoute CRD), the
seed's GatewayRoute, the synthetic traffic exporter, a real Prometheus scraping it, a mesh thread
that splits traffic by the route's live weights, and the daemon (``rollout run``) watching a
policy directory. Then:

1. the seed canary policy (``policies/recommendations-canary.yaml``, its timings compressed so the
   demo takes minutes, not a quarter of an hour) is written into the policy directory; the daemon
   applies it as a Rollout and walks recommendation-service-v1 -> v2 to Promoted;
2. the next release (v2 -> v3) is written into the same file; v3 starts failing 20% of its
   requests at step 3, and the daemon rolls back to v2 at 100%;
3. the seed's checkout-service A/B test (``policies/checkout-ab.yaml``, timings compressed more):
   the daemon creates a companion GatewayRoute that sends the requests carrying
   ``X-Experiment-ID: beta`` (a tenth of the mesh's synthetic requests) to checkout-service-v2;
   the beta is judged on exactly those requests while everyone else stays on v1, then it takes all
   traffic and the companion is removed.

Progress is shown live; where to look (kubeconfig, ``/metrics``) is printed; everything is torn
down at the end (or on Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from rollout.core.states import PauseReason
from rollout.core.verdicts import VerdictKind
from rollout.kube.rollouts import ROLLOUTS, RolloutObject
from rollout.policy.loading import load_paths
from rollout.policy.models import Rollout
from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.harness.mesh import MeshRoute
from tests.harness.stack import ROOT, Stack, wait_until

SEED = ROOT / "policies" / "recommendations-canary.yaml"
V3 = "recommendation-service-v3"
CHECKOUT_AB = ROOT / "policies" / "checkout-ab.yaml"
AB_SPEED = 60.0  # the A/B policy's 30m pause is a demo's 30s
TOTAL_RPS = 2000.0  # enough traffic that a 5% step is judged in well under a minute


def compressed(policy: Rollout, factor: float) -> dict[str, Any]:
    """The policy as a YAML-ready document with every duration divided by ``factor``."""
    doc = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
    analysis = doc["spec"]["analysis"]
    a = policy.spec.analysis
    analysis["interval"] = _secs(a.interval / factor, floor=2)
    analysis["stepDuration"] = _secs(a.effective_step_duration / factor, floor=4)
    for step, model in zip(doc["spec"]["steps"], policy.spec.steps, strict=True):
        if model.pause is not None and model.pause.duration is not None:
            step["pause"]["duration"] = _secs(model.pause.duration / factor, floor=2)
    doc["spec"]["progressDeadline"] = "5m"
    return doc


def _secs(value: timedelta, floor: int) -> str:
    return f"{max(floor, round(value.total_seconds()))}s"


def checkout_route(namespace: str, name: str, stable: str) -> dict[str, Any]:
    """The checkout-service's GatewayRoute on the ingress gateway: everything to stable."""
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "GatewayRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "virtualGatewayRef": {"name": "ingress-gateway"},
            "httpRoute": {
                "match": {"prefix": "/checkout"},
                "action": {
                    "weightedTargets": [{"virtualService": {"virtualServiceRef": {"name": stable}}, "weight": 100}]
                },
            },
        },
    }


def show(obj: RolloutObject, started: float) -> str:
    s = obj.status
    state = obj.state()
    verdict = state.verdict
    judged = ""
    failed = [c for c in verdict.checks if c.verdict is VerdictKind.FAIL] if verdict is not None else []
    if verdict is not None and failed and (verdict.canary is None or verdict.canary.requests == 0):
        # failed on data taken while the weight was moving: the failing check's own numbers
        check = failed[0]
        judged = f" | fail {check.name}: canary {_rate(check.canary_rate)} vs stable {_rate(check.stable_rate)}"
    elif verdict is not None and verdict.canary is not None:
        c, st = verdict.canary, verdict.stable
        judged = (
            f" | {verdict.kind.value:<4} at this step: canary {c.errors:.0f}/{c.requests:.0f} errors, {c.slow:.0f} slow"
        )
        if st is not None:
            judged += f"; stable {st.errors:.0f}/{st.requests:.0f} errors"
    return (
        f"  {time.monotonic() - started:6.1f}s  {s.get('phase', 'Pending'):<16} "
        f"step {s.get('step', 0)}/{s.get('steps', '?')}  "
        f"canary {s.get('canaryWeight', 0):>3}%  stable {s.get('stableWeight', 100):>3}%{judged}"
    )


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"


def follow(
    stack: Stack,
    namespace: str,
    name: str,
    until: tuple[str, ...],
    *,
    revision: str,
    on_step: dict[int, Any] | None = None,
    timeout: float = 600,
    also: Any = None,
) -> RolloutObject:
    """Print the run's progress until it reaches a phase of ``until`` (``also(obj)``: more to say)."""
    assert stack.kube is not None
    started, last = time.monotonic(), ""
    while time.monotonic() - started < timeout:
        try:
            obj = RolloutObject(stack.kube.get(ROLLOUTS, namespace, name))
        except Exception:  # not applied yet
            time.sleep(0.5)
            continue
        state = obj.state()
        if state.revision == revision:
            line = show(obj, started) + (also(obj) if also is not None else "")
            if line.split("s  ", 1)[-1] != last.split("s  ", 1)[-1]:
                print(line, flush=True)
                last = line
            for step, action in list((on_step or {}).items()):
                if obj.status.get("step", 0) >= step:
                    action()
                    del on_step[step]  # type: ignore[union-attr]
            waiting_on_a_pause_step = state.pause_reason is PauseReason.STEP
            if state.phase.value in until and not waiting_on_a_pause_step:
                return obj
        time.sleep(0.5)
    raise TimeoutError(f"{namespace}/{name} did not reach {until} within {timeout}s")


def run(factor: float, keep: bool) -> int:
    seed = load_paths([SEED])
    seed.raise_for_problems()
    policy = seed.rollouts[0].rollout
    namespace, name = policy.metadata.namespace, policy.metadata.name
    policy_dir = Path(tempfile.mkdtemp(prefix="rollout-demo-policies-"))
    print("rollout demo: starting kube-apiserver + etcd, Prometheus, the traffic exporter and the daemon...")
    ab = load_paths([CHECKOUT_AB]).rollouts[0].rollout
    with Stack(total_rps=TOTAL_RPS) as stack:
        assert stack.kube is not None and stack.prometheus is not None
        stack.add_route(namespace)
        stack.exporter.set_backend(V3, rps=0.0, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120)
        stack.plane.create_namespace(ab.metadata.namespace)
        route = ab.spec.router.ref.name
        for backend in (ab.spec.stable, ab.spec.canary):
            stack.exporter.set_backend(backend, rps=0.0, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120)
        stack.kube.create(
            GATEWAY_ROUTES, ab.metadata.namespace, checkout_route(ab.metadata.namespace, route, ab.spec.stable)
        )
        daemon = stack.daemon(
            namespaces=[namespace, ab.metadata.namespace],
            ROLLOUT_POLICY_DIR=str(policy_dir),
            ROLLOUT_LEADER__ENABLED="false",
            ROLLOUT_LOG_FORMAT="json",
        )
        wait_until(lambda: daemon.get("/readyz")[0] == 200, timeout=60, what="the daemon to be ready")
        print(f"""
  kubeconfig   {stack.plane.kubeconfig}     (kubectl --kubeconfig ... get rollouts -A)
  status       uv run rollout status {name} -n {namespace} --kubeconfig {stack.plane.kubeconfig}
  metrics      http://127.0.0.1:{daemon.port}/metrics   (the daemon)    {stack.prometheus.url} (Prometheus)
  daemon log   {daemon.log_file}
""")
        first = compressed(policy, factor)
        (policy_dir / "recommendations.yaml").write_text(yaml.safe_dump(first, sort_keys=False))
        revision = Rollout.model_validate(first).revision
        print(
            f"1) {policy.spec.stable} -> {policy.spec.canary}: healthy canary "
            f"(seed policy, timings / {factor:g}: interval {first['spec']['analysis']['interval']})"
        )
        done = follow(stack, namespace, name, ("Promoted", "RolledBack", "Paused"), revision=revision)
        print(f"   => {done.status.get('phase')}: {done.state().end_reason or done.status.get('message')}\n")

        second = dict(first, spec=dict(first["spec"], stable=policy.spec.canary, canary=V3))
        (policy_dir / "recommendations.yaml").write_text(yaml.safe_dump(second, sort_keys=False))
        revision = Rollout.model_validate(second).revision
        spiked: dict[str, float] = {}

        def spike() -> None:
            stack.exporter.set_backend(V3, error_rate=0.2)
            spiked["at"] = time.monotonic()
            print("   !! v3 now fails 20% of its requests", flush=True)

        print(f"2) {policy.spec.canary} -> {V3}: the next release, with a bug that shows at step 3")
        done = follow(
            stack, namespace, name, ("RolledBack", "Promoted", "Paused"), revision=revision, on_step={3: spike}
        )
        took = f" {time.monotonic() - spiked['at']:.1f}s after the fault" if "at" in spiked else ""
        print(f"   => {done.status.get('phase')}{took}: {done.state().end_reason}")
        if stack.mesh is not None:
            print(f"   route now: {stack.mesh.weights(namespace, 'recommendation-canary-gateway-route')}\n")
        a_b(stack, policy_dir, ab)
        if keep:
            print("\n--keep: the stack stays up until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    print("rollout demo: stopped everything and removed the temporary files.")
    return 0


def a_b(stack: Stack, policy_dir: Path, ab: Rollout) -> None:
    """Part 3: the checkout-service A/B test, with the mesh's traffic per backend shown live."""
    assert stack.kube is not None and stack.mesh is not None
    namespace, name, route = ab.metadata.namespace, ab.metadata.name, ab.spec.router.ref.name
    stack.mesh.routes[:] = [MeshRoute(namespace, route)]  # from now on the mesh's traffic goes through checkout
    doc = compressed(ab, AB_SPEED)
    (policy_dir / "checkout-ab.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    share = stack.mesh.header_share
    header = ", ".join(f"{k}: {v}" for k, v in stack.mesh.headers.items())
    print(
        f"3) {ab.spec.stable} -> {ab.spec.canary} as an A/B test (policies/checkout-ab.yaml, timings / {AB_SPEED:g}):\n"
        f"   {share:.0%} of the mesh's requests carry `{header}`; only those may reach the beta"
    )

    def traffic(obj: RolloutObject) -> str:
        served = stack.exporter.profiles()
        beta, stable = served[ab.spec.canary]["rps"], served[ab.spec.stable]["rps"]
        match = obj.status.get("match") or "none"
        return f" | match: {match}; beta {beta:.0f} req/s, stable {stable:.0f} req/s"

    shown: dict[str, bool] = {}

    def companion() -> None:
        assert stack.kube is not None
        with contextlib.suppress(Exception):
            made = stack.kube.get(GATEWAY_ROUTES, namespace, f"rollout-ab-{route}")
            spec = made["spec"]
            targets = [
                t["virtualService"]["virtualServiceRef"]["name"] for t in spec["httpRoute"]["action"]["weightedTargets"]
            ]
            print(
                f"   companion GatewayRoute {made['metadata']['name']}: priority {spec.get('priority')}, "
                f"match {spec['httpRoute']['match']}, to {targets}",
                flush=True,
            )
            shown["companion"] = True

    def also(obj: RolloutObject) -> str:
        if obj.status.get("match") and not shown:
            companion()
        return traffic(obj)

    done = follow(
        stack,
        namespace,
        name,
        ("Promoted", "RolledBack", "Paused"),
        revision=Rollout.model_validate(doc).revision,
        also=also,
    )
    print(f"   => {done.status.get('phase')}: {done.state().end_reason or done.status.get('message')}")
    gone = not any(r["metadata"]["name"].startswith("rollout-ab-") for r in stack.kube.list(GATEWAY_ROUTES, namespace))
    print(f"   route now: {stack.mesh.weights(namespace, route)}; companion removed: {gone}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=float, default=6.0, help="divide the seed policy's durations by this")
    parser.add_argument("--keep", action="store_true", help="keep the stack up at the end until Ctrl-C")
    args = parser.parse_args(argv)
    try:
        return run(args.speed, args.keep)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
