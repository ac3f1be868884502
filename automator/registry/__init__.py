"""registry stage: list tags, resolve digests and build times from container registries.

:class:`RegistryClient` (httpx) implements the :class:`Registry` Protocol from
:mod:`automator.registry.base`; the rest of automator depends on the Protocol only.
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

__all__ = [
    "ChainCredentials",
    "Credential",
    "CredentialProvider",
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
