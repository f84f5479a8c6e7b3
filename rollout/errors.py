"""The one exception tree of rollout. Adapters translate library errors into it (``raise ... from e``).

```
RolloutError
├── PolicyError             a policy file or Rollout object is invalid (carries every Problem)
├── SettingsError           the daemon's own configuration is invalid
├── RouterError             reading or writing route weights (or a managed route) failed
│   ├── RouteNotFound           the route object does not exist
│   ├── BackendNotInRoute       stable/canary are not targets of the route
│   ├── RouteForbidden          RBAC denied a verb on a resource
│   ├── RouteSchemaError        the cluster's schema cannot hold what we must write
│   ├── RouteConflict           a conditional write lost a race (retryable)
│   ├── WeightsDrifted          someone else changed the weights since our last write
│   ├── MatchDrifted            someone else changed an A/B step's managed route since our last write
│   └── RouteNotAccepted        the gateway has not accepted the route
├── MetricsError            asking Prometheus failed
│   ├── MetricsUnavailable      unreachable, timed out or 5xx (retryable)
│   └── MetricsQueryError       the query itself is wrong (bad PromQL, 4xx)
├── NotifierError           Slack (or another notifier) refused a message
├── KubeError               any other Kubernetes API failure
│   ├── KubeNotFound, KubeForbidden, KubeConflict, KubeInvalid
└── NotLeader               this replica must not write (lost or never held the lease)
```
This module must not import anything outside the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass


class RolloutError(Exception):
    """Root of every error rollout raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy, located as precisely as the source allows."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(RolloutError):
    """A policy is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SettingsError(RolloutError):
    """The daemon's settings are invalid."""


class RouterError(RolloutError):
    """Reading or writing route weights (or an A/B step's managed route) failed."""


class RouteNotFound(RouterError):
    """The route object does not exist."""


class BackendNotInRoute(RouterError):
    """The policy's stable or canary backend is not a target of the route."""


class RouteForbidden(RouterError):
    """The API server's RBAC refused a verb on a resource."""


class RouteSchemaError(RouterError):
    """The cluster's schema for the route cannot hold the weights we must write."""


class RouteConflict(RouterError):
    """A conditional write lost a race with another writer; re-read and recompute."""


class WeightsDrifted(RouterError):
    """The live weights are not the ones rollout last wrote: someone else changed them."""

    def __init__(self, message: str, *, canary: int, stable: int) -> None:
        super().__init__(message)
        self.canary = canary
        self.stable = stable


class MatchDrifted(RouterError):
    """The A/B step's managed route is not the one rollout last wrote: someone else changed it."""


class RouteNotAccepted(RouterError):
    """The gateway has not accepted the route (Gateway API conditions)."""


class MetricsError(RolloutError):
    """Asking the metrics backend failed."""


class MetricsUnavailable(MetricsError):
    """The metrics backend is unreachable, timed out or answered 5xx."""


class MetricsQueryError(MetricsError):
    """The query is wrong (bad PromQL or a 4xx answer); retrying will not help."""

    def __init__(self, message: str, *, query: str) -> None:
        super().__init__(f"{message} (query: {query})")
        self.query = query


class NotifierError(RolloutError):
    """A notifier refused or failed to deliver a message."""


class KubeError(RolloutError):
    """A Kubernetes API call failed."""


class KubeNotFound(KubeError):
    """The object does not exist."""


class KubeForbidden(KubeError):
    """RBAC refused the request."""


class KubeConflict(KubeError):
    """A conditional write (resourceVersion or JSON-patch test) failed."""


class KubeInvalid(KubeError):
    """The API server rejected the object as invalid (422)."""


class NotLeader(RolloutError):
    """This replica does not hold the leader lease and must not write."""
