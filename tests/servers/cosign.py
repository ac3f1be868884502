"""Sign images in a test registry exactly as cosign lays signatures out (keys made in the test).

* :func:`sign_legacy`: ``cosign sign --key`` before OCI 1.1: the ``sha256-<hex>.sig`` tag, an OCI
  manifest whose config is an image config listing the layers, each layer a simple-signing
  payload (``application/vnd.dev.cosign.simplesigning.v1+json``) with its base64 signature in the
  annotation ``dev.cosignproject.cosign/signature``; a second signature appends a layer.
* :func:`attest_legacy`: ``cosign attest --key``: the ``sha256-<hex>.att`` tag, DSSE envelope
  layers (``application/vnd.dsse.envelope.v1+json``) with the ``predicateType`` annotation.
* :func:`sign_bundle_referrer`: ``cosign sign --new-bundle-format``: an OCI 1.1 artifact
  (``artifactType`` and layer ``application/vnd.dev.sigstore.bundle.v0.3+json``, the empty config,
  ``subject`` = the image) pushed by digest and listed in the referrers tag schema index
  (``sha256-<hex>``), or only returned, for a registry with a referrers API to serve.

Payloads are Go ``json.Marshal`` output as cosign writes them (no spaces, ``"optional":null``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers.registry_push import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, RegistryHTTP, sha256

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
ZERO_TIME = "0001-01-01T00:00:00Z"
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Key:
    """A signing key of one of the types cosign writes (ECDSA P-256 by default)."""

    private: Any

    @classmethod
    def generate(cls, kind: str = "ecdsa") -> Key:
        if kind == "rsa":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if kind == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def pem(self) -> str:
        """cosign.pub: PEM SubjectPublicKeyInfo."""
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        if isinstance(self.private, rsa.RSAPrivateKey):
            return bytes(self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        return bytes(self.private.sign(data))

    def sign_digest(self, digest: bytes) -> bytes:
        """A signature over a SHA-256 digest (a bundle's message signature, as sigstore signs)."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return bytes(self.private.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256())))
        return bytes(self.private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """cosign's payload for ``reference`` (repository, no tag) at ``digest``."""
    return _dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def digest_tag(digest: str, suffix: str = "") -> str:
    return digest.replace(":", "-", 1) + suffix


def _existing_layers(http: RegistryHTTP, repo: str, tag: str) -> list[dict[str, Any]]:
    status, _, body = http.request(
        "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, scope=f"repository:{repo}:pull"
    )
    return list(json.loads(body).get("layers", [])) if status == 200 else []


def _put_layers(http: RegistryHTTP, repo: str, tag: str, layers: list[dict[str, Any]]) -> str:
    """cosign's signature image: a config listing each layer's digest as a diff id."""
    config = _dumps(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            "config": {},
        }
    )
    config_digest = http.upload_blob(repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
        "layers": layers,
    }
    return http.put_manifest(repo, tag, manifest, OCI_MANIFEST)


def sign_legacy(
    http: RegistryHTTP,
    repo: str,
    digest: str,
    key: Key,
    *,
    reference: str | None = None,
    payload_digest: str | None = None,
    signature: bytes | None = None,
) -> str:
    """``cosign sign --key``: append a simple-signing layer to ``sha256-<hex>.sig``.

    ``payload_digest``: the digest the payload names (default ``digest``; another for a payload
    copied from another image). ``signature``: bytes to store instead of a real signature."""
    payload = simple_signing_payload(reference or repo, payload_digest or digest)
    sig = signature if signature is not None else key.sign(payload)
    blob = http.upload_blob(repo, payload)
    tag = digest_tag(digest, ".sig")
    layers = _existing_layers(http, repo, tag)
    layers.append(
        {
            "mediaType": SIMPLE_SIGNING,
            "size": len(payload),
            "digest": blob,
            "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(sig).decode()},
        }
    )
    return _put_layers(http, repo, tag, layers)


def statement(digest: str, predicate_type: str, predicate: dict[str, Any], name: str = "image") -> bytes:
    return _dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": digest.partition(":")[2]}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


def slsa_v1(builder: str, repository: str, ref: str) -> dict[str, Any]:
    """A SLSA v1 provenance predicate as the GitHub generator writes it (the fields read)."""
    return {
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": ref, "repository": repository, "path": ".github/build.yml"}},
            "resolvedDependencies": [{"uri": f"git+{repository}@{ref}", "digest": {"gitCommit": "0" * 40}}],
        },
        "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "1"}},
    }


def slsa_v02(builder: str, repository: str, ref: str) -> dict[str, Any]:
    return {
        "builder": {"id": builder},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "invocation": {"configSource": {"uri": f"git+{repository}@{ref}", "digest": {"sha1": "0" * 40}}},
    }


def envelope(key: Key, payload: bytes, payload_type: str = IN_TOTO) -> bytes:
    kind = payload_type.encode()
    pae = b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)
    return _dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(key.sign(pae)).decode()}],
        }
    )


def attest_legacy(http: RegistryHTTP, repo: str, digest: str, key: Key, *, predicate_type: str, body: bytes) -> str:
    """``cosign attest --key``: append a DSSE envelope layer (``body``: the statement) to ``.att``."""
    env = envelope(key, body)
    blob = http.upload_blob(repo, env)
    tag = digest_tag(digest, ".att")
    layers = _existing_layers(http, repo, tag)
    layers.append(
        {
            "mediaType": DSSE,
            "size": len(env),
            "digest": blob,
            "annotations": {SIGNATURE_ANNOTATION: "", "predicateType": predicate_type},
        }
    )
    return _put_layers(http, repo, tag, layers)


def key_bundle(key: Key, digest: str) -> bytes:
    """A v0.3 bundle signing the image manifest (``digest``) with a key: a message signature."""
    raw = bytes.fromhex(digest.partition(":")[2])
    return _dumps(
        {
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {"publicKey": {"hint": "test-key"}, "tlogEntries": []},
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(raw).decode()},
                "signature": base64.b64encode(key.sign_digest(raw)).decode(),
            },
        }
    )


def sign_bundle_referrer(
    http: RegistryHTTP,
    repo: str,
    subject: tuple[str, str, int],
    bundle: bytes,
    *,
    tag_schema: bool = True,
    content: str = "message-signature",
) -> dict[str, Any]:
    """Push a bundle artifact referring to ``subject`` (digest, media type, size); list it in the
    referrers tag schema index when ``tag_schema``. Returns its descriptor (as the referrers API lists it)."""
    digest, media_type, size = subject
    empty = http.upload_blob(repo, b"{}")
    layer = http.upload_blob(repo, bundle)
    annotations = {"dev.sigstore.bundle.content": content, "org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": EMPTY, "size": 2, "digest": empty},
        "layers": [{"mediaType": BUNDLE_V03, "size": len(bundle), "digest": layer}],
        "subject": {"mediaType": media_type, "size": size, "digest": digest},
        "annotations": annotations,
    }
    data = _dumps(manifest)
    pushed = http.put_manifest(repo, sha256(data), manifest, OCI_MANIFEST)
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "size": len(data),
        "digest": pushed,
        "artifactType": BUNDLE_V03,
        "annotations": annotations,
    }
    if tag_schema:
        tag = digest_tag(digest)
        status, _, body = http.request(
            "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_INDEX}, scope=f"repository:{repo}:pull"
        )
        entries = list(json.loads(body).get("manifests", [])) if status == 200 else []
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*entries, descriptor]}
        http.put_manifest(repo, tag, index, OCI_INDEX)
    return descriptor


# --- keyless: a private Sigstore (Fulcio-like CA, CT log, Rekor) for offline verification ----------


def _spki(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _key_id(public_key: Any) -> bytes:
    return hashlib.sha256(_spki(public_key)).digest()


def _der_utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def _der_octets(data: bytes) -> bytes:
    if len(data) < 128:
        return bytes([0x04, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + data


class PrivateSigstore:
    """A Sigstore of the test's own: a Fulcio-like CA issuing short-lived certificates with the OIDC
    issuer extensions and an SAN, a CT log embedding a precertificate SCT, a Rekor log signing each
    entry's inclusion promise and a checkpoint over a one-entry tree. :meth:`trusted_root` is the
    ``trusted_root.json`` sigstore-python verifies against, offline."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"),
                x509.NameAttribute(NameOID.COMMON_NAME, "fulcio.test"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=1))
            .not_valid_after(self.now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    def _leaf(self, public_key: Any, subject: str, issuer: str, sct: bytes | None, serial: int) -> x509.Certificate:
        san: x509.GeneralName = (
            x509.RFC822Name(subject)
            if "@" in subject and "://" not in subject
            else x509.UniformResourceIdentifier(subject)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(self.now - timedelta(minutes=1))
            .not_valid_after(self.now + timedelta(minutes=10))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()),
                critical=False,
            )
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), _der_utf8(issuer)),
                critical=False,
            )
        )
        if sct is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), _der_octets(sct)),
                critical=False,
            )
        return builder.sign(self.ca_key, hashes.SHA256())

    def certificate(self, public_key: Any, subject: str, issuer: str) -> x509.Certificate:
        """A Fulcio-like certificate for ``subject`` (SAN) from ``issuer``, with an embedded SCT."""
        serial = x509.random_serial_number()
        pre = self._leaf(public_key, subject, issuer, None, serial)  # its TBS is the final one's, less the SCT
        tbs = pre.tbs_certificate_bytes
        stamp = int(self.now.timestamp() * 1000)
        signed = (
            struct.pack("!BBQH", 0, 0, stamp, 1)
            + _key_id(self.ca_key.public_key())
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            bytes([0])
            + _key_id(self.ct_key.public_key())
            + struct.pack("!Q", stamp)
            + struct.pack("!H", 0)
            + bytes([4, 3])
            + struct.pack("!H", len(signature))
            + signature
        )
        sct_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        cert = self._leaf(public_key, subject, issuer, sct_list, serial)
        assert cert.tbs_precertificate_bytes == tbs
        return cert

    def bundle(self, subject: str, issuer: str, digest: str) -> bytes:
        """``cosign sign --new-bundle-format`` keyless: a v0.3 bundle whose message signature covers
        the image manifest (``digest``), logged in the test's Rekor."""
        signer = ec.generate_private_key(ec.SECP256R1())
        cert = self.certificate(signer.public_key(), subject, issuer)
        raw = bytes.fromhex(digest.partition(":")[2])
        signature = signer.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = _dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": raw.hex()}},
                    "signature": {
                        "content": base64.b64encode(signature).decode(),
                        "publicKey": {"content": base64.b64encode(pem).decode()},
                    },
                },
            }
        )
        log_id = _key_id(self.rekor_key.public_key())
        integrated = int(self.now.timestamp())
        promise = {
            "body": base64.b64encode(body).decode(),
            "integratedTime": integrated,
            "logID": log_id.hex(),
            "logIndex": 0,
        }
        canonical = json.dumps(promise, separators=(",", ":"), sort_keys=True).encode()
        set_signature = self.rekor_key.sign(canonical, ec.ECDSA(hashes.SHA256()))
        root = hashlib.sha256(b"\x00" + body).digest()  # a one-entry tree: the root is the leaf hash
        note = f"rekor.test - 1\n1\n{base64.b64encode(root).decode()}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + "\n\u2014 rekor.test " + base64.b64encode(log_id[:4] + note_signature).decode() + "\n"
        return _dumps(
            {
                "mediaType": BUNDLE_V03,
                "verificationMaterial": {
                    "certificate": {
                        "rawBytes": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
                    },
                    "tlogEntries": [
                        {
                            "logIndex": "0",
                            "logId": {"keyId": base64.b64encode(log_id).decode()},
                            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                            "integratedTime": str(integrated),
                            "inclusionPromise": {"signedEntryTimestamp": base64.b64encode(set_signature).decode()},
                            "inclusionProof": {
                                "logIndex": "0",
                                "rootHash": base64.b64encode(root).decode(),
                                "treeSize": "1",
                                "hashes": [],
                                "checkpoint": {"envelope": checkpoint},
                            },
                            "canonicalizedBody": base64.b64encode(body).decode(),
                        }
                    ],
                },
                "messageSignature": {
                    "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(raw).decode()},
                    "signature": base64.b64encode(signature).decode(),
                },
            }
        )

    def trusted_root(self) -> str:
        """The ``trusted_root.json`` of this Sigstore."""
        start = (self.now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(key: Any, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(_spki(key.public_key())).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": base64.b64encode(_key_id(key.public_key())).decode()},
            }

        doc = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.rekor_key, "https://rekor.test")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "test", "commonName": "fulcio.test"},
                    "uri": "https://fulcio.test",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": base64.b64encode(self.ca.public_bytes(serialization.Encoding.DER)).decode()}
                        ]
                    },
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.test")],
            "timestampAuthorities": [],
        }
        return json.dumps(doc, indent=2)
