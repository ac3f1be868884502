"""GitLab (gitlab.com and self-hosted) through python-gitlab: the only module importing it.

Merge requests stand for pull requests (``number`` is the MR ``iid``). Calls per operation:

* ``list_pull_requests``: one ``GET /merge_requests?state=all&order_by=updated_at`` per
  100 MRs, up to ``list_limit`` (GitLab filters by exact source branch only; we filter
  by prefix, and skip MRs from forks).
* ``open_pull_request``: one ``POST`` carrying labels, ``assignee_ids`` and
  ``reviewer_ids``; usernames are resolved once per forge instance (one ``GET /users``
  each, cached). Draft is GitLab's ``Draft:`` title prefix. Auto-merge is one more
  ``PUT /merge`` with ``merge_when_pipeline_succeeds`` (never for a draft, which GitLab
  refuses; note that GitLab merges at once when the project has no pipeline).
* ``update_pull_request``: one ``PUT`` with only the changed fields, none when unchanged.
* ``close_pull_request``: an optional note + one ``PUT`` that closes the MR and flags its
  marker as closed by us in the same request.
* ``set_commit_status``: one ``POST /statuses/:sha`` (``context`` is the status name);
  re-posting the state a status already has is accepted as done.
* ``commit_statuses``: one ``GET /repository/commits/:sha/statuses?all=true`` per 100.

Every HTTP request goes through :meth:`_CountingGitlab.http_request`, which counts it and
turns off python-gitlab's sleeping retries (429 ``obey_rate_limit``, 5xx): a transient
failure surfaces as :class:`ForgeUnavailable` for the run loop to retry when it decides.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import gitlab
import requests
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project, ProjectMergeRequest

from automator.errors import (
    ConfigError,
    ForgeError,
    ForgeRejected,
    ForgeUnavailable,
)
from automator.forge.base import (
    CallCounter,
    CommitState,
    PROptions,
    PRStatus,
    PullRequest,
    StatusHints,
    closed_body,
    parse_marker,
    status_error,
)
from automator.redact import redact

GITLAB_COM = "https://gitlab.com"
_T = TypeVar("_T")
_DRAFT = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|\[wip\]|wip:)\s*", re.IGNORECASE)
_STATES: dict[str, PRStatus] = {"opened": "open", "locked": "open", "merged": "merged", "closed": "closed"}
_STATUS: dict[str, str] = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}


class _CountingGitlab(gitlab.Gitlab):
    """A client that counts every request and leaves retrying to the caller."""

    counter: CallCounter

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        route = re.sub(r"/projects/[^/]+", "/projects/:id", path.split("?", 1)[0].removeprefix(self.api_url))
        route = re.sub(r"/merge_requests/\d+", "/merge_requests/:iid", route)
        route = re.sub(r"/(commits|statuses)/[0-9a-fA-F]+", r"/\1/:sha", route)
        (self.counter.read if verb.lower() == "get" else self.counter.write)(f"{verb.upper()} {route}")
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        return super().http_request(verb, path, *args, **kwargs)


class GitLabForge:
    """Merge requests on one GitLab project (``group/project`` path or numeric id).

    ``url`` is the instance (``https://gitlab.com`` or a self-hosted base URL); ``token``
    a personal, project or group access token (``PRIVATE-TOKEN``) or, with
    ``oauth=True``, an OAuth2 bearer token.
    """

    name = "gitlab"

    def __init__(
        self,
        project: str | int,
        *,
        token: str,
        url: str = GITLAB_COM,
        oauth: bool = False,
        timeout: float = 30.0,
        list_limit: int = 300,
    ) -> None:
        if not token:
            raise ConfigError(f"GitLab project {project}: a token is required (api scope)")
        if isinstance(project, str) and not project.strip("/"):
            raise ConfigError("GitLab project must be a 'group/project' path or a numeric id")
        self.project = str(project).strip("/")
        self.url = url.rstrip("/")
        self.list_limit = list_limit
        self.calls = CallCounter()
        self._secrets = [token]
        self._gl = _CountingGitlab(
            self.url,
            private_token=None if oauth else token,
            oauth_token=token if oauth else None,
            timeout=timeout,
            per_page=100,
        )
        self._gl.counter = self.calls
        self._project: Project = self._gl.projects.get(project, lazy=True)
        self._user_ids: dict[str, int] = {}

    # -- the Forge protocol ------------------------------------------------------------

    def list_pull_requests(self, branch_prefix: str) -> list[PullRequest]:
        found: list[PullRequest] = []

        def walk() -> None:
            listing = self._project.mergerequests.list(
                state="all", order_by="updated_at", sort="desc", per_page=100, iterator=True
            )
            for seen, mr in enumerate(listing, start=1):  # the next page is fetched only when GitLab links one
                if mr.source_branch.startswith(branch_prefix) and mr.source_project_id == mr.target_project_id:
                    found.append(_to_pr(mr.attributes))
                if seen >= self.list_limit:
                    return

        self._call("list merge requests", walk)
        return found

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, options: PROptions | None = None
    ) -> PullRequest:
        options = options or PROptions()
        data: dict[str, Any] = {
            "source_branch": branch,
            "target_branch": base,
            "title": f"Draft: {title}" if options.draft else title,
            "description": body,
        }
        if options.labels:
            data["labels"] = ",".join(options.labels)
        if options.assignees:
            data["assignee_ids"] = self._resolve_users(options.assignees)
        if options.reviewers:
            data["reviewer_ids"] = self._resolve_users(options.reviewers)
        if options.merge_method == "squash":
            data["squash"] = True
        try:
            mr = self._call(f"open a merge request from {branch}", lambda: self._project.mergerequests.create(data))
        except ForgeRejected as exc:
            if "already exists" not in str(exc):
                raise
            return self._existing(branch, exc)
        warnings: tuple[str, ...] = ()
        if options.auto_merge and not options.draft:
            try:
                self._call(f"set !{mr.iid} to merge when the pipeline succeeds", lambda: self._auto_merge(mr))
            except ForgeError as exc:  # the MR exists (e.g. its pipeline is not created yet): report, keep it
                warnings = (str(exc),)
        return replace(_to_pr(mr.attributes), warnings=warnings)

    def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        changes: dict[str, str] = {}
        if pr.title != title:
            changes["title"] = f"Draft: {title}" if pr.draft else title
        if pr.body != body:
            changes["description"] = body
        if not changes:
            return pr
        mr = self._mr(pr.number)
        self._call(f"update !{pr.number}", lambda: self._save(mr, changes))
        return _to_pr(mr.attributes)

    def close_pull_request(self, pr: PullRequest, comment: str | None = None) -> None:
        mr = self._mr(pr.number)
        if comment:
            self._call(f"comment on !{pr.number}", lambda: mr.notes.create({"body": comment}))
        changes = {"state_event": "close"}
        body = closed_body(pr.body)
        if body != pr.body:
            changes["description"] = body
        self._call(f"close !{pr.number}", lambda: self._save(mr, changes))

    def comment_on_pull_request(self, number: int, body: str) -> None:
        """``POST /projects/:id/merge_requests/:iid/notes``."""
        mr = self._mr(number)
        self._call(f"comment on !{number}", lambda: mr.notes.create({"body": body}))

    def set_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", url: str | None = None
    ) -> None:
        data: dict[str, Any] = {"state": _STATUS[state], "name": context}
        if description:
            data["description"] = description[:255]
        if url:
            data["target_url"] = url
        commit = self._project.commits.get(sha, lazy=True)
        try:
            self._call(f"set status {context} on {sha[:12]}", lambda: commit.statuses.create(data))
        except ForgeRejected as exc:
            if "Cannot transition status" not in str(exc):
                raise  # already in that state: nothing to do

    def commit_statuses(self, sha: str) -> list[dict[str, Any]]:
        """``GET /projects/:id/repository/commits/:sha/statuses?all=true``, every page."""
        commit = self._project.commits.get(sha, lazy=True)
        found = self._call(f"list the statuses of {sha[:12]}", lambda: commit.statuses.list(all=True, get_all=True))
        return [dict(s.attributes) for s in found]

    # -- helpers -----------------------------------------------------------------------

    def _mr(self, iid: int) -> ProjectMergeRequest:
        return self._project.mergerequests.get(iid, lazy=True)

    @staticmethod
    def _save(mr: ProjectMergeRequest, changes: dict[str, str]) -> None:
        for key, value in changes.items():
            setattr(mr, key, value)
        mr.save()

    @staticmethod
    def _auto_merge(mr: ProjectMergeRequest) -> None:
        mr.merge(merge_when_pipeline_succeeds=True)

    def _resolve_users(self, names: tuple[str, ...]) -> list[int]:
        ids = []
        for name in names:
            if name not in self._user_ids:
                found = self._call(
                    f"look up user {name}",
                    lambda n=name: self._gl.users.list(username=n, page=1, per_page=1),  # type: ignore[misc]
                )
                if not found:
                    raise ForgeRejected(f"GitLab user {name!r} not found on {self.url}: check the username")
                self._user_ids[name] = int(found[0].id)
            ids.append(self._user_ids[name])
        return ids

    def _existing(self, branch: str, cause: ForgeError) -> PullRequest:
        """The open MR GitLab says already exists for ``branch`` (one more listing call)."""
        found = self._call(
            f"find the open merge request for {branch}",
            lambda: self._project.mergerequests.list(state="opened", source_branch=branch, page=1, per_page=20),
        )
        for mr in found:  # the filter also matches MRs from forks' branches of the same name
            if mr.source_project_id == mr.target_project_id:
                return _to_pr(mr.attributes)
        raise cause

    def _call(self, doing: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except GitlabError as exc:
            raise self._wrap(doing, exc) from exc
        except OSError as exc:  # requests' ConnectionError, Timeout, ... derive from OSError
            text = f"GitLab at {self.url} unreachable while trying to {doing} on {self.project}: {exc}"
            raise ForgeUnavailable(redact(text, self._secrets)) from exc

    def _wrap(self, doing: str, exc: GitlabError) -> ForgeError:
        return status_error(exc.response_code or 0, functools.partial(self._message, doing, exc), _HINTS)

    def _message(self, doing: str, exc: GitlabError, hint: str) -> str:
        detail = _detail(exc.error_message)
        code = exc.response_code or "no response"
        text = f"GitLab refused to {doing} on {self.project} ({code}{': ' + detail if detail else ''}): {hint}"
        return redact(text, self._secrets)


_HINTS = StatusHints(
    unavailable="GitLab is unavailable or throttling us; retry later",
    unauthorized="the token was refused: check it is valid, not expired and not revoked",
    forbidden="the token lacks a permission: it needs the api scope and at least the Developer role",
    not_found="check the project path and that the token's user is a member of it",
    rejected="fix the request's fields or the project settings",
)


def _detail(message: Any) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if isinstance(message, list):
        return "; ".join(str(m) for m in message)
    if isinstance(message, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in message.items())
    return str(message or "").strip()


def _to_pr(data: dict[str, Any]) -> PullRequest:
    title = str(data["title"])
    draft = bool(data.get("draft") or data.get("work_in_progress"))
    if draft:
        title = _DRAFT.sub("", title, count=1)
    body = str(data.get("description") or "")
    return PullRequest(
        number=int(data["iid"]),
        url=str(data["web_url"]),
        branch=str(data["source_branch"]),
        base=str(data["target_branch"]),
        title=title,
        body=body,
        state=_STATES.get(str(data["state"]), "closed"),
        head_sha=data.get("sha"),
        draft=draft,
        marker=parse_marker(body),
        created_at=_when(data.get("created_at")),
    )


def _when(text: object) -> datetime | None:
    """GitLab's ISO 8601 timestamps (``2026-01-01T00:00:00.000Z``), aware; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
