"""The fast seeder's storage layout is one the real docker-registry serves: tags, manifests, configs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from automator.refs import parse_reference
from automator.registry import RegistryClient, RegistryConfig
from benchmarks.registry_seed import seed_registry
from tests.servers.registry import RunningRegistry


@pytest.mark.parametrize("share", [False, True])
async def test_registry_serves_seeded_store(
    tmp_path: Path, registry_launcher: Callable[..., RunningRegistry], share: bool
) -> None:
    root = tmp_path / "store"
    seeded = seed_registry(root, 25, 40, distinct=4, share=share)
    reg = registry_launcher(root=root)
    async with RegistryClient(RegistryConfig(insecure=True)) as client:
        listings = await asyncio.gather(
            *(client.list_tags(parse_reference(reg.image(name))) for name in seeded.repositories)
        )
        assert all(sorted(listing.tags) == sorted(seeded.tags) for listing in listings)
        image = parse_reference(reg.image(seeded.repositories[-1]))
        for tag in ("1.0.0", "1.5.0", "1.39.0"):
            expected = seeded.image_for(tag)
            assert (await client.manifest(image, tag)).digest == expected.digest
            assert await client.created(image, tag) == expected.created
    assert {seeded.image_for(t).digest for t in seeded.tags} == {i.digest for i in seeded.images}
    assert len(seeded.images) == 4


def test_seed_rejects_empty_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one repository"):
        seed_registry(tmp_path, [], 3)
