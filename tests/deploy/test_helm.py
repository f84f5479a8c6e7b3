"""The Helm chart, with the real helm binary (``make deploy-tools``): ``helm lint --strict``, what
``helm template`` renders for the default, namespaced and everything-on values, that every setting
it passes is a real daemon setting, that bad values are refused, that its copied files are their
sources, and that it renders the same core objects as the kustomize base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from rollout.kube.crd import render
from rollout.settings import setting_docs
from tests.deploy.manifests import COMPONENTS, documents, find
from tests.harness.deploy_tools import CHART, ToolError, helm, helm_template, kustomize_build
from tests.harness.kube import REPO_ROOT

BASE = REPO_ROOT / "deploy" / "base"
DIGEST = "sha256:" + "ab" * 32
FULL: dict[str, Any] = {
    "image": {"repository": "registry.example.com/platform/rollout", "tag": "0.1.0", "digest": DIGEST},
    "watchNamespaces": ["shop", "web"],
    "prometheus": {
        "url": "https://prometheus.monitoring.svc:9091",
        "headers": {"X-Scope-OrgID": "team-a"},
        "auth": {"type": "basic", "secretName": "prometheus-auth"},
        "tls": {"caSecretName": "prometheus-ca"},
    },
    "slack": {
        "secretName": "slack-app",
        "defaultChannel": "#deploys",
        "interactions": {"ingress": {"enabled": True, "className": "nginx", "host": "rollout.example.com"}},
    },
    "policies": {"recs.yaml": (REPO_ROOT / "policies" / "recommendations-canary.yaml").read_text()},
    "settings": {"ROLLOUT_WORKERS": "16"},
    "logLevel": "DEBUG",
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True, "namespace": "monitoring"},
    },
}


@pytest.fixture(autouse=True)
def _tools() -> Iterator[None]:
    try:
        yield
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)


def inventory(objs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs)


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_helm_lint_passes_strictly_with_default_and_full_values() -> None:
    assert "0 chart(s) failed" in helm("lint", "--strict", CHART)
    assert "0 chart(s) failed" in helm("lint", "--strict", CHART, values=FULL)


def test_default_values_install_cluster_wide_without_monitoring_objects() -> None:
    objs = helm_template()
    ns = "rollout-system"
    assert inventory(objs) == sorted(
        [
            ("CustomResourceDefinition", "", "rollouts.delivery.rollout.dev"),
            ("ServiceAccount", ns, "rollout"),
            ("ClusterRole", "", "rollout"),
            ("ClusterRoleBinding", "", "rollout"),
            ("Role", ns, "rollout-leader-election"),
            ("RoleBinding", ns, "rollout-leader-election"),
            ("ClusterRole", "", "rollout-operator"),
            ("ClusterRole", "", "rollout-viewer"),
            ("ConfigMap", ns, "rollout-settings"),
            ("ConfigMap", ns, "rollout-policies"),
            ("Deployment", ns, "rollout"),
            ("Service", ns, "rollout"),
            ("PodDisruptionBudget", ns, "rollout"),
            ("NetworkPolicy", ns, "rollout"),
        ]
    )
    crd = find(objs, "CustomResourceDefinition")
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert container(objs)["image"] == "rollout:0.1.0"


def test_a_list_of_namespaces_gets_a_role_in_each_and_nothing_cluster_wide() -> None:
    objs = helm_template({"watchNamespaces": ["shop", "web"]}, release="rd", namespace="delivery")
    roles = {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs if "Role" in o["kind"]
    }
    assert roles == {
        ("Role", "shop", "rd-rollout"),
        ("RoleBinding", "shop", "rd-rollout"),
        ("Role", "web", "rd-rollout"),
        ("RoleBinding", "web", "rd-rollout"),
        ("Role", "delivery", "rd-rollout-leader-election"),
        ("RoleBinding", "delivery", "rd-rollout-leader-election"),
        ("ClusterRole", "", "rd-rollout-operator"),  # people's roles, aggregated; they grant the daemon nothing
        ("ClusterRole", "", "rd-rollout-viewer"),
    }
    for binding in (o for o in objs if o["kind"] == "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rd-rollout", "namespace": "delivery"}]
    settings = find(objs, "ConfigMap", "rd-rollout-settings")["data"]
    assert settings["ROLLOUT_WATCH_NAMESPACES"] == "shop,web"
    base_rules = find(documents(BASE / "rbac.yaml"), "ClusterRole", "rollout")["rules"]
    for namespace in ("shop", "web"):
        role = next(
            o for o in objs if o["kind"] == "Role" and o["metadata"] == {**o["metadata"], "namespace": namespace}
        )
        assert role["rules"] == base_rules


def test_full_values_render_every_optional_object_and_only_real_settings() -> None:
    objs = helm_template(FULL)
    kinds = {o["kind"] for o in objs}
    assert {"ServiceMonitor", "PrometheusRule", "Ingress"} <= kinds
    assert find(objs, "ConfigMap", "rollout-dashboard")["metadata"]["namespace"] == "monitoring"
    c = container(objs)
    assert c["image"] == f"registry.example.com/platform/rollout@{DIGEST}"  # the digest wins over the tag
    settings = find(objs, "ConfigMap", "rollout-settings")["data"]
    named = set(settings) | {e["name"] for e in c["env"]}
    known = {doc.env for doc in setting_docs()}
    assert named <= known, f"not settings: {sorted(named - known)}"
    assert {
        "ROLLOUT_PROMETHEUS__USERNAME",
        "ROLLOUT_PROMETHEUS__PASSWORD",
        "ROLLOUT_PROMETHEUS__CA_FILE",
        "ROLLOUT_PROMETHEUS__HEADERS",
        "ROLLOUT_SLACK__DEFAULT_CHANNEL",
        "ROLLOUT_WORKERS",
        "ROLLOUT_LOG_LEVEL",
    } <= named
    assert json.loads(settings["ROLLOUT_PROMETHEUS__HEADERS"]) == {"X-Scope-OrgID": "team-a"}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert settings["ROLLOUT_PROMETHEUS__CA_FILE"] == "/etc/rollout/prometheus-ca/ca.crt"
    volumes = {v["name"]: v for v in find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/etc/rollout/prometheus-ca"]]["secret"]["secretName"] == "prometheus-ca"
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "secretKeyRef" in e["valueFrom"]}
    assert secrets["ROLLOUT_SLACK__BOT_TOKEN"] == {"name": "slack-app", "key": "token", "optional": True}
    assert secrets["ROLLOUT_PROMETHEUS__PASSWORD"] == {"name": "prometheus-auth", "key": "password"}
    policy = yaml.safe_load(find(objs, "ConfigMap", "rollout-policies")["data"]["recs.yaml"])
    assert policy["kind"] == "Rollout"


def test_the_slack_ingress_exposes_only_the_interactions_path() -> None:
    ingress = find(helm_template(FULL), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "rollout.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/slack/interactions",
            "pathType": "Exact",
            "backend": {"service": {"name": "rollout", "port": {"name": "http"}}},
        }
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 3, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled"),
        ({"prometheus": {"auth": {"type": "oauth"}}}, "auth/type"),
        ({"prometheus": {"auth": {"type": "bearer"}}}, "auth.secretName is required"),
        ({"prometheus": {"tls": {"verify": False, "caSecretName": "ca"}}}, "drop one of them"),
        ({"prometheus": {"url": "prometheus:9090"}}, "prometheus/url"),
        ({"image": {"digest": "latest"}}, "image/digest"),
        ({"settings": {"WORKERS": "3"}}, "settings"),
        ({"metrics": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
    ],
    ids=["ha-without-election", "auth-type", "auth-secret", "ca-and-no-verify", "url", "digest", "setting", "typo"],
)
def test_bad_values_are_refused_with_the_field_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        helm_template(values)


def test_the_charts_files_are_their_sources() -> None:
    files = CHART / "files"
    assert (files / "crd.yaml").read_text() == render(), "cp deploy/base/crd.yaml deploy/helm/rollout/files/"
    rules = yaml.safe_load((files / "rolloutd.rules.yaml").read_text())
    component = find(documents(COMPONENTS / "prometheusrule" / "prometheusrule.yaml"), "PrometheusRule")
    assert component["spec"] == rules
    dashboard = (files / "rolloutd-dashboard.json").read_bytes()
    assert (COMPONENTS / "grafana-dashboard" / "rolloutd-dashboard.json").read_bytes() == dashboard
    rendered = helm_template(FULL)
    assert find(rendered, "PrometheusRule")["spec"] == rules
    assert json.loads(find(rendered, "ConfigMap", "rollout-dashboard")["data"]["rolloutd-dashboard.json"]) == (
        json.loads(dashboard)
    )


def _core(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """What must not differ between the two installs: everything but labels and selectors."""
    deployment = find(objs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(objs)
    policy = find(objs, "NetworkPolicy")["spec"]
    return {
        "crd": find(objs, "CustomResourceDefinition")["spec"],
        "roles": {
            (o["kind"], o["metadata"]["name"]): (
                o["rules"],
                {k: v for k, v in o["metadata"]["labels"].items() if k.startswith("rbac.")},
            )
            for o in objs
            if o["kind"] in ("ClusterRole", "Role")
        },
        "bindings": {
            (o["kind"], o["metadata"]["name"]): (o["roleRef"], o["subjects"])
            for o in objs
            if o["kind"].endswith("Binding")
        },
        "settings": find(objs, "ConfigMap", "rollout-settings")["data"],
        "deployment": {
            "replicas": deployment["spec"]["replicas"],
            "strategy": deployment["spec"]["strategy"],
            **{
                k: pod[k] for k in ("serviceAccountName", "terminationGracePeriodSeconds", "securityContext", "volumes")
            },
            **{k: c[k] for k in ("image", "args", "ports", "envFrom", "env", "resources", "securityContext")},
            **{k: c[k] for k in ("livenessProbe", "readinessProbe", "volumeMounts")},
        },
        "service": find(objs, "Service")["spec"]["ports"],
        "pdb": find(objs, "PodDisruptionBudget")["spec"]["minAvailable"],
        "networkpolicy": {k: policy[k] for k in ("policyTypes", "ingress", "egress")},
    }


def test_the_chart_and_the_kustomize_base_render_the_same_core_objects() -> None:
    chart, base = _core(helm_template()), _core(kustomize_build(BASE))
    for part in base:
        assert chart[part] == base[part], part
