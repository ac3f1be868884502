"""Signature verification against Debian's docker-registry: images signed as cosign lays them out.

Keys are made in each test; signatures go up with tests/servers/cosign.py in both schemes (the
legacy ``.sig``/``.att`` tags, and v0.3 bundle referrers, found through the referrers tag schema on
distribution 2.8 or through the referrers API of tests/servers/referrers.py). Policies are loaded
from files, as a user writes them, and scanned with the real client.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from automator.errors import SignatureError
from automator.policy import PolicySet, load_policies
from automator.registry import RegistryClient, RegistryConfig, RegistrySettings, RetryPolicy, StaticCredentials
from automator.scan import ScanResult, scan_all
from automator.verify import Verifier
from tests.servers import cosign
from tests.servers.cosign import Key
from tests.servers.referrers import ReferrersProxy, referrers_registry
from tests.servers.registry import RunningRegistry
from tests.servers.registry_push import RegistryHTTP

__all__ = ["referrers_registry"]  # the fixture, used below

FAST = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02)
REPO = "https://github.com/org/app"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"


def unique(prefix: str) -> str:
    return f"verify/{prefix}-{uuid.uuid4().hex[:8]}"


def write_policy(root: Path, image: str, verify: str, *, choice: str = "semver: {range: '*'}", extra: str = "") -> None:
    (root / "policy.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n"
        f"  image: {image}\n  insecure: true\n  policy: {{{choice}}}\n{extra}  verify:\n{verify}",
        encoding="utf-8",
    )


def key_files(root: Path, *keys: Key) -> str:
    (root / "keys").mkdir(exist_ok=True)
    lines = []
    for i, key in enumerate(keys):
        (root / "keys" / f"k{i}.pub").write_text(key.pem, encoding="utf-8")
        lines.append(f"      - file: keys/k{i}.pub\n")
    return "    publicKeys:\n" + "".join(lines)


def load(root: Path) -> PolicySet:
    policies = load_policies(root)
    assert policies.ok, [str(e) for e in policies.errors]
    return policies


async def scan(host: str, policies: PolicySet, verifier: Verifier | None = None) -> ScanResult:
    settings = RegistrySettings(registries={host: RegistryConfig(insecure=True, retry=FAST)})
    async with RegistryClient(settings, StaticCredentials({})) as client:
        (result,) = await scan_all(client, policies.policies, verifier=verifier or Verifier())
    assert result.error is None, result.error
    assert result.choice is not None
    return result


def push(registry: RunningRegistry, repo: str, *tags: str) -> dict[str, str]:
    return {tag: registry.push(repo, tag).digest for tag in tags}


async def test_legacy_signature_verifies_and_newest_is_chosen(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("valid"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["1.1.0"], key, reference=registry.image(repo))
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    verifier = Verifier()
    result = await scan(registry.host, load(tmp_path), verifier)
    assert result.choice is not None
    assert result.choice.tag == "1.1.0"
    assert result.choice.skipped == ()
    assert "signed with spec.verify.publicKeys[0] (keys/k0.pub)" in result.choice.verified
    assert verifier.stats.snapshot()["verified"] == 1


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
async def test_rsa_and_ed25519_keys_verify(registry: RunningRegistry, tmp_path: Path, kind: str) -> None:
    repo, key = unique(kind), Key.generate(kind)
    digests = push(registry, repo, "2.0.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["2.0.0"], key)
    (tmp_path / "policy.yaml").write_text("")
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None and result.choice.tag == "2.0.0", result.choice


async def test_wrong_key_skips_to_the_next_signed_tag(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, trusted, other = unique("wrongkey"), Key.generate(), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["1.0.0"], trusted)
    cosign.sign_legacy(http, repo, digests["1.1.0"], other)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, trusted))
    verifier = Verifier()
    result = await scan(registry.host, load(tmp_path), verifier)
    choice = result.choice
    assert choice is not None
    assert choice.tag == "1.0.0"
    assert [s.tag for s in choice.skipped] == ["1.1.0"]
    assert choice.skipped[0].digest == digests["1.1.0"]
    assert "does not verify with spec.verify.publicKeys[0]" in choice.skipped[0].reason
    assert "skipped 1.1.0: no signature verified" in choice.reason
    assert verifier.stats.snapshot()["rejected"] == 1


async def test_payload_for_another_digest_is_refused(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("replay"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["1.0.0"], key)
    # a genuine signature of 1.0.0's payload, copied under 1.1.0's .sig tag
    cosign.sign_legacy(http, repo, digests["1.1.0"], key, payload_digest=digests["1.0.0"])
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "1.0.0"
    assert f"the signed payload is for {digests['1.0.0']}, not this image" in result.choice.skipped[0].reason


async def test_unsigned_newest_falls_to_the_next_signed(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("unsigned"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0", "1.2.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.1.0"], key)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    verifier = Verifier()
    result = await scan(registry.host, load(tmp_path), verifier)
    assert result.choice is not None
    assert result.choice.tag == "1.1.0"
    assert [(s.tag, s.reason) for s in result.choice.skipped] == [
        ("1.2.0", "no signature (neither a .sig tag nor a referrer)")
    ]
    assert verifier.stats.snapshot()["unsigned"] == 1


async def test_a_signature_pushed_after_the_image_is_seen_by_the_next_scan(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    # CI pushes the image, then signs it: a scan in between must not remember "unsigned" for good
    repo, key = unique("signed-later"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.0.0"], key)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    verifier = Verifier()  # one per process: the service's cycles share it
    first = await scan(registry.host, load(tmp_path), verifier)
    assert first.choice is not None and first.choice.tag == "1.0.0"
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.1.0"], key)
    again = await scan(registry.host, load(tmp_path), verifier)
    assert again.choice is not None and again.choice.tag == "1.1.0"
    assert again.choice.skipped == ()


async def test_signature_tags_are_never_candidates(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("sigtags"), Key.generate()
    digests = push(registry, repo, "a-1", "a-2")
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["a-2"], key)
    body = cosign.statement(digests["a-2"], cosign.SLSA_V1, {})
    cosign.attest_legacy(http, repo, digests["a-2"], key, predicate_type=cosign.SLSA_V1, body=body)
    # alphabetical order would put 'sha256-...' after 'a-2'; the default exclusions are off
    write_policy(
        tmp_path,
        registry.image(repo),
        key_files(tmp_path, key),
        choice="alphabetical: {order: asc}",
        extra="  excludeDefaults: false\n",
    )
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "a-2"
    assert result.choice.seen == 4  # the .sig and .att tags were listed, and left out


async def test_bundle_in_the_referrers_tag_schema(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("bundle"), Key.generate()
    pushed = registry.push(repo, "3.0.0", platforms=["linux/amd64", "linux/arm64"])  # an index: its digest is signed
    http = RegistryHTTP(registry.base_url)
    cosign.sign_bundle_referrer(
        http, repo, (pushed.digest, pushed.media_type, 0), cosign.key_bundle(key, pushed.digest), tag_schema=True
    )
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "3.0.0", result.choice
    assert f"referrers tag {cosign.digest_tag(pushed.digest)}" in result.choice.verified


async def test_bundle_for_another_digest_is_refused(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("bundleother"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["1.0.0"], key)
    other = cosign.key_bundle(key, digests["1.0.0"])  # signs 1.0.0's manifest, listed for 1.1.0
    cosign.sign_bundle_referrer(http, repo, (digests["1.1.0"], cosign.OCI_MANIFEST, 0), other)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "1.0.0"
    assert f"the bundle signs {digests['1.0.0']}, not this image" in result.choice.skipped[0].reason


async def test_bundle_through_the_referrers_api(
    registry: RunningRegistry, referrers_registry: ReferrersProxy, tmp_path: Path
) -> None:
    repo, key = unique("api"), Key.generate()
    digests = push(registry, repo, "1.0.0")
    http = RegistryHTTP(registry.base_url)
    descriptor = cosign.sign_bundle_referrer(
        http,
        repo,
        (digests["1.0.0"], cosign.OCI_MANIFEST, 0),
        cosign.key_bundle(key, digests["1.0.0"]),
        tag_schema=False,
    )
    referrers_registry.referrers[(repo, digests["1.0.0"])] = [descriptor]
    write_policy(tmp_path, referrers_registry.image(repo), key_files(tmp_path, key))
    result = await scan(referrers_registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "1.0.0", result.choice
    assert f"referrers of {digests['1.0.0']}" in result.choice.verified
    assert referrers_registry.asked == [digests["1.0.0"]]


def _provenance_policy(tmp_path: Path, image: str, key: Key) -> None:
    rule = f"    provenance:\n      sourceRepository: '^{REPO}$'\n      ref: '^refs/(heads/main|tags/v.*)$'\n"
    write_policy(tmp_path, image, key_files(tmp_path, key) + rule)


@pytest.mark.parametrize("version", ["v1", "v0.2"])
async def test_provenance_from_the_configured_repository(
    registry: RunningRegistry, tmp_path: Path, version: str
) -> None:
    repo, key = unique("prov"), Key.generate()
    digests = push(registry, repo, "1.0.0")
    http = RegistryHTTP(registry.base_url)
    d = digests["1.0.0"]
    cosign.sign_legacy(http, repo, d, key)
    kind, predicate = (
        (cosign.SLSA_V1, cosign.slsa_v1(BUILDER, REPO, "refs/heads/main"))
        if version == "v1"
        else (cosign.SLSA_V02, cosign.slsa_v02(BUILDER, REPO, "refs/heads/main"))
    )
    cosign.attest_legacy(http, repo, d, key, predicate_type=kind, body=cosign.statement(d, kind, predicate))
    _provenance_policy(tmp_path, registry.image(repo), key)
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "1.0.0", result.choice
    assert "provenance verified" in result.choice.verified


async def test_provenance_from_another_repository_is_skipped(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("provother"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    http = RegistryHTTP(registry.base_url)
    for tag, source in (("1.0.0", REPO), ("1.1.0", "https://github.com/evil/app")):
        d = digests[tag]
        cosign.sign_legacy(http, repo, d, key)
        predicate = cosign.slsa_v1(BUILDER, source, "refs/heads/main")
        body = cosign.statement(d, cosign.SLSA_V1, predicate)
        cosign.attest_legacy(http, repo, d, key, predicate_type=cosign.SLSA_V1, body=body)
    _provenance_policy(tmp_path, registry.image(repo), key)
    result = await scan(registry.host, load(tmp_path))
    choice = result.choice
    assert choice is not None
    assert choice.tag == "1.0.0"
    assert [s.tag for s in choice.skipped] == ["1.1.0"]
    assert "provenance sourceRepository 'https://github.com/evil/app' does not match" in choice.skipped[0].reason


async def test_warn_mode_chooses_as_without_verification(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("warn"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.0.0"], key)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key) + "    mode: warn\n")
    result = await scan(registry.host, load(tmp_path))
    assert result.choice is not None
    assert result.choice.tag == "1.1.0"
    assert result.choice.skipped == ()
    assert "1.1.0: signature not verified, chosen anyway (spec.verify.mode warn): no signature" in result.choice.reason


async def test_verified_verdicts_are_kept_by_digest(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("cache"), Key.generate()
    digests = push(registry, repo, "1.0.0", "1.1.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.0.0"], key)
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    policies = load(tmp_path)
    verifier = Verifier()
    first = await scan(registry.host, policies, verifier)
    second = await scan(registry.host, policies, verifier)
    assert first.choice == second.choice
    # 1.0.0's verdict is kept; unsigned 1.1.0 is asked again (it may be signed since)
    assert verifier.stats.snapshot() == {"verified": 1, "rejected": 0, "unsigned": 2, "error": 0, "cached": 1}


async def test_at_most_max_candidates_are_verified(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("bounded"), Key.generate()
    push(registry, repo, "1.0.0", "1.1.0", "1.2.0", "1.3.0")
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    verifier = Verifier(max_candidates=2)
    result = await scan(registry.host, load(tmp_path), verifier)
    assert result.choice is not None
    assert result.choice.tag is None
    assert [s.tag for s in result.choice.skipped] == ["1.3.0", "1.2.0"]
    assert result.choice.reason.startswith("the 2 best candidates have no signature that verifies")
    assert verifier.stats.snapshot()["unsigned"] == 2


async def test_the_current_tag_is_kept_when_nothing_newer_verifies(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("current"), Key.generate()
    push(registry, repo, "1.0.0", "1.1.0")
    write_policy(tmp_path, registry.image(repo), key_files(tmp_path, key))
    policies = load(tmp_path)
    settings = RegistrySettings(registries={registry.host: RegistryConfig(insecure=True, retry=FAST)})
    async with RegistryClient(settings, StaticCredentials({})) as client:
        (result,) = await scan_all(client, policies.policies, current={"app": "1.0.0"}, verifier=Verifier())
    assert result.choice is not None
    assert result.choice.tag == "1.0.0"  # what the files hold: nothing is proposed
    assert [s.tag for s in result.choice.skipped] == ["1.1.0"]


async def test_key_from_a_mounted_secret(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key = unique("secret"), Key.generate()
    digests = push(registry, repo, "1.0.0")
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.0.0"], key)
    config, secrets = tmp_path / "repo", tmp_path / "secrets"
    config.mkdir()
    (secrets / "cosign").mkdir(parents=True)
    (secrets / "cosign" / "cosign.pub").write_text(key.pem, encoding="utf-8")
    write_policy(config, registry.image(repo), "    publicKeys:\n      - secretRef: {name: cosign}\n")
    result = await scan(registry.host, load(config), Verifier(secrets_dir=secrets))
    assert result.choice is not None
    assert result.choice.tag == "1.0.0"
    assert "signed with spec.verify.publicKeys[0] (Secret cosign, key cosign.pub)" in result.choice.verified


async def test_a_secret_not_mounted_fails_the_policy(registry: RunningRegistry, tmp_path: Path) -> None:
    repo = unique("nosecret")
    push(registry, repo, "1.0.0")
    write_policy(tmp_path, registry.image(repo), "    publicKeys:\n      - secretRef: {name: absent}\n")
    settings = RegistrySettings(registries={registry.host: RegistryConfig(insecure=True, retry=FAST)})
    async with RegistryClient(settings, StaticCredentials({})) as client:
        (result,) = await scan_all(client, load(tmp_path).policies, verifier=Verifier(secrets_dir=tmp_path / "none"))
    assert isinstance(result.error, SignatureError)
    assert "spec.verify.publicKeys[0] (Secret absent, key cosign.pub): cannot read" in str(result.error)
    assert "mount the Secret under --credentials-dir" in str(result.error)


async def test_a_registry_without_the_referrers_api_is_asked_once(
    registry: RunningRegistry, referrers_registry: ReferrersProxy, tmp_path: Path
) -> None:
    key = Key.generate()
    referrers_registry.api = False
    http = RegistryHTTP(registry.base_url)
    docs = []
    for i in range(5):
        repo = unique(f"noapi{i}")
        d = push(registry, repo, "1.0.0")["1.0.0"]
        cosign.sign_bundle_referrer(http, repo, (d, cosign.OCI_MANIFEST, 0), cosign.key_bundle(key, d))
        docs.append(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: app-{i}\nspec:\n  image: {referrers_registry.image(repo)}\n  insecure: true\n"
            "  policy: {semver: {range: '*'}}\n  verify:\n    publicKeys: [{file: keys/k0.pub}]\n"
        )
    key_files(tmp_path, key)
    (tmp_path / "policies.yaml").write_text("---\n".join(docs), encoding="utf-8")
    settings = RegistrySettings(registries={referrers_registry.host: RegistryConfig(insecure=True, retry=FAST)})
    async with RegistryClient(settings, StaticCredentials({})) as client:
        results = await scan_all(client, load(tmp_path).policies, verifier=Verifier())
    assert [r.choice.tag if r.choice else r.error for r in results] == ["1.0.0"] * 5
    assert all(r.choice is not None and "referrers tag sha256-" in r.choice.verified for r in results)
    assert len(referrers_registry.asked) == 1  # one 404 says the host has no API; the others wait for it
