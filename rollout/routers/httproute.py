"""Gateway API HTTPRoute router: relative weights on ``spec.rules[].backendRefs[].weight``.

Owns which rules carry the split (one by index or name among the rules the user wrote, or every
rule naming both backends), reading relative weights as percent (1/1 is 50/50) and the route's
``Accepted``/``ResolvedRefs`` conditions for its current generation. It writes integer percents
on the two backends only; it must not touch other rules, matches, filters, other backendRefs or
any other field, and never adds a backendRef to a user's rule (a Gateway API backend needs a
port and kind only the user knows). An A/B step's managed rules, ``rollout-ab-<rule>``, go
before the user's rules: each a copy of a rule that carries the split (matches, filters,
timeouts) with rollout's ``headers``/``queryParams`` conditions in front of each match's own
(so it is more specific: Gateway API prefers more header matches), sending everything to the
canary's backendRef as the user wrote it.
"""

from __future__ import annotations

import copy
from typing import Any

from rollout.core.matches import RouteMatch
from rollout.errors import BackendNotInRoute, RouteNotAccepted
from rollout.kube.client import KubeClient, Resource
from rollout.policy.models import HTTPRouteRef
from rollout.routers.base import MANAGED_PREFIX, RouteReader, WriteGuard
from rollout.routers.matching import foreign, gateway_condition, read_conditions, with_conditions
from rollout.routers.patching import KubeRouteRouter, ManagedEntries, TargetList, backend_matches, pointer

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

    def _chosen(self, rules: list[Any]) -> list[int]:
        """Indexes (in ``rules``) of the rules the user wrote that carry the split."""
        where = self.describe()
        users = [i for i, r in enumerate(rules) if not _managed(r)]
        if self.rule is not None or self.rule_name is not None:
            chosen = [
                i
                for n, i in enumerate(users)
                if n == self.rule or (self.rule_name is not None and rules[i].get("name") == self.rule_name)
            ]
            if not chosen:
                which = f"index {self.rule}" if self.rule is not None else f"name {self.rule_name!r}"
                raise BackendNotInRoute(f"{where} has no rule with {which} ({len(users)} rules)")
            return chosen
        return [
            i
            for i in users
            if self._index(rules[i], self.stable) is not None and self._index(rules[i], self.canary) is not None
        ]

    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        where = self.describe()
        rules = obj.get("spec", {}).get("rules") or []
        chosen = self._chosen(rules)
        if self.rule is None and self.rule_name is None and not chosen:
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

    # --- A/B steps: managed rules before the user's -----------------------------------------

    def managed(self, obj: dict[str, Any]) -> ManagedEntries:
        self.locate(obj)  # the rules it copies must carry both backends
        rules: list[Any] = obj.get("spec", {}).get("rules") or []
        chosen = self._chosen(rules)
        users = [i for i, r in enumerate(rules) if not _managed(r)]
        names = {i: f"{MANAGED_PREFIX}{rules[i].get('name') or users.index(i)}" for i in chosen}
        mine = [i for i, r in enumerate(rules) if _managed(r)]
        parsed = None
        if mine:
            first = rules[mine[0]]
            copied = next((i for i, n in names.items() if n == first.get("name")), None)
            own = (first.get("matches") or [{}])[0]
            theirs = (rules[copied].get("matches") or [{}])[0] if copied is not None else {}
            headers, odd = read_conditions(own.get("headers") or [], theirs.get("headers") or [], gateway=True)
            query, odd_query = read_conditions(
                own.get("queryParams") or [], theirs.get("queryParams") or [], gateway=True
            )
            parsed = RouteMatch(headers=headers, query=query)
            if odd or odd_query:
                parsed = foreign(parsed, f"conditions rollout never writes: {odd or odd_query}")

        def build(match: RouteMatch) -> list[dict[str, Any]]:
            return [self._managed_rule(rules[i], names[i], match) for i in chosen]

        return ManagedEntries(pointer("spec", "rules"), rules, mine, parsed, build, insert_at=0)

    def _managed_rule(self, rule: dict[str, Any], name: str, match: RouteMatch) -> dict[str, Any]:
        where = self.describe()
        headers = [gateway_condition(h, where) for h in match.headers]
        query = [gateway_condition(q, where) for q in match.query]
        matches = []
        for original in rule.get("matches") or [{}]:
            one = copy.deepcopy(original)
            if headers:
                one["headers"] = with_conditions(one.get("headers"), headers)
            if query:
                one["queryParams"] = with_conditions(one.get("queryParams"), query)
            matches.append(one)
        canary = self._index(rule, self.canary)
        assert canary is not None  # _chosen keeps rules naming both backends
        backend = dict(copy.deepcopy(rule["backendRefs"][canary]), weight=1)
        copied = {k: copy.deepcopy(v) for k, v in rule.items() if k not in ("name", "matches", "backendRefs")}
        return {"name": name, "matches": matches, **copied, "backendRefs": [backend]}


def _managed(rule: Any) -> bool:
    return isinstance(rule, dict) and str(rule.get("name", "")).startswith(MANAGED_PREFIX)
