"""A thin, typed wrapper over the official ``kubernetes`` client for custom objects.

Owns: building an API client (kubeconfig file or in-cluster), get/list/create/delete and
JSON-patch / merge-patch of custom objects and their ``status`` subresource, and the translation
of every ``ApiException`` (and transport failure) into ``rollout.errors`` (``KubeNotFound``,
``KubeForbidden``, ``KubeConflict``, ``KubeInvalid``, ``KubeError``) with a message that names the
verb and the resource. It makes exactly one attempt per call (retries live in
``rollout.runtime.retrying``) and knows nothing about routers, policies or rollouts.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from rollout.errors import KubeConflict, KubeError, KubeForbidden, KubeInvalid, KubeNotFound
from rollout.kube.resources import Resource

T = TypeVar("T")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
_TIMEOUT = 10.0
_KUBECONFIG_MAX_BYTES = 16 << 20


def _one_line(error: Exception) -> str:
    """An exception as one short line: its first non-empty line (and its type when that says little)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"not valid YAML: {error.problem} at line {mark.line + 1}, column {mark.column + 1}"[:300]
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not text or isinstance(error, TypeError | AttributeError | KeyError | IndexError):
        text = f"malformed ({type(error).__name__}{': ' + text if text else ''})"
    return text[:300]


def _server_message(exc: ApiException) -> str:
    body: object = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "").strip() or f"HTTP {exc.status}"


def translate(exc: Exception, verb: str, what: str) -> KubeError:
    """Map a client exception to the ``KubeError`` subtype, naming ``verb`` and ``what``."""
    if not isinstance(exc, ApiException):
        return KubeError(f"cannot {verb} {what}: the API server is unreachable ({exc})")
    message = _server_message(exc)
    status = exc.status
    if status == 404:
        return KubeNotFound(f"cannot {verb} {what}: not found ({message})")
    if status == 403:
        return KubeForbidden(f"forbidden to {verb} {what}: {message}")
    if status == 401:
        return KubeForbidden(f"cannot {verb} {what}: not authenticated ({message})")
    if status == 409:
        return KubeConflict(f"conflict on {verb} {what}: {message}")
    if status in (400, 422):
        return KubeInvalid(f"the API server rejected {verb} {what}: {message}")
    return KubeError(f"cannot {verb} {what}: HTTP {status}: {message}")


class KubeClient:
    """Custom-object access through one ``kubernetes.client.ApiClient``; one attempt per call."""

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = _TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.custom_api = k8s.CustomObjectsApi(api_client)

    @classmethod
    def from_kubeconfig(cls, path: str, *, context: str | None = None, pool_size: int | None = None) -> KubeClient:
        """Build from a kubeconfig file (``context`` defaults to its current context; ``pool_size``:
        connections kept open for reuse, default the library's 5 per CPU; a daemon with more
        threads talking at once needs more, or each extra request pays a new TLS handshake).

        Any way the file can be wrong (missing, not a regular file, too large, not YAML, the wrong
        shape, bad base64...) is one ``KubeError`` line naming the file; nothing else escapes.
        """
        try:
            info = os.stat(path)
        except OSError as e:
            raise KubeError(f"cannot load kubeconfig {path}: {e.strerror or e}") from e
        if not stat.S_ISREG(info.st_mode):
            raise KubeError(f"cannot load kubeconfig {path}: not a regular file")
        if info.st_size > _KUBECONFIG_MAX_BYTES:
            raise KubeError(f"cannot load kubeconfig {path}: {info.st_size} bytes, more than {_KUBECONFIG_MAX_BYTES}")
        try:
            api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]  # kubernetes.config has no annotations
                config_file=path, context=context, client_configuration=_configuration(pool_size)
            )
        except Exception as e:  # the loader raises whatever the malformed file provokes
            raise KubeError(f"cannot load kubeconfig {path}: {_one_line(e)}") from e
        return cls(api)

    @classmethod
    def in_cluster(cls, *, pool_size: int | None = None) -> KubeClient:
        """Build from the pod's service-account token and the cluster's environment (``pool_size``:
        as for ``from_kubeconfig``)."""
        configuration = _configuration(pool_size)
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]  # kubernetes.config has no annotations
                client_configuration=configuration
            )
        except k8s_config.ConfigException as e:
            raise KubeError(f"not running in a cluster: {e}") from e
        return cls(k8s.ApiClient(configuration))

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]  # kubernetes.client has no annotations

    def call(self, verb: str, what: str, fn: Callable[[], T]) -> T:
        """Run one API call, translating its failure into a ``KubeError`` naming verb and object."""
        try:
            return fn()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
            raise translate(e, verb, what) from e

    # --- custom objects ---------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str, *, subresource: str = "") -> dict[str, Any]:
        what = _what(resource, namespace, name, subresource)
        getter = (
            self.custom_api.get_namespaced_custom_object_status
            if subresource == "status"
            else self.custom_api.get_namespaced_custom_object
        )
        return _as_dict(
            self.call(
                "get",
                what,
                lambda: getter(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    name,
                    _request_timeout=self.timeout,
                ),
            )
        )

    def list(
        self, resource: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """List objects in ``namespace``, or in every namespace when it is ``None``."""
        kwargs: dict[str, Any] = {"_request_timeout": self.timeout}
        if label_selector:
            kwargs["label_selector"] = label_selector
        if namespace is None:
            result = self.call(
                "list",
                f"{resource.name} (all namespaces)",
                lambda: self.custom_api.list_custom_object_for_all_namespaces(
                    resource.group, resource.version, resource.plural, **kwargs
                ),
            )
        else:
            result = self.call(
                "list",
                f"{resource.name} in namespace {namespace}",
                lambda: self.custom_api.list_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, **kwargs
                ),
            )
        return [dict(item) for item in _as_dict(result).get("items", [])]

    def create(self, resource: Resource, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("metadata", {}).get("name", "?"))
        return _as_dict(
            self.call(
                "create",
                _what(resource, namespace, name),
                lambda: self.custom_api.create_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    dict(body),
                    _request_timeout=self.timeout,
                ),
            )
        )

    def delete(self, resource: Resource, namespace: str, name: str, *, resource_version: str | None = None) -> None:
        """Delete an object; with ``resource_version``, only that version of it (else ``KubeConflict``)."""
        options = (
            k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(resource_version=resource_version))
            if resource_version
            else None
        )
        self.call(
            "delete",
            _what(resource, namespace, name),
            lambda: self.custom_api.delete_namespaced_custom_object(
                resource.group,
                resource.version,
                namespace,
                resource.plural,
                name,
                body=options,
                _request_timeout=self.timeout,
            ),
        )

    def json_patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        ops: Sequence[Mapping[str, Any]],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Apply an RFC 6902 JSON patch (sent as ``application/json-patch+json``).

        A failed ``test`` op raises ``KubeConflict``; ``dry_run`` asks the server to validate,
        default and prune without storing anything, and returns the object it would store.
        """
        body = [dict(op) for op in ops]
        try:
            return self._patch(
                resource,
                namespace,
                name,
                body,
                content_type=JSON_PATCH,
                subresource=subresource,
                dry_run=dry_run,
            )
        except KubeInvalid as e:
            # The API server answers a failed `test` op with a bare 422 "Invalid" that names
            # nothing; tell a lost race from a bad object by checking the tests against a fresh read.
            tests = [op for op in body if op.get("op") == "test"]
            if not tests:
                raise
            current = self.get(resource, namespace, name, subresource=subresource)
            failed = next((op for op in tests if not _holds(current, op)), None)
            if failed is None:
                raise
            raise KubeConflict(
                f"conditional patch of {_what(resource, namespace, name, subresource)} "
                f"lost a race: {failed['path']} no longer has the value read "
                "before the write"
            ) from e

    def merge_patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Apply an RFC 7386 merge patch (``application/merge-patch+json``)."""
        return self._patch(
            resource,
            namespace,
            name,
            dict(patch),
            content_type=MERGE_PATCH,
            subresource=subresource,
            dry_run=dry_run,
        )

    def _patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: Any,
        *,
        content_type: str,
        subresource: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        patcher = (
            self.custom_api.patch_namespaced_custom_object_status
            if subresource == "status"
            else self.custom_api.patch_namespaced_custom_object
        )
        kwargs: dict[str, Any] = {"_content_type": content_type, "_request_timeout": self.timeout}
        if dry_run:
            kwargs["dry_run"] = "All"
        verb = "patch (dry run)" if dry_run else "patch"
        return _as_dict(
            self.call(
                verb,
                _what(resource, namespace, name, subresource),
                lambda: patcher(resource.group, resource.version, namespace, resource.plural, name, body, **kwargs),
            )
        )


def _configuration(pool_size: int | None) -> k8s.Configuration:
    return k8s.Configuration(connection_pool_maxsize=pool_size)


def _holds(doc: Any, test: Mapping[str, Any]) -> bool:
    """Whether an RFC 6902 ``test`` op holds on ``doc``."""
    node = doc
    for raw in str(test["path"]).split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return bool(node == test.get("value"))


def _what(resource: Resource, namespace: str, name: str, subresource: str = "") -> str:
    suffix = f"/{subresource}" if subresource else ""
    return f"{resource.name} {namespace}/{name}{suffix}"


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KubeError(f"unexpected API response of type {type(value).__name__}")
    return value


__all__ = ["JSON_PATCH", "MERGE_PATCH", "KubeClient", "Resource", "translate"]  # Resource: re-exported
