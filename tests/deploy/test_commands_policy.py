"""The RolloutCommand CRD and the admission policy ``rollout-commands`` as the installs ship them:
the base's generated files are the generators' output (``python -m rollout.kube.commands crd|policy``),
the chart carries the same files, renders the same CRD, and renders the policy naming its own
ServiceAccount (``admission_policy(daemon=...)`` for default and custom names), or no policy when
told so. On the real API server, see ``test_install.py``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout.kube.commands import POLICY_NAME, admission_policy, crd_manifest, render
from tests.deploy.manifests import BASE, base_objects, documents, find
from tests.harness.deploy_tools import CHART, ToolError, helm_template

DEFAULT_DAEMON = "system:serviceaccount:rollout-system:rollout"


@pytest.fixture(autouse=True)
def _tools() -> Iterator[None]:
    try:
        yield
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.mark.parametrize(("what", "path"), [("crd", "crd-rolloutcommands.yaml"), ("policy", "commands-policy.yaml")])
def test_committed_files_are_the_generator_output(what: str, path: str) -> None:
    committed = (BASE / path).read_text()
    assert committed == render(what), f"deploy/base/{path} is stale: python -m rollout.kube.commands {what} > it"
    assert (CHART / "files" / path).read_text() == committed, f"cp deploy/base/{path} deploy/helm/rollout/files/"


def test_the_base_installs_the_policy_for_its_own_service_account() -> None:
    objects = base_objects()
    account = find(objects, "ServiceAccount")["metadata"]
    daemon = f"system:serviceaccount:{account['namespace']}:{account['name']}"
    shipped = [o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert shipped == admission_policy(daemon)
    assert find(objects, "CustomResourceDefinition", crd_manifest()["metadata"]["name"]) == crd_manifest()


def _without_chart_labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = {k: v for k, v in obj["metadata"]["labels"].items() if k == "app.kubernetes.io/name"}
    return {**obj, "metadata": {**{k: v for k, v in obj["metadata"].items() if k != "annotations"}, "labels": labels}}


def _policy(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_without_chart_labels(o) for o in objs if o["kind"].startswith("ValidatingAdmissionPolicy")]


@pytest.mark.parametrize(
    ("values", "release", "namespace", "daemon"),
    [
        ({}, "rollout", "rollout-system", DEFAULT_DAEMON),
        ({}, "rd", "delivery", "system:serviceaccount:delivery:rd-rollout"),
        ({"serviceAccount": {"name": "canary-bot"}}, "rd", "platform", "system:serviceaccount:platform:canary-bot"),
        (
            {"serviceAccount": {"create": False, "name": "existing"}, "watchNamespaces": ["shop"]},
            "x",
            "ops",
            "system:serviceaccount:ops:existing",
        ),
    ],
    ids=["default", "release-name", "service-account-name", "existing-account-per-namespace"],
)
def test_the_chart_policy_names_the_charts_service_account(
    values: dict[str, Any], release: str, namespace: str, daemon: str
) -> None:
    objs = helm_template(values, release=release, namespace=namespace)
    assert _policy(objs) == admission_policy(daemon)
    if values.get("serviceAccount", {}).get("create", True):
        account = find(objs, "ServiceAccount")["metadata"]
        assert daemon == f"system:serviceaccount:{account['namespace']}:{account['name']}"
    deployment = find(objs, "Deployment")
    assert daemon.endswith(":" + deployment["spec"]["template"]["spec"]["serviceAccountName"])
    assert deployment["metadata"]["namespace"] == namespace


def test_the_chart_and_the_base_ship_the_same_command_crd_and_policy() -> None:
    objs = helm_template()
    crd = find(objs, "CustomResourceDefinition", crd_manifest()["metadata"]["name"])
    assert crd["spec"] == crd_manifest()["spec"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert _policy(objs) == documents(BASE / "commands-policy.yaml")


def test_a_second_release_can_leave_the_policy_to_the_first() -> None:
    objs = helm_template({"commands": {"admissionPolicy": {"install": False}}}, release="second")
    assert _policy(objs) == []
    checks = find(objs, "ClusterRole", "second-rollout-command-checks")
    assert {"validatingadmissionpolicies", "validatingadmissionpolicybindings"} <= {
        res for r in checks["rules"] for res in r["resources"]
    }
    assert all(r.get("resourceNames", [POLICY_NAME]) == [POLICY_NAME] for r in checks["rules"])


def test_the_chart_refuses_a_policy_file_that_no_longer_names_the_default_daemon(tmp_path: Path) -> None:
    """The chart swaps the base's daemon name for its own ServiceAccount: a policy file without that
    name (the generator changed) fails the render instead of shipping a policy naming nobody."""
    chart = tmp_path / "rollout"
    shutil.copytree(CHART, chart)
    policy = chart / "files" / "commands-policy.yaml"
    assert policy.read_text().count(DEFAULT_DAEMON) == 1
    policy.write_text(policy.read_text().replace(DEFAULT_DAEMON, "system:serviceaccount:elsewhere:other"))
    with pytest.raises(ToolError, match="does not name the default daemon"):
        helm_template(chart=chart)
