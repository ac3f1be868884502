"""Seed a distribution (docker-registry 2.x) filesystem store with images, fast.

Writes the storage driver's on-disk layout directly — blobs, repository links,
revisions and tag links — so thousands of tags exist before the registry starts.
Hand-written because no library writes this layout; it is what ``docker push``
leaves behind, and the real registry then serves it (listing, manifests, blobs).

Layout under ``<root>/docker/registry/v2``::

    blobs/sha256/<hh>/<hex>/data
    repositories/<name>/_layers/sha256/<hex>/link
    repositories/<name>/_manifests/revisions/sha256/<hex>/link
    repositories/<name>/_manifests/tags/<tag>/current/link
    repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class SeedImage:
    """One tag to create: repository path, tag, and the build time written in its config."""

    repository: str
    tag: str
    created: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    platform: str = "linux/amd64"


class RegistryStore:
    """Writes images into a filesystem store; one instance per registry root directory."""

    def __init__(self, root: Path) -> None:
        self.base = root / "docker" / "registry" / "v2"
        self._blobs: set[str] = set()

    def _blob(self, data: bytes) -> str:
        hexd = hashlib.sha256(data).hexdigest()
        if hexd not in self._blobs:
            path = self.base / "blobs" / "sha256" / hexd[:2] / hexd / "data"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            self._blobs.add(hexd)
        return hexd

    @staticmethod
    def _link(path: Path, hexd: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "link").write_text(f"sha256:{hexd}")

    def add(self, image: SeedImage) -> str:
        """Create ``image`` and return its manifest digest."""
        os_, arch, *variant = image.platform.split("/")
        config = {
            "architecture": arch,
            "os": os_,
            "created": image.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": {"Labels": {"org.opencontainers.image.version": image.tag}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        if variant:
            config["variant"] = variant[0]
        layer = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_hex, layer_hex = self._blob(config_bytes), self._blob(layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{config_hex}", "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER, "digest": f"sha256:{layer_hex}", "size": len(layer)}],
        }
        manifest_hex = self._blob(json.dumps(manifest, sort_keys=True).encode())
        repo = self.base / "repositories" / image.repository
        for hexd in (config_hex, layer_hex):
            self._link(repo / "_layers" / "sha256" / hexd, hexd)
        self._link(repo / "_manifests" / "revisions" / "sha256" / manifest_hex, manifest_hex)
        tag_dir = repo / "_manifests" / "tags" / image.tag
        self._link(tag_dir / "current", manifest_hex)
        self._link(tag_dir / "index" / "sha256" / manifest_hex, manifest_hex)
        return f"sha256:{manifest_hex}"

    def add_tags(self, repository: str, tags: Iterable[str], created: datetime | None = None) -> str:
        """Point every tag in ``tags`` at one image in ``repository`` (fast bulk seeding)."""
        first = True
        digest = ""
        repo = self.base / "repositories" / repository
        for tag in tags:
            if first:
                digest = self.add(SeedImage(repository, tag, created or SeedImage.created))
                first = False
                continue
            hexd = digest.removeprefix("sha256:")
            tag_dir = repo / "_manifests" / "tags" / tag
            self._link(tag_dir / "current", hexd)
            self._link(tag_dir / "index" / "sha256" / hexd, hexd)
        return digest

    def add_all(self, images: Iterable[SeedImage]) -> dict[tuple[str, str], str]:
        """Create every image; return ``{(repository, tag): digest}``."""
        return {(img.repository, img.tag): self.add(img) for img in images}
