"""The registry client against Debian's docker-registry (distribution 2.8): no auth, Basic, token, TLS."""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from automator.errors import (
    PlatformNotFound,
    RegistryAuthError,
    RegistryError,
    RegistryTLSError,
    RepositoryNotFound,
)
from automator.refs import ImageRef, parse_reference
from automator.registry import (
    Credential,
    DockerConfigCredentials,
    RegistryClient,
    RegistryConfig,
    RetryPolicy,
    StaticCredentials,
)
from automator.registry.client import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.servers.registry import RunningRegistry
from tests.servers.registry_push import RegistryHTTP

FAST = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02)
T1 = datetime(2023, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
T2 = datetime(2024, 6, 7, 8, 9, 10, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def config_for(reg: RunningRegistry, **kwargs: object) -> RegistryConfig:
    kwargs.setdefault("retry", FAST)
    return RegistryConfig(insecure=reg.insecure, ca_file=reg.ca_file, **kwargs)  # type: ignore[arg-type]


def login(reg: RunningRegistry, password: str | None = None) -> StaticCredentials:
    assert reg.auth is not None
    user, right = reg.auth
    return StaticCredentials({reg.host: Credential(user, password or right, source="test login")})


def ref(reg: RunningRegistry, repo: str) -> ImageRef:
    return parse_reference(reg.image(repo))


async def test_tags_manifests_and_build_times_without_auth(registry: RunningRegistry) -> None:
    repo = unique("plain")
    oci = registry.push(repo, "1.0.0", created=T1)
    registry.push(repo, "1.1.0", created=T2, docker_media_types=True)
    multi = registry.push(repo, "2.0.0", created=T2, platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"])
    image = ref(registry, repo)
    async with RegistryClient(config_for(registry)) as client:
        listing = await client.list_tags(image)
        assert sorted(listing.tags) == ["1.0.0", "1.1.0", "2.0.0"]
        assert listing.pages == 1 and listing.image == image.bare()

        info = await client.manifest(image, "1.0.0")
        assert (info.digest, info.media_type) == (oci.digest, OCI_MANIFEST)
        assert (await client.manifest(image, "1.1.0")).media_type == DOCKER_MANIFEST
        index = await client.manifest(image, "2.0.0")
        assert (index.digest, index.media_type) == (multi.digest, OCI_INDEX)
        assert (await client.manifest(image, oci.digest)).digest == oci.digest

        assert await client.created(image, "1.0.0") == T1
        assert await client.created(image, "1.1.0", "linux/amd64") == T2
        assert await client.created(image, "2.0.0") == T2
        assert await client.created(image, "2.0.0", "linux/arm/v7") == T2
        assert await client.created(image, multi.platforms["linux/arm64"]) == T2
        with pytest.raises(PlatformNotFound, match=r"no manifest for linux/s390x \(available: linux/amd64, linux/arm"):
            await client.created(image, "2.0.0", "linux/s390x")


async def test_many_tags_in_one_unsorted_page(registry: RunningRegistry) -> None:
    repo = unique("many")
    pushed = registry.push(repo, "base")
    http = RegistryHTTP(registry.base_url)
    manifest_body = http.request("GET", f"/v2/{repo}/manifests/base", headers={"Accept": OCI_MANIFEST})[2]
    tags = [f"1.{i}.0" for i in range(150)]
    for tag in tags:
        assert http.put_manifest(repo, tag, json.loads(manifest_body), OCI_MANIFEST) == pushed.digest
    async with RegistryClient(config_for(registry, page_size=20)) as client:
        listing = await client.list_tags(ref(registry, repo))
    # distribution 2.8 ignores n and answers every tag at once
    assert set(listing.tags) == {"base", *tags} and len(listing.tags) == 151
    assert listing.pages == 1


async def test_missing_repository_and_tag_say_where(registry: RunningRegistry) -> None:
    repo = unique("there")
    registry.push(repo, "1")
    async with RegistryClient(config_for(registry)) as client:
        with pytest.raises(RepositoryNotFound, match=rf"registry {registry.host}, repository nothere/x: list tags"):
            await client.list_tags(ref(registry, "nothere/x"))
        with pytest.raises(RepositoryNotFound, match=r"manifest 9\.9\.9.*MANIFEST_UNKNOWN"):
            await client.created(ref(registry, repo), "9.9.9")
        with pytest.raises(RepositoryNotFound, match="check the image name and tag"):
            await client.manifest(ref(registry, repo), "9.9.9")


async def test_plain_http_needs_insecure(registry: RunningRegistry) -> None:
    async with RegistryClient(RegistryConfig(retry=RetryPolicy(retries=0))) as client:
        with pytest.raises(RegistryError):
            await client.list_tags(ref(registry, "any/thing"))
    assert client.http_versions["HTTP/1.1"] == 0  # never spoke plain HTTP to it


async def test_basic_auth_pings_once_for_many_repositories(registry_htpasswd: RunningRegistry) -> None:
    repos = [unique("basic") for _ in range(5)]
    for repo in repos:
        registry_htpasswd.push(repo, "1.0")
    async with RegistryClient(config_for(registry_htpasswd), login(registry_htpasswd)) as client:
        for repo in repos:
            assert (await client.list_tags(ref(registry_htpasswd, repo))).tags == ("1.0",)
        assert await client.created(ref(registry_htpasswd, repos[0]), "1.0") is not None
    assert client.requests == 1 + len(repos) + 2  # one /v2/ ping; the lists; then manifest + config blob


async def test_basic_auth_refusals(registry_htpasswd: RunningRegistry) -> None:
    repo = unique("basic")
    registry_htpasswd.push(repo, "1.0")
    image = ref(registry_htpasswd, repo)
    async with RegistryClient(config_for(registry_htpasswd)) as client:
        with pytest.raises(RegistryAuthError, match="requires a username and password"):
            await client.list_tags(image)
    wrong = "definitely-wrong-password"
    async with RegistryClient(config_for(registry_htpasswd), login(registry_htpasswd, wrong)) as client:
        with pytest.raises(
            RegistryAuthError, match=r"access denied with the login from test login \(HTTP 401\)"
        ) as info:
            await client.list_tags(image)
    assert wrong not in str(info.value)


async def test_token_auth_with_password_caches_tokens_per_scope(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    repo = unique("private")
    registry_token.push(repo, "1.0", created=T1)
    registry_token.push(repo, "1.1", created=T2)
    image = ref(registry_token, repo)
    scope = f"repository:{repo}:pull"
    async with RegistryClient(config_for(registry_token), login(registry_token)) as client:
        assert sorted((await client.list_tags(image)).tags) == ["1.0", "1.1"]
        await client.list_tags(image)
        await client.manifest(image, "1.0")
        assert await client.created(image, "1.1") == T2
    asked = [r for r in server.requests if scope in r.scopes]
    assert len(asked) == 1
    assert (asked[0].method, asked[0].grant, asked[0].account) == ("GET", "basic", "alice")


async def test_token_auth_anonymous_public_and_private(registry_token: RunningRegistry) -> None:
    public, private = unique("public/app"), unique("private")
    registry_token.push(public, "3.0")
    registry_token.push(private, "3.0")
    async with RegistryClient(config_for(registry_token)) as client:
        assert (await client.list_tags(ref(registry_token, public))).tags == ("3.0",)
        with pytest.raises(RegistryAuthError, match=rf"repository {private}: list tags: access denied anonymously"):
            await client.list_tags(ref(registry_token, private))


async def test_token_auth_identity_token_uses_oauth2_refresh_grant(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    repo = unique("identity")
    registry_token.push(repo, "7")
    refresh = next(iter(server.refresh_tokens))
    creds = StaticCredentials({registry_token.host: Credential(identity_token=refresh, source="acr login")})
    async with RegistryClient(config_for(registry_token), creds) as client:
        assert (await client.list_tags(ref(registry_token, repo))).tags == ("7",)
    asked = [r for r in server.requests if f"repository:{repo}:pull" in r.scopes]
    assert [(r.method, r.grant, r.account) for r in asked] == [("POST", "refresh_token", "alice")]

    bad = StaticCredentials({registry_token.host: Credential(identity_token="rt-revoked-0000", source="old login")})
    async with RegistryClient(config_for(registry_token), bad) as client:
        with pytest.raises(RegistryAuthError, match=r"refused the credentials from old login \(HTTP 401\)") as info:
            await client.list_tags(ref(registry_token, repo))
    assert "rt-revoked-0000" not in str(info.value)


async def test_token_auth_wrong_password(registry_token: RunningRegistry) -> None:
    repo = unique("private")
    registry_token.push(repo, "1")
    async with RegistryClient(config_for(registry_token), login(registry_token, "nope-nope")) as client:
        with pytest.raises(RegistryAuthError, match="check the login for this registry") as info:
            await client.list_tags(ref(registry_token, repo))
    assert "nope-nope" not in str(info.value)


async def test_credential_helper_login_against_token_registry(
    registry_token: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry_token.auth is not None
    user, password = registry_token.auth
    helper = tmp_path / "docker-credential-fixture"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'if [ "$server" = "{registry_token.host}" ]; then\n'
        f'  printf \'{{"ServerURL":"%s","Username":"{user}","Secret":"{password}"}}\' "$server"\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    repo = unique("helper")
    registry_token.push(repo, "5.0")
    creds = DockerConfigCredentials({"credHelpers": {registry_token.host: "fixture"}})
    async with RegistryClient(config_for(registry_token), creds) as client:
        assert (await client.list_tags(ref(registry_token, repo))).tags == ("5.0",)


async def test_tls_with_ca_file_speaks_http2(registry_tls: RunningRegistry) -> None:
    repo = unique("tls")
    registry_tls.push(repo, "1.0", created=T1)
    async with RegistryClient(config_for(registry_tls)) as client:
        assert (await client.list_tags(ref(registry_tls, repo))).tags == ("1.0",)
        assert await client.created(ref(registry_tls, repo), "1.0") == T1
    assert client.http_versions["HTTP/2"] >= 3 and client.http_versions["HTTP/1.1"] == 0


async def test_tls_without_the_ca_fails_fast_and_says_what_to_do(registry_tls: RunningRegistry) -> None:
    async with RegistryClient(RegistryConfig(retry=RetryPolicy(retries=3, base_delay=5.0))) as client:
        with pytest.raises(RegistryTLSError, match="set ca_file"):
            await client.list_tags(ref(registry_tls, "any/thing"))
    assert client.requests == 1  # a certificate problem is not retried


async def test_missing_ca_file_is_a_config_error(registry_tls: RunningRegistry, tmp_path: Path) -> None:
    from automator.errors import ConfigError

    async with RegistryClient(RegistryConfig(ca_file=str(tmp_path / "none.pem"))) as client:
        with pytest.raises(ConfigError, match="cannot load CA file"):
            await client.list_tags(ref(registry_tls, "any/thing"))


async def test_expired_token_is_fetched_again(registry_token: RunningRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    import automator.registry.client as client_module

    server = registry_token.token_server
    assert server is not None
    repo = unique("expiry")
    registry_token.push(repo, "1")
    now = [1000.0]
    monkeypatch.setattr(client_module, "_clock", lambda: now[0])
    scope = f"repository:{repo}:pull"
    async with RegistryClient(config_for(registry_token), login(registry_token)) as client:
        await client.list_tags(ref(registry_token, repo))
        now[0] += server.expires_in - 60  # still valid
        await client.list_tags(ref(registry_token, repo))
        assert len([r for r in server.requests if scope in r.scopes]) == 1
        now[0] += 60  # past expires_in (less the early-renewal margin)
        await client.list_tags(ref(registry_token, repo))
    assert len([r for r in server.requests if scope in r.scopes]) == 2


async def test_secrets_never_reach_logs_or_errors(
    registry_token: RunningRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    assert registry_token.auth is not None
    user, password = registry_token.auth
    repo = unique("private")
    registry_token.push(repo, "1")
    caplog.set_level("DEBUG")
    creds = StaticCredentials({registry_token.host: Credential(user, password, source="test login")})
    async with RegistryClient(config_for(registry_token), creds) as client:
        await client.list_tags(ref(registry_token, repo))
        with pytest.raises(RepositoryNotFound) as info:
            await client.manifest(ref(registry_token, repo), "missing")
        text = " ".join([caplog.text, str(info.value), repr(client), repr(creds)])
    assert password not in text
    assert "Bearer ey" not in text
