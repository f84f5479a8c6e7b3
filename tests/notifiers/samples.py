"""What the Slack messages are rendered from in the golden files: snapshots, verdicts and the
engine's notes for every event type, with numbers as a simulated error spike produced them
(``rollout simulate policies/recommendations-canary.yaml --scenario error-spike --at-step 2``).

``python -m tests.notifiers.samples`` rewrites ``tests/notifiers/golden/`` from them (review the diff);
``--show`` prints each message as text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollout.core.actions import ApprovalResolved, Level, Notify, RequestApproval, Resolution
from rollout.core.readings import ArmCounts
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.notifiers import blocks
from rollout.notifiers.base import RolloutSnapshot

GOLDEN = Path(__file__).parent / "golden"
AT = datetime(2025, 3, 4, 12, 4, 30, tzinfo=UTC)
RUN = "a10e06a5a254@2025-03-04T12:00:00+00:00"
LINKS = {"dashboard": "https://grafana.example/d/rollouts?var-rollout={rollout}"}

HOLDING = Verdict(
    kind=VerdictKind.HOLD,
    checks=(
        Check("errorRate", VerdictKind.HOLD, 0.69, 2.0, canary_rate=2 / 1465, stable_rate=57 / 28807, slo=0.01,
              ratio=0.69, ratio_low=0.0, ratio_high=4.0, evidence=1.54, threshold=3.0, test="relative"),
        Check("latency", VerdictKind.HOLD, 0.894, 2.0, canary_rate=3 / 1465, stable_rate=66 / 28807, slo=0.01,
              ratio=0.894, ratio_low=0.0, ratio_high=4.0, evidence=0.85, threshold=3.0, test="relative"),
    ),
    enough_data=True,
    summary="hold: not enough evidence yet on errorRate, latency | errorRate: canary 2/1,465 (0.137%) vs stable "
    "57/28,807 (0.198%) at 5%, ratio 0.69 (always-valid 99.5% interval: at most 4); fail evidence -0.17 (rolls back "
    "at 5.30), pass evidence 1.54 (passes at 3.00)",
    canary=ArmCounts(1465.4, 2.0),
    stable=ArmCounts(28807.2, 57.0),
)  # fmt: skip
PASSING = Verdict(
    kind=VerdictKind.PASS,
    checks=(
        Check("errorRate", VerdictKind.PASS, 0.805, 2.0, canary_rate=10 / 5914, stable_rate=240 / 114269, slo=0.01,
              ratio=0.805, ratio_low=0.0, ratio_high=2.0, evidence=5.43, threshold=3.0, test="relative"),
        Check("latency", VerdictKind.PASS, 1.07, 2.0, canary_rate=13 / 5914, stable_rate=234 / 114269, slo=0.01,
              ratio=1.07, ratio_low=0.354, ratio_high=2.83, evidence=3.11, threshold=3.0, test="relative"),
    ),
    enough_data=True,
    summary="pass: the canary is not worse than 2x stable (or below SLO/2) on errorRate, latency, 5,914 canary "
    "requests at 5% | errorRate: canary 10/5,914 (0.169%) vs stable 240/114,269 (0.21%) at 5%, ratio 0.805",
    canary=ArmCounts(5914.0, 10.0),
    stable=ArmCounts(114269.0, 240.0),
)  # fmt: skip
FAILING = Verdict(
    kind=VerdictKind.FAIL,
    checks=(
        Check("errorRate", VerdictKind.FAIL, 51.4, 2.0, canary_rate=185 / 1489, stable_rate=33 / 13642, slo=0.01,
              ratio=51.4, evidence=89.7, threshold=5.3, test="relative"),
        Check("latency", VerdictKind.HOLD, 1.02, 2.0, canary_rate=4 / 1489, stable_rate=36 / 13642, slo=0.01,
              ratio=1.02, evidence=-0.37, threshold=5.3, test="relative"),
        Check("queue_depth", VerdictKind.PASS, 12.0, 30.0, test="gauge"),
    ),
    enough_data=True,
    summary="roll back: the canary is worse on errorRate | errorRate: canary 185/1,489 (12.4%) vs stable 33/13,642 "
    "(0.242%) while moving to 10%, ratio 51.4; fail evidence 89.70 (rolls back at 5.30)",
    rollback=True,
    canary=ArmCounts(1489.0, 185.0),
    stable=ArmCounts(13642.0, 33.0),
)  # fmt: skip

BASE = RolloutSnapshot(
    rollout="shop/recommendations",
    run=RUN,
    revision="a10e06a5a254",
    phase="Progressing",
    step=1,
    steps=6,
    canary_weight=5,
    stable_weight=95,
    desired_canary_weight=5,
    message="step 1/6: canary at 5% since 12:00:00 (at least 1m); hold: not enough evidence yet on errorRate, latency",
    verdict=HOLDING,
    stable="recommendation-service-v1",
    canary="recommendation-service-v2",
    at=AT,
    channel="#deploys",
    approval_channel="#deploys",
    approvers=("U012AB3CD", "S0RELEASE"),
)
APPROVAL = RequestApproval(
    "approval-a10e06a5a254-3",
    4,
    "25% for 10m with every SLO met: go to 50%?",
    approvers=("U012AB3CD", "S0RELEASE"),
    channel="#deploys",
)
WAITING = replace(
    BASE,
    phase="AwaitingApproval",
    step=4,
    canary_weight=25,
    stable_weight=75,
    desired_canary_weight=25,
    message="step 4/6: waiting for approval (times out at 13:04:30)",
    verdict=PASSING,
    approval=APPROVAL.key,
)
ROLLED_BACK = replace(
    BASE,
    phase="RolledBack",
    step=2,
    canary_weight=0,
    stable_weight=100,
    desired_canary_weight=0,
    message=f"RolledBack: stable recommendation-service-v1 at 100%: the canary failed its checks; last: "
    f"{FAILING.summary}",
    verdict=FAILING,
    end_reason="the canary failed its checks",
)


def _note(key: str, event: str, level: Level, message: str, verdict: Verdict = HOLDING) -> Notify:
    return Notify(key, event, level, message, verdict)  # the engine attaches the last verdict to every note


EVENTS: dict[str, tuple[RolloutSnapshot, Notify]] = {
    "started": (BASE, _note("started", "rollout.started", Level.INFO, "rollout of recommendation-service-v2 "
                "(revision a10e06a5a254) started; 6 steps, traffic now canary=0 stable=100")),
    "step": (BASE, _note("step-1", "rollout.step", Level.INFO, "step 2/6: canary to 10%")),
    "step-passed": (BASE, _note("passed-0", "rollout.step-passed", Level.INFO,
                    f"step 1/6 passed at 5%: {PASSING.summary}", PASSING)),
    "check-failed": (BASE, _note("failure-1-1741089870", "rollout.check-failed", Level.WARNING,
                     f"a check failed: {FAILING.summary}", replace(FAILING, rollback=False))),
    "canary-failed": (BASE, _note("failed", "rollout.check-failed", Level.FAILURE,
                      f"the canary failed: {FAILING.summary}", FAILING)),
    "deadline": (BASE, _note("deadline-1", "rollout.deadline", Level.WARNING, "paused: step 2/6 had no passing verdict "
                 "within progressDeadline 30m; last: hold: not enough evidence yet on latency")),
    "drift": (BASE, _note("drift-1-30", "rollout.drift", Level.WARNING, "paused: someone changed the route's weights "
              "to canary=30 stable=70 (rollout set canary=10 stable=90); `rollout resume` restores rollout's weights, "
              "`rollout abort` rolls back")),
    "route-error": (BASE, _note("route-RouteNotFound-1", "rollout.route-error", Level.WARNING, "paused: "
                    "RouteNotFound: GatewayRoute shop/recommendation-canary-gateway-route not found; fix it, then "
                    "`rollout resume` (or `rollout abort`)")),
    "approval-timeout": (WAITING, _note("approval-timeout-3", "rollout.approval-timeout", Level.WARNING,
                         "paused: approval timed out after 1h; `rollout approve` to go on")),
    "superseded": (BASE, _note("superseded-a10e06a5a254", "rollout.superseded", Level.WARNING, "spec changed during "
                   "the run of revision a10e06a5a254; starting revision 7d0c3e5b9f21 from its first step")),
    "promoted": (replace(BASE, phase="Promoted", step=6, canary_weight=100, stable_weight=0, verdict=PASSING),
                 _note("promoted", "rollout.promoted", Level.SUCCESS, "shop/recommendations: "
                       "recommendation-service-v2 promoted (every step passed)", PASSING)),
    "rolled-back": (ROLLED_BACK, _note("ended", "rollout.rolled-back", Level.FAILURE,
                    f"shop/recommendations: {ROLLED_BACK.message}", FAILING)),
    "aborted": (replace(ROLLED_BACK, phase="Aborted"), _note("ended", "rollout.aborted", Level.FAILURE,
                "shop/recommendations: Aborted: stable recommendation-service-v1 at 100%: aborted by jane@example.com",
                FAILING)),
}  # fmt: skip

PARENTS: dict[str, RolloutSnapshot] = {
    "progressing": BASE,
    "awaiting-approval": WAITING,
    "paused-drift": replace(BASE, phase="Paused", canary_weight=30, stable_weight=70, desired_canary_weight=10,
                            message=EVENTS["drift"][1].message),
    "rolled-back": ROLLED_BACK,
    "promoted": EVENTS["promoted"][0],
}  # fmt: skip

RESOLUTIONS: dict[str, ApprovalResolved] = {
    "approved": ApprovalResolved(APPROVAL.key, 4, Resolution.APPROVED, by="U012AB3CD"),
    "approved-cli": ApprovalResolved(APPROVAL.key, 4, Resolution.APPROVED, by="jane@example.com"),
    "rejected": ApprovalResolved(APPROVAL.key, 4, Resolution.REJECTED, by="slack:U012AB3CD", detail="aborted"),
    "timed-out": ApprovalResolved(APPROVAL.key, 4, Resolution.TIMED_OUT, detail="paused"),
    "closed": ApprovalResolved(APPROVAL.key, 4, Resolution.CLOSED, detail="aborted by jane@example.com"),
}


def rendered() -> dict[str, blocks.Rendered]:
    """Every golden message by file name."""
    out: dict[str, blocks.Rendered] = {}
    for name, snapshot in PARENTS.items():
        out[f"parent-{name}"] = blocks.parent(snapshot, links=LINKS, buttons=True)
    for name, (snapshot, note) in EVENTS.items():
        out[f"event-{name}"] = blocks.event(snapshot, note)
    out["approval-request"] = blocks.approval(WAITING, APPROVAL)
    for name, resolution in RESOLUTIONS.items():
        out[f"approval-{name}"] = blocks.resolved(WAITING, resolution, APPROVAL.message)
    return out


def as_json(message: blocks.Rendered) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks}, indent=2, ensure_ascii=False) + "\n"


def as_text(message: blocks.Rendered) -> str:
    """What a person reads (every text, in order), for reviews."""
    lines: list[str] = []

    def walk(value: Any, keep: Callable[[str], bool]) -> None:
        if isinstance(value, dict):
            if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
                lines.append(value["text"])
                return
            if value.get("type") == "button":
                lines.append(f"[{value['text']['text']}]")
                return
            for v in value.values():
                walk(v, keep)
        elif isinstance(value, list):
            for v in value:
                walk(v, keep)

    walk(message.blocks, lambda _: True)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if "--show" in argv:
        for name, message in rendered().items():
            sys.stdout.write(f"--- {name}\n{as_text(message)}\n")
        return
    GOLDEN.mkdir(exist_ok=True)
    for name, message in rendered().items():
        (GOLDEN / f"{name}.json").write_text(as_json(message))


if __name__ == "__main__":
    main(sys.argv[1:])
