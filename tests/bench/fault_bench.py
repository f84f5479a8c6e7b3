"""Time from a fault to stable 100% on the live stack, for analysis intervals of 5 s and 30 s.

The real daemon on the local stack (kube-apiserver + etcd, Prometheus scraping the synthetic Envoy
exporter every second, 2,000 req/s through each route): a canary that starts failing 30% of its
requests the moment it reaches 50% of the traffic (a fault that only shows under load), judged
with the default sequential judge (alpha 0.01) at steps 20% -> 50% -> 100%, stepDuration = one
interval. Each trial has its own namespace, route and backends; trials run at the same time. The
clock starts when the mesh first sends 50% to the canary and stops when the route is back at stable
100%. ``python -m tests.bench.fault_bench [--trials N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rollout.routers.gatewayroute import GATEWAY_ROUTES
from tests.harness.mesh import MeshRoute
from tests.harness.stack import Stack, gateway_route, wait_until

INTERVALS = (5, 30)


def _policy(ns: str, interval: int) -> dict[str, object]:
    return {
        "apiVersion": "delivery.rollout.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "recommendations", "namespace": ns},
        "spec": {
            "router": {"gatewayRoute": {"name": "route"}},
            "stable": f"{ns}-v1",
            "canary": f"{ns}-v2",
            "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],
            "analysis": {
                "interval": f"{interval}s",
                "stepDuration": f"{interval}s",
                "slos": {"errorRate": {"max": "1%"}, "latency": {"percentile": 99, "max": "250ms"}},
                "minRequests": 50,
            },
            "progressDeadline": "10m",
        },
    }


def main(trials: int = 3) -> None:
    from rollout.kube.rollouts import ROLLOUTS

    with Stack(total_rps=2000.0) as stack:
        assert stack.kube is not None and stack.mesh is not None
        runs: list[tuple[int, str]] = []
        for interval in INTERVALS:
            for i in range(trials):
                ns = f"fault-{interval}s-{i}"
                stack.plane.create_namespace(ns)
                for backend in (f"{ns}-v1", f"{ns}-v2"):
                    stack.exporter.set_backend(
                        backend, rps=0.0, error_rate=0.001, latency_median_ms=20, latency_p99_ms=120
                    )
                stack.kube.create(GATEWAY_ROUTES, ns, gateway_route(ns, "route", stable=f"{ns}-v1"))
                stack.mesh.routes.append(MeshRoute(ns, "route"))
                stack.mesh.faults[f"{ns}-v2"] = (50, 0.3, 0.001)
                runs.append((interval, ns))
        daemon = stack.daemon(namespaces=[ns for _, ns in runs], ROLLOUT_LEADER__ENABLED="false")
        wait_until(lambda: daemon.get("/readyz")[0] == 200, timeout=60, what="the daemon ready")
        for interval, ns in runs:
            stack.kube.create(ROLLOUTS, ns, _policy(ns, interval))
        fault_at: dict[str, float] = {}
        restored_at: dict[str, float] = {}
        deadline = time.monotonic() + 900
        while len(restored_at) < len(runs) and time.monotonic() < deadline:
            for _, ns in runs:
                if ns in restored_at:
                    continue
                weights = stack.mesh.weights(ns, "route")
                canary = weights.get(f"{ns}-v2", 0)
                if ns not in fault_at and canary >= 50:
                    fault_at[ns] = time.monotonic()
                elif ns in fault_at and canary == 0:
                    restored_at[ns] = time.monotonic()
            time.sleep(0.1)
    print("| interval | trials | fault -> stable 100% (median) | min | max |")
    print("|---:|---:|---:|---:|---:|")
    for interval in INTERVALS:
        took = [restored_at[ns] - fault_at[ns] for i, ns in runs if i == interval and ns in restored_at]
        if not took:
            print(f"| {interval}s | 0 of {trials} | not restored | | |")
            continue
        median, low, high = statistics.median(took), min(took), max(took)
        print(f"| {interval}s | {len(took)} of {trials} | {median:.1f}s | {low:.1f}s | {high:.1f}s |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    main(parser.parse_args().trials)
