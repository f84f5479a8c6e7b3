"""The sequential judge (``judge: sequential``): always-valid tests on exact counts, canary vs stable.

Owns the tick-level decision: restart and clear per-step evidence at step changes, absorb the
tick's interval into each SLO's evidence (``evidence.py``, model in ``likelihoods.py``), apply the
rules every judge shares (custom metrics, ``noData``, ``failureLimit``: ``rules.py``), and write the
verdict with its numbers. What the verdict means:

* ``rollback=True``: an SLO's fail e-detector reached ``1/alpha_slo`` (the canary is worse than
  ``tolerance`` x stable, or at the 100% step worse than ``max(SLO, stable's rate earlier)``), or
  ``failureLimit`` fixed-limit judgements failed (custom metrics, ``noData: fail``).
* ``PASS`` with ``enough_data``: every SLO's pass e-value reached ``1/beta`` on this step's
  at-weight intervals, every custom metric is within bounds, and at least ``minRequests`` canary
  requests were judged at this step's weight. A policy without SLOs passes on requests alone.
* ``PASS`` without ``enough_data``: ``noData: pass`` on a tick without data (lets a step end,
  never promotes). ``FAIL`` without ``rollback``: a fixed-limit failure below ``failureLimit``.
* ``HOLD``: anything else; "no new scrape" is a quiet hold, never a no-data failure.

Pure: no I/O, no clock; every interval handed over is absorbed exactly once.
"""

from __future__ import annotations

from dataclasses import replace

from rollout.core.judging.base import JudgeInput
from rollout.core.judging.evidence import (
    Observed,
    SLOSpec,
    Weighed,
    absorb,
    alpha_per_slo,
    baseline,
    clear_step,
    fitted,
    restart,
    slo_specs,
    weigh,
)
from rollout.core.judging.latency import counted_as
from rollout.core.judging.memory import JudgeMemory, add_at_weight, add_seen, enter_step
from rollout.core.judging.rules import (
    Data,
    count,
    gauge_checks,
    no_data_kind,
    pct,
    rate,
    ratio_text,
    screen,
    share_text,
    tally,
)
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.policy.analysis import Analysis


def judge_sequential(analysis: Analysis, memory: JudgeMemory, inp: JudgeInput) -> tuple[Verdict, JudgeMemory]:
    """Absorb this tick's interval (if any) and judge; see the module docstring for the meaning."""
    specs = slo_specs(analysis)
    steps = max(inp.weight_steps, 1)
    memory, new_step, new_weight = enter_step(memory, inp.weight, inp.new_step)
    slos = [fitted(analysis, memory.slo(spec.name), spec.name) for spec in specs]
    if new_step:
        slos = [clear_step(analysis, slo) for slo in slos]
    if new_weight and memory.restarts < steps:
        slos = [restart(slo, steps) for slo in slos]
        memory = replace(memory, restarts=memory.restarts + 1)
    data, note = screen(inp)
    if data is Data.USABLE and inp.interval is not None:
        iv = inp.interval
        seen = Observed(iv.canary, iv.stable, iv.seconds, inp.at_weight, _full(inp))
        slos = [absorb(analysis, spec, slo, seen, memory.stable_run) for spec, slo in zip(specs, slos, strict=True)]
        memory = replace(memory, stable_run=memory.stable_run + iv.stable)
        memory = add_seen(memory, iv.canary, iv.stable)
        if inp.at_weight:
            memory = add_at_weight(memory, iv.canary, iv.stable)
    weighed = [weigh(analysis, slo, memory, steps) for slo in slos]
    memory = replace(memory, slos=tuple(replace(s, failed=w.failed) for s, w in zip(slos, weighed, strict=True)))

    gauges = gauge_checks(analysis.metrics, inp.custom)
    enough = memory.canary.requests >= max(analysis.min_requests, 1)
    checks = tuple(
        _check(analysis, spec, w, memory, inp, enough=enough) for spec, w in zip(specs, weighed, strict=True)
    )
    failed_slos = [c.name for c in checks if c.verdict is VerdictKind.FAIL]
    gauge_failed = [c for c in gauges if c.verdict is VerdictKind.FAIL]
    judged_now = data in (Data.USABLE, Data.MISSING)
    no_data_fails = data is Data.MISSING and no_data_kind(analysis) is VerdictKind.FAIL
    counted = tally(analysis, memory, (judged_now and bool(gauge_failed)) or no_data_fails)
    memory = counted.memory
    everything = checks + gauges
    at = share_text(inp.weight)

    if failed_slos:
        kind, rollback = VerdictKind.FAIL, True
        head = f"roll back: the canary is worse on {', '.join(failed_slos)}"
    elif counted.counted:
        kind, rollback = VerdictKind.FAIL, counted.rollback
        why = "; ".join(c.detail for c in gauge_failed) or f"{note} (noData: fail)"
        head = f"{'roll back' if rollback else 'fail'}: {why} ({counted.words(analysis)})"
    elif data is Data.MISSING:
        kind, rollback = no_data_kind(analysis), False
        head = f"{kind.value}: {note} (noData: {analysis.no_data.value}" + (
            ", lets the step end, never promotes)" if kind is VerdictKind.PASS else ")"
        )
    elif data is not Data.USABLE:
        kind, rollback = VerdictKind.HOLD, False
        head = f"hold: {note}"
    elif enough and all(c.verdict is VerdictKind.PASS for c in everything):
        kind, rollback = VerdictKind.PASS, False
        names = ", ".join(c.name for c in checks) or "no SLOs set"
        regression = f"{analysis.sequential.regression:g}x"
        bound = (
            f"below {regression} max(SLO, stable's rate earlier in the run)"
            if _full(inp) or analysis.sequential.mode == "absolute"
            else f"not worse than {regression} stable (or below SLO/{analysis.sequential.regression:g})"
        )
        head = (
            f"pass: the canary is {bound} on {names}, {count(memory.canary.requests)} canary requests at {at}"
            if checks
            else f"pass: {count(memory.canary.requests)} canary requests at {at} ({names})"
        )
    else:
        kind, rollback = VerdictKind.HOLD, False
        waiting = [c.name for c in everything if c.verdict is not VerdictKind.PASS]
        head = "hold: not enough evidence yet" + (f" on {', '.join(waiting)}" if waiting else "")
        if not enough:
            head += f"; {count(memory.canary.requests)} of {analysis.min_requests} canary requests judged at {at}"
    summary = " | ".join([head, *(c.detail for c in everything)])
    verdict = Verdict(
        kind=kind,
        checks=everything,
        enough_data=enough and data is not Data.MISSING,
        summary=summary,
        rollback=rollback,
        canary=memory.canary,
        stable=memory.stable,
    )
    return verdict, memory


def _check(
    analysis: Analysis, spec: SLOSpec, w: Weighed, memory: JudgeMemory, inp: JudgeInput, *, enough: bool
) -> Check:
    options = analysis.sequential
    relative = not _full(inp) and options.mode != "absolute"
    at_weight = memory.canary.requests > 0
    # Before any at-weight data, a check (a failure, typically) is shown with everything the step saw.
    c_counts, s_counts = (memory.canary, memory.stable) if at_weight else (memory.seen_canary, memory.seen_stable)
    canary_rate = rate(spec.compared(c_counts), c_counts.requests)
    stable_rate = rate(spec.compared(s_counts), s_counts.requests) if relative else None
    ratio = canary_rate / stable_rate if canary_rate is not None and stable_rate else None
    passed = not w.failed and w.pass_evidence >= w.pass_threshold and enough
    verdict = VerdictKind.FAIL if w.failed else VerdictKind.PASS if passed else VerdictKind.HOLD
    fail_first = w.failed or (not passed and w.fail_evidence - w.fail_threshold > w.pass_evidence - w.pass_threshold)
    evidence, threshold = (w.fail_evidence, w.fail_threshold) if fail_first else (w.pass_evidence, w.pass_threshold)
    name = spec.name + (f" (counted {counted_as(inp.latency)})" if spec.name == "latency" and inp.latency else "")
    canary = f"canary {count(spec.compared(c_counts))}/{count(c_counts.requests)} ({pct(canary_rate)})"
    share = share_text(inp.weight)
    where = f"at {share}" if at_weight else f"while moving to {share}"
    if c_counts.requests <= 0:
        judged = f"nothing judged at {share} yet"
    elif relative:
        stable = f"{count(spec.compared(s_counts))}/{count(s_counts.requests)} ({pct(stable_rate)})"
        confidence = f"{100 * (1 - alpha_per_slo(analysis)):.3g}%"
        interval = (
            f" (always-valid {confidence} interval: {_span(w.ratio_low, w.ratio_high)})"
            if w.ratio_low is not None
            else ""
        )
        judged = f"{canary} vs stable {stable} {where}, ratio {ratio_text(ratio)}{interval}"
    else:
        fail_level = options.tolerance * baseline(spec, memory.stable_run, spec.above)
        judged = (
            f"{canary} {where}, held to max(SLO {pct(spec.limit)}, stable's rate earlier in the run) "
            f"= {pct(fail_level)}"
        )
    detail = (
        f"{name}: {judged}; fail evidence {w.fail_evidence:.2f} (rolls back at {w.fail_threshold:.2f}), "
        f"pass evidence {w.pass_evidence:.2f} (passes at {w.pass_threshold:.2f})"
    )
    return Check(
        name=spec.name,
        verdict=verdict,
        value=ratio if relative else canary_rate,
        limit=options.regression if relative else spec.limit,
        detail=detail,
        canary_rate=canary_rate,
        stable_rate=stable_rate,
        slo=spec.limit,
        ratio=ratio,
        ratio_low=w.ratio_low if relative else None,
        ratio_high=w.ratio_high if relative else None,
        evidence=evidence,
        threshold=threshold,
        test="relative" if relative else "absolute",
    )


def _span(low: float | None, high: float | None) -> str:
    """An interval of ratios in words (``low`` 0: unbounded below; ``high`` None: unbounded above)."""
    if low and high is not None:
        return f"{low:.3g} to {high:.3g}"
    if low:
        return f"at least {low:.3g}"
    return f"at most {high:.3g}" if high is not None else "any ratio"


def _full(inp: JudgeInput) -> bool:
    """The 100% step: stable gets no traffic by design (an A/B step never is: stable serves the rest)."""
    return inp.weight is not None and inp.weight >= 100
