"""Plan: scan, choose, and rewrite in memory — what ``automator plan`` shows and ``run`` commits.

One orchestrator over the pure stages.  Choosing needs the tag currently written in the
files (never downgrade; variant awareness), and only the rewrite engine knows where the
image fields are, so planning goes: scan without a current tag, locate the fields with a
dry rewrite, then choose again with the current tag for every policy that has one (the
listing is cached, so that costs no second listing) and rewrite once more only when a
decision moved.  Nothing on disk changes unless ``write`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automator.errors import AutomatorError, InvalidReference
from automator.policy import PolicySet, choose
from automator.policy.model import Policy
from automator.refs import parse_reference
from automator.registry.base import Registry
from automator.scan import ListingCache, Progress, ScanResult, scan_all, scan_policy
from automator.update import Change, Decisions, UpdateResult, update_tree


@dataclass(frozen=True)
class Plan:
    """What one planning pass found: per-policy scan results and the rewrite they amount to."""

    scan: tuple[ScanResult, ...]
    update: UpdateResult
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds per phase: scan, rewrite
    decisions: Decisions = field(default_factory=Decisions)  # what the rewrite was given

    @property
    def failed(self) -> tuple[ScanResult, ...]:
        return tuple(r for r in self.scan if not r.ok)


def _decisions(results: Iterable[ScanResult], policies: PolicySet) -> Decisions:
    """The decisions of the policies that chose a tag; every other policy of the repository is
    named with the reason it has none, so no marker of its falls to a look-alike policy."""
    results = list(results)
    chosen = [r for r in results if r.choice is not None]
    decided = Decisions.from_choices([r.policy for r in chosen], [r.choice for r in chosen if r.choice is not None])
    others = dict(policies.refused)
    for p in policies.policies:
        if p.suspend:
            others[p.name] = "is suspended"
    for r in results:
        if r.error is not None:
            others[r.policy.name] = "could not be scanned this cycle (see its error)"
        elif r.choice is None or r.choice.tag is None:
            why = r.choice.reason if r.choice is not None and r.choice.reason else "no tag qualifies"
            others[r.policy.name] = f"chose no tag ({why})"
    return Decisions.of(decided, others)


def _old_tag(change: Change, decisions: Decisions) -> str | None:
    """The tag a change replaces, when its scalar holds a tag (not a name or a digest)."""
    tag = decisions[change.policy].tag
    if change.new == tag:  # a tag field: ":tag" setter, Helm `tag:`, kustomize `newTag:`
        return change.old
    if change.new.endswith(f":{tag}") or f":{tag}@" in change.new:  # a whole reference
        try:
            return parse_reference(change.old).tag
        except InvalidReference:
            return None
    return None  # a name or digest field


def current_tags(update: UpdateResult, decisions: Decisions) -> dict[str, tuple[str, ...]]:
    """Per policy, the distinct tags its fields hold now (in file order)."""
    found: dict[str, list[str]] = {}
    for change in update.changes:
        tag = _old_tag(change, decisions)
        if tag is not None and tag not in found.setdefault(change.policy, []):
            found[change.policy].append(tag)
    return {name: tuple(tags) for name, tags in found.items()}


def _best_current(policy: Policy, tags: Sequence[str]) -> str:
    """Of several current tags, the one the policy ranks highest (deterministic)."""
    if len(tags) == 1:
        return tags[0]
    return choose(policy, tags).tag or tags[0]


async def make_plan(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    write: bool = False,
    marker_less_paths: Sequence[str] = (),
) -> Plan:
    """Scan every policy, choose against what the files hold, rewrite (in memory unless ``write``)."""
    listings = ListingCache(registry)
    t0 = time.perf_counter()
    results = list(
        await scan_all(
            registry,
            policies.policies,
            failed=failed,
            progress=progress,
            listings=listings,
        )
    )
    t1 = time.perf_counter()
    decisions = _decisions(results, policies)
    update = update_tree(root, decisions, write=False, marker_less_paths=marker_less_paths)
    rewrite = time.perf_counter() - t1
    current = current_tags(update, decisions)
    moved = False
    for i, result in enumerate(results):
        tags = current.get(result.policy.name)
        if not tags or result.choice is None:
            continue
        again = await scan_policy(registry, result.policy, _best_current(result.policy, tags), listings=listings)
        if again.choice != result.choice:
            results[i] = again
            moved = True
    scan = time.perf_counter() - t0 - rewrite
    if moved:
        decisions = _decisions(results, policies)
    if moved or write:
        t2 = time.perf_counter()
        update = update_tree(root, decisions, write=write, marker_less_paths=marker_less_paths)
        rewrite += time.perf_counter() - t2
    return Plan(tuple(results), update, {"scan": round(scan, 4), "rewrite": round(rewrite, 4)}, decisions)
