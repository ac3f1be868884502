"""The forge's values and its small Protocol; the state marker we hide in PR bodies.

A forge (GitHub, GitLab, or ``none``) is an edge: the run orchestrator talks to it
through :class:`Forge` only, so a test can swap the edge and the lifecycle decision
(:mod:`automator.forge.lifecycle`) stays a pure function of these records.

State is recovered from the forge itself: our branch prefix plus a machine-readable
marker appended to every PR body as a hidden HTML comment::

    <!-- automator:state {"v":1,"group":"podinfo","versions":{"podinfo":"ghcr.io/x/podinfo:6.5.0@sha256:..."}} -->

:func:`parse_marker` only ever calls :func:`json.loads` on it (nothing is evaluated),
takes the last well-formed marker when a user quoted or duplicated one, and returns
``None`` rather than raising when the marker was edited into something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from automator.errors import ForgeAuthError, ForgeError, ForgeNotFound, ForgeRejected, ForgeUnavailable

PRStatus = Literal["open", "closed", "merged"]
CommitState = Literal["pending", "success", "failure", "error"]
MergeMethod = Literal["merge", "squash", "rebase"]

MARKER_VERSION = 1
_MARKER_TAG = "automator:state"
# The JSON never holds a raw "<" or ">" (render_marker escapes them), so a match cannot
# run across the end of one comment into the next.
_MARKER = re.compile(r"<!--\s*automator:state\s+(\{[^<>]*\})\s*-->")
_MAX_MARKER_CHARS = 64 * 1024


@dataclass(frozen=True)
class PRState:
    """What one of our PRs proposes: its group and, per policy, the image it moves to.

    ``versions`` maps a policy key to ``"repo:tag@digest"`` (or whatever stable text the
    caller uses to name a version); it is stored sorted and read-only.
    ``closed_by_automator`` is set when we close a PR ourselves (superseded, already in
    the base branch), so the lifecycle does not mistake it for a user's rejection.
    """

    group: str
    versions: Mapping[str, str]
    closed_by_automator: bool = False

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(sorted(self.versions.items())))
        object.__setattr__(self, "versions", frozen)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PRState):
            return NotImplemented
        return (self.group, dict(self.versions), self.closed_by_automator) == (
            other.group,
            dict(other.versions),
            other.closed_by_automator,
        )

    def __hash__(self) -> int:
        return hash((self.group, tuple(self.versions.items()), self.closed_by_automator))

    def __repr__(self) -> str:
        flag = ", closed_by_automator=True" if self.closed_by_automator else ""
        return f"PRState(group={self.group!r}, versions={dict(self.versions)!r}{flag})"


@dataclass(frozen=True)
class PullRequest:
    """One pull request (GitHub) or merge request (GitLab) as the forge reports it.

    ``number`` is the PR number (GitHub) or the MR ``iid`` (GitLab). ``title`` never
    carries GitLab's ``Draft:`` prefix; ``draft`` says whether it is a draft.
    ``marker`` is the state parsed from ``body`` (``None`` when missing or edited away).
    ``warnings`` says which of a new PR's options (labels, reviewers, assignees,
    auto-merge) the forge refused: the PR exists all the same, so opening is not retried.
    """

    number: int
    url: str
    branch: str
    base: str
    title: str
    body: str
    state: PRStatus
    head_sha: str | None = None
    draft: bool = False
    marker: PRState | None = None
    warnings: tuple[str, ...] = ()
    created_at: datetime | None = None  # when the forge says it was opened (UTC); None: it does not say


@dataclass(frozen=True)
class PROptions:
    """What to set on a new PR besides its title and body.

    ``reviewers`` and ``assignees`` are user names (GitHub logins, GitLab usernames);
    ``team_reviewers`` are GitHub team slugs (ignored on GitLab). ``auto_merge`` enables
    GitHub auto-merge (GraphQL) or GitLab "merge when pipeline succeeds".
    """

    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    team_reviewers: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    draft: bool = False
    auto_merge: bool = False
    merge_method: MergeMethod = "merge"


@dataclass(frozen=True)
class CallCount:
    """API calls one forge instance made, split into reads and writes."""

    reads: int = 0
    writes: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.writes


@dataclass
class CallCounter:
    """Mutable counter a forge adapter bumps once per HTTP request it makes."""

    reads: int = 0
    writes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def read(self, kind: str) -> None:
        self.reads += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def write(self, kind: str) -> None:
        self.writes += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return self.reads + self.writes

    def snapshot(self) -> CallCount:
        return CallCount(self.reads, self.writes)


@runtime_checkable
class Forge(Protocol):
    """A place that hosts pull requests for one repository."""

    name: str
    calls: CallCounter

    def list_pull_requests(self, branch_prefix: str) -> list[PullRequest]:
        """Our PRs (head branch under ``branch_prefix``, same repository): open, closed and merged, newest first."""
        ...

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, options: PROptions | None = None
    ) -> PullRequest:
        """Open a PR from ``branch`` into ``base``; returns the open PR for ``branch`` if one already exists."""
        ...

    def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        """Set title and body; makes no call when both are unchanged."""
        ...

    def close_pull_request(self, pr: PullRequest, comment: str | None = None) -> None:
        """Comment (optional) and close ``pr``, marking it as closed by us in its marker."""
        ...

    def comment_on_pull_request(self, number: int, body: str) -> None:
        """Add a comment to PR ``number`` (open, merged or closed): GitHub issue comment, GitLab MR note."""
        ...

    def set_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", url: str | None = None
    ) -> None:
        """Set a commit status on ``sha``."""
        ...

    def commit_statuses(self, sha: str) -> list[dict[str, Any]]:
        """The statuses of commit ``sha`` as the forge's list endpoint returns them (JSON objects)."""
        ...


def render_marker(state: PRState) -> str:
    """The hidden HTML comment that carries ``state``; stable for equal states.

    The JSON is escaped so the comment cannot be closed early or opened twice: ``<``,
    ``>`` and ``--`` inside strings become ``\\u`` escapes, which :func:`json.loads` reads back.
    """
    payload: dict[str, object] = {"v": MARKER_VERSION, "group": state.group, "versions": dict(state.versions)}
    if state.closed_by_automator:
        payload["closed_by"] = "automator"
    text = json.dumps(payload, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e")
    while "--" in text:
        text = text.replace("--", "-\\u002d")
    return f"<!-- {_MARKER_TAG} {text} -->"


def parse_marker(body: str | None) -> PRState | None:
    """The last well-formed marker in ``body``, or ``None`` (never raises, never evaluates)."""
    if not body or _MARKER_TAG not in body:
        return None
    for match in reversed(list(_MARKER.finditer(body))):
        state = _decode(match.group(1))
        if state is not None:
            return state
    return None


def _decode(text: str) -> PRState | None:
    if len(text) > _MAX_MARKER_CHARS:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("v") != MARKER_VERSION:
        return None
    group, versions = data.get("group"), data.get("versions")
    if not isinstance(group, str) or not group or not isinstance(versions, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items()):
        return None
    return PRState(group=group, versions=versions, closed_by_automator=data.get("closed_by") == "automator")


def with_marker(body: str, state: PRState) -> str:
    """``body`` with every marker removed and ``state``'s marker appended on its own line."""
    stripped = _MARKER.sub("", body).rstrip()
    return f"{stripped}\n\n{render_marker(state)}\n" if stripped else f"{render_marker(state)}\n"


def strip_marker(body: str) -> str:
    """``body`` without any marker, for showing to a person."""
    return _MARKER.sub("", body).rstrip() + "\n"


def closed_body(body: str) -> str:
    """``body`` with its marker flagged ``closed_by_automator`` (unchanged without a marker)."""
    state = parse_marker(body)
    if state is None or state.closed_by_automator:
        return body
    return with_marker(body, replace(state, closed_by_automator=True))


@dataclass(frozen=True)
class StatusHints:
    """What to tell the user for each rung of :func:`status_error`'s ladder, in one forge's words."""

    unavailable: str
    unauthorized: str
    forbidden: str
    not_found: str
    rejected: str


def status_error(
    status: int, describe: Callable[[str], str], hints: StatusHints, *, retry_after: float | None = None
) -> ForgeError:
    """The one status-to-error ladder of both forges: 429 and 5xx are transient (retried, after
    ``retry_after`` when the forge said), 401 and 403 are the token's, 404 is a missing or hidden
    repository, anything else is a refused request. ``describe(hint)`` is the full message."""
    if status == 429 or status >= 500:
        return ForgeUnavailable(describe(hints.unavailable), retry_after=retry_after)
    if status == 401:
        return ForgeAuthError(describe(hints.unauthorized))
    if status == 403:
        return ForgeAuthError(describe(hints.forbidden))
    if status == 404:
        return ForgeNotFound(describe(hints.not_found))
    return ForgeRejected(describe(hints.rejected))
