"""Reading the install manifests of ``deploy/`` with PyYAML, as kustomize would list them.

Owns: locating ``deploy/base``, ``deploy/components`` and ``deploy/overlays``, loading every YAML document of a
kustomization's ``resources`` and finding objects by kind and name. It must not change any file
and does not run kustomize or kubectl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
BASE = DEPLOY / "base"
EXAMPLE_OVERLAY = DEPLOY / "overlays" / "example"
COMPONENTS = DEPLOY / "components"
SLACK_HTTP = COMPONENTS / "slack-http"  # Slack's HTTP mode instead of Socket Mode


def kustomization(directory: Path = BASE) -> dict[str, Any]:
    data = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of one file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"
    return docs


def base_objects() -> list[dict[str, Any]]:
    """Every object the base's ``resources`` list, in order."""
    return [doc for name in kustomization()["resources"] for doc in documents(BASE / name)]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of ``kind`` (and ``name``); fails when there is none or several."""
    hits = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]
