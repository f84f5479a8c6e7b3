"""Subcommands that talk to the cluster: ``run`` (the daemon), ``status``, and the operator commands
``approve``, ``abort``, ``promote``, ``pause``, ``resume``, ``retry``.

Operator commands go through the Kubernetes API (so RBAC decides who may), as an entry in the
Rollout's commands annotation naming who asked (from a SelfSubjectReview); the daemon acts on
it at its next tick and records it in the status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from pydantic import BaseModel

from rollout.core.states import Command, CommandKind
from rollout.kube.client import KubeClient
from rollout.kube.rollouts import RolloutObject, RolloutObjects
from rollout.runtime.daemon import Daemon, kube_client
from rollout.runtime.logs import configure
from rollout.runtime.retrying import KUBE_WRITES
from rollout.settings import Settings, load_settings, setting_docs

_COMMANDS = {
    "approve": (CommandKind.APPROVE, "approve the pending approval gate"),
    "abort": (CommandKind.ABORT, "roll back to stable 100% now (ends Aborted)"),
    "promote": (CommandKind.PROMOTE, "skip the current step's gate (--full: straight to 100%)"),
    "pause": (CommandKind.PAUSE, "hold the rollout at its current weight"),
    "resume": (CommandKind.RESUME, "continue a paused rollout (after drift: restore rollout's weights)"),
    "retry": (CommandKind.RETRY, "start a rolled-back or aborted rollout again"),
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the daemon",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the rollout daemon: reconcile Rollouts until SIGTERM.",
        epilog=settings_help(),
    )
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (setting kube.kubeconfig)")
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable; setting watch_namespaces)",
    )
    p.add_argument("--policy-dir", type=Path, help="policy directory (setting policy_dir)")
    p.add_argument("--port", type=int, help="HTTP port (setting port)")
    p.add_argument("--prometheus-url", help="Prometheus URL (setting prometheus.url)")
    p.add_argument("--no-leader-election", action="store_true", help="write without holding the lease")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "status",
        help="show rollouts and why they are where they are",
        description="Show one Rollout in detail, or all Rollouts of a namespace.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    _target(p)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--watch", "-w", action="store_true", help="refresh every 2s until interrupted")
    p.add_argument("--json", action="store_true", help="print the raw status as JSON")
    p.set_defaults(handler=cmd_status)

    for verb, (kind, text) in _COMMANDS.items():
        p = sub.add_parser(
            verb,
            help=text.replace("%", "%%"),
            description=f"{text[0].upper()}{text[1:]}. The daemon acts on it at its next tick and records who asked.",
        )
        p.add_argument("name", metavar="NAME")
        _target(p)
        p.add_argument("--reason", default="", help="why (recorded with the command)")
        if verb == "promote":
            p.add_argument("--full", action="store_true", help="skip every remaining step and promote now")
        p.set_defaults(handler=cmd_command, kind=kind)


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", "-n", default="default", help="namespace of the Rollout (default: default)")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file")


def settings_help() -> str:
    """Every setting with its environment variable and default, generated from the Settings model."""
    lines = ["settings (environment variables; flags above override them):"]
    for doc in setting_docs():
        shown = "unset" if doc.default is None or doc.default == [] else json.dumps(doc.default, default=str)
        lines.append(f"  {doc.env:<40} {doc.path} (default {shown}){': ' + doc.description if doc.description else ''}")
    return "\n".join(lines)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    kube = settings.kube
    if getattr(args, "kubeconfig", None):
        kube = kube.model_copy(update={"kubeconfig": args.kubeconfig})
    return settings.model_copy(update={"kube": kube})


def _client(args: argparse.Namespace) -> KubeClient:
    return kube_client(_settings(args))


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    updates: dict[str, Any] = {}
    if args.namespaces:
        updates["watch_namespaces"] = args.namespaces
    if args.policy_dir:
        updates["policy_dir"] = args.policy_dir
    if args.port is not None:
        updates["port"] = args.port
    if args.prometheus_url:
        updates["prometheus"] = settings.prometheus.model_copy(update={"url": args.prometheus_url})
    if args.no_leader_election:
        updates["leader"] = settings.leader.model_copy(update={"enabled": False})
    settings = Settings.model_validate(
        {
            **settings.model_dump(),
            **{k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in updates.items()},
        }
    )
    configure(settings.log_format, settings.log_level)
    return Daemon(settings).run()


def whoami(client: KubeClient) -> str:
    """The caller's Kubernetes username (SelfSubjectReview), for the record of who asked."""
    try:
        body: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        api = k8s.AuthenticationV1Api(client.api_client)
        review = api.create_self_subject_review(body, _request_timeout=client.timeout)
        info = review.status.user_info if review.status else None
        return str(info.username) if info is not None and info.username else "unknown"
    except Exception:  # an older API server: fall back to an honest "unknown"
        return "unknown"


def cmd_command(args: argparse.Namespace) -> int:
    client = _client(args)
    kind: CommandKind = args.kind
    if kind is CommandKind.PROMOTE and getattr(args, "full", False):
        kind = CommandKind.PROMOTE_FULL
    command = Command(
        kind=kind,
        by=whoami(client),
        at=datetime.now(UTC),
        id=f"cli-{uuid.uuid4().hex[:12]}",
        reason=args.reason,
    )
    objects = RolloutObjects(client)
    KUBE_WRITES.call(lambda: objects.add_command(args.namespace, args.name, command))
    print(
        f"{kind.value} requested for {args.namespace}/{args.name} by {command.by} (id {command.id}); "
        "the daemon acts on it at its next tick"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    objects = RolloutObjects(client)
    while True:
        if args.name:
            obj = objects.get(args.namespace, args.name)
            text = json.dumps(obj.raw.get("status", {}), indent=2) if args.json else describe(obj)
        else:
            found = objects.list(None if args.all_namespaces else [args.namespace])
            text = json.dumps([{"rollout": o.key, **o.status} for o in found], indent=2) if args.json else table(found)
        if not args.watch:
            print(text)
            return 0
        sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
        sys.stdout.flush()
        time.sleep(2)


def table(found: list[RolloutObject]) -> str:
    rows = [("ROLLOUT", "PHASE", "STEP", "CANARY", "STABLE", "MESSAGE")]
    for o in found:
        s = o.status
        rows.append(
            (
                o.key,
                str(s.get("phase", "-")),
                str(s.get("step", "-")),
                str(s.get("canaryWeight", "-")),
                str(s.get("stableWeight", "-")),
                str(s.get("message", ""))[:80],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)) for r in rows)


def describe(obj: RolloutObject) -> str:
    s = obj.status
    state = obj.state()
    lines = [
        f"Rollout {obj.key}",
        f"  phase      {s.get('phase', 'Pending')}   step {s.get('step', 0)}   "
        f"canary {s.get('canaryWeight', 0)}%  stable {s.get('stableWeight', 100)}%   revision {s.get('revision', '-')}",
        f"  message    {s.get('message', '')}",
    ]
    if state.end_reason:
        lines.append(f"  why        {state.end_reason}")
    if state.pause_reason:
        lines.append(f"  paused     {state.pause_reason}")
    verdict = state.verdict
    if verdict is not None:
        lines.append(
            f"  verdict    {verdict.kind.value} (enough data: {verdict.enough_data}) at {state.last_judged_at}"
        )
        for check in verdict.checks:
            evidence = "" if check.evidence is None else f"  evidence {check.evidence:.3g} / {check.threshold:.3g}"
            lines.append(f"    {check.name:<12} {check.verdict.value:<5} {check.detail}{evidence}")
        if not verdict.checks:
            lines.append(f"    {verdict.summary}")
    pending = obj.commands()
    for command in pending:
        lines.append(f"  pending    {command.kind.value} by {command.by} at {command.at:%H:%M:%S}")
    for cond in s.get("conditions", []):
        lines.append(
            f"  condition  {cond.get('type')}={cond.get('status')} {cond.get('reason', '')}: {cond.get('message', '')}"[
                :160
            ]
        )
    return "\n".join(lines)
