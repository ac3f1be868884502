"""The events both programs announce, derived from the records they already keep.

Each event is a frozen :class:`Event`, built once from a cycle's or a pass's records and then
rendered by every sink (:mod:`.payloads`) without being re-derived. The inputs are described
by small Protocols (the automator's ``GroupResult``, the state's ``PREventRecord``, the
synchronizer's ``ObjectResult`` and ``WorkloadReport``): this package sits below both programs
in the import layers, so it reads their records by shape, as :mod:`automator.state.record`
does.

Two derivations need memory across cycles, and keep it in small trackers the caller owns:
:class:`FailureStreaks` (a policy failing N cycles in a row, and recovering) and
:class:`RolloutWatch` (a workload the sync gave a new image, until its health settles).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, get_args

EventKind = Literal[
    "pullRequestOpened",
    "pullRequestUpdated",
    "pullRequestMerged",
    "pullRequestClosed",
    "policyFailing",
    "policyRecovered",
    "syncFailed",
    "driftCorrected",
    "workloadUnhealthy",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
Severity = Literal["info", "warning", "error"]
Source = Literal["automator", "sync"]
MAX_DETAILS = 20  # error lines, drifted fields: enough to act on, bounded for every receiver


@dataclass(frozen=True)
class PullRequestRef:
    """The pull request (GitLab: merge request) an event concerns."""

    number: int
    url: str
    title: str = ""
    branch: str = ""


@dataclass(frozen=True)
class Event:
    """One thing worth telling a person. ``key`` names it for the dedupe window: the same key is
    the same news (a PR's number and head, a policy's failing spell, a sync's revision and errors)."""

    kind: EventKind
    source: Source
    severity: Severity
    subject: str  # the group, the policy, or the sync's --name
    message: str  # one line for people
    key: str
    at: datetime
    revision: str = ""
    policies: tuple[str, ...] = ()
    pull_request: PullRequestRef | None = None
    versions: tuple[tuple[str, str], ...] = ()  # policy -> the image a PR proposes
    objects: tuple[str, ...] = ()  # "Deployment ns/web": what the sync found
    details: tuple[str, ...] = ()  # error lines, drifted fields, health reasons


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- the automator


class PullRequestLike(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def state(self) -> str: ...


class GroupLike(Protocol):
    """What the events read of :class:`automator.run.GroupResult`."""

    @property
    def group(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def sha(self) -> str | None: ...
    @property
    def pull_request(self) -> PullRequestLike | None: ...
    @property
    def policies(self) -> tuple[str, ...]: ...


class PREventLike(Protocol):
    """What the events read of :class:`automator.state.PREventRecord`."""

    @property
    def group(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def versions(self) -> Mapping[str, str]: ...
    @property
    def rebuilt(self) -> bool: ...


_PR_OUTCOMES: Mapping[str, EventKind] = {
    "opened": "pullRequestOpened",
    "updated": "pullRequestUpdated",
    "closed": "pullRequestClosed",
}
_PR_WORDS: Mapping[str, str] = {
    "pullRequestOpened": "opened",
    "pullRequestUpdated": "updated",
    "pullRequestMerged": "merged",
    "pullRequestClosed": "closed",
}


def _ref(pr: PullRequestLike) -> PullRequestRef:
    return PullRequestRef(pr.number, pr.url, pr.title, pr.branch)


def _pr_event(
    kind: EventKind,
    group: str,
    pr: PullRequestRef,
    *,
    policies: Sequence[str],
    versions: Mapping[str, str],
    revision: str,
    reason: str = "",
    head: str | None = None,
    at: datetime,
) -> Event:
    word = _PR_WORDS[kind]
    message = f"pull request #{pr.number} for {group} {word}" + (f": {reason}" if reason else "")
    key = f"{kind}:{pr.number}" + (f":{head}" if head else "")
    return Event(
        kind,
        "automator",
        "info",
        group,
        message,
        key,
        at,
        revision=revision,
        policies=tuple(policies) or tuple(sorted(versions)),
        pull_request=pr,
        versions=tuple(sorted(versions.items())),
    )


def pull_request_events(
    groups: Sequence[GroupLike],
    revision: str,
    *,
    versions: Mapping[str, Mapping[str, str]] | None = None,
    at: datetime | None = None,
) -> list[Event]:
    """Opened, updated and closed-by-us, from this cycle's group results (``versions``: each
    group's proposed images, by group, when the caller has them)."""
    when, out = at or _now(), []
    for g in groups:
        kind, pr = _PR_OUTCOMES.get(g.outcome), g.pull_request
        if kind is None or pr is None:
            continue
        head = g.sha if kind == "pullRequestUpdated" else None
        proposed = (versions or {}).get(g.group, {})
        reason = g.reason if kind == "pullRequestClosed" else ""
        out.append(
            _pr_event(
                kind,
                g.group,
                _ref(pr),
                policies=g.policies,
                versions=proposed,
                revision=revision,
                reason=reason,
                head=head,
                at=when,
            )
        )
    return out


def recorded_transitions(
    before: Mapping[int, PREventLike], after: Mapping[int, PREventLike], revision: str, *, at: datetime | None = None
) -> list[Event]:
    """Merged and closed, from the state: each PR whose latest recorded event became ``merged``
    or ``closed`` during this cycle (``before``/``after``: ``StateStore.latest_pr_events()``
    around :func:`automator.state.record_cycle`)."""
    when, out = at or _now(), []
    for number, now in sorted(after.items()):
        was = before.get(number)
        if now.event not in ("merged", "closed") or (was is not None and was.event == now.event):
            continue
        if now.rebuilt:  # a database started afresh, refilled from the forge: old news
            continue
        kind: EventKind = "pullRequestMerged" if now.event == "merged" else "pullRequestClosed"
        pr = PullRequestRef(number, now.url)
        out.append(_pr_event(kind, now.group, pr, policies=(), versions=now.versions, revision=revision, at=when))
    return out


@dataclass(frozen=True)
class OpenPR:
    """One of our PRs a cycle saw open, kept in memory to learn what became of it."""

    group: str
    pr: PullRequestRef
    policies: tuple[str, ...]


def open_pull_requests(groups: Sequence[GroupLike]) -> dict[int, OpenPR]:
    """The PRs this cycle's results hold open, by number."""
    return {
        g.pull_request.number: OpenPR(g.group, _ref(g.pull_request), g.policies)
        for g in groups
        if g.pull_request is not None and g.pull_request.state == "open" and g.outcome != "closed"
    }


def departed(previous: Mapping[int, OpenPR], groups: Sequence[GroupLike]) -> dict[int, OpenPR]:
    """PRs open last cycle that no result of this one mentions: merged or closed since."""
    seen = {g.pull_request.number for g in groups if g.pull_request is not None}
    return {n: o for n, o in previous.items() if n not in seen}


def listed_transitions(
    gone: Mapping[int, OpenPR], listed: Sequence[PullRequestLike], revision: str, *, at: datetime | None = None
) -> list[Event]:
    """Merged and closed, from the forge's listing of the PRs that left (no state kept)."""
    when, out = at or _now(), []
    for pr in listed:
        was = gone.get(pr.number)
        if was is None or pr.state not in ("merged", "closed"):
            continue
        kind: EventKind = "pullRequestMerged" if pr.state == "merged" else "pullRequestClosed"
        ref = PullRequestRef(pr.number, pr.url, pr.title or was.pr.title, pr.branch or was.pr.branch)
        out.append(_pr_event(kind, was.group, ref, policies=was.policies, versions={}, revision=revision, at=when))
    return out


def streaks_from(history: Sequence[Collection[str]]) -> dict[str, int]:
    """Each policy's failing cycles in a row at the end of ``history`` (oldest first, one set of
    failing policies per cycle)."""
    out: dict[str, int] = {}
    for failing in history:
        out = {p: out.get(p, 0) + 1 for p in failing}
    return out


class FailureStreaks:
    """Counts each policy's failing cycles in a row: one ``policyFailing`` event when a policy
    reaches ``threshold``, one ``policyRecovered`` when such a policy passes again. Seeded from
    the state's recent cycles when there is one, so a restart neither repeats nor forgets."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.streaks: dict[str, int] = {}
        self.seeded = False

    def seed(self, streaks: Mapping[str, int]) -> None:
        self.streaks, self.seeded = dict(streaks), True

    def observe(
        self, failing: Mapping[str, str], scanned: Collection[str], revision: str, *, at: datetime | None = None
    ) -> list[Event]:
        """``failing``: policy -> why, this cycle; ``scanned``: every policy this cycle scanned."""
        when, out = at or _now(), []
        self.seeded = True
        for policy in sorted(scanned):
            was = self.streaks.get(policy, 0)
            if policy in failing:
                now = self.streaks[policy] = was + 1
                if now == self.threshold:
                    message = f"policy {policy} has failed {now} cycles in a row: {failing[policy]}"
                    key = f"policyFailing:{policy}:{_digest([failing[policy]])}"
                    out.append(
                        Event(
                            "policyFailing",
                            "automator",
                            "error",
                            policy,
                            message,
                            key,
                            when,
                            revision=revision,
                            policies=(policy,),
                            details=(failing[policy],),
                        )
                    )
                continue
            self.streaks.pop(policy, None)
            if was >= self.threshold:
                message = f"policy {policy} passes again after {was} failed cycles"
                out.append(
                    Event(
                        "policyRecovered",
                        "automator",
                        "info",
                        policy,
                        message,
                        f"policyRecovered:{policy}:{revision}",
                        when,
                        revision=revision,
                        policies=(policy,),
                    )
                )
        for policy in set(self.streaks) - set(scanned):
            del self.streaks[policy]  # removed or suspended: its spell ends without news
        return out


# --------------------------------------------------------------------------- the synchronizer


class ObjectLike(Protocol):
    """What the events read of :class:`automator.sync.model.ObjectResult`."""

    @property
    def action(self) -> str: ...
    @property
    def drift(self) -> tuple[str, ...]: ...


class WorkloadLike(Protocol):
    """What the events read of :class:`automator.sync.model.WorkloadReport`."""

    @property
    def kind(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def images(self) -> tuple[str, ...]: ...
    @property
    def health(self) -> str: ...
    @property
    def reason(self) -> str: ...


def _shown(w: WorkloadLike) -> str:
    return f"{w.kind} {w.namespace}/{w.name}" if w.namespace else f"{w.kind} {w.name}"


def sync_failed(name: str, revision: str, errors: Sequence[str], *, at: datetime | None = None) -> list[Event]:
    """One ``syncFailed`` when the pass reported errors (fetch, signature, render, apply)."""
    if not errors:
        return []
    first = errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)"
    where = f" at {revision[:12]}" if revision else ""
    return [
        Event(
            "syncFailed",
            "sync",
            "error",
            name,
            f"sync {name} failed{where}: {first}",
            f"syncFailed:{name}:{revision}:{_digest(errors)}",
            at or _now(),
            revision=revision,
            details=tuple(errors[:MAX_DETAILS]),
        )
    ]


def drift_corrected(
    name: str, revision: str, objects: Sequence[tuple[str, ObjectLike]], *, at: datetime | None = None
) -> list[Event]:
    """One ``driftCorrected`` listing the objects found drifted and reverted (``objects``: each
    object's shown name and its result)."""
    fixed = [(shown, o) for shown, o in objects if o.drift and o.action == "configured"]
    if not fixed:
        return []
    details = tuple(f"{shown}: {', '.join(o.drift)}" for shown, o in fixed)
    shown_objects = tuple(shown for shown, _ in fixed)
    count = f"{len(fixed)} object{'s' if len(fixed) != 1 else ''}"
    return [
        Event(
            "driftCorrected",
            "sync",
            "warning",
            name,
            f"sync {name} reverted drift in {count}: {', '.join(shown_objects[:5])}",
            f"driftCorrected:{name}:{revision}:{_digest(details)}",
            at or _now(),
            revision=revision,
            objects=shown_objects,
            details=details[:MAX_DETAILS],
        )
    ]


class RolloutWatch:
    """Workloads the sync gave new images, watched until their health settles: Failed is a
    ``workloadUnhealthy`` event (once per workload and images), Ready ends the watch.

    ``seed`` with what the inventory recorded before the first pass; until seeded, the first
    pass only learns the images (it cannot tell an update from a restart)."""

    def __init__(self) -> None:
        self.images: dict[tuple[str, str, str], tuple[str, ...]] | None = None
        self.pending: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def seed(self, workloads: Iterable[WorkloadLike]) -> None:
        self.images = {(w.kind, w.namespace, w.name): tuple(w.images) for w in workloads}

    def observe(
        self, name: str, revision: str, workloads: Sequence[WorkloadLike], *, at: datetime | None = None
    ) -> list[Event]:
        when, out = at or _now(), []
        before = self.images
        for w in workloads:
            k = (w.kind, w.namespace, w.name)
            if before is not None and before.get(k) != tuple(w.images):
                self.pending[k] = tuple(w.images)
            if self.pending.get(k) != tuple(w.images):
                self.pending.pop(k, None)  # the images moved on again: a new watch starts above
                continue
            if w.health == "Ready":
                del self.pending[k]
            elif w.health == "Failed":
                del self.pending[k]
                out.append(self._event(name, revision, w, when))
        self.images = {(w.kind, w.namespace, w.name): tuple(w.images) for w in workloads}
        self.pending = {k: v for k, v in self.pending.items() if k in self.images}
        return out

    @staticmethod
    def _event(name: str, revision: str, w: WorkloadLike, at: datetime) -> Event:
        shown = _shown(w)
        images = ", ".join(w.images)
        return Event(
            "workloadUnhealthy",
            "sync",
            "error",
            name,
            f"{shown} is unhealthy after the update to {images}: {w.reason}",
            f"workloadUnhealthy:{name}:{shown}:{_digest(w.images)}",
            at,
            revision=revision,
            objects=(shown,),
            details=(f"images: {images}", f"health: {w.health}: {w.reason}"),
        )
