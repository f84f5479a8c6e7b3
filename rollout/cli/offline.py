"""Subcommands that need no cluster: ``validate``, ``plan``, ``simulate``, ``schema``.

Owns their arguments and their output (text for people, ``--json`` for machines). Policy files
are read through ``rollout.policy.loading`` so that errors carry file, line and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the handlers import what they use, so `rollout --help` stays quick
    from rollout.core.planning import Plan
    from rollout.core.sizing import StepSizing
    from rollout.errors import Problem
    from rollout.policy.models import Rollout
    from rollout.runtime.simulating import Simulation

SCENARIOS = ("healthy", "error-spike", "latency-spike", "no-traffic")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check policy files; print every problem as FILE:LINE:COL: field: message",
        description="Validate Rollout policies (files or directories, multi-document YAML). "
        "Prints every problem, and every warning (a dangerous but legal choice; a FIFO, device or socket "
        "skipped inside a directory) as FILE:LINE:COL: warning: field: message. Exits 0 when all are valid "
        "and 1 otherwise; warnings never change the exit code.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser(
        "plan",
        help="show a policy's step schedule, gates and minimum time to promote",
        description="Show the step schedule of one policy: weights, pauses, gates, and the "
        "minimum time to promote if every judgement passes as early as it can.",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--name", help="which Rollout, when the file holds several")
    p.add_argument(
        "--rps",
        type=float,
        metavar="N",
        help="expected total requests per second: size each step for detecting a 2x regression",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser(
        "simulate",
        help="run the real engine through a whole rollout on a fake clock",
        description="Run the decision engine through a whole rollout of POLICY on a fake clock, "
        "with in-memory traffic. Exits 0 whenever the simulation ran, whatever its outcome.",
    )
    p.add_argument("policy", metavar="POLICY")
    p.add_argument("--name", help="which Rollout, when the file holds several")
    p.add_argument("--scenario", choices=SCENARIOS, default="healthy")
    p.add_argument(
        "--at-step",
        type=int,
        default=1,
        metavar="N",
        help="1-based step at which the fault of error-spike/latency-spike starts (default 1)",
    )
    p.add_argument("--rps", type=float, default=500.0, help="total requests per second (default 500)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the synthetic traffic (default 7)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the timeline")
    p.add_argument("--chart", metavar="FILE.svg", help="also write an SVG chart of weights and SLO values")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser(
        "schema",
        help="print the Rollout policy JSON Schema",
        description="Print the JSON Schema of a Rollout policy (for editors and the CRD).",
    )
    p.set_defaults(handler=cmd_schema)


def cmd_validate(args: argparse.Namespace) -> int:
    from rollout.policy.loading import load_paths

    result = load_paths(args.paths)
    for problem in result.problems:
        print(problem)
    for warning in result.warnings:
        print(warning_line(warning))
    if not args.quiet:
        for loaded in result.rollouts:
            print(f"{loaded.location}: ok: Rollout {loaded.rollout.key} (revision {loaded.rollout.revision})")
        files = len(result.files)
        if result.problems:
            print(f"{len(result.problems)} problem(s) in {files} file(s)", file=sys.stderr)
        else:
            print(f"{len(result.rollouts)} rollout(s) valid in {files} file(s)", file=sys.stderr)
    return 0 if result.ok else 1


def warning_line(warning: Problem) -> str:
    """``FILE:LINE:COL: warning: field: message``: a warning never changes the exit code."""
    where = f"{warning.file}:{warning.line}:{warning.column}"
    return f"{where}: warning: {warning.path + ': ' if warning.path else ''}{warning.message}"


def _one(path: str, name: str | None) -> Rollout | None:
    from rollout.policy.loading import LoadedRollout, load_paths

    result = load_paths([path])
    for problem in result.problems:
        print(problem, file=sys.stderr)
    for warning in result.warnings:
        print(warning_line(warning), file=sys.stderr)
    if not result.ok:
        return None
    chosen: list[LoadedRollout] = [r for r in result.rollouts if name in (None, r.rollout.metadata.name)]
    if len(chosen) != 1:
        names = ", ".join(r.rollout.metadata.name for r in result.rollouts) or "none"
        print(
            f"{path}: expected exactly one Rollout{f' named {name}' if name else ''}; found: {names}"
            + ("" if name else " (pick one with --name)"),
            file=sys.stderr,
        )
        return None
    return chosen[0].rollout


def cmd_plan(args: argparse.Namespace) -> int:
    from rollout.core.planning import plan

    policy = _one(args.policy, args.name)
    if policy is None:
        return 1
    if args.rps is not None and args.rps < 0:
        print("--rps cannot be negative", file=sys.stderr)
        return 2
    schedule = plan(policy, args.rps)
    if args.json:
        print(json.dumps(_plan_dict(schedule), indent=2))
        return 0
    print(f"Rollout {schedule.rollout}  revision {schedule.revision}  router {schedule.router}")
    print(f"  {policy.spec.stable} (stable) -> {policy.spec.canary} (canary)")
    print(f"{'step':>4}  {'kind':<9} {'canary':>6}  {'min time':>8}  gate")
    for row in schedule.steps:
        share = f"{row.canary:>5}%" if not row.ab else f"{'A/B' + (f'+{row.canary}%' if row.canary else ''):>6}"
        print(f"{row.number:>4}  {row.kind:<9} {share}  {_fmt(row.min_duration.total_seconds()):>8}  {row.gate}")
        if row.sizing is not None:
            s = row.sizing
            lines = [f"{s.canary_rps:g} canary req/s"]
            if s.pass_seconds_needed is not None and s.pass_requests_needed is not None:
                lines.append(
                    f"a healthy canary passes after ~{s.pass_requests_needed:,.0f} canary requests at this "
                    f"weight (~{_fmt(s.pass_seconds_needed)})"
                )
            else:
                lines.append("a healthy canary cannot pass at this traffic (see warning)")
            if s.seconds_needed is not None and s.canary_requests_needed is not None:
                lines.append(
                    f"a {s.regression:g}x {s.slo} regression is caught after ~{s.canary_requests_needed:,.0f} "
                    f"canary requests (~{_fmt(s.seconds_needed)}, {s.test} test)"
                )
            else:
                lines.append(f"a {s.regression:g}x {s.slo} regression cannot be caught at this traffic")
            print(f"{'':>27}" + "; ".join(lines))
    people = " + time people take" if schedule.needs_people else ""
    print(f"minimum time to promote: {_fmt(schedule.min_time_to_promote.total_seconds())}{people}")
    if schedule.expected_time_to_promote is not None:
        expected = _fmt(schedule.expected_time_to_promote.total_seconds())
        print(f"expected time to promote a healthy canary at {args.rps:g} req/s: {expected}{people}")
    for warning in schedule.warnings:
        print(f"warning: {warning}")
    return 0


def _plan_dict(schedule: Plan) -> dict[str, Any]:
    return {
        "rollout": schedule.rollout,
        "revision": schedule.revision,
        "router": schedule.router,
        "minTimeToPromoteSeconds": schedule.min_time_to_promote.total_seconds(),
        "expectedTimeToPromoteSeconds": (
            schedule.expected_time_to_promote.total_seconds() if schedule.expected_time_to_promote else None
        ),
        "needsPeople": schedule.needs_people,
        "warnings": list(schedule.warnings),
        "steps": [
            {
                "step": r.number,
                "kind": r.kind,
                "canaryWeight": r.canary,
                **({"abTest": True} if r.ab else {}),
                **({"expectedShare": r.expected_share} if r.expected_share is not None else {}),
                "minSeconds": r.min_duration.total_seconds(),
                "gate": r.gate,
                **({"sizing": _sizing_dict(r.sizing)} if r.sizing is not None else {}),
            }
            for r in schedule.steps
        ],
    }


def _sizing_dict(s: StepSizing) -> dict[str, Any]:
    return {
        "rps": s.rps,
        "canaryRps": s.canary_rps,
        "slo": s.slo,
        "baseline": s.baseline,
        "regression": s.regression,
        "test": s.test,
        "canaryRequestsNeeded": s.canary_requests_needed,
        "secondsNeeded": s.seconds_needed,
        "passRequestsNeeded": s.pass_requests_needed,
        "passSecondsNeeded": s.pass_seconds_needed,
        "expectedSeconds": s.expected_seconds,
        "judgeable": s.judgeable,
        "warning": s.warning,
    }


def cmd_simulate(args: argparse.Namespace) -> int:
    from rollout.runtime.charting import render_svg
    from rollout.runtime.simulating import Scenario, simulate

    policy = _one(args.policy, args.name)
    if policy is None:
        return 1
    if args.at_step < 1 or args.at_step > len(policy.spec.steps):
        print(f"--at-step must be between 1 and {len(policy.spec.steps)} (the policy's steps)", file=sys.stderr)
        return 2
    if args.rps < 0:
        print("--rps cannot be negative", file=sys.stderr)
        return 2
    sim = simulate(policy, Scenario(args.scenario), at_step=args.at_step, rps=args.rps, seed=args.seed)
    if args.chart:
        try:
            Path(args.chart).write_text(render_svg(sim), encoding="utf-8")
        except OSError as e:
            print(f"cannot write chart {args.chart}: {e.strerror}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(sim.to_dict(), indent=2))
    else:
        _print_timeline(sim)
        if args.chart:
            print(f"chart written to {args.chart}")
    return 0


def _print_timeline(sim: Simulation) -> None:
    policy = sim.policy
    fault = "" if sim.spike_at is None else f", fault injected at {_fmt(sim.spike_at)}"
    print(
        f"Rollout {policy.key}: {policy.spec.stable} -> {policy.spec.canary}, scenario {sim.scenario.value}"
        f"{fault}, judge {policy.spec.analysis.judge.value}"
    )
    print(f"{'time':>7}  {'step':>4}  {'phase':<16} {'canary':>6}  decision")
    for e in sim.events:
        print(f"{_fmt(e.seconds):>7}  {e.step or '-':>4}  {e.phase:<16} {e.canary:>5}%  {e.decision}")
    state = sim.state
    print(
        f"result: {state.phase.value} after {_fmt(sim.ended_at)}: the route carries canary "
        f"{state.observed.canary if state.observed else 0}%, stable {state.observed.stable if state.observed else 100}%"
    )
    print(f"  {state.end_reason or state.message}")


def _fmt(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes:02d}m{secs:02d}s"


def cmd_schema(args: argparse.Namespace) -> int:
    from rollout.policy.schema import json_schema

    del args
    print(json.dumps(json_schema(), indent=2))
    return 0
