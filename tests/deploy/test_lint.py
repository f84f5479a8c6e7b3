"""kube-score (built by ``make deploy-tools``) on every install this repository ships: the kustomize
base (alone and with the slack-http component), the example overlay, and the chart's default,
per-namespace and everything-on (Slack's http mode) renders. No
finding at WARNING or CRITICAL, with the checks below switched off or on and the reason named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import BASE, EXAMPLE_OVERLAY, SLACK_HTTP
from tests.deploy.test_helm import FULL
from tests.harness.deploy_tools import ToolError, binary, helm_template, kustomize_build, kustomize_build_with, run

# Images are pinned (a release tag, or a digest: image.digest / kustomize `digest:`), so
# IfNotPresent always gets the image asked for, and a restart does not need the registry, which
# matters for a controller that must keep steering traffic while a registry is down.
IGNORED = {"container-image-pull-policy"}
# Stricter than kube-score's defaults: memory request = limit, a seccomp profile, declared ports.
OPTIONAL = {"container-memory-requests-equal-limits", "container-seccomp-profile", "container-ports-check"}

RENDERS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "kustomize-base": lambda: kustomize_build(BASE),
    "kustomize-example": lambda: kustomize_build(EXAMPLE_OVERLAY),
    "kustomize-slack-http": lambda: kustomize_build_with(BASE, [SLACK_HTTP]),
    "helm-default": helm_template,
    "helm-namespaced": lambda: helm_template({"watchNamespaces": ["shop", "web"]}),
    "helm-full": lambda: helm_template(FULL),
}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_kube_score_finds_nothing(name: str, tmp_path: Path) -> None:
    try:
        objs = RENDERS[name]()
        manifest = tmp_path / f"{name}.yaml"
        manifest.write_text(yaml.safe_dump_all(objs))
        argv: list[str | Path] = [binary("kube-score"), "score", "--output-format", "ci"]
        argv += [a for test in sorted(IGNORED) for a in ("--ignore-test", test)]
        argv += [a for test in sorted(OPTIONAL) for a in ("--enable-optional-test", test)]
        report = run([*argv, manifest])
    except ToolError as e:
        pytest.fail(str(e), pytrace=False)
    findings = [line for line in report.splitlines() if line.startswith(("[CRITICAL]", "[WARNING]"))]
    assert findings == []
    assert "[OK] rollout" in report  # the Deployment was scored
