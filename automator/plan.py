"""Plan: locate, choose, rewrite -- what ``automator plan`` shows and ``run`` commits.

One orchestrator over the pure stages, and data flows one way through them, each once:

1. **locate** (:func:`automator.update.locate_tree`, read-only): what every policy's fields
   hold now, and which files hold them -- no registry involved;
2. **choose** (:func:`automator.scan.scan_all`): list, filter and choose against those current
   tags (never downgrade; variant awareness), so each listing, manifest and build time is
   fetched once;
3. **rewrite** (:func:`automator.update.update_tree`): once, over just the files located, in
   memory unless ``write`` is set.

A marker naming no policy is a warning of the rewrite; the files with warnings are then checked
by :func:`automator.update.markercheck.check_tree`, so the plan names the closest policy that
does exist (what ``automator validate`` reports as an error).  ``automator scan`` runs steps 1
and 2 alone (:func:`locate_and_scan`), so it chooses exactly as the plan does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automator.errors import AutomatorError, PolicyFileError
from automator.policy import PolicySet, choose
from automator.policy.model import Policy
from automator.registry.base import Registry
from automator.scan import Progress, ScanResult, scan_all
from automator.update import Decisions, UpdateResult, locate_tree, update_tree
from automator.update.markercheck import check_tree


@dataclass(frozen=True)
class Plan:
    """What one planning pass found: per-policy scan results and the rewrite they amount to."""

    scan: tuple[ScanResult, ...]
    update: UpdateResult
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds per phase: scan, rewrite
    decisions: Decisions = field(default_factory=Decisions)  # what the rewrite was given
    current: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # tags each policy's fields held
    markers: tuple[PolicyFileError, ...] = ()  # markers that name no policy (each also a warning of the rewrite)

    @property
    def failed(self) -> tuple[ScanResult, ...]:
        return tuple(r for r in self.scan if not r.ok)

    @property
    def why_unchanged(self) -> str:
        """Why a plan with no change changes nothing, without claiming more than it knows."""
        failed, warned = len(self.failed), len(self.update.warnings)
        if not failed and not warned:
            return "every image field already holds its policy's choice"
        left = [f"{failed} polic{'y' if failed == 1 else 'ies'} could not be scanned"] if failed else []
        left += [f"{warned} warning{'s' * (warned != 1)} (files or fields left out)"] if warned else []
        return f"the fields found hold their policies' choices, but {' and '.join(left)}: see below"


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


def _best_current(policy: Policy, tags: Sequence[str]) -> str:
    """Of several current tags, the one the policy ranks highest (deterministic)."""
    if len(tags) == 1:
        return tags[0]
    return choose(policy, tags).tag or tags[0]


@dataclass(frozen=True)
class Current:
    """What the files hold now, per policy: every distinct tag, the best of them, the files."""

    tags: Mapping[str, tuple[str, ...]]
    best: Mapping[str, str]
    files: frozenset[str]


def locate(root: Path, policies: PolicySet, marker_less_paths: Sequence[str] = ()) -> Current:
    """Step 1: the tags every active policy's fields hold now (read-only, no registry)."""
    active = [p for p in policies.policies if not p.suspend]
    found = locate_tree(root, active, others=policies.refused, marker_less_paths=marker_less_paths)
    best = {p.name: _best_current(p, found.current[p.name]) for p in active if p.name in found.current}
    return Current(found.current, best, found.files)


async def locate_and_scan(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    marker_less_paths: Sequence[str] = (),
) -> tuple[Current, tuple[ScanResult, ...]]:
    """Steps 1 and 2: what the files hold, and every policy's choice made against it."""
    located = locate(root, policies, marker_less_paths)
    results = await scan_all(registry, policies.policies, current=located.best, failed=failed, progress=progress)
    return located, results


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
    """Locate every policy's fields, choose against what they hold, rewrite (in memory unless ``write``)."""
    t0 = time.perf_counter()
    located = locate(root, policies, marker_less_paths)
    t1 = time.perf_counter()
    results = await scan_all(registry, policies.policies, current=located.best, failed=failed, progress=progress)
    t2 = time.perf_counter()
    decisions = _decisions(results, policies)
    update = update_tree(root, decisions, write=write, marker_less_paths=marker_less_paths, only=located.files)
    warned = {w.file for w in update.warnings}
    markers = check_tree(root, policies, only=warned) if warned else ()
    t3 = time.perf_counter()
    timings = {"scan": round(t2 - t1, 4), "rewrite": round(t1 - t0 + t3 - t2, 4)}
    return Plan(tuple(results), update, timings, decisions, located.tags, markers)
