"""Subcommands that change something: ``run`` (the daemon) and the operator commands ``approve``,
``abort``, ``promote``, ``pause``, ``resume``, ``retry``.

An operator command creates a ``RolloutCommand`` object through the Kubernetes API, as the user the
API server authenticates (``spec.by`` and ``spec.groups`` from a SelfSubjectReview; an admission
policy refuses anything else), then waits until the daemon acknowledges it: exit 0 when accepted,
1 with the daemon's reason when it was ignored or refused, 2 when nothing answered within
``--timeout`` (``--no-wait`` returns as soon as the command is recorded). Heavy modules are
imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rollout.cli.targeting import add_target, client, namespace
from rollout.core.states import CommandKind

_COMMANDS = {
    "approve": (CommandKind.APPROVE, "approve the pending approval gate"),
    "abort": (CommandKind.ABORT, "roll back to stable 100% now (ends Aborted)"),
    "promote": (CommandKind.PROMOTE, "skip the current step's gate (--full: straight to 100%)"),
    "pause": (CommandKind.PAUSE, "hold the rollout at its current weight"),
    "resume": (CommandKind.RESUME, "continue a paused rollout (after drift: restore rollout's weights)"),
    "retry": (CommandKind.RETRY, "start a rolled-back or aborted rollout again"),
}
EXIT_ACCEPTED, EXIT_REFUSED, EXIT_TIMEOUT = 0, 1, 2


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run the daemon",
        formatter_class=_SettingsHelp,
        description="Run the rollout daemon: reconcile Rollouts until SIGTERM.",
        epilog=_SETTINGS,
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
    p.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="split the rollouts into N shards, each led through its own Lease (setting leader.shards; "
        "every replica must use the same N)",
    )
    p.add_argument(
        "--expected-replicas",
        type=int,
        metavar="N",
        help="replicas sharing the shards: each first takes its fair share (setting leader.expected_replicas)",
    )
    p.set_defaults(handler=cmd_run)

    for verb, (kind, text) in _COMMANDS.items():
        p = sub.add_parser(
            verb,
            help=text.replace("%", "%%"),
            description=f"{text[0].upper()}{text[1:]}. Recorded as a RolloutCommand in the Rollout's "
            "namespace (RBAC: create rolloutcommands, and the verb "
            f"'{'promote' if kind is CommandKind.PROMOTE else kind.value}' on rollouts); waits for the "
            "daemon to act on it. Exit 0: accepted; 1: ignored or refused (the daemon's reason is "
            "printed); 2: no answer within --timeout.",
        )
        p.add_argument("name", metavar="NAME")
        add_target(p)
        p.add_argument("--reason", default="", help="why (recorded with the command)")
        p.add_argument("--no-wait", action="store_true", help="return once the command is recorded")
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the daemon (default 60)")
        if verb == "promote":
            p.add_argument("--full", action="store_true", help="skip every remaining step and promote now")
        p.set_defaults(handler=cmd_command, kind=kind)


_SETTINGS = "{settings}"  # the run parser's epilog, filled in only when its help is shown


class _SettingsHelp(argparse.RawDescriptionHelpFormatter):
    """``rollout run --help`` lists every setting; building that list imports the settings model
    (pydantic-settings), so it is built when the help is printed, not for every command line."""

    def add_text(self, text: str | None) -> None:
        super().add_text(settings_help() if text == _SETTINGS else text)


def settings_help() -> str:
    """Every setting with its environment variable and default, generated from the Settings model."""
    from rollout.settings import setting_docs

    lines = ["settings (environment variables; flags above override them):"]
    for doc in setting_docs():
        shown = "unset" if doc.default is None or doc.default == [] else json.dumps(doc.default, default=str)
        lines.append(f"  {doc.env:<40} {doc.path} (default {shown}){': ' + doc.description if doc.description else ''}")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from pydantic import BaseModel, ValidationError

    from rollout.errors import SettingsError
    from rollout.runtime.daemon import Daemon
    from rollout.runtime.logs import configure
    from rollout.settings import Settings, load_settings

    settings = load_settings()
    updates: dict[str, Any] = {}
    if args.kubeconfig:
        updates["kube"] = settings.kube.model_copy(update={"kubeconfig": args.kubeconfig})
    if args.namespaces:
        updates["watch_namespaces"] = args.namespaces
    if args.policy_dir:
        updates["policy_dir"] = args.policy_dir
    if args.port is not None:
        updates["port"] = args.port
    if args.prometheus_url:
        updates["prometheus"] = settings.prometheus.model_copy(update={"url": args.prometheus_url})
    leader: dict[str, Any] = {}
    if args.no_leader_election:
        leader["enabled"] = False
    if args.shards is not None:
        leader["shards"] = args.shards
    if args.expected_replicas is not None:
        leader["expected_replicas"] = args.expected_replicas
    if leader:
        updates["leader"] = settings.leader.model_copy(update=leader)
    try:
        settings = Settings.model_validate(
            {
                **settings.model_dump(),
                **{k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in updates.items()},
            }
        )
    except ValidationError as e:  # a flag's value: one line per bad setting, like the environment's
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise SettingsError(f"invalid settings: {problems}") from e
    configure(settings.log_format, settings.log_level)
    return Daemon(settings).run()


def cmd_command(args: argparse.Namespace) -> int:
    from rollout.kube.access import whoami
    from rollout.kube.commands import CommandObjects, command_body
    from rollout.kube.rollouts import RolloutObjects

    kind: CommandKind = args.kind
    if kind is CommandKind.PROMOTE and getattr(args, "full", False):
        kind = CommandKind.PROMOTE_FULL
    kube = client(args)
    ns = namespace(args)
    rollout = RolloutObjects(kube).get(ns, args.name)
    me = whoami(kube)
    body = command_body(
        ns,
        args.name,
        kind,
        by=me.username,
        groups=me.groups,
        reason=args.reason,
        rollout_uid=str(rollout.raw.get("metadata", {}).get("uid") or "") or None,
    )
    commands = CommandObjects(kube)
    created = commands.create(body)
    print(f"{kind.value} requested for {ns}/{args.name} by {me.username} (RolloutCommand {created.name})")
    if args.no_wait:
        return EXIT_ACCEPTED
    deadline = time.monotonic() + max(args.timeout, 0.0)
    while True:
        status = commands.get(ns, created.name).raw.get("status") or {}
        phase = status.get("phase")
        if phase:
            message = status.get("message", "")
            if phase == "Accepted":
                print(f"accepted: {message}")
                return EXIT_ACCEPTED
            print(f"{phase.lower()}: {message}", file=sys.stderr)
            return EXIT_REFUSED
        if time.monotonic() >= deadline:
            print(
                f"no answer from the daemon within {args.timeout:g}s; the command stays recorded "
                f"(kubectl get rolloutcommands -n {ns} {created.name})",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        time.sleep(0.5)
