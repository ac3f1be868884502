"""Retries, limits, caps and redirects against the fault server (a registry that misbehaves)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from automator.errors import (
    RegistryAuthError,
    RegistryResponseError,
    RegistryUnavailable,
    RepositoryNotFound,
)
from automator.refs import ImageRef, parse_reference
from automator.registry import Credential, RegistryClient, RegistryConfig, RetryPolicy, StaticCredentials, Timeouts
from tests.servers.faults import CONFIG_DIGEST, MANIFEST_DIGEST, NEEDAUTH_LOGIN, FaultServer

PASSWORD = "fault-pass-123"


def make_client(server: FaultServer, **kwargs: object) -> RegistryClient:
    kwargs.setdefault("retry", RetryPolicy(retries=3, base_delay=0.01, max_delay=0.05, max_retry_after=5.0))
    kwargs.setdefault("timeouts", Timeouts(connect=2.0, read=2.0))
    creds = StaticCredentials({server.host: Credential("fault-user", PASSWORD, source="test")})
    return RegistryClient(RegistryConfig(insecure=True, **kwargs), creds)  # type: ignore[arg-type]


def image(server: FaultServer, fault: str) -> ImageRef:
    return parse_reference(f"{server.host}/{fault}/{uuid.uuid4().hex[:8]}")


@pytest.fixture
def servers(fault_servers: tuple[FaultServer, FaultServer]) -> tuple[FaultServer, FaultServer]:
    return fault_servers


async def test_429_honours_retry_after_seconds(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main) as reg:
        started = time.monotonic()
        listing = await reg.list_tags(image(main, "ratelimit1"))
        waited = time.monotonic() - started
    assert listing.tags == ("1.0.0", "1.1.0")
    assert waited >= 0.9  # Retry-After: 1, not the 10 ms backoff


async def test_429_retry_after_http_date_and_cap(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main) as reg:
        assert (await reg.list_tags(image(main, "ratedate1"))).tags == ("1.0.0", "1.1.0")
    capped = RetryPolicy(retries=2, base_delay=0.01, max_retry_after=0.05)
    async with make_client(main, retry=capped) as reg:
        started = time.monotonic()
        assert (await reg.list_tags(image(main, "ratelimit2"))).tags == ("1.0.0", "1.1.0")
        assert time.monotonic() - started < 1.5  # two Retry-After: 1 (2 s in all) capped at 50 ms each


async def test_429_that_outlasts_the_retries(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "ratelimit99")
    capped = RetryPolicy(retries=2, base_delay=0.01, max_retry_after=0.01)
    async with make_client(main, retry=capped) as reg:
        with pytest.raises(RegistryUnavailable, match=r"HTTP 429 after 3 attempts.*try again later") as info:
            await reg.list_tags(target)
    assert info.value.retryable
    assert f"registry {main.host}, repository {target.path}" in str(info.value)
    assert len(main.requests_to(f"/v2/{target.path}/")) == 3


async def test_5xx_then_success(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "flaky2")
    async with make_client(main) as reg:
        assert (await reg.list_tags(target)).tags == ("1.0.0", "1.1.0")
    assert len(main.requests_to(f"/v2/{target.path}/")) == 3


async def test_5xx_forever_is_unavailable_with_the_registry_words(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main, retry=RetryPolicy(retries=2, base_delay=0.01)) as reg:
        with pytest.raises(
            RegistryUnavailable, match=r"HTTP 503 after 3 attempts \(UNAVAILABLE: down for maintenance\)"
        ):
            await reg.list_tags(image(main, "down"))


async def test_slow_response_times_out(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "slow")
    async with make_client(main, timeouts=Timeouts(read=0.2), retry=RetryPolicy(retries=1, base_delay=0.01)) as reg:
        with pytest.raises(RegistryUnavailable, match=r"ReadTimeout after 2 attempts.*raise the timeouts") as info:
            await reg.list_tags(target)
    assert info.value.__cause__ is not None  # the httpx exception, chained
    assert len(main.requests_to(f"/v2/{target.path}/")) == 2


async def test_truncated_body_is_retried_then_unavailable(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main, retry=RetryPolicy(retries=1, base_delay=0.01)) as reg:
        with pytest.raises(RegistryUnavailable, match="RemoteProtocolError after 2 attempts"):
            await reg.list_tags(image(main, "truncated"))


@pytest.mark.parametrize("fault", ["badjson", "garbage"])
async def test_broken_json_is_a_response_error(servers: tuple[FaultServer, FaultServer], fault: str) -> None:
    main, _ = servers
    async with make_client(main) as reg:
        with pytest.raises(RegistryResponseError, match="the tag list is not valid JSON"):
            await reg.list_tags(image(main, fault))


@pytest.mark.parametrize("fault", ["huge", "hugechunked"])
async def test_body_over_the_cap(servers: tuple[FaultServer, FaultServer], fault: str) -> None:
    main, _ = servers
    async with make_client(main, max_response_bytes=1 << 20) as reg:
        with pytest.raises(RegistryResponseError, match=r"exceeds the cap of 1048576.*raise max_response_bytes"):
            await reg.list_tags(image(main, fault))
    async with make_client(main, max_response_bytes=8 << 20) as reg:
        assert len((await reg.list_tags(image(main, fault))).tags) > 200_000


async def test_404_and_403(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main) as reg:
        with pytest.raises(RepositoryNotFound, match="NAME_UNKNOWN"):
            await reg.list_tags(image(main, "notfound"))
        with pytest.raises(RegistryAuthError, match=r"HTTP 403\) \(DENIED") as info:
            await reg.list_tags(image(main, "denied"))
    assert PASSWORD not in str(info.value)


async def test_redirect_to_another_host_drops_authorization(servers: tuple[FaultServer, FaultServer]) -> None:
    main, other = servers
    target = image(main, "redirect")
    async with make_client(main) as reg:
        assert (await reg.list_tags(target)).tags == ("1.0.0", "1.1.0")
    first = main.requests_to(f"/v2/{target.path}/")
    followed = other.requests_to(f"/v2/{target.path}/")
    assert first[0].headers["authorization"].startswith("Basic ")
    assert len(followed) == 1 and "authorization" not in followed[0].headers


async def test_blob_redirect_to_storage_keeps_query_and_drops_authorization(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    main, other = servers

    async with make_client(main) as reg:
        created = await reg.created(image(main, "blobredirect"), "1.0")
    assert created == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    storage = other.requests_to(f"/storage/{CONFIG_DIGEST}")
    assert storage and storage[-1].query == "X-Amz-Signature=abc"
    assert all("authorization" not in s.headers for s in storage)


async def test_manifest_digest_from_body_when_header_missing(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "nodigest")
    async with make_client(main) as reg:
        info = await reg.manifest(target, "1.0")
    assert info.digest == MANIFEST_DIGEST
    methods = [s.method for s in main.requests_to(f"/v2/{target.path}/")]
    assert methods == ["HEAD", "GET"]


async def test_one_ping_per_client(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    before = len([s for s in main.seen if s.route == "/v2/"])
    async with make_client(main) as reg:
        await asyncio.gather(*(reg.list_tags(image(main, "ok")) for _ in range(20)))
    assert len([s for s in main.seen if s.route == "/v2/"]) - before == 1


async def test_concurrency_limit_per_registry(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main, max_concurrency=3) as reg:
        await reg.list_tags(image(main, "ok"))  # ping first, so only list requests overlap
        await asyncio.gather(*(reg.list_tags(image(main, "pause")) for _ in range(12)))
    assert main.max_inflight["pause"] == 3


async def test_requests_per_second_limit(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    async with make_client(main, requests_per_second=20.0) as reg:
        started = time.monotonic()
        await asyncio.gather(*(reg.list_tags(image(main, "ok")) for _ in range(10)))
        elapsed = time.monotonic() - started
    assert elapsed >= 10 / 20.0  # 11 request starts (ping + 10) spaced 50 ms apart


async def test_open_v2_but_protected_repository(servers: tuple[FaultServer, FaultServer]) -> None:
    _, other = servers
    target = image(other, "needauth")
    creds = StaticCredentials({other.host: Credential(*NEEDAUTH_LOGIN, source="test")})
    async with RegistryClient(RegistryConfig(insecure=True), creds) as reg:
        assert (await reg.list_tags(target)).tags == ("1.0.0", "1.1.0")
        assert (await reg.list_tags(image(other, "needauth"))).tags == ("1.0.0", "1.1.0")
    tries = other.requests_to(f"/v2/{target.path}/")
    assert ["authorization" in s.headers for s in tries] == [False, True]
    async with RegistryClient(RegistryConfig(insecure=True)) as reg:
        with pytest.raises(RegistryAuthError, match="requires a username and password"):
            await reg.list_tags(image(other, "needauth"))
