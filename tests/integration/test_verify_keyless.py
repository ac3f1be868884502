"""Keyless signatures verified offline against a private Sigstore made in the test.

tests/servers/cosign.py's :class:`PrivateSigstore` plays Fulcio (a CA issuing a ten-minute
certificate with the OIDC issuer extensions and an SAN), the CT log (an embedded precertificate
SCT) and Rekor (inclusion promise, and a signed checkpoint over a one-entry tree); its
``trusted_root.json`` lives in the config repository, named by ``spec.verify.trustedRoot``.
sigstore-python's ``Verifier`` checks the bundle against it; the identity rule is automator's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from automator.policy import load_policies
from automator.registry import RegistryClient, RegistryConfig, RegistrySettings, RetryPolicy, StaticCredentials
from automator.scan import ScanResult, scan_all
from automator.verify import Verifier
from tests.servers import cosign
from tests.servers.cosign import PrivateSigstore
from tests.servers.registry import RunningRegistry
from tests.servers.registry_push import RegistryHTTP

FAST = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02)
GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


async def scan_keyless(
    registry: RunningRegistry, root: Path, image: str, identity: str, trusted_root: str
) -> ScanResult:
    (root / "sigstore").mkdir(exist_ok=True)
    (root / "sigstore" / "trusted_root.json").write_text(trusted_root, encoding="utf-8")
    (root / "policy.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n"
        f"  image: {image}\n  insecure: true\n  policy: {{semver: {{range: '*'}}}}\n  verify:\n"
        f"    trustedRoot: sigstore/trusted_root.json\n    identities:\n{identity}",
        encoding="utf-8",
    )
    policies = load_policies(root)
    assert policies.ok, [str(e) for e in policies.errors]
    settings = RegistrySettings(registries={registry.host: RegistryConfig(insecure=True, retry=FAST)})
    async with RegistryClient(settings, StaticCredentials({})) as client:
        (result,) = await scan_all(client, policies.policies, verifier=Verifier())
    assert result.error is None, result.error
    return result


def signed_pair(registry: RunningRegistry, sigstore: PrivateSigstore, subject: str, issuer: str) -> str:
    """1.0.0 signed by the workflow; 1.1.0 signed by ``subject`` from ``issuer``. Returns the repo."""
    repo = f"verify/keyless-{uuid.uuid4().hex[:8]}"
    http = RegistryHTTP(registry.base_url)
    for tag, (who, by) in (("1.0.0", (WORKFLOW, GITHUB)), ("1.1.0", (subject, issuer))):
        pushed = registry.push(repo, tag)
        bundle = sigstore.bundle(who, by, pushed.digest)
        cosign.sign_bundle_referrer(http, repo, (pushed.digest, pushed.media_type, 0), bundle)
    return repo


async def test_keyless_bundle_verifies_offline(
    registry: RunningRegistry, sigstore: PrivateSigstore, tmp_path: Path
) -> None:
    repo = signed_pair(registry, sigstore, WORKFLOW, GITHUB)
    identity = f"      - issuer: {GITHUB}\n        subject: {WORKFLOW}\n"
    result = await scan_keyless(registry, tmp_path, registry.image(repo), identity, sigstore.trusted_root())
    assert result.choice is not None
    assert result.choice.tag == "1.1.0", result.choice
    assert result.choice.verified.startswith(f"signed by {WORKFLOW} ({GITHUB};")


async def test_subject_regexp_matches(registry: RunningRegistry, sigstore: PrivateSigstore, tmp_path: Path) -> None:
    repo = signed_pair(registry, sigstore, WORKFLOW, GITHUB)
    identity = f"      - issuer: {GITHUB}\n        subjectRegExp: '^https://github\\.com/org/app/'\n"
    result = await scan_keyless(registry, tmp_path, registry.image(repo), identity, sigstore.trusted_root())
    assert result.choice is not None and result.choice.tag == "1.1.0", result.choice


@pytest.mark.parametrize(
    ("subject", "issuer"),
    [
        ("https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main", GITHUB),
        (WORKFLOW, "https://evil.test"),
    ],
    ids=["subject", "issuer"],
)
async def test_identity_mismatch_is_skipped(
    registry: RunningRegistry, sigstore: PrivateSigstore, tmp_path: Path, subject: str, issuer: str
) -> None:
    repo = signed_pair(registry, sigstore, subject, issuer)
    identity = f"      - issuer: {GITHUB}\n        subject: {WORKFLOW}\n"
    result = await scan_keyless(registry, tmp_path, registry.image(repo), identity, sigstore.trusted_root())
    choice = result.choice
    assert choice is not None
    assert choice.tag == "1.0.0"
    assert [s.tag for s in choice.skipped] == ["1.1.0"]
    assert (
        f"the certificate's identity ({subject}, issuer {issuer}) is not one the policy trusts"
        in choice.skipped[0].reason
    )


async def test_another_sigstore_is_not_trusted(
    registry: RunningRegistry, sigstore: PrivateSigstore, tmp_path: Path
) -> None:
    repo = signed_pair(registry, sigstore, WORKFLOW, GITHUB)
    identity = f"      - issuer: {GITHUB}\n        subject: {WORKFLOW}\n"
    result = await scan_keyless(registry, tmp_path, registry.image(repo), identity, PrivateSigstore().trusted_root())
    choice = result.choice
    assert choice is not None
    assert choice.tag is None
    assert [s.tag for s in choice.skipped] == ["1.1.0", "1.0.0"]
    assert "keyless bundle does not verify against sigstore/trusted_root.json" in choice.skipped[0].reason
