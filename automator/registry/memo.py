"""Registry answers kept across the cycles of a long-running service.

The automator's service lists every repository on its schedule and, between those, runs a
cycle for a webhook after invalidating only the repositories the webhook named, so one push
costs one listing, not one per policy. :class:`MemoRegistry` is a :class:`Registry` that asks
the memo first; the memo alone decides what is kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from automator.errors import RegistryResponseError
from automator.refs import ImageRef
from automator.registry.base import ArtifactRegistry, ManifestInfo, Registry, TagListing


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

    async def tags(self, image: ImageRef, fetch: Callable[[], Awaitable[TagListing]]) -> TagListing:
        """The kept listing of ``image``'s repository, or ``fetch()``'s, kept (failures are not)."""
        hit = self._tags.get(image.repository)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        self._tags[image.repository] = listing = await fetch()
        return listing

    async def manifest(
        self, image: ImageRef, reference: str, fetch: Callable[[], Awaitable[ManifestInfo]]
    ) -> ManifestInfo:
        key = (image.repository, reference)
        hit = self._manifests.get(key)
        if hit is None:
            self._manifests[key] = hit = await fetch()
        return hit

    async def created(
        self, image: ImageRef, reference: str, platform: str, fetch: Callable[[], Awaitable[datetime | None]]
    ) -> datetime | None:
        key = (image.repository, reference, platform)
        if key not in self._created:
            self._created[key] = await fetch()
        return self._created[key]

    def wrap(self, registry: Registry) -> MemoRegistry:
        return MemoRegistry(registry, self)


class MemoRegistry:
    """A :class:`Registry` answering from a :class:`RegistryMemo` first."""

    def __init__(self, inner: Registry, memo: RegistryMemo) -> None:
        self.inner = inner
        self.memo = memo

    async def list_tags(self, image: ImageRef) -> TagListing:
        return await self.memo.tags(image, lambda: self.inner.list_tags(image))

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        return await self.memo.manifest(image, reference, lambda: self.inner.manifest(image, reference))

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        return await self.memo.created(
            image, reference, platform, lambda: self.inner.created(image, reference, platform)
        )

    def _artifacts(self) -> ArtifactRegistry:
        if not isinstance(self.inner, ArtifactRegistry):
            raise RegistryResponseError("this registry client cannot read signatures (manifests, blobs, referrers)")
        return self.inner

    # signatures are not memoised here: the verifier keeps its verdicts by digest
    async def fetch_manifest(self, image: ImageRef, reference: str) -> tuple[ManifestInfo, bytes] | None:
        return await self._artifacts().fetch_manifest(image, reference)

    async def fetch_blob(self, image: ImageRef, digest: str, limit: int) -> bytes:
        return await self._artifacts().fetch_blob(image, digest, limit)

    async def referrers(self, image: ImageRef, digest: str) -> bytes | None:
        return await self._artifacts().referrers(image, digest)
