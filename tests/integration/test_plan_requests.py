"""One plan asks the registry each thing once: listings, manifests, config blobs (real registry).

The plan used to scan, locate the current tags with a dry rewrite, then scan again: a
``newestBuild`` policy over 20 tags made 40 build-time lookups, a digest policy two manifest
requests. Locate, choose, rewrite now run once each; this counts what reaches the registry.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path

from automator.plan import make_plan
from automator.policy import load_policies
from automator.refs import ImageRef
from automator.registry import RegistryClient, RegistryConfig
from automator.registry.base import ManifestInfo, TagListing
from tests.e2e.test_cli_scan import policy
from tests.servers.registry import RunningRegistry


class Counting:
    """The real client, with every call it is asked to make counted by its arguments."""

    def __init__(self, inner: RegistryClient) -> None:
        self.inner = inner
        self.calls: Counter[tuple[str, ...]] = Counter()

    async def list_tags(self, image: ImageRef) -> TagListing:
        self.calls["list", image.repository] += 1
        return await self.inner.list_tags(image)

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        self.calls["manifest", image.repository, reference] += 1
        return await self.inner.manifest(image, reference)

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        self.calls["created", image.repository, reference] += 1
        return await self.inner.created(image, reference, platform)


def test_a_plan_asks_for_each_listing_manifest_and_build_time_once(registry: RunningRegistry, tmp_path: Path) -> None:
    builds = [f"build-{i:02d}" for i in range(20)]
    for tag in builds:
        registry.push("count/builds", tag)
    registry.push("count/pinned", "stable")
    for tag in ("1.0.0", "1.1.0"):
        registry.push("count/semver", tag)
    newest, pinned, ranged = (registry.image(f"count/{r}") for r in ("builds", "pinned", "semver"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "policies.yaml").write_text(
        "---\n".join(
            [
                policy("newest", newest, "  policy:\n    newestBuild: {}\n"),
                policy("pinned", pinned, "  policy:\n    digest: {tag: stable}\n"),
                policy("ranged", ranged, "  policy:\n    semver:\n      range: '>=1.0.0'\n"),
            ]
        )
    )
    (repo / "deploy.yaml").write_text(
        f'a: {newest}:build-03 # {{"$imagepolicy": "newest"}}\n'
        f'b: {pinned}:stable # {{"$imagepolicy": "pinned"}}\n'
        f'c: {ranged}:1.0.0 # {{"$imagepolicy": "ranged"}}\n'
    )

    async def plan() -> tuple[Counting, int, object]:
        async with RegistryClient(RegistryConfig(insecure=True)) as client:
            counting = Counting(client)
            made = await make_plan(repo, load_policies(repo), counting)
            return counting, client.requests, made

    counting, requests, made = asyncio.run(plan())
    assert max(counting.calls.values()) == 1, [k for k, n in counting.calls.items() if n > 1]
    kinds = Counter(k[0] for k in counting.calls)
    assert kinds == {"list": 3, "created": 20, "manifest": 1}
    assert {c.policy for c in made.update.changes} == {"newest", "pinned", "ranged"}  # type: ignore[attr-defined]
    # what reached the registry over HTTP: 3 listings, a manifest and a config blob per build
    # time, one manifest for the digest (plus at most one auth round trip per repository)
    assert requests <= 3 + 2 * 20 + 1 + 3
