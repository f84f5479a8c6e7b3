"""Which cluster and namespace a CLI command talks to, chosen the way kubectl chooses them.

Owns the shared flags (``--kubeconfig``, ``--context``, ``-n/--namespace``, ``-A``) and turning
them into a client and a namespace: the namespace defaults to the kubeconfig context's, then
``default``. Heavy modules are imported only when a cluster command actually runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollout.kube.client import KubeClient


def add_target(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: its current context)")
    p.add_argument(
        "--namespace", "-n", help="namespace of the Rollout (default: the context's namespace, then default)"
    )
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def client(args: argparse.Namespace) -> KubeClient:
    from rollout.errors import KubeError
    from rollout.kube.client import KubeClient
    from rollout.kube.contexts import kubeconfig_path

    path = kubeconfig_path(args.kubeconfig)
    if args.kubeconfig is None and not Path(path).exists():
        try:
            return KubeClient.in_cluster()
        except KubeError as e:
            raise KubeError(f"no kubeconfig ({path} does not exist; --kubeconfig or $KUBECONFIG) and {e}") from e
    return KubeClient.from_kubeconfig(path, context=args.context)


def namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    from rollout.kube.contexts import context_namespace, kubeconfig_path

    path = kubeconfig_path(args.kubeconfig)
    if args.kubeconfig is None and not Path(path).exists():
        return "default"
    return context_namespace(path, args.context)
