"""Warnings about dangerous-but-legal choices in a valid policy (``rollout validate`` prints them as
``warning:``; they never make a policy invalid nor change an exit code).

Owns the list of such choices and their wording; each comes with the camelCase path of the field it
is about, so ``loading.py`` can locate it. Pure: no I/O, and nothing here refuses anything (a
refusal belongs in the models, where the CRD can mirror it).
"""

from __future__ import annotations

from datetime import timedelta

from rollout.policy.models import Rollout, TimeoutAction
from rollout.policy.quantities import format_duration

Path = tuple[int | str, ...]
SHORT_APPROVAL = timedelta(minutes=1)


def cautions(rollout: Rollout) -> list[tuple[Path, str]]:
    """(field path, message) for every risky choice ``rollout`` makes."""
    spec = rollout.spec
    out: list[tuple[Path, str]] = []
    approvals = spec.approvals
    gated = any(step.approval is not None for step in spec.steps)
    if gated and approvals.on_timeout is TimeoutAction.ROLLBACK and approvals.timeout < SHORT_APPROVAL:
        out.append(
            (
                ("spec", "approvals", "timeout"),
                f"approvals time out after {format_duration(approvals.timeout)} and then roll back: people get "
                "less than a minute to answer before the canary is rolled back",
            )
        )
    analysis = spec.analysis
    if analysis.slos.error_rate is None and analysis.slos.latency is None and not analysis.metrics:
        out.append(
            (
                ("spec", "analysis"),
                "no SLOs and no metrics: every judgement passes on request count alone",
            )
        )
    return out
