"""Credential loading: Docker config.json, credential helpers, Kubernetes pull secrets."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from automator.errors import CredentialError
from automator.registry.credentials import (
    ChainCredentials,
    Credential,
    DockerConfigCredentials,
    StaticCredentials,
    run_credential_helper,
    server_url,
)

SECRET = "s3cr3t-Pa55word"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``docker-credential-test`` on PATH that answers like a real helper and logs its input."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-test"
    script.write_text(
        f"""#!/usr/bin/env python3
import json, sys
action = sys.argv[1]
server = sys.stdin.read().strip()
with open({str(tmp_path / "helper.log")!r}, "a") as log:
    log.write(action + " " + server + "\\n")
answers = {{
    "helper.example.com": {{"Username": "helper-user", "Secret": "helper-{SECRET}"}},
    "https://index.docker.io/v1/": {{"Username": "hub-user", "Secret": "hub-{SECRET}"}},
    "token.example.com": {{"Username": "<token>", "Secret": "identity-{SECRET}"}},
}}
if server == "broken.example.com":
    print("helper exploded: keychain locked", file=sys.stderr)
    sys.exit(3)
if server == "garbage.example.com":
    print("not json")
    sys.exit(0)
if server not in answers:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps(dict(answers[server], ServerURL=server)))
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


async def test_auths_with_base64_auth_and_username_password() -> None:
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64(f"hubber:{SECRET}")},
            "ghcr.io": {"username": "octo", "password": SECRET},
            "http://LocalHost:5000/v2/": {"auth": b64("local:pa:ss:word")},
            "quay.io": {},
        }
    }
    creds = DockerConfigCredentials(config)
    hub = await creds.get("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hubber", SECRET)
    assert await creds.get("registry-1.docker.io") == hub
    assert await creds.get("index.docker.io") == hub
    gh = await creds.get("ghcr.io")
    assert gh is not None and (gh.username, gh.password) == ("octo", SECRET)
    local = await creds.get("localhost:5000")
    assert local is not None and local.password == "pa:ss:word"  # only the first colon splits
    assert await creds.get("quay.io") is None
    assert await creds.get("example.com") is None


async def test_exact_host_key_wins_over_url_key() -> None:
    config = {
        "auths": {
            "https://ghcr.io/v1/": {"username": "url", "password": "p1"},
            "ghcr.io": {"username": "exact", "password": "p2"},
        }
    }
    cred = await DockerConfigCredentials(config).get("ghcr.io")
    assert cred is not None and cred.username == "exact"


async def test_identity_token_and_registry_token() -> None:
    config = {
        "auths": {
            "acr.example.io": {"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": SECRET},
            "bearer.example.io": {"registrytoken": SECRET},
        }
    }
    creds = DockerConfigCredentials(config)
    acr = await creds.get("acr.example.io")
    assert acr is not None and acr.identity_token == SECRET
    bearer = await creds.get("bearer.example.io")
    assert bearer is not None and bearer.registry_token == SECRET


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"auth": "!!!not-base64"}, "not valid base64"),
        ({"auth": b64("no-colon-here")}, "username:password"),
        ({"auth": 42}, "must be a string"),
        ({"username": "u", "password": 7}, "'password' must be a string"),
        ("just a string", "expected an object"),
    ],
)
def test_bad_auth_entries_name_the_entry_never_the_value(entry: object, message: str) -> None:
    with pytest.raises(CredentialError, match=message) as info:
        DockerConfigCredentials({"auths": {"r.example.io": entry}}, source="/home/u/.docker/config.json")
    assert "r.example.io" in str(info.value)
    assert "/home/u/.docker/config.json" in str(info.value)
    assert "not-base64" not in str(info.value)


def test_bad_json_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"auths": {"x": {"password": "' + SECRET + '"')
    with pytest.raises(CredentialError, match="not valid JSON") as info:
        DockerConfigCredentials.from_file(path)
    assert SECRET not in str(info.value)
    with pytest.raises(CredentialError, match="cannot read docker config"):
        DockerConfigCredentials.from_file(tmp_path / "missing.json")


async def test_default_reads_docker_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert await DockerConfigCredentials.default().get("ghcr.io") is None  # absent file: anonymous
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": b64("a:b")}}}))
    cred = await DockerConfigCredentials.default().get("ghcr.io")
    assert cred is not None and cred.username == "a"


async def test_cred_helpers_and_store(helper_dir: Path) -> None:
    config = {
        "auths": {"fallback.example.com": {"auth": b64("file-user:file-pass")}},
        "credHelpers": {"helper.example.com": "test", "token.example.com": "test"},
        "credsStore": "test",
    }
    creds = DockerConfigCredentials(config)
    helper = await creds.get("helper.example.com")
    assert helper is not None and (helper.username, helper.password) == ("helper-user", f"helper-{SECRET}")
    token = await creds.get("token.example.com")
    assert token is not None and token.identity_token == f"identity-{SECRET}" and token.username is None
    hub = await creds.get("index.docker.io")  # through credsStore, asked with Docker Hub's server URL
    assert hub is not None and hub.username == "hub-user"
    fallback = await creds.get("fallback.example.com")  # the store has nothing: the auths entry answers
    assert fallback is not None and fallback.username == "file-user"
    assert await creds.get("nothing.example.com") is None
    await creds.get("helper.example.com")  # cached: the helper is not asked again
    log = (helper_dir / "helper.log").read_text().splitlines()
    assert log.count("get helper.example.com") == 1
    assert "get https://index.docker.io/v1/" in log
    assert SECRET not in repr(helper) and SECRET not in str(token) and SECRET not in repr(creds)


async def test_helper_failures_are_credential_errors(helper_dir: Path) -> None:
    with pytest.raises(CredentialError, match=r"exited with status 3: helper exploded"):
        await run_credential_helper("test", "broken.example.com")
    with pytest.raises(CredentialError, match="did not print a JSON object"):
        await run_credential_helper("test", "garbage.example.com")
    with pytest.raises(CredentialError, match="docker-credential-nosuch is not on PATH"):
        await run_credential_helper("nosuch", "x.example.com")


def _secret_manifest(doc: dict[str, object], *, string_data: bool = False) -> dict[str, object]:
    payload = json.dumps(doc)
    body: dict[str, object] = (
        {"stringData": {".dockerconfigjson": payload}} if string_data else {"data": {".dockerconfigjson": b64(payload)}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "apps"},
        "type": "kubernetes.io/dockerconfigjson",
        **body,
    }


@pytest.mark.parametrize("string_data", [False, True])
async def test_kubernetes_pull_secret_dict(string_data: bool) -> None:
    secret = _secret_manifest({"auths": {"ghcr.io": {"auth": b64(f"bot:{SECRET}")}}}, string_data=string_data)
    creds = DockerConfigCredentials.from_kubernetes_secret(secret)
    cred = await creds.get("ghcr.io")
    assert cred is not None and cred.password == SECRET and cred.source.startswith("Secret regcred")


async def test_kubernetes_pull_secret_yaml_file_and_legacy_dockercfg(tmp_path: Path) -> None:
    doc = _secret_manifest({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": SECRET}}})
    data = doc["data"]
    assert isinstance(data, dict)
    path = tmp_path / "secret.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n"
        f"type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {data['.dockerconfigjson']}\n"
    )
    cred = await DockerConfigCredentials.from_kubernetes_secret(path).get("docker.io")
    assert cred is not None and cred.username == "u"
    legacy = {
        "type": "kubernetes.io/dockercfg",
        "data": {".dockercfg": b64(json.dumps({"quay.io": {"auth": b64("q:w")}}))},
    }
    cred = await DockerConfigCredentials.from_kubernetes_secret(legacy).get("quay.io")
    assert cred is not None and cred.username == "q"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"type": "Opaque", "data": {}}, "kubectl create secret docker-registry"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, r"has no data\['.dockerconfigjson'\]"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "%%%"}}, "not valid base64"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{")}}, "not valid JSON"),
    ],
)
def test_bad_pull_secrets(secret: dict[str, object], message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        DockerConfigCredentials.from_kubernetes_secret(secret)


def test_pull_secret_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="cannot read pull secret file"):
        DockerConfigCredentials.from_kubernetes_secret(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(CredentialError, match="not valid YAML"):
        DockerConfigCredentials.from_kubernetes_secret(bad)


def test_credential_repr_hides_every_secret() -> None:
    cred = Credential(username="u", password=SECRET, identity_token=SECRET + "i", registry_token=SECRET + "r")
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert SECRET not in text
        assert "username='u'" in text
    assert set(cred.secrets) == {SECRET, SECRET + "i", SECRET + "r"}


async def test_static_and_chain() -> None:
    first = StaticCredentials({"ghcr.io": Credential("a", "1")})
    second = StaticCredentials([("ghcr.io", Credential("b", "2")), ("index.docker.io", Credential("c", "3"))])
    chain = ChainCredentials(first, second)
    assert (await chain.get("ghcr.io")) == Credential("a", "1")
    hub = await chain.get("docker.io")
    assert hub is not None and hub.username == "c"
    assert await chain.get("quay.io") is None


def test_server_url_for_docker_hub() -> None:
    assert server_url("registry-1.docker.io") == "https://index.docker.io/v1/"
    assert server_url("ghcr.io") == "ghcr.io"
