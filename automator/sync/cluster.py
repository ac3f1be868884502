"""The cluster edge: a small ``Cluster`` protocol and its ``kubernetes``-client adapter.

``KubeCluster`` uses the ``kubernetes`` package for what it does well — loading kubeconfig or
in-cluster credentials (with token refresh hooks), TLS and the connection pool — and sends raw
JSON through its ``ApiClient`` instead of the dynamic client. The reasons are measured ones: the
dynamic client discovers every API group up front and materialises whole list responses as
``ResourceInstance`` trees; the synchronizer only needs the group-versions it applies, lists in
pages of 500 and drops ``managedFields`` as each page arrives, which keeps the agent's memory
flat at thousands of objects.

``kubernetes`` is imported when a client is built, not when this module is: its kubeconfig
loader pulls in requests-oauthlib and pydantic (about 0.2 s), and ``automator sync`` overlaps
that start-up with the first git fetch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from automator.errors import ApplyError, ClusterUnavailable, ConfigError, ImmutableFieldError
from automator.sync.model import FIELD_MANAGER, ObjectRef

PAGE = 500


@dataclass(frozen=True)
class Resource:
    """Where a kind lives: its REST plural and whether it is namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name else base


class KubeAPIError(ApplyError):
    """A non-success answer from the API server, with its HTTP status and reason."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Cluster(Protocol):
    """What the synchronizer needs from a cluster; tests and benchmarks use the real one."""

    writes: int

    def resource(self, group: str, version: str, kind: str) -> Resource | None: ...
    def forget(self, group: str, version: str) -> None: ...
    def preferred(self, group: str, kind: str) -> Resource | None: ...
    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list(self, res: Resource, label_selector: str = "", namespace: str = "") -> Iterator[dict[str, Any]]: ...
    def apply(
        self, res: Resource, obj: dict[str, Any], *, force: bool = True, dry_run: bool = False
    ) -> tuple[dict[str, Any], bool]: ...
    def delete(self, res: Resource, namespace: str, name: str) -> bool: ...


def load_api_client(kubeconfig: str | None, context: str | None, pool_size: int) -> Any:
    """An ``ApiClient`` from a kubeconfig file/context, or in-cluster config when neither is given."""
    from kubernetes import client, config  # noqa: PLC0415  (see the module docstring)

    configuration = client.Configuration()
    try:
        if kubeconfig or context:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or "in-cluster config / ~/.kube/config"
        raise ConfigError(f"cannot load cluster credentials from {where}: {exc}; check --kubeconfig/--context") from exc
    configuration.connection_pool_maxsize = max(pool_size, 4)
    return client.ApiClient(configuration)


class KubeCluster:
    """The ``Cluster`` protocol over the ``kubernetes`` client's transport."""

    def __init__(self, api_client: Any, *, timeout: float = 60.0) -> None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        self._api = api_client
        self._transport_errors: tuple[type[Exception], ...] = (ApiException, HTTPError, OSError)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._discovery: dict[tuple[str, str], dict[str, Resource]] = {}
        self.writes = 0
        # --leader-elect: every write asks first, and is refused once this replica lost the Lease
        self.fence: Callable[[], bool] | None = None

    @classmethod
    def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, *, pool_size: int = 8, timeout: float = 60.0
    ) -> KubeCluster:
        return cls(load_api_client(kubeconfig, context, pool_size), timeout=timeout)

    def close(self) -> None:
        self._api.close()

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        decode_success: bool = True,
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON). Transport failures and 429/5xx raise.

        ``decode_success=False`` skips parsing a 2xx body the caller does not need (an applied
        object echoed back): at a thousand applies that is CPU the API server can use instead.
        """
        dry = any(k == "dryRun" for k, _ in query or [])
        if method != "GET" and not dry and self.fence is not None and not self.fence():
            raise ClusterUnavailable(f"{method} {path}: this replica no longer holds the lease; nothing written")
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            # JSON content types are serialised by the client; apply patches are sent as bytes.
            payload = body if content_type.endswith("json") else json.dumps(body, separators=(",", ":")).encode()
        try:
            serialized = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
            )
            resp = self._api.call_api(*serialized, _request_timeout=self._timeout)
            data = resp.read()
        except self._transport_errors as exc:
            raise ClusterUnavailable(f"{method} {path}: cannot reach the API server: {exc}") from exc
        if method != "GET" and not any(k == "dryRun" for k, _ in query or []):
            with self._lock:
                self.writes += 1
        if not decode_success and 200 <= resp.status < 300:
            return int(resp.status), None
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = {"message": data[:500].decode(errors="replace")}
        if resp.status == 429 or resp.status >= 500:
            raise ClusterUnavailable(f"{method} {path}: API server answered {resp.status}: {_message(decoded)}")
        return int(resp.status), decoded

    # -- discovery -------------------------------------------------------------------------

    def resource(self, group: str, version: str, kind: str) -> Resource | None:
        key = (group, version)
        with self._lock:
            known = self._discovery.get(key)
        if known is None:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            status, data = self.request("GET", path)
            known = {}
            if status == 200 and isinstance(data, dict):
                for r in data.get("resources", []):
                    if "/" in r["name"]:
                        continue
                    known[r["kind"]] = Resource(group, version, r["kind"], r["name"], bool(r["namespaced"]))
            elif status != 404:
                raise KubeAPIError(f"discovery of {path} answered {status}: {_message(data)}", status=status)
            if known:
                with self._lock:
                    self._discovery[key] = known
        return known.get(kind)

    def preferred(self, group: str, kind: str) -> Resource | None:
        """``kind`` at its group's preferred version (for inventory entries whose version left)."""
        if not group:
            return self.resource("", "v1", kind)
        status, data = self.request("GET", f"/apis/{group}")
        if status != 200 or not isinstance(data, dict):
            return None
        version = str((data.get("preferredVersion") or {}).get("version", ""))
        return self.resource(group, version, kind) if version else None

    def forget(self, group: str, version: str) -> None:
        with self._lock:
            self._discovery.pop((group, version), None)

    # -- objects ---------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        status, data = self.request("GET", res.path(namespace, name))
        if status == 404:
            return None
        if status != 200:
            raise KubeAPIError(f"get {res.kind} {namespace}/{name}: {_message(data)}", status=status)
        return dict(data)

    def list(self, res: Resource, label_selector: str = "", namespace: str = "") -> Iterator[dict[str, Any]]:
        """Every object of ``res`` (in all namespaces unless given one), paged, ``managedFields`` dropped."""
        cont = ""
        while True:
            query = [("limit", str(PAGE))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if cont:
                query.append(("continue", cont))
            status, data = self.request("GET", res.path(namespace), query=query)
            if status != 200:
                raise KubeAPIError(f"list {res.plural}: {_message(data)}", status=status)
            for item in data.get("items") or []:
                item.get("metadata", {}).pop("managedFields", None)
                item.setdefault("apiVersion", f"{res.group}/{res.version}" if res.group else res.version)
                item.setdefault("kind", res.kind)
                yield item
            cont = (data.get("metadata") or {}).get("continue") or ""
            if not cont:
                return

    def apply(
        self, res: Resource, obj: dict[str, Any], *, force: bool = True, dry_run: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply ``obj``; return (the object as the server answered, whether it was created).

        Only a dry run parses the answer; a real apply returns ``{}`` in its place.
        """
        meta = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        status, data = self.request(
            "PATCH",
            res.path(meta.get("namespace", ""), meta["name"]),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
            decode_success=dry_run,
        )
        if status in (200, 201):
            return dict(data or {}), status == 201
        ref = ObjectRef.of(obj)
        message = _message(data)
        if status == 422 and "immutable" in message:
            raise ImmutableFieldError(
                f"{ref}: {message}; the change needs the object recreated — add the annotation"
                ' sync.automator.io/recreate: "true" to let the synchronizer delete and recreate it'
            )
        if status == 409:
            message += "; another field manager owns these fields (conflicts are forced unless --no-force-conflicts)"
        raise KubeAPIError(f"{ref}: {message}", status=status, reason=str((data or {}).get("reason", "")))

    def delete(self, res: Resource, namespace: str, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        status, data = self.request("DELETE", res.path(namespace, name), body=body)
        if status == 404:
            return False
        if status not in (200, 202):
            raise KubeAPIError(f"delete {res.kind} {namespace}/{name}: {_message(data)}", status=status)
        return True

    def patch_status(self, res: Resource, namespace: str, name: str, status_body: dict[str, Any]) -> None:
        """Merge-patch the status subresource (tests and benchmarks stand in for controllers)."""
        status, data = self.request(
            "PATCH",
            res.path(namespace, name) + "/status",
            body={"status": status_body},
            content_type="application/merge-patch+json",
        )
        if status != 200:
            raise KubeAPIError(f"patch status of {res.kind} {namespace}/{name}: {_message(data)}", status=status)


def _message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or data)
    return str(data)
