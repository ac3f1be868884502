"""The dashboard's pages, rendered from the status model: pure functions of the records.

:func:`index_page` is the table of every policy (the state word, the registry, git, pull request
and per-cluster versions and health, why a row is held), :func:`policy_page` one policy with its
clusters and the timeline of each version, :func:`login_page` the token form. Jinja2 (already the
engine of commit and pull-request templates) renders them with autoescaping on, so nothing a
registry, a policy file or a forge says can become markup; the templates and the one stylesheet
and script live in ``automator/data/dashboard``.

Rows are rendered lean (no closing cells, the search text is the row's own text): 1,000
policies over 3 clusters stay well under 500 KB. A ``q``/``state`` filter in the query marks the
rows it leaves out ``hidden`` rather than dropping them, so the page filters without JavaScript
and the script can widen the filter again without a round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2

from automator.status import (
    FAILING,
    HELD,
    MERGED_NOT_APPLIED,
    PR_OPEN,
    STATES,
    UNHEALTHY,
    UP_TO_DATE,
    ClusterRow,
    PolicyStatus,
    Status,
    duration_text,
)
from automator.status_history import VersionHistory

__all__ = ["ASSETS", "PageContext", "asset", "index_page", "login_page", "policy_href", "policy_page", "problem_page"]

ASSETS = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}
STATE_CSS = {
    UP_TO_DATE: "-up",
    PR_OPEN: "-pr",
    MERGED_NOT_APPLIED: "-merged",
    UNHEALTHY: "-sick",
    HELD: "-held",
    FAILING: "-failing",
}
MAX_REASONS = 3  # reasons shown per row on the index; the policy page shows them all


@dataclass(frozen=True)
class PageContext:
    """What every page shows besides its own content."""

    refresh: int = 15  # seconds between the script's refreshes (0: never)
    cycle: str | None = None  # the last cycle, one line
    authenticated: bool = False  # signed in with a token: offer to sign out


@cache
def _environment() -> jinja2.Environment:
    loader = jinja2.PackageLoader("automator", "data/dashboard")
    return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)


@cache
def asset(name: str) -> bytes:
    """The stylesheet or the script (:data:`ASSETS`), as shipped in the package."""
    return resources.files("automator").joinpath("data", "dashboard", name).read_bytes()


@cache
def asset_version() -> str:
    """A short hash of the assets: their URLs change when they do, so they may be cached for good."""
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update(asset(name))
    return digest.hexdigest()[:12]


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def policy_href(policy: str) -> str:
    return "/policies/" + quote(policy, safe="")


def _render(template: str, context: PageContext, generated: datetime | None, **values: Any) -> str:
    return (
        _environment()
        .get_template(template)
        .render(
            asset_version=asset_version(),
            refresh=context.refresh,
            cycle=context.cycle,
            authenticated=context.authenticated,
            generated=_when(generated),
            **values,
        )
    )


def _pr(p: PolicyStatus, now: datetime) -> dict[str, Any] | None:
    pr = p.pull_request
    if pr is None:
        return None
    age = max(0.0, (now - pr.opened).total_seconds())
    return {
        "url": pr.url,
        "number": pr.number,
        "version": pr.version,
        "opened": _when(pr.opened),
        "age": duration_text(age),
    }


def _cluster_cell(c: ClusterRow | None) -> dict[str, str] | None:
    if c is None:
        return None
    health = c.health + (", re-pushed: its pods run another digest than the registry's" if c.repushed else "")
    return {"version": c.version + (" ≠" if c.repushed else ""), "health": health, "css": "-" + c.health.lower()}


def _text(p: PolicyStatus) -> str:
    """What the row says, lower-cased: what ``q`` is looked for in (as the script does)."""
    parts = [p.policy, p.repository, p.state, *p.reasons, p.newest or "", p.qualifies or "", *p.git]
    if p.pull_request is not None:
        parts += [f"#{p.pull_request.number}", p.pull_request.version]
    parts += [c.version for c in p.clusters]
    return " ".join(parts).lower()


def index_page(
    status: Status, *, now: datetime, q: str = "", state: str = "", context: PageContext = PageContext()
) -> str:
    """The table of every policy; rows ``q`` (a substring of the row's text) or ``state`` (a
    state word) leave out are marked hidden."""
    clusters = sorted({c.cluster for p in status.policies for c in p.clusters} | set(status.clusters))
    needle = q.strip().lower()
    rows, shown = [], 0
    for p in status.policies:
        by_cluster = {c.cluster: c for c in p.clusters}
        hidden = bool((state and p.state != state) or (needle and needle not in _text(p)))
        shown += not hidden
        rows.append(
            {
                "policy": p.policy,
                "href": policy_href(p.policy),
                "image": p.repository,
                "state": p.state,
                "css": STATE_CSS.get(p.state, ""),
                "reasons": p.reasons[:MAX_REASONS] if p.state != UP_TO_DATE else (),
                "newest": p.newest or "-",
                "qualifies": p.qualifies or "-",
                "git": ", ".join(p.git) or "-",
                "pr": _pr(p, now),
                "clusters": [_cluster_cell(by_cluster.get(name)) for name in clusters],
                "hidden": hidden,
            }
        )
    counts = [(word, n) for word in STATES if (n := sum(p.state == word for p in status.policies))]
    return _render(
        "index.html",
        context,
        status.generated,
        ready=bool(status.policies),
        empty="no policy recorded yet: the first cycle has not finished",
        rows=rows,
        total=len(rows),
        shown=shown,
        clusters=clusters,
        counts=counts,
        q=q,
        state=state,
        cluster_errors=sorted(status.cluster_errors.items()),
    )


def _lead(times: Mapping[str, float | None], stage: str) -> str:
    seconds = times.get(stage)
    return duration_text(seconds) if seconds is not None else ""


def _steps(v: VersionHistory) -> list[dict[str, str]]:
    """One version's steps, oldest first."""
    steps: list[tuple[datetime, dict[str, str]]] = []
    if v.seen is not None:
        what = "first seen in the registry"
        if v.announced is not None:
            what += f" (announced by the {v.announced[0]} webhook)"
        if v.rebuilt:
            what += " (first listed when the state was rebuilt: pushed earlier)"
        steps.append((v.seen, {"kind": "seen", "what": what}))
    if v.opened is not None:
        step = {"kind": "opened", "what": "pull request opened", "lead": _lead(v.lead_times, "seen_to_pr")}
        if v.pull_request is not None:
            step |= {"url": v.pull_request[1], "link": f"#{v.pull_request[0]}"}
        steps.append((v.opened, step))
    if v.merged is not None:
        steps.append((v.merged, {"kind": "merged", "what": "merged", "lead": _lead(v.lead_times, "pr_to_merge")}))
    for c in v.clusters:
        if c.applied is not None:
            what = f"applied in {c.cluster} at {c.revision[:12]}"
            steps.append(
                (c.applied, {"kind": "applied", "what": what, "lead": _lead(c.lead_times, "merge_to_applied")})
            )
        if c.healthy is not None:
            lead = _lead(c.lead_times, "applied_to_healthy")
            steps.append((c.healthy, {"kind": "healthy", "what": f"healthy in {c.cluster}", "lead": lead}))
    steps.sort(key=lambda s: s[0])
    return [{"at": _when(at), **step} for at, step in steps]


def _cluster_row(c: ClusterRow) -> dict[str, Any]:
    lead = " ".join(
        f"{stage.split('_to_')[1]} +{duration_text(seconds)}"
        for stage, seconds in c.lead_times.items()
        if seconds is not None and stage != "seen_to_healthy"
    )
    return {
        "cluster": c.cluster,
        "version": c.version,
        "digests": c.digests or ((c.digest,) if c.digest else ()),
        "registry_digest": c.registry_digest if c.repushed else None,
        "health": c.health,
        "css": "-" + c.health.lower(),
        "reason": c.reason,
        "since": _when(c.since),
        "revision": c.revision[:12],
        "applied": _when(c.applied_at),
        "workloads": c.workloads,
        "lead": lead or "-",
    }


def policy_page(
    p: PolicyStatus,
    timeline: Sequence[VersionHistory],
    *,
    now: datetime,
    generated: datetime,
    policy_url: str | None = None,
    context: PageContext = PageContext(),
) -> str:
    """One policy: its versions, every reason, each cluster (digests, workloads, lead times) and
    the timeline of each version, newest first."""
    view = {
        "policy": p.policy,
        "image": p.repository,
        "state": p.state,
        "css": STATE_CSS.get(p.state, ""),
        "reasons": p.reasons,
        "newest": p.newest or "-",
        "qualifies": p.qualifies or "-",
        "git": ", ".join(p.git) or "-",
        "since": _when(p.since) if p.since else "",
        "pr": _pr(p, now),
        "cluster_rows": [_cluster_row(c) for c in p.clusters],
    }
    versions = [{"version": v.version, "steps": _steps(v)} for v in reversed(timeline)]
    return _render("policy.html", context, generated, p=view, timeline=versions, policy_url=policy_url)


def login_page(*, failed: bool, next_path: str, context: PageContext = PageContext()) -> str:
    return _render("login.html", context, None, failed=failed, next=next_path)


def problem_page(message: str, *, context: PageContext = PageContext()) -> str:
    """A page that can only say what is wrong (no state kept, the database unreadable, no such policy)."""
    return _render("problem.html", context, None, message=message)
