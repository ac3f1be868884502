"""The pure parts of signature verification: cosign's formats, keys, provenance, identities, and
the ``verify`` field as the loader reads it (native and the Flux annotation)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from automator.policy import load_policies
from automator.policy.model import Identity, ProvenanceRule, VerifyMode, VerifyRule
from automator.verify import cosign as formats
from automator.verify.keyless import KeylessChecker, certificate_issuer, identity_problem
from tests.servers import cosign
from tests.servers.cosign import Key, PrivateSigstore

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main"


@pytest.mark.parametrize(
    ("tag", "signature"),
    [
        ("sha256-" + "ab" * 32 + ".sig", True),
        ("sha256-" + "ab" * 32 + ".att", True),
        ("sha256-" + "ab" * 32, True),  # the referrers tag schema
        ("sha256-" + "ab" * 32 + ".sbom", True),
        ("app.sig", True),
        ("1.2.3", False),
        ("sha256-abc", False),
        ("v1.0.0-signed", False),
    ],
)
def test_signature_tags(tag: str, signature: bool) -> None:
    assert formats.is_signature_tag(tag) is signature


def test_pae_is_the_dsse_encoding() -> None:
    # the example of the DSSE protocol document
    assert formats.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_simple_signing_payload_names_its_digest() -> None:
    payload = cosign.simple_signing_payload("registry.test/app", DIGEST)
    assert formats.simple_signing_digest(payload) == DIGEST
    wrong = json.dumps({"critical": {"type": "something else", "image": {"docker-manifest-digest": DIGEST}}})
    with pytest.raises(formats.FormatError, match="is not a 'cosign container image signature'"):
        formats.simple_signing_digest(wrong.encode())
    with pytest.raises(formats.FormatError, match="not JSON"):
        formats.simple_signing_digest(b"\xff")


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_keys_verify_their_signatures_only(kind: str) -> None:
    key, other = Key.generate(kind), Key.generate(kind)
    payload = cosign.simple_signing_payload("registry.test/app", DIGEST)
    signature = key.sign(payload)
    assert formats.verify_key(key.pem, payload, signature)
    assert not formats.verify_key(other.pem, payload, signature)
    assert not formats.verify_key(key.pem, payload + b" ", signature)


def test_prehashed_signature_of_a_manifest_digest() -> None:
    key = Key.generate()
    raw = bytes.fromhex(DIGEST.partition(":")[2])
    assert formats.verify_key(key.pem, raw, key.sign_digest(raw), prehashed=True)
    bundle = formats.parse_bundle(cosign.key_bundle(key, DIGEST), "bundle")
    assert bundle.message_digest == DIGEST
    assert not bundle.certificate


def test_envelope_signature_covers_the_pae() -> None:
    key = Key.generate()
    body = cosign.statement(DIGEST, formats.SLSA_V1, {})
    envelope = formats.envelope_of(cosign.envelope(key, body), "att")
    assert formats.envelope_verifies(key.pem, envelope)
    forged = formats.Envelope(envelope.payload_type, body.replace(b"ab", b"cd"), envelope.signatures)
    assert not formats.envelope_verifies(key.pem, forged)
    doc = formats.statement(envelope, "att")
    assert formats.names_digest(doc, DIGEST)
    assert not formats.names_digest(doc, OTHER)


BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"


@pytest.mark.parametrize("make", [cosign.slsa_v1, cosign.slsa_v02], ids=["v1", "v0.2"])
@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (ProvenanceRule(source_repository="^https://github.com/org/app$"), None),
        (ProvenanceRule(builder_id="^https://github.com/slsa-framework/"), None),
        (ProvenanceRule(ref="^refs/heads/main$"), None),
        (
            ProvenanceRule(source_repository="^https://github.com/other/app$"),
            "provenance sourceRepository 'https://github.com/org/app' does not match '^https://github.com/other/app$'",
        ),
        (ProvenanceRule(ref="^refs/tags/"), "provenance ref 'refs/heads/main' does not match '^refs/tags/'"),
    ],
)
def test_provenance_rule(make: object, rule: ProvenanceRule, problem: str | None) -> None:
    predicate = make(BUILDER, "https://github.com/org/app", "refs/heads/main")  # type: ignore[operator]
    kind = formats.SLSA_V1 if make is cosign.slsa_v1 else formats.SLSA_V02
    doc = json.loads(cosign.statement(DIGEST, kind, predicate))
    assert formats.provenance_problem(doc, rule) == problem


def test_provenance_of_another_predicate_is_refused() -> None:
    doc = json.loads(cosign.statement(DIGEST, "https://spdx.dev/Document", {}))
    assert formats.provenance_problem(doc, ProvenanceRule(ref="x")) == (
        "predicate 'https://spdx.dev/Document' is not SLSA provenance"
    )


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


@pytest.mark.parametrize(
    ("identity", "matches"),
    [
        (Identity(GITHUB, subject=WORKFLOW), True),
        (Identity(GITHUB, subject_regexp=r"^https://github\.com/org/"), True),
        (Identity(GITHUB, subject_regexp=r"^https://github\.com/evil/"), False),
        (Identity("https://accounts.google.com", subject=WORKFLOW), False),
        (Identity(GITHUB, subject=WORKFLOW + "x"), False),
    ],
)
def test_identity_of_a_fulcio_certificate(sigstore: PrivateSigstore, identity: Identity, matches: bool) -> None:
    cert = sigstore.certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), WORKFLOW, GITHUB)
    assert certificate_issuer(cert) == GITHUB
    problem = identity_problem(cert, (identity,))
    assert (problem is None) is matches
    if not matches:
        assert problem == f"the certificate's identity ({WORKFLOW}, issuer {GITHUB}) is not one the policy trusts"


def test_email_subjects(sigstore: PrivateSigstore) -> None:
    cert = sigstore.certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), "dev@example.com", GITHUB)
    assert identity_problem(cert, (Identity(GITHUB, subject="dev@example.com"),)) is None


def test_legacy_keyless_signature_is_reported_not_verifiable(sigstore: PrivateSigstore, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    cert = sigstore.certificate(ec.generate_private_key(ec.SECP256R1()).public_key(), WORKFLOW, GITHUB)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    rule = VerifyRule(identities=(Identity(GITHUB, subject=WORKFLOW),), trusted_root=sigstore.trusted_root())
    checker = KeylessChecker.for_rule(rule, None)
    ok, why = checker.legacy(formats.Signed("sha256-x.sig layer 0", "simple-signing", certificate=pem))
    assert not ok
    assert "no inclusion proof in its Rekor bundle" in why
    wrong = VerifyRule(identities=(Identity(GITHUB, subject="someone"),), trusted_root=sigstore.trusted_root())
    ok, why = KeylessChecker.for_rule(wrong, None).legacy(formats.Signed("s", "simple-signing", certificate=pem))
    assert not ok and "is not one the policy trusts" in why


# --- the loader --------------------------------------------------------------------------------


def native(verify: str) -> str:
    return (
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n"
        f"  image: registry.test/app\n  policy: {{semver: {{range: '*'}}}}\n  verify:\n{verify}"
    )


def errors_of(root: Path, text: str) -> list[str]:
    (root / "policy.yaml").write_text(text, encoding="utf-8")
    policies = load_policies(root)
    return [str(e) for e in policies.errors]


def test_verify_loads_keys_from_the_repository(tmp_path: Path) -> None:
    key = Key.generate()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cosign.pub").write_text(key.pem)
    verify = (
        "    publicKeys:\n      - file: keys/cosign.pub\n      - secretRef: {name: cosign}\n"
        "    identities:\n      - {issuer: 'https://issuer.test', subjectRegExp: '^dev@'}\n"
        "    provenance: {sourceRepository: '^https://github.com/org/app$'}\n    mode: warn\n"
    )
    assert errors_of(tmp_path, native(verify)) == []
    (policy,) = load_policies(tmp_path)
    rule = policy.verify
    assert rule is not None
    assert rule.keys[0].pem == key.pem
    assert rule.keys[1].secret == "cosign" and rule.keys[1].key == "cosign.pub"
    assert rule.identities == (Identity("https://issuer.test", None, "^dev@"),)
    assert rule.provenance == ProvenanceRule(source_repository="^https://github.com/org/app$")
    assert rule.mode is VerifyMode.WARN


def test_key_files_never_leave_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "outside.pub").write_text(Key.generate().pem)
    os.symlink(tmp_path / "outside.pub", root / "link.pub")
    (root / "bad.pub").write_text("not a key")
    verify = "    publicKeys:\n      - file: link.pub\n      - file: missing.pub\n      - file: bad.pub\n"
    assert errors_of(root, native(verify)) == [
        "policy.yaml:10:15: [spec.verify.publicKeys[0].file] 'link.pub' leads outside the config repository "
        "(a symlink?); keep the file inside it",
        "policy.yaml:11:15: [spec.verify.publicKeys[1].file] 'missing.pub' does not exist in the config repository",
        "policy.yaml:12:15: [spec.verify.publicKeys[2].file] not a PEM public key (cosign.pub: "
        "'-----BEGIN PUBLIC KEY-----', SubjectPublicKeyInfo)",
    ]
    assert "app" in load_policies(root).refused


def test_key_paths_and_inline_keys_are_checked_by_the_schema(tmp_path: Path) -> None:
    verify = "    publicKeys:\n      - file: ../outside.pub\n      - file: /etc/cosign.pub\n      - pem: nope\n"
    assert errors_of(tmp_path, native(verify)) == [
        "policy.yaml:10:15: [spec.verify.publicKeys[0].file] '../outside.pub' must be a path inside the config "
        "repository (relative, no '..')",
        "policy.yaml:11:15: [spec.verify.publicKeys[1].file] '/etc/cosign.pub' must be a path inside the config "
        "repository (relative, no '..')",
        "policy.yaml:12:14: [spec.verify.publicKeys[2].pem] not a PEM public key (cosign.pub: "
        "'-----BEGIN PUBLIC KEY-----', SubjectPublicKeyInfo)",
    ]


@pytest.mark.parametrize(
    ("verify", "error"),
    [
        ("    mode: warn\n", "policy.yaml:8:3: [spec.verify] set publicKeys, identities or both"),
        (
            "    identities: [{issuer: x, subject: a, subjectRegExp: b}]\n",
            "[spec.verify.identities[0]] set exactly one of subject, subjectRegExp",
        ),
        ("    identities: [{issuer: x, subjectRegExp: '(?=x)'}]\n", "[spec.verify.identities[0].subjectRegExp]"),
        ("    publicKeys: [{pem: a, file: b}]\n", "[spec.verify.publicKeys[0]"),
        (
            "    publicKeys: [{secretRef: {name: k}}]\n    trustedRoot: root.json\n",
            "[spec.verify] trustedRoot is only read for keyless identities",
        ),
        ("    publicKeys: [{secretRef: {name: k}}]\n    mode: audit\n", "[spec.verify.mode]"),
        ("    publicKeys: [{secretRef: {name: k}}]\n    provenance: {}\n", "[spec.verify.provenance] set at least one"),
    ],
)
def test_verify_is_validated_when_it_loads(tmp_path: Path, verify: str, error: str) -> None:
    errors = errors_of(tmp_path, native(verify))
    assert any(error in e for e in errors), errors


def flux(annotation: str) -> str:
    return (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: apps}\n"
        "spec: {image: registry.test/app, interval: 5m}\n---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\n"
        f"  annotations:\n    automator.dev/verify: |\n{annotation}"
        "spec:\n  imageRepositoryRef: {name: app}\n  policy: {semver: {range: '*'}}\n"
    )


def test_flux_annotation_form(tmp_path: Path) -> None:
    key = Key.generate()
    (tmp_path / "cosign.pub").write_text(key.pem)
    assert errors_of(tmp_path, flux("      publicKeys: [{file: cosign.pub}]\n      mode: warn\n")) == []
    (policy,) = load_policies(tmp_path)
    assert policy.verify is not None
    assert policy.verify.keys[0].pem == key.pem
    assert policy.verify.mode is VerifyMode.WARN
    assert policy.verify.field == "annotation automator.dev/verify"


def test_flux_annotation_errors_name_the_annotation(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, flux("      publicKeys: [{file: ../cosign.pub}]\n"))
    assert errors == [
        "policy.yaml:12:27: [metadata.annotations.automator.dev/verify] annotation automator.dev/verify: "
        "[publicKeys[0].file] '../cosign.pub' must be a path inside the config repository (relative, no '..')"
    ]
    assert "apps:app" in load_policies(tmp_path).refused


def test_schema_has_the_verify_field() -> None:
    from automator.policy.schema import policy_schema

    defs = policy_schema()["$defs"]
    assert set(defs["VerifySpec"]["properties"]) == {
        "provider",
        "publicKeys",
        "identities",
        "trustedRoot",
        "provenance",
        "mode",
    }
