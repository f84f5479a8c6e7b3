"""The conditional-write machinery shared by the Kubernetes routers.

Owns: reading a route through ``KubeClient``, turning the targets lists a router locates into
one atomic JSON patch (``test`` ops on every list it changes, then weight edits, and the canary
entry appended when missing and allowed; a single ``target`` switched between the two backends
for 0% and 100%), drift checks, the write guard, the read-back check, and the translation of
``KubeError``s into ``RouterError``s. Each backend only says where its targets lists are
(``locate``) and, for an A/B step, where its managed entries live in its own object
(``managed``: routes of a VirtualRouter, rules of an HTTPRoute), which are put in place, changed
or removed by one conditional patch of that list that leaves every entry the user wrote as it
was. It must not retry (one attempt per call) nor touch any other field.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rollout.core.matches import RouteMatch
from rollout.core.states import Weights
from rollout.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    MatchDrifted,
    RouteConflict,
    RouteForbidden,
    RouteNotFound,
    RouterError,
    RouteSchemaError,
    WeightsDrifted,
)
from rollout.kube.client import KubeClient, Resource
from rollout.routers.base import RouteOwner, RouteReader, WriteGuard
from rollout.routers.matching import foreign
from rollout.routers.splitting import check_target, percent_split

Entry = dict[str, Any]


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from path segments."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def backend_matches(ref: object, backend: str, route_namespace: str) -> bool:
    """Whether an object reference ``{name, namespace?}`` names ``backend`` (``name`` or ``ns/name``)."""
    if not isinstance(ref, dict):
        return False
    namespace, _, name = backend.rpartition("/")
    return ref.get("name") == name and (ref.get("namespace") or route_namespace) == (namespace or route_namespace)


def backend_ref(backend: str) -> dict[str, str]:
    """The ``{name, namespace?}`` reference for a backend written ``name`` or ``ns/name``."""
    namespace, _, name = backend.rpartition("/")
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


@dataclass
class TargetList:
    """One list of weighted targets inside a route, as read.

    ``items is None`` means the list is absent (the object carries a single ``target`` instead);
    then ``reading`` holds what that target means as weights, and a write must create the list
    under ``parent`` (tested whole, so the write is conditional).
    """

    path: str  # JSON pointer to the list
    items: list[Entry] | None
    stable: int  # index of the stable entry (in items or reading)
    canary: int | None  # index of the canary entry, None when missing
    default_weight: int = 0  # weight of an entry without a weight field
    new_canary: Entry | None = None  # entry to append when the canary is missing
    max_items: int | None = None
    reading: list[Entry] = field(default_factory=list)
    parent: tuple[str, Entry] | None = None  # (pointer, value) of the object holding the list
    switch: tuple[str, Entry, Entry] | None = None  # single target: (pointer, stable entry, canary entry)

    @property
    def entries(self) -> list[Entry]:
        return self.items if self.items is not None else self.reading

    def weight(self, index: int | None) -> int:
        if index is None:
            return 0
        value = self.entries[index].get("weight", self.default_weight)
        return int(value) if isinstance(value, int) else self.default_weight

    def split(self, where: str) -> Weights:
        return percent_split(canary=self.weight(self.canary), stable=self.weight(self.stable), where=where)

    def ops(self, target: Weights, where: str) -> list[dict[str, Any]]:
        """The JSON patch ops that set ``target`` on this list, guarded by a ``test`` of the list."""
        if self.items is None:
            if self.switch is not None and self.parent is not None and target.canary in (0, 100):
                pointer_to, stable_entry, canary_entry = self.switch  # all to one backend: switch the target
                entry = canary_entry if target.canary == 100 else stable_entry
                return [
                    {"op": "test", "path": self.parent[0], "value": self.parent[1]},
                    {"op": "replace", "path": pointer_to, "value": entry},
                ]
            if self.parent is None or self.new_canary is None:
                raise RouteSchemaError(f"{where}: the route has no targets list at {self.path}")
            stable_entry = copy.deepcopy(self.reading[self.stable])
            stable_entry["weight"] = target.stable
            canary_entry = dict(self.new_canary, weight=target.canary)
            parent_path, parent_value = self.parent
            return [
                {"op": "test", "path": parent_path, "value": parent_value},
                {"op": "add", "path": self.path, "value": [stable_entry, canary_entry]},
            ]
        ops: list[dict[str, Any]] = [{"op": "test", "path": self.path, "value": self.items}]
        for index, weight in ((self.stable, target.stable), (self.canary, target.canary)):
            if index is None:
                continue
            op = "replace" if "weight" in self.items[index] else "add"
            ops.append({"op": op, "path": pointer_join(self.path, index, "weight"), "value": weight})
        if self.canary is None:
            if self.new_canary is None:
                raise RouterError(f"{where}: canary is not a target of {self.path}")
            if self.max_items is not None and len(self.items) >= self.max_items:
                raise RouteSchemaError(
                    f"{where}: cannot add the canary to {self.path}: it already has "
                    f"{len(self.items)} targets, the schema allows at most {self.max_items}"
                )
            ops.append(
                {
                    "op": "add",
                    "path": pointer_join(self.path, "-"),
                    "value": dict(self.new_canary, weight=target.canary),
                }
            )
        return ops


def pointer_join(base: str, *parts: str | int) -> str:
    return base + pointer(*parts)


@dataclass
class ManagedEntries:
    """An A/B step's managed entries inside a route object: ``items`` is the list at ``path``
    (JSON pointer), ``indices`` the managed ones in it, ``parsed`` rollout's conditions read from
    them (None: there are none); ``build`` renders the entries rollout writes for a match (new
    ones go at ``insert_at``, None: the end)."""

    path: str
    items: list[Entry]
    indices: list[int]
    parsed: RouteMatch | None
    build: Callable[[RouteMatch], list[Entry]]
    insert_at: int | None = None

    def match(self) -> RouteMatch | None:
        """What the managed entries carry: ``parsed``, marked foreign unless they are exactly what
        rollout writes for it (someone edited them, or the user's entry they copy changed)."""
        if self.parsed is None:
            return None
        live = [self.items[i] for i in self.indices]
        try:
            expected = self.build(self.parsed)
        except RouterError as e:
            return foreign(self.parsed, str(e))
        if expected == live:
            return self.parsed
        return foreign(self.parsed, "not what rollout writes for it (edited, or the route it copies changed)")

    def written(self, target: RouteMatch | None) -> list[Entry]:
        """The whole list with the managed entries for ``target`` (None: without any)."""
        kept = [entry for i, entry in enumerate(self.items) if i not in self.indices]
        if target is None:
            return kept
        at = len(kept) if self.insert_at is None else self.insert_at
        return [*kept[:at], *self.build(target), *kept[at:]]


@contextmanager
def route_errors(where: str) -> Iterator[None]:
    """Translate ``KubeError``s raised inside the block into ``RouterError``s about ``where``."""
    try:
        yield
    except KubeNotFound as e:
        raise RouteNotFound(f"{where} does not exist: {e}") from e
    except KubeForbidden as e:
        raise RouteForbidden(f"{where}: {e}") from e
    except KubeConflict as e:
        raise RouteConflict(f"{where} changed between read and write: {e}") from e
    except KubeInvalid as e:
        raise RouteSchemaError(f"{where}: the API server's schema rejected the weights: {e}") from e
    except KubeError as e:
        raise RouterError(f"{where}: {e}") from e


class KubeRouteRouter(abc.ABC):
    """Base of the routers that edit weights on a Kubernetes object; subclasses implement ``locate``."""

    resource: ClassVar[Resource]

    def __init__(
        self,
        client: KubeClient,
        name: str,
        namespace: str,
        stable: str,
        canary: str,
        *,
        guard: WriteGuard | None = None,
        reader: RouteReader | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.stable = stable
        self.canary = canary
        self.guard: Callable[[], None] = guard or (lambda: None)
        self.reader = reader

    def describe(self) -> str:
        return f"{self.resource.kind} {self.namespace}/{self.name}"

    # --- for subclasses ---------------------------------------------------------------------

    @abc.abstractmethod
    def locate(self, obj: dict[str, Any]) -> list[TargetList]:
        """Every targets list whose weights this router moves; raises ``BackendNotInRoute``."""

    def check_accepted(self, obj: dict[str, Any]) -> None:  # noqa: B027 - a hook; most routes have no status
        """Raise ``RouteNotAccepted`` when the data plane reports it rejected the route (default: no check)."""

    def schema_error(self, path: str) -> RouteSchemaError:
        return RouteSchemaError(f"{self.describe()}: the API server dropped {path} from the write")

    def managed(self, obj: dict[str, Any]) -> ManagedEntries:
        """Where this route keeps an A/B step's managed entries (routers that keep them inside the
        route object override this)."""
        raise RouteSchemaError(f"{self.describe()}: this route cannot carry an A/B step's managed route")

    # --- the Protocol -----------------------------------------------------------------------

    def read(self, *, fresh: bool = False) -> dict[str, Any]:
        """The route object: from the reader's cache when there is one (unless ``fresh``), else a GET."""
        with route_errors(self.describe()):
            if self.reader is not None and not fresh:
                return self.reader(self.resource, self.namespace, self.name)
            return self.client.get(self.resource, self.namespace, self.name)

    def get_weights(self) -> Weights:
        obj = self.read()
        self.check_accepted(obj)
        return self.locate(obj)[0].split(self.describe())

    def set_weights(self, target: Weights, *, expected: Weights | None) -> Weights:
        check_target(target)
        where = self.describe()
        lists = self.locate(self.read(fresh=True))
        live = lists[0].split(where)
        if expected is not None:
            drifted = [t for t in lists if t.split(where) != expected]
            if drifted:
                got = drifted[0].split(where)
                raise WeightsDrifted(
                    f"{where}: live weights at {drifted[0].path} are {got}, rollout expected "
                    f"{expected}; someone else changed them, nothing was written",
                    canary=got.canary,
                    stable=got.stable,
                )
        if all(t.split(where) == target and (t.items is None or t.canary is not None) for t in lists):
            return live
        ops = [op for t in lists for op in t.ops(target, where)]
        if any(t.items is None and not (t.switch and target.canary in (0, 100)) for t in lists):
            self._dry_run(ops)
        self.guard()
        with route_errors(where):
            written = self.client.json_patch(self.resource, self.namespace, self.name, ops)
        if self.reader is not None:
            self.reader.written(self.resource, written)
        return self._verify(target, written)

    def get_match(self) -> RouteMatch | None:
        return self.managed(self.read()).match()

    def set_match(
        self, target: RouteMatch | None, *, expected: RouteMatch | None, check: bool, owner: RouteOwner | None
    ) -> RouteMatch | None:
        del owner  # entries inside the user's object carry no labels: they are known by name
        where = self.describe()
        entries = self.managed(self.read(fresh=True))
        live = entries.match()
        if check and live != expected:
            raise MatchDrifted(
                f"{where}: the managed route carries {live}, rollout expected {expected}; nothing was written"
            )
        if live == target:
            return live
        ops = [
            {"op": "test", "path": entries.path, "value": entries.items},
            {"op": "replace", "path": entries.path, "value": entries.written(target)},
        ]
        self.guard()
        with route_errors(where):
            written = self.client.json_patch(self.resource, self.namespace, self.name, ops)
        if self.reader is not None:
            self.reader.written(self.resource, written)
        got = self.managed(written).match()
        if got != target:
            raise MatchDrifted(f"{where}: wrote the managed route {target} but the API server stored {got}")
        return got

    def _dry_run(self, ops: list[dict[str, Any]]) -> None:
        """Creating a targets list: ask the server what it would store, and refuse if it prunes it."""
        with route_errors(self.describe()):
            would_store = self.client.json_patch(self.resource, self.namespace, self.name, ops, dry_run=True)
        for t in self.locate(would_store):
            if t.items is None:
                raise self.schema_error(t.path)

    def _verify(self, target: Weights, written: dict[str, Any]) -> Weights:
        """Check the object the API server stored (the PATCH's answer) carries ``target``."""
        where = self.describe()
        lists = self.locate(written)
        for t in lists:
            got = t.split(where)
            if t.items is None and got != target:
                raise self.schema_error(t.path)
            if got != target:
                raise WeightsDrifted(
                    f"{where}: wrote {target} but the API server stored {got} at {t.path}",
                    canary=got.canary,
                    stable=got.stable,
                )
        return target
