"""What the rest of automator needs from a registry: a small Protocol and its values.

No httpx here: the scanner and tests depend on this module only; the httpx adapter
lives in :mod:`automator.registry.client`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from automator.refs import ImageRef


@dataclass(frozen=True)
class TagListing:
    """Every tag of one repository, in the order the registry gave them (complete or an error)."""

    image: ImageRef
    tags: tuple[str, ...]
    pages: int = 1


@dataclass(frozen=True)
class ManifestInfo:
    """The manifest behind a tag: its digest and media type."""

    digest: str
    media_type: str
    size: int | None = None


class Registry(Protocol):
    """A container registry as automator uses it."""

    async def list_tags(self, image: ImageRef) -> TagListing:
        """All tags of ``image``'s repository; raises a RegistryError on any failure."""
        ...

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        """HEAD (or GET) the manifest for a tag or digest."""
        ...

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        """The image config's ``created`` time for ``platform`` (index resolved), or None."""
        ...


@runtime_checkable
class ArtifactRegistry(Protocol):
    """What signature verification reads besides tags: manifests and blobs by reference, referrers."""

    async def fetch_manifest(self, image: ImageRef, reference: str) -> tuple[ManifestInfo, bytes] | None:
        """The manifest's info and exact bytes (checked against a digest reference); None on 404."""
        ...

    async def fetch_blob(self, image: ImageRef, digest: str, limit: int) -> bytes:
        """A blob of at most ``limit`` bytes, checked against its digest."""
        ...

    async def referrers(self, image: ImageRef, digest: str) -> bytes | None:
        """The OCI 1.1 referrers index of ``digest``; None when the registry has no referrers API."""
        ...
