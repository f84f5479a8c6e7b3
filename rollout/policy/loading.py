"""Loading Rollout policies from YAML files, directories, text and API objects, with located problems.

Owns turning bytes into validated ``Rollout`` models and every user mistake into a ``Problem`` with
``file:line:column`` (1-based, from PyYAML node marks) and a camelCase field path such as
``spec.steps[2].setWeight``: unreadable files, invalid UTF-8 and binary junk, YAML syntax errors,
empty or non-mapping documents, duplicate keys, wrong apiVersion/kind, schema violations (unknown
fields with a "did you mean" suggestion; see ``diagnosing.py``) and Rollout names defined twice;
plus warnings (never problems) for dangerous-but-legal choices (``cautions.py``) and for FIFOs,
devices and sockets found in a directory (named explicitly, they are problems). Everything is
bounded: files are read by ``reading.py`` (regular files only, at most 1 MiB), YAML is composed by
``composing.py`` (at most 20,000 nodes per document, aliases expanded), messages never hold an
unbounded value (``clipping.py``). It reports every problem, never raises for a user's mistake, and
(with ``reading.py``) is the only part of ``rollout.policy`` that reads files. It must not talk to
the network or the Kubernetes API, nor decide anything about rollouts. Line and column 0 mean
"the whole file or object".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rollout.errors import PolicyError, Problem
from rollout.policy.cautions import cautions
from rollout.policy.clipping import show
from rollout.policy.composing import Refused, documents
from rollout.policy.diagnosing import Loc, diagnose, locate, problem_at, render_path
from rollout.policy.models import API_VERSION, KIND, Metadata, Rollout
from rollout.policy.reading import MAX_FILE_BYTES, Unreadable, read_policy_file, too_large, yaml_files

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class LoadedRollout:
    """A valid Rollout and where its document starts (line/column 0 when it has no source text)."""

    rollout: Rollout
    file: str
    line: int
    column: int

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class LoadResult:
    """Every valid Rollout found and every problem found, in source order."""

    rollouts: tuple[LoadedRollout, ...] = ()
    problems: tuple[Problem, ...] = ()
    files: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()  # never make a result invalid (skipped files, risky choices)
    names: tuple[tuple[str, str, str], ...] = ()  # (file, namespace, name) of every document naming a Rollout

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise ``PolicyError`` carrying every problem, if there is any."""
        if self.problems:
            raise PolicyError(list(self.problems))


@dataclass
class _Collector:
    """Accumulates documents' outcomes across sources; ``result()`` adds cross-document checks."""

    rollouts: list[tuple[LoadedRollout, yaml.Node | None]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    names: list[tuple[str, str, str]] = field(default_factory=list)

    def problem(self, file: str, where: yaml.Node | yaml.Mark | None, path: str, message: str) -> None:
        self.problems.append(problem_at(file, where, path, message))

    def warning(self, file: str, where: yaml.Node | yaml.Mark | None, path: str, message: str) -> None:
        self.warnings.append(problem_at(file, where, path, message))

    def result(self) -> LoadResult:
        kept: list[LoadedRollout] = []
        first: dict[str, LoadedRollout] = {}
        for loaded, name_node in self.rollouts:
            key = loaded.rollout.key
            if key in first:
                self.problem(
                    loaded.file,
                    name_node,
                    "metadata.name",
                    f"Rollout {key} is defined twice; first at {first[key].location}",
                )
            else:
                first[key] = loaded
                kept.append(loaded)
        order = {name: i for i, name in enumerate(self.files)}

        def position(p: Problem) -> tuple[int, int, int]:
            return (order.get(p.file, len(order)), p.line, p.column)

        return LoadResult(
            tuple(kept),
            tuple(sorted(self.problems, key=position)),
            tuple(self.files),
            tuple(sorted(self.warnings, key=position)),
            tuple(self.names),
        )


def _within_size(size: int, name: str, out: _Collector) -> bool:
    if size <= MAX_FILE_BYTES:
        return True
    out.files.append(name)
    out.problem(name, None, "", too_large(size))
    return False


def _unreadable(where: str, why: str, out: _Collector) -> None:
    out.files.append(where)
    out.problem(where, None, "", why)


# --- entry points -----------------------------------------------------------------------------


def load_paths(paths: Sequence[str | Path]) -> LoadResult:
    """Load files and directories (recursively every ``*.yaml``/``*.yml``, sorted, dot-entries skipped).

    Only regular files are opened: a FIFO, device or socket named like a policy is a warning inside
    a directory and a problem when named explicitly; neither is ever read.
    """
    out = _Collector()
    loaded: set[str] = set()
    for given in paths:
        path = Path(given)
        directory = os.path.isdir(path)
        found = yaml_files(path, lambda where, why: _unreadable(where, why, out)) if directory else [path]
        if not found and str(path) not in out.files:
            out.files.append(str(path))
            out.problem(str(path), None, "", "directory contains no *.yaml or *.yml files")
        for file in found:
            identity = os.path.realpath(file)
            if identity not in loaded:  # a file named twice (or inside a named directory) loads once
                loaded.add(identity)
                _load_file(file, out, explicit=not directory)
    return out.result()


def load_bytes(data: bytes, source_name: str) -> LoadResult:
    """Load one file's content; binary junk, invalid UTF-8 and more than 1 MiB become problems."""
    out = _Collector()
    if _within_size(len(data), source_name, out):
        _load_bytes(data, source_name, out)
    return out.result()


def load_text(text: str, source_name: str = "<string>") -> LoadResult:
    """Load YAML text holding one or more Rollout documents (at most 1 MiB of UTF-8)."""
    out = _Collector()
    if _within_size(len(text) if len(text) < MAX_FILE_BYTES // 4 else len(text.encode()), source_name, out):
        _load_text(text, source_name, out)
    return out.result()


def load_object(obj: Mapping[str, Any], source_name: str) -> LoadResult:
    """Validate a Rollout object read from the API server; problems have line and column 0.

    Server-owned metadata the policy model does not describe (``finalizers``, ``ownerReferences``...)
    is dropped before validation: it is not the policy author's to get wrong.
    """
    out = _Collector(files=[source_name])
    data = dict(obj)
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping):
        known = {f.alias or n for n, f in Metadata.model_fields.items()} | set(Metadata.model_fields)
        data["metadata"] = {k: v for k, v in metadata.items() if k in known}
    _validate_document(data, None, source_name, out)
    return out.result()


# --- files and bytes --------------------------------------------------------------------------


def _load_file(path: Path, out: _Collector, *, explicit: bool = True) -> None:
    name = str(path)
    try:
        data = read_policy_file(path)
    except Unreadable as e:
        out.files.append(name)
        report = out.warning if e.irregular and not explicit else out.problem
        report(name, None, "", e.message)
    else:
        _load_bytes(data, name, out)


def _load_bytes(data: bytes, name: str, out: _Collector) -> None:
    if b"\x00" in data:
        out.files.append(name)
        line, column = _byte_position(data, data.index(b"\x00"))
        out.problems.append(Problem(name, line, column, "", "binary data (NUL byte), not YAML text"))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        out.files.append(name)
        line, column = _byte_position(data, e.start)
        out.problems.append(
            Problem(
                name,
                line,
                column,
                "",
                f"not valid UTF-8 (byte 0x{data[e.start]:02x}); policy files must be UTF-8 text",
            )
        )
        return
    _load_text(text, name, out)


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


# --- YAML -------------------------------------------------------------------------------------


def _load_text(text: str, name: str, out: _Collector) -> None:
    out.files.append(name)
    count = 0
    try:
        ambiguous: set[int] = set()  # documents with duplicate keys: validated, never returned

        def check(node: yaml.Node) -> None:
            if _report_duplicate_keys(node, name, out):
                ambiguous.add(id(node))

        for node, data in documents(text, check):
            count += 1
            if data is None:
                where = node.start_mark if node is not None else None
                out.problem(name, where, "", "empty document (nothing between `---` separators)")
            else:
                _validate_document(data, node, name, out, keep=id(node) not in ambiguous)
    except Refused as e:
        out.problem(name, e.problem_mark, "", f"refused: {e.problem}")
        return
    except yaml.MarkedYAMLError as e:
        kind = "YAML error" if isinstance(e, yaml.constructor.ConstructorError) else "YAML syntax error"
        detail = f"{e.problem}" + (f" ({e.context}{_at(e.context_mark)})" if e.context else "")
        out.problem(name, e.problem_mark or e.context_mark, "", f"{kind}: {detail}")
        return
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        code = e.character if isinstance(e.character, int) else ord(e.character)
        message = f"unacceptable character #x{code:04x} (binary data?); YAML must be printable text"
        out.problems.append(Problem(name, line, column, "", message))
        return
    except yaml.YAMLError as e:
        out.problem(name, None, "", f"YAML error: {e}")
        return
    except RecursionError:
        out.problem(name, None, "", "YAML nested too deeply")
        return
    if count == 0:
        out.problem(name, None, "", "empty file: no YAML documents")


def _at(mark: yaml.Mark | None) -> str:
    return f" started at line {mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def _report_duplicate_keys(root: yaml.Node, name: str, out: _Collector) -> bool:
    """Report keys that appear twice in one mapping (PyYAML silently keeps the last one)."""
    found = False
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG or not isinstance(key, yaml.ScalarNode):
                    stack.append((value, path))
                    continue
                text = str(key.value)
                stack.append((value, (*path, text)))
                if text in first:
                    found = True
                    at = first[text].start_mark
                    out.problem(
                        name,
                        key,
                        render_path((*path, text)),
                        f"duplicate key `{text}` (first at line {at.line + 1}:{at.column + 1}); "
                        "YAML keeps only the last one",
                    )
                else:
                    first[text] = key
    return found


# --- validation -------------------------------------------------------------------------------


def _validate_document(data: Any, node: yaml.Node | None, name: str, out: _Collector, *, keep: bool = True) -> None:
    _record_name(data, name, out)
    if not isinstance(data, dict):
        names: dict[type, str] = {list: "a list", str: "a string", type(None): "null"}
        kind = names.get(type(data), f"a {type(data).__name__} value")
        out.problem(
            name,
            node,
            "",
            f"document is {kind}, not a mapping; a Rollout is a mapping with apiVersion, kind, metadata and spec",
        )
        return
    if not _header_ok(data, node, name, out):
        return
    try:
        rollout = Rollout.model_validate(data)
    except ValidationError as e:
        out.problems.extend(diagnose(e, data, node, name))
        return
    except RecursionError:
        out.problem(name, node, "", "document nested too deeply (recursive YAML anchors?)")
        return
    except OverflowError as e:  # a validator that let a too-large number escape as OverflowError
        out.problem(name, node, "", f"a number in this document is out of range: {e}")
        return
    for path, message in cautions(rollout):
        out.warning(name, _nearest(node, path), render_path(path), message)
    if not keep:
        return
    mark = node.start_mark if node is not None else None
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    name_node = locate(node, ("metadata", "name"))[1] if node is not None else None
    out.rollouts.append((LoadedRollout(rollout, name, line, column), name_node))


def _nearest(node: yaml.Node | None, path: Loc) -> yaml.Node | None:
    """The node at ``path``, else at its deepest ancestor present in the text (defaults are not)."""
    for end in range(len(path), 0, -1):
        found = locate(node, path[:end])[1]
        if found is not None:
            return found
    return node


def _record_name(data: Any, file: str, out: _Collector) -> None:
    """Remember which Rollout a document names, valid or not (so problems can be attached to it)."""
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(metadata, dict):
        return
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if isinstance(name, str) and isinstance(namespace, str) and len(name) <= 253 and len(namespace) <= 63:
        out.names.append((file, namespace, name))


def _header_ok(data: dict[Any, Any], node: yaml.Node | None, name: str, out: _Collector) -> bool:
    """Check apiVersion and kind first: another kind of object would only drown in schema noise."""
    ok = True
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key not in data:
            ok = False
            out.problem(name, node, key, f"missing `{key}`; expected `{key}: {expected}`")
        elif data[key] != expected:
            ok = False
            _, value_node = locate(node, (key,))
            out.problem(
                name,
                value_node,
                key,
                f"expected `{expected}`, got {show(data[key])}; this file must hold only Rollout policies",
            )
    return ok
