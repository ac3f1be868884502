"""Politeness toward one registry: a request-rate limiter and the retry delay.

Hand-written because both are a few lines over asyncio and the libraries that
offer them (aiolimiter, tenacity) would each be a dependency for one function.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from automator.registry.config import RetryPolicy


class RateLimiter:
    """Spaces request starts ``1/rate`` seconds apart (0 = unlimited), shared by all tasks."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


def retry_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    ``Retry-After`` wins when given (capped at ``policy.max_retry_after``); otherwise
    exponential backoff with full jitter, capped at ``policy.max_delay``.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.max_delay, policy.base_delay * (2**attempt))
    return float(ceiling * rand())
