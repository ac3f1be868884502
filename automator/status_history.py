"""``automator history POLICY``: each version's timeline, and the lead times the daemon observes.

A version's steps, each from the state database (:mod:`automator.state`): first seen (the tags
table: when a listing first showed it; ``rebuilt`` when the database was started afresh after
it was pushed; and the registry webhook that first announced it, when one did), the pull
request that proposed it opened (the first ``opened``/``updated`` event naming it), merged
(the first merge after which the policy's fields hold it: the commit's time), and per cluster
applied (the first report the cluster gave in which a workload running the policy's
repository runs it: that report's applied time) and healthy (the first such report saying
Ready: since when). Cluster reports are in the database when ``automator run`` or
``automator status`` was given ``--cluster`` (with ``--state-dir``).

The lead time of each step (:data:`automator.status.STAGES`) is the time between two steps;
:func:`completed_steps` lists the steps completed, which the service turns into the
``automator_lead_time_seconds{stage}`` histograms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from automator.errors import ConfigError, InvalidReference
from automator.refs import parse_reference
from automator.state import StateStore
from automator.status import READY, duration_text, lead_times, stored_report, tag_of, version_key

__all__ = ["ClusterSteps", "VersionHistory", "completed_steps", "histories", "history_json", "print_history"]


@dataclass(frozen=True)
class ClusterSteps:
    cluster: str
    applied: datetime | None
    revision: str
    healthy: datetime | None
    lead_times: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionHistory:
    policy: str
    version: str
    seen: datetime | None
    rebuilt: bool
    pull_request: tuple[int, str] | None  # (number, url)
    opened: datetime | None
    merged: datetime | None
    clusters: tuple[ClusterSteps, ...]
    lead_times: Mapping[str, float | None] = field(default_factory=dict)  # seen_to_pr, pr_to_merge
    announced: tuple[str, datetime] | None = None  # the webhook that first announced it, and when


def histories(store: StateStore, only: Sequence[str] = ()) -> dict[str, list[VersionHistory]]:
    """Per policy (every one the database knows, or ``only``; one it does not know is a
    ConfigError), its versions oldest first."""
    choices = store.latest_choices()
    repositories = {p: c.repository for p, (c, _) in choices.items() if c is not None}
    for policy in choices:
        if policy not in repositories:
            found = store.choice_history(policy)
            repositories[policy] = found[-1].choice.repository if found else ""
    missing = [p for p in only if p not in repositories]
    if missing:
        known = ", ".join(sorted(repositories)[:20]) or "none yet"
        raise ConfigError(f"policy {', '.join(missing)}: not in the state database (known: {known})")
    wanted = list(only) or sorted(repositories)
    tags = {(repo, t.tag): t for repo, records in store.all_tags().items() for t in records}
    announced = store.announcements()
    versions: dict[str, dict[str, None]] = {p: {} for p in wanted}
    for p in wanted:
        for record in store.choice_history(p) if only else ():
            if record.choice.tag:
                versions[p].setdefault(record.choice.tag)
    if not only:
        for p, (c, _) in choices.items():
            if c is not None and c.tag:
                versions[p].setdefault(c.tag)
    opened: dict[tuple[str, str], tuple[datetime, int, str]] = {}
    for e in store.pr_events():
        for p, version in e.versions.items():
            if p in versions and e.event in ("opened", "updated"):
                tag = tag_of(version)
                opened.setdefault((p, tag), (e.at, e.number, e.url))
                versions[p].setdefault(tag)
    merged: dict[tuple[str, str], datetime] = {}
    for m in store.merges(limit=100_000):
        for p, held in m.versions.items():
            if p in versions:
                for tag in held:
                    merged.setdefault((p, tag), m.at)
                    versions[p].setdefault(tag)
    by_repo: dict[str, list[str]] = {}
    for p in wanted:
        by_repo.setdefault(repositories[p], []).append(p)
    applied: dict[tuple[str, str, str], tuple[datetime, str]] = {}  # (repository, tag, cluster)
    healthy: dict[tuple[str, str, str], datetime] = {}
    for kept in store.cluster_reports(limit=1_000_000):
        report = stored_report(kept)
        for w in report.workloads:
            for image in w.images:
                try:
                    ref = parse_reference(image)
                except InvalidReference:
                    continue
                if ref.repository not in by_repo or not ref.tag:
                    continue
                key = (ref.repository, ref.tag, report.cluster)
                applied.setdefault(key, (report.applied_at, report.revision))
                if w.health == READY:
                    healthy.setdefault(key, w.since)
                for p in by_repo[ref.repository]:
                    versions[p].setdefault(ref.tag)
    clusters_of: dict[tuple[str, str], list[str]] = {}
    for repo, tag, cluster in applied:
        clusters_of.setdefault((repo, tag), []).append(cluster)
    out: dict[str, list[VersionHistory]] = {}
    for p in wanted:
        repo = repositories[p]
        rows = []
        for tag in versions[p]:
            seen_record = tags.get((repo, tag))
            seen = seen_record.first_seen if seen_record else None
            pr = opened.get((p, tag))
            pr_at = pr[0] if pr else None
            merge_at = merged.get((p, tag))
            steps = []
            for cluster in sorted(clusters_of.get((repo, tag), ())):
                at, revision = applied[(repo, tag, cluster)]
                ready = healthy.get((repo, tag, cluster))
                steps.append(ClusterSteps(cluster, at, revision, ready, lead_times(seen, pr_at, merge_at, at, ready)))
            own = lead_times(seen, pr_at, merge_at, None, None)
            rows.append(
                VersionHistory(
                    p,
                    tag,
                    seen,
                    bool(seen_record and seen_record.rebuilt),
                    (pr[1], pr[2]) if pr else None,
                    pr_at,
                    merge_at,
                    tuple(steps),
                    {k: own[k] for k in ("seen_to_pr", "pr_to_merge")},
                    announced.get((repo, tag)),
                )
            )
        rows.sort(key=lambda v: (v.seen is None, v.seen or datetime.min, version_key(v.version)))
        out[p] = rows
    return out


def completed_steps(
    found: Mapping[str, Iterable[VersionHistory]],
) -> list[tuple[tuple[str, ...], str, float, datetime]]:
    """Every step completed: (a key naming it once, the stage, its lead time, when it completed)."""
    out: list[tuple[tuple[str, ...], str, float, datetime]] = []
    for policy, rows in found.items():
        for v in rows:
            pr_at = v.opened or v.merged
            for stage, end in (("seen_to_pr", pr_at), ("pr_to_merge", v.merged)):
                seconds = v.lead_times.get(stage)
                if seconds is not None and end is not None:
                    out.append(((policy, v.version, "", stage), stage, seconds, end))
            for c in v.clusters:
                for stage, end in (
                    ("merge_to_applied", c.applied),
                    ("applied_to_healthy", c.healthy),
                    ("seen_to_healthy", c.healthy),
                ):
                    seconds = c.lead_times.get(stage)
                    if seconds is not None and end is not None:
                        out.append(((policy, v.version, c.cluster, stage), stage, seconds, end))
    return out


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def history_json(policy: str, rows: Sequence[VersionHistory]) -> dict[str, Any]:
    return {
        "policy": policy,
        "versions": [
            {
                "version": v.version,
                "firstSeen": _iso(v.seen),
                "rebuilt": v.rebuilt,
                "announcedBy": None if v.announced is None else {"source": v.announced[0], "at": _iso(v.announced[1])},
                "pullRequest": None
                if v.pull_request is None
                else {"number": v.pull_request[0], "url": v.pull_request[1]},
                "opened": _iso(v.opened),
                "merged": _iso(v.merged),
                "leadTimes": dict(v.lead_times),
                "clusters": [
                    {
                        "cluster": c.cluster,
                        "applied": _iso(c.applied),
                        "revision": c.revision,
                        "healthy": _iso(c.healthy),
                        "leadTimes": dict(c.lead_times),
                    }
                    for c in v.clusters
                ],
            }
            for v in rows
        ],
    }


def print_history(policy: str, rows: Sequence[VersionHistory], out: TextIO) -> None:
    """Per version, one line per step with the lead time since the step before."""
    print(f"policy {policy}", file=out)
    if not rows:
        print("  no versions recorded yet", file=out)
    for v in rows:
        seen = _iso(v.seen) or "-"
        print(f"{v.version}", file=out)
        note = " (rebuilt: pushed before the database began)" if v.rebuilt else ""
        if v.announced is not None:
            note += f" (announced by the {v.announced[0]} webhook at {_iso(v.announced[1])})"
        print(f"  first seen     {seen}{note}", file=out)
        if v.pull_request is not None:
            number, url = v.pull_request
            lead = duration_text(v.lead_times.get("seen_to_pr"))
            print(f"  pull request   {_iso(v.opened)}  +{lead}  #{number} {url}", file=out)
        if v.merged is not None:
            print(f"  merged         {_iso(v.merged)}  +{duration_text(v.lead_times.get('pr_to_merge'))}", file=out)
        for c in v.clusters:
            applied = duration_text(c.lead_times.get("merge_to_applied"))
            print(f"  applied  {c.cluster:<6} {_iso(c.applied)}  +{applied}  {c.revision[:12]}", file=out)
            if c.healthy is not None:
                ready = duration_text(c.lead_times.get("applied_to_healthy"))
                total = duration_text(c.lead_times.get("seen_to_healthy"))
                print(f"  healthy  {c.cluster:<6} {_iso(c.healthy)}  +{ready}  (seen to healthy {total})", file=out)
