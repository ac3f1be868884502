"""``forge: none``: no API at all; record the PR we would have opened and render it as text.

Branches are still pushed (or commits made directly) by the git stage; this forge only
remembers, in memory, the pull requests a real forge would hold, so one process behaves
like the others (a rerun in the same process is a no-op) and the CLI can print them.
Nothing survives the process: a new run over the same remote proposes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from automator.forge.base import (
    CallCounter,
    CommitState,
    PROptions,
    PullRequest,
    closed_body,
    parse_marker,
    strip_marker,
)


@dataclass(frozen=True)
class RecordedStatus:
    sha: str
    state: CommitState
    context: str
    description: str
    url: str | None


@dataclass
class NoneForge:
    """An in-memory forge. ``calls`` stays at zero: nothing leaves the process."""

    repository: str = "local"
    name: str = "none"
    calls: CallCounter = field(default_factory=CallCounter)
    pull_requests: list[PullRequest] = field(default_factory=list)
    options: dict[int, PROptions] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    statuses: list[RecordedStatus] = field(default_factory=list)

    def list_pull_requests(self, branch_prefix: str) -> list[PullRequest]:
        mine = [pr for pr in self.pull_requests if pr.branch.startswith(branch_prefix)]
        return sorted(mine, key=lambda pr: pr.number, reverse=True)

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, options: PROptions | None = None
    ) -> PullRequest:
        for pr in self.pull_requests:
            if pr.branch == branch and pr.state == "open":
                return pr
        options = options or PROptions()
        number = len(self.pull_requests) + 1
        pr = PullRequest(
            number=number,
            url=f"{self.repository}#{number}",
            branch=branch,
            base=base,
            title=title,
            body=body,
            state="open",
            draft=options.draft,
            marker=parse_marker(body),
        )
        self.pull_requests.append(pr)
        self.options[number] = options
        return pr

    def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        if pr.title == title and pr.body == body:
            return pr
        return self._replace(pr, title=title, body=body, marker=parse_marker(body))

    def close_pull_request(self, pr: PullRequest, comment: str | None = None) -> None:
        if comment:
            self.comments.setdefault(pr.number, []).append(comment)
        body = closed_body(pr.body)
        self._replace(pr, state="closed", body=body, marker=parse_marker(body))

    def comment_on_pull_request(self, number: int, body: str) -> None:
        self.comments.setdefault(number, []).append(body)

    def set_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", url: str | None = None
    ) -> None:
        self.statuses.append(RecordedStatus(sha, state, context, description, url))

    def commit_statuses(self, sha: str) -> list[dict[str, Any]]:
        """The statuses set on ``sha`` in this process, newest first (as GitHub lists them)."""
        return [
            {"context": s.context, "state": s.state, "description": s.description, "sha": s.sha, "id": i}
            for i, s in reversed(list(enumerate(self.statuses, start=1)))
            if s.sha == sha
        ]

    def _replace(self, pr: PullRequest, **changes: object) -> PullRequest:
        for index, held in enumerate(self.pull_requests):
            if held.number == pr.number:
                new = replace(held, **changes)  # type: ignore[arg-type]
                self.pull_requests[index] = new
                return new
        raise KeyError(pr.number)

    def render(self, pr: PullRequest) -> str:
        """The PR as text for a terminal: what a real forge would have shown."""
        opts = self.options.get(pr.number, PROptions())
        lines = [
            f"Pull request {pr.url} ({'draft, ' if pr.draft else ''}{pr.state})",
            f"  branch: {pr.branch} -> {pr.base}",
            f"  title:  {pr.title}",
        ]
        for label, values in (
            ("labels", opts.labels),
            ("reviewers", opts.reviewers + opts.team_reviewers),
            ("assignees", opts.assignees),
        ):
            if values:
                lines.append(f"  {label}: {', '.join(values)}")
        if opts.auto_merge:
            lines.append(f"  auto-merge: {opts.merge_method}")
        lines.append("")
        lines.extend(f"  {line}" if line else "" for line in strip_marker(pr.body).rstrip("\n").splitlines())
        return "\n".join(lines) + "\n"
