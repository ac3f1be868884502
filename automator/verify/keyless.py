"""Keyless (Fulcio certificate) signatures, through sigstore-python's ``Verifier``.

sigstore-python checks a Sigstore bundle end to end: the certificate chains to the trusted
root's Fulcio CA at the time the transparency log gives, its embedded SCT verifies with a CT
log key, the log entry's inclusion proof and signed checkpoint (and its inclusion promise)
verify with a Rekor key, and the signature covers the artifact. What it does not know is
cosign's identity rule (issuer plus an exact subject *or a regular expression*), so the
identity check is :func:`identity_problem` here, handed to sigstore as its verification policy.

The trust root is a ``trusted_root.json`` (the policy's ``trustedRoot``, a file of the config
repository; else the verifier's; else Sigstore's public-good root from sigstore-python's local
TUF cache, offline): so a private or air-gapped Sigstore works without network.

Legacy ``.sig`` keyless signatures (certificate and Rekor bundle in layer annotations) carry only
the log's signed entry timestamp, no inclusion proof; sigstore-python refuses a log entry without
an inclusion proof and checkpoint (``TransparencyLogEntry._validate``: "entry must contain
inclusion proof, with checkpoint"), so those are reported as not verifiable rather than checked
by hand; sign with ``--new-bundle-format`` (a v0.3 bundle referrer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from automator.errors import SignatureError
from automator.policy.goregex import compile_go
from automator.policy.model import Identity, VerifyRule
from automator.verify.cosign import Signed

OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # the raw issuer URL (deprecated)
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # a DER UTF8String


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio wrote in the certificate (the v2 extension first)."""
    for oid in (OIDC_ISSUER_V2, OIDC_ISSUER_V1):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        data = raw.value if isinstance(raw, x509.UnrecognizedExtension) else b""
        if oid == OIDC_ISSUER_V2 and len(data) >= 2 and data[0] == 0x0C:  # UTF8String, short or long length
            length, offset = data[1], 2
            if length & 0x80:
                count = length & 0x7F
                length, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
            data = data[offset : offset + length]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def certificate_subjects(cert: x509.Certificate) -> list[str]:
    """The certificate's SAN values: e-mail addresses, URIs and Sigstore's other names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    found: list[str] = [
        *san.get_values_for_type(x509.RFC822Name),
        *san.get_values_for_type(x509.UniformResourceIdentifier),
    ]
    for other in san.get_values_for_type(x509.OtherName):
        value = other.value
        if len(value) >= 2 and value[0] == 0x0C:
            found.append(value[2:].decode("utf-8", "replace"))
    return found


def identity_problem(cert: x509.Certificate, identities: tuple[Identity, ...]) -> str | None:
    """Why no configured identity matches ``cert`` (None: one does)."""
    issuer = certificate_issuer(cert)
    subjects = certificate_subjects(cert)
    for identity in identities:
        if issuer != identity.issuer:
            continue
        if identity.subject is not None and identity.subject in subjects:
            return None
        if identity.subject_regexp is not None:
            pattern = compile_go(identity.subject_regexp)
            if any(pattern.search(s) is not None for s in subjects):
                return None
    who = ", ".join(subjects) or "no subject"
    return f"the certificate's identity ({who}, issuer {issuer}) is not one the policy trusts"


class _IdentityPolicy:
    """sigstore's ``VerificationPolicy`` protocol over :func:`identity_problem`."""

    def __init__(self, identities: tuple[Identity, ...]) -> None:
        self.identities = identities

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError  # noqa: PLC0415

        problem = identity_problem(cert, self.identities)
        if problem is not None:
            raise VerificationError(problem)


@dataclass
class KeylessChecker:
    """One rule's keyless check: its identities and the sigstore ``Verifier`` of its trust root."""

    identities: tuple[Identity, ...]
    verifier: Any
    root: str

    @classmethod
    def for_rule(cls, rule: VerifyRule, default_root: Path | None) -> KeylessChecker:
        try:
            from sigstore.models import TrustedRoot  # noqa: PLC0415
            from sigstore.verify import Verifier  # noqa: PLC0415
            from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - pinned in requirements
            raise SignatureError(f"keyless verification needs the sigstore package ({exc})") from exc
        try:
            if rule.trusted_root is not None:
                root, where = TrustedRoot(TrustedRootMessage.from_json(rule.trusted_root)), str(rule.trusted_root_where)
            elif default_root is not None:
                root, where = TrustedRoot.from_file(str(default_root)), str(default_root)
            else:
                return cls(rule.identities, Verifier.production(offline=True), "Sigstore public-good (TUF cache)")
            return cls(rule.identities, Verifier(trusted_root=root), where)
        except Exception as exc:  # sigstore's, tuf's, pydantic's errors: all say the root is unusable
            raise SignatureError(f"{rule.field}: the Sigstore trusted root cannot be used: {exc}") from exc

    def bundle(self, signed: Signed, digest: str) -> tuple[bool, str]:
        """A v0.3 bundle: a message signature over the image manifest, or a DSSE statement."""
        from sigstore.hashes import Hashed  # noqa: PLC0415
        from sigstore.models import Bundle  # noqa: PLC0415
        from sigstore_models.common.v1 import HashAlgorithm  # noqa: PLC0415

        assert signed.bundle is not None
        policy = _IdentityPolicy(self.identities)
        try:
            bundle = Bundle.from_json(signed.bundle)
            if bundle._dsse_envelope is not None:
                self.verifier.verify_dsse(bundle, policy)
            else:
                hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.partition(":")[2]))
                self.verifier.verify_artifact(hashed, bundle, policy)
        except Exception as exc:  # untrusted input: whatever sigstore refuses it with, it is refused
            return False, f"{signed.where}: keyless bundle does not verify against {self.root}: {exc}"
        cert = bundle.signing_certificate
        return True, f"signed by {', '.join(certificate_subjects(cert))} ({certificate_issuer(cert)}; {signed.where})"

    def legacy(self, signed: Signed) -> tuple[bool, str]:
        """A keyless signature in the legacy ``.sig`` layout: its identity is read, but the log entry
        cannot be verified by sigstore-python (see the module docstring)."""
        assert signed.certificate is not None
        try:
            cert = x509.load_pem_x509_certificate(signed.certificate.encode())
        except ValueError:
            return False, f"{signed.where}: the certificate annotation is not a PEM certificate"
        problem = identity_problem(cert, self.identities)
        if problem is not None:
            return False, f"{signed.where}: {problem}"
        return False, (
            f"{signed.where}: a keyless signature in the legacy layout (no inclusion proof in its Rekor bundle), "
            "which sigstore-python cannot verify; sign with cosign --new-bundle-format"
        )
