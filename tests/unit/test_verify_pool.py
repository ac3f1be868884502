"""The registry client's connection pool decides as httpcore's own does, only in linear time.

A verifying scan sends three requests per policy where a plain one sends one, and each passes
through the pool's bookkeeping twice; automator.registry.client's ``_LinearPool`` rewrites that
bookkeeping. Here both pools meet the same connections (closed, expired, idle, busy, for this
origin or another) and the same queued requests, and must close, keep, open and hand out alike.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpcore
from httpcore._async.connection_pool import AsyncPoolRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from automator.registry.client import _LinearPool

ORIGINS = ("http://a.test:5000", "http://b.test:5000")


@dataclass(eq=False)
class FakeConnection:
    """A connection as the pool sees it: its state, fixed for one round of bookkeeping."""

    name: str
    origin: str
    closed: bool
    expired: bool
    idle: bool
    available: bool

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == httpcore.URL(self.origin).origin


connections = st.lists(
    st.builds(
        lambda i, origin, state: FakeConnection(f"c{i}", origin, *state),
        st.integers(0, 10**6),
        st.sampled_from(ORIGINS),
        st.sampled_from(
            [
                (True, False, False, False),  # closed
                (False, True, True, False),  # expired while idle (the server closed it)
                (False, False, True, True),  # idle, available
                (False, False, False, False),  # busy
                (False, False, False, True),  # HTTP/2, busy but with room for more
            ]
        ),
    ),
    max_size=8,
)


async def run(pool: httpcore.AsyncConnectionPool, conns: list[FakeConnection], queued: list[str], busy: int) -> object:
    """One round of ``pool``'s bookkeeping (on a loop: handing out a connection sets an event)."""
    pool._connections = list(conns)  # type: ignore[arg-type]
    requests = [AsyncPoolRequest(httpcore.Request("GET", f"{origin}/v2/")) for origin in queued]
    for request in requests[:busy]:  # already sent: not queued
        request.assign_to_connection(conns[0] if conns else None)
    pool._requests = requests
    closing = pool._assign_requests_to_connections()

    def name(c: object) -> str:
        return c.name if isinstance(c, FakeConnection) else f"new {c._origin}"  # type: ignore[attr-defined]

    return (
        [name(c) for c in closing],
        [name(c) for c in pool._connections],
        [None if r.connection is None else name(r.connection) for r in requests],
    )


@settings(max_examples=300, deadline=None)
@given(
    conns=connections,
    queued=st.lists(st.sampled_from(ORIGINS), max_size=6),
    busy=st.integers(0, 2),
    limits=st.tuples(st.integers(1, 8), st.integers(0, 8)),
)
def test_the_linear_pool_decides_as_httpcore(
    conns: list[FakeConnection], queued: list[str], busy: int, limits: tuple[int, int]
) -> None:
    most, keepalive = limits
    ours = _LinearPool(max_connections=most, max_keepalive_connections=keepalive)
    theirs = httpcore.AsyncConnectionPool(max_connections=most, max_keepalive_connections=keepalive)
    assert asyncio.run(run(ours, conns, queued, busy)) == asyncio.run(run(theirs, conns, queued, busy))
