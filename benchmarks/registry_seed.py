"""Seed a docker-registry (distribution 2.x) filesystem store fast, before the registry starts.

    python3 benchmarks/registry_seed.py ROOT [--repos 1000] [--tags 100] [--distinct 10] [--share]

Writes the storage driver's layout directly instead of pushing over HTTP, so 1,000
repositories x 100 tags exist in seconds (put ROOT on tmpfs, e.g. /dev/shm, for the
fastest run; a slow disk is dominated by creating ~120 files per repository)::

    <ROOT>/docker/registry/v2/
      blobs/sha256/<hh>/<hex>/data                               manifests, configs, the layer
      repositories/<name>/_layers/sha256/<hex>/link              blobs the repository may serve
      repositories/<name>/_manifests/revisions/sha256/<hex>/link manifests the repository holds
      repositories/<name>/_manifests/tags/<tag>/current/link     what a tag points at

Each tag points at one of ``distinct`` OCI images whose configs differ in ``created``
(tag ``i`` -> image ``i % distinct``), so tags resolve to several digests and build
times without writing 100 configs per repository.  Blobs are content-addressed and
written once for the whole store.  The ``tags/<tag>/index`` back-links are skipped:
reads (tags/list, manifests, blobs) never use them.

``share=True`` writes one template repository and makes every other repository a
symlink to it: instant, but pushes to one would show in all, so use it read-only.

Hand-written (no library writes this layout); :mod:`automator.demo.seed` does the
same for single images and the demo; this one is tuned for bulk.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_TAR = b"\0" * 1024  # an empty tar archive: two zero blocks
EMPTY_GZIP_TAR = gzip.compress(EMPTY_TAR, mtime=0)
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class SeededImage:
    digest: str  # manifest digest
    config_digest: str
    created: datetime


@dataclass
class SeedResult:
    """What was written: repository names, tag names, and the image behind each tag index."""

    root: Path
    repositories: list[str]
    tags: list[str]
    images: list[SeededImage] = field(default_factory=list)
    seconds: float = 0.0

    def image_for(self, tag: str) -> SeededImage:
        """The image a tag points at (the same in every repository)."""
        return self.images[self.tags.index(tag) % len(self.images)]


def _blob(blobs: Path, data: bytes) -> str:
    hexd = hashlib.sha256(data).hexdigest()
    directory = blobs / hexd[:2] / hexd
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").write_bytes(data)
    return hexd


def _link(directory: str, hexd: str) -> None:
    os.mkdir(directory)
    with open(os.path.join(directory, "link"), "w", encoding="ascii") as fh:
        fh.write(f"sha256:{hexd}")


def _write_repository(repo: str, tags: Sequence[str], manifests: Sequence[str], blobs: Sequence[str]) -> None:
    tag_root = os.path.join(repo, "_manifests", "tags")
    revisions = os.path.join(repo, "_manifests", "revisions", "sha256")
    layers = os.path.join(repo, "_layers", "sha256")
    for directory in (tag_root, revisions, layers):
        os.makedirs(directory, exist_ok=True)
    for hexd in manifests:
        _link(os.path.join(revisions, hexd), hexd)
    for hexd in blobs:
        _link(os.path.join(layers, hexd), hexd)
    for i, tag in enumerate(tags):
        tag_dir = os.path.join(tag_root, tag)
        os.mkdir(tag_dir)
        _link(os.path.join(tag_dir, "current"), manifests[i % len(manifests)])


def seed_registry(
    root: Path,
    repositories: int | Sequence[str] = 1000,
    tags: int | Sequence[str] = 100,
    *,
    distinct: int = 10,
    share: bool = False,
    prefix: str = "bench/app-",
    base_time: datetime = BASE_TIME,
) -> SeedResult:
    """Write ``repositories`` x ``tags`` into the store at ``root`` (created if missing).

    ``repositories``/``tags`` are counts (names ``<prefix>0000`` and ``1.<i>.0``) or
    explicit names.  Image ``k`` has ``created = base_time + k hours``.  Run before
    the registry starts (distribution caches nothing from disk, but a running
    registry may be mid-write).
    """
    started = time.perf_counter()
    repo_names = (
        [f"{prefix}{i:04d}" for i in range(repositories)] if isinstance(repositories, int) else list(repositories)
    )
    tag_names = [f"1.{i}.0" for i in range(tags)] if isinstance(tags, int) else list(tags)
    if not repo_names or not tag_names or distinct < 1:
        raise ValueError("need at least one repository, one tag and one distinct image")
    v2 = root / "docker" / "registry" / "v2"
    blobs = v2 / "blobs" / "sha256"
    result = SeedResult(root=root, repositories=repo_names, tags=tag_names)
    layer_hex = _blob(blobs, EMPTY_GZIP_TAR)
    manifest_hexes: list[str] = []
    blob_hexes = [layer_hex]
    for k in range(min(distinct, len(tag_names))):
        created = base_time + timedelta(hours=k)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": {"Labels": {"seed.image": str(k)}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(EMPTY_TAR).hexdigest()]},
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_hex = _blob(blobs, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{config_hex}", "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER, "digest": f"sha256:{layer_hex}", "size": len(EMPTY_GZIP_TAR)}],
        }
        manifest_hex = _blob(blobs, json.dumps(manifest, separators=(",", ":")).encode())
        manifest_hexes.append(manifest_hex)
        blob_hexes.append(config_hex)
        result.images.append(SeededImage(f"sha256:{manifest_hex}", f"sha256:{config_hex}", created))
    repos_dir = v2 / "repositories"
    if share:
        template = v2 / "_seed_template"
        _write_repository(str(template), tag_names, manifest_hexes, blob_hexes)
        for name in repo_names:
            target = repos_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(template, target.parent), target)
    else:
        for name in repo_names:
            _write_repository(str(repos_dir / name), tag_names, manifest_hexes, blob_hexes)
    result.seconds = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="storage root (rootdirectory in the registry config)")
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--distinct", type=int, default=10)
    parser.add_argument("--share", action="store_true", help="symlink repositories to one template (read-only use)")
    args = parser.parse_args(argv)
    result = seed_registry(args.root, args.repos, args.tags, distinct=args.distinct, share=args.share)
    print(
        f"seeded {len(result.repositories)} repositories x {len(result.tags)} tags "
        f"({len(result.images)} distinct images) into {args.root} in {result.seconds:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
