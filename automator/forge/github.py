"""GitHub (github.com and Enterprise Server) through PyGithub: the only module importing it.

Calls per operation (``calls`` counts each HTTP request made for the caller):

* ``list_pull_requests``: one ``GET /pulls?state=all&sort=updated`` per 100 PRs, up to
  ``list_limit`` PRs (GitHub cannot filter by branch prefix; we filter, and skip forks).
* ``open_pull_request``: ``POST /pulls`` + one ``PATCH /issues/{n}`` for labels and
  assignees together + one ``POST requested_reviewers``: at most 3, plus one GraphQL
  mutation when auto-merge is asked for (never for a draft, which GitHub refuses).
* ``update_pull_request``: one ``PATCH``, or none when title and body are unchanged.
* ``close_pull_request``: an optional comment + one ``PATCH`` that closes the PR and
  flags its marker as closed by us in the same request.
* ``set_commit_status``: one ``POST /statuses/{sha}``.
* ``commit_statuses``: one ``GET /commits/{sha}/statuses`` per 100 statuses (``automator status``
  without cluster access).

The client is built lazy (``Github(lazy=True)``), so no call fetches the repository
or a PR before acting on it. PyGithub's own retry and throttling are off by default here:
a 5xx, 429 or rate limit becomes :class:`ForgeUnavailable` (``retry_after`` set when GitHub
said) and the run loop decides when to retry. App installation tokens are fetched by
PyGithub on first use (one ``POST /app/installations/{id}/access_tokens``, not counted).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import github
from github import Auth, GithubException, RateLimitExceededException
from github.CommitStatus import CommitStatus
from github.PaginatedList import PaginatedList
from github.PullRequest import PullRequest as GhPullRequest

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

GITHUB_API = "https://api.github.com"
_T = TypeVar("_T")
_PER_PAGE = 100


def enterprise_api_url(host: str) -> str:
    """The REST API base URL of a GitHub Enterprise Server host (``https://HOST/api/v3``)."""
    return f"https://{host.strip('/')}/api/v3"


class GitHubForge:
    """Pull requests on one GitHub repository (``owner/name``).

    Authenticate with ``token`` (a PAT or any token) or as a GitHub App installation
    (``app_id``, ``private_key`` PEM text, ``installation_id``). ``base_url`` is
    ``https://api.github.com`` or an Enterprise ``https://HOST/api/v3``.
    """

    name = "github"

    def __init__(
        self,
        repository: str,
        *,
        token: str | None = None,
        app_id: int | str | None = None,
        private_key: str | None = None,
        installation_id: int | None = None,
        base_url: str = GITHUB_API,
        timeout: float = 30.0,
        list_limit: int = 300,
        seconds_between_requests: float | None = None,
        seconds_between_writes: float | None = None,
    ) -> None:
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise ConfigError(f"GitHub repository {repository!r} must be 'owner/name'")
        auth: Auth.Auth
        self._secrets: list[str] = []
        if token and app_id is None:
            auth = Auth.Token(token)
            self._secrets.append(token)
        elif app_id is not None and private_key and installation_id is not None and not token:
            auth = Auth.AppAuth(app_id, private_key).get_installation_auth(installation_id)
            self._secrets.append(private_key)
        else:
            raise ConfigError(
                f"GitHub credentials for {repository}: give either a token, or app_id + private_key + installation_id"
            )
        self.repository = repository
        self.base_url = base_url.rstrip("/")
        self.list_limit = list_limit
        self.calls = CallCounter()
        self._gh = github.Github(
            auth=auth,
            base_url=self.base_url,
            timeout=int(timeout),
            retry=None,
            per_page=_PER_PAGE,
            lazy=True,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._repo = self._gh.get_repo(repository)
        self._owner = repository.split("/", maxsplit=1)[0]
        self._pulls: dict[int, GhPullRequest] = {}

    # -- the Forge protocol ------------------------------------------------------------

    def list_pull_requests(self, branch_prefix: str) -> list[PullRequest]:
        paginated = self._repo.get_pulls(state="all", sort="updated", direction="desc")
        found: list[PullRequest] = []
        seen = 0

        def walk() -> None:
            nonlocal seen
            for gh_pr in paginated:  # PyGithub fetches the next page only when GitHub links one
                seen += 1
                if gh_pr.head.ref.startswith(branch_prefix) and self._same_repo(gh_pr):
                    self._pulls[gh_pr.number] = gh_pr
                    found.append(_to_pr(gh_pr))
                if seen >= self.list_limit:
                    return

        try:
            self._call("list pull requests", walk, count=False)
        finally:
            for _ in range(max(1, -(-seen // _PER_PAGE))):
                self.calls.read("list")
        return found

    def open_pull_request(
        self, branch: str, base: str, title: str, body: str, options: PROptions | None = None
    ) -> PullRequest:
        options = options or PROptions()
        try:
            gh_pr = self._call(
                f"open a pull request from {branch}",
                lambda: self._repo.create_pull(
                    base=base, head=branch, title=title, body=body, draft=options.draft, maintainer_can_modify=True
                ),
            )
        except ForgeRejected as exc:
            if "already exists" not in str(exc):
                raise
            return self._existing(branch, base, exc)
        self._pulls[gh_pr.number] = gh_pr
        steps: list[tuple[str, Callable[[], object]]] = []
        if options.labels or options.assignees:
            issue = gh_pr.as_issue()
            steps.append(
                (
                    f"set labels and assignees on #{gh_pr.number}",
                    lambda: issue.edit(labels=list(options.labels), assignees=list(options.assignees)),
                )
            )
        if options.reviewers or options.team_reviewers:
            reviewers, teams = list(options.reviewers), list(options.team_reviewers)
            steps.append(
                (
                    f"request reviews on #{gh_pr.number}",
                    lambda: gh_pr.create_review_request(reviewers=reviewers, team_reviewers=teams),
                )
            )
        if options.auto_merge and not options.draft:
            method = options.merge_method.upper()
            steps.append((f"enable auto-merge on #{gh_pr.number}", lambda: gh_pr.enable_automerge(merge_method=method)))
        warnings = []
        for doing, step in steps:
            try:
                self._call(doing, step)
            except ForgeError as exc:  # the PR exists: report what is missing rather than lose it
                warnings.append(str(exc))
        return replace(_to_pr(gh_pr), warnings=tuple(warnings))

    def update_pull_request(self, pr: PullRequest, title: str, body: str) -> PullRequest:
        if pr.title == title and pr.body == body:
            return pr
        gh_pr = self._gh_pull(pr.number)
        self._call(f"update #{pr.number}", lambda: gh_pr.edit(title=title, body=body))
        self._pulls[pr.number] = gh_pr
        return _to_pr(gh_pr)

    def close_pull_request(self, pr: PullRequest, comment: str | None = None) -> None:
        if comment:
            issue = self._repo.get_issue(pr.number)
            self._call(f"comment on #{pr.number}", lambda: issue.create_comment(comment))
        gh_pr = self._gh_pull(pr.number)
        body = closed_body(pr.body)
        if body != pr.body:
            self._call(f"close #{pr.number}", lambda: gh_pr.edit(state="closed", body=body))
        else:
            self._call(f"close #{pr.number}", lambda: gh_pr.edit(state="closed"))
        self._pulls.pop(pr.number, None)

    def comment_on_pull_request(self, number: int, body: str) -> None:
        """``POST /repos/{owner}/{repo}/issues/{number}/comments``: a PR is an issue to comment on."""
        self._call(f"comment on #{number}", lambda: self._repo.get_issue(number).create_comment(body))

    def set_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", url: str | None = None
    ) -> None:
        commit = self._repo.get_commit(sha)
        kwargs: dict[str, Any] = {"state": state, "context": context, "description": description[:140]}
        if url:
            kwargs["target_url"] = url
        self._call(f"set status {context} on {sha[:12]}", lambda: commit.create_status(**kwargs))

    def commit_statuses(self, sha: str) -> list[dict[str, Any]]:
        """``GET /repos/{owner}/{repo}/commits/{sha}/statuses`` (newest first), one call per 100.

        Through PyGithub's paginated list on that documented path: its ``Commit.get_statuses``
        calls the legacy ``/statuses/{sha}`` instead."""
        statuses = PaginatedList(
            CommitStatus, self._gh.requester, f"{self._repo.url}/commits/{quote(sha, safe='')}/statuses", None
        )
        pages = 0

        def walk() -> list[dict[str, Any]]:
            nonlocal pages
            found = []
            for n, status in enumerate(statuses):
                pages = n // _PER_PAGE + 1
                found.append(dict(status.raw_data))
            return found

        try:
            return self._call(f"list the statuses of {sha[:12]}", walk, write=False, count=False)
        finally:
            for _ in range(max(1, pages)):
                self.calls.read("list")

    # -- helpers -----------------------------------------------------------------------

    def _same_repo(self, gh_pr: GhPullRequest) -> bool:
        repo = gh_pr.head.repo
        return repo is not None and repo.full_name.lower() == self.repository.lower()

    def _gh_pull(self, number: int) -> GhPullRequest:
        return self._pulls.get(number) or self._repo.get_pull(number)

    def _existing(self, branch: str, base: str, cause: ForgeError) -> PullRequest:
        """The open PR GitHub says already exists for ``branch`` (one more listing call)."""
        pages = self._repo.get_pulls(state="open", head=f"{self._owner}:{branch}", base=base)
        batch = self._call(f"find the open pull request for {branch}", lambda: pages.get_page(0), write=False)
        for gh_pr in batch:
            self._pulls[gh_pr.number] = gh_pr
            return _to_pr(gh_pr)
        raise cause

    def _call(self, doing: str, fn: Callable[[], _T], *, write: bool = True, count: bool = True) -> _T:
        if count:
            (self.calls.write if write else self.calls.read)(doing.split(" ", maxsplit=1)[0])
        try:
            return fn()
        except RateLimitExceededException as exc:
            raise ForgeUnavailable(
                self._message(doing, exc, "GitHub's rate limit is exhausted; retry later"),
                retry_after=_retry_after(exc.headers),
            ) from exc
        except GithubException as exc:
            raise self._wrap(doing, exc) from exc
        except OSError as exc:  # requests' ConnectionError, Timeout, ... derive from OSError
            raise ForgeUnavailable(
                redact(
                    f"GitHub at {self.base_url} unreachable while trying to {doing} on {self.repository}: {exc}",
                    self._secrets,
                )
            ) from exc

    def _wrap(self, doing: str, exc: GithubException) -> ForgeError:
        describe = functools.partial(self._message, doing, exc)
        return status_error(exc.status, describe, _HINTS, retry_after=_retry_after(exc.headers))

    def _message(self, doing: str, exc: GithubException, hint: str) -> str:
        detail = _detail(exc)
        text = f"GitHub refused to {doing} on {self.repository} ({exc.status}{': ' + detail if detail else ''}): {hint}"
        return redact(text, self._secrets)


_HINTS = StatusHints(
    unavailable="GitHub is unavailable or throttling us; retry later",
    unauthorized="the token was refused: check it is valid and not expired (or the App's key and installation id)",
    forbidden="the token lacks a permission: it needs contents, pull requests and commit statuses write access"
    " (and issues write for labels and assignees)",
    not_found="check the repository name and that the token (or App installation) can see it",
    rejected="fix the request's fields or the repository settings",
)


def _detail(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or exc.message or "").strip()]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            text = error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code", "value") if error.get(k) is not None
            )
        else:
            text = str(error)
        if text and text not in parts:
            parts.append(str(text))
    return "; ".join(p.replace("\n\n", " ") for p in parts if p)


def _retry_after(headers: dict[str, Any] | None) -> float | None:
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after" in lowered:
            return float(lowered["retry-after"])
        if lowered.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lowered:
            return max(0.0, float(lowered["x-ratelimit-reset"]) - time.time())
    except ValueError:
        return None
    return None


def _to_pr(gh_pr: GhPullRequest) -> PullRequest:
    state: PRStatus = "merged" if gh_pr.merged_at is not None else ("open" if gh_pr.state == "open" else "closed")
    body = gh_pr.body or ""
    return PullRequest(
        number=gh_pr.number,
        url=gh_pr.html_url,
        branch=gh_pr.head.ref,
        base=gh_pr.base.ref,
        title=gh_pr.title,
        body=body,
        state=state,
        head_sha=gh_pr.head.sha,
        draft=bool(gh_pr.draft),
        marker=parse_marker(body),
        created_at=_utc(gh_pr.created_at),
    )


def _utc(when: datetime | None) -> datetime | None:
    """PyGithub's timestamps, always aware (older releases give naive UTC)."""
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
