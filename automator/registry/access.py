"""Registry wiring: from the user's flags and the policies to registry clients.

Which credentials a policy lists with (a named pull secret, its cloud's credential helper, then
the shared docker config), which hosts are plain HTTP, which CA to trust and which client
certificate to present, how long one repository's scan may take: decided here once per cycle,
so the scan stage only ever sees a :class:`Registry`. All clients of one cycle share its
deadlines and its memory of registries that stopped answering (:class:`automator.registry.Cycle`).

The Flux ImageRepository fields that reach the registry, each for that policy's repository only:

* ``secretRef`` (``Policy.credentials``): a pull secret mounted under ``--credentials-dir``;
* ``provider`` (aws, azure, gcp): the docker credential helper that cloud documents for docker
  (:data:`PROVIDER_HELPERS`), run by :mod:`automator.registry.credentials` as for a docker config
  ``credHelpers`` entry; Flux logs in with the cloud SDKs built in, automator delegates;
* ``certSecretRef``: a TLS Secret mounted under ``--credentials-dir`` (``ca.crt``, ``tls.crt``,
  ``tls.key``, or Flux's older ``caFile``, ``certFile``, ``keyFile``);
* ``timeout``: the bound of the repository's scan in the cycle (:class:`RoutedRegistry`);
* ``serviceAccountName``: refused -- reading a service account's imagePullSecrets needs cluster
  access automator does not have.

A field that cannot be honoured fails that policy's scan (the ``failed`` map of
:func:`open_registry`), with the policy's file:line, the field and what to do; the others go on.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from automator.errors import AutomatorError, ConfigError, CredentialError, RegistryUnavailable
from automator.policy.model import Policy
from automator.refs import ImageRef
from automator.registry.base import ManifestInfo, TagListing
from automator.registry.client import RegistryClient
from automator.registry.config import RegistryConfig, RegistrySettings
from automator.registry.credentials import ChainCredentials, CredentialProvider, DockerConfigCredentials
from automator.registry.cycle import Cycle

T = TypeVar("T")

# Flux ``spec.provider`` -> the docker credential helper (``docker-credential-<name>``) each cloud
# documents for docker, and where to get it
PROVIDER_HELPERS: Mapping[str, str] = {"aws": "ecr-login", "azure": "acr-env", "gcp": "gcr"}
_PROVIDER_SOURCES: Mapping[str, str] = {
    "aws": "amazon-ecr-credential-helper, github.com/awslabs/amazon-ecr-credential-helper (also a Debian package)",
    "azure": "github.com/chrismellard/docker-credential-acr-env or a maintained fork of it",
    "gcp": "github.com/GoogleCloudPlatform/docker-credential-gcr",
}
# Flux's keys of a certSecretRef Secret, each with the older key Flux still reads
TLS_KEYS = (("ca.crt", "caFile"), ("tls.crt", "certFile"), ("tls.key", "keyFile"))


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach registries: the user's flags/env, independent of any one policy."""

    docker_config: Path | None = None  # config.json or a dockerconfigjson Secret manifest
    # <dir>/<name>/.dockerconfigjson per named credential, <dir>/<name>/{ca.crt,tls.crt,tls.key} per certSecretRef
    credentials_dir: Path | None = None
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


def _no_password() -> bytes:
    """An encrypted key fails to load instead of prompting on the terminal."""
    return b""


@dataclass(frozen=True)
class CertSecret:
    """The PEM files of a mounted ``certSecretRef`` Secret: a CA to trust, a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def config(self, base: RegistryConfig) -> RegistryConfig:
        """``base`` trusting this CA (instead of ``base.ca_file``) and presenting this certificate."""
        return replace(base, ca_file=self.ca_file or base.ca_file, client_cert=self.cert_file, client_key=self.key_file)


def load_cert_secret(directory: Path, name: str) -> CertSecret:
    """The Secret ``name`` mounted at ``directory/name/``, its PEM files checked to load."""
    where = directory / name
    if not where.is_dir():
        raise CredentialError(f"Secret {name!r} not found: mount it at {where}/ (keys ca.crt, tls.crt, tls.key)")

    def pick(key: str, older: str) -> str | None:
        found = next((where / k for k in (key, older) if (where / k).is_file()), None)
        return None if found is None else str(found)

    ca, cert, key = (pick(*keys) for keys in TLS_KEYS)
    if ca is None and cert is None and key is None:
        raise CredentialError(
            f"{where}/ has none of ca.crt, tls.crt and tls.key (nor Flux's older caFile, certFile and keyFile)"
        )
    if (cert is None) != (key is None):
        have, missing = ("tls.crt", "tls.key") if key is None else ("tls.key", "tls.crt")
        raise CredentialError(f"{where}/ has {have} but no {missing}; a client certificate needs both")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(f"{ca} is not a PEM CA certificate ({exc})") from None
    if cert is not None:
        try:
            context.load_cert_chain(cert, key, password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(
                f"{cert} and {key} are not a PEM certificate and its unencrypted PEM private key ({exc})"
            ) from None
    return CertSecret(ca, cert, key)


def _prefix(policy: Policy) -> str:
    return f"{policy.source}: policy {policy.name}"


def _refusal(policy: Policy, access: RegistryAccess, certs: dict[str, CertSecret | str]) -> AutomatorError | None:
    """Why ``policy``'s serviceAccountName, provider or certSecretRef cannot work here, if it cannot."""
    if policy.service_account is not None:
        if policy.provider != "generic":
            return ConfigError(
                f"{_prefix(policy)}: spec.serviceAccountName {policy.service_account!r} asks Flux to log in "
                f"to {policy.provider} as that service account's cloud identity, which needs cluster access "
                "automator does not have; remove it: the cloud's credential helper logs in as the identity "
                "automator runs with (or mount a pull secret under --credentials-dir and name it in "
                "spec.secretRef, with spec.provider: generic)"
            )
        return ConfigError(
            f"{_prefix(policy)}: spec.serviceAccountName {policy.service_account!r} asks for that service "
            "account's imagePullSecrets, but automator has no cluster access to read them; mount the pull "
            "secret under --credentials-dir (as <dir>/<secret>/.dockerconfigjson) and name it in "
            "spec.secretRef instead"
        )
    helper = PROVIDER_HELPERS.get(policy.provider)
    if helper is not None and shutil.which(f"docker-credential-{helper}") is None:
        binary = f"docker-credential-{helper}"
        return CredentialError(
            f"{_prefix(policy)}: spec.provider is {policy.provider!r}, which automator serves through that "
            f"cloud's docker credential helper, but {binary} is not on PATH; install it where automator runs "
            f"({_PROVIDER_SOURCES[policy.provider]}), or set spec.provider: generic and name a pull secret "
            "in spec.secretRef"
        )
    name = policy.cert_secret
    if name is None:
        return None
    if access.credentials_dir is None:
        return CredentialError(
            f"{_prefix(policy)}: spec.certSecretRef names Secret {name!r}; give --credentials-dir where that "
            f"Secret is mounted (as <dir>/{name}/ca.crt, tls.crt, tls.key)"
        )
    if name not in certs:
        try:
            certs[name] = load_cert_secret(access.credentials_dir, name)
        except CredentialError as exc:
            certs[name] = str(exc)
    found = certs[name]
    if isinstance(found, str):
        return CredentialError(f"{_prefix(policy)}: spec.certSecretRef {name!r}: {found}")
    return None


_Key = tuple[str | None, str | None, str | None]  # credentials name, provider, certSecretRef


def _key(policy: Policy) -> _Key:
    return policy.credentials, None if policy.provider == "generic" else policy.provider, policy.cert_secret


def _differences(a: Policy, b: Policy) -> str:
    credentials = "spec.credentials" if a.origin == "native" else "spec.secretRef"
    names = (credentials, "spec.provider", "spec.certSecretRef")
    return ", ".join(n for n, x, y in zip(names, _key(a), _key(b), strict=True) if x != y)


def _conflicts(policies: Iterable[Policy]) -> dict[str, AutomatorError]:
    """Policies of one repository that reach it differently: it is listed once, so all of them fail."""
    by_repo: dict[str, list[Policy]] = {}
    for policy in policies:
        by_repo.setdefault(policy.image.repository, []).append(policy)
    failed: dict[str, AutomatorError] = {}
    for repository, same in by_repo.items():
        for policy in same:
            others = [o for o in same if _key(o) != _key(policy)]
            if others:
                named = "; ".join(f"{o.name} ({o.source}) differs in {_differences(policy, o)}" for o in others)
                failed[policy.name] = ConfigError(
                    f"{_prefix(policy)}: repository {repository} is also scanned by {named}; a repository is "
                    "listed once per cycle with one login and one TLS setting, so make those fields the same "
                    "for every policy of it"
                )
    return failed


@dataclass(frozen=True)
class _Bound:
    """A repository's ``spec.timeout``, and the policy that set it (the smallest, if several did)."""

    seconds: float
    policy: Policy


class RoutedRegistry:
    """One registry client per way of reaching a repository, chosen by repository.

    A policy that names credentials (a pull secret, Flux ``secretRef``), a cloud ``provider`` or a
    ``certSecretRef`` is scanned with a client of its own for those; a policy that names none
    never borrows another's. ``bounds`` holds each repository's ``spec.timeout``: measured on the
    cycle's clock from the repository's first request, it bounds every request for the
    repository (its listing, manifests, build times); once it passes, requests in flight are cut
    off and later ones fail at once, with :class:`RegistryUnavailable` (the next cycle tries again).
    """

    def __init__(
        self,
        default: RegistryClient,
        routes: Mapping[str, RegistryClient],
        bounds: Mapping[str, _Bound] | None = None,
    ) -> None:
        self.default = default
        self.routes = dict(routes)
        self._bounds = dict(bounds or {})
        self._started: dict[str, float] = {}

    def _for(self, image: ImageRef) -> RegistryClient:
        return self.routes.get(image.repository, self.default)

    async def _bounded(self, image: ImageRef, action: str, call: Callable[[], Awaitable[T]]) -> T:
        bound = self._bounds.get(image.repository)
        if bound is None:
            return await call()
        now = self.default.cycle.clock()
        left = self._started.setdefault(image.repository, now) + bound.seconds - now
        timeout = f"spec.timeout of {bound.seconds:g}s"
        advice = "the next cycle tries again; raise spec.timeout if the registry needs longer"
        if left <= 0:
            raise RegistryUnavailable(
                f"{_prefix(bound.policy)}: repository {image.repository}: {action} not sent, the scan of the "
                f"repository has used up its {timeout}; {advice}"
            )
        deadline = asyncio.timeout(left)
        try:
            async with deadline:
                return await call()
        except TimeoutError:
            if not deadline.expired():
                raise
            raise RegistryUnavailable(
                f"{_prefix(bound.policy)}: repository {image.repository}: {action} cut off, the scan of the "
                f"repository did not finish within its {timeout}; {advice}"
            ) from None

    async def list_tags(self, image: ImageRef) -> TagListing:
        return await self._bounded(image, "list tags", lambda: self._for(image).list_tags(image))

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        return await self._bounded(image, f"manifest {reference}", lambda: self._for(image).manifest(image, reference))

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        return await self._bounded(
            image, f"build time of {reference}", lambda: self._for(image).created(image, reference, platform)
        )

    async def fetch_manifest(self, image: ImageRef, reference: str) -> tuple[ManifestInfo, bytes] | None:
        return await self._bounded(
            image, f"manifest {reference}", lambda: self._for(image).fetch_manifest(image, reference)
        )

    async def fetch_blob(self, image: ImageRef, digest: str, limit: int) -> bytes:
        return await self._bounded(image, f"blob {digest}", lambda: self._for(image).fetch_blob(image, digest, limit))

    async def referrers(self, image: ImageRef, digest: str) -> bytes | None:
        return await self._bounded(image, f"referrers of {digest}", lambda: self._for(image).referrers(image, digest))

    @property
    def requests(self) -> int:
        return sum(c.requests for c in {id(c): c for c in [self.default, *self.routes.values()]}.values())

    async def __aenter__(self) -> RoutedRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in {id(c): c for c in [self.default, *self.routes.values()]}.values():
            await client.aclose()


def open_registry(
    policies: Iterable[Policy], access: RegistryAccess, *, cycle: Cycle | None = None
) -> tuple[RoutedRegistry, dict[str, AutomatorError]]:
    """Registry clients for ``policies``, and why some of them cannot be scanned, by policy name.

    Plain HTTP only for hosts marked insecure. ``cycle`` (a fresh one by default) is shared by
    every client, and its clock measures each repository's ``spec.timeout``.
    """
    active = [p for p in policies if not p.suspend]
    base = access.base if access.ca_file is None else replace(access.base, ca_file=access.ca_file)
    insecure = {host.lower() for host in access.insecure_hosts}
    insecure.update(p.image.domain.lower() for p in active if p.insecure)
    settings = RegistrySettings(default=base, registries={h: replace(base, insecure=True) for h in insecure})
    shared = load_docker_config(access.docker_config) if access.docker_config else DockerConfigCredentials.default()
    named, failed = _load_named(active, access)
    certs: dict[str, CertSecret | str] = {}
    for policy in active:
        problem = None if policy.name in failed else _refusal(policy, access, certs)
        if problem is not None:
            failed[policy.name] = problem
    ok = [p for p in active if p.name not in failed]
    failed.update(_conflicts(ok))
    ok = [p for p in ok if p.name not in failed]

    default = RegistryClient(settings, shared, cycle=cycle)
    hosts: dict[_Key, set[str]] = {}
    for policy in ok:
        if _key(policy) != (None, None, None):
            hosts.setdefault(_key(policy), set()).add(policy.image.api_host)
    # one cycle for every client: a registry found dead is not waited on again by any of them
    clients: dict[_Key, RegistryClient] = {}
    for (credentials, provider, cert), served in hosts.items():
        chain: list[CredentialProvider] = []
        if provider is not None:  # the cloud's helper, for these policies' hosts only; first, as Flux
            helper = PROVIDER_HELPERS[provider]
            source = f"spec.provider {provider} (docker-credential-{helper})"
            chain.append(DockerConfigCredentials({"credHelpers": dict.fromkeys(served, helper)}, source=source))
        if credentials is not None:
            chain.append(named[credentials])
        routed = settings
        found = certs.get(cert) if cert is not None else None
        if isinstance(found, CertSecret):
            for host in served:
                routed = routed.with_host(host, found.config(settings.for_host(host)))
        clients[(credentials, provider, cert)] = RegistryClient(
            routed, ChainCredentials(*chain, shared), cycle=default.cycle
        )
    routes = {p.image.repository: clients[_key(p)] for p in ok if _key(p) in clients}
    bounds: dict[str, _Bound] = {}
    for policy in ok:
        have = bounds.get(policy.image.repository)
        if policy.timeout_seconds is not None and (have is None or policy.timeout_seconds < have.seconds):
            bounds[policy.image.repository] = _Bound(policy.timeout_seconds, policy)
    return RoutedRegistry(default, routes, bounds), failed
