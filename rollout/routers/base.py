"""The Router Protocol: read and conditionally write the canary/stable split of one route, and the
managed route (or rule) of an A/B step that sends the requests matching a header to the canary.

Owns the contract every router backend honours (see ``tests/routers/test_contract.py``). Routers
move weight only between the two backends a policy names, and create, change or remove only the
route or rule they manage (recognised by its name, and for a separate object by its labels);
they never touch any other field or a rule the user wrote. They make exactly one attempt per
call: retrying lives in ``rollout.runtime.retrying``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rollout.core.matches import RouteMatch
from rollout.core.states import Weights
from rollout.kube.resources import Resource

WriteGuard = Callable[[], None]
"""Called immediately before every write; raises ``NotLeader`` when this replica must not write."""

MANAGED_BY = "rollout"  # the app.kubernetes.io/managed-by label of objects rollout creates
ROLLOUT_LABEL = "delivery.rollout.dev/rollout"  # the Rollout a managed object belongs to
ROUTE_LABEL = "delivery.rollout.dev/route"  # the user's route a managed object accompanies
MANAGED_PREFIX = "rollout-ab-"  # names of managed routes, rules and companion objects


@dataclass(frozen=True)
class RouteOwner:
    """The Rollout a managed route belongs to: it is labelled with its name, and (same namespace,
    uid known) owned by it, so that deleting the Rollout deletes it too."""

    name: str
    namespace: str
    uid: str = ""


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

        ``expected`` is what rollout believes the route carries now; when the live weights differ,
        raise ``WeightsDrifted`` and write nothing. ``None`` skips that check (first write of a run,
        rollback). The write is atomic (one JSON patch with ``test`` ops) and verified by reading
        back; a lost race raises ``RouteConflict``; a cluster that cannot hold the write raises
        ``RouteSchemaError`` and leaves the object unchanged.
        """
        ...

    def get_match(self) -> RouteMatch | None:
        """Read the A/B step's managed route: the match it sends to the canary, None when there is none.

        A managed route carrying anything rollout does not write (another target, a header
        condition rollout cannot express) is returned with ``RouteMatch.extra`` saying what.
        Raises what ``get_weights`` raises.
        """
        ...

    def set_match(
        self, target: RouteMatch | None, *, expected: RouteMatch | None, check: bool, owner: RouteOwner | None
    ) -> RouteMatch | None:
        """Put the managed route in place carrying ``target`` (None: remove it) and return what is
        read back after the write.

        With ``check``, when the managed route is not ``expected`` (None: absent) raise
        ``MatchDrifted`` and write nothing. The managed route copies the user's route (its path
        match, filters, gateway...) plus ``target``, sends what matches to the canary only, and
        takes precedence over the user's route; ``owner`` labels (and owns) what is created. A
        lost race raises ``RouteConflict``; a route that cannot express the match (a tcpRoute, a
        user route at the highest priority already, a full rules list) raises ``RouteSchemaError``
        and changes nothing.
        """
        ...
