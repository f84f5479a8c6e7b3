"""``Resource``: the name of a custom resource type (group, version, plural, kind).

Owns nothing but that value type, so that modules which only name resource types (routers, the
Rollout and RolloutCommand object layouts, ``rollout simulate``) need not import the Kubernetes
client. It must not import ``kubernetes``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """A custom resource type: API group, version, plural and kind."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def name(self) -> str:
        """``plural.group`` as RBAC and ``kubectl`` spell it, e.g. ``gatewayroutes.appmesh.k8s.aws``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version
