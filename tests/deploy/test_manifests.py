"""The kustomize base, the optional components and the example overlay, read as YAML: every file
listed and nothing missing, the objects an install needs (and nothing that needs the Prometheus
Operator in the base), the daemon's hardening, its settings' names, its ports and the settings that
name them (Slack's Socket Mode by default, the ``slack-http`` component for HTTP mode),
least-privilege RBAC for the daemon and the people's roles, and the overlay's policies are valid.
Rendered with the kustomize binary ``make deploy-tools`` builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollout.kube.commands import POLICY_NAME, ROLLOUT_COMMANDS, VERBS
from rollout.kube.crd import NAME
from rollout.policy.loading import load_paths
from rollout.settings import Settings, SlackSettings, setting_docs
from tests.deploy.manifests import (
    BASE,
    COMPONENTS,
    EXAMPLE_OVERLAY,
    SLACK_HTTP,
    base_objects,
    documents,
    find,
    kustomization,
)
from tests.harness.deploy_tools import ToolError, kustomize_build, kustomize_build_with

SYSTEM = "rollout-system"
SETTINGS = {
    "ROLLOUT_PROMETHEUS__URL",
    "ROLLOUT_WATCH_NAMESPACES",
    "ROLLOUT_POLICY_DIR",
    "ROLLOUT_LOG_FORMAT",
    "ROLLOUT_SLACK__MODE",
    "ROLLOUT_INTERACTIONS_PORT",
    "ROLLOUT_LEADER__SHARDS",
    "ROLLOUT_LEADER__EXPECTED_REPLICAS",
}
PEOPLE = ("rollout-operator", "rollout-approver", "rollout-viewer")


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
            ("CustomResourceDefinition", ROLLOUT_COMMANDS.name),
            ("ValidatingAdmissionPolicy", POLICY_NAME),
            ("ValidatingAdmissionPolicyBinding", POLICY_NAME),
            ("ServiceAccount", "rollout"),
            ("ClusterRole", "rollout"),
            ("ClusterRoleBinding", "rollout"),
            ("ClusterRole", "rollout-command-checks"),
            ("ClusterRoleBinding", "rollout-command-checks"),
            ("Role", "rollout-leader-election"),
            ("RoleBinding", "rollout-leader-election"),
            ("ClusterRole", "rollout-operator"),
            ("ClusterRole", "rollout-approver"),
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
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
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
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "interactions", "containerPort": 8081, "protocol": "TCP"},
    ]
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
    slack = {"ROLLOUT_SLACK__BOT_TOKEN": "token", "ROLLOUT_SLACK__APP_TOKEN": "app-token"}
    slack["ROLLOUT_SLACK__SIGNING_SECRET"] = "signing-secret"
    for name, key in slack.items():
        assert env[name]["secretKeyRef"] == {"name": "rollout-slack", "key": key, "optional": True}
    assert settings["ROLLOUT_SLACK__MODE"] == SlackSettings.model_fields["mode"].default == "socket"
    assert env["ROLLOUT_LEADER__NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["ROLLOUT_LEADER__IDENTITY"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    policies = volumes[mounts[settings["ROLLOUT_POLICY_DIR"]]]
    assert policies["configMap"]["name"] == "rollout-policies"
    assert all("subPath" not in m for m in container["volumeMounts"]), "subPath mounts never update"


def _ingress_ports(objects: list[dict[str, Any]]) -> list[int]:
    return sorted(p["port"] for rule in find(objects, "NetworkPolicy")["spec"]["ingress"] for p in rule["ports"])


def test_the_ports_are_the_ones_the_settings_name() -> None:
    """The health/metrics server keeps its default port; the interactions port is set explicitly, and
    the container port and the Service name it. In Socket Mode (the base) the NetworkPolicy lets in
    the health/metrics port only; the slack-http component opens the interactions port too."""
    objects = base_objects()
    settings = find(objects, "ConfigMap", "rollout-settings")["data"]
    assert "ROLLOUT_PORT" not in settings
    ports = {p["name"]: p["containerPort"] for p in _container(objects)["ports"]}
    assert ports == {
        "http": Settings.model_fields["port"].default,
        "interactions": int(settings["ROLLOUT_INTERACTIONS_PORT"]),
    }
    service = {p["name"]: (p["port"], p["targetPort"]) for p in find(objects, "Service")["spec"]["ports"]}
    assert service == {name: (port, name) for name, port in ports.items()}
    assert settings["ROLLOUT_SLACK__MODE"] == "socket"
    assert _ingress_ports(objects) == [ports["http"]]
    try:
        http = kustomize_build_with(BASE, [SLACK_HTTP])
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)
    assert find(http, "ConfigMap", "rollout-settings")["data"]["ROLLOUT_SLACK__MODE"] == "http"
    assert _ingress_ports(http) == sorted(ports.values())


def test_the_slack_http_component_changes_the_mode_and_the_networkpolicy_only() -> None:
    try:
        base, http = kustomize_build(BASE), kustomize_build_with(BASE, [SLACK_HTTP])
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)
    changed = [(o["kind"], o["metadata"]["name"]) for o, p in zip(base, http, strict=True) if o != p]
    assert changed == [("ConfigMap", "rollout-settings"), ("NetworkPolicy", "rollout")]
    before, after = (find(objs, "ConfigMap", "rollout-settings")["data"] for objs in (base, http))
    assert after == {**before, "ROLLOUT_SLACK__MODE": "http"}
    old, new = (find(objs, "NetworkPolicy")["spec"] for objs in (base, http))
    assert new == {**old, "ingress": [*old["ingress"], {"ports": [{"protocol": "TCP", "port": 8081}]}]}


def test_leadership_expects_the_deployments_replicas() -> None:
    objects = base_objects()
    settings = find(objects, "ConfigMap", "rollout-settings")["data"]
    assert int(settings["ROLLOUT_LEADER__EXPECTED_REPLICAS"]) == find(objects, "Deployment")["spec"]["replicas"] == 2
    assert settings["ROLLOUT_LEADER__SHARDS"] == "1"


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
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "interactions"]
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    monitor = find(documents(COMPONENTS / "servicemonitor" / "servicemonitor.yaml"), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    policy = find(objects, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8080]  # Socket Mode: no 8081
    egress_ports = sorted({p["port"] for rule in policy["egress"] for p in rule["ports"]})
    assert egress_ports == [53, 443, 6443, 9090]


def _daemon_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for o in objects
        if o["kind"] in ("ClusterRole", "Role") and o["metadata"]["name"] not in PEOPLE
        for r in o["rules"]
    ]


def test_the_daemon_roles_grant_no_secrets_no_workloads_no_wildcards() -> None:
    rules = _daemon_rules(base_objects())
    assert rules
    verbs = {v for r in rules for v in r["verbs"]}
    assert verbs == {"get", "list", "watch", "patch", "create", "update", "delete"}
    resources = {res for r in rules for res in r["resources"]}
    assert resources == {
        "rollouts",
        "rollouts/status",
        "rolloutcommands",
        "rolloutcommands/status",
        "events",
        "gatewayroutes",
        "virtualrouters",
        "httproutes",
        "leases",
        "subjectaccessreviews",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    }
    assert all("*" not in r["apiGroups"] + r["resources"] + r["verbs"] for r in rules)
    deleting = sorted(res for r in rules if "delete" in r["verbs"] for res in r["resources"])
    # the commands it handled, and an A/B step's companion GatewayRoute (rollout's own)
    assert deleting == ["gatewayroutes", "rolloutcommands"]
    admission = [r for r in rules if "admissionregistration.k8s.io" in r["apiGroups"]]
    assert [(r["verbs"], r.get("resourceNames")) for r in admission] == [(["get"], [POLICY_NAME])]


def test_the_cluster_scoped_rules_are_apart_from_the_namespaced_ones() -> None:
    """So that the chart's per-namespace mode can turn ClusterRole `rollout` into Roles unchanged."""
    objects = base_objects()
    namespaced = {res for r in find(objects, "ClusterRole", "rollout")["rules"] for res in r["resources"]}
    checks = {res for r in find(objects, "ClusterRole", "rollout-command-checks")["rules"] for res in r["resources"]}
    assert checks == {"subjectaccessreviews", "validatingadmissionpolicies", "validatingadmissionpolicybindings"}
    assert not namespaced & checks


def _rollout_verbs(role: dict[str, Any], resource: str = "rollouts") -> set[str]:
    rules = [r for r in role["rules"] if resource in r["resources"]]
    assert all(r["apiGroups"] == ["delivery.rollout.dev"] for r in rules)
    return {v for r in rules for v in r["verbs"]}


def test_people_roles_grant_the_command_verbs_and_never_write_a_rollout() -> None:
    objects = base_objects()
    operator, approver, viewer = (find(objects, "ClusterRole", name) for name in PEOPLE)
    read = {"get", "list", "watch"}
    assert _rollout_verbs(operator) == read | set(VERBS.values())
    assert set(VERBS.values()) == {"approve", "abort", "promote", "pause", "resume", "retry"}
    assert _rollout_verbs(approver) == read | {"approve"}
    assert _rollout_verbs(viewer) == read
    for role in (operator, approver):
        assert _rollout_verbs(role, "rolloutcommands") == read | {"create"}
    assert _rollout_verbs(viewer, "rolloutcommands") == read
    for role in (operator, approver, viewer):
        resources = {res for r in role["rules"] for res in r["resources"]}
        assert resources == {"rollouts", "rolloutcommands"}, "no status, no routes"
        assert not _rollout_verbs(role) & {"create", "update", "patch", "delete"}


def test_people_roles_aggregate_like_argo_rollouts_but_approver_does_not() -> None:
    def aggregated(name: str) -> set[str]:
        labels = find(base_objects(), "ClusterRole", name)["metadata"]["labels"]
        prefix = "rbac.authorization.k8s.io/aggregate-to-"
        return {k.removeprefix(prefix) for k, v in labels.items() if k.startswith(prefix) and v == "true"}

    assert aggregated("rollout-operator") == {"admin", "edit"}
    assert aggregated("rollout-viewer") == {"view"}
    assert aggregated("rollout-approver") == set()


def _overlay_files(overlay: dict[str, Any]) -> list[str]:
    files = [p["path"] for p in overlay.get("patches", []) if "path" in p]
    files += [f for gen in overlay.get("configMapGenerator", []) for f in gen.get("files", [])]
    return files


def test_the_example_overlay_builds_on_the_base_and_its_files_exist() -> None:
    overlay = kustomization(EXAMPLE_OVERLAY)
    assert overlay["resources"] == ["../../base"]
    # every monitoring component; Slack stays in Socket Mode, the default (no slack-http)
    assert set(overlay["components"]) == {f"../../components/{c.name}" for c in COMPONENTS.iterdir()} - {
        f"../../components/{SLACK_HTTP.name}"
    }
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
