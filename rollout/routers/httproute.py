"""Gateway API HTTPRoute router: relative weights on ``spec.rules[].backendRefs[].weight``.

Owns which rules carry the split (one by index or name, or every rule naming both backends),
reading relative weights as percent (1/1 is 50/50) and the route's ``Accepted``/``ResolvedRefs``
conditions for its current generation. It writes integer percents on the two backends only; it
must not touch other rules, matches, filters, other backendRefs or any other field, and never
adds a backendRef (a Gateway API backend needs a port and kind only the user knows).
"""

from __future__ import annotations

from typing import Any

from rollout.errors import BackendNotInRoute, RouteNotAccepted
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import HTTPRouteRef
from rollout.routers.base import RouteReader, WriteGuard
from rollout.routers.patching import KubeRouteRouter, TargetList, backend_matches, pointer

HTTP_ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
DEFAULT_WEIGHT = 1  # Gateway API: a backendRef without weight has weight 1
BLOCKING_CONDITIONS = ("Accepted", "ResolvedRefs")


class HTTPRouteRouter(KubeRouteRouter):
    """Moves weight between the policy's two backendRefs in the chosen rule(s) of an HTTPRoute."""

    resource = HTTP_ROUTES

    def __init__(
        self,
        client: KubeClient,
        ref: HTTPRouteRef,
        namespace: str,
        stable: str,
        canary: str,
        *,
        guard: WriteGuard | None = None,
        reader: RouteReader | None = None,
    ) -> None:
        super().__init__(client, ref.name, namespace, stable, canary, guard=guard, reader=reader)
        self.rule = ref.rule
        self.rule_name = ref.rule_name

    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        where = self.describe()
        rules = obj.get("spec", {}).get("rules") or []
        if self.rule is not None or self.rule_name is not None:
            chosen = [
                i
                for i, r in enumerate(rules)
                if i == self.rule or (self.rule_name is not None and r.get("name") == self.rule_name)
            ]
            if not chosen:
                which = f"index {self.rule}" if self.rule is not None else f"name {self.rule_name!r}"
                raise BackendNotInRoute(f"{where} has no rule with {which} ({len(rules)} rules)")
        else:
            chosen = [
                i
                for i, r in enumerate(rules)
                if self._index(r, self.stable) is not None and self._index(r, self.canary) is not None
            ]
            if not chosen:
                raise BackendNotInRoute(
                    f"{where}: no rule has backendRefs naming both the stable "
                    f"{self.stable!r} and the canary {self.canary!r}"
                )
        found = []
        for i in chosen:
            stable, canary = self._index(rules[i], self.stable), self._index(rules[i], self.canary)
            if stable is None or canary is None:
                missing = self.stable if stable is None else self.canary
                raise BackendNotInRoute(f"{where}: rule {i} has no backendRef named {missing!r}")
            found.append(
                TargetList(
                    path=pointer("spec", "rules", i, "backendRefs"),
                    items=rules[i]["backendRefs"],
                    stable=stable,
                    canary=canary,
                    default_weight=DEFAULT_WEIGHT,
                )
            )
        return found

    def check_accepted(self, obj: dict[str, Any]) -> None:
        generation = obj.get("metadata", {}).get("generation")
        for parent in obj.get("status", {}).get("parents") or []:
            for cond in parent.get("conditions") or []:
                if (
                    cond.get("type") in BLOCKING_CONDITIONS
                    and cond.get("status") == "False"
                    and cond.get("observedGeneration") == generation
                ):
                    ref = parent.get("parentRef", {})
                    raise RouteNotAccepted(
                        f"{self.describe()}: parent {ref.get('kind', 'Gateway')} "
                        f"{ref.get('namespace', self.namespace)}/{ref.get('name', '?')} reports "
                        f"{cond['type']}=False ({cond.get('reason', '')}: {cond.get('message', '')}) "
                        f"for generation {generation}"
                    )

    def _index(self, rule: Any, backend: str) -> int | None:
        refs = rule.get("backendRefs") if isinstance(rule, dict) else None
        for i, ref in enumerate(refs or []):
            if backend_matches(ref, backend, self.namespace):
                return i
        return None
