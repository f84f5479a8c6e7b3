"""Kubernetes-style status conditions of a Rollout, computed from its state.

Owns the answer to "did it work?" in the form tools expect (``kubectl wait``, Argo CD health):

- ``Completed``: True once the run ended; reason ``Promoted``, ``RolledBack`` or ``Aborted``.
- ``Succeeded``: True when the run was promoted, False when it rolled back or was aborted,
  Unknown while it runs (``kubectl wait --for=condition=Succeeded`` waits for success,
  ``--for=condition=Succeeded=False`` for failure).
- ``Progressing``: True while a run moves forward; False when paused or ended, with the reason.
- ``Paused``: True with the typed pause reason (``PauseStep``, ``Manual``, ``Drift``,
  ``ProgressDeadline``, ``ApprovalTimeout``, ``RouteError``).
- ``Degraded``: True when something is wrong: the route cannot be written (``RouteWriteFailed``)
  or read (``RouteReadFailed``), metrics are unavailable, the last check failed, or the spec is
  invalid (``InvalidSpec``).
- ``PolicyValid``: False with ``InvalidSpec`` when the Rollout's spec does not validate.

A condition keeps its ``lastTransitionTime`` while its status does not change. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rollout.core.states import Phase, RolloutState
from rollout.core.verdicts import VerdictKind

TYPES = ("Completed", "Succeeded", "Progressing", "Paused", "Degraded", "PolicyValid")


def conditions(
    state: RolloutState,
    previous: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    generation: int,
    invalid: str = "",
) -> list[dict[str, Any]]:
    """The conditions for ``state`` (``invalid``: why the spec does not validate, empty when it does)."""
    before = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}

    def make(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": since or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observedGeneration": generation,
        }

    phase = state.phase
    final = phase.final
    ended = state.end_reason or state.message
    out = [make("Completed", "True" if final else "False", phase.value if final else "Running", ended if final else "")]
    if phase is Phase.PROMOTED:
        out.append(make("Succeeded", "True", "Promoted", ended))
    elif phase in (Phase.ROLLED_BACK, Phase.ABORTED):
        out.append(make("Succeeded", "False", phase.value, ended))
    else:
        out.append(make("Succeeded", "Unknown", "InProgress" if phase.active else phase.value, ""))
    paused = phase is Phase.PAUSED and state.pause_reason is not None
    moving = phase.active and not paused
    out.append(make("Progressing", "True" if moving else "False", _progress_reason(state), state.message))
    out.append(
        make(
            "Paused",
            "True" if paused else "False",
            state.pause_reason.value if paused and state.pause_reason else "NotPaused",
            state.pause_detail if paused else "",
        )
    )
    degraded, why, detail = _degraded(state, invalid)
    out.append(make("Degraded", "True" if degraded else "False", why, detail))
    out.append(make("PolicyValid", "False" if invalid else "True", "InvalidSpec" if invalid else "Valid", invalid))
    return out


def _progress_reason(state: RolloutState) -> str:
    if state.phase is Phase.PAUSED and state.pause_reason is not None:
        return state.pause_reason.value
    return state.phase.value


def _degraded(state: RolloutState, invalid: str) -> tuple[bool, str, str]:
    if invalid:
        return True, "InvalidSpec", invalid
    problem = state.route_problem
    if problem is not None:
        writing = state.pending is not None or state.match_pending is not None  # weights or a managed route
        reason = "RouteWriteFailed" if writing else "RouteReadFailed"
        return True, reason, f"{problem.kind.value}: {problem.message}"
    if state.unavailable_since is not None and state.phase.active:
        return True, "MetricsUnavailable", state.message
    verdict = state.verdict
    if verdict is not None and verdict.kind is VerdictKind.FAIL and state.phase.active:
        return True, "CheckFailed", verdict.summary
    return False, "AsExpected", ""
