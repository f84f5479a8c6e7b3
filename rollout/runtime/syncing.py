"""The policy directory: policy files applied into the cluster as ``Rollout`` objects (server-side
apply, field manager ``rollout-daemon``), hot-reloaded when a file changes.

Owns the rule that a bad file changes nothing: a file with any problem applies none of its
documents (its Rollouts keep their last good spec), the problems are logged with file, line and
field, and recorded as Events on the Rollouts the file names; every other file still applies.
File handling is ``rollout.policy.loading``'s: only regular files are opened (a FIFO, device or
socket named ``*.yaml`` is a logged warning, never read), each file is at most 1 MiB and each
document at most 20,000 YAML nodes with aliases expanded, so one hostile file costs a bounded
time and memory and never blocks the others or the HTTP servers. The scan that decides whether
anything changed only stats entries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rollout.errors import KubeError, KubeNotFound, Problem
from rollout.kube.events import EventRecorder
from rollout.kube.rollouts import RolloutObjects
from rollout.policy.loading import load_paths

log = logging.getLogger("rollout.policies")
_SUFFIXES = (".yaml", ".yml")


class PolicyDirectory:
    def __init__(
        self,
        path: Path,
        objects: RolloutObjects,
        *,
        events: EventRecorder | None,
        guard: Callable[[], None],
        clock: Callable[[], datetime],
        on_applied: Callable[[str, str], None] | None = None,
    ) -> None:
        self.path, self.objects, self.events, self.guard, self.clock = path, objects, events, guard, clock
        self.on_applied = on_applied
        self._fingerprint = ""
        self._applied: dict[str, str] = {}  # rollout key -> revision last applied
        self._reported: set[str] = set()  # problem lines already reported

    def sync(self) -> None:
        """Apply what changed since the last call (cheap when nothing did)."""
        fingerprint = self._scan()
        if fingerprint == self._fingerprint:
            return
        result = load_paths([self.path])
        bad_files = {p.file for p in result.problems}
        named: dict[str, list[tuple[str, str]]] = {}
        for file, namespace, name in result.names:
            named.setdefault(file, []).append((namespace, name))
        for problem in result.problems:
            self._report(problem, named.get(problem.file, []))
        for warning in result.warnings:
            self._warn(warning)
        applied_all = True
        for loaded in result.rollouts:
            if loaded.file in bad_files:
                continue
            policy = loaded.rollout
            if self._applied.get(policy.key) == policy.revision:
                continue
            document = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
            try:
                self.guard()
                self.objects.apply(document)
            except KubeError as e:
                applied_all = False
                log.error(
                    "policy not applied",
                    extra={
                        "event": "rollout.policy-apply-failed",
                        "rollout": policy.key,
                        "file": loaded.location,
                        "error": str(e),
                    },
                )
                continue
            self._applied[policy.key] = policy.revision
            log.info(
                "policy applied",
                extra={
                    "event": "rollout.policy-applied",
                    "rollout": policy.key,
                    "file": loaded.location,
                    "revision": policy.revision,
                },
            )
            if self.on_applied is not None:
                self.on_applied(policy.metadata.namespace, policy.metadata.name)
        if applied_all:
            self._fingerprint = fingerprint  # else try again on the next poll

    def _scan(self) -> str:
        """A fingerprint of every policy-named entry (type, size, mtime): stat only, nothing is opened."""
        digest = hashlib.sha256()
        if not self.path.is_dir():
            return "missing"
        for file in sorted(self.path.rglob("*")):
            if file.suffix in _SUFFIXES and not file.name.startswith("."):
                try:
                    info = file.stat()
                except OSError:
                    continue
                digest.update(f"{file}:{info.st_mode}:{info.st_mtime_ns}:{info.st_size};".encode())
        return digest.hexdigest()

    def _warn(self, warning: Problem) -> None:
        line = f"warning: {warning}"
        if line in self._reported:
            return
        self._reported.add(line)
        log.warning(
            "policy file warning",
            extra={
                "event": "rollout.policy-warning",
                "file": warning.file,
                "line": warning.line,
                "field": warning.path,
                "warning": warning.message,
            },
        )

    def _report(self, problem: Problem, names: list[tuple[str, str]]) -> None:
        line = str(problem)
        if line in self._reported:
            return
        self._reported.add(line)
        log.error(
            "invalid policy file; nothing in it was applied",
            extra={
                "event": "rollout.policy-invalid",
                "file": problem.file,
                "line": problem.line,
                "field": problem.path,
                "error": problem.message,
            },
        )
        for namespace, name in names:
            self._event(namespace, name, line)

    def _event(self, namespace: str, name: str, message: str) -> None:
        if self.events is None:
            return
        try:
            obj = self.objects.get(namespace, name)
            self.guard()
            self.events.record(
                namespace,
                name,
                uid=obj.raw.get("metadata", {}).get("uid"),
                reason="InvalidPolicyFile",
                message=message,
                warning=True,
                now=self.clock(),
            )
        except KubeNotFound:
            return
        except KubeError as e:
            log.warning("event not recorded", extra={"event": "rollout.event-failed", "error": str(e)})
