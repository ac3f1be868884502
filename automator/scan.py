"""Scan: for every policy, list its repository's tags and choose the best one.

The one orchestrator between the registry edge and the pure choice functions.  A
repository shared by several policies is listed once; build times are fetched only
for the filtered candidates of ``newestBuild`` policies; digests only where a policy
tracks them.  A policy that fails never stops the others: its result carries the error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from automator.errors import AutomatorError, ChoiceError, CredentialError
from automator.policy import candidates, choose
from automator.policy.model import NewestBuildChoice, Policy, TagChoice
from automator.refs import ImageRef
from automator.registry import (
    ChainCredentials,
    DockerConfigCredentials,
    RegistryClient,
    RegistryConfig,
    RegistrySettings,
)
from automator.registry.base import ManifestInfo, Registry, TagListing

Progress = Callable[["ScanResult"], None]
OFF_LOOP_TAGS = 5_000  # a listing longer than this is chosen from in a worker thread


@dataclass(frozen=True)
class ScanResult:
    """What scanning one policy found: a choice, or the error that prevented one."""

    policy: Policy
    choice: TagChoice | None = None
    error: AutomatorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ListingCache:
    """Lists each repository once per scan, however many policies share it.

    The first policy lists in its own task; later ones for the same repository wait on a
    future the first fills (no extra task per policy: a scan of 1,000 repositories is CPU
    bound in the client, and tasks are not free).
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._listed: dict[str, asyncio.Future[TagListing]] = {}

    async def get(self, policy: Policy) -> TagListing:
        key = policy.image.repository
        pending = self._listed.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        done: asyncio.Future[TagListing] = asyncio.get_running_loop().create_future()
        self._listed[key] = done
        try:
            listing = await self._registry.list_tags(policy.image)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                done.cancel()
            else:
                done.set_exception(exc)
                done.exception()  # retrieved: waiters re-raise it; nobody waiting is not an error
            raise
        done.set_result(listing)
        return listing


async def _build_times(registry: Registry, policy: Policy, tags: Iterable[str]) -> dict[str, datetime]:
    async def one(tag: str) -> tuple[str, datetime | None]:
        return tag, await registry.created(policy.image, tag, policy.platform)

    pairs = await asyncio.gather(*(one(tag) for tag in tags))
    return {tag: when for tag, when in pairs if when is not None}


async def scan_policy(
    registry: Registry,
    policy: Policy,
    current: str | None = None,
    *,
    listings: ListingCache | None = None,
) -> ScanResult:
    """List, filter and choose for one policy; resolve the digest when the policy tracks it."""
    try:
        listing = await (listings or ListingCache(registry)).get(policy)
        created: Mapping[str, datetime] | None = None
        if isinstance(policy.choice, NewestBuildChoice):
            created = await _build_times(registry, policy, candidates(policy, listing.tags))
        if len(listing.tags) > OFF_LOOP_TAGS:  # milliseconds of CPU: not on the loop other scans share
            choice = await asyncio.to_thread(choose, policy, listing.tags, current, created)
        else:
            choice = choose(policy, listing.tags, current, created)
        if choice.tag is not None and policy.tracks_digest:
            info = await registry.manifest(policy.image, choice.tag)
            choice = replace(choice, digest=info.digest)
        return ScanResult(policy, choice)
    except AutomatorError as exc:
        return ScanResult(policy, error=exc)
    except ValueError as exc:  # a choice function refusing its data is a bug report, not a crash
        return ScanResult(policy, error=ChoiceError(f"policy {policy.name}: {exc}"))


async def scan_all(
    registry: Registry,
    policies: Iterable[Policy],
    *,
    current: Mapping[str, str] | None = None,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    listings: ListingCache | None = None,
) -> tuple[ScanResult, ...]:
    """Scan every non-suspended policy concurrently; results keep the input order.

    Concurrency and rate limits are the registry client's business (per host), so
    this schedules everything at once and lets the client pace the requests.
    """
    listings = listings or ListingCache(registry)
    current = current or {}

    failed = failed or {}

    async def one(policy: Policy) -> ScanResult:
        if policy.name in failed:
            result = ScanResult(policy, error=failed[policy.name])
        else:
            result = await scan_policy(registry, policy, current.get(policy.name), listings=listings)
        if progress is not None:
            progress(result)
        return result

    active = [p for p in policies if not p.suspend]
    return tuple(await asyncio.gather(*(one(p) for p in active)))


# --------------------------------------------------------------------------- registry access


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


class RegistryMemo:
    """Registry answers kept across cycles, per repository, until the repository is invalidated.

    The automator's service lists every repository on its schedule (:meth:`clear` first) and,
    between those, runs a cycle for a webhook after invalidating only the repositories the
    webhook named, so one push costs one listing, not one per policy in the repo. Failures
    are never kept. Plain dicts: each cycle runs its own event loop.
    """

    def __init__(self) -> None:
        self._tags: dict[str, TagListing] = {}
        self._manifests: dict[tuple[str, str], ManifestInfo] = {}
        self._created: dict[tuple[str, str, str], datetime | None] = {}
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._tags.clear()
        self._manifests.clear()
        self._created.clear()

    def invalidate(self, repositories: Iterable[str]) -> None:
        gone = set(repositories)
        for repo in gone:
            self._tags.pop(repo, None)
        self._manifests = {k: v for k, v in self._manifests.items() if k[0] not in gone}
        self._created = {k: v for k, v in self._created.items() if k[0] not in gone}

    def listing(self, repository: str) -> TagListing | None:
        return self._tags.get(repository)

    def wrap(self, registry: Registry) -> MemoRegistry:
        return MemoRegistry(registry, self)


class MemoRegistry:
    """A :class:`Registry` answering from a :class:`RegistryMemo` first."""

    def __init__(self, inner: Registry, memo: RegistryMemo) -> None:
        self.inner = inner
        self.memo = memo

    async def list_tags(self, image: ImageRef) -> TagListing:
        memo = self.memo
        hit = memo._tags.get(image.repository)
        if hit is not None:
            memo.hits += 1
            return hit
        memo.misses += 1
        memo._tags[image.repository] = listing = await self.inner.list_tags(image)
        return listing

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        key = (image.repository, reference)
        hit = self.memo._manifests.get(key)
        if hit is None:
            self.memo._manifests[key] = hit = await self.inner.manifest(image, reference)
        return hit

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        key = (image.repository, reference, platform)
        if key not in self.memo._created:
            self.memo._created[key] = await self.inner.created(image, reference, platform)
        return self.memo._created[key]


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
