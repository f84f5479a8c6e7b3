"""``rollout validate`` = the API server: one corpus (``corpus.py``), judged by both.

Each case goes through the loader ``rollout validate`` uses (from a YAML file) and, as a create with
``fieldValidation=Strict`` and ``dryRun=All`` (nothing is stored), through a real kube-apiserver
carrying the generated CRD. A case fails when either judge disagrees with the corpus, so a rule in one
place and not the other cannot go unnoticed.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.kube.client import KubeClient
from rollout.kube.crd import ROLLOUTS
from rollout.policy.loading import load_paths
from tests.deploy.test_crd import install_crd
from tests.harness.kube import ControlPlane
from tests.policy.corpus import SERVER_CANNOT_SEE, Case, corpus_documents

CASES = list(corpus_documents())
_names = itertools.count()


def validate(case: Case, directory: Path) -> tuple[bool, str]:
    path = directory / f"case-{next(_names)}.yaml"
    path.write_text(yaml.safe_dump(case.document, sort_keys=False, allow_unicode=True))
    result = load_paths([path])
    return result.ok and len(result.rollouts) == 1, "; ".join(p.message for p in result.problems)


def api_server(plane: ControlPlane, namespace: str, case: Case) -> tuple[bool, str]:
    body: dict[str, Any] = dict(case.document)
    body["metadata"] = {**dict(body.get("metadata") or {}), "namespace": namespace}
    if not isinstance(body["metadata"].get("name"), str):
        body["metadata"]["name"] = f"case-{next(_names)}"
    path = f"/apis/{ROLLOUTS.api_version}/namespaces/{namespace}/{ROLLOUTS.plural}?fieldValidation=Strict&dryRun=All"
    answer = plane.request("POST", path, body, ok=(200, 201, 400, 422))
    return answer.get("kind") == "Rollout", str(answer.get("message", ""))


def test_the_corpus_is_large_and_covers_both_verdicts() -> None:
    assert sum(not c.valid for c in CASES) >= 90
    assert sum(c.valid for c in CASES) >= 20
    assert sum(c.valid != c.server_valid for c in CASES) == len(SERVER_CANNOT_SEE)  # the gap, no more
    assert any(isinstance(v, float) and math.isnan(v) for c in CASES for v in _leaves(c.document))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_validate_judges_the_corpus(case: Case, tmp_path: Path) -> None:
    ok, why = validate(case, tmp_path)
    assert ok == case.valid, f"validate {'refused' if case.valid else 'accepted'} {case.name}: {why}"


@pytest.fixture(scope="module")
def corpus_namespace(control_plane: ControlPlane, kube: KubeClient) -> str:
    install_crd(control_plane, kube)
    control_plane.create_namespace("agreement")
    return "agreement"


@pytest.mark.kube
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_api_server_judges_the_corpus_the_same(
    case: Case, control_plane: ControlPlane, corpus_namespace: str, tmp_path: Path
) -> None:
    server_ok, server_why = api_server(control_plane, corpus_namespace, case)
    validate_ok, validate_why = validate(case, tmp_path)
    assert (validate_ok, server_ok) == (case.valid, case.server_valid), (
        f"{case.name}: validate {'accepts' if validate_ok else 'refuses'} ({validate_why}); "
        f"the API server {'accepts' if server_ok else 'refuses'} ({server_why})"
    )
