"""Gates that need memory: what the state database says a cycle must not propose yet.

The gates act in the scan (:mod:`automator.scan`), on the choice; this module turns the state
into the plain data they read (:class:`automator.scan.Memory`), and gives ``automator status``
the same answers. Every function here is pure over the store's queries and the clock given:

:func:`memory` ``(store) -> MemorySource``
    what :func:`automator.plan.make_plan` is given: called with what the policies' fields hold
    on the base tip, it returns the cycle's :class:`~automator.scan.Memory` (the store's clock,
    first-seen times per repository).
:func:`cooldown` ``(policy, since, now) -> datetime | None``
    when a tag first seen (or built) at ``since`` is old enough for the policy's ``minAge``;
    None when it is already (or the policy has no ``minAge``).
:func:`holds` ``(store, current=None) -> dict[policy, tuple[Hold, ...]]``
    the versions held after a rollback on the base branch, per policy (see below); ``current``,
    what the fields hold on the base tip as a cycle located them, is the history's last point.
:meth:`StateStore.held_back() <automator.state.StateStore.held_back>`
    what the gates held back in the latest cycle, per policy (a
    :class:`~automator.policy.model.HeldTag`: the tag, ``minAge`` or ``rollback``, why, and for
    ``minAge`` when it is due), written by :func:`automator.run.run_once` after each cycle:
    what ``status`` shows as "cooldown until ..." or "held".

**Minimum release age** (``minAge``, Flux annotation ``automator.dev/min-age``): a tag younger
than it is not a candidate; the choice falls to the best tag old enough, and the tag held back
and when it is due are the choice's ``held`` (and its ``reason``: "1.2.0 waits for minAge 72h:
first seen ..., due ..."). ``minAgeFrom: firstSeen`` (the default) counts from when the state
database first listed the tag -- a tag first listed in this cycle counts from now, and so does
every tag of a database started afresh (marked ``rebuilt``): better late than a fresh tag let
through. Without ``--state-dir`` it is an error of that policy, never a pass. ``buildTime``
counts from the image config's ``created`` (any registry, no state needed; an image without
one is held).

**Rollbacks** (derived each cycle from the store; no table of their own, so nothing to migrate
or to clean up): the base branch's history per policy is the merges recorded (each commit
after which its fields hold other tags) and our pull requests recorded as merged (a merge
reverted before a cycle saw it), then what the cycle located. When it goes from a version of
ours -- one a cycle chose over what the fields held, or one of our pull requests proposed --
to an older one (held on the base branch before it, or first listed before it), that version
is held: only it; a newer tag is proposed as usual. The hold ends when the base branch holds
that version again (someone sets it by hand: the documented way to lift it) or a newer one.
A hold lives as long as the merges that show it (``--state-retention``). By hand, ``pin``
(Flux: annotation ``automator.dev/pin``) makes one tag the choice, past every gate.

**Promotion** (``spec.promotion``): :func:`promotion_evidence` turns the clusters' reports the store
keeps (each ``--cluster`` read before the cycle, :class:`ClusterSight`) into the plain evidence
:mod:`automator.promotion.gate` judges in the scan; :func:`memory` passes it on with the prober
that asks each cluster's Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from automator.errors import InvalidReference
from automator.plan import MemorySource
from automator.policy.model import Policy
from automator.promotion.gate import ClusterEvidence, Report, Running
from automator.refs import parse_reference
from automator.scan import Memory, Prober
from automator.state.store import StateStore
from automator.sync.model import WorkloadReport


@dataclass(frozen=True)
class Hold:
    """A version held after a rollback: the base branch went from ``tag`` (one we proposed)
    back to ``back_to`` in ``revision`` (seen ``at``); ``tag`` is not proposed again until the
    base branch holds it (or a newer tag) again. ``reason`` is what the choice says."""

    policy: str
    tag: str
    back_to: tuple[str, ...]
    revision: str
    at: datetime

    @property
    def reason(self) -> str:
        back = ", ".join(self.back_to)
        when = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"{self.tag} is held: the base branch went back from it to {back} ({self.revision[:12]}, seen {when}); "
            f"a newer tag may be proposed, or set the field to {self.tag} by hand to lift the hold"
        )


@dataclass(frozen=True)
class _Base:
    """What a policy's fields held on the base branch from one point on."""

    tags: tuple[str, ...]
    revision: str
    at: datetime


def _tag_of(version: str) -> str | None:
    try:
        return parse_reference(version).tag
    except InvalidReference:
        return None


def _timeline(store: StateStore) -> dict[str, list[_Base]]:
    """Per policy, what the base branch held, in order: the merges recorded, and the versions
    of our pull requests recorded as merged (a merge reverted before a cycle saw it)."""
    points: list[tuple[datetime, int, str, _Base]] = []
    for m in store.merges(limit=100_000):
        for policy, tags in m.versions.items():
            points.append((m.seen, 0, policy, _Base(tuple(tags), m.revision, m.seen)))
    for e in store.pr_events():
        if e.event != "merged":
            continue
        for policy, version in e.versions.items():
            tag = _tag_of(version)
            if tag is not None:
                points.append((e.at, 1, policy, _Base((tag,), f"#{e.number}", e.at)))
    out: dict[str, list[_Base]] = {}
    for _, _, policy, base in sorted(points, key=lambda p: (p[0], p[1])):
        out.setdefault(policy, []).append(base)
    return out


def _ours(store: StateStore) -> dict[str, set[str]]:
    out = {policy: set(tags) for policy, (_, tags) in store.proposed().items()}
    for e in store.pr_events():
        for policy, version in e.versions.items():
            tag = _tag_of(version)
            if tag is not None:
                out.setdefault(policy, set()).add(tag)
    return out


def _policy_holds(
    policy: str, timeline: Sequence[_Base], ours: Iterable[str], listed: Mapping[str, datetime]
) -> dict[str, Hold]:
    """The holds of one policy: walk its base history, hold each version of ours it went back
    from, release each hold when the base holds that version, or a newer one, again."""
    ours = set(ours)
    on_base: dict[str, int] = {}  # when each tag was first held on the base branch (its index)

    def older(b: str, a: str) -> bool:
        if b in on_base and a in on_base and on_base[b] < on_base[a]:
            return True
        return b in listed and a in listed and listed[b] < listed[a]

    def newer(b: str, a: str) -> bool:
        return b in listed and a in listed and listed[b] > listed[a] and not older(b, a)

    held: dict[str, Hold] = {}
    previous: _Base | None = None
    for i, base in enumerate(timeline):
        for tag in base.tags:
            on_base.setdefault(tag, i)
        for tag in [t for t in held if t in base.tags or any(newer(b, t) for b in base.tags)]:
            del held[tag]
        if previous is not None:
            for a in previous.tags:
                back = tuple(b for b in base.tags if older(b, a))
                if a in ours and a not in base.tags and back:
                    held[a] = Hold(policy, a, back, base.revision, base.at)
        previous = base
    return held


def holds(store: StateStore, current: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[Hold, ...]]:
    """Per policy, the versions held after a rollback on the base branch (oldest hold first),
    from the store's merges, choices and pull-request events; ``current`` (what the fields hold
    on the base tip now, when a cycle has located it) is the history's last point.

    A rollback: the base branch goes from a version we proposed (chose, opened a pull request
    for, committed) to one that is older -- held on the base branch before it, or first listed
    before it."""
    timeline = _timeline(store)
    now = store.now()
    for policy, tags in (current or {}).items():
        line = timeline.setdefault(policy, [])
        if tags and (not line or set(line[-1].tags) != set(tags)):
            line.append(_Base(tuple(sorted(set(tags))), "the base branch's tip", now))
    ours = _ours(store)
    proposed = store.proposed()
    out: dict[str, tuple[Hold, ...]] = {}
    for policy, line in timeline.items():
        if policy not in ours or len(line) < 2:
            continue
        repository = proposed.get(policy, ("", set()))[0]
        listed = {t.tag: t.first_seen for t in store.tags(repository)} if repository else {}
        found = _policy_holds(policy, line, ours[policy], listed)
        if found:
            out[policy] = tuple(sorted(found.values(), key=lambda h: h.at))
    return out


def cooldown(policy: Policy, since: datetime, now: datetime) -> datetime | None:
    """When a tag first seen (or built) at ``since`` may be proposed; None: it may now."""
    if policy.min_age_seconds <= 0:
        return None
    due = policy.due(since)
    return due if due > now else None


@dataclass(frozen=True)
class ClusterSight:
    """This cycle's read of each ``--cluster`` (recorded in the store before planning): which
    clusters were asked, and why each one that could not be read could not."""

    clusters: tuple[str, ...]
    errors: Mapping[str, str]


PROMOTION_REPORTS = 500  # per cluster, the reports a promotion gate reads back (a failure further back is forgotten)


def _running(payload: Mapping[str, Any], at: datetime) -> Report:
    out = []
    for entry in payload.get("workloads") or ():
        if not isinstance(entry, dict):
            continue
        try:
            w = WorkloadReport.from_json(entry, since=at)
        except (KeyError, TypeError, ValueError):
            continue  # a record this version cannot read is no evidence
        for image in w.images:
            try:
                ref = parse_reference(image)
            except InvalidReference:
                continue
            workload = f"{w.kind}/{w.namespace}/{w.name}" if w.namespace else f"{w.kind}/{w.name}"
            out.append(Running(workload, ref.repository, ref.tag, w.health, w.since, w.reason))
    return Report(at, tuple(out))


def promotion_evidence(store: StateStore, sight: ClusterSight) -> dict[str, ClusterEvidence]:
    """Per cluster this cycle read (or tried to), its reports as the store keeps them (only the
    changes are kept: each is evidence until the next), and why it could not be read now."""
    out = {}
    for cluster in sight.clusters:
        reports = tuple(_running(r.payload, r.reported_at) for r in store.cluster_reports(cluster, PROMOTION_REPORTS))
        out[cluster] = ClusterEvidence(cluster, reports, sight.errors.get(cluster, ""))
    return out


def memory(store: StateStore, sight: ClusterSight | None = None, prober: Prober | None = None) -> MemorySource:
    """The gates' memory for :func:`automator.plan.make_plan`, read from ``store`` once per plan
    (with ``sight``, the clusters read this cycle, the promotion gates' evidence; ``prober``
    answers their queries)."""

    def of(current: Mapping[str, tuple[str, ...]]) -> Memory:
        held = {p: {h.tag: h.reason for h in hs} for p, hs in holds(store, current).items()}
        clusters = promotion_evidence(store, sight) if sight is not None else None
        return Memory(now=store.now(), first_seen=store.first_seen, held=held, clusters=clusters, prober=prober)

    return of
