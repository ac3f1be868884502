"""Commit statuses for the applied revision, through any object with ``set_commit_status``.

The synchronizer and the forge stage are siblings (neither imports the other), so this module
only states what it needs — :class:`CommitStatusReporter`, which ``automator.forge``'s GitHub,
GitLab and in-memory forges already satisfy — and the CLI edge builds the forge from the
``--commit-status*`` flags and hands it over as ``args.status_reporter_factory``.

What the status says
--------------------

Its context (GitHub ``context``, GitLab ``name``) is ``--commit-status-context``, by default
``automator/sync/NAME``: the cluster a reader files it under is the context without that
prefix. Its state is ``failure`` when the sync failed or a workload's health is Failed,
``pending`` while any workload is not Ready (Progressing, Terminating, Unknown) and ``success``
once every one is; a suspended sync is ``pending``. A failed sync's description is the first
error. Otherwise the description is a summary of what runs, made to be read back
(:func:`parse_summary`) and at most 140 characters (GitHub's limit; GitLab allows 255)::

    applied 12 objects in prod; ready: deploy/web=ghcr.io/x/web:1.2.3 sts/db=postgres:16;
    progressing: deploy/api=ghcr.io/x/api:2.0; +3 more

Sections are separated by ``"; "``:

* ``applied N object(s)``, then `` in NAMESPACE`` when every listed workload is in that one
  namespace — always first;
* ``HEALTH: TOKEN TOKEN ...`` for each health in the order ready, progressing, failed,
  terminating, unknown; a token is ``KIND/NAME=IMAGE[,IMAGE...]`` (with the namespace,
  ``KIND/NAMESPACE/NAME=...``, when there is no `` in NAMESPACE``), the images init containers
  first, and KIND one of kubectl's short names: deploy, sts, ds, rs, job, cj, po;
* ``+K more``: K workloads left out — the tokens that did not fit, in apply order, plus any the
  inventory itself left out;
* ``no workloads`` when the revision has none.

Nothing in the grammar can occur in an image reference or an object name (``;``, spaces,
``=``, ``,``), so it parses without quoting. The health reasons and the times are not in it: a
reader dates a workload's health by the first status that reported it (see
:func:`automator.sync.report.parse_commit_statuses`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from automator.errors import AutomatorError
from automator.sync.model import ClusterReport, Health, SyncResult, WorkloadReport

log = logging.getLogger("automator.sync")

State = Literal["pending", "success", "failure", "error"]
MAX_DESCRIPTION = 140
CONTEXT_PREFIX = "automator/sync/"
SHORT_KINDS = {
    "Deployment": "deploy",
    "StatefulSet": "sts",
    "DaemonSet": "ds",
    "ReplicaSet": "rs",
    "Job": "job",
    "CronJob": "cj",
    "Pod": "po",
}
KINDS = {short: kind for kind, short in SHORT_KINDS.items()}
HEALTH_WORDS = {h.value.lower(): h for h in Health}  # ready, progressing, failed, terminating, unknown
_HEADER = re.compile(r"applied (\d+) objects?(?: in ([a-z0-9][a-z0-9.-]*))?")
_MORE = re.compile(r"\+(\d+) more")
_TOKEN = re.compile(r"([a-z]+)/(?:([a-z0-9][a-z0-9-]*)/)?([a-z0-9][a-z0-9.-]*)=([^\s;=]*)")


class CommitStatusReporter(Protocol):
    def set_commit_status(
        self, sha: str, state: State, context: str, description: str = "", url: str | None = None
    ) -> None: ...


def describe(result: SyncResult) -> tuple[State, str]:
    """The commit state and a one-line description (at most 140 characters) of one run."""
    if result.suspended:
        return "pending", "sync suspended"
    if not result.ok:
        first = result.errors[0] if result.errors else "an object failed"
        return "failure", f"{len(result.errors)} error(s): {first}"[:MAX_DESCRIPTION]
    if result.report is not None:
        return state_of(result.report), summarize(result.report)
    counts: dict[str, int] = {}
    for o in result.objects:
        counts[str(o.action)] = counts.get(str(o.action), 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    return "success", f"applied: {summary or 'no objects'}"[:MAX_DESCRIPTION]


def state_of(report: ClusterReport) -> State:
    healths = {w.health for w in report.workloads}
    if Health.FAILED in healths:
        return "failure"
    return "pending" if healths - {Health.READY} else "success"


def summarize(report: ClusterReport, limit: int = MAX_DESCRIPTION) -> str:
    """The description of ``report`` in the grammar of the module docstring, within ``limit``."""
    namespaces = {w.namespace for w in report.workloads}
    shared = next(iter(namespaces)) if len(namespaces) == 1 else ""
    header = f"applied {report.objects} object{'' if report.objects == 1 else 's'}"
    header += f" in {shared}" if shared else ""
    if not report.workloads and not report.omitted:
        return f"{header}; no workloads"[:limit]
    tokens = [(w, _token(w, shared)) for w in report.workloads]
    for reserve in (0, len("; +999 more")):
        kept, text = _fill(header, tokens, limit - reserve)
        omitted = report.omitted + len(tokens) - kept
        if not omitted:
            return text
        if reserve:
            return f"{text}; +{omitted} more"
    raise AssertionError("unreachable")


def _token(w: WorkloadReport, shared: str) -> str:
    where = w.name if shared else f"{w.namespace}/{w.name}"
    return f"{SHORT_KINDS.get(w.kind, w.kind.lower())}/{where}={','.join(w.images)}"


def _fill(header: str, tokens: Sequence[tuple[WorkloadReport, str]], limit: int) -> tuple[int, str]:
    """Add tokens in apply order, grouped by health, while they fit; (how many fit, the text)."""
    kept = 0
    sections: dict[str, list[str]] = {}
    length = len(header)
    for w, token in tokens:
        word = w.health.lower()
        cost = 1 + len(token) if word in sections else len(f"; {word}: {token}")
        if length + cost > limit:
            continue
        sections.setdefault(word, []).append(token)
        length += cost
        kept += 1
    ordered = [f"{word}: {' '.join(sections[word])}" for word in HEALTH_WORDS if word in sections]
    return kept, "; ".join([header, *ordered])


@dataclass(frozen=True)
class Summary:
    """A description read back: the objects applied, each listed workload, how many were left out."""

    objects: int
    workloads: tuple[tuple[str, str, str, tuple[str, ...], str], ...]  # kind, namespace, name, images, health
    omitted: int


def parse_summary(description: str) -> Summary | None:
    """The inverse of :func:`summarize`; None when ``description`` is not one (a failure, another tool's)."""
    sections = description.split("; ")
    header = _HEADER.fullmatch(sections[0])
    if header is None:
        return None
    shared = header[2] or ""
    workloads: list[tuple[str, str, str, tuple[str, ...], str]] = []
    omitted = 0
    for section in sections[1:]:
        if section == "no workloads":
            continue
        if more := _MORE.fullmatch(section):
            omitted += int(more[1])
            continue
        word, sep, rest = section.partition(": ")
        if not sep or word not in HEALTH_WORDS:
            return None
        for token in rest.split(" "):
            m = _TOKEN.fullmatch(token)
            if m is None or m[1] not in KINDS or (m[2] is None) == (not shared):
                omitted += 1  # not a token this grammar writes: count it, do not guess
                continue
            images = tuple(i for i in m[4].split(",") if i)
            workloads.append((KINDS[m[1]], m[2] or shared, m[3], images, str(HEALTH_WORDS[word])))
    return Summary(int(header[1]), tuple(workloads), omitted)


class StatusPublisher:
    """Publish each revision's outcome once per change of what it says (an agent resyncs every minute)."""

    def __init__(self, reporter: CommitStatusReporter, context: str) -> None:
        self.reporter = reporter
        self.context = context
        self._last: tuple[str, State, str] | None = None

    def publish(self, result: SyncResult) -> None:
        if not result.revision:
            return  # nothing was fetched: there is no commit to mark
        state, description = describe(result)
        if self._last == (result.revision, state, description):
            return
        try:
            self.reporter.set_commit_status(result.revision, state, self.context, description)
        except AutomatorError as exc:
            log.warning("cannot set the commit status on %s: %s", result.revision[:12], exc)
            return
        self._last = (result.revision, state, description)
