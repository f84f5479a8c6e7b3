"""The persisted form of ``RolloutState``: one declaration (the dataclasses in ``states``), from which
the JSON written to ``status.state``, the loading of it, and the CRD's status schema all derive.

Owns the pydantic ``TypeAdapter`` over ``RolloutState`` (camelCase keys, enums as their values,
times as RFC 3339), the compact encoding of the judge's internals (``judge`` and ``baseline`` are
stored as one-line JSON strings so ``kubectl describe`` stays readable), and the reading of a
status written by rollout 0.1 (``load`` converts it; the judge's evidence then starts afresh).
Every float written is finite (the API server's JSON has no inf/NaN). Pure: no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from rollout.core.states import PauseReason, PendingWrite, Phase, RolloutState, Weights
from rollout.core.verdicts import Verdict, VerdictKind

_STATE: TypeAdapter[RolloutState] = TypeAdapter(RolloutState)
_COMPACT = ("judge", "baseline")
_LEGACY_PAUSES = (
    ("pause step", PauseReason.STEP),
    ("drift", PauseReason.DRIFT),
    ("progress deadline", PauseReason.DEADLINE),
    ("approval timed out", PauseReason.APPROVAL_TIMEOUT),
    ("paused by", PauseReason.MANUAL),
)


class StateError(ValueError):
    """A stored state that cannot be read."""


def dump(state: RolloutState) -> dict[str, Any]:
    """``state`` as the JSON object stored in ``status.state``."""
    data: dict[str, Any] = _finite(_STATE.dump_python(state, mode="json", by_alias=True))
    for key in _COMPACT:
        if data.get(key) is not None:
            data[key] = json.dumps(data[key], separators=(",", ":"), sort_keys=True)
    return data


def load(data: Mapping[str, Any]) -> RolloutState:
    """The state stored in ``status.state`` (either format); raises ``StateError`` if unreadable."""
    if "canaryWeight" in data and "desired" not in data:
        return _legacy(data)
    plain = dict(data)
    try:
        for key in _COMPACT:
            if isinstance(plain.get(key), str):
                plain[key] = json.loads(plain[key])
        return _STATE.validate_python(plain)
    except (ValidationError, ValueError, TypeError) as e:
        raise StateError(f"unreadable status.state: {str(e)[:500]}") from e


def schema() -> dict[str, Any]:
    """The JSON Schema of the stored state (serialised form), for the CRD's status."""
    raw: dict[str, Any] = _STATE.json_schema(mode="serialization", by_alias=True)
    props = raw.setdefault("properties", {})
    for key in _COMPACT:
        props[key] = {"type": "string", "nullable": True, "description": f"the judge's {key}, compact JSON (internal)"}
    return raw


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _legacy(data: Mapping[str, Any]) -> RolloutState:
    """A status written by rollout 0.1 (flat weights, prose pause reasons, its own judge memory)."""
    try:
        canary = int(data.get("canaryWeight", 0))
        prior = int(data.get("priorCanaryWeight", canary))
        desired, before = Weights.of_canary(canary), Weights.of_canary(prior)
        phase = Phase(data.get("phase", Phase.PENDING.value))
        reason = str(data.get("pauseReason") or "")
        pause = next((kind for prefix, kind in _LEGACY_PAUSES if reason.startswith(prefix)), None)
        if phase is Phase.PAUSED and pause is None:
            pause = PauseReason.MANUAL
        step_started = _time(data.get("stepStartedAt"))
        old = data.get("verdict")
        verdict = None
        if isinstance(old, Mapping) and old.get("kind"):
            verdict = Verdict(
                kind=VerdictKind(str(old["kind"])),
                checks=(),
                enough_data=bool(old.get("enough_data", False)),
                summary=str(old.get("summary", "")),
            )
        return RolloutState(
            phase=phase,
            revision=str(data.get("revision", "")),
            stable_backend=str(data.get("stableBackend", "")),
            canary_backend=str(data.get("canaryBackend", "")),
            step=int(data.get("step", 0)),
            desired=desired,
            observed=None,
            pending=PendingWrite(desired, before, step_started) if step_started and before != desired else None,
            run_started_at=_time(data.get("runStartedAt")),
            step_started_at=step_started,
            weight_since=step_started,
            unavailable_since=_time(data.get("unavailableSince")),
            pause_reason=pause if phase is Phase.PAUSED else None,
            pause_detail=reason,
            approval_requested_at=_time(data.get("approvalRequestedAt")),
            approved_by=str(data.get("approvedBy", "")),
            approvals=tuple(str(a) for a in data.get("approvals") or ()),
            verdict=verdict,
            verdict_step=int(data.get("step", 0)) if verdict else -1,
            message=str(data.get("message", "")),
            end_reason=str(data.get("endReason", "")),
            aborted_by=str(data.get("abortedBy", "")),
            handled_commands=tuple(str(c) for c in data.get("handledCommands") or ()),
            notified=tuple(str(n) for n in data.get("notified") or ()),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise StateError(f"unreadable status.state (rollout 0.1 format): {e}") from e


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
