"""What runs where, read back: from a cluster's inventory, or from the forge's commit statuses.

The automator's side of the loop: after it merged an update it can see, per cluster, which
revision was applied and which images each workload runs, how healthy it is and since when.

* :func:`read_cluster` reads the inventory object a sync keeps (see :mod:`.inventory`) with a
  kubeconfig, or the in-cluster config: ``get`` on one ConfigMap (or Secret) is all it needs.
* :func:`parse_commit_statuses` reads the commit statuses the synchronizer posts (see
  :mod:`.status` for the grammar) when there is no cluster access: what the forge's list
  endpoints return — GitHub's ``GET /repos/{owner}/{repo}/commits/{ref}/statuses`` (``context``,
  ``description``, ``created_at``, ``url`` ending in the SHA) or GitLab's
  ``GET /projects/:id/repository/commits/:sha/statuses`` (``name``, ``description``,
  ``created_at``, ``sha``), as JSON objects.
* :func:`parse_cluster_flag` parses the automator's ``--cluster NAME=KUBECONFIG``.

A commit status carries no reasons and no times, so a report read from the forge has empty
reasons, ``applied_at`` the time of the first status in its context for that revision, and each
workload's ``since`` the time of the first status in an unbroken run that gave it its current
health (the forge's clock, not the cluster's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from automator.errors import ConfigError
from automator.sync import inventory
from automator.sync.cluster import KubeCluster
from automator.sync.model import EPOCH, ClusterReport, WorkloadReport, parse_time
from automator.sync.status import CONTEXT_PREFIX, Summary, parse_summary

__all__ = ["ClusterReport", "WorkloadReport", "parse_cluster_flag", "parse_commit_statuses", "read_cluster"]

_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SHA_IN_URL = re.compile(r"/statuses/([0-9a-fA-F]{7,64})/?$")


def read_cluster(
    kubeconfig: Path | None,
    *,
    name: str,
    namespace: str,
    inventory_kind: str = "configmap",
    cluster: str | None = None,
    context: str | None = None,
) -> ClusterReport | None:
    """The report kept in the inventory of sync ``name`` (its ``--name``) in ``namespace``, or None
    when there is none yet. ``kubeconfig`` None: the in-cluster config. ``cluster`` names the
    report (default: ``name``). Raises ConfigError (credentials) or ClusterUnavailable."""
    if inventory_kind not in inventory.KINDS:
        raise ConfigError(f"inventory kind {inventory_kind!r}: expected one of {', '.join(inventory.KINDS)}")
    kube = KubeCluster.connect(str(kubeconfig) if kubeconfig else None, context, pool_size=1)
    try:
        inv = inventory.read(kube, namespace, name, inventory_kind)
    finally:
        kube.close()
    if not inv.exists:
        return None
    return ClusterReport(
        cluster=cluster or name,
        revision=inv.revision,
        applied_at=inv.applied_at or EPOCH,
        workloads=inv.workloads,
        objects=len(inv.objects),
        omitted=inv.omitted,
    )


def parse_commit_statuses(statuses: Iterable[Mapping[str, Any]], *, revision: str = "") -> dict[str, ClusterReport]:
    """One report per cluster from a commit's statuses (GitHub's or GitLab's JSON), keyed by the
    cluster: the context without ``automator/sync/``. The newest summary of each context wins; a
    context whose newest status is not a summary (another check, a failed or suspended sync) has
    no report.
    ``revision`` is used when a status names no SHA (neither ``sha`` nor a ``.../statuses/SHA`` url)."""
    posted: dict[str, list[_Posted]] = {}
    for order, status in enumerate(statuses):
        context = str(status.get("context") or status.get("name") or "")
        when = parse_time(str(status.get("created_at") or status.get("updated_at") or ""))
        if not context or when is None:
            continue
        sha = str(status.get("sha") or "")
        if not sha and (m := _SHA_IN_URL.search(str(status.get("url") or ""))):
            sha = m[1]
        # among equal times the forge's id orders them (both count up); without one, the position
        # does, as GitHub lists them: newest first
        ident = status.get("id")
        tiebreak = ident if isinstance(ident, int) and not isinstance(ident, bool) else -order
        summary = parse_summary(str(status.get("description") or ""))
        posted.setdefault(context, []).append(_Posted(when, tiebreak, sha or revision, summary))
    reports = {}
    for context, found in posted.items():
        found.sort(key=lambda p: (p.when, p.tiebreak))  # oldest first
        if found[-1].summary is None:
            continue  # not the synchronizer's, or its newest says the sync failed: no summary holds
        cluster = context.removeprefix(CONTEXT_PREFIX)
        reports[cluster] = _report(cluster, found)
    return reports


class _Posted(NamedTuple):
    when: datetime
    tiebreak: int
    sha: str
    summary: Summary | None


def _report(cluster: str, found: list[_Posted]) -> ClusterReport:
    """The newest summary; dated by the first status of its revision, and each workload's health by
    the first status of the unbroken run of summaries that gave it that health."""
    latest = found[-1]
    run = [p for p in found if p.sha == latest.sha]
    since: dict[tuple[str, str, str], tuple[str, datetime]] = {}
    for p in run:
        if p.summary is None:  # a failure in between: what held before may not hold since
            since.clear()
            continue
        for kind, namespace, name, _, health in p.summary.workloads:
            key = (kind, namespace, name)
            if key not in since or since[key][0] != health:
                since[key] = (health, p.when)
    assert latest.summary is not None
    workloads = tuple(
        WorkloadReport(kind, ns, name, images, health, "", since[(kind, ns, name)][1])
        for kind, ns, name, images, health in latest.summary.workloads
    )
    return ClusterReport(cluster, latest.sha, run[0].when, workloads, latest.summary.objects, latest.summary.omitted)


def parse_cluster_flag(value: str) -> tuple[str, Path | None]:
    """``--cluster NAME=KUBECONFIG`` as (name, kubeconfig path); ``NAME=`` or ``NAME`` alone is the
    in-cluster config (None). A bad name or a kubeconfig that is not a file is a ConfigError."""
    name, sep, path = value.partition("=")
    how = "expected NAME=KUBECONFIG (e.g. prod=/etc/automator/prod.kubeconfig), or NAME= for the in-cluster config"
    if not _CLUSTER_NAME.fullmatch(name):
        raise ConfigError(f"--cluster {value!r}: {how}; NAME is letters, digits, '.', '_' or '-', at most 63")
    if not sep or not path:
        return name, None
    kubeconfig = Path(path).expanduser()
    if not kubeconfig.is_file():
        raise ConfigError(f"--cluster {value!r}: the kubeconfig {str(kubeconfig)!r} is not a file; {how}")
    return name, kubeconfig
