"""Plan: locate, choose, rewrite -- what ``automator plan`` shows and ``run`` commits.

One orchestrator over the pure stages, and data flows one way through them, each once:

1. **locate** (:func:`automator.update.locate_tree`, read-only): what every policy's fields
   hold now, and which files hold them -- no registry involved;
2. **choose** (:func:`automator.scan.scan_all`): list, filter and choose against those current
   tags (never downgrade; variant awareness), so each listing, manifest and build time is
   fetched once; past the gates that need memory (``minAge``, rollback holds), whose
   :class:`~automator.scan.Memory` a ``memory`` source gives from what step 1 located
   (:func:`automator.state.gates.memory`);
3. **rewrite** (:func:`automator.update.update_tree`): once, over just the files located, in
   memory unless ``write`` is set.

A marker naming no policy is a warning of the rewrite; the files with warnings are then checked
by :func:`automator.update.markercheck.check_tree`, so the plan names the closest policy that
does exist (what ``automator validate`` reports as an error).  ``automator scan`` runs steps 1
and 2 alone (:func:`locate_and_scan`), so it chooses exactly as the plan does.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automator.errors import AutomatorError, PolicyFileError
from automator.policy import PolicySet, choose
from automator.policy.automation import UpdateAutomation
from automator.policy.model import Policy
from automator.registry.base import Registry
from automator.scan import Memory, Progress, ScanResult, scan_all
from automator.update import Decisions, UpdateResult, locate_tree, update_tree
from automator.update.markercheck import check_tree

log = logging.getLogger("automator.plan")

# What the state knows for this cycle, given what every policy's fields hold on the base tip
# (step 1): the gates' memory (first-seen times, rollback holds). Called once per plan.
MemorySource = Callable[[Mapping[str, tuple[str, ...]]], Memory]


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
    digests: Mapping[str, str] = field(default_factory=dict)  # the one digest a policy's fields pin


def locate(root: Path, policies: PolicySet, marker_less_paths: Sequence[str] = ()) -> Current:
    """Step 1: the tags every active policy's fields hold now (read-only, no registry)."""
    active = [p for p in policies.policies if not p.suspend]
    found = locate_tree(root, active, others=policies.refused, marker_less_paths=marker_less_paths)
    best = {p.name: _best_current(p, found.current[p.name]) for p in active if p.name in found.current}
    return Current(found.current, best, found.files, found.digests)


async def locate_and_scan(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    marker_less_paths: Sequence[str] = (),
    memory: MemorySource | None = None,
) -> tuple[Current, tuple[ScanResult, ...]]:
    """Steps 1 and 2: what the files hold, and every policy's choice made against it."""
    located = locate(root, policies, marker_less_paths)
    return located, await _choose(located, policies, registry, failed=failed, progress=progress, memory=memory)


async def _choose(
    located: Current,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None,
    progress: Progress | None,
    memory: MemorySource | None,
) -> tuple[ScanResult, ...]:
    """Step 2: every policy's choice, against what step 1 located and past the gates' memory."""
    return await scan_all(
        registry,
        policies.policies,
        current=located.best,
        digests=located.digests,
        failed=failed,
        progress=progress,
        memory=memory(located.tags) if memory is not None else None,
    )


async def make_plan(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    write: bool = False,
    marker_less_paths: Sequence[str] = (),
    memory: MemorySource | None = None,
) -> Plan:
    """Locate every policy's fields, choose against what they hold (past the gates ``memory``
    gives), rewrite (in memory unless ``write``)."""
    t0 = time.perf_counter()
    located = locate(root, policies, marker_less_paths)
    t1 = time.perf_counter()
    results = await _choose(located, policies, registry, failed=failed, progress=progress, memory=memory)
    t2 = time.perf_counter()
    decisions = _decisions(results, policies)
    update = update_tree(root, decisions, write=write, marker_less_paths=marker_less_paths, only=located.files)
    warned = {w.file for w in update.warnings}
    markers = check_tree(root, policies, only=warned) if warned else ()
    t3 = time.perf_counter()
    timings = {"scan": round(t2 - t1, 4), "rewrite": round(t1 - t0 + t3 - t2, 4)}
    return Plan(tuple(results), update, timings, decisions, located.tags, markers)


# --------------------------------------------------------------------------- jobs of a repository


@dataclass(frozen=True)
class Share:
    """One job's part of a repository: where its files start and the policies it updates.

    ``where`` is relative to the policy root (``spec.git.path``); the sources of its policies are
    named from there too, so every record a job makes is relative to one place.
    """

    where: str
    policies: PolicySet
    automation: UpdateAutomation | None = None


def shares(policies: PolicySet, subpath: str = ".") -> list[Share]:
    """How a repository's policies split into jobs.

    Without Flux ImageUpdateAutomations: one job, every policy, the whole tree. With them, each
    automation updates the Flux policies it selects, in the files under its ``update.path``
    (markers of other policies there are another job's, left alone silently), and the
    automator's own job keeps the native policies; a Flux policy that no automation selects is
    updated by none, as with Flux (:func:`unselected` names them).
    """
    if not policies.automations:
        return [Share(".", policies)]
    flux = {p.name: "" for p in policies.policies if p.origin.startswith("flux/")}
    native = tuple(p for p in policies.policies if p.name not in flux)
    out = [Share(".", PolicySet(native, (), (), {**policies.refused, **flux}))] if native else []
    top = posixpath.normpath(subpath)
    for auto in policies.automations:
        where = posixpath.relpath(auto.path, top)
        mine = tuple(_moved(p, where) for p in policies.policies if auto.selects(p))
        theirs = {p.name: "" for p in policies.policies if not auto.selects(p)}
        out.append(Share(where, PolicySet(mine, (), (), {**policies.refused, **theirs}), auto))
    return out


def only(share: Share, names: Collection[str]) -> Share:
    """``share`` with only the policies ``names`` (a shard's): markers of the others are another
    replica's, left alone silently, as another job's are."""
    mine = tuple(p for p in share.policies if p.name in names)
    theirs = {p.name: "" for p in share.policies if p.name not in names}
    return Share(share.where, PolicySet(mine, (), (), {**share.policies.refused, **theirs}), share.automation)


def unselected(policies: PolicySet) -> list[Policy]:
    """The Flux policies no automation selects, when the repository has automations."""
    if not policies.automations:
        return []
    return [
        p
        for p in policies.policies
        if p.origin.startswith("flux/") and not any(a.selects(p) for a in policies.automations)
    ]


def _moved(policy: Policy, where: str) -> Policy:
    """``policy`` with its source named from ``where`` (both relative to the policy root)."""
    source = dataclasses.replace(policy.source, path=posixpath.relpath(policy.source.path, where))
    return dataclasses.replace(policy, source=source)


def _moved_error(error: PolicyFileError, path: str) -> PolicyFileError:
    return PolicyFileError(error.reason, path=path, line=error.line, column=error.column, field=error.field)


def merge_plans(plans: Sequence[tuple[str, Plan]]) -> Plan:
    """One plan for reports from the plans of a cycle's jobs; ``(where, plan)`` gives each plan's
    root relative to the policy root, so every file is named from one place. A policy planned by
    two jobs is reported once, as the first one scanned it."""
    if not plans:
        return Plan((), UpdateResult())
    if len(plans) == 1 and plans[0][0] == ".":
        return plans[0][1]
    scan: dict[str, ScanResult] = {}
    files: list[Any] = []
    warnings: list[Any] = []
    markers: list[PolicyFileError] = []
    decided: dict[str, Any] = {}
    others: dict[str, str] = {}
    current: dict[str, tuple[str, ...]] = {}
    timings: dict[str, float] = {}
    scanned = parsed = 0
    for where, plan in plans:

        def moved(path: str, where: str = where) -> str:
            return posixpath.normpath(posixpath.join(where, path))

        for r in plan.scan:
            scan.setdefault(r.policy.name, r)
        for fr in plan.update.files:
            objects = tuple(
                dataclasses.replace(o, changes=tuple(dataclasses.replace(c, file=moved(c.file)) for c in o.changes))
                for o in fr.objects
            )
            files.append(dataclasses.replace(fr, path=moved(fr.path), objects=objects))
        warnings += [dataclasses.replace(w, file=moved(w.file)) for w in plan.update.warnings]
        markers += [_moved_error(e, moved(e.path)) for e in plan.markers]
        scanned += plan.update.scanned
        parsed += plan.update.parsed
        for d in plan.decisions:
            decided.setdefault(d.name, d)
        others.update(plan.decisions.others)
        for name, tags in plan.current.items():
            current.setdefault(name, tags)
        for phase, seconds in plan.timings.items():
            timings[phase] = round(timings.get(phase, 0.0) + seconds, 4)
    update = UpdateResult(tuple(files), tuple(warnings), scanned, parsed)
    decisions = Decisions.of(decided.values(), {k: v for k, v in others.items() if k not in decided})
    return Plan(tuple(scan.values()), update, timings, decisions, current, tuple(markers))


def directory_in(top: Path, rel: str) -> Path | None:
    """``top / rel``, resolved, when it is a directory inside ``top`` (symlinks followed); else None."""
    where = (top / rel).resolve()
    return where if where.is_relative_to(top.resolve()) and where.is_dir() else None


def _share_roots(root: Path, policies: PolicySet, subpath: str) -> Iterable[tuple[Share, Path]]:
    """Each job's share and the directory its files start in; a suspended automation has none."""
    for share in shares(policies, subpath):
        auto = share.automation
        if auto is not None and auto.suspend:
            log.info("ImageUpdateAutomation %s is suspended (spec.suspend)", auto.name)
            continue
        where = directory_in(root, share.where)
        if where is None:
            if auto is not None:
                log.warning(
                    "ImageUpdateAutomation %s (%s:%d): spec.update.path %r is not a directory here",
                    auto.name,
                    auto.source.path,
                    auto.source.line,
                    auto.path,
                )
            continue
        yield share, where


async def plan_repository(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    marker_less_paths: Sequence[str] = (),
    subpath: str = ".",
    memory: MemorySource | None = None,
) -> Plan:
    """:func:`make_plan` for each job of the repository (see :func:`shares`), merged: what
    ``automator plan`` shows, job for job what ``run`` commits. ``root`` is the policy root."""
    plans = []
    for share, where in _share_roots(root, policies, subpath):
        less = marker_less_paths if share.automation is None else ()
        plan = await make_plan(
            where, share.policies, registry, failed=failed, progress=progress, marker_less_paths=less, memory=memory
        )
        plans.append((share.where, plan))
    return merge_plans(plans)


async def scan_repository(
    root: Path,
    policies: PolicySet,
    registry: Registry,
    *,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    subpath: str = ".",
    memory: MemorySource | None = None,
) -> tuple[ScanResult, ...]:
    """:func:`locate_and_scan` for each job of the repository: every policy chosen against the
    tags its own job's files hold. A policy two automations select is shown once per job."""
    out: list[ScanResult] = []
    for share, where in _share_roots(root, policies, subpath):
        located = await locate_and_scan(
            where, share.policies, registry, failed=failed, progress=progress, memory=memory
        )
        out += located[1]
    return tuple(out)
