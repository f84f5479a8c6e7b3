"""Policy loading that cannot be blown up: sizes, YAML nodes and aliases, non-regular files, bounded
messages, the template language, metrics addresses, warnings, and the schema's defaults."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.policy import templates
from rollout.policy.addresses import forbidden_address
from rollout.policy.analysis import TEMPLATE_PATTERN, TEMPLATE_VARS
from rollout.policy.clipping import show
from rollout.policy.composing import MAX_NODES
from rollout.policy.loading import load_bytes, load_paths, load_text
from rollout.policy.models import Rollout
from rollout.policy.quantities import parse_duration
from rollout.policy.reading import MAX_FILE_BYTES
from rollout.policy.schema import json_schema

HEAD = """\
apiVersion: delivery.rollout.dev/v1alpha1
kind: Rollout
metadata: {name: limits}
spec:
  router: {gatewayRoute: {name: r}}
  stable: a
  canary: b
"""
VALID = HEAD + "  steps: [{setWeight: 5}, {setWeight: 100}]\n  analysis: {slos: {errorRate: {max: 1%}}}\n"


def alias_bomb(levels: int = 9, at: str = "kind") -> str:
    lines = ["apiVersion: delivery.rollout.dev/v1alpha1", "metadata:", "  name: bomb", "  labels:"]
    lines.append('    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        lines.append(f"    {name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    lines.append(f"{at}: *{previous}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    text = alias_bomb()
    assert len(text.encode()) < 500
    result = load_text(text, "bomb.yaml")
    [problem] = result.problems
    assert (problem.line, problem.column) == (9, 15)  # the first alias past 20,000 expanded nodes
    assert f"past {MAX_NODES:,} YAML nodes once its aliases are expanded" in problem.message


def test_aliases_and_merge_keys_within_the_bound_still_work() -> None:
    text = HEAD + "  steps:\n    - &first {setWeight: 5}\n    - <<: *first\n      setWeight: 10\n    - setWeight: 100\n"
    result = load_text(text, "anchors.yaml")
    assert result.ok, result.problems
    assert result.rollouts[0].rollout.spec.weights == [5, 10, 100]


def test_a_recursive_alias_is_refused() -> None:
    result = load_text(HEAD + "  steps: &s [*s]\n", "loop.yaml")
    [problem] = result.problems
    assert "recursive alias" in problem.message
    assert problem.line == 8


def test_a_document_with_too_many_nodes_is_refused_without_composing_it_all() -> None:
    text = HEAD + "  steps: [" + ", ".join(["{setWeight: 1}"] * 12_000) + "]\n"
    assert len(text) < MAX_FILE_BYTES
    [problem] = load_text(text, "many.yaml").problems
    assert f"grows past {MAX_NODES:,} YAML nodes; a policy needs far fewer" in problem.message


def test_step_count_is_capped_at_100() -> None:
    text = HEAD + "  steps: [" + ", ".join(["{setWeight: 1}"] * 101) + "]\n"
    [problem] = load_text(text, "steps.yaml").problems
    assert problem.path == "spec.steps"
    assert "at most 100 items" in problem.message


@pytest.mark.parametrize("size", [MAX_FILE_BYTES + 1, 20 << 20])
def test_files_over_1_mib_are_refused_by_their_size(tmp_path: Path, size: int) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(VALID.encode() + b"#" * (size - len(VALID)))
    [problem] = load_paths([big]).problems
    assert problem.message == f"{size:,} bytes; a policy file may hold at most 1 MiB (1,048,576 bytes)"
    assert "1 MiB" in load_bytes(b"#" * (MAX_FILE_BYTES + 1), "mem.yaml").problems[0].message


def test_fifos_and_devices_are_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # nobody ever writes to it: opening it for reading would block forever
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")  # reading it would never end
    (tmp_path / "good.yaml").write_text(VALID)
    in_directory = load_paths([tmp_path])
    assert in_directory.ok
    assert [r.rollout.key for r in in_directory.rollouts] == ["default/limits"]
    assert sorted((Path(w.file).name, w.message) for w in in_directory.warnings) == [
        ("pipe.yaml", "a FIFO, not a regular file: skipped without reading it"),
        ("zero.yaml", "a character device, not a regular file: skipped without reading it"),
    ]
    named = load_paths([fifo, zero])
    assert [p.message.split(",")[0] for p in named.problems] == ["a FIFO", "a character device"]


def test_a_huge_integer_is_refused_not_converted() -> None:
    [problem] = load_text(HEAD + "  steps: [{setWeight: " + "9" * 5000 + "}]\n", "int.yaml").problems
    assert "an integer of 5,000 digits; at most 64" in problem.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "'" + "x" * 100_000 + "'"),
        ("  stable", "'" + "s" * 100_000 + "'"),
        ("  steps", "[" + "1," * 9000 + "]"),
    ],
)
def test_error_messages_never_hold_an_unbounded_value(field: str, value: str) -> None:
    text = HEAD.replace("kind: Rollout\n", "") + f"{field}: {value}\n"
    if field != "kind":
        text = HEAD + f"{field}: {value}\n"
    result = load_text(text, "long.yaml")
    assert result.problems
    assert all(len(p.message) < 600 for p in result.problems), [len(p.message) for p in result.problems]


def test_show_bounds_every_kind_of_value() -> None:
    assert show("x" * 1000) == repr("x" * 60) + "… (1,000 characters)"
    assert show(list(range(10**5))) == "a list of 100,000 item(s)"
    assert show(10**5000) == "a 16,610-bit integer"
    assert show(True) == "true"


@given(st.text(alphabet="{}ab_:.[]0", max_size=30) | st.sampled_from(["{backend}", "{{backend}}", "{{{backend}}}"]))
def test_the_template_parser_and_the_crd_pattern_agree(template: str) -> None:
    try:
        templates.parse(template, TEMPLATE_VARS)
        parsed = True
    except templates.TemplateError:
        parsed = False
    assert parsed == bool(re.fullmatch(TEMPLATE_PATTERN, template))


def test_templates_fill_by_plain_substitution() -> None:
    values = {"backend": "web-v2", "window": "1m"}
    assert templates.fill('sum(x{{app="{backend}"}}[{window}])', values) == 'sum(x{app="web-v2"}[1m])'
    assert templates.fill("{backend}{backend}", {"backend": "{window}"}) == "{window}{window}"  # never re-read
    for bad in ("{backend.__class__}", "{backend[0]}", "{backend!r}", "{backend:>9}", "{0}", "{}", "}", "{"):
        with pytest.raises(templates.TemplateError):
            templates.fill(bad, values)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://169.254.169.254/", "link-local"),
        ("http://[fe80::1]:9090", "link-local"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://2852039166/", "non-canonical"),
        ("http://0xa9.0xfe.0xa9.0xfe/", "non-canonical"),
        ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
        ("http://user:pw@prom/", "user or password"),
        ("http://prometheus.monitoring:9090", None),
        ("https://10.1.2.3:9090", None),
    ],
)
def test_metrics_addresses(url: str, refused: str | None) -> None:
    why = forbidden_address(url)
    assert (why is None) if refused is None else (why is not None and refused in why), why


def test_risky_choices_are_warnings_that_do_not_invalidate() -> None:
    text = (
        VALID.replace(
            "steps: [{setWeight: 5}, {setWeight: 100}]", "steps: [{setWeight: 5}, {approval: {}}, {setWeight: 100}]"
        )
        + "  approvals: {timeout: 30s, onTimeout: rollback}\n"
    )
    result = load_text(text, "risky.yaml")
    assert result.ok
    [warning] = result.warnings
    assert (warning.line, warning.path) == (10, "spec.approvals.timeout")
    assert "less than a minute" in warning.message


def test_durations_need_a_unit_and_the_schema_shows_defaults_as_policies_write_them() -> None:
    for bare in (30, 30.0, "30"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bare)
    text = json.dumps(json_schema())
    assert "PT" not in text
    defaults = json_schema()["$defs"]["Analysis"]["properties"]["interval"]["default"]
    assert parse_duration(defaults).total_seconds() == 30
    Rollout.model_validate(
        json.loads(json.dumps({"apiVersion": "delivery.rollout.dev/v1alpha1"}))
        | {
            "kind": "Rollout",
            "metadata": {"name": "d"},
            "spec": {
                "router": {"gatewayRoute": {"name": "r"}},
                "stable": "a",
                "canary": "b",
                "steps": [{"setWeight": 100}],
                "analysis": {"interval": defaults},
            },
        }
    )
