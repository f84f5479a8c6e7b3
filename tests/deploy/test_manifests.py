"""The kustomize base, the optional components and the example overlay, read as YAML: every file
listed and nothing missing, the objects an install needs (and nothing that needs the Prometheus
Operator in the base), the daemon's hardening, its settings' names, least-privilege RBAC, and the
overlay's policies are valid. Rendered with the kustomize binary ``make deploy-tools`` builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollout.kube.crd import NAME
from rollout.policy.loading import load_paths
from rollout.settings import setting_docs
from tests.deploy.manifests import (
    BASE,
    COMPONENTS,
    EXAMPLE_OVERLAY,
    base_objects,
    documents,
    find,
    kustomization,
)
from tests.harness.deploy_tools import ToolError, kustomize_build

SYSTEM = "rollout-system"
SETTINGS = {
    "ROLLOUT_PROMETHEUS__URL",
    "ROLLOUT_WATCH_NAMESPACES",
    "ROLLOUT_POLICY_DIR",
    "ROLLOUT_LOG_FORMAT",
}


def _yaml_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.suffix in (".yaml", ".yml")} - {"kustomization.yaml"}


def test_the_base_kustomization_lists_every_file_and_only_existing_ones() -> None:
    resources = kustomization()["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    assert set(resources) == _yaml_files(BASE)


def test_the_base_has_what_an_install_needs() -> None:
    objects = base_objects()
    inventory = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert inventory == sorted(
        [
            ("Namespace", SYSTEM),
            ("CustomResourceDefinition", NAME),
            ("ServiceAccount", "rollout"),
            ("ClusterRole", "rollout"),
            ("ClusterRoleBinding", "rollout"),
            ("Role", "rollout-leader-election"),
            ("RoleBinding", "rollout-leader-election"),
            ("ClusterRole", "rollout-operator"),
            ("ClusterRole", "rollout-viewer"),
            ("ConfigMap", "rollout-settings"),
            ("ConfigMap", "rollout-policies"),
            ("Deployment", "rollout"),
            ("Service", "rollout"),
            ("PodDisruptionBudget", "rollout"),
            ("NetworkPolicy", "rollout"),
        ]
    )
    assert all(o["apiVersion"].split("/")[0] != "monitoring.coreos.com" for o in objects), "bare clusters refuse these"
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for obj in objects:
        expected = None if obj["kind"] in cluster_scoped else SYSTEM
        assert obj["metadata"].get("namespace") == expected, obj["metadata"]


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = find(objects, "Deployment", "rollout")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_the_daemon_runs_hardened_with_two_replicas() -> None:
    deployment = find(base_objects(), "Deployment", "rollout")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    container = _container(base_objects())
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == "rollout"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["topologySpreadConstraints"]
    assert pod["affinity"]["podAntiAffinity"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert (container["image"], container["args"]) == ("rollout:0.1.0", ["run"])
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    resources = container["resources"]
    assert {"cpu", "memory", "ephemeral-storage"} <= resources["requests"].keys()
    assert {"memory", "ephemeral-storage"} <= resources["limits"].keys()
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_settings_come_from_the_configmap_and_the_slack_token_from_an_optional_secret() -> None:
    objects = base_objects()
    container = _container(objects)
    settings = find(objects, "ConfigMap", "rollout-settings")["data"]
    assert set(settings) == SETTINGS
    assert settings["ROLLOUT_POLICY_DIR"] == "/etc/rollout/policies"
    assert settings["ROLLOUT_LOG_FORMAT"] == "json"
    assert container["envFrom"] == [{"configMapRef": {"name": "rollout-settings"}}]
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    for name in ("ROLLOUT_SLACK__BOT_TOKEN", "ROLLOUT_SLACK__SIGNING_SECRET"):
        assert env[name]["secretKeyRef"]["optional"] is True
    assert env["ROLLOUT_LEADER__NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["ROLLOUT_LEADER__IDENTITY"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    policies = volumes[mounts[settings["ROLLOUT_POLICY_DIR"]]]
    assert policies["configMap"]["name"] == "rollout-policies"
    assert all("subPath" not in m for m in container["volumeMounts"]), "subPath mounts never update"


def test_every_environment_variable_the_manifests_set_is_a_real_setting() -> None:
    """Settings ignore unknown variables, so a misspelt one in a manifest would silently do nothing."""
    known = {doc.env for doc in setting_docs()}
    objects = base_objects()
    named = set(find(objects, "ConfigMap", "rollout-settings")["data"])
    named |= {e["name"] for e in _container(objects)["env"]}
    named |= set(documents(EXAMPLE_OVERLAY / "settings.yaml")[0]["data"])
    assert named, "the manifests set no settings at all"
    assert named <= known, f"not settings: {sorted(named - known)}"


def test_service_pdb_servicemonitor_and_networkpolicy_select_the_daemon() -> None:
    objects = base_objects()
    labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", "rollout")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["name"] == "http"
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    monitor = find(documents(COMPONENTS / "servicemonitor" / "servicemonitor.yaml"), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    policy = find(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8080]
    egress_ports = sorted({p["port"] for rule in policy["egress"] for p in rule["ports"]})
    assert egress_ports == [53, 443, 6443, 9090]


def test_the_daemon_role_deletes_only_gatewayroutes_no_secrets_no_wildcards() -> None:
    objects = base_objects()
    rules = [
        r
        for kind in ("ClusterRole", "Role")
        for o in objects
        if o["kind"] == kind and not o["metadata"]["name"].startswith(("rollout-op", "rollout-vi"))
        for r in o["rules"]
    ]
    assert rules
    verbs = {v for r in rules for v in r["verbs"]}
    assert verbs == {"get", "list", "watch", "patch", "create", "update", "delete"}
    deleting = {res for r in rules if "delete" in r["verbs"] for res in r["resources"]}
    assert deleting == {"gatewayroutes"}  # only an A/B step's companion GatewayRoute, rollout's own
    resources = {res for r in rules for res in r["resources"]}
    assert resources == {
        "rollouts",
        "rollouts/status",
        "events",
        "gatewayroutes",
        "virtualrouters",
        "httproutes",
        "leases",
    }
    assert all("*" not in r["apiGroups"] + r["resources"] + r["verbs"] for r in rules)


def test_people_roles_aggregate_into_the_built_in_ones() -> None:
    objects = base_objects()
    operator, viewer = find(objects, "ClusterRole", "rollout-operator"), find(objects, "ClusterRole", "rollout-viewer")
    assert operator["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert operator["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert operator["rules"] == [
        {"apiGroups": ["delivery.rollout.dev"], "resources": ["rollouts"], "verbs": ["get", "list", "watch", "patch"]}
    ]
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {v for r in viewer["rules"] for v in r["verbs"]} == {"get", "list", "watch"}


def _overlay_files(overlay: dict[str, Any]) -> list[str]:
    files = [p["path"] for p in overlay.get("patches", []) if "path" in p]
    files += [f for gen in overlay.get("configMapGenerator", []) for f in gen.get("files", [])]
    return files


def test_the_example_overlay_builds_on_the_base_and_its_files_exist() -> None:
    overlay = kustomization(EXAMPLE_OVERLAY)
    assert overlay["resources"] == ["../../base"]
    assert set(overlay["components"]) == {f"../../components/{c.name}" for c in COMPONENTS.iterdir()}
    listed = _overlay_files(overlay)
    assert all((EXAMPLE_OVERLAY / f).is_file() for f in listed), listed
    on_disk = {str(p.relative_to(EXAMPLE_OVERLAY)) for p in EXAMPLE_OVERLAY.rglob("*.yaml")}
    assert on_disk - {"kustomization.yaml"} == set(listed)
    settings = find(documents(EXAMPLE_OVERLAY / "settings.yaml"), "ConfigMap", "rollout-settings")
    assert set(settings["data"]) <= SETTINGS


def test_the_example_overlay_policies_are_valid() -> None:
    generator = [g for g in kustomization(EXAMPLE_OVERLAY)["configMapGenerator"] if g["name"] == "rollout-policies"]
    paths = [EXAMPLE_OVERLAY / f for g in generator for f in g["files"]]
    assert paths
    result = load_paths(paths)
    assert result.ok, [str(p) for p in result.problems]
    assert len(result.rollouts) == len(paths)


def test_each_component_lists_every_file_it_holds() -> None:
    for component in COMPONENTS.iterdir():
        spec = kustomization(component)
        assert spec["kind"] == "Component", component
        listed = set(spec.get("resources", []))
        listed |= {f for gen in spec.get("configMapGenerator", []) for f in gen.get("files", [])}
        on_disk = {p.name for p in component.iterdir()} - {"kustomization.yaml"}
        assert listed == on_disk, component


MONITORING = {("ServiceMonitor", "rollout"), ("PrometheusRule", "rollout"), ("ConfigMap", "rollout-dashboard")}


@pytest.mark.parametrize("directory", [BASE, EXAMPLE_OVERLAY], ids=["base", "example"])
def test_kustomize_renders(directory: Path) -> None:
    try:
        rendered = kustomize_build(directory)
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    extra = MONITORING if directory == EXAMPLE_OVERLAY else set()
    assert kinds == sorted({(o["kind"], o["metadata"]["name"]) for o in base_objects()} | extra)
    if directory == EXAMPLE_OVERLAY:
        policies = find(rendered, "ConfigMap", "rollout-policies")["data"]
        assert set(policies) == {"recommendations-canary.yaml"}
        image = _container(rendered)["image"]
        assert image == "registry.example.com/platform/rollout:0.1.0"
        for kind, name in MONITORING - {("ConfigMap", "rollout-dashboard")}:
            assert find(rendered, kind, name)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        dashboard = find(rendered, "ConfigMap", "rollout-dashboard")
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
