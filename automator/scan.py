"""Scan: for every policy, list its repository's tags and choose the best one.

The one orchestrator between the registry edge and the pure choice functions.  A
repository shared by several policies is listed once; build times are fetched only
for the filtered candidates of ``newestBuild`` policies; digests only where a policy
tracks them.  A policy that fails never stops the others: its result carries the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from automator.errors import AutomatorError, ChoiceError
from automator.policy import candidates, choose
from automator.policy.model import DigestMode, NewestBuildChoice, Policy, TagChoice
from automator.registry.base import Registry, TagListing

Progress = Callable[["ScanResult"], None]
OFF_LOOP_TAGS = 5_000  # a listing longer than this is chosen from in a worker thread


@dataclass(frozen=True)
class ScanResult:
    """What scanning one policy found: a choice, or the error that prevented one."""

    policy: Policy
    choice: TagChoice | None = None
    error: AutomatorError | None = None
    current: str | None = None  # the tag the policy's fields hold now, chosen against; None: none found

    @property
    def ok(self) -> bool:
        return self.error is None


class ListingCache:
    """Lists each repository once per scan, however many policies share it.

    The first policy lists in its own task; later ones for the same repository wait on a
    future the first fills (no extra task per policy: a scan of 1,000 repositories is CPU
    bound in the client, and tasks are not free).
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._listed: dict[str, asyncio.Future[TagListing]] = {}

    async def get(self, policy: Policy) -> TagListing:
        key = policy.image.repository
        pending = self._listed.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        done: asyncio.Future[TagListing] = asyncio.get_running_loop().create_future()
        self._listed[key] = done
        try:
            listing = await self._registry.list_tags(policy.image)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                done.cancel()
            else:
                done.set_exception(exc)
                done.exception()  # retrieved: waiters re-raise it; nobody waiting is not an error
            raise
        done.set_result(listing)
        return listing


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
    listings: ListingCache | None = None,
    pinned: str | None = None,
) -> ScanResult:
    """List, filter and choose for one policy; resolve the digest when the policy tracks it."""
    try:
        listing = await (listings or ListingCache(registry)).get(policy)
        created: Mapping[str, datetime] | None = None
        if isinstance(policy.choice, NewestBuildChoice):
            created = await _build_times(registry, policy, candidates(policy, listing.tags))
        if len(listing.tags) > OFF_LOOP_TAGS:  # milliseconds of CPU: not on the loop other scans share
            choice = await asyncio.to_thread(choose, policy, listing.tags, current, created)
        else:
            choice = choose(policy, listing.tags, current, created)
        tag = choice.tag
        if tag is not None and policy.tracks_digest:
            if pinned is not None and tag == current and policy.digest is DigestMode.IF_NOT_PRESENT:
                choice = replace(choice, digest=pinned)  # resolved when the tag was chosen; kept (as Flux)
            else:
                info = await registry.manifest(policy.image, tag)
                choice = replace(choice, digest=info.digest)
        return ScanResult(policy, choice, current=current)
    except AutomatorError as exc:
        return ScanResult(policy, error=exc, current=current)
    except ValueError as exc:  # a choice function refusing its data is a bug report, not a crash
        return ScanResult(policy, error=ChoiceError(f"policy {policy.name}: {exc}"), current=current)


async def scan_all(
    registry: Registry,
    policies: Iterable[Policy],
    *,
    current: Mapping[str, str] | None = None,
    digests: Mapping[str, str] | None = None,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    listings: ListingCache | None = None,
) -> tuple[ScanResult, ...]:
    """Scan every non-suspended policy concurrently; results keep the input order.

    Concurrency and rate limits are the registry client's business (per host), so
    this schedules everything at once and lets the client pace the requests.
    """
    listings = listings or ListingCache(registry)
    current = current or {}

    failed = failed or {}

    async def one(policy: Policy) -> ScanResult:
        if policy.name in failed:
            result = ScanResult(policy, error=failed[policy.name], current=current.get(policy.name))
        else:
            pinned = (digests or {}).get(policy.name)
            result = await scan_policy(registry, policy, current.get(policy.name), listings=listings, pinned=pinned)
        if progress is not None:
            progress(result)
        return result

    active = [p for p in policies if not p.suspend]
    return tuple(await asyncio.gather(*(one(p) for p in active)))
