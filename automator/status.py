"""``automator status``: per policy, where each version stands, from the state database and the clusters.

One record, :class:`Status`, built once (:func:`build_status`) from what the state database
kept (:mod:`automator.state`) and what each cluster reports (:mod:`automator.sync.report`), and
rendered as a table (:func:`print_status`) or as JSON/YAML (:func:`status_json`, which the
daemon's ``GET /status`` serves too). Per policy:

* ``newest``: the newest tag in the registry -- the tag the latest listing saw first most
  recently (ties, as in a first listing, broken by version order); ``qualifies``: the tag the
  policy chose in the last cycle; ``git``: what its fields hold on the base branch (the last
  merge recorded, else the last cycle's current value);
* ``pullRequest``: the open pull request proposing it (number, link, version, age);
* per cluster, the version its workloads run (the workloads whose image is the policy's
  repository), the digest its pods run (every digest, when pods of one tag run several; the
  image's own when no pod said), the health and since when, the applied revision and when it was
  applied, and the lead time of each step for the version running (:data:`STAGES`): first
  seen -> pull request opened -> merged (the merge commit's time) -> applied -> healthy;
* one state word (:data:`STATES`) and, for a held or failing policy, why. The mapping is one
  pure function, :func:`state_of`, of the :class:`Facts` gathered for the policy. A row that
  would be up to date is "held" by the variant rule (``variantAware``: the current tag's
  variant and precision are kept) when the newest tag in the registry is not the choice and
  the choice's reason (the chooser's, kept by the state database) names the rule; likewise when
  newer tags were skipped because their signatures did not verify (``verify``): each skip is a
  reason.

Holds the choices do not show (a ``minAge`` cooldown and when it ends, a rollback hold) come
from what the gates recorded (``StateStore.held_back()``), else from
:mod:`automator.state.gates`' ``holds(store)``; without either none is shown
(:func:`gate_holds`, the one hook).

Performance: everything is read with a handful of queries over the whole database, then joined
in memory, so 1,000 policies and 3 clusters answer in well under a second
(``benchmarks/status_bench.py``).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from automator.errors import AutomatorError, ConfigError, InvalidReference
from automator.policy.model import SKIPPED
from automator.refs import ImageRef, parse_reference
from automator.state import ClusterReport as StoredReport
from automator.state import MergeRecord, PREventRecord, StateStore, TagRecord
from automator.sync.model import ClusterReport, WorkloadReport
from automator.sync.settings import pod_namespace

__all__ = [
    "STAGES",
    "STATES",
    "ClusterRow",
    "ClusterVersion",
    "Facts",
    "PolicyStatus",
    "PullRequestView",
    "Status",
    "build_status",
    "cluster_payload",
    "print_status",
    "record_reports",
    "report_from_payload",
    "state_of",
    "status_from_state",
    "status_json",
    "stored_report",
    "tag_of",
    "version_key",
]

UP_TO_DATE, PR_OPEN, MERGED_NOT_APPLIED, UNHEALTHY, HELD, FAILING = (
    "up to date",
    "pull request open",
    "merged not applied",
    "applied and unhealthy",
    "held",
    "failing",
)
STATES = (UP_TO_DATE, PR_OPEN, MERGED_NOT_APPLIED, UNHEALTHY, HELD, FAILING)
STAGES = ("seen_to_pr", "pr_to_merge", "merge_to_applied", "applied_to_healthy", "seen_to_healthy")
NO_TAG = "no tag qualifies"
VARIANT_RULE = "variant rule"  # what a choice's reason says when variantAware kept the current tag's shape
MAX_KUBECONFIG = 1 << 20  # characters of a kubeconfig read to find its namespace
READY = "Ready"


# --------------------------------------------------------------------------- the state words


@dataclass(frozen=True)
class ClusterVersion:
    """What one cluster runs of a policy's image: the version (tag) and the workloads' health."""

    cluster: str
    version: str
    health: str
    reason: str


@dataclass(frozen=True)
class Facts:
    """Everything :func:`state_of` reads of one policy."""

    qualifies: str | None = None  # the tag chosen in the last cycle
    git: tuple[str, ...] = ()  # what the fields hold on the base branch
    error: str | None = None  # the scan's error, or why nothing qualified
    scanned: bool = True  # False: the last cycle did not scan it (suspended, removed)
    open_pr: tuple[int, str] | None = None  # (number, version proposed)
    closed_pr: tuple[int, str] | None = None  # a pull request for ``qualifies`` closed unmerged
    clusters: tuple[ClusterVersion, ...] = ()
    holds: tuple[str, ...] = ()  # gates' reasons (cooldown, rollback hold)
    reason: str | None = None  # why the chooser chose ``qualifies`` (the variant rule), when it said
    newest: str | None = None  # the newest tag in the registry (:func:`newest_tag`)


def _variant_rule(facts: Facts) -> str | None:
    """Why the newest tag in the registry is not the choice, when the variant rule is why: the
    choice's reason names it and the newest tag is another than the one chosen."""
    reason = facts.reason or ""
    if VARIANT_RULE not in reason.lower() or facts.newest is None or facts.newest == facts.qualifies:
        return None
    return reason if reason.lower().startswith(VARIANT_RULE) else f"{VARIANT_RULE}: {reason}"


def _unverified(facts: Facts) -> tuple[str, ...]:
    """Why newer tags are not the choice, when their signatures did not verify (``verify``): the
    parts of the choice's reason that name a skipped tag, while the newest tag is not the choice."""
    if facts.newest is None or facts.newest == facts.qualifies:
        return ()
    return tuple(part for part in (facts.reason or "").split("; ") if part.startswith(SKIPPED))


def state_of(facts: Facts) -> tuple[str, tuple[str, ...]]:
    """The one state word of a policy and, when held or failing (or behind in a cluster), why."""
    if not facts.scanned:
        return HELD, ("suspended (or removed): the last cycle did not scan it",)
    if facts.qualifies is None and facts.error:
        return (HELD if facts.error == NO_TAG else FAILING), (facts.error,)
    if facts.holds:
        return HELD, facts.holds
    if facts.qualifies is not None and facts.qualifies not in facts.git:
        if facts.open_pr is not None:
            return PR_OPEN, ()
        if facts.closed_pr is not None:
            number, version = facts.closed_pr
            return HELD, (f"pull request #{number} for {version} was closed without merging",)
        return FAILING, (f"no pull request proposes {facts.qualifies} (see the last cycle's groups)",)
    behind = tuple(f"{c.cluster} runs {c.version}" for c in facts.clusters if facts.git and c.version not in facts.git)
    if behind:
        return MERGED_NOT_APPLIED, behind
    sick = tuple(
        f"{c.cluster}: {c.health}" + (f" ({c.reason})" if c.reason else "") for c in facts.clusters if c.health != READY
    )
    if sick:
        return UNHEALTHY, sick
    variant = _variant_rule(facts)  # steady, not a step waiting: only where the row would be up to date
    if variant is not None:
        return HELD, (variant,)
    unverified = _unverified(facts)
    if unverified:
        return HELD, unverified
    return UP_TO_DATE, ()


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class PullRequestView:
    number: int
    url: str
    version: str
    opened: datetime
    age: float  # seconds


@dataclass(frozen=True)
class ClusterRow:
    """One cluster's share of a policy: the first workload running its repository, and how many do."""

    cluster: str
    version: str
    digest: str | None
    health: str
    reason: str
    since: datetime
    revision: str
    applied_at: datetime
    workloads: tuple[str, ...]
    lead_times: Mapping[str, float | None] = field(default_factory=dict)
    # every digest the first workload's pods run (most pods first; more than one: a tag pulled
    # twice, re-pushed in between), or the one the image pins; ``digest`` is the first
    digests: tuple[str, ...] = ()
    # the registry's digest for ``version`` when the state learnt it: pods running another one
    # run a tag pushed again since they pulled it (``repushed``)
    registry_digest: str | None = None

    @property
    def repushed(self) -> bool:
        return bool(self.registry_digest and self.digests and self.registry_digest not in self.digests)


@dataclass(frozen=True)
class PolicyStatus:
    policy: str
    repository: str
    newest: str | None
    qualifies: str | None
    git: tuple[str, ...]
    pull_request: PullRequestView | None
    clusters: tuple[ClusterRow, ...]
    state: str
    reasons: tuple[str, ...]
    since: datetime | None = None  # when the last cycle's choice was first made


@dataclass(frozen=True)
class Status:
    generated: datetime
    policies: tuple[PolicyStatus, ...]
    clusters: Mapping[str, ClusterReport]
    cluster_errors: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- building it


def tag_of(version: str) -> str:
    """``repo:tag@digest`` (a pull request's marker) or a bare tag -> the tag."""
    name = version.split("@", 1)[0]
    colon = name.rfind(":")
    return name[colon + 1 :] if colon > name.rfind("/") else name or version


_NUM = re.compile(r"(\d+)")


def version_key(tag: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _NUM.split(tag) if p)


def newest_tag(tags: Iterable[TagRecord]) -> str | None:
    """The tag first seen most recently among those still listed (a tie: the highest version)."""
    listed = [t for t in tags if t.gone is None]
    if not listed:
        return None
    latest = max(t.first_seen for t in listed)
    return max((t.tag for t in listed if t.first_seen == latest), key=version_key)


@dataclass
class _Index:
    """The state database read once: what every policy's row is joined from."""

    tags: dict[tuple[str, str], datetime]  # (repository, tag) -> first seen
    opened: dict[tuple[str, str], datetime]  # (policy, tag) -> the first pull request proposing it
    merged: dict[tuple[str, str], datetime]  # (policy, tag) -> the first merge holding it
    latest_pr: dict[str, PREventRecord]  # policy -> the latest event of its newest pull request
    first_event: dict[int, datetime]  # pull request number -> its first event
    digests: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, tag) -> its digest, when learnt


def _index(
    tags_by_repo: Mapping[str, Sequence[TagRecord]], events: Sequence[PREventRecord], merges: Sequence[MergeRecord]
) -> _Index:
    tags = {(repo, t.tag): t.first_seen for repo, records in tags_by_repo.items() for t in records}
    opened: dict[tuple[str, str], datetime] = {}
    latest_pr: dict[str, PREventRecord] = {}
    first_event: dict[int, datetime] = {}
    for e in events:  # oldest first
        first_event.setdefault(e.number, e.at)
        for policy, version in e.versions.items():
            if e.event in ("opened", "updated"):
                opened.setdefault((policy, tag_of(version)), e.at)
            latest_pr[policy] = e
    merged: dict[tuple[str, str], datetime] = {}
    for m in merges:
        for policy, held in m.versions.items():
            for tag in held:
                merged.setdefault((policy, tag), m.at)
    digests = {(repo, t.tag): t.digest for repo, records in tags_by_repo.items() for t in records if t.digest}
    return _Index(tags, opened, merged, latest_pr, first_event, digests)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def lead_times(
    seen: datetime | None,
    pr: datetime | None,
    merged: datetime | None,
    applied: datetime | None,
    healthy: datetime | None,
) -> dict[str, float | None]:
    """The lead time of each step (:data:`STAGES`); None where a step is not known. A direct
    commit has no pull request: its merge stands for it."""
    pr = pr or merged
    return {
        "seen_to_pr": _seconds(seen, pr),
        "pr_to_merge": _seconds(pr, merged),
        "merge_to_applied": _seconds(merged, applied),
        "applied_to_healthy": _seconds(applied, healthy),
        "seen_to_healthy": _seconds(seen, healthy),
    }


def _workloads_by_repository(
    reports: Mapping[str, ClusterReport],
) -> dict[str, dict[str, list[tuple[WorkloadReport, str, tuple[str, ...]]]]]:
    """repository -> cluster -> [(workload, tag, digests)]: each image reference parsed once.
    The digests are what the workload's pods run (most pods first) or, when no pod said, the
    digest the image pins."""
    out: dict[str, dict[str, list[tuple[WorkloadReport, str, tuple[str, ...]]]]] = {}
    parsed: dict[str, ImageRef | None] = {}  # clusters run the same images: parse each once
    for cluster, report in reports.items():
        for w in report.workloads:
            for i, image in enumerate(w.images):
                if image not in parsed:
                    try:
                        parsed[image] = parse_reference(image)
                    except InvalidReference:
                        parsed[image] = None
                ref = parsed[image]
                if ref is None:
                    continue
                version = ref.tag or (ref.digest or "")
                digests = w.running_digest(i) or ((ref.digest,) if ref.digest else ())
                out.setdefault(ref.repository, {}).setdefault(cluster, []).append((w, version, digests))
    return out


def gate_holds(store: StateStore) -> dict[str, tuple[str, ...]]:
    """Per policy, why its gates held a tag back in the latest cycle (``minAge`` and when it
    ends, a rollback hold): the store's ``held_back()`` when it keeps them, else the rollback
    holds of :mod:`automator.state.gates` (``holds(store)``), else none. The one hook for holds
    the state words cannot see in the choices."""
    held_back: Callable[[], Mapping[str, Any]] | None = getattr(store, "held_back", None)
    if callable(held_back):
        return {policy: (str(getattr(h, "reason", h)),) for policy, h in held_back().items()}
    try:
        gates = importlib.import_module("automator.state.gates")
    except ImportError:
        return {}
    holds: Callable[[StateStore], Mapping[str, Iterable[Any]]] | None = getattr(gates, "holds", None)
    if not callable(holds):
        return {}
    return {policy: tuple(str(getattr(h, "reason", h)) for h in found) for policy, found in holds(store).items()}


def build_status(
    store: StateStore,
    reports: Mapping[str, ClusterReport],
    *,
    now: datetime,
    only: Sequence[str] = (),
    cluster_errors: Mapping[str, str] | None = None,
) -> Status:
    """The status of every policy the state database knows (or of ``only``; a name it does not
    know is a ConfigError listing what it knows), against the clusters' ``reports``."""
    choices = store.latest_choices()
    if only:
        missing = [p for p in only if p not in choices]
        if missing:
            known = ", ".join(sorted(choices)[:20]) or "none yet"
            raise ConfigError(f"policy {', '.join(missing)}: not in the state database (known: {known})")
    events = store.pr_events()
    latest_events = store.latest_pr_events()
    tags_by_repo = store.all_tags()
    index = _index(tags_by_repo, events, store.merges(limit=100_000))
    base = store.base_versions()
    running = _workloads_by_repository(reports)
    holds = gate_holds(store)
    rows = []
    for policy in only or list(choices):
        choice, since = choices[policy]
        repository = choice.repository if choice is not None else _repository_of(store, policy)
        git = base.get(policy) or ((choice.current,) if choice is not None and choice.current else ())
        qualifies = choice.tag if choice is not None else None
        pr_view, open_pr, closed_pr = None, None, None
        last = index.latest_pr.get(policy)
        if last is not None:
            latest = latest_events.get(last.number, last)
            version = tag_of(latest.versions.get(policy, ""))
            if latest.event in ("opened", "updated"):
                opened = index.first_event.get(latest.number, latest.at)
                pr_view = PullRequestView(latest.number, latest.url, version, opened, _seconds(opened, now) or 0.0)
                open_pr = (latest.number, version)
            elif latest.event == "closed" and version == qualifies:
                closed_pr = (latest.number, version)
        cluster_rows, versions = [], []
        for cluster, found in sorted(running.get(repository, {}).items()):
            report = reports[cluster]
            w, version, digests = found[0]
            healthy = w.since if w.health == READY else None
            times = lead_times(
                index.tags.get((repository, version)),
                index.opened.get((policy, version)),
                index.merged.get((policy, version)),
                report.applied_at,
                healthy,
            )
            names = tuple(
                f"{x.kind}/{x.namespace}/{x.name}" if x.namespace else f"{x.kind}/{x.name}" for x, _, _ in found
            )
            cluster_rows.append(
                ClusterRow(
                    cluster,
                    version,
                    digests[0] if digests else None,
                    w.health,
                    w.reason,
                    w.since,
                    report.revision,
                    report.applied_at,
                    names,
                    times,
                    digests,
                    index.digests.get((repository, version)),
                )
            )
            versions.append(ClusterVersion(cluster, version, w.health, w.reason))
        gate = holds.get(policy, ()) if choice is not None else ()
        newest = newest_tag(tags_by_repo.get(repository, ()))
        facts = Facts(
            qualifies=qualifies,
            git=git,
            error=choice.error if choice is not None else None,
            scanned=choice is not None,
            open_pr=open_pr,
            closed_pr=closed_pr,
            clusters=tuple(versions),
            holds=gate,
            reason=choice.reason if choice is not None else None,
            newest=newest,
        )
        state, reasons = state_of(facts)
        rows.append(
            PolicyStatus(
                policy,
                repository,
                newest,
                qualifies,
                git,
                pr_view,
                tuple(cluster_rows),
                state,
                reasons,
                since,
            )
        )
    return Status(now, tuple(rows), dict(reports), dict(cluster_errors or {}))


def _repository_of(store: StateStore, policy: str) -> str:
    """The repository of a policy the last cycles did not scan: from its last scanned choice."""
    for record in reversed(store.choice_history(policy)):
        return record.choice.repository
    return ""


# --------------------------------------------------------------------------- cluster reports in the store


def cluster_payload(report: ClusterReport) -> dict[str, Any]:
    """A report as the state database keeps it (``cluster_reports.payload``): the workloads as the
    inventory writes them."""
    return {
        "appliedAt": report.applied_at.isoformat(),
        "objects": report.objects,
        "omitted": report.omitted,
        "workloads": [w.to_json() for w in report.workloads],
    }


def report_from_payload(cluster: str, revision: str, payload: Mapping[str, Any]) -> ClusterReport:
    workloads = tuple(WorkloadReport.from_json(w) for w in payload.get("workloads", []))
    applied = datetime.fromisoformat(str(payload["appliedAt"]))
    return ClusterReport(
        cluster, revision, applied, workloads, int(payload.get("objects", 0)), int(payload.get("omitted", 0))
    )


def stored_report(record: StoredReport) -> ClusterReport:
    return report_from_payload(record.cluster, record.revision, record.payload)


def status_from_state(directory: Path, now: datetime) -> Status:
    """The status model as the state database under ``directory`` holds it (the clusters as last
    recorded), on a read-only connection of its own: the service's ``/status`` and dashboard,
    beside the loop that writes it."""
    reader = StateStore.read_only(directory)
    try:
        reports = {c: stored_report(r) for c, r in reader.latest_cluster_reports().items()}
        return build_status(reader, reports, now=now)
    finally:
        reader.close()


def record_reports(store: StateStore, reports: Mapping[str, ClusterReport]) -> int:
    """Write each report that differs from its cluster's latest in the store; how many were written."""
    held = store.latest_cluster_reports()
    written = 0
    with store.transaction():
        for cluster, report in reports.items():
            payload = cluster_payload(report)
            last = held.get(cluster)
            if last is not None and last.revision == report.revision and dict(last.payload) == payload:
                continue
            store.record_cluster_report(cluster, report.revision, payload)
            written += 1
    return written


# --------------------------------------------------------------------------- reading the clusters


def cluster_namespace(kubeconfig: Path | None, given: str | None) -> str:
    """Where the synchronizer keeps its inventory: ``--sync-namespace``, else the kubeconfig's
    current context's namespace, else (in the cluster) the pod's namespace, else ``default``."""
    if given:
        return given
    if kubeconfig is not None:
        try:
            doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8")[:MAX_KUBECONFIG])
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            doc = None  # the client says what is wrong with it when it reads it
        if isinstance(doc, dict):
            current = doc.get("current-context")
            for entry in doc.get("contexts") or ():
                if isinstance(entry, dict) and entry.get("name") == current:
                    namespace = (entry.get("context") or {}).get("namespace")
                    if isinstance(namespace, str) and namespace:
                        return namespace
        return "default"
    return pod_namespace()


def read_clusters(
    flags: Sequence[str], *, sync_name: str, namespace: str | None, inventory_kind: str
) -> tuple[dict[str, ClusterReport], dict[str, str]]:
    """Each ``--cluster NAME=KUBECONFIG``'s report read from its synchronizer's inventory, and
    per cluster that could not be read, why (a bad flag is a ConfigError, before any is read)."""
    from automator.sync.report import parse_cluster_flag, read_cluster  # noqa: PLC0415  (the Kubernetes client)

    parsed = [parse_cluster_flag(flag) for flag in flags]
    reports: dict[str, ClusterReport] = {}
    errors: dict[str, str] = {}
    for name, kubeconfig in parsed:
        ns = cluster_namespace(kubeconfig, namespace)
        try:
            report = read_cluster(kubeconfig, name=sync_name, namespace=ns, inventory_kind=inventory_kind, cluster=name)
        except AutomatorError as exc:
            errors[name] = str(exc)
            continue
        if report is None:
            errors[name] = f"no inventory of sync {sync_name!r} in namespace {ns!r} yet (--sync-name, --sync-namespace)"
        else:
            reports[name] = report
    return reports, errors


RECENT_COMMITS = 5  # the base branch's commits whose statuses are read, newest first


def forge_reports(
    statuses: Callable[[str], list[dict[str, Any]]], revisions: Sequence[str]
) -> tuple[dict[str, ClusterReport], dict[str, str]]:
    """Without cluster access: per cluster (a commit status context ``automator/sync/NAME``) the
    report of the newest of ``revisions`` (the base branch's, newest first) that has one."""
    from automator.sync.report import parse_commit_statuses  # noqa: PLC0415

    reports: dict[str, ClusterReport] = {}
    errors: dict[str, str] = {}
    for revision in revisions[:RECENT_COMMITS]:
        try:
            found = parse_commit_statuses(statuses(revision), revision=revision)
        except AutomatorError as exc:
            errors["forge"] = str(exc)
            break
        for cluster, report in found.items():
            reports.setdefault(cluster, report)
    return reports, errors


# --------------------------------------------------------------------------- rendering


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def status_json(status: Status) -> dict[str, Any]:
    """``automator status --output json`` and the daemon's ``GET /status``: the same document."""
    return {
        "generated": _iso(status.generated),
        "policies": [
            {
                "policy": p.policy,
                "image": p.repository,
                "state": p.state,
                "reasons": list(p.reasons),
                "newest": p.newest,
                "qualifies": p.qualifies,
                "git": list(p.git),
                "chosenSince": _iso(p.since),
                "pullRequest": None
                if p.pull_request is None
                else {
                    "number": p.pull_request.number,
                    "url": p.pull_request.url,
                    "version": p.pull_request.version,
                    "opened": _iso(p.pull_request.opened),
                    "ageSeconds": p.pull_request.age,
                },
                "clusters": [
                    {
                        "cluster": c.cluster,
                        "version": c.version,
                        "digest": c.digest,
                        "digests": list(c.digests),
                        "registryDigest": c.registry_digest,
                        "repushed": c.repushed,
                        "health": c.health,
                        "reason": c.reason or None,
                        "since": _iso(c.since),
                        "revision": c.revision,
                        "appliedAt": _iso(c.applied_at),
                        "workloads": list(c.workloads),
                        "leadTimes": dict(c.lead_times),
                    }
                    for c in p.clusters
                ],
            }
            for p in status.policies
        ],
        "clusters": [
            {"cluster": name, "revision": r.revision, "appliedAt": _iso(r.applied_at), "workloads": len(r.workloads)}
            for name, r in sorted(status.clusters.items())
        ],
        "clusterErrors": dict(status.cluster_errors),
    }


def duration_text(seconds: float | None) -> str:
    """``1d2h``, ``3h5m``, ``4m10s``, ``9s``: the two largest units; ``-`` when not known."""
    if seconds is None:
        return "-"
    s = int(seconds)
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    first = next((i for i, (n, _) in enumerate(parts) if n), len(parts) - 1)
    return "".join(f"{n}{u}" for n, u in parts[first : first + 2] if n) or "0s"


def dump(doc: Any, output: str, out: TextIO) -> None:
    """``--output yaml`` as :func:`automator.report.dump` writes it; ``--output json`` with one
    line per policy (or per item of any top-level list), which greps well and is written by the
    C encoder (``indent`` takes the pure-Python one: 0.2 s for 1,000 policies).

    Not that function itself: :mod:`automator.report` imports the registry client and the policy
    loader (a third of a second), and ``automator status`` answers in under one."""
    if output == "yaml":
        yaml.safe_dump(doc, out, sort_keys=False, allow_unicode=True, default_flow_style=False)
        return
    if not isinstance(doc, dict):
        out.write(json.dumps(doc) + "\n")
        return
    parts = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n".join("    " + json.dumps(item) for item in value)
            parts.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    out.write("{\n" + ",\n".join(parts) + "\n}\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """:func:`automator.report.print_table` on a terminal (rich); else the same plain columns,
    without importing that module (see :func:`dump`)."""
    if out.isatty():
        from automator.report import print_table as rich_table  # noqa: PLC0415

        rich_table(headers, rows, out)
        return
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers[:-1])]
    for row in (headers, *rows):
        cells = [f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def print_status(status: Status, out: TextIO) -> None:
    """A row per policy, then a row per policy and cluster (what runs there, the lead time of
    each step of that version), then why for each held or failing policy."""
    rows: list[tuple[str, ...]] = []
    running: list[tuple[str, ...]] = []
    why: list[str] = []
    for p in status.policies:
        pr = p.pull_request
        shown = "-" if pr is None else f"#{pr.number} {pr.version} ({duration_text(pr.age)}) {pr.url}"
        rows.append((p.policy, p.state, p.newest or "-", p.qualifies or "-", ",".join(p.git) or "-", shown))
        for c in p.clusters:
            lead = " ".join(
                f"{stage.split('_to_')[1]}+{duration_text(c.lead_times.get(stage))}" for stage in STAGES[:4]
            )
            version = c.version + (f"@{c.digest[:19]}" if c.digest and c.digest != c.version else "")
            if len(c.digests) > 1:
                version += f" (+{len(c.digests) - 1} other digest{'s' if len(c.digests) > 2 else ''})"
            if c.repushed:
                version += f" (re-pushed: the registry's is {str(c.registry_digest)[:19]})"
            since = _iso(c.since) or "-"
            running.append((p.policy, c.cluster, version, c.health, since, c.revision[:12], lead))
        why.extend(f"{p.policy}: {p.state}: {reason}" for reason in p.reasons)
    print_table(("POLICY", "STATE", "NEWEST", "QUALIFIES", "GIT", "PULL REQUEST"), rows, out)
    if running:
        print(file=out)
        headers = ("POLICY", "CLUSTER", "RUNS", "HEALTH", "SINCE", "REVISION", "LEAD TIMES")
        print_table(headers, running, out)
    if why:
        print(file=out)
    for line in why:
        print(line, file=out)
    for cluster, error in sorted(status.cluster_errors.items()):
        print(f"cluster {cluster}: {error}", file=out)
