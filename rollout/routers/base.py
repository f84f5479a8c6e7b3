"""The Router Protocol: read and conditionally write the canary/stable split of one route.

Owns the contract every router backend honours (see ``tests/routers/test_contract.py``). Routers
move weight only between the two backends a policy names and never touch any other field. They
make exactly one attempt per call: retrying lives in ``rollout.runtime.retrying``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rollout.core.states import Weights
from rollout.kube.resources import Resource

WriteGuard = Callable[[], None]
"""Called immediately before every write; raises ``NotLeader`` when this replica must not write."""


class RouteReader(Protocol):
    """Where a router reads route objects from (an informer cache), and tells about its writes."""

    def __call__(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]: ...

    def written(self, resource: Resource, obj: Mapping[str, Any]) -> None: ...


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

        The route is read afresh (never from a cache) before writing. ``expected`` is what rollout
        believes the route carries now; when the live weights differ, raise ``WeightsDrifted`` and
        write nothing; ``None`` skips that check (a rollback). The write is atomic (one JSON patch
        with ``test`` ops on every list it changes) and verified on the object the API server
        stored; a lost race raises ``RouteConflict``; a cluster that cannot hold the write raises
        ``RouteSchemaError`` and leaves the object unchanged.
        """
        ...
