"""Whether a version has proved itself where it went first: the promotion gate's judgement, pure.

A policy with ``spec.promotion.after`` proposes a tag only once, in every cluster named, a
workload runs that tag of the policy's image and has been Ready for ``healthyFor`` (and the
step's query, which the scan asks Prometheus separately, holds over that time). The evidence is
what the synchronizers report (:class:`ClusterEvidence`, made by
:func:`automator.state.gates.promotion_evidence` from the state database and this cycle's read
of each ``--cluster``):

* **passes**: every workload of the cluster that runs ``<repository>:<tag>`` is Ready, the
  latest since ``since`` (the synchronizer's time of its health, or when the automator first
  recorded it running the tag, whichever is later), and ``now - since`` is at least
  ``healthyFor``; or the cluster ran it so, Ready that long, before it moved on to a newer tag
  (a version proved once stays proved while the next one soaks). The proof says where, since
  when and for how long; the query (if any) is judged over the last ``healthyFor`` of that run.
* **waits** (with when it may pass): the cluster could not be read this cycle, has reported
  nothing yet, does not run the tag (yet), runs it but not Ready yet (a rollout in progress), or
  Ready for less than ``healthyFor`` ("waiting for staging: healthy 12 of 30 min").
* **is blocked**, for good: any report kept shows a workload running the tag **Failed** there
  ("blocked: unhealthy in staging since ..."), or the cluster ran the tag and now runs an older
  one (a rollback: "blocked: rolled back in staging ..."). Setting the tag by hand on the later
  environment (or ``pin``) is the way past it; a newer tag is judged on its own.

A workload counts by what it runs (its images as applied), not by its name: staging and
production usually name it alike, but nothing requires it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from automator.policy.model import PromotionStep

READY = "Ready"
FAILED = "Failed"


@dataclass(frozen=True)
class Running:
    """One workload running one image, as one report of one cluster said."""

    workload: str  # kind/namespace/name
    repository: str  # the image's repository (ImageRef.repository)
    tag: str | None
    health: str  # automator.sync.model.Health's values
    since: datetime  # since when that health holds (the synchronizer's clock)
    reason: str = ""


@dataclass(frozen=True)
class Report:
    """One report of one cluster: when the automator recorded it, and what ran."""

    at: datetime
    running: tuple[Running, ...]


@dataclass(frozen=True)
class ClusterEvidence:
    """What is known of one cluster: its reports kept (oldest first, the latest last) and, when
    this cycle could not read it, why (its latest report is then not evidence of now)."""

    cluster: str
    reports: tuple[Report, ...] = ()
    error: str = ""

    @property
    def latest(self) -> Report | None:
        return self.reports[-1] if self.reports else None


@dataclass(frozen=True)
class StepVerdict:
    """One step's answer for one tag: ``ok`` with the proof, or held with why (``blocked``: for
    good; else ``until``, when it may pass if nothing changes, when known)."""

    ok: bool
    reason: str
    blocked: bool = False
    until: datetime | None = None
    since: datetime | None = None  # Ready there since (ok, or waiting on the soak)
    window: tuple[datetime, datetime] | None = None  # ok: the soak the step's query must hold over


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _progress(healthy: float, soak: float) -> str:
    """How much of the soak has passed, as a person reads it: "12 of 30 min" (whole minutes;
    seconds for a soak under two minutes: "3 of 5 s")."""
    if soak < 120:
        return f"{int(healthy)} of {soak:g} s"
    return f"{int(healthy // 60)} of {soak / 60:g} min"


def _span(seconds: float) -> str:
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    return f"{int(seconds // 60)} min" if seconds >= 60 else f"{int(seconds)} s"


def judge_step(
    step: PromotionStep,
    repository: str,
    tag: str,
    evidence: ClusterEvidence | None,
    now: datetime,
    *,
    better: Callable[[str, str], bool],
) -> StepVerdict:
    """The gate of one ``after`` step for ``repository:tag`` (see the module docstring).
    ``better(a, b)``: whether the policy ranks tag ``a`` above ``b`` (to tell a rollback from a
    move forward)."""
    where = step.cluster
    soak = step.healthy_for_seconds
    if evidence is None or not evidence.reports:
        why = evidence.error if evidence is not None and evidence.error else "it has reported nothing yet"
        return StepVerdict(False, f"waiting for {where}: {why}")
    failed = _first_failure(evidence.reports, repository, tag)
    if failed is not None:
        reason = f" ({failed.reason})" if failed.reason else ""
        return StepVerdict(False, f"blocked: unhealthy in {where} since {_stamp(failed.since)}{reason}", blocked=True)
    latest = evidence.latest
    assert latest is not None
    if evidence.error:
        return StepVerdict(False, f"waiting for {where}: cannot read it this cycle ({evidence.error})")
    mine = [r for r in latest.running if r.repository == repository]
    running = [r for r in mine if r.tag == tag]
    if not running:
        others = sorted({r.tag for r in mine if r.tag})
        back = _rolled_back(evidence.reports, repository, tag, others, better)
        if back is not None:
            return StepVerdict(False, f"blocked: rolled back in {where}: {back}", blocked=True)
        proven = _proven_run(evidence.reports, repository, tag, soak)
        if proven is not None:
            start, end, workloads = proven
            proof = (
                f"ran in {where} ({workloads}) Ready from {_stamp(start)} to {_stamp(end)},"
                f" {_span((end - start).total_seconds())} (healthyFor {step.healthy_for or _span(soak)})"
            )
            return StepVerdict(True, proof, since=start, window=(end - timedelta(seconds=soak), end))
        runs = f" (it runs {', '.join(others)})" if others else ""
        return StepVerdict(False, f"waiting for {where}: {tag} is not running there{runs}")
    unready = [r for r in running if r.health != READY]
    if unready:
        r = unready[0]
        reason = f": {r.reason}" if r.reason else ""
        return StepVerdict(False, f"waiting for {where}: {tag} is {r.health} there ({r.workload}{reason})")
    since = max(max(r.since, _running_since(evidence.reports, r.workload, repository, tag)) for r in running)
    healthy = max(0.0, (now - since).total_seconds())
    if healthy < soak:
        due = since + timedelta(seconds=soak)
        why = f"waiting for {where}: healthy {_progress(healthy, soak)}"
        return StepVerdict(False, why, until=due, since=since)
    workloads = ", ".join(sorted(r.workload for r in running))
    proof = (
        f"ran in {where} ({workloads}) Ready since {_stamp(since)}, {_span(healthy)}"
        f" (healthyFor {step.healthy_for or _span(soak)})"
    )
    return StepVerdict(True, proof, since=since, window=(now - timedelta(seconds=soak), now))


def _proven_run(
    reports: Sequence[Report], repository: str, tag: str, soak: float
) -> tuple[datetime, datetime, str] | None:
    """The latest run of reports, before the latest, in which every workload running the tag was
    Ready for at least ``soak`` seconds: its start (the later of the synchronizer's ``since``
    and the first report of the run), its end (the report that saw it end) and the workloads."""
    found = None
    start: datetime | None = None
    workloads = ""
    for report in reports:
        entries = [r for r in report.running if r.repository == repository and r.tag == tag]
        ok = bool(entries) and all(r.health == READY for r in entries)
        if ok and start is None:
            start = max(report.at, *(r.since for r in entries))
            workloads = ", ".join(sorted(r.workload for r in entries))
        elif not ok and start is not None:
            if (report.at - start).total_seconds() >= soak:
                found = (start, report.at, workloads)
            start = None
    return found


def _running_since(reports: Sequence[Report], workload: str, repository: str, tag: str) -> datetime:
    """When the automator first recorded ``workload`` running the tag, in the unbroken run of
    reports up to the latest: a synchronizer's ``since`` is its health's, which an older version
    may not reset, so the soak never counts from before the tag was seen there."""
    first = reports[-1].at
    for report in reversed(reports):
        if not any(r.workload == workload and r.repository == repository and r.tag == tag for r in report.running):
            break
        first = report.at
    return first


def _first_failure(reports: Sequence[Report], repository: str, tag: str) -> Running | None:
    for report in reports:
        for r in report.running:
            if r.repository == repository and r.tag == tag and r.health == FAILED:
                return r
    return None


def _rolled_back(
    reports: Sequence[Report], repository: str, tag: str, now_runs: Sequence[str], better: Callable[[str, str], bool]
) -> str | None:
    """How the cluster went back from ``tag`` to an older one, if it ran ``tag`` once."""
    ran = [i for i, rep in enumerate(reports) if any(r.repository == repository and r.tag == tag for r in rep.running)]
    if not ran or not now_runs or not all(better(tag, other) for other in now_runs):
        return None
    seen = reports[ran[-1] + 1].at if ran[-1] + 1 < len(reports) else reports[-1].at
    return f"it went from {tag} back to {', '.join(now_runs)} (seen {_stamp(seen)})"
