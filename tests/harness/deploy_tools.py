"""The install tooling the deploy tests run: helm, kustomize and kube-score binaries and the Prometheus
Operator CRDs, as ``tests/harness/deploy-tools.sh`` caches them; rendering charts and kustomizations
into objects; and applying objects to a real API server the way ``kubectl apply --server-side``
does (discovery maps each kind to its resource, then one server-side-apply PATCH per object).

Owns finding the binaries (versions are read from the build script, the one place they are named)
and running them; it must not download anything (a missing binary raises with the build command),
writes only to temporary directories (an overlay it builds) and talks only to the ControlPlane it is
given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube import REPO_ROOT, ControlPlane, ControlPlaneError

SCRIPT = REPO_ROOT / "tests" / "harness" / "deploy-tools.sh"
BUILD_COMMAND = "make deploy-tools   (or: bash tests/harness/deploy-tools.sh)"
CHART = REPO_ROOT / "deploy" / "helm" / "rollout"
FIELD_MANAGER = "rollout-tests"


class ToolError(RuntimeError):
    """A tool is missing, or it failed (its stderr is in the message)."""


def versions() -> dict[str, str]:
    """``HELM_VERSION`` etc. as the build script defaults them."""
    found = re.findall(r'^([A-Z_]+_VERSION)="\$\{\1:-(v[0-9.]+)\}"$', SCRIPT.read_text(), re.MULTILINE)
    return dict(found)


def tools_dir() -> Path:
    cache = Path(os.environ.get("ROLLOUT_CACHE", Path.home() / ".cache" / "rollout"))
    return cache / "deploy-tools"


def binary(name: str) -> Path:
    """The cached ``helm``, ``kustomize`` or ``kube-score``; raises ``ToolError`` with the build command."""
    version = versions()[f"{name.replace('-', '_').upper()}_VERSION"]
    path = tools_dir() / f"{name}-{version}"
    if not os.access(path, os.X_OK):
        raise ToolError(f"{name} {version} not found at {path}; build it once with: {BUILD_COMMAND}")
    return path


def prometheus_operator_crds() -> list[Path]:
    """The real ServiceMonitor and PrometheusRule CRDs, from the prometheus-operator Go module."""
    directory = tools_dir() / f"prometheus-operator-crds-{versions()['PROMETHEUS_OPERATOR_VERSION']}"
    paths = [directory / f"monitoring.coreos.com_{kind}.yaml" for kind in ("servicemonitors", "prometheusrules")]
    if not all(p.is_file() for p in paths):
        raise ToolError(f"the Prometheus Operator CRDs are not in {directory}; fetch them with: {BUILD_COMMAND}")
    return paths


def run(argv: Sequence[str | Path], *, timeout: float = 120) -> str:
    """Run a tool; its stdout, or ``ToolError`` with its stderr."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ToolError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stderr or done.stdout}")
    return done.stdout


def objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def helm_template(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "rollout",
    namespace: str = "rollout-system",
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    """``helm template RELEASE CHART -n NAMESPACE -f values.json`` as objects."""
    argv: list[str | Path] = [binary("helm"), "template", release, chart, "--namespace", namespace]
    return objects(run([*argv, *_values_args(values)]))


def _values_args(values: Mapping[str, Any] | None) -> list[str]:
    # --set-json for each top-level key: values files would need a temp file per call.
    return [a for key, value in (values or {}).items() for a in ("--set-json", f"{key}={json.dumps(value)}")]


def helm(*args: str | Path, values: Mapping[str, Any] | None = None) -> str:
    return run([binary("helm"), *args, *_values_args(values)])


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    return objects(run([binary("kustomize"), "build", directory]))


def kustomize_build_with(base: Path, components: Sequence[Path]) -> list[dict[str, Any]]:
    """``kustomize build`` of an overlay holding only ``base`` and ``components``, as a user's overlay
    adding them would render (written to a temporary directory; kustomize wants relative paths)."""
    with tempfile.TemporaryDirectory(prefix="rollout-overlay-") as tmp:
        spec = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(base, tmp)],
            "components": [os.path.relpath(c, tmp) for c in components],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(spec))
        return kustomize_build(Path(tmp))


# --- applying to a real API server ------------------------------------------------------------


class Applier:
    """Server-side apply of plain objects to ``plane``, resolving kinds through discovery."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(collection path prefix, namespaced) of ``kind``; ``ControlPlaneError`` when not served."""
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = self.plane.request("GET", base).get("resources", [])
        except (ControlPlaneError, ValueError):  # 404 (plain text): the group version is not served
            listing = []
        for resource in listing:
            if resource["kind"] == kind and "/" not in resource["name"]:
                return f"{base}/{resource['name']}", bool(resource["namespaced"])
        raise ControlPlaneError(f"{kind} ({api_version}) is not served by this API server")

    def path(self, obj: Mapping[str, Any]) -> str:
        collection, namespaced = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        if namespaced:
            prefix, _, plural = collection.rpartition("/")
            namespace = meta.get("namespace") or "default"
            return f"{prefix}/namespaces/{namespace}/{plural}/{meta['name']}"
        return f"{collection}/{meta['name']}"

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        query = f"fieldManager={FIELD_MANAGER}&fieldValidation=Strict&force=true{'&dryRun=All' if dry_run else ''}"
        return self.plane.request(
            "PATCH", f"{self.path(obj)}?{query}", obj, content_type="application/apply-patch+yaml"
        )

    def apply_all(self, objs: Iterable[Mapping[str, Any]], *, dry_run: bool = False) -> list[str]:
        """Namespaces and CRDs first (waiting until each CRD is served), then the rest, in order;
        returns ``Kind/name`` of each object applied. The first refusal raises, naming the object."""
        ordered = sorted(objs, key=lambda o: {"Namespace": 0, "CustomResourceDefinition": 1}.get(o["kind"], 2))
        applied = []
        for obj in ordered:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            try:
                self.apply(obj, dry_run=dry_run)
            except ControlPlaneError as e:
                raise ControlPlaneError(f"{name}: {e}") from e
            if obj["kind"] == "CustomResourceDefinition" and not dry_run:
                self._wait_served(obj)
            applied.append(name)
        return applied

    def _wait_served(self, crd: Mapping[str, Any], timeout: float = 30.0) -> None:
        spec = crd["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served"))
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._resource(f"{spec['group']}/{version}", spec["names"]["kind"])
                return
            except ControlPlaneError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
