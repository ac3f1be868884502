"""Push real images to a registry over its HTTP API (stdlib only, as a client would).

Blobs go up as monolithic uploads (``POST /blobs/uploads/`` then ``PUT <location>?digest=``),
manifests with ``PUT /manifests/<tag>``.  Single-platform images are an OCI (or Docker v2)
manifest; multi-platform images are an OCI index over one manifest per platform.  Each
config carries the ``created`` time given, so build-time policies have something to read.
Basic and Bearer challenges are answered with the ``auth`` (username, password) given.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import ssl
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class PushedImage:
    """What was pushed: the tag's digest and media type, and per-platform details."""

    repository: str
    tag: str
    digest: str
    media_type: str
    created: datetime
    platforms: dict[str, str] = field(default_factory=dict)  # "linux/amd64" -> manifest digest
    config_digests: dict[str, str] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_layer(content: bytes) -> tuple[bytes, str]:
    """A gzipped tar holding one file; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256(tar_bytes)


class RegistryHTTP:
    """A tiny stdlib registry client that answers Basic/Bearer challenges."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None = None, ca_file: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))
        self._auth_header: dict[str, str] = {}

    def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, scope: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        url = url if url.startswith("http") else self.base_url + url
        for attempt in range(2):
            hdrs = dict(headers or {})
            if scope in self._auth_header:
                hdrs["Authorization"] = self._auth_header[scope]
            req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
            try:
                with self._opener.open(req, timeout=30) as resp:
                    return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            except urllib.error.HTTPError as err:
                status, resp_headers, data = err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
                if status == 401 and attempt == 0:
                    self._answer(resp_headers.get("www-authenticate", ""), scope)
                    continue
                return status, resp_headers, data
        raise AssertionError("unreachable")

    def _answer(self, challenge: str, scope: str) -> None:
        if self.auth is None:
            raise AssertionError(f"registry wants credentials ({challenge}) but push_image got no auth")
        user, password = self.auth
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if challenge.lower().startswith("basic"):
            self._auth_header[scope] = basic
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urlencode({"service": params.get("service", ""), "scope": scope})
        req = urllib.request.Request(f"{params['realm']}?{query}", headers={"Authorization": basic})
        with urllib.request.urlopen(req, timeout=30) as resp:
            token = json.loads(resp.read())["token"]
        self._auth_header[scope] = f"Bearer {token}"

    def upload_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        scope = f"repository:{repo}:pull,push"
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", scope=scope)
        assert status == 202, f"start upload to {repo}: HTTP {status} {body[:300]!r}"
        location = urljoin(self.base_url + "/", headers["location"])
        sep = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
            scope=scope,
        )
        assert status == 201, f"finish upload to {repo}: HTTP {status} {body[:300]!r}"
        return digest

    def put_manifest(self, repo: str, reference: str, manifest: dict[str, Any], media_type: str) -> str:
        data = json.dumps(manifest, separators=(",", ":")).encode()
        status, headers, body = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            data,
            {"Content-Type": media_type},
            scope=f"repository:{repo}:pull,push",
        )
        assert status == 201, f"put manifest {repo}:{reference}: HTTP {status} {body[:300]!r}"
        assert headers.get("docker-content-digest") == sha256(data)
        return sha256(data)


def _push_platform(
    http: RegistryHTTP, repo: str, tag: str | None, created: datetime, platform: str, *, docker: bool
) -> tuple[str, str, int]:
    """One platform's config, layer and manifest; tagged, or pushed by digest (as buildx does)."""
    os_name, arch, *variant = platform.split("/")
    layer, diff_id = make_layer(f"{repo}:{tag}:{platform}:{created.isoformat()}".encode())
    config: dict[str, Any] = {
        "created": rfc3339(created),
        "architecture": arch,
        "os": os_name,
        "config": {"Labels": {"test": "automator"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": rfc3339(created), "created_by": "push_image"}],
    }
    if variant:
        config["variant"] = variant[0]
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = http.upload_blob(repo, config_bytes)
    layer_digest = http.upload_blob(repo, layer)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = http.put_manifest(repo, tag or sha256(data), manifest, media_type)
    return digest, config_digest, len(data)


def push_image(
    base_url: str,
    repo: str,
    tag: str,
    *,
    created: datetime | None = None,
    platforms: list[str] | tuple[str, ...] | None = None,
    auth: tuple[str, str] | None = None,
    docker_media_types: bool = False,
    ca_file: str | None = None,
    http: RegistryHTTP | None = None,
) -> PushedImage:
    """Push ``repo:tag`` to the registry at ``base_url``.

    One platform (``platforms`` None -> linux/amd64): a single manifest.  Several: an OCI
    index whose entries carry ``platform``; each platform image gets its own config with
    ``created`` (default: now).
    """
    created = created or datetime.now(UTC)
    http = http or RegistryHTTP(base_url, auth, ca_file)
    if platforms is None:
        digest, config_digest, _ = _push_platform(http, repo, tag, created, "linux/amd64", docker=docker_media_types)
        media_type = DOCKER_MANIFEST if docker_media_types else OCI_MANIFEST
        return PushedImage(
            repo, tag, digest, media_type, created, {"linux/amd64": digest}, {"linux/amd64": config_digest}
        )
    entries = []
    pushed = PushedImage(repo, tag, "", OCI_INDEX, created)
    for platform in platforms:
        os_name, arch, *variant = platform.split("/")
        digest, config_digest, size = _push_platform(http, repo, None, created, platform, docker=False)
        entry_platform = {"architecture": arch, "os": os_name, **({"variant": variant[0]} if variant else {})}
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": entry_platform})
        pushed.platforms[platform] = digest
        pushed.config_digests[platform] = config_digest
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    pushed.digest = http.put_manifest(repo, tag, index, OCI_INDEX)
    return pushed
