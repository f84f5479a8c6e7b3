"""The Router Protocol: read and conditionally write the canary/stable split of one route.

Owns the contract every router backend honours (see ``tests/routers/test_contract.py``). Routers
move weight only between the two backends a policy names and never touch any other field. They
make exactly one attempt per call: retrying lives in ``rollout.runtime.retrying``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rollout.core.states import Weights

WriteGuard = Callable[[], None]
"""Called immediately before every write; raises ``NotLeader`` when this replica must not write."""


class Router(Protocol):
    """One route, bound to the policy's stable and canary backends."""

    def describe(self) -> str:
        """Human name of the route, e.g. ``GatewayRoute default/recommendation-canary-gateway-route``."""
        ...

    def get_weights(self) -> Weights:
        """Read the live split in percent (relative weights are normalised to 100).

        Raises ``RouteNotFound``, ``BackendNotInRoute``, ``RouteForbidden``, ``RouteNotAccepted``.
        """
        ...

    def set_weights(self, target: Weights, *, expected: Weights | None) -> Weights:
        """Write ``target`` conditionally and return the weights read back after the write.

        ``expected`` is what rollout believes the route carries now; when the live weights differ,
        raise ``WeightsDrifted`` and write nothing. ``None`` skips that check (first write of a run,
        rollback). The write is atomic (one JSON patch with ``test`` ops) and verified by reading
        back; a lost race raises ``RouteConflict``; a cluster that cannot hold the write raises
        ``RouteSchemaError`` and leaves the object unchanged.
        """
        ...
