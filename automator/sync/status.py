"""Commit statuses for the applied revision, through any object with ``set_commit_status``.

The synchronizer and the forge stage are siblings (neither imports the other), so this module
only states what it needs — :class:`CommitStatusReporter`, which ``automator.forge``'s GitHub,
GitLab and in-memory forges already satisfy — and the CLI edge builds the forge from the
``--commit-status*`` flags and hands it over as ``args.status_reporter_factory``.
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

from automator.errors import AutomatorError
from automator.sync.model import SyncResult

log = logging.getLogger("automator.sync")

State = Literal["pending", "success", "failure", "error"]


class CommitStatusReporter(Protocol):
    def set_commit_status(
        self, sha: str, state: State, context: str, description: str = "", url: str | None = None
    ) -> None: ...


def describe(result: SyncResult) -> tuple[State, str]:
    """The commit state and a one-line description (at most 140 characters) of one run."""
    counts: dict[str, int] = {}
    for o in result.objects:
        counts[str(o.action)] = counts.get(str(o.action), 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    if result.suspended:
        return "pending", "sync suspended"
    if result.ok:
        return "success", f"applied: {summary or 'no objects'}"[:140]
    first = result.errors[0] if result.errors else "an object failed"
    return "failure", f"{len(result.errors)} error(s): {first}"[:140]


class StatusPublisher:
    """Publish each revision's outcome once per change of state (an agent resyncs every minute)."""

    def __init__(self, reporter: CommitStatusReporter, context: str) -> None:
        self.reporter = reporter
        self.context = context
        self._last: tuple[str, State] | None = None

    def publish(self, result: SyncResult) -> None:
        if not result.revision:
            return  # nothing was fetched: there is no commit to mark
        state, description = describe(result)
        if self._last == (result.revision, state):
            return
        try:
            self.reporter.set_commit_status(result.revision, state, self.context, description)
        except AutomatorError as exc:
            log.warning("cannot set the commit status on %s: %s", result.revision[:12], exc)
            return
        self._last = (result.revision, state)
