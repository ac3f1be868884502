"""cosign's formats, read and checked: pure functions of bytes, no I/O.

What cosign writes, and what is checked here:

* **simple signing** payloads (``{"critical": {"identity": {"docker-reference"}, "image":
  {"docker-manifest-digest"}, "type": "cosign container image signature"}, "optional": ...}``),
  signed byte for byte; the digest they name must be the candidate's;
* **DSSE** envelopes (attestations): the signature is over the PAE encoding of the payload type
  and payload; the payload an in-toto statement whose ``subject`` names the candidate's digest;
* **Sigstore bundles** v0.1-v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``): a
  ``messageSignature`` (over the artifact, here the image manifest, so its ``messageDigest`` is
  the candidate's digest) or a ``dsseEnvelope``;
* **SLSA provenance** v1 and v0.2: builder id, source repository and ref.

Hand-written on purpose: sigstore-python verifies bundles (and is used for keyless ones, see
:mod:`automator.verify.keyless`) but reads neither cosign's registry layouts (the simple-signing
payload, the ``.sig``/``.att`` manifests) nor key-signed payloads; the checks are a few lines
over ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from automator.policy.goregex import compile_go
from automator.policy.model import ProvenanceRule

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    }
)
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset({"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"})
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"  # cosign's new-bundle-format image signature
MAX_PAYLOAD_BYTES = 1 << 20  # a payload or bundle; real ones are a few KiB


def digest_tag(digest: str, suffix: str = "") -> str:
    """cosign's tag for ``sha256:<hex>``: ``sha256-<hex>`` + ``.sig`` / ``.att`` (or the referrers tag)."""
    return digest.replace(":", "-", 1) + suffix


def is_signature_tag(tag: str) -> bool:
    """A tag holding signatures, attestations, SBOMs or referrers, never an image to deploy."""
    if tag.endswith((".sig", ".att", ".sbom")):
        return True
    head = tag.split(".", 1)[0]
    return head.startswith("sha256-") and len(head) == 71 and all(c in "0123456789abcdef" for c in head[7:])


@dataclass(frozen=True)
class Signed:
    """One signature found for a candidate, as cosign stored it; ``where`` for messages."""

    where: str
    kind: str  # "simple-signing" (legacy .sig layer), "bundle" (a Sigstore bundle), "dsse" (.att layer)
    payload: bytes = b""  # simple signing or DSSE: what was signed (DSSE: the envelope itself)
    signature: bytes = b""
    certificate: str | None = None  # keyless: the Fulcio certificate (PEM), and its chain
    chain: str | None = None
    bundle: bytes | None = None  # a Sigstore bundle (v0.3 referrer), or cosign's legacy Rekor bundle


class FormatError(ValueError):
    """What was found is not what cosign writes."""


def _json(data: bytes, what: str) -> Any:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise FormatError(f"{what} is over {MAX_PAYLOAD_BYTES:,} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{what} is not JSON") from None


def b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise FormatError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise FormatError(f"{what} is not base64") from None


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """The payload ``cosign sign`` writes for ``reference`` at ``digest`` with no annotations (Go's
    ``json.Marshal``: no spaces, ``"optional":null``)."""
    critical = {"identity": {"docker-reference": reference}, "image": {"docker-manifest-digest": digest}}
    doc = {"critical": {**critical, "type": SIGNATURE_TYPE}, "optional": None}
    return json.dumps(doc, separators=(",", ":")).encode()


def simple_signing_digest(payload: bytes) -> str:
    """The ``docker-manifest-digest`` a simple-signing payload vouches for."""
    doc = _json(payload, "the signed payload")
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != SIGNATURE_TYPE:
        raise FormatError(f"the signed payload is not a {SIGNATURE_TYPE!r}")
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str):
        raise FormatError("the signed payload names no docker-manifest-digest")
    return digest


def verify_key(pem: str, data: bytes, signature: bytes, *, prehashed: bool = False) -> bool:
    """Whether ``signature`` over ``data`` verifies with the PEM public key, as cosign signs:
    ECDSA with SHA-256 (DER signature), RSA PKCS#1 v1.5 with SHA-256, Ed25519 over the bytes.
    ``prehashed``: ``data`` is already the SHA-256 digest (a bundle's message signature)."""
    key = load_pem_public_key(pem.encode("utf-8"))
    algorithm: Any = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey) and not prehashed:
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's Pre-Authentication Encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


def parse_envelope(doc: Mapping[str, Any], what: str) -> Envelope:
    kind = doc.get("payloadType")
    sigs = doc.get("signatures")
    if not isinstance(kind, str) or not isinstance(sigs, list) or not sigs:
        raise FormatError(f"{what} is not a DSSE envelope (payloadType, payload, signatures)")
    payload = b64(doc.get("payload"), f"{what} payload")
    signatures = tuple(b64(s.get("sig") if isinstance(s, dict) else None, f"{what} signature") for s in sigs)
    return Envelope(kind, payload, signatures)


def envelope_of(data: bytes, what: str) -> Envelope:
    doc = _json(data, what)
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a DSSE envelope")
    return parse_envelope(doc, what)


def envelope_verifies(pem: str, envelope: Envelope) -> bool:
    signed = pae(envelope.payload_type, envelope.payload)
    return any(verify_key(pem, signed, sig) for sig in envelope.signatures)


@dataclass(frozen=True)
class Bundle:
    """The parts of a Sigstore bundle a key-based check reads (keyless ones go to sigstore-python)."""

    message_digest: str | None  # "sha256:<hex>" of the signed artifact, when a message signature
    message_signature: bytes | None
    envelope: Envelope | None
    certificate: bool  # signed by a certificate (keyless), not a public key


def parse_bundle(data: bytes, what: str) -> Bundle:
    doc = _json(data, what)
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith("application/vnd.dev.sigstore"):
        raise FormatError(f"{what} is not a Sigstore bundle")
    material = doc.get("verificationMaterial")
    material = material if isinstance(material, dict) else {}
    certificate = any(k in material for k in ("certificate", "x509CertificateChain"))
    message = doc.get("messageSignature")
    if isinstance(message, dict):
        md = message.get("messageDigest")
        digest = None
        if isinstance(md, dict) and md.get("algorithm") == "SHA2_256":
            digest = "sha256:" + b64(md.get("digest"), f"{what} message digest").hex()
        return Bundle(digest, b64(message.get("signature"), f"{what} signature"), None, certificate)
    envelope = doc.get("dsseEnvelope")
    if isinstance(envelope, dict):
        return Bundle(None, None, parse_envelope(envelope, f"{what} DSSE envelope"), certificate)
    raise FormatError(f"{what} has neither a messageSignature nor a dsseEnvelope")


def statement(envelope: Envelope, what: str) -> dict[str, Any]:
    if envelope.payload_type != IN_TOTO_PAYLOAD:
        raise FormatError(f"{what} carries {envelope.payload_type!r}, not an in-toto statement")
    doc = _json(envelope.payload, f"{what} statement")
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise FormatError(f"{what} is not an in-toto statement")
    return doc


def names_digest(doc: Mapping[str, Any], digest: str) -> bool:
    """Whether the statement's ``subject`` lists ``digest`` (``sha256:<hex>``)."""
    algorithm, _, hexdigest = digest.partition(":")
    subjects = doc.get("subject")
    return isinstance(subjects, list) and any(
        isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get(algorithm) == hexdigest
        for s in subjects
    )


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def provenance_facts(doc: Mapping[str, Any]) -> dict[str, str | None]:
    """Builder id, source repository and ref of a SLSA provenance statement (v1 or v0.2)."""
    predicate = doc.get("predicate")
    if doc.get("predicateType") == SLSA_V1:
        builder = _get(predicate, "runDetails", "builder", "id")
        workflow = _get(predicate, "buildDefinition", "externalParameters", "workflow")
        repo = _get(workflow, "repository")
        ref = _get(workflow, "ref")
        deps = _get(predicate, "buildDefinition", "resolvedDependencies")
        if repo is None and isinstance(deps, list) and deps and isinstance(deps[0], dict):
            repo = deps[0].get("uri")
        source = _get(predicate, "buildDefinition", "externalParameters", "source")
        repo = repo if repo is not None else _get(source, "uri")
        ref = ref if ref is not None else _get(source, "ref")
    else:
        builder = _get(predicate, "builder", "id")
        source = _get(predicate, "invocation", "configSource")
        uri = _get(source, "uri")
        repo, ref = uri, None
        if isinstance(uri, str) and "@" in uri.removeprefix("git+"):
            repo, ref = uri.rsplit("@", 1)
    if isinstance(repo, str):
        repo = repo.removeprefix("git+")
    facts = {"builderId": builder, "sourceRepository": repo, "ref": ref}
    return {k: v if isinstance(v, str) else None for k, v in facts.items()}


def provenance_problem(doc: Mapping[str, Any], rule: ProvenanceRule) -> str | None:
    """Why a provenance statement does not satisfy ``rule`` (None: it does)."""
    if doc.get("predicateType") not in (SLSA_V1, SLSA_V02):
        return f"predicate {doc.get('predicateType')!r} is not SLSA provenance"
    facts = provenance_facts(doc)
    wanted = (("builderId", rule.builder_id), ("sourceRepository", rule.source_repository), ("ref", rule.ref))
    for name, pattern in wanted:
        if pattern is None:
            continue
        value = facts[name]
        if value is None:
            return f"the provenance names no {name}"
        if compile_go(pattern).search(value) is None:
            return f"provenance {name} {value!r} does not match {pattern!r}"
    return None
