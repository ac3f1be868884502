"""Where cosign keeps an image's signatures in a registry, and reading them (the I/O edge).

Looked up in this order, lazily (the verifier stops at the first signature that verifies):

1. the **legacy tag scheme**: ``sha256-<hex>.sig``, an image manifest whose layers are
   simple-signing payloads (``application/vnd.dev.cosign.simplesigning.v1+json``), each with its
   signature in the annotation ``dev.cosignproject.cosign/signature`` (keyless: certificate,
   chain and Rekor bundle in ``dev.sigstore.cosign/{certificate,chain,bundle}``);
2. the **OCI 1.1 referrers API** (``GET /v2/<name>/referrers/<digest>``), or, on a registry
   without it, the **referrers tag schema** (the ``sha256-<hex>`` tag holding an index): artifacts
   with a Sigstore bundle layer (``application/vnd.dev.sigstore.bundle.v0.3+json``) or a
   simple-signing layer.

Attestations: ``sha256-<hex>.att`` (DSSE envelope layers, ``application/vnd.dsse.envelope.v1+json``)
and bundle referrers holding a DSSE envelope.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from automator.refs import ImageRef
from automator.registry.base import ArtifactRegistry
from automator.verify.cosign import (
    BUNDLE_ANNOTATION,
    BUNDLE_MEDIA_TYPES,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    DSSE_MEDIA_TYPE,
    MAX_PAYLOAD_BYTES,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    FormatError,
    Signed,
    b64,
    digest_tag,
    simple_signing_payload,
)

MAX_LAYERS = 16  # signatures read per manifest; cosign appends one per `cosign sign`
MAX_REFERRERS = 16


def _doc(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a JSON object")
    return doc


def _descriptors(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = doc.get(key)
    return (
        [d for d in found if isinstance(d, dict) and isinstance(d.get("digest"), str)]
        if isinstance(found, list)
        else []
    )


def _known_payload(image: ImageRef, digest: str, layer: dict[str, Any]) -> bytes | None:
    """The layer's simple-signing payload without fetching it, when it is the one cosign writes by
    default (no annotations) for this repository: content addressing makes a match the blob itself,
    so a signature costs one request, not two. Anything else (annotations, another spelling of the
    repository) is fetched."""
    for reference in dict.fromkeys((image.repository, image.familiar, f"index.docker.io/{image.path}")):
        payload = simple_signing_payload(reference, digest)
        if "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]:
            return payload
    return None


async def _layer_signatures(
    registry: ArtifactRegistry, image: ImageRef, doc: dict[str, Any], where: str, digest: str
) -> AsyncIterator[Signed]:
    for i, layer in enumerate(_descriptors(doc, "layers")[:MAX_LAYERS]):
        kind = layer.get("mediaType")
        notes = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
        assert isinstance(notes, dict)
        here = f"{where} layer {i}"
        if kind == SIMPLE_SIGNING:
            payload = _known_payload(image, digest, layer) or await registry.fetch_blob(
                image, layer["digest"], MAX_PAYLOAD_BYTES
            )
            try:
                signature = b64(notes.get(SIGNATURE_ANNOTATION), f"{here} signature annotation")
            except FormatError:
                signature = b""
            bundle = notes.get(BUNDLE_ANNOTATION)
            yield Signed(
                here,
                "simple-signing",
                payload,
                signature,
                certificate=notes.get(CERTIFICATE_ANNOTATION) or None,
                chain=notes.get(CHAIN_ANNOTATION) or None,
                bundle=bundle.encode() if isinstance(bundle, str) else None,
            )
        elif kind in BUNDLE_MEDIA_TYPES:
            data = await registry.fetch_blob(image, layer["digest"], MAX_PAYLOAD_BYTES)
            yield Signed(here, "bundle", bundle=data)
        elif kind == DSSE_MEDIA_TYPE:
            data = await registry.fetch_blob(image, layer["digest"], MAX_PAYLOAD_BYTES)
            bundle = notes.get(BUNDLE_ANNOTATION)
            yield Signed(
                here,
                "dsse",
                payload=data,
                certificate=notes.get(CERTIFICATE_ANNOTATION) or None,
                chain=notes.get(CHAIN_ANNOTATION) or None,
                bundle=bundle.encode() if isinstance(bundle, str) else None,
            )


async def _tagged(registry: ArtifactRegistry, image: ImageRef, tag: str, digest: str) -> AsyncIterator[Signed]:
    found = await registry.fetch_manifest(image, tag)
    if found is None:
        return
    async for signed in _layer_signatures(registry, image, _doc(found[1], f"manifest {tag}"), tag, digest):
        yield signed


class ReferrersSupport:
    """Which registry hosts have the referrers API, learnt once per host and kept for the process.

    A registry with the API answers 200 (an empty index) for any digest, so one 404 says the host
    has none; the scans of one cycle run at once, so the first asks and the others wait for its
    answer instead of each paying a request the registry will refuse."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}
        self._probes: dict[str, asyncio.Future[bool]] = {}

    async def referrers(self, registry: ArtifactRegistry, image: ImageRef, digest: str) -> bytes | None:
        host = image.domain
        while host not in self._known:
            probe = self._probes.get(host)
            if probe is None:
                break
            await asyncio.shield(probe)
        if self._known.get(host) is False:
            return None
        if host in self._known:
            return await registry.referrers(image, digest)
        probe = self._probes[host] = asyncio.get_running_loop().create_future()
        try:
            body = await registry.referrers(image, digest)
        finally:
            self._probes.pop(host, None)
            if not probe.done():
                probe.set_result(True)  # waiters look again (they ask themselves if nothing was learnt)
        self._known[host] = body is not None
        return body


async def _referrer_entries(
    registry: ArtifactRegistry, image: ImageRef, digest: str, support: ReferrersSupport
) -> tuple[str, list[dict[str, Any]]]:
    body = await support.referrers(registry, image, digest)
    where = f"referrers of {digest}"
    if body is None:  # no referrers API: the referrers tag schema
        tag = digest_tag(digest)
        found = await registry.fetch_manifest(image, tag)
        if found is None:
            return tag, []
        body, where = found[1], f"referrers tag {tag}"
    return where, _descriptors(_doc(body, where), "manifests")


async def referrer_signatures(
    registry: ArtifactRegistry,
    image: ImageRef,
    digest: str,
    *,
    support: ReferrersSupport,
    kinds: Iterable[str] | None = None,
) -> AsyncIterator[Signed]:
    """Signatures and attestations attached to ``digest`` as OCI 1.1 referrers (through the API
    where ``support`` says the host has it, else the referrers tag schema)."""
    where, entries = await _referrer_entries(registry, image, digest, support)
    wanted = set(kinds) if kinds is not None else None
    for entry in entries[:MAX_REFERRERS]:
        kind = entry.get("artifactType")
        if wanted is not None and kind not in wanted:
            continue
        found = await registry.fetch_manifest(image, entry["digest"])
        if found is None:
            continue
        doc = _doc(found[1], f"{where}: {entry['digest']}")
        subject = doc.get("subject")
        if isinstance(subject, dict) and subject.get("digest") not in (None, digest):
            continue  # listed for another image: not evidence for this one
        async for signed in _layer_signatures(registry, image, doc, f"{where}: {entry['digest']}", digest):
            yield signed


async def signatures(
    registry: ArtifactRegistry, image: ImageRef, digest: str, support: ReferrersSupport
) -> AsyncIterator[Signed]:
    """Every signature of ``digest``: the ``.sig`` tag first, then its referrers. A malformed
    artifact raises :class:`FormatError` (the verifier counts it as no signature)."""
    async for signed in _tagged(registry, image, digest_tag(digest, ".sig"), digest):
        yield signed
    async for signed in referrer_signatures(registry, image, digest, support=support):
        if signed.kind != "dsse":
            yield signed


async def attestations(
    registry: ArtifactRegistry, image: ImageRef, digest: str, support: ReferrersSupport
) -> AsyncIterator[Signed]:
    """Every attestation of ``digest``: the ``.att`` tag, then bundle referrers (DSSE inside)."""
    async for signed in _tagged(registry, image, digest_tag(digest, ".att"), digest):
        yield signed
    async for signed in referrer_signatures(registry, image, digest, support=support):
        if signed.kind in ("dsse", "bundle"):
            yield signed
