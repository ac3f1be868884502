"""Retries, limits, caps, redirects and deadlines against the fault servers (registries that misbehave)."""

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
from automator.registry import (
    Credential,
    Cycle,
    RegistryClient,
    RegistryConfig,
    RegistrySettings,
    RetryPolicy,
    StaticCredentials,
    TagListing,
    Timeouts,
)
from tests.servers.faults import (
    CONFIG_DIGEST,
    MANIFEST_DIGEST,
    NEEDAUTH_LOGIN,
    BlackholeServer,
    FaultServer,
    RefusedPort,
)

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
        with pytest.raises(RegistryResponseError, match=r"exceeds the cap of 1,048,576.*--max-response-size"):
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


# --- deadlines: per request, per retry chain, per scan; a dead host is not waited on twice -----------------------


def dead_client(host: str, **kwargs: object) -> RegistryClient:
    """A client with short real timeouts (loopback), so a dead host costs little wall time."""
    kwargs.setdefault("retry", RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02))
    kwargs.setdefault("timeouts", Timeouts(connect=1.0, read=0.25))
    settings = RegistrySettings(default=RegistryConfig(insecure=True, **kwargs))  # type: ignore[arg-type]
    return RegistryClient(settings)


async def list_many(reg: RegistryClient, images: list[ImageRef]) -> list[TagListing | BaseException]:
    # a guard, not an assertion: a client that never gives up fails here instead of hanging the run
    return await asyncio.wait_for(asyncio.gather(*(reg.list_tags(i) for i in images), return_exceptions=True), 30)


def not_retried(results: list[TagListing | BaseException]) -> list[BaseException]:
    return [r for r in results if isinstance(r, RegistryUnavailable) and "not retried again this cycle" in str(r)]


async def test_trickling_body_hits_the_request_deadline() -> None:
    # 1 byte per 50 ms: every read succeeds well inside the 2 s read timeout, forever
    server = FaultServer(trickle_interval=0.05, trickle_bytes=4000, lifetime=60)
    server.start()
    try:
        target = image(server, "trickle")
        config = RegistryConfig(
            insecure=True, timeouts=Timeouts(read=2.0, request=0.5), retry=RetryPolicy(retries=0, base_delay=0.01)
        )
        async with RegistryClient(config) as reg:
            with pytest.raises(RegistryUnavailable, match=r"no complete answer within 0\.5 s \(timeouts\.request\)"):
                await asyncio.wait_for(reg.list_tags(target), 30)
        assert len(server.requests_to(f"/v2/{target.path}/")) == 1
        assert server.trickle_closed.wait(10)  # the client hung up; the trickle did not run on
    finally:
        server.stop()


async def test_many_repositories_on_a_blackholed_registry_cost_one_timeout() -> None:
    with BlackholeServer(lifetime=60) as hole:
        images = [parse_reference(f"{hole.host}/team/app-{i:02d}") for i in range(64)]
        async with dead_client(hole.host) as reg:
            results = await list_many(reg, images)
        assert all(isinstance(r, RegistryUnavailable) for r in results)
        assert len(not_retried(results)) >= 63  # all but the one that found the host dead
        assert hole.accepted <= 16 + 1  # concurrency + retries, not 64 x 2


async def test_many_repositories_on_a_refused_registry_fail_fast() -> None:
    with RefusedPort() as port:
        images = [parse_reference(f"{port.host}/team/app-{i:02d}") for i in range(64)]
        async with dead_client(port.host, retry=RetryPolicy(retries=2, base_delay=0.01)) as reg:
            results = await list_many(reg, images)
        assert all(isinstance(r, RegistryUnavailable) for r in results)
        assert "ConnectError after 3 attempts" in str(next(r for r in results if r not in not_retried(results)))
        assert len(not_retried(results)) == 63
        assert reg.requests == 3  # one ping, retried twice; nothing after the host was found dead


async def test_a_host_that_stops_answering_after_the_ping_is_probed_by_one_request() -> None:
    # /v2/ answers, every tag list hangs: 16 requests are in flight when the first times out
    server = FaultServer(slow_seconds=30, lifetime=60)
    server.start()
    try:
        images = [image(server, "slow") for _ in range(64)]
        async with dead_client(server.host) as reg:
            results = await list_many(reg, images)
        assert all(isinstance(r, RegistryUnavailable) for r in results)
        assert len(not_retried(results)) >= 48  # the 48 never sent, at least
        assert len(server.requests_to("/v2/slow/")) <= 16 + 1  # those in flight, then one probe's retry
    finally:
        server.stop()


async def test_a_dead_host_is_remembered_per_host_and_only_for_network_failures(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    main, other = servers
    creds = StaticCredentials({main.host: Credential("fault-user", PASSWORD, source="test")})
    config = RegistryConfig(
        insecure=True, timeouts=Timeouts(connect=1.0, read=0.25), retry=RetryPolicy(retries=0, base_delay=0.01)
    )
    with BlackholeServer(lifetime=60) as hole:
        async with RegistryClient(config, creds) as reg:
            # answers that are errors say the host is alive: it is asked again
            with pytest.raises(RepositoryNotFound):
                await reg.list_tags(image(main, "notfound"))
            with pytest.raises(RegistryAuthError):
                await reg.list_tags(image(main, "denied"))
            with pytest.raises(RegistryUnavailable, match="HTTP 503"):
                await reg.list_tags(image(main, "down"))
            with pytest.raises(RegistryAuthError, match=r"HTTP 401"):
                await reg.list_tags(image(main, "needauth"))  # wants another login than main's
            # the dead host beside the healthy ones
            dead = [parse_reference(f"{hole.host}/team/app-{i}") for i in range(8)]
            healthy = [image(main, "ok") for _ in range(8)] + [image(other, "ok") for _ in range(8)]
            results = await list_many(reg, dead + healthy)
            assert all(isinstance(r, RegistryUnavailable) for r in results[:8])
            assert len(not_retried(results[:8])) == 7
            assert all(isinstance(r, TagListing) and r.tags == ("1.0.0", "1.1.0") for r in results[8:])
            with pytest.raises(RegistryUnavailable, match="not retried again this cycle"):
                await reg.list_tags(dead[0])
            assert (await reg.list_tags(image(other, "ok"))).tags == ("1.0.0", "1.1.0")
        assert hole.accepted == 1
    # a new client is a new cycle: the dead host is tried again
    with BlackholeServer(lifetime=60) as hole:
        async with RegistryClient(config) as reg:
            with pytest.raises(RegistryUnavailable, match=r"ReadTimeout after 1 attempts"):
                await reg.list_tags(parse_reference(f"{hole.host}/team/app"))


async def test_retries_stop_when_their_total_time_is_spent(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "ratelimit99")  # 429 with Retry-After: 1, forever
    retry = RetryPolicy(retries=10, base_delay=0.01, max_retry_after=5.0, max_elapsed=0.5)
    async with make_client(main, retry=retry) as reg:
        with pytest.raises(RegistryUnavailable, match=r"HTTP 429 after 1 attempts.*retry\.max_elapsed") as info:
            await asyncio.wait_for(reg.list_tags(target), 30)
    assert info.value.retryable
    assert len(main.requests_to(f"/v2/{target.path}/")) == 1  # waiting 1 s would overrun the 0.5 s budget


async def test_scan_deadline_fails_the_remaining_requests_fast(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    now = [1000.0]
    cycle = Cycle(clock=lambda: now[0])
    creds = StaticCredentials({main.host: Credential("fault-user", PASSWORD, source="test")})
    async with RegistryClient(RegistryConfig(insecure=True, scan_deadline=60.0), creds, cycle=cycle) as reg:
        assert (await reg.list_tags(image(main, "ok"))).tags == ("1.0.0", "1.1.0")
        now[0] += 61.0
        late = image(main, "ok")
        with pytest.raises(RegistryUnavailable, match=r"scan deadline of 60 s \(scan_deadline\) has passed") as info:
            await reg.list_tags(late)
    assert info.value.retryable
    assert main.requests_to(f"/v2/{late.path}/") == []  # never sent


async def test_scan_deadline_cuts_a_request_in_flight(servers: tuple[FaultServer, FaultServer]) -> None:
    main, _ = servers
    target = image(main, "slow")  # answers after 3 s; the read timeout would wait for it
    config = RegistryConfig(insecure=True, scan_deadline=0.5, timeouts=Timeouts(read=10.0), retry=RetryPolicy())
    creds = StaticCredentials({main.host: Credential("fault-user", PASSWORD, source="test")})
    async with RegistryClient(config, creds) as reg:
        with pytest.raises(RegistryUnavailable, match=r"cut off by the scan deadline of 0\.5 s"):
            await asyncio.wait_for(reg.list_tags(target), 30)
        with pytest.raises(RegistryUnavailable, match="has passed"):
            await reg.list_tags(image(main, "ok"))
    assert len(main.requests_to(f"/v2/{target.path}/")) == 1  # not retried past the deadline
