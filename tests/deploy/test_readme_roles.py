"""README's "Who may do what" table stays true to ``deploy/base/rbac-people.yaml``: each people's
role has its row, the row says into which built-in roles it is aggregated (and the labels say so
too), and the commands the row lists are the custom verbs the role grants on ``rollouts``."""

from __future__ import annotations

import re

import pytest

from rollout.kube.commands import VERBS
from tests.deploy.manifests import BASE, documents, find
from tests.harness.kube import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
_TABLE = re.search(r"<!-- roles:start[^>]*-->\n(.*?)<!-- roles:end -->", README, re.S)
assert _TABLE is not None, "README lost its roles:start/roles:end markers"
ROWS = [
    [cell.strip() for cell in line.strip().strip("|").split("|")]
    for line in _TABLE.group(1).splitlines()
    if line.startswith("|") and not line.startswith("|---")
][1:]
PEOPLE = ("rollout-operator", "rollout-approver", "rollout-viewer")
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _row(role: str) -> list[str]:
    rows = [r for r in ROWS if f"`{role}`" in r[1]]
    assert len(rows) == 1, f"one row grants {role}, found {len(rows)}"
    return rows[0]


def _backticked(cell: str) -> set[str]:
    return {word for quoted in re.findall(r"`([^`]+)`", cell) for word in quoted.split()}


@pytest.mark.parametrize("role", PEOPLE)
def test_each_role_has_a_row_naming_its_aggregation(role: str) -> None:
    who, granted, may, may_not = _row(role)
    labels = find(documents(BASE / "rbac-people.yaml"), "ClusterRole", role)["metadata"]["labels"]
    aggregated = {k.removeprefix(AGGREGATE) for k, v in labels.items() if k.startswith(AGGREGATE) and v == "true"}
    named = _backticked(granted) & {"view", "edit", "admin"}
    if aggregated:
        assert "aggregated into" in granted, granted
        assert aggregated <= named, (aggregated, granted)
    else:
        assert "never aggregated" in granted and not named, granted
    assert who and may and may_not


@pytest.mark.parametrize("role", PEOPLE)
def test_each_row_lists_the_commands_its_role_grants(role: str) -> None:
    _, _, may, may_not = _row(role)
    rules = find(documents(BASE / "rbac-people.yaml"), "ClusterRole", role)["rules"]
    granted = {v for r in rules if "rollouts" in r["resources"] for v in r["verbs"]} & set(VERBS.values())
    listed = (_backticked(may) | set(re.findall(r"\b\w+\b", may))) & set(VERBS.values())
    assert listed == granted, (role, may)
    if granted != set(VERBS.values()):
        refused = set(re.findall(r"\b\w+\b", may_not)) & set(VERBS.values())
        assert refused | granted == set(VERBS.values()) or "any command" in may_not, (role, may_not)


def test_the_daemon_row_points_at_its_rbac() -> None:
    (daemon,) = [r for r in ROWS if r[0] == "the daemon"]
    assert "`deploy/base/rbac.yaml`" in daemon[1]
    assert (BASE / "rbac.yaml").is_file()
