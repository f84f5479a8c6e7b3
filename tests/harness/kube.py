"""A real Kubernetes control plane on loopback (envtest-style), for tests, benchmarks and demos.

Owns: finding the ``etcd`` and ``kube-apiserver`` binaries (``KUBEBUILDER_ASSETS``, else the cache
``tests/harness/kube-bins.sh`` fills), starting both on free 127.0.0.1 ports with RBAC, an admin
token (and optional extra admin users, each with its own token and kubeconfig, so that an audit
log tells their requests apart), a service-account signing key, a kubeconfig, waiting for ``/readyz``, stopping every
process and removing every temp dir; plus small admin helpers over plain HTTPS (namespaces, CRDs
until Established, ServiceAccounts with a Role and a TokenRequest kubeconfig). It must not talk
to anything but the processes it started, and never binds outside 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

KUBE_VERSION = "v1.37.2"
BUILD_COMMAND = "make kube-bins   (or: bash tests/harness/kube-bins.sh)"
REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "crds"


class ControlPlaneError(RuntimeError):
    """The control plane could not be found, started or used."""


def binaries_dir() -> Path:
    """Where ``etcd`` and ``kube-apiserver`` are; raises with the build command when missing."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    cache = Path(os.environ.get("ROLLOUT_CACHE", Path.home() / ".cache" / "rollout"))
    where = Path(assets) if assets else cache / f"kube-{KUBE_VERSION}"
    missing = [b for b in ("etcd", "kube-apiserver") if not os.access(where / b, os.X_OK)]
    if missing:
        source = "KUBEBUILDER_ASSETS" if assets else "the cache"
        raise ControlPlaneError(
            f"{', '.join(missing)} not found in {where} ({source}); build them once with: {BUILD_COMMAND}"
        )
    return where


def upstream_crds_dir() -> Path | None:
    """The real upstream CRDs (``../shared/crds`` next to the clone, or next to the directory of
    worktrees the clone is in, e.g. ``wt/<branch>``), when present."""
    for candidate in (REPO_ROOT.parent / "shared" / "crds", REPO_ROOT.parent.parent / "shared" / "crds"):
        if candidate.is_dir():
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlPlane:
    """etcd + kube-apiserver on loopback; use as a context manager or call ``start``/``stop``."""

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        name: str = "rollout-test",
        apiserver_args: Sequence[str] = (),
        users: Sequence[str] = (),
    ) -> None:
        self.bin_dir = bin_dir or binaries_dir()
        self.name = name
        self.apiserver_args = list(apiserver_args)  # extra flags, e.g. an audit log or --watch-cache=false
        self.etcd_url = ""
        self.token = secrets.token_hex(16)
        self.users = {user: secrets.token_hex(16) for user in users}  # extra admins (system:masters)
        self.workdir: Path | None = None
        self.port = 0
        self.started_seconds = 0.0
        self._procs: list[subprocess.Popen[bytes]] = []
        self._ssl: ssl.SSLContext | None = None

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def apiserver_pid(self) -> int:
        """The kube-apiserver's process id (to measure its CPU and memory)."""
        assert len(self._procs) == 2, "control plane not started"
        return int(self._procs[1].pid)

    @property
    def kubeconfig(self) -> Path:
        assert self.workdir is not None, "control plane not started"
        return self.workdir / "kubeconfig"

    def start(self, timeout: float = 90.0) -> ControlPlane:
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - began
        return self

    def _start(self, timeout: float) -> None:
        work = self.workdir
        assert work is not None
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self.etcd_url = etcd_url
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        tokens = [f"{self.token},rollout-admin,rollout-admin,system:masters"]
        tokens += [f"{token},{user},{user},system:masters" for user, token in self.users.items()]
        (work / "tokens.csv").write_text("\n".join(tokens) + "\n")
        subprocess.run(["openssl", "genrsa", "-out", str(work / "sa.key"), "2048"], check=True, capture_output=True)
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={work / 'certs'}",
                f"--token-auth-file={work / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={work / 'sa.key'}",
                f"--service-account-signing-key-file={work / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--endpoint-reconciler-type=none",
                *self.apiserver_args,
            ],
        )
        self._wait_ready(timeout)
        self._write_kubeconfig(self.kubeconfig, self.token, "rollout-admin")
        for user, token in self.users.items():
            self._write_kubeconfig(self.user_kubeconfig(user), token, user)

    def user_kubeconfig(self, user: str) -> Path:
        """The kubeconfig of one of the extra admin ``users`` given at construction."""
        assert self.workdir is not None, "control plane not started"
        if user not in self.users:
            raise ControlPlaneError(f"{user!r} is not one of this control plane's users ({sorted(self.users)})")
        return self.workdir / f"kubeconfig-user-{user}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        assert self.workdir is not None
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._procs.append(proc)

    def _log_tail(self, name: str, lines: int = 30) -> str:
        assert self.workdir is not None
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.workdir is not None
        bundle = self.workdir / "certs" / "apiserver.crt"
        last = ""
        while time.monotonic() < deadline:
            for proc, name in zip(self._procs, ("etcd", "kube-apiserver"), strict=False):
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{self._log_tail(name)}")
            if bundle.exists() and self._ssl is None:
                self._ssl = ssl.create_default_context(cafile=str(bundle))
            if self._ssl is not None:
                try:
                    status, body = self._request("GET", "/readyz")
                    if status == 200:
                        return
                    last = body.decode(errors="replace")[-500:]
                except (OSError, ssl.SSLError) as e:
                    last = str(e)
            time.sleep(0.1)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {timeout}s ({last}):\n{self._log_tail('kube-apiserver')}"
        )

    def stop(self) -> None:
        """Stop every process (TERM, then KILL) and remove the temp dir; safe to call twice."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._procs.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # --- plain HTTPS as the admin -----------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": content_type,
                "Accept": accept,
            },
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        ok: Iterable[int] = (200, 201),
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One admin request; raises ``ControlPlaneError`` unless the status is in ``ok``."""
        status, raw = self._request(method, path, body, content_type=content_type)
        if status not in set(ok):
            raise ControlPlaneError(f"{method} {path}: HTTP {status}: {raw.decode(errors='replace')}")
        parsed = json.loads(raw) if raw else {}
        assert isinstance(parsed, dict)
        return parsed

    def table(self, path: str) -> list[dict[str, Any]]:
        """A LIST as the server-side table ``kubectl get`` prints (the printer columns only, so a
        list of thousands of objects stays small): one ``{column name: cell}`` per object."""
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
        status, raw = self._request("GET", path, accept=accept, timeout=60.0)
        if status != 200:
            raise ControlPlaneError(f"GET {path} (table): HTTP {status}: {raw.decode(errors='replace')}")
        table = json.loads(raw)
        names = [c["name"] for c in table.get("columnDefinitions", [])]
        return [dict(zip(names, row.get("cells", []), strict=False)) for row in table.get("rows", [])]

    def request_as(
        self, user: str, group: str | None, method: str, path: str, body: object = None
    ) -> tuple[int, dict[str, Any]]:
        """One request as ``user`` in ``group`` (admin impersonation: the API server authenticates the
        admin, then authorizes and admits the request as that user); returns (status, body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        req.add_header("Impersonate-User", user)
        if group is not None:
            req.add_header("Impersonate-Group", group)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=10) as resp:
                raw, status = resp.read(), int(resp.status)
        except urllib.error.HTTPError as e:
            raw, status = e.read(), int(e.code)
        parsed = json.loads(raw) if raw else {}
        return status, parsed if isinstance(parsed, dict) else {}

    def create_namespace(self, name: str) -> None:
        self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )

    def apply_crds(self, paths: Sequence[Path], timeout: float = 30.0) -> list[str]:
        """Create every CRD in the YAML files (replacing none) and wait until each is Established."""
        names = []
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    self.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc)
                    names.append(str(doc["metadata"]["name"]))
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"CRD {name} not Established after {timeout}s: {conditions}")
                time.sleep(0.05)
        self._wait_discoverable(names, deadline)
        return names

    def _wait_discoverable(self, crd_names: list[str], deadline: float) -> None:
        for name in crd_names:
            crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            for version in (v["name"] for v in crd["spec"]["versions"] if v.get("served")):
                while self._request("GET", f"/apis/{group}/{version}/{plural}")[0] != 200:
                    if time.monotonic() > deadline:
                        raise ControlPlaneError(f"{plural}.{group}/{version} not served")
                    time.sleep(0.05)

    def service_account_kubeconfig(self, namespace: str, name: str, rules: Sequence[Mapping[str, Any]]) -> Path:
        """A ServiceAccount bound to a Role with ``rules``; returns a kubeconfig with its token."""
        meta = {"name": name, "namespace": namespace}
        ns = f"/api/v1/namespaces/{namespace}"
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        self.request("POST", f"{ns}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        self.request(
            "POST",
            f"{rbac}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": list(rules),
            },
        )
        self.request(
            "POST",
            f"{rbac}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
        token = self.request(
            "POST",
            f"{ns}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )["status"]["token"]
        assert self.workdir is not None
        path = self.workdir / f"kubeconfig-{namespace}-{name}"
        self._write_kubeconfig(path, str(token), f"system:serviceaccount:{namespace}:{name}")
        return path

    def _write_kubeconfig(self, path: Path, token: str, user: str) -> None:
        assert self.workdir is not None
        ca = base64.b64encode((self.workdir / "certs" / "apiserver.crt").read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": self.name,
            "clusters": [{"name": self.name, "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
