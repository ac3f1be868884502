"""Image references: normalisation and the errors users see for invalid ones."""

from __future__ import annotations

import pytest

from automator.errors import ConfigError, InvalidReference
from automator.refs import ImageRef, parse_reference, same_repository

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("library/nginx", "docker.io", "library/nginx", None, None),
        ("bitnami/redis:7.2.4-debian-12-r1", "docker.io", "bitnami/redis", "7.2.4-debian-12-r1", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/user/app", "docker.io", "user/app", None, None),
        ("registry-1.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
        ("ghcr.io/fluxcd/flux-cli:v2.2.3", "ghcr.io", "fluxcd/flux-cli", "v2.2.3", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:1", "localhost:5000", "team/app", "1", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
        ("[::1]:5000/app:2.0", "[::1]:5000", "app", "2.0", None),
        ("[2001:db8::1]/ns/app", "[2001:db8::1]", "ns/app", None, None),
        ("Registry.Example.com/app", "Registry.Example.com", "app", None, None),
        ("quay.io/a/b/c/d", "quay.io", "a/b/c/d", None, None),
        ("my-registry.example.com:443/a_b/c__d/e-f.g", "my-registry.example.com:443", "a_b/c__d/e-f.g", None, None),
        (f"nginx@{DIGEST}", "docker.io", "library/nginx", None, DIGEST),
        (f"nginx:1.25@{DIGEST}", "docker.io", "library/nginx", "1.25", DIGEST),
        (f"host:5000/app:v1@{DIGEST}", "host:5000", "app", "v1", DIGEST),
        ("app:" + "x" * 128, "docker.io", "library/app", "x" * 128, None),
    ],
)
def test_parse_normalises(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ImageRef.parse(text) == ref


@pytest.mark.parametrize(
    ("text", "api_host", "repository", "familiar"),
    [
        ("nginx", "registry-1.docker.io", "docker.io/library/nginx", "nginx"),
        ("index.docker.io/user/app", "registry-1.docker.io", "docker.io/user/app", "user/app"),
        ("localhost:5000/app", "localhost:5000", "localhost:5000/app", "localhost:5000/app"),
        ("[::1]:5000/app", "[::1]:5000", "[::1]:5000/app", "[::1]:5000/app"),
    ],
)
def test_derived_names(text: str, api_host: str, repository: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert (ref.api_host, ref.repository, ref.familiar) == (api_host, repository, familiar)


def test_str_round_trips_tag_and_digest() -> None:
    ref = parse_reference(f"ghcr.io/o/app:1.2@{DIGEST}")
    assert str(ref) == f"ghcr.io/o/app:1.2@{DIGEST}"
    assert parse_reference(str(ref)) == ref
    assert str(ref.bare()) == "ghcr.io/o/app"
    assert str(ref.with_tag("2.0")) == "ghcr.io/o/app:2.0"


def test_same_repository_across_hub_aliases() -> None:
    assert same_repository("nginx", "index.docker.io/library/nginx:1")
    assert not same_repository("nginx", "ghcr.io/library/nginx")


def test_name_limit_is_255_characters() -> None:
    host = "r.io/"
    ok = host + "a" * (255 - len(host))
    assert parse_reference(ok).path == "a" * (255 - len(host))
    with pytest.raises(InvalidReference, match="256 characters, at most 255"):
        parse_reference(ok + "a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (" nginx", "whitespace"),
        ("nginx:", "invalid tag ''"),
        ("nginx:-bad", "invalid tag '-bad'"),
        ("nginx:" + "x" * 129, "at most 128"),
        ("nginx:a b", "invalid tag"),
        ("Nginx", "must be lower case"),
        ("ghcr.io/Org/app", "must be lower case"),
        ("nginx@sha256:xyz", "invalid digest"),
        ("nginx@md5", "invalid digest"),
        ("-host.io/app", "invalid registry host"),
        ("host_name.io/app", "invalid registry host"),
        ("ghcr.io/", "invalid repository path ''"),
        ("ghcr.io/a//b", "invalid repository path"),
        ("ghcr.io/a/b/", "invalid repository path"),
        ("ghcr.io/a..b", "invalid repository path"),
        ("app/", "invalid repository path"),
    ],
)
def test_invalid_references_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message) as info:
        parse_reference(text)
    assert isinstance(info.value, ConfigError)
    if text.strip():
        assert repr(text[:40])[1:-1] in str(info.value)
