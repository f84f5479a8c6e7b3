"""The Helm chart, with the real helm binary (``make deploy-tools``): ``helm lint --strict``, what
``helm template`` renders for the default, namespaced and everything-on values, that every setting
it passes is a real daemon setting and configures the daemon as meant (the rendered environment,
Secrets standing in, loaded by ``rollout.settings``), that bad values are refused, that its copied
files are their sources, and that it renders the same core objects as the kustomize base (Slack's
Socket Mode, the default) and as the base with the ``slack-http`` component (``slack.mode: http``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.kube.commands import POLICY_NAME
from rollout.kube.crd import NAME as ROLLOUTS_CRD
from rollout.kube.crd import render
from rollout.settings import PrometheusSettings, Settings, load_settings, setting_docs
from tests.deploy.manifests import COMPONENTS, SLACK_HTTP, documents, find
from tests.harness.deploy_tools import CHART, ToolError, helm, helm_template, kustomize_build, kustomize_build_with
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
        "endpoints": {
            "thanos": {
                "url": "https://thanos-query.monitoring.svc:9091",
                "auth": {"type": "bearer", "secretName": "thanos-token", "bearerTokenKey": "jwt"},
                "tls": {"caSecretName": "thanos-ca"},
            },
            "team-a": {
                "url": "http://mimir.team-a.svc:8080/prometheus",
                "headers": {"X-Scope-OrgID": "team-a"},
                "auth": {"type": "basic", "secretName": "mimir-team-a"},
                "tls": {"verify": False},
            },
        },
        "policyAddresses": ["https://prometheus.shop.svc:9090/"],
    },
    "tenancy": {"crossNamespace": {"shop": ["web"]}},
    "replicas": 3,
    "leaderElection": {"shards": 4},
    "slack": {
        "mode": "http",
        "secretName": "slack-app",
        "appTokenKey": "xapp",
        "defaultChannel": "#deploys",
        "interactions": {
            "port": 9443,
            "ingress": {"enabled": True, "className": "nginx", "host": "rollout.example.com"},
        },
    },
    "networkPolicy": {
        "interactionsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    },
    "policies": {"recs.yaml": (REPO_ROOT / "policies" / "recommendations-canary.yaml").read_text()},
    "settings": {"ROLLOUT_WORKERS": "16", "ROLLOUT_SLACK__GROUP_CACHE_SECONDS": "300"},
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
            ("CustomResourceDefinition", "", "rolloutcommands.delivery.rollout.dev"),
            ("ValidatingAdmissionPolicy", "", POLICY_NAME),
            ("ValidatingAdmissionPolicyBinding", "", POLICY_NAME),
            ("ServiceAccount", ns, "rollout"),
            ("ClusterRole", "", "rollout"),
            ("ClusterRoleBinding", "", "rollout"),
            ("ClusterRole", "", "rollout-command-checks"),
            ("ClusterRoleBinding", "", "rollout-command-checks"),
            ("Role", ns, "rollout-leader-election"),
            ("RoleBinding", ns, "rollout-leader-election"),
            ("ClusterRole", "", "rollout-operator"),
            ("ClusterRole", "", "rollout-approver"),
            ("ClusterRole", "", "rollout-viewer"),
            ("ConfigMap", ns, "rollout-settings"),
            ("ConfigMap", ns, "rollout-policies"),
            ("Deployment", ns, "rollout"),
            ("Service", ns, "rollout"),
            ("PodDisruptionBudget", ns, "rollout"),
            ("NetworkPolicy", ns, "rollout"),
        ]
    )
    crd = find(objs, "CustomResourceDefinition", ROLLOUTS_CRD)
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert container(objs)["image"] == "rollout:0.1.0"


def test_a_list_of_namespaces_gets_a_role_in_each_and_only_the_command_checks_cluster_wide() -> None:
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
        # SubjectAccessReviews and the admission policy have no namespace: a small ClusterRole
        ("ClusterRole", "", "rd-rollout-command-checks"),
        ("ClusterRoleBinding", "", "rd-rollout-command-checks"),
        ("ClusterRole", "", "rd-rollout-operator"),  # people's roles; they grant the daemon nothing
        ("ClusterRole", "", "rd-rollout-approver"),
        ("ClusterRole", "", "rd-rollout-viewer"),
    }
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rd-rollout", "namespace": "delivery"}]
    checks = find(objs, "ClusterRole", "rd-rollout-command-checks")["rules"]
    assert checks == find(documents(BASE / "rbac.yaml"), "ClusterRole", "rollout-command-checks")["rules"]
    settings = find(objs, "ConfigMap", "rd-rollout-settings")["data"]
    assert settings["ROLLOUT_WATCH_NAMESPACES"] == "shop,web"
    base_rules = find(documents(BASE / "rbac.yaml"), "ClusterRole", "rollout")["rules"]
    for namespace in ("shop", "web"):
        role = next(
            o for o in objs if o["kind"] == "Role" and o["metadata"] == {**o["metadata"], "namespace": namespace}
        )
        assert role["rules"] == base_rules


def daemon_environment(objs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment the daemon's container would get: the settings ConfigMap, then ``env`` with
    each Secret key standing in as ``secret:<name>/<key>`` and each field reference as ``field:<path>``."""
    c = container(objs)
    (source,) = c["envFrom"]
    env = dict(find(objs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in c["env"]:
        ref = entry.get("valueFrom", {})
        if "secretKeyRef" in ref:
            env[entry["name"]] = f"secret:{ref['secretKeyRef']['name']}/{ref['secretKeyRef']['key']}"
        elif "fieldRef" in ref:
            env[entry["name"]] = f"field:{ref['fieldRef']['fieldPath']}"
        else:
            env[entry["name"]] = entry["value"]
    return env


def daemon_settings(objs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``rollout.settings`` reading exactly the environment the chart gives the daemon."""
    for name in [n for n in os.environ if n.upper().startswith("ROLLOUT_") or n == "KUBECONFIG"]:
        monkeypatch.delenv(name)
    for name, value in daemon_environment(objs).items():
        monkeypatch.setenv(name, value)
    return load_settings()


def mounted_from_secret(objs: list[dict[str, Any]], path: str) -> str:
    """The Secret whose volume is mounted at the directory holding ``path``."""
    mounts = {m["mountPath"]: m["name"] for m in container(objs)["volumeMounts"]}
    volumes = {v["name"]: v for v in find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    secret: str = volumes[mounts[path.rpartition("/")[0]]]["secret"]["secretName"]
    return secret


_ENDPOINT_VAR = re.compile(r"^ROLLOUT_PROMETHEUS_ENDPOINTS__([a-z0-9-]+)__([A-Z_]+)$")


def test_full_values_render_every_optional_object_and_only_real_settings() -> None:
    objs = helm_template(FULL)
    kinds = {o["kind"] for o in objs}
    assert {"ServiceMonitor", "PrometheusRule", "Ingress"} <= kinds
    assert find(objs, "ConfigMap", "rollout-dashboard")["metadata"]["namespace"] == "monitoring"
    c = container(objs)
    assert c["image"] == f"registry.example.com/platform/rollout@{DIGEST}"  # the digest wins over the tag
    settings = find(objs, "ConfigMap", "rollout-settings")["data"]
    named = set(settings) | {e["name"] for e in c["env"]}
    per_endpoint = {n for n in named if _ENDPOINT_VAR.match(n)}
    known = {doc.env for doc in setting_docs()}
    assert named - per_endpoint <= known, f"not settings: {sorted(named - per_endpoint - known)}"
    fields = {f.upper() for f in PrometheusSettings.model_fields}
    assert {_ENDPOINT_VAR.fullmatch(n).group(2) for n in per_endpoint} <= fields  # type: ignore[union-attr]
    assert {
        "ROLLOUT_PROMETHEUS__USERNAME",
        "ROLLOUT_PROMETHEUS__PASSWORD",
        "ROLLOUT_PROMETHEUS__CA_FILE",
        "ROLLOUT_PROMETHEUS__HEADERS",
        "ROLLOUT_PROMETHEUS_ENDPOINTS",
        "ROLLOUT_PROMETHEUS_POLICY_ADDRESSES",
        "ROLLOUT_TENANCY__CROSS_NAMESPACE",
        "ROLLOUT_LEADER__SHARDS",
        "ROLLOUT_LEADER__EXPECTED_REPLICAS",
        "ROLLOUT_INTERACTIONS_PORT",
        "ROLLOUT_SLACK__MODE",
        "ROLLOUT_SLACK__APP_TOKEN",
        "ROLLOUT_SLACK__DEFAULT_CHANNEL",
        "ROLLOUT_WORKERS",
        "ROLLOUT_LOG_LEVEL",
    } <= named
    assert json.loads(settings["ROLLOUT_PROMETHEUS__HEADERS"]) == {"X-Scope-OrgID": "team-a"}
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "secretKeyRef" in e["valueFrom"]}
    assert secrets["ROLLOUT_SLACK__BOT_TOKEN"] == {"name": "slack-app", "key": "token", "optional": True}
    assert secrets["ROLLOUT_PROMETHEUS__PASSWORD"] == {"name": "prometheus-auth", "key": "password"}
    policy = yaml.safe_load(find(objs, "ConfigMap", "rollout-policies")["data"]["recs.yaml"])
    assert policy["kind"] == "Rollout"


def test_the_daemon_reads_the_full_values_as_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = helm_template(FULL)
    s = daemon_settings(objs, monkeypatch)
    assert s.watch_namespaces == ["shop", "web"]
    assert s.prometheus.url == "https://prometheus.monitoring.svc:9091"
    assert s.prometheus.username == "secret:prometheus-auth/username"
    assert s.prometheus.password is not None
    assert s.prometheus.password.get_secret_value() == "secret:prometheus-auth/password"
    assert s.prometheus.ca_file is not None
    assert mounted_from_secret(objs, str(s.prometheus.ca_file)) == "prometheus-ca"
    assert s.prometheus_endpoints.keys() == {"thanos", "team-a"}
    thanos, team_a = s.prometheus_endpoints["thanos"], s.prometheus_endpoints["team-a"]
    assert thanos.url == "https://thanos-query.monitoring.svc:9091"
    assert thanos.bearer_token is not None
    assert thanos.bearer_token.get_secret_value() == "secret:thanos-token/jwt"
    assert (thanos.username, thanos.headers, thanos.verify_tls) == (None, {}, True)
    assert thanos.ca_file is not None
    assert mounted_from_secret(objs, str(thanos.ca_file)) == "thanos-ca"
    assert team_a.url == "http://mimir.team-a.svc:8080/prometheus"
    assert team_a.username == "secret:mimir-team-a/username"
    assert team_a.password is not None
    assert team_a.password.get_secret_value() == "secret:mimir-team-a/password"
    assert (team_a.bearer_token, team_a.headers, team_a.verify_tls) == (None, {"X-Scope-OrgID": "team-a"}, False)
    assert s.prometheus_policy_addresses == ["https://prometheus.shop.svc:9090/"]
    assert s.tenancy.cross_namespace == {"shop": ["web"]}
    assert (s.leader.shards, s.leader.expected_replicas) == (4, 3)
    assert find(objs, "Deployment")["spec"]["replicas"] == s.leader.expected_replicas
    assert (s.leader.namespace, s.leader.identity) == ("field:metadata.namespace", "field:metadata.name")
    assert s.interactions_port == 9443
    ports = {p["name"]: p["containerPort"] for p in container(objs)["ports"]}
    assert ports == {"http": s.port, "interactions": s.interactions_port}
    assert s.slack.mode == "http"
    assert s.slack.signing_secret is not None
    assert s.slack.signing_secret.get_secret_value() == "secret:slack-app/signing-secret"
    assert s.slack.app_token is not None  # passed in both modes; the daemon warns when it is unused
    assert s.slack.app_token.get_secret_value() == "secret:slack-app/xapp"
    assert (s.slack.default_channel, s.slack.group_cache_seconds) == ("#deploys", 300.0)
    assert (s.workers, s.log_level) == (16, "DEBUG")


def test_the_daemon_reads_the_default_values(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = helm_template()
    s = daemon_settings(objs, monkeypatch)
    assert (s.leader.enabled, s.leader.shards, s.leader.expected_replicas) == (True, 1, 2)
    assert (s.port, s.interactions_port) == (8080, 8081)
    assert (s.prometheus_endpoints, s.prometheus_policy_addresses, s.tenancy.cross_namespace) == ({}, [], {})
    assert s.commands.require_admission_policy
    assert s.slack.mode == "socket"
    secrets = {
        "bot": s.slack.bot_token,
        "app": s.slack.app_token,
        "signing": s.slack.signing_secret,
    }
    assert {k: v.get_secret_value() if v is not None else None for k, v in secrets.items()} == {
        "bot": "secret:rollout-slack/token",
        "app": "secret:rollout-slack/app-token",
        "signing": "secret:rollout-slack/signing-secret",
    }


def test_socket_mode_opens_no_port_for_slack_and_has_no_ingress() -> None:
    """Socket Mode is outbound: the NetworkPolicy lets in the health/metrics port only, whatever
    networkPolicy.interactionsFrom says (it applies to http mode's rule)."""
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    objs = helm_template({"networkPolicy": {"interactionsFrom": peers}})
    assert find(objs, "ConfigMap", "rollout-settings")["data"]["ROLLOUT_SLACK__MODE"] == "socket"
    assert find(objs, "NetworkPolicy")["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert "Ingress" not in {o["kind"] for o in objs}
    http = helm_template({"slack": {"mode": "http"}, "networkPolicy": {"interactionsFrom": peers}})
    assert find(http, "NetworkPolicy")["spec"]["ingress"][1:] == [
        {"ports": [{"protocol": "TCP", "port": 8081}], "from": peers}
    ]


def test_the_slack_ingress_exposes_only_the_interactions_path_and_port() -> None:
    objs = helm_template(FULL)
    ingress = find(objs, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "rollout.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/slack/interactions",
            "pathType": "Exact",
            "backend": {"service": {"name": "rollout", "port": {"name": "interactions"}}},
        }
    ]
    service = {p["name"]: p for p in find(objs, "Service")["spec"]["ports"]}
    assert service["interactions"]["port"] == 9443
    assert service["interactions"]["targetPort"] == "interactions"
    ports = {p["name"]: p["containerPort"] for p in container(objs)["ports"]}
    assert ports["interactions"] == 9443
    ingress_rules = find(objs, "NetworkPolicy")["spec"]["ingress"]
    (slack,) = [r for r in ingress_rules if r["ports"] == [{"protocol": "TCP", "port": 9443}]]
    assert slack["from"] == FULL["networkPolicy"]["interactionsFrom"]
    (health,) = [r for r in ingress_rules if r["ports"] == [{"protocol": "TCP", "port": 8080}]]
    assert "from" not in health  # probes come from the kubelet


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
        ({"leaderElection": {"shards": 0}}, "shards"),
        ({"replicas": 1, "leaderElection": {"enabled": False, "shards": 2}}, "shards > 1 needs leaderElection"),
        ({"slack": {"interactions": {"port": 8080}}}, "interactions/port"),
        ({"prometheus": {"endpoints": {"default": {"url": "http://p:9090"}}}}, "invalid propertyName 'default'"),
        ({"prometheus": {"endpoints": {"Thanos": {"url": "http://p:9090"}}}}, "invalid propertyName 'Thanos'"),
        ({"prometheus": {"endpoints": {"t": {}}}}, "missing property 'url'"),
        ({"prometheus": {"endpoints": {"t": {"url": "http://t", "auth": {"type": "bearer"}}}}}, "endpoints.t.auth"),
        (
            {"prometheus": {"endpoints": {"t": {"url": "http://t", "tls": {"verify": False, "caSecretName": "c"}}}}},
            "endpoints.t.tls.caSecretName is set but tls.verify is false",
        ),
        ({"prometheus": {"policyAddresses": ["prometheus.shop:9090"]}}, "policyAddresses"),
        (
            {"watchNamespaces": ["shop"], "tenancy": {"crossNamespace": {"shop": ["edge"]}}},
            "names edge, which is not in watchNamespaces",
        ),
        ({"tenancy": {"crossNamespace": {"shop": "edge"}}}, "crossNamespace/shop"),
        ({"slack": {"mode": "webhook"}}, "at '/slack/mode': value must be one of 'socket', 'http'"),
        (
            {"slack": {"interactions": {"ingress": {"enabled": True, "host": "rollout.example.com"}}}},
            "slack.interactions.ingress.enabled needs slack.mode http",
        ),
        ({"slack": {"appTokenKey": ""}}, "slack/appTokenKey"),
    ],
    ids=[
        "ha-without-election",
        "auth-type",
        "auth-secret",
        "ca-and-no-verify",
        "url",
        "digest",
        "setting",
        "typo",
        "no-shards",
        "shards-without-election",
        "interactions-on-the-health-port",
        "endpoint-named-default",
        "endpoint-name-not-a-label",
        "endpoint-without-url",
        "endpoint-auth-secret",
        "endpoint-ca-and-no-verify",
        "policy-address",
        "cross-namespace-not-watched",
        "cross-namespace-not-a-list",
        "slack-mode",
        "slack-ingress-in-socket-mode",
        "slack-app-token-key-empty",
    ],
)
def test_bad_values_are_refused_with_the_field_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        helm_template(values)


def test_the_charts_files_are_their_sources() -> None:
    files = CHART / "files"
    assert (files / "crd.yaml").read_text() == render(), "cp deploy/base/crd.yaml deploy/helm/rollout/files/"
    # the RolloutCommand CRD and the admission policy: tests/deploy/test_commands_policy.py
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
        "crds": {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "CustomResourceDefinition"},
        "admission": {
            (o["kind"], o["metadata"]["name"]): o["spec"] for o in objs if o["kind"].startswith("ValidatingAdmission")
        },
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
            if o["kind"].endswith("Binding") and "Admission" not in o["kind"]
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


@pytest.mark.parametrize(
    ("values", "components"),
    [({}, []), ({"slack": {"mode": "http"}}, [SLACK_HTTP])],
    ids=["socket-mode-defaults", "http-mode-and-slack-http-component"],
)
def test_the_chart_and_the_kustomize_base_render_the_same_core_objects(
    values: dict[str, Any], components: list[Path]
) -> None:
    chart = _core(helm_template(values))
    base = _core(kustomize_build_with(BASE, components) if components else kustomize_build(BASE))
    assert len(base["crds"]) == 2 and len(base["admission"]) == 2 and len(base["roles"]) == 6
    for part in base:
        assert chart[part] == base[part], part
