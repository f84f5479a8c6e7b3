"""Which kubeconfig, which context, which namespace: the choices ``kubectl`` makes, made the same way.

Owns reading a kubeconfig's contexts (``--context``, the current context, its namespace) so the
CLI defaults to the namespace the user's kubectl would use. It only reads the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import config as k8s_config

from rollout.errors import KubeError


def kubeconfig_path(explicit: str | os.PathLike[str] | None) -> str:
    """``--kubeconfig``, else the first file in ``$KUBECONFIG``, else ``~/.kube/config``."""
    if explicit:
        return str(explicit)
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return env or str(Path.home() / ".kube" / "config")


def context_namespace(path: str, context: str | None) -> str:
    """The namespace of ``context`` (default: the current context) in the kubeconfig at ``path``;
    ``default`` when the context names none. A missing or malformed kubeconfig is a ``KubeError``."""
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]  # kubernetes.config has no annotations
    except (k8s_config.ConfigException, OSError, ValueError, TypeError, AttributeError) as e:
        raise KubeError(f"cannot read kubeconfig {path}: {str(e)[:300]}") from e
    chosen = current
    if context is not None:
        chosen = next((c for c in contexts or [] if c.get("name") == context), None)
        if chosen is None:
            names = ", ".join(str(c.get("name")) for c in contexts or [])
            raise KubeError(f"kubeconfig {path} has no context {context!r} (it has: {names or 'none'})")
    namespace = (chosen or {}).get("context", {}).get("namespace") if isinstance(chosen, dict) else None
    return str(namespace) if namespace else "default"
