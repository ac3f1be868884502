"""tags/list paging against our paging server: Link forms, opaque cursors, loops, bounds."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from automator.errors import RegistryResponseError, RepositoryNotFound
from automator.refs import parse_reference
from automator.registry import RegistryClient, RegistryConfig, RetryPolicy
from tests.servers.paging import TAGS, PagingServer, _cursor

FAST = RetryPolicy(retries=0)


def client(**kwargs: object) -> RegistryClient:
    return RegistryClient(RegistryConfig(insecure=True, retry=FAST, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["rel", "abs", "opaque"])
async def test_follows_next_links_to_the_end(paging_server: PagingServer, kind: str) -> None:
    repo = f"{kind}/app-{kind}"
    async with client(page_size=10) as reg:
        listing = await reg.list_tags(parse_reference(f"{paging_server.host}/{repo}"))
    assert listing.tags == TAGS
    assert listing.pages == 3
    seen = paging_server.requests_to(f"/v2/{repo}/")
    assert len(seen) == 3
    assert all(parse_qs(s.query)["n"] == ["10"] for s in seen)


async def test_opaque_cursor_is_sent_back_byte_for_byte(paging_server: PagingServer) -> None:
    async with client(page_size=10) as reg:
        await reg.list_tags(parse_reference(f"{paging_server.host}/opaque/cursor"))
    queries = [s.query for s in paging_server.requests_to("/v2/opaque/cursor/")]
    assert queries[1].startswith(f"cursor={_cursor(10)}&")  # neither decoded nor re-encoded
    assert "=%2Fx+y" in queries[1]


async def test_page_size_is_the_n_asked_for(paging_server: PagingServer) -> None:
    async with client(page_size=7) as reg:
        listing = await reg.list_tags(parse_reference(f"{paging_server.host}/rel/seven"))
    assert listing.tags == TAGS and listing.pages == 4


async def test_registry_ignoring_n_works(paging_server: PagingServer) -> None:
    async with client(page_size=5) as reg:
        listing = await reg.list_tags(parse_reference(f"{paging_server.host}/ignoren/app"))
    assert listing.tags == tuple(reversed(TAGS))  # the registry's order, kept
    assert listing.pages == 1


async def test_link_back_to_an_earlier_page_is_an_error(paging_server: PagingServer) -> None:
    async with client(page_size=10) as reg:
        with pytest.raises(RegistryResponseError, match=r"repeats an earlier page .*; paging loop"):
            await reg.list_tags(parse_reference(f"{paging_server.host}/loop/app"))
    assert len(paging_server.requests_to("/v2/loop/app/")) == 2


async def test_same_page_under_new_urls_is_an_error(paging_server: PagingServer) -> None:
    async with client(page_size=10) as reg:
        with pytest.raises(RegistryResponseError, match="page 2 repeats an earlier page of tags"):
            await reg.list_tags(parse_reference(f"{paging_server.host}/repeat/app"))


async def test_pages_are_bounded(paging_server: PagingServer) -> None:
    async with client(page_size=10, max_pages=5) as reg:
        with pytest.raises(RegistryResponseError, match="more than 5 pages of tags; raise max_pages"):
            await reg.list_tags(parse_reference(f"{paging_server.host}/endless/app"))
    assert len(paging_server.requests_to("/v2/endless/app/")) == 5


async def test_null_tags_and_missing_repository(paging_server: PagingServer) -> None:
    async with client() as reg:
        assert (await reg.list_tags(parse_reference(f"{paging_server.host}/empty/app"))).tags == ()
        with pytest.raises(RepositoryNotFound, match="NAME_UNKNOWN"):
            await reg.list_tags(parse_reference(f"{paging_server.host}/missing/app"))
