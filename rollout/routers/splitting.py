"""Turning route weights into a percent split: largest-remainder rounding of relative weights.

Owns the one rule for reading weights that are relative (Gateway API ``backendRefs[].weight``,
App Mesh ``weightedTargets[].weight``) as integer percentages that sum to 100. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollout.core.states import Weights
from rollout.errors import RouterError


def largest_remainder(values: Sequence[int], total: int = 100) -> list[int]:
    """Scale non-negative integers to integers summing to ``total`` (Hamilton's method).

    Every share is floored, then the leftover units go to the largest fractional parts; ties go
    to the earlier value. ``[1, 1] -> [50, 50]``, ``[1, 2] -> [33, 67]``, ``[1, 1, 1] -> [34, 33, 33]``.
    """
    if any(v < 0 for v in values):
        raise ValueError(f"weights must be non-negative, got {list(values)}")
    whole = sum(values)
    if whole == 0:
        raise ValueError("cannot split a total weight of 0")
    floors = [v * total // whole for v in values]
    remainders = [v * total % whole for v in values]
    leftover = total - sum(floors)
    order = sorted(range(len(values)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        floors[i] += 1
    return floors


def percent_split(*, canary: int, stable: int, where: str) -> Weights:
    """The canary/stable split in percent of two relative weights; a tie in rounding favours stable."""
    if canary == 0 and stable == 0:
        raise RouterError(f"{where}: both stable and canary carry weight 0, so there is no split to read")
    stable_pct, canary_pct = largest_remainder([stable, canary])
    return Weights(canary=canary_pct, stable=stable_pct)


def check_target(target: Weights) -> None:
    """Reject a target split that is not integers 0..100 summing to 100 (before any write)."""
    ok = (
        isinstance(target, Weights)
        and all(type(w) is int for w in (target.canary, target.stable))
        and 0 <= target.canary <= 100
        and 0 <= target.stable <= 100
        and target.canary + target.stable == 100
    )
    if not ok:
        raise RouterError(
            f"invalid target weights {target!r}: need integers 0..100 summing to 100; nothing was written"
        )
