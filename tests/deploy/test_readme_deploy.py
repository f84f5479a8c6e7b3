"""README's install, migration, GitOps and metrics sections stay true: the metric table is what the
telemetry exports, every setting they name exists, every ``--set`` names a chart value, the two
policies of "App Mesh after end of support" are valid and differ only in their router, and the
Argo CD jq paths cover every field the routers write (real writes on the real API server for each
router kind, and the ops each router plans for every route type) and only ``weight`` fields."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rollout.core.states import STABLE_ONLY, Weights
from rollout.core.verdicts import Check, Verdict, VerdictKind
from rollout.kube.client import KubeClient
from rollout.policy.loading import load_text
from rollout.policy.models import GatewayRouteRef, VirtualRouterRef
from rollout.routers.gatewayroute import GatewayRouteRouter
from rollout.routers.patching import KubeRouteRouter
from rollout.routers.virtualrouter import PROTOCOLS, VirtualRouterRouter
from rollout.runtime.telemetry import Telemetry
from rollout.settings import PrometheusSettings, setting_docs
from tests.harness.deploy_tools import CHART
from tests.harness.kube import REPO_ROOT
from tests.routers.cases import CANARY, STABLE, RouteCase, gateway_route, kube_case, virtual_router

README = (REPO_ROOT / "README.md").read_text()
_BLOCK = re.search(r"<!-- deploy:start[^>]*-->\n(.*?)<!-- deploy:end -->", README, re.S)
assert _BLOCK is not None, "README lost its deploy:start/deploy:end markers"
BLOCK = _BLOCK.group(1)
YAML_SNIPPETS = [yaml.safe_load(s) for s in re.findall(r"```yaml\n(.*?)```", BLOCK, re.S)]


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", BLOCK, re.S | re.M)
    assert match is not None, title
    return match.group(1)


# --- metrics and settings ---------------------------------------------------------------------


def test_the_metric_table_is_what_the_daemon_exports() -> None:
    table = re.search(r"<!-- metrics:start -->\n(.*?)<!-- metrics:end -->", BLOCK, re.S)
    assert table is not None
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*)\|", table.group(1), re.M)
    documented = {name: (kind, set(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}
    t = Telemetry()
    check = Check(name="errorRate", verdict=VerdictKind.PASS, value=0.01, limit=0.02, evidence=1.0, threshold=4.0)
    verdict = Verdict(kind=VerdictKind.PASS, checks=(check,), enough_data=True, summary="")
    t.observe("ns", "n", phase="Progressing", step=1, steps=2, canary_weight=5, desired_canary_weight=5,
              verdict=verdict)  # fmt: skip
    t.api_error("KubeError")
    t.reconcile_error("KubeError")
    exported = {}
    for family in text_string_to_metric_families(generate_latest(t.registry).decode()):
        if family.name.startswith("rolloutd_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = {k for s in family.samples for k in s.labels if k != "le"}
            exported[name] = (family.type if family.name != "rolloutd_build_info" else "gauge", labels)
    assert documented == exported


_PER_ENDPOINT = re.compile(r"\bROLLOUT_PROMETHEUS_ENDPOINTS__<name>__([A-Z_]+)\b")


def test_every_setting_the_sections_name_is_real() -> None:
    fields = set(_PER_ENDPOINT.findall(BLOCK))  # a named endpoint's field, e.g. its credentials
    assert fields
    assert fields <= {f.upper() for f in PrometheusSettings.model_fields}, fields
    named = set(re.findall(r"\bROLLOUT_[A-Z0-9_]+\b", _PER_ENDPOINT.sub("", BLOCK)))
    known = {doc.env for doc in setting_docs()}
    assert named
    assert named <= known, sorted(named - known)


def test_every_helm_set_names_a_chart_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = re.findall(r"--set ([\w.]+)=", BLOCK)
    assert len(keys) >= 6
    for key in keys:
        node: Any = values
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, key
            node = node[part]


def test_the_named_components_exist() -> None:
    components = next(s["components"] for s in YAML_SNIPPETS if isinstance(s, dict) and "components" in s)
    for path in components:
        assert (REPO_ROOT / "deploy" / "overlays" / "example" / path / "kustomization.yaml").is_file(), path


# --- App Mesh after end of support ----------------------------------------------------------


def test_the_migration_changes_only_the_router_line() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", section("App Mesh after end of support"), re.S)
    assert len(blocks) == 2
    before, after = (load_text(b, "README.md").rollouts[0].rollout for b in blocks)
    assert before.spec.router.gateway_route is not None
    assert after.spec.router.http_route is not None
    assert before.model_copy(update={"spec": before.spec.model_copy(update={"router": after.spec.router})}) == after
    changed = [line for line in blocks[1].splitlines() if line not in blocks[0].splitlines()]
    assert changed == ["# after the move: Gateway API", "    httpRoute: {name: recommendations}"]


# --- GitOps: the Argo CD paths against what the routers write ---------------------------------

_TOKEN = re.compile(r'\.(\w+)|\[\]|\["([^"]+)"\]')


def jq_pointers(expr: str, obj: Any) -> set[str]:
    """JSON pointers of the leaves a path expression (``.a.b[].c``, ``.a["k/x"]``) selects in ``obj``."""
    assert _TOKEN.sub("", expr) == "", f"unsupported jq: {expr}"
    nodes: list[tuple[str, Any]] = [("", obj)]
    for match in _TOKEN.finditer(expr):
        key = match.group(1) or match.group(2)
        step: list[tuple[str, Any]] = []
        for where, node in nodes:
            if key is None and isinstance(node, list):
                step += [(f"{where}/{i}", item) for i, item in enumerate(node)]
            elif key is not None and isinstance(node, dict) and key in node:
                step.append((f"{where}/{key.replace('~', '~0').replace('/', '~1')}", node[key]))
        nodes = step
    return {where for where, _ in nodes}


def ignored(kind: str, obj: dict[str, Any]) -> set[str]:
    argo = next(s for s in YAML_SNIPPETS if isinstance(s, dict) and "ignoreDifferences" in s.get("spec", {}))
    assert "RespectIgnoreDifferences=true" in argo["spec"]["syncPolicy"]["syncOptions"]
    (entry,) = [e for e in argo["spec"]["ignoreDifferences"] if e["kind"] == kind]
    assert entry["group"] == obj["apiVersion"].split("/")[0]
    return {p for expr in entry["jqPathExpressions"] for p in jq_pointers(expr, obj)}


def leaves(node: Any, where: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, sub in node.items() for k, v in leaves(sub, f"{where}/{key}").items()}
    if isinstance(node, list):
        return {k: v for i, sub in enumerate(node) for k, v in leaves(sub, f"{where}/{i}").items()}
    return {where: node}


def written(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Pointers of the spec leaves a write added, removed or changed."""
    old, new = leaves(before["spec"], "/spec"), leaves(after["spec"], "/spec")
    return {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}


KINDS = {"gatewayroute": "GatewayRoute", "virtualrouter": "VirtualRouter", "httproute": "HTTPRoute"}


@pytest.fixture
def cases(kube: KubeClient, namespace: str) -> dict[str, RouteCase]:
    return {k: kube_case(k, k, kube, namespace) for k in KINDS}


@pytest.mark.kube
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_argo_cd_ignores_every_field_a_real_write_changes_and_only_weights(
    cases: dict[str, RouteCase], kind: str
) -> None:
    case = cases[kind]
    case.create("gitops")
    before = case.live("gitops")
    case.router("gitops").set_weights(Weights.of_canary(30), expected=STABLE_ONLY)
    after = case.live("gitops")
    changes = written(before, after)
    assert changes, "the write changed nothing"
    paths = ignored(KINDS[kind], after)
    assert changes <= paths, f"a GitOps tool would revert {sorted(changes - paths)}"
    assert all(p.endswith("/weight") for p in paths), sorted(paths)


@pytest.mark.kube
def test_a_route_without_the_canary_gets_a_new_entry_hence_commit_both(cases: dict[str, RouteCase]) -> None:
    case = cases["gatewayroute"]
    case.create("gitops-no-canary", with_canary=False)
    before = case.live("gitops-no-canary")
    case.router("gitops-no-canary").set_weights(Weights.of_canary(30), expected=None)
    changes = written(before, case.live("gitops-no-canary"))
    assert not changes <= ignored("GatewayRoute", case.live("gitops-no-canary"))


def _planned(router: KubeRouteRouter, obj: dict[str, Any]) -> set[str]:
    """Pointers of the fields a router's JSON patch would write (``test`` ops only read)."""
    ops = [op for targets in router.locate(obj) for op in targets.ops(Weights.of_canary(40), "README")]
    return {op["path"] for op in ops if op["op"] != "test"}


def _renamed(obj: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``obj`` with every ``old`` route-type key renamed ``new`` (same targets, another protocol)."""
    text = yaml.safe_dump(obj).replace(f"{old}:", f"{new}:")
    renamed: dict[str, Any] = yaml.safe_load(text)
    return renamed


@pytest.mark.parametrize("route_type", ["httpRoute", "http2Route", "grpcRoute"])
def test_argo_cd_covers_every_gatewayroute_route_type(kube: KubeClient, route_type: str) -> None:
    obj = _renamed(gateway_route("gr", 100, 0, True), "httpRoute", route_type)
    ref = GatewayRouteRef.model_validate({"name": "gr", "routeType": route_type})
    planned = _planned(GatewayRouteRouter(kube, ref, "shop", STABLE, CANARY), obj)
    assert planned
    assert planned <= ignored("GatewayRoute", obj)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_argo_cd_covers_every_virtualrouter_protocol(kube: KubeClient, protocol: str) -> None:
    obj = _renamed(virtual_router("vr", 100, 0, True), "httpRoute", protocol)
    planned = _planned(
        VirtualRouterRouter(kube, VirtualRouterRef(name="vr", route="main"), "shop", STABLE, CANARY), obj
    )
    assert planned
    assert planned <= ignored("VirtualRouter", obj)


def test_argo_cd_needs_nothing_ignored_on_rollouts() -> None:
    argo = next(s for s in YAML_SNIPPETS if isinstance(s, dict) and "ignoreDifferences" in s.get("spec", {}))
    assert not [e for e in argo["spec"]["ignoreDifferences"] if e["kind"] == "Rollout"]


def test_the_flux_snippet_uses_flux_s_create_only_annotation() -> None:
    flux = [s for s in YAML_SNIPPETS if isinstance(s, dict) and "metadata" in s and "kind" not in s]
    assert flux == [{"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}}}]
