"""Subcommands that show rollouts: ``status`` (one rollout, or a table) and ``list`` (every rollout
with the one-line reason), in kubectl's output conventions (``-o wide|json|yaml``).

``status NAME --watch`` follows a rollout until its run ends and exits 0 when it was promoted, 1
when it rolled back, was aborted or its spec is invalid, 2 after ``--timeout``; on a terminal it
redraws in place, into a pipe it prints one plain line per change (no escape codes). Details of the
last verdict are behind ``-v``. It only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rollout.cli.targeting import add_target, client, namespace

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2
_FAILED = ("RolledBack", "Aborted", "Invalid")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show one rollout (or all of a namespace) and why it is where it is",
        description="Show a Rollout: phase, step, the weights the route carries, the decision "
        "sentence and the last verdict. With --watch, follow it until its run ends: exit 0 "
        "promoted, 1 rolled back / aborted / invalid, 2 on --timeout.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    add_target(p, all_namespaces=True)
    p.add_argument("--watch", "-w", action="store_true", help="follow until the run ends")
    p.add_argument("--timeout", type=float, default=0.0, help="with --watch: give up after this many seconds")
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml"], help="output format")
    p.add_argument("--json", action="store_true", help="same as -o json")
    p.add_argument("-v", "--verbose", action="store_true", help="every check of the last verdict, and internals")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "list",
        help="one line per rollout, with why it is where it is",
        description="List Rollouts: namespace, name, phase, step, weights on the route, and the reason in one line.",
    )
    add_target(p, all_namespaces=True)
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml"], help="output format")
    p.set_defaults(handler=cmd_list)


def _objects(args: argparse.Namespace) -> list[Mapping[str, Any]]:
    from rollout.kube.rollouts import RolloutObjects

    objects = RolloutObjects(client(args))
    scope = None if getattr(args, "all_namespaces", False) else [namespace(args)]
    return [o.raw for o in objects.list(scope)]


def cmd_list(args: argparse.Namespace) -> int:
    found = sorted(_objects(args), key=_key)
    print(_render_many(found, args.output))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    output = "json" if args.json else args.output
    if not args.name:
        if args.watch:
            print("--watch needs a NAME", file=sys.stderr)
            return 2
        print(_render_many(sorted(_objects(args), key=_key), output))
        return 0
    from rollout.kube.rollouts import RolloutObjects

    objects = RolloutObjects(client(args))
    ns = namespace(args)
    if not args.watch:
        print(_render_one(objects.get(ns, args.name).raw, output, verbose=args.verbose))
        return 0
    tty = sys.stdout.isatty() and output is None
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    last = ""
    while True:
        raw = objects.get(ns, args.name).raw
        text = _render_one(raw, output, verbose=args.verbose) if tty or output else _line(raw)
        if text != last:
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()
            last = text
        code = _ended(raw)
        if code is not None:
            return code
        if deadline is not None and time.monotonic() >= deadline:
            print(f"timed out after {args.timeout:g}s: {_line(raw)}", file=sys.stderr)
            return EXIT_TIMEOUT
        time.sleep(1.0)


def _ended(raw: Mapping[str, Any]) -> int | None:
    """The exit code of a watched rollout whose current run ended (None: still running)."""
    status = raw.get("status") or {}
    phase = status.get("phase")
    observed = status.get("observedGeneration")
    generation = (raw.get("metadata") or {}).get("generation")
    if observed is not None and generation is not None and observed != generation:
        return None  # the daemon has not looked at the latest spec yet
    if phase == "Promoted":
        return EXIT_SUCCEEDED
    if phase in _FAILED:
        return EXIT_FAILED
    return None


def _key(raw: Mapping[str, Any]) -> tuple[str, str]:
    meta = raw.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _line(raw: Mapping[str, Any]) -> str:
    s = raw.get("status") or {}
    ns, name = _key(raw)
    return (
        f"{datetime.now(UTC):%H:%M:%S} {ns}/{name} {s.get('phase', 'Pending')} step {s.get('step', 0)}/"
        f"{s.get('steps', '?')} canary {s.get('canaryWeight', 0)}%: {s.get('message', '')}"
    )


def _render_many(found: Sequence[Mapping[str, Any]], output: str | None) -> str:
    if output in ("json", "yaml"):
        doc = {"apiVersion": "v1", "kind": "List", "items": list(found)}
        return _dump(doc, output)
    wide = output == "wide"
    header = ["NAMESPACE", "NAME", "PHASE", "STEP", "CANARY", "STABLE"]
    header += ["DESIRED", "REVISION", "REASON"] if wide else ["REASON"]
    rows = [header]
    for raw in found:
        s = raw.get("status") or {}
        ns, name = _key(raw)
        row = [ns, name, str(s.get("phase", "Pending")), f"{s.get('step', 0)}/{s.get('steps', '?')}"]
        row += [f"{s.get('canaryWeight', 0)}%", f"{s.get('stableWeight', 100)}%"]
        if wide:
            row += [f"{s.get('desiredCanaryWeight', 0)}%", str(s.get("revision", "-"))]
        message = str(s.get("message", ""))
        row.append(message if wide else message[:100])
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(widths[i]) for i, c in enumerate(r[:-1])), r[-1]]).rstrip() for r in rows)


def _render_one(raw: Mapping[str, Any], output: str | None, *, verbose: bool) -> str:
    if output in ("json", "yaml"):
        return _dump(dict(raw), output)
    s = raw.get("status") or {}
    ns, name = _key(raw)
    lines = [
        f"Rollout {ns}/{name}  revision {s.get('revision', '-')}",
        f"  {s.get('phase', 'Pending')}: step {s.get('step', 0)}/{s.get('steps', '?')}, route carries canary "
        f"{s.get('canaryWeight', 0)}% / stable {s.get('stableWeight', 100)}%"
        + (
            f" (rollout wants {s.get('desiredCanaryWeight')}%)"
            if s.get("desiredCanaryWeight") not in (None, s.get("canaryWeight"))
            else ""
        ),
        f"  why        {s.get('message', '')}",
    ]
    if s.get("match"):
        lines.insert(2, f"  A/B        requests with {s['match']} also go to the canary (a managed route)")
    if s.get("verdict"):
        lines.append(f"  verdict    {s['verdict'] if verbose else _first(str(s['verdict']))}")
    bad = [c for c in s.get("conditions") or [] if _notable(c)]
    for cond in bad:
        lines.append(
            f"  {cond.get('type')}={cond.get('status')} ({cond.get('reason')}): {cond.get('message', '')}"[:200]
        )
    if verbose:
        state = s.get("state") or {}
        verdict = state.get("verdict") or {}
        for check in verdict.get("checks") or []:
            lines.append(f"    {check.get('name', '?'):<12} {check.get('verdict', '?'):<5} {check.get('detail', '')}")
        for approval in state.get("approvals") or []:
            lines.append(f"  approved   {approval}")
        for cond in s.get("conditions") or []:
            if cond not in bad:
                lines.append(f"  {cond.get('type')}={cond.get('status')} ({cond.get('reason')})")
    return "\n".join(lines)


def _first(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


def _notable(cond: Mapping[str, Any]) -> bool:
    kind, status = cond.get("type"), cond.get("status")
    return (kind in ("Degraded", "Paused") and status == "True") or (kind == "PolicyValid" and status == "False")


def _dump(doc: Mapping[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(doc, indent=2, default=str)
    import yaml

    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False).rstrip()
