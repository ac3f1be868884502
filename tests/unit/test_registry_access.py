"""What the ImageRepository fields the registry edge acts on do when they cannot be honoured.

``provider``, ``certSecretRef`` and ``serviceAccountName`` are checked when the registry is
opened for a cycle: a policy whose field cannot work fails its scan with an error naming the
policy's file:line, the field and what to do; the other policies are untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from automator.policy.loader import load_policies
from automator.policy.model import Policy
from automator.registry.access import PROVIDER_HELPERS, RegistryAccess, open_registry
from tests.servers.registry_pki import LocalCA


def flux(root: Path, name: str, image: str, repo_spec: str = "") -> None:
    """An ImageRepository + ImagePolicy pair named ``name`` in ``<root>/<name>.yaml``."""
    (root / f"{name}.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        f"spec:\n  image: {image}\n  interval: 5m\n{repo_spec}"
        "---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        f"spec:\n  imageRepositoryRef:\n    name: {name}\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )


def loaded(root: Path) -> dict[str, Policy]:
    policies = load_policies(root)
    assert policies.errors == ()
    return {p.short_name: p for p in policies.policies}


async def failures(root: Path, access: RegistryAccess | None = None) -> dict[str, str]:
    """open_registry's per-policy failures, by short name, as their messages."""
    registry, failed = open_registry(loaded(root).values(), access or RegistryAccess())
    async with registry:
        pass
    return {name.rsplit(":", 1)[-1]: str(err) for name, err in failed.items()}


# --- provider ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "binary"),
    [("aws", "docker-credential-ecr-login"), ("azure", "docker-credential-acr-env"), ("gcp", "docker-credential-gcr")],
)
async def test_a_provider_without_its_helper_fails_naming_the_field_and_the_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str, binary: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    repo = tmp_path / "repo"
    repo.mkdir()
    flux(repo, "cloud", "registry.example.com/team/app", f"  provider: {provider}\n")
    flux(repo, "plain", "registry.example.com/team/other")
    failed = await failures(repo)
    assert set(failed) == {"cloud"}
    message = failed["cloud"]
    assert str(loaded(repo)["cloud"].source) in message  # cloud.yaml:<line>
    assert "spec.provider" in message and repr(provider) in message
    assert f"{binary} is not on PATH" in message and "install" in message
    assert f"docker-credential-{PROVIDER_HELPERS[provider]}" == binary


def install_helper(bin_dir: Path, binary: str) -> None:
    """A credential helper that knows no login (``docker-credential-<name> get`` exits 1)."""
    bin_dir.mkdir()
    (bin_dir / binary).write_text("#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n")
    (bin_dir / binary).chmod(0o755)


async def test_an_installed_provider_helper_is_no_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_helper(tmp_path / "bin", "docker-credential-gcr")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    flux(tmp_path, "cloud", "europe-docker.pkg.dev/project/app", "  provider: gcp\n")
    assert await failures(tmp_path) == {}


# --- serviceAccountName -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "advice"),
    [("", "name it in spec.secretRef instead"), ("  provider: azure\n", "remove it")],
    ids=["pull-secrets", "cloud-identity"],
)
async def test_a_service_account_fails_saying_what_to_do_instead(tmp_path: Path, provider: str, advice: str) -> None:
    flux(tmp_path, "sa", "registry.example.com/team/app", f"  serviceAccountName: image-puller\n{provider}")
    flux(tmp_path, "plain", "registry.example.com/team/other")
    failed = await failures(tmp_path, RegistryAccess(credentials_dir=tmp_path))
    assert set(failed) == {"sa"}
    message = failed["sa"]
    assert str(loaded(tmp_path)["sa"].source) in message
    assert "spec.serviceAccountName" in message and "'image-puller'" in message
    assert "cluster access" in message and advice in message
    assert "spec.secretRef" in message and "--credentials-dir" in message


# --- certSecretRef ------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, bytes]:
    ca = LocalCA.create(tmp_path / "pki")
    client = ca.issue("client", client=True)
    paths = {"ca.crt": ca.cert_path, "tls.crt": client.cert_path, "tls.key": client.key_path}
    files = {key: path.read_bytes() for key, path in paths.items()}
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    files["encrypted.key"] = client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return files


def mount(directory: Path, name: str, files: dict[str, bytes]) -> None:
    (directory / name).mkdir(parents=True)
    for key, content in files.items():
        (directory / name / key).write_bytes(content)


async def test_cert_secret_without_credentials_dir(tmp_path: Path) -> None:
    flux(tmp_path, "tls", "registry.example.com/team/app", "  certSecretRef:\n    name: registry-tls\n")
    failed = await failures(tmp_path)
    assert set(failed) == {"tls"}
    assert str(loaded(tmp_path)["tls"].source) in failed["tls"]
    assert "spec.certSecretRef" in failed["tls"] and "'registry-tls'" in failed["tls"]
    assert "--credentials-dir" in failed["tls"]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({}, "not found"),
        ({"ca.crt": None}, "not a PEM"),
        ({"tls.crt": "tls.crt"}, "tls.key"),
        ({"tls.key": "tls.key"}, "tls.crt"),
        ({"tls.crt": "tls.crt", "tls.key": "ca.crt"}, "tls.key"),
        ({"tls.crt": "tls.crt", "tls.key": "encrypted.key"}, "unencrypted"),
        ({"other": "ca.crt"}, "ca.crt"),
    ],
    ids=[
        "no-directory",
        "garbage-ca",
        "cert-without-key",
        "key-without-cert",
        "key-is-not-a-key",
        "encrypted-key",
        "no-known-key",
    ],
)
async def test_cert_secret_problems_name_the_policy_and_the_field(
    tmp_path: Path, tls_files: dict[str, bytes], files: dict[str, str | None], says: str
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    if files:
        mount(creds, "registry-tls", {k: b"garbage\n" if v is None else tls_files[v] for k, v in files.items()})
    repo = tmp_path / "repo"
    repo.mkdir()
    flux(repo, "tls", "registry.example.com/team/app", "  certSecretRef:\n    name: registry-tls\n")
    flux(repo, "plain", "registry.example.com/team/other")
    failed = await failures(repo, RegistryAccess(credentials_dir=creds))
    assert set(failed) == {"tls"}
    assert str(loaded(repo)["tls"].source) in failed["tls"]
    assert "spec.certSecretRef" in failed["tls"] and says in failed["tls"]


@pytest.mark.parametrize(
    "keys",
    [("ca.crt", "tls.crt", "tls.key"), ("ca.crt",), ("tls.crt", "tls.key"), ("caFile", "certFile", "keyFile")],
)
async def test_cert_secret_with_flux_keys_loads(
    tmp_path: Path, tls_files: dict[str, bytes], keys: tuple[str, ...]
) -> None:
    legacy = {"caFile": "ca.crt", "certFile": "tls.crt", "keyFile": "tls.key"}
    creds = tmp_path / "creds"
    mount(creds, "registry-tls", {k: tls_files[legacy.get(k, k)] for k in keys})
    repo = tmp_path / "repo"
    repo.mkdir()
    flux(repo, "tls", "registry.example.com/team/app", "  certSecretRef:\n    name: registry-tls\n")
    assert await failures(repo, RegistryAccess(credentials_dir=creds)) == {}


# --- one repository, one set of access settings ---------------------------------------------------


async def test_policies_sharing_a_repository_with_different_access_both_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository is listed once per cycle: two logins for it cannot both hold, so neither is guessed."""
    install_helper(tmp_path / "bin", "docker-credential-ecr-login")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    flux(tmp_path, "cloud", "registry.example.com/team/app", "  provider: aws\n")
    flux(tmp_path, "plain", "registry.example.com/team/app")
    flux(tmp_path, "alone", "registry.example.com/team/alone")
    failed = await failures(tmp_path)
    assert set(failed) == {"cloud", "plain"}
    assert "flux-system:plain" in failed["cloud"] and "flux-system:cloud" in failed["plain"]
    assert "spec.provider" in failed["cloud"]
