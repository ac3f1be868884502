"""A forge whose writes stop the moment this replica loses its Lease (``--leader-elect``).

A cycle checks the Lease when it starts, but a cycle can outlive it: cut off from the API
server half-way, the replica stops holding the Lease within its renew deadline, before any
other replica may take it over. Every write through :class:`FencedForge` asks ``held()`` first
and refuses (``ForgeUnavailable``: that group fails and is retried by the next holder's cycle)
once it is false, so two replicas never open or update the same pull request. Reads pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automator.errors import ForgeUnavailable
from automator.forge.base import CallCounter, CommitState, Forge, PROptions, PullRequest

__all__ = ["FencedForge"]


class FencedForge:
    """``forge``, with every write refused while ``held()`` is false."""

    def __init__(self, forge: Forge, held: Callable[[], bool]) -> None:
        self.forge, self.held = forge, held
        self.name: str = forge.name
        self.calls: CallCounter = forge.calls

    def _fence(self, what: str) -> None:
        if not self.held():
            raise ForgeUnavailable(f"{what}: this replica no longer holds the lease; the holder's next cycle does it")

    def list_pull_requests(self, branch_prefix: str) -> list[PullRequest]:
        return self.forge.list_pull_requests(branch_prefix)

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, options: PROptions | None = None
    ) -> PullRequest:
        self._fence(f"open a pull request from {branch}")
        return self.forge.open_pull_request(branch, base, title, body, options)

    def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        self._fence(f"update pull request #{pr.number}")
        return self.forge.update_pull_request(pr, title, body)

    def close_pull_request(self, pr: PullRequest, comment: str | None = None) -> None:
        self._fence(f"close pull request #{pr.number}")
        self.forge.close_pull_request(pr, comment)

    def comment_on_pull_request(self, number: int, body: str) -> None:
        self._fence(f"comment on pull request #{number}")
        self.forge.comment_on_pull_request(number, body)

    def set_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", url: str | None = None
    ) -> None:
        self._fence(f"set a commit status on {sha[:12]}")
        self.forge.set_commit_status(sha, state, context, description, url)

    def commit_statuses(self, sha: str) -> list[dict[str, Any]]:
        return self.forge.commit_statuses(sha)
