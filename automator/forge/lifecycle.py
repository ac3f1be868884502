"""Decide what to do with pull requests: a pure function of what we want and what exists.

Given, per group, the branch and the versions this run wants to propose, and the PRs
listed from the forge under our branch prefix, :func:`plan_pull_requests` returns one
:class:`PRDecision` per group (and one ``close`` per superseded PR):

``open``
    nothing open for the group: open a PR on ``branch``.
``update``
    our PR on ``branch`` is open but proposes other versions: push the new commit to
    the same branch, then update its title and body.
``noop``
    our PR on ``branch`` already proposes exactly these versions (0 writes); also
    reported for our open PRs whose group this run did not evaluate.
``skip``
    a user closed our PR for exactly these versions without merging: never reopen it
    for them (a newer version opens a new PR).
``close``
    our open PR was superseded (its group now wants another branch, or a version the
    user already rejected, or all its policies moved to other groups after a grouping
    change) or its changes already reached the base branch (the group is in
    ``settled``: evaluated this run, nothing left to change).

Merged PRs are history: a group whose PR was merged starts clean.  A PR is matched to a
group by its marker; a PR whose marker was edited away is matched by its branch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from automator.forge.base import PullRequest

Action = Literal["open", "update", "noop", "skip", "close"]


@dataclass(frozen=True)
class DesiredPR:
    """What this run wants proposed for one group: the branch and ``{policy: version}``."""

    group: str
    branch: str
    versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", MappingProxyType(dict(sorted(self.versions.items()))))


@dataclass(frozen=True)
class PRDecision:
    """What to do for ``group``; ``pr`` is the existing PR acted on or that explains a skip."""

    action: Action
    group: str
    branch: str
    reason: str
    pr: PullRequest | None = None


def _group_of(pr: PullRequest, by_branch: Mapping[str, str]) -> str | None:
    if pr.marker is not None:
        return pr.marker.group
    return by_branch.get(pr.branch)


def _same(pr: PullRequest, versions: Mapping[str, str]) -> bool:
    return pr.marker is not None and dict(pr.marker.versions) == dict(versions)


def _rejected(pr: PullRequest) -> bool:
    """Closed without merging by someone other than us."""
    return pr.state == "closed" and pr.marker is not None and not pr.marker.closed_by_automator


def plan_pull_requests(
    desired: Iterable[DesiredPR],
    existing: Sequence[PullRequest],
    settled: Collection[str] = (),
) -> list[PRDecision]:
    """One decision per desired group, then closes and no-ops for the other open PRs.

    ``existing`` is what :meth:`Forge.list_pull_requests` returned (newest first);
    ``settled`` names groups evaluated this run that have nothing left to change.
    """
    wanted = list(desired)
    by_branch = {d.branch: d.group for d in wanted}
    groups: dict[str, list[PullRequest]] = {}
    for pr in existing:
        group = _group_of(pr, by_branch)
        if group is not None:
            groups.setdefault(group, []).append(pr)

    decisions: list[PRDecision] = []
    handled: set[int] = set()
    for want in wanted:
        prs = groups.get(want.group, [])
        open_prs = [pr for pr in prs if pr.state == "open"]
        current = next((pr for pr in open_prs if pr.branch == want.branch), None)
        rejected = next((pr for pr in prs if _rejected(pr) and _same(pr, want.versions)), None)
        for pr in open_prs:
            handled.add(pr.number)
            if pr is current and rejected is None:
                continue
            why = (
                f"proposes versions already rejected in #{rejected.number}"
                if rejected is not None
                else f"superseded by branch {want.branch}"
            )
            decisions.append(PRDecision("close", want.group, pr.branch, why, pr))
        if rejected is not None:
            reason = f"#{rejected.number} for these versions was closed without merging; not reopening"
            decisions.append(PRDecision("skip", want.group, want.branch, reason, rejected))
        elif current is None:
            decisions.append(PRDecision("open", want.group, want.branch, "no open pull request for this group"))
        elif _same(current, want.versions):
            decisions.append(PRDecision("noop", want.group, want.branch, "already proposes these versions", current))
        else:
            decisions.append(PRDecision("update", want.group, want.branch, "proposes other versions", current))

    owner_of = {policy: want.group for want in wanted for policy in want.versions}
    for pr in existing:
        if pr.state != "open" or pr.number in handled:
            continue
        group = _group_of(pr, by_branch)
        moved = pr.marker is not None and bool(pr.marker.versions) and all(p in owner_of for p in pr.marker.versions)
        if group is not None and group in settled:
            decisions.append(PRDecision("close", group, pr.branch, "changes already in the base branch", pr))
        elif moved and pr.marker is not None:
            now = ", ".join(sorted({owner_of[p] for p in pr.marker.versions}))
            why = f"superseded: its policies are now proposed by group {now}"
            decisions.append(PRDecision("close", pr.marker.group, pr.branch, why, pr))
        else:
            decisions.append(PRDecision("noop", group or "", pr.branch, "group not evaluated this run; left as is", pr))
    return decisions
