"""Header parsing the registry protocol depends on, and the retry arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automator.registry.client import _parse_created, _parse_platform, _platform_matches
from automator.registry.config import RegistryConfig, RegistrySettings, RetryPolicy, canonical_host
from automator.registry.headers import Challenge, parse_link_next, parse_retry_after, parse_www_authenticate
from automator.registry.limits import retry_delay


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/nginx:pull"',
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/nginx:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
        (
            'basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
            [("basic", {"realm": "https://123.dkr.ecr.us-east-1.amazonaws.com/", "service": "ecr.amazonaws.com"})],
        ),
        (
            "Bearer realm=https://ghcr.io/token, service=ghcr.io",
            [("bearer", {"realm": "https://ghcr.io/token", "service": "ghcr.io"})],
        ),
        (
            'Bearer realm="https://r.io/t",scope="repository:a/b:pull,push"',
            [("bearer", {"realm": "https://r.io/t", "scope": "repository:a/b:pull,push"})],
        ),
        (
            'Bearer realm="a \\"quoted\\" realm", error="insufficient_scope"',
            [("bearer", {"realm": 'a "quoted" realm', "error": "insufficient_scope"})],
        ),
        (
            'Basic realm="x", Bearer realm="https://t/", service="s"',
            [("basic", {"realm": "x"}), ("bearer", {"realm": "https://t/", "service": "s"})],
        ),
        ("Negotiate", [("negotiate", {})]),
        ("", []),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = parse_www_authenticate(header)
    assert [(c.scheme, dict(c.params)) for c in got] == expected


def test_challenges_over_several_headers_and_accessors() -> None:
    got = parse_www_authenticate(['Basic realm="b"', 'Bearer realm="https://t/",service="svc",scope="s"'])
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert (got[1].realm, got[1].service, got[1].scope) == ("https://t/", "svc", "s")
    assert Challenge("basic").realm is None


BASE = "https://r.example/v2/app/tags/list?n=100"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('</v2/app/tags/list?n=100&last=b>; rel="next"', "https://r.example/v2/app/tags/list?n=100&last=b"),
        (
            "<https://r.example/v2/app/tags/list?last=b&n=100>; rel=next",
            "https://r.example/v2/app/tags/list?last=b&n=100",
        ),
        ('<?cursor=abc%2Fd+e%3D%3D>; rel="next"', "https://r.example/v2/app/tags/list?cursor=abc%2Fd+e%3D%3D"),
        (
            '</v2/app/tags/list?c=1>; rel="prev", </v2/app/tags/list?c=3>; rel="next"',
            "https://r.example/v2/app/tags/list?c=3",
        ),
        ('</v2/app/tags/list?c=3>; title="x;y"; rel="last next"', "https://r.example/v2/app/tags/list?c=3"),
        ('</v2/app/tags/list?c=1>; rel="prev"', None),
        ("garbage", None),
        ("", None),
    ],
)
def test_parse_link_next(header: str, expected: str | None) -> None:
    assert parse_link_next(header, BASE) == expected


def test_link_over_several_headers() -> None:
    assert parse_link_next(['</a>; rel="prev"', '</b>; rel="next"'], BASE) == "https://r.example/b"


NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Mon, 01 Jan 2024 12:00:30 GMT", 30.0),
        ("Mon, 01 Jan 2024 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-3", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_delay_is_full_jitter_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=3.0, max_retry_after=20.0)
    assert [retry_delay(n, policy, rand=lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay(4, policy, rand=lambda: 0.0) == 0.0
    assert retry_delay(0, policy, retry_after=12.0) == 12.0
    assert retry_delay(0, policy, retry_after=3600.0) == 20.0
    for n in range(6):
        assert 0.0 <= retry_delay(n, policy) <= 3.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T07:08:09.123456789Z", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T09:08:09.5+02:00", datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)),
        ("2024-05-06T07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (12345, None),
        (None, None),
    ],
)
def test_parse_created(value: object, expected: datetime | None) -> None:
    assert _parse_created(value) == expected


@pytest.mark.parametrize(
    ("platform", "entry", "matches"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}, True),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}, True),
        ("linux/arm64/v8", {"os": "linux", "architecture": "arm64"}, True),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v6"}, False),
        ("linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v7"}, True),
        ("linux/amd64", {"os": "windows", "architecture": "amd64"}, False),
        ("linux/amd64", {"os": "unknown", "architecture": "unknown"}, False),
    ],
)
def test_platform_matching(platform: str, entry: dict[str, str], matches: bool) -> None:
    assert _platform_matches({"platform": entry}, *_parse_platform(platform)) is matches


@pytest.mark.parametrize("bad", ["linux", "linux/", "/amd64", "a/b/c/d", ""])
def test_bad_platform_is_a_config_error(bad: str) -> None:
    from automator.errors import ConfigError

    with pytest.raises(ConfigError, match="os/arch"):
        _parse_platform(bad)


def test_settings_fold_hub_aliases_and_fall_back_to_default() -> None:
    hub = RegistryConfig(max_concurrency=4)
    local = RegistryConfig(insecure=True)
    settings = RegistrySettings(registries={"index.docker.io": hub, "LocalHost:5000": local})
    assert settings.for_host("registry-1.docker.io") is hub
    assert settings.for_host("docker.io") is hub
    assert settings.for_host("localhost:5000") is local
    assert settings.for_host("ghcr.io") is settings.default
    assert canonical_host("https://index.docker.io/v1/") == "docker.io"
    more = settings.with_host("ghcr.io", local)
    assert more.for_host("ghcr.io") is local and settings.for_host("ghcr.io") is settings.default
    assert hash(more) != hash(settings) or more != settings
    assert RegistrySettings(registries={"a.io": local}) == RegistrySettings(registries={"A.io": local})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_concurrency": 0},
        {"requests_per_second": -1},
        {"page_size": 0},
        {"max_pages": 0},
        {"max_response_bytes": 10},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RegistryConfig(**kwargs)  # type: ignore[arg-type]


def test_retry_policy_rejects_negative() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


_PARAM_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=40)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(realm=_PARAM_VALUES, service=_PARAM_VALUES, scope=_PARAM_VALUES)
def test_bearer_challenge_round_trips_any_quoted_values(realm: str, service: str, scope: str) -> None:
    header = f"Bearer realm={_quote(realm)},service={_quote(service)}, scope={_quote(scope)}"
    (challenge,) = parse_www_authenticate(header)
    assert (challenge.scheme, challenge.realm, challenge.service, challenge.scope) == ("bearer", realm, service, scope)


@given(
    query=st.text(alphabet="abcXYZ019-._~%+/=&;:", min_size=1, max_size=40),
    other=st.sampled_from(["prev", "last", "first"]),
)
def test_next_link_keeps_the_query_verbatim(query: str, other: str) -> None:
    header = f'</v2/a/tags/list?x=1>; rel="{other}", </v2/a/tags/list?{query}>; rel="next"'
    assert parse_link_next(header, BASE) == f"https://r.example/v2/a/tags/list?{query}"
