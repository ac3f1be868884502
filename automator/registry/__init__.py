"""registry stage: list tags, resolve digests and build times from container registries.

:class:`RegistryClient` (httpx) implements the :class:`Registry` Protocol from
:mod:`automator.registry.base`; the rest of automator depends on the Protocol only::

    settings = RegistrySettings(registries={"localhost:5000": RegistryConfig(insecure=True)})
    credentials = ChainCredentials(
        DockerConfigCredentials.from_kubernetes_secret(secret_manifest),  # a pull secret
        DockerConfigCredentials.default(),                                 # ~/.docker/config.json
    )
    async with RegistryClient(settings, credentials) as registry:
        listing = await registry.list_tags(parse_reference("localhost:5000/team/app"))
        info = await registry.manifest(listing.image, "1.2.3")          # digest, media type
        built = await registry.created(listing.image, "1.2.3", "linux/arm64")
"""

from automator.registry.base import ManifestInfo, Registry, TagListing
from automator.registry.client import RegistryClient
from automator.registry.config import RegistryConfig, RegistrySettings, RetryPolicy, Timeouts
from automator.registry.credentials import (
    ChainCredentials,
    Credential,
    CredentialProvider,
    DockerConfigCredentials,
    StaticCredentials,
)
from automator.registry.cycle import Cycle

__all__ = [
    "ChainCredentials",
    "Credential",
    "CredentialProvider",
    "Cycle",
    "DockerConfigCredentials",
    "ManifestInfo",
    "Registry",
    "RegistryClient",
    "RegistryConfig",
    "RegistrySettings",
    "RetryPolicy",
    "StaticCredentials",
    "TagListing",
    "Timeouts",
]
