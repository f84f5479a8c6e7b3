"""Tests of ``rollout.policy.loading``: the invalid-policy corpus, files, directories, API objects, fuzzing.

Every file in ``invalid/`` states the problems it must produce in ``# expect: LINE:COL: PATH: TEXT``
header lines (PATH ``-`` for none); the corpus test checks that exactly those come out.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollout.errors import PolicyError
from rollout.policy.loading import LoadResult, load_bytes, load_object, load_paths, load_text
from rollout.policy.models import Rollout

CORPUS = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (\S+): (.+)$")
API = "delivery.rollout.dev/v1alpha1"

VALID = """\
apiVersion: delivery.rollout.dev/v1alpha1
kind: Rollout
metadata:
  name: recommendations
  namespace: default
spec:
  router:
    gatewayRoute:
      name: recommendation-canary-gateway-route
  stable: recommendation-service-v1
  canary: recommendation-service-v2
  steps:
    - setWeight: 5
    - pause: {duration: 2m}
    - setWeight: 25
    - approval: {}
    - setWeight: 100
  analysis:
    interval: 30s
    slos:
      errorRate: {max: 1%}
      latency: {percentile: 99, max: 300ms}
"""


def named(name: str, namespace: str = "default") -> str:
    return VALID.replace("name: recommendations", f"name: {name}").replace(
        "namespace: default", f"namespace: {namespace}"
    )


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            match = EXPECT.match(line)
            assert match, f"malformed expectation in {path.name}: {line!r}"
            row, col, where, text = match.groups()
            found.append((int(row), int(col), "" if where == "-" else where, text))
    return found


# --- the corpus -------------------------------------------------------------------------------


def test_corpus_covers_the_listed_mistakes() -> None:
    names = {p.stem for p in CORPUS}
    assert len(CORPUS) >= 20
    assert {"unknown_field_top", "duplicate_keys", "syntax_error", "multiple_problems"} <= names


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_policy_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} states no `# expect:` line"

    result = load_paths([path])

    got = [(p.line, p.column, p.path) for p in result.problems]
    assert got == [(row, col, where) for row, col, where, _ in expected], "\n".join(map(str, result.problems))
    for problem, (*_, text) in zip(result.problems, expected, strict=True):
        assert problem.file == str(path)
        assert text in problem.message, f"{text!r} not in {problem.message!r}"
    assert not result.ok
    with pytest.raises(PolicyError) as caught:
        result.raise_for_problems()
    assert caught.value.problems == list(result.problems)


# --- valid input ------------------------------------------------------------------------------


def test_valid_document_loads_with_its_location() -> None:
    result = load_text(VALID, "canary.yaml")

    assert result.ok
    assert result.problems == ()
    assert result.files == ("canary.yaml",)
    [loaded] = result.rollouts
    assert (loaded.file, loaded.line, loaded.column) == ("canary.yaml", 1, 1)
    assert loaded.location == "canary.yaml:1:1"
    assert loaded.rollout.key == "default/recommendations"
    assert loaded.rollout.spec.weights == [5, 25, 100]
    result.raise_for_problems()  # nothing to raise


def test_multi_document_file_keeps_every_rollout_in_order() -> None:
    text = "# two policies\n---\n" + named("first") + "---\n" + named("second", "shop")

    result = load_text(text, "many.yaml")

    assert result.ok, result.problems
    assert [r.rollout.key for r in result.rollouts] == ["default/first", "shop/second"]
    assert [r.line for r in result.rollouts] == [3, 3 + VALID.count("\n") + 1]


def test_directory_is_loaded_recursively_sorted_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b.yaml").write_text(named("b"))
    (tmp_path / "a.yml").write_text(named("a"))
    (tmp_path / "sub" / "c.yaml").write_text(named("c"))
    (tmp_path / "sub" / ".draft.yaml").write_text("not: [valid")
    (tmp_path / ".git" / "d.yaml").write_text("not: [valid")
    (tmp_path / "README.txt").write_text("not yaml at all: [")

    result = load_paths([tmp_path])

    assert result.ok, result.problems
    assert [r.rollout.metadata.name for r in result.rollouts] == ["a", "b", "c"]
    assert result.files == tuple(str(tmp_path / n) for n in ("a.yml", "b.yaml", "sub/c.yaml"))


def test_a_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(VALID)

    result = load_paths([policy, tmp_path, str(policy)])

    assert result.ok, result.problems
    assert len(result.rollouts) == 1


def test_timestamps_and_merge_keys_are_not_mistakes() -> None:
    text = VALID.replace(
        "  namespace: default\n", "  namespace: default\n  annotations: {released: 2024-02-30}\n"
    ).replace(
        "    - setWeight: 5\n",
        "    - &first {setWeight: 5}\n    - <<: *first\n      setWeight: 10\n",
    )

    result = load_text(text, "anchors.yaml")

    assert result.ok, result.problems
    rollout = result.rollouts[0].rollout
    assert rollout.metadata.annotations == {"released": "2024-02-30"}
    assert rollout.spec.weights == [5, 10, 25, 100]


def test_utf8_byte_order_mark_is_accepted() -> None:
    result = load_bytes(b"\xef\xbb\xbf" + VALID.encode(), "bom.yaml")

    assert result.ok, result.problems


# --- problems beyond one file -----------------------------------------------------------------


def test_duplicate_names_across_files_name_both_locations(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text("# same rollout again\n" + VALID)
    (tmp_path / "c.yaml").write_text(named("recommendations", "other"))

    result = load_paths([tmp_path])

    [problem] = result.problems
    assert (problem.file, problem.line, problem.column) == (str(tmp_path / "b.yaml"), 5, 9)
    assert problem.path == "metadata.name"
    assert f"defined twice; first at {tmp_path / 'a.yaml'}:1:1" in problem.message
    assert [r.file for r in result.rollouts] == [str(tmp_path / "a.yaml"), str(tmp_path / "c.yaml")]


def test_problems_of_several_files_are_all_reported_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "z.yaml").write_text(VALID.replace("setWeight: 25", "setWeight: 250"))
    (tmp_path / "a.yaml").write_text(VALID.replace("interval: 30s", "interval: soon"))

    result = load_paths([tmp_path / "z.yaml", tmp_path / "a.yaml"])

    assert [(Path(p.file).name, p.path) for p in result.problems] == [
        ("z.yaml", "spec.steps[2].setWeight"),
        ("a.yaml", "spec.analysis.interval"),
    ]


def test_a_syntax_error_keeps_the_documents_before_it() -> None:
    result = load_text(VALID + "---\nkind: [\n", "half.yaml")

    assert [r.rollout.key for r in result.rollouts] == ["default/recommendations"]
    [problem] = result.problems
    assert problem.line == VALID.count("\n") + 3
    assert problem.message.startswith("YAML syntax error:")


def test_problems_render_as_file_line_column_path_message() -> None:
    result = load_text(VALID.replace("setWeight: 5\n", "setWeight: 500\n"), "p.yaml")

    with pytest.raises(PolicyError) as caught:
        result.raise_for_problems()

    assert str(caught.value) == (
        "p.yaml:13:18: spec.steps[0].setWeight: Input should be less than or equal to 100 (got 500)"
    )


# --- unreadable input -------------------------------------------------------------------------


def test_missing_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    result = load_paths([tmp_path / "nope.yaml"])

    [problem] = result.problems
    assert (problem.line, problem.column) == (0, 0)
    assert problem.message == "no such file or directory"


def test_path_through_a_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "file.yaml").write_text(VALID)

    [problem] = load_paths([tmp_path / "file.yaml" / "x.yaml"]).problems

    assert problem.message == "cannot read this file: Not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text(VALID)
    secret.chmod(0)

    [problem] = load_paths([secret]).problems

    assert problem.message == "permission denied: cannot read this file"


def test_directory_without_yaml_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")

    [problem] = load_paths([tmp_path]).problems

    assert problem.file == str(tmp_path)
    assert problem.message == "directory contains no *.yaml or *.yml files"


def test_binary_junk_is_a_problem(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"\x7fELF\x02\x01\x01\n\x00\x00\x00\x03\x00>\x00\xff\xfe")

    [problem] = load_paths([junk]).problems

    assert (problem.line, problem.column) == (2, 1)
    assert problem.message == "binary data (NUL byte), not YAML text"


def test_invalid_utf8_is_located() -> None:
    [problem] = load_bytes(b"apiVersion: v1\nkind: \xc3\x28\n", "latin.yaml").problems

    assert (problem.line, problem.column) == (2, 7)
    assert problem.message.startswith("not valid UTF-8 (byte 0xc3)")


def test_control_characters_are_located() -> None:
    [problem] = load_text("apiVersion: v1\nkind: Roll\x07out\n", "bell.yaml").problems

    assert (problem.line, problem.column) == (2, 11)
    assert problem.message.startswith("unacceptable character #x0007")


def test_python_tags_are_refused_not_executed() -> None:
    [problem] = load_text("!!python/object/apply:os.system ['true']\n", "evil.yaml").problems

    assert problem.message.startswith("YAML error: could not determine a constructor")


def test_deep_nesting_is_a_problem() -> None:
    [problem] = load_text("[" * 5000, "deep.yaml").problems

    assert problem.message == "YAML nested too deeply"


def test_out_of_range_numbers_are_problems() -> None:
    for huge in ("interval: 1e300", "interval: 99999999999d"):
        result = load_text(VALID.replace("interval: 30s", huge), "huge.yaml")

        assert not result.ok
        assert not result.rollouts


# --- objects from the API server --------------------------------------------------------------


def api_object() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(VALID)
    obj["metadata"].update(
        uid="6f1c",
        resourceVersion="42",
        generation=3,
        finalizers=["x"],
        ownerReferences=[{"kind": "App", "name": "shop"}],
        creationTimestamp="2024-01-01T00:00:00Z",
    )
    obj["status"] = {"phase": "Progressing"}
    return obj


def test_api_object_loads_ignoring_server_metadata_and_status() -> None:
    result = load_object(api_object(), "cluster:default/recommendations")

    assert result.ok, result.problems
    [loaded] = result.rollouts
    assert (loaded.file, loaded.line, loaded.column) == ("cluster:default/recommendations", 0, 0)
    assert loaded.rollout.metadata.resource_version == "42"


def test_api_object_problems_have_paths_but_no_lines() -> None:
    obj = api_object()
    obj["spec"]["steps"][1] = {"pasue": {}}
    obj["spec"]["canary"] = obj["spec"]["stable"]

    result = load_object(obj, "cluster:default/recommendations")

    assert [str(p) for p in result.problems] == [
        "cluster:default/recommendations:0:0: spec.steps[1].pasue: unknown field `pasue`; did you mean `pause`?"
    ]


def test_api_object_with_wrong_kind() -> None:
    [problem] = load_object({"apiVersion": API, "kind": "Deployment"}, "cluster:x").problems

    assert problem.path == "kind"
    assert "got 'Deployment'" in problem.message


# --- properties -------------------------------------------------------------------------------


def check_result(result: LoadResult, text: str) -> None:
    assert result.ok == (not result.problems)
    assert result.rollouts or result.problems, "input must yield a rollout or a problem"
    last_line = text.count("\n") + text.count("\r") + 2
    for problem in result.problems:
        assert problem.message
        assert 0 <= problem.line <= last_line
        assert problem.column >= 0


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    check_result(load_text(text, "fuzz.yaml"), text)


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_result(load_bytes(data, "fuzz.yaml"), data.decode("utf-8", "replace"))


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(sorted(set(VALID) | {"\t", "'", '"', "&", "*", "!", "|"}))),
    st.integers(min_value=0, max_value=len(VALID)),
)
def test_yaml_like_edits_of_a_valid_policy_never_raise(insert: str, at: int) -> None:
    text = VALID[:at] + insert + VALID[at:]
    check_result(load_text(text, "edited.yaml"), text)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths_of(item, (*prefix, i))
    return found


BASE: dict[str, Any] = yaml.safe_load(VALID)
BASE_PATHS = paths_of(BASE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASE_PATHS), VALUES)
def test_loader_agrees_with_the_model_on_mutated_policies(path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(BASE)
    parent = data
    for item in path[:-1]:
        parent = parent[item]
    parent[path[-1]] = value
    text = yaml.safe_dump(data, sort_keys=False)

    result = load_text(text, "mutated.yaml")

    check_result(result, text)
    try:
        Rollout.model_validate(data)
    except (ValidationError, OverflowError):
        assert not result.ok
    else:
        assert result.ok, result.problems
