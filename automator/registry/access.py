"""Registry wiring: from the user's flags and the policies to registry clients.

Which credentials a policy lists with (a named pull secret, then the shared docker config),
which hosts are plain HTTP, which CA to trust: decided here once per cycle, so the scan stage
only ever sees a :class:`Registry`. All clients of one cycle share its deadlines and its memory
of registries that stopped answering (:class:`automator.registry.Cycle`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from automator.errors import AutomatorError, CredentialError
from automator.policy.model import Policy
from automator.refs import ImageRef
from automator.registry.base import ManifestInfo, TagListing
from automator.registry.client import RegistryClient
from automator.registry.config import RegistryConfig, RegistrySettings
from automator.registry.credentials import ChainCredentials, DockerConfigCredentials


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach registries: the user's flags/env, independent of any one policy."""

    docker_config: Path | None = None  # config.json or a dockerconfigjson Secret manifest
    credentials_dir: Path | None = None  # <dir>/<name>/.dockerconfigjson per named credential
    insecure_hosts: tuple[str, ...] = ()
    ca_file: str | None = None
    base: RegistryConfig = field(default_factory=RegistryConfig)


def load_docker_config(path: Path) -> DockerConfigCredentials:
    """A Docker ``config.json``, or a ``kubernetes.io/dockerconfigjson`` Secret manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"cannot read docker config {path}: {exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") != "Secret":
        return DockerConfigCredentials(doc, source=str(path))
    if doc is not None and not isinstance(doc, dict):
        raise CredentialError(f"{path}: not a Docker config.json (an object with 'auths') nor a pull Secret")
    return DockerConfigCredentials.from_kubernetes_secret(path)


def _named_credentials(directory: Path, name: str) -> DockerConfigCredentials:
    for candidate in (directory / name / ".dockerconfigjson", directory / name / "config.json"):
        if candidate.is_file():
            return DockerConfigCredentials.from_file(candidate)
    for candidate in (directory / f"{name}.yaml", directory / f"{name}.json"):
        if candidate.is_file():
            return load_docker_config(candidate)
    raise CredentialError(
        f"credentials {name!r} not found in {directory} (mount the pull secret at {directory / name}/)"
    )


def _load_named(
    policies: Iterable[Policy], access: RegistryAccess
) -> tuple[dict[str, DockerConfigCredentials], dict[str, AutomatorError]]:
    """Each credentials name the policies use, loaded once; failures per policy."""
    loaded: dict[str, DockerConfigCredentials | AutomatorError] = {}
    failed: dict[str, AutomatorError] = {}
    for policy in policies:
        name = policy.credentials
        if name is None:
            continue
        if name not in loaded:
            if access.credentials_dir is None:
                loaded[name] = CredentialError(
                    f"{policy.source}: policy {policy.name} names credentials {name!r}; "
                    "give --credentials-dir where that pull secret is mounted"
                )
            else:
                try:
                    loaded[name] = _named_credentials(access.credentials_dir, name)
                except AutomatorError as exc:
                    loaded[name] = exc
        found = loaded[name]
        if isinstance(found, AutomatorError):
            failed[policy.name] = found
    return {k: v for k, v in loaded.items() if isinstance(v, DockerConfigCredentials)}, failed


class RoutedRegistry:
    """One registry client per credentials name, chosen by repository.

    A policy that names credentials (a pull secret, Flux ``secretRef``) is listed with those,
    then the shared docker config; a policy that names none never borrows another's secret.
    """

    def __init__(self, default: RegistryClient, routes: Mapping[str, RegistryClient]) -> None:
        self.default = default
        self.routes = dict(routes)

    def _for(self, image: ImageRef) -> RegistryClient:
        return self.routes.get(image.repository, self.default)

    async def list_tags(self, image: ImageRef) -> TagListing:
        return await self._for(image).list_tags(image)

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        return await self._for(image).manifest(image, reference)

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        return await self._for(image).created(image, reference, platform)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in {id(c): c for c in [self.default, *self.routes.values()]}.values())

    async def __aenter__(self) -> RoutedRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in {id(c): c for c in [self.default, *self.routes.values()]}.values():
            await client.aclose()


def open_registry(
    policies: Iterable[Policy], access: RegistryAccess
) -> tuple[RoutedRegistry, dict[str, AutomatorError]]:
    """Registry clients for ``policies``: plain HTTP only for hosts marked insecure."""
    policies = list(policies)
    base = access.base if access.ca_file is None else replace(access.base, ca_file=access.ca_file)
    insecure = {host.lower() for host in access.insecure_hosts}
    insecure.update(p.image.domain.lower() for p in policies if p.insecure)
    settings = RegistrySettings(default=base, registries={h: replace(base, insecure=True) for h in insecure})
    shared = load_docker_config(access.docker_config) if access.docker_config else DockerConfigCredentials.default()
    named, failed = _load_named(policies, access)
    default = RegistryClient(settings, shared)
    # one cycle for every client: a registry found dead is not waited on again by any of them
    clients = {
        name: RegistryClient(settings, ChainCredentials(creds, shared), cycle=default.cycle)
        for name, creds in named.items()
    }
    routes = {p.image.repository: clients[p.credentials] for p in policies if p.credentials in clients}
    return RoutedRegistry(default, routes), failed
