"""Which changes of a Rollout's status must reach the API server at once, and when the rest is due.

Owns two rules of the reconciler's status writes. ``material``: a status without the judge's
running numbers (its memory, baseline, verdict and their times), with the numbers inside its
messages masked; what differs there is written at once. ``flush_due``: the rest (the judge's
numbers alone) is written once per flush period, each rollout's periods shifted by a stable phase
of its own so that rollouts judged on the same batches do not all flush in the same tick. It
decides nothing about rollouts and does no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

_JUDGE_FIELDS = ("judge", "baseline", "verdict", "verdictStep", "judgedAt")
_NUMBER = re.compile(r"\d[\d,.]*")


def material(status: Mapping[str, Any]) -> dict[str, Any]:
    """A status without the judge's running numbers (what must reach the API server at once).

    Messages describe the state in words and numbers; every number that matters apart from the
    judge's is also a field of the state, so a message whose words did not change is not material
    ("pass: ... 2,403 canary requests" -> "... 2,643 ..."), while a changed sentence is
    ("hold: not enough evidence" -> "pass: ...")."""
    out = {k: v for k, v in status.items() if k != "verdict"}
    if isinstance(out.get("message"), str):
        out["message"] = _NUMBER.sub("#", out["message"])
    state = status.get("state")
    if isinstance(state, Mapping):
        out["state"] = {k: v for k, v in state.items() if k not in _JUDGE_FIELDS}
        if isinstance(state.get("message"), str):
            out["state"]["message"] = _NUMBER.sub("#", state["message"])
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        out["conditions"] = [
            {**c, "message": _NUMBER.sub("#", c["message"])}
            if isinstance(c, Mapping) and isinstance(c.get("message"), str)
            else c
            for c in conditions
        ]
    return out


def flush_due(key: str, written: float, now: float, period: float) -> bool:
    """Whether the judge's numbers of rollout ``key``, last written at ``written`` (monotonic
    seconds), are due at ``now``: a boundary of its flush periods lies between the two. With N
    rollouts about N * interval / period are due per tick; the numbers go unwritten for at most
    one period plus one interval. ``period`` <= 0: always."""
    if period <= 0:
        return True
    offset = phase(key) * period
    return (now + offset) // period != (written + offset) // period


def phase(key: str) -> float:
    """A stable fraction in [0, 1) for ``key`` (SHA-256, not the per-process salted ``hash()``)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
