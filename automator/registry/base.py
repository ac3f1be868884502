"""What the rest of automator needs from a registry: a small Protocol and its values.

No httpx here: the scanner and tests depend on this module only; the httpx adapter
lives in :mod:`automator.registry.client`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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
