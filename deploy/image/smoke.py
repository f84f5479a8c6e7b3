"""Import smoke for the image's runtime venv, after deploy/image/trim-venv.sh.

Imports every module of the ``rollout`` package and the parts of the official ``kubernetes`` client
the daemon uses (building each API object it builds), checks that nothing pulled in the trimmed
``kubernetes.aio``, and runs the CLI: ``--version``, ``schema``, ``validate`` and ``simulate`` on the
policy given as the first argument. Exits non-zero on the first failure.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

from kubernetes import client, config, watch

import rollout


def main() -> None:
    policy = sys.argv[1]
    modules = [m.name for m in pkgutil.walk_packages(rollout.__path__, "rollout.") if m.name != "rollout.__main__"]
    for name in modules:
        importlib.import_module(name)
    api = client.ApiClient(client.Configuration())
    for cls in (client.CustomObjectsApi, client.CoordinationV1Api, client.CoreV1Api, client.EventsV1Api):
        cls(api)
    for loader in (config.load_kube_config, config.load_incluster_config):
        if not callable(loader):
            raise SystemExit(f"smoke: kubernetes.config lost {loader!r}")
    watch.Watch()
    trimmed = sorted(m for m in sys.modules if m.startswith("kubernetes.aio"))
    if trimmed:
        raise SystemExit(f"smoke: imported the trimmed kubernetes.aio: {trimmed}")
    cli = [sys.executable, "-I", "-m", "rollout"]  # -I: the installed package, never a source tree in cwd
    subprocess.run([*cli, "--version"], check=True)
    subprocess.run([*cli, "schema"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "validate", policy], check=True)
    subprocess.run([*cli, "simulate", policy, "--scenario", "error-spike", "--at-step", "2"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"smoke: {len(modules)} rollout modules and the kubernetes client import; the CLI runs", flush=True)


if __name__ == "__main__":
    main()
