"""Scan: for every policy, list its repository's tags and choose the best one.

The one orchestrator between the registry edge and the pure choice functions.  A
repository shared by several policies is listed once; build times are fetched only
for the filtered candidates of ``newestBuild`` policies; digests only where a policy
tracks them.  A policy that fails never stops the others: its result carries the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from automator.errors import AutomatorError, ChoiceError
from automator.policy import candidates, choose
from automator.policy.model import NewestBuildChoice, Policy, TagChoice
from automator.registry.base import Registry, TagListing

Progress = Callable[["ScanResult"], None]


@dataclass(frozen=True)
class ScanResult:
    """What scanning one policy found: a choice, or the error that prevented one."""

    policy: Policy
    choice: TagChoice | None = None
    error: AutomatorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Listings:
    """Lists each repository once per scan, however many policies share it."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._tasks: dict[str, asyncio.Task[TagListing]] = {}

    def get(self, policy: Policy) -> Awaitable[TagListing]:
        key = policy.image.repository
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._registry.list_tags(policy.image))
            self._tasks[key] = task
        return asyncio.shield(task)


async def _build_times(registry: Registry, policy: Policy, tags: Iterable[str]) -> dict[str, datetime]:
    async def one(tag: str) -> tuple[str, datetime | None]:
        return tag, await registry.created(policy.image, tag, policy.platform)

    pairs = await asyncio.gather(*(one(tag) for tag in tags))
    return {tag: when for tag, when in pairs if when is not None}


async def scan_policy(
    registry: Registry,
    policy: Policy,
    current: str | None = None,
    *,
    listings: _Listings | None = None,
) -> ScanResult:
    """List, filter and choose for one policy; resolve the digest when the policy tracks it."""
    try:
        listing = await (listings or _Listings(registry)).get(policy)
        created: Mapping[str, datetime] | None = None
        if isinstance(policy.choice, NewestBuildChoice):
            created = await _build_times(registry, policy, candidates(policy, listing.tags))
        choice = choose(policy, listing.tags, current, created)
        if choice.tag is not None and policy.tracks_digest:
            info = await registry.manifest(policy.image, choice.tag)
            choice = replace(choice, digest=info.digest)
        return ScanResult(policy, choice)
    except AutomatorError as exc:
        return ScanResult(policy, error=exc)
    except ValueError as exc:  # a choice function refusing its data is a bug report, not a crash
        return ScanResult(policy, error=ChoiceError(f"policy {policy.name}: {exc}"))


async def scan_all(
    registry: Registry,
    policies: Iterable[Policy],
    *,
    current: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> tuple[ScanResult, ...]:
    """Scan every non-suspended policy concurrently; results keep the input order.

    Concurrency and rate limits are the registry client's business (per host), so
    this schedules everything at once and lets the client pace the requests.
    """
    listings = _Listings(registry)
    current = current or {}

    async def one(policy: Policy) -> ScanResult:
        result = await scan_policy(registry, policy, current.get(policy.name), listings=listings)
        if progress is not None:
            progress(result)
        return result

    active = [p for p in policies if not p.suspend]
    return tuple(await asyncio.gather(*(one(p) for p in active)))
