"""MemoryRouter: an in-memory route honouring the Router contract, for the simulator and tests.

Owns a split and an A/B step's managed route held in memory with a version counter, so that it
behaves like a real route: drift is reported, the write guard runs before every write, a write
that races with ``edit`` (someone else changing the route between our read and our write) raises
``RouteConflict``, and a deleted route raises ``RouteNotFound``. It records every write rollout
made. It must do no I/O.
"""

from __future__ import annotations

from rollout.core.matches import RouteMatch
from rollout.core.states import STABLE_ONLY, Weights
from rollout.errors import MatchDrifted, RouteConflict, RouteNotFound, WeightsDrifted
from rollout.routers.base import RouteOwner, WriteGuard
from rollout.routers.splitting import check_target


class MemoryRouter:
    """A fake route: ``seed`` sets weights, ``edit`` plays another writer, ``writes`` records ours."""

    def __init__(
        self,
        stable: str = "stable",
        canary: str = "canary",
        *,
        weights: Weights = STABLE_ONLY,
        name: str = "memory",
        guard: WriteGuard | None = None,
    ) -> None:
        self.stable = stable
        self.canary = canary
        self.name = name
        self.guard = guard
        self.writes: list[Weights] = []
        self.match_writes: list[RouteMatch | None] = []
        self.owner: RouteOwner | None = None  # who the managed route was created for
        self._weights: Weights | None = weights
        self._match: RouteMatch | None = None
        self._version = 0

    def describe(self) -> str:
        return f"MemoryRouter {self.name}"

    # --- what a test or the simulator does to the route -------------------------------------

    def seed(self, weights: Weights) -> None:
        """Set the route's weights (as its initial state); not recorded as a write."""
        self._weights = weights
        self._version += 1

    def edit(self, weights: Weights) -> None:
        """Someone else changes the weights (a person with kubectl, another controller)."""
        self.seed(weights)

    def touch(self) -> None:
        """Someone else changes the route without changing the weights (still a concurrent write)."""
        self._version += 1

    def edit_match(self, match: RouteMatch | None) -> None:
        """Someone else creates, changes or deletes the managed route."""
        self._match = match
        self._version += 1

    def peek(self) -> tuple[Weights | None, RouteMatch | None]:
        """What the route carries, for whoever simulates its traffic (not a read through the Protocol)."""
        return self._weights, self._match

    def delete(self) -> None:
        self._weights = None
        self._version += 1

    # --- the Protocol -----------------------------------------------------------------------

    def get_weights(self) -> Weights:
        if self._weights is None:
            raise RouteNotFound(f"{self.describe()} does not exist")
        return self._weights

    def set_weights(self, target: Weights, *, expected: Weights | None) -> Weights:
        check_target(target)
        live = self.get_weights()
        read_version = self._version
        if expected is not None and live != expected:
            raise WeightsDrifted(
                f"{self.describe()}: live weights are {live}, rollout expected {expected}; nothing was written",
                canary=live.canary,
                stable=live.stable,
            )
        if live == target:
            return live
        if self.guard is not None:
            self.guard()
        if self._version != read_version:
            raise RouteConflict(f"{self.describe()} changed between read and write")
        self._weights = target
        self._version += 1
        self.writes.append(target)
        return self.get_weights()

    def get_match(self) -> RouteMatch | None:
        self.get_weights()  # the route must exist
        return self._match

    def set_match(
        self, target: RouteMatch | None, *, expected: RouteMatch | None, check: bool, owner: RouteOwner | None
    ) -> RouteMatch | None:
        live = self.get_match()
        read_version = self._version
        if check and live != expected:
            raise MatchDrifted(f"{self.describe()}: the managed route is {live}, rollout expected {expected}")
        if live == target:
            return live
        if self.guard is not None:
            self.guard()
        if self._version != read_version:
            raise RouteConflict(f"{self.describe()} changed between read and write")
        self._match = target
        self.owner = owner if target is not None else None
        self._version += 1
        self.match_writes.append(target)
        return self.get_match()
