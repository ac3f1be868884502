"""A stateful fake of the GitHub REST API v3 (+ one GraphQL mutation), for PyGithub.

No GitHub can run here, so this fake implements only the endpoints
``automator.forge.github`` makes PyGithub call, following the public documentation
(https://docs.github.com/en/rest, API version 2022-11-28) for request bodies (required
fields, types, enums: 422 "Validation Failed" or "Invalid request" otherwise) and for
every response field PyGithub reads:

* ``GET    /repos/{o}/{r}/pulls``                       state, head, base, sort, direction, per_page, page + Link
* ``POST   /repos/{o}/{r}/pulls``                       422 when the head is missing or a PR for it is open
* ``PATCH  /repos/{o}/{r}/pulls/{n}``                   title, body, state, base, maintainer_can_modify
* ``POST   /repos/{o}/{r}/pulls/{n}/requested_reviewers`` reviewers must be collaborators, not the author
* ``PATCH  /repos/{o}/{r}/issues/{n}``                  labels (created on demand), assignees
* ``POST   /repos/{o}/{r}/issues/{n}/comments``
* ``POST   /repos/{o}/{r}/statuses/{sha}``              the SHA must be a commit the fake has seen
* ``GET    /repos/{o}/{r}/commits/{ref}/statuses``      a SHA or a branch; newest first, per_page, page + Link
* ``POST   /app/installations/{id}/access_tokens``      RS256 JWT of a registered App
* ``POST   /graphql``                                   ``enablePullRequestAutoMerge`` only

The API is served under ``/api/v3`` (GitHub Enterprise Server's layout, GraphQL at
``/api/graphql``). Errors have GitHub's shape: ``{"message", "documentation_url"}``
(+ ``errors`` on 422). Tests act as a user through :class:`GitHubState`:
:meth:`~GitHubState.push`, :meth:`~GitHubState.merge`, :meth:`~GitHubState.close`,
:meth:`~GitHubState.fail_next`. ``requests`` counts calls per (method, route).
A repository may be backed by a real bare git repository (``git_dir``): then branch
heads come from it and :meth:`~GitHubState.merge` writes a real merge commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

DOCS = "https://docs.github.com/rest"
MAX_BODY = 65536
TOO_LONG = "body is too long (maximum is 65536 characters)"
GITHUB_TOKEN = "ghp_fake_github_token_0123456789abcdef"
_ids = itertools.count(1000)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HTTPError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _validation(message: str = "Validation Failed", **error: Any) -> HTTPError:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": "422"}
    if error:
        body["errors"] = [error]
    return HTTPError(422, body)


def _invalid_request(detail: str) -> HTTPError:
    return HTTPError(422, {"message": f"Invalid request.\n\n{detail}", "documentation_url": DOCS, "status": "422"})


def _not_found() -> HTTPError:
    return HTTPError(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})


_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "array": (list,), "integer": (int,)}


def _check_body(body: Any, schema: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate a JSON body like GitHub's schema validator: types, required keys, no unknown keys."""
    if not isinstance(body, dict):
        raise HTTPError(400, {"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"})
    for key in required:
        if key not in body:
            raise _invalid_request(f'"{key}" wasn\'t supplied.')
    for key, value in body.items():
        if key not in schema:
            raise _invalid_request(f'"{key}" is not a permitted key.')
        kind = schema[key]
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        if value is None and nullable:
            continue
        if kind.startswith("array"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _invalid_request(f"For 'properties/{key}', {json.dumps(value)} is not an array of strings.")
        elif kind.startswith("enum:"):
            if value not in kind[5:].split("|"):
                raise _invalid_request(f"For 'properties/{key}', {json.dumps(value)} is not a valid enum value.")
        elif not isinstance(value, _TYPES[kind]) or (kind == "integer" and isinstance(value, bool)):
            raise _invalid_request(f"For 'properties/{key}', {json.dumps(value)} is not a {kind}.")
    return body


@dataclass
class FakePull:
    number: int
    node_id: str
    title: str
    body: str | None
    head: str
    base: str
    author: str
    draft: bool = False
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    team_reviewers: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    auto_merge: dict[str, Any] | None = None
    maintainer_can_modify: bool = False
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    updated_seq: int = 0
    head_sha_at_close: str | None = None
    fork: str | None = None  # "owner/name" of the fork the head lives in ("" for a deleted fork)


@dataclass
class FakeRepo:
    full_name: str
    id: int = field(default_factory=lambda: next(_ids))
    default_branch: str = "main"
    collaborators: set[str] = field(default_factory=set)
    allow_auto_merge: bool = True
    git_dir: Path | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: set[str] = field(default_factory=set)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    next_number: int = 1

    def head_of(self, branch: str) -> str | None:
        return git_head(self.git_dir, branch) if self.git_dir else self.branches.get(branch)

    def knows_commit(self, sha: str) -> bool:
        return git_has_commit(self.git_dir, sha) if self.git_dir else sha in self.commits


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass
class FakeForgeState:
    """What both fakes hold besides their repositories: tokens, the request log, injected faults."""

    tokens: dict[str, str] = field(default_factory=dict)
    read_only_tokens: set[str] = field(default_factory=set)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    busy_seconds: float = 0.0  # time spent answering requests (a benchmark subtracts the fake's share)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def error_body(self, status: int) -> dict[str, Any]:
        """The body an injected failure answers with when the test gives none."""
        return {"message": f"{status} Error"}

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and the ``path`` regex with ``status``."""
        payload = body if body is not None else self.error_body(status)
        self.failures.append(Failure(method, re.compile(path), status, payload, headers or {}, times))

    def writes(self) -> int:
        return sum(n for (method, _), n in self.requests.items() if method != "GET")

    def _touch(self, item: Any) -> None:
        item.updated_at = now()
        item.updated_seq = next(self.seq)


@dataclass
class GitHubState(FakeForgeState):
    """Everything the fake holds; tests read it and act on it as a user would."""

    apps: dict[str, str] = field(default_factory=dict)
    installations: dict[int, str] = field(default_factory=dict)
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    base_url: str = ""

    def error_body(self, status: int) -> dict[str, Any]:
        return {"message": "Server Error", "documentation_url": DOCS}

    # -- set-up and user actions -------------------------------------------------------

    def add_repo(self, full_name: str, *, collaborators: tuple[str, ...] = (), **kw: Any) -> FakeRepo:
        repo = FakeRepo(full_name, collaborators=set(collaborators), **kw)
        if repo.git_dir is None:
            self.push(repo, repo.default_branch)
        self.repos[full_name] = repo
        return repo

    def push(self, repo: FakeRepo | str, branch: str, sha: str | None = None) -> str:
        """Move ``branch`` to a new commit (in-memory repositories), as ``git push`` would."""
        repo = self.repos[repo] if isinstance(repo, str) else repo
        with self.lock:
            sha = sha or hashlib.sha1(f"{repo.full_name}/{branch}/{next(self.seq)}".encode()).hexdigest()
            repo.branches[branch] = sha
            repo.commits.add(sha)
            return sha

    def pull(self, repo: str, number: int) -> FakePull:
        return self.repos[repo].pulls[number]

    def merge(self, repo_name: str, number: int) -> str:
        """Merge PR ``number`` as the "Merge pull request" button does; returns the merge commit."""
        repo = self.repos[repo_name]
        with self.lock:
            pr = repo.pulls[number]
            assert pr.state == "open", f"#{number} is {pr.state}"
            head, base = repo.head_of(pr.head), repo.head_of(pr.base)
            assert head and base
            if repo.git_dir is None:
                sha = self.push(repo, pr.base)
            else:
                sha = git_merge(repo.git_dir, pr.base, base, head, f"Merge pull request #{number} from {pr.head}")
            pr.state, pr.merged, pr.merged_at, pr.closed_at = "closed", True, now(), now()
            pr.merge_commit_sha, pr.head_sha_at_close = sha, head
            self._touch(pr)
            return sha

    def close(self, repo_name: str, number: int, comment: str | None = None) -> None:
        """Close PR ``number`` without merging, as a user in the web UI."""
        repo = self.repos[repo_name]
        with self.lock:
            pr = repo.pulls[number]
            if comment:
                pr.comments.append(comment)
            pr.state, pr.closed_at, pr.head_sha_at_close = "closed", now(), repo.head_of(pr.head)
            self._touch(pr)

    def open_from_fork(self, repo_name: str, fork: str, branch: str, title: str = "From a fork") -> FakePull:
        """A PR someone opened from ``fork`` ("" for a fork since deleted), as the web UI would."""
        repo = self.repos[repo_name]
        with self.lock:
            number = repo.next_number
            repo.next_number += 1
            pr = FakePull(number, f"PR_fork{number}", title, "", branch, repo.default_branch, "stranger", fork=fork)
            pr.head_sha_at_close = hashlib.sha1(f"{fork}/{branch}".encode()).hexdigest()
            self._touch(pr)
            repo.pulls[number] = pr
            return pr

    # -- request handling --------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], payload: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        started = time.perf_counter()
        with self.lock:
            route = _route_name(method, path)
            self.requests[(method, route)] += 1
            try:
                for failure in self.failures:
                    if failure.method == method and failure.path.search(path) and failure.times > 0:
                        failure.times -= 1
                        raise HTTPError(failure.status, failure.body, failure.headers)
                status, body, extra = self._dispatch(method, path, query, headers, payload)
            except HTTPError as err:
                status, body, extra = err.status, err.body, err.headers
            self.log.append((method, path, status))
            self.busy_seconds += time.perf_counter() - started
            return status, body, extra

    def _login(self, headers: dict[str, str], *, write: bool) -> str:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or token not in self.tokens:
            raise HTTPError(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        if write and token in self.read_only_tokens:
            raise HTTPError(
                403,
                {
                    "message": "Resource not accessible by personal access token",
                    "documentation_url": DOCS,
                    "status": "403",
                },
            )
        return self.tokens[token]

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        body: Any = None
        if payload:
            try:
                body = json.loads(payload)
            except ValueError:
                raise HTTPError(400, {"message": "Problems parsing JSON", "documentation_url": DOCS}) from None
        if method == "POST" and (m := re.fullmatch(r"/api/v3/app/installations/(\d+)/access_tokens", path)):
            return self._installation_token(int(m[1]), headers)
        if method == "POST" and path == "/api/graphql":
            login = self._login(headers, write=True)
            return self._graphql(login, body)
        m = re.fullmatch(r"/api/v3/repos/([^/]+/[^/]+)(/.*)", path)
        if not m:
            raise _not_found()
        login = self._login(headers, write=method != "GET")
        repo = self.repos.get(unquote(m[1]))
        if repo is None:
            raise _not_found()
        rest = m[2]
        if method == "GET" and rest == "/pulls":
            return self._list_pulls(repo, query)
        if method == "POST" and rest == "/pulls":
            return 201, self._create_pull(repo, login, body), {}
        if m2 := re.fullmatch(r"/pulls/(\d+)", rest):
            pr = self._pr(repo, m2[1])
            if method == "PATCH":
                return 200, self._edit_pull(repo, pr, body), {}
            if method == "GET":
                return 200, self.pull_json(repo, pr, full=True), {}
        if method == "POST" and (m2 := re.fullmatch(r"/pulls/(\d+)/requested_reviewers", rest)):
            return 201, self._request_reviewers(repo, self._pr(repo, m2[1]), body), {}
        if method == "PATCH" and (m2 := re.fullmatch(r"/issues/(\d+)", rest)):
            return 200, self._edit_issue(repo, self._pr(repo, m2[1]), body), {}
        if method == "POST" and (m2 := re.fullmatch(r"/issues/(\d+)/comments", rest)):
            return 201, self._comment(repo, self._pr(repo, m2[1]), login, body), {}
        if method == "POST" and (m2 := re.fullmatch(r"/statuses/([0-9a-fA-F]{4,40})", rest)):
            return 201, self._status(repo, m2[1], login, body), {}
        if method == "GET" and (m2 := re.fullmatch(r"/commits/([^/]+)/statuses", rest)):
            return self._list_statuses(repo, unquote(m2[1]), query)
        raise _not_found()

    def _list_statuses(self, repo: FakeRepo, ref: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """``List commit statuses for a reference``: the ref is a SHA or a branch, the statuses come
        newest first, and an item has no ``sha`` field (its ``url`` ends in the SHA)."""
        sha = repo.head_of(ref) or ref
        if not repo.knows_commit(sha):
            raise _not_found()
        per_page = min(int(query.get("per_page", "30")), 100)
        page = max(int(query.get("page", "1")), 1)
        found = [s for s in reversed(repo.statuses) if s["sha"] == sha]
        chunk = found[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(found) // per_page))
        base = f"{self.base_url}/repos/{repo.full_name}/commits/{ref}/statuses"
        links = []
        if page < last:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**query, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, [{k: v for k, v in s.items() if k != "sha"} for s in chunk], headers

    def _pr(self, repo: FakeRepo, number: str) -> FakePull:
        pr = repo.pulls.get(int(number))
        if pr is None:
            raise _not_found()
        return pr

    # -- endpoints ---------------------------------------------------------------------

    def _installation_token(self, installation_id: int, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        import jwt

        scheme, _, token = headers.get("authorization", "").partition(" ")
        unauthorized = HTTPError(
            401,
            {"message": "A JSON web token could not be decoded", "documentation_url": DOCS, "status": "401"},
        )
        if scheme.lower() != "bearer":
            raise unauthorized
        try:
            app_id = str(jwt.decode(token, options={"verify_signature": False})["iss"])
            key = self.apps[app_id]
            jwt.decode(token, key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except (jwt.PyJWTError, KeyError):
            raise unauthorized from None
        if self.installations.get(installation_id) != app_id:
            raise _not_found()
        access = f"ghs_{hashlib.sha1(f'{installation_id}/{next(self.seq)}'.encode()).hexdigest()[:36]}"
        self.tokens[access] = f"app-{app_id}[bot]"
        expires = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"token": access, "expires_at": expires, "permissions": {"pull_requests": "write"}}
        body["repository_selection"] = "all"
        return 201, body, {}

    def _list_pulls(self, repo: FakeRepo, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation(resource="PullRequest", field="state", code="invalid")
        sort, direction = query.get("sort", "created"), query.get("direction")
        if sort not in ("created", "updated", "popularity", "long-running"):
            raise _validation(resource="PullRequest", field="sort", code="invalid")
        direction = direction or "desc"
        per_page = min(int(query.get("per_page", "30")), 100)
        page = max(int(query.get("page", "1")), 1)
        pulls = [pr for pr in repo.pulls.values() if state in ("all", pr.state)]
        if "head" in query:
            owner, _, ref = query["head"].partition(":")
            if owner != repo.full_name.split("/")[0]:
                pulls = []
            pulls = [pr for pr in pulls if pr.head == ref and pr.fork is None]
        if "base" in query:
            pulls = [pr for pr in pulls if pr.base == query["base"]]
        key = (lambda pr: pr.updated_seq) if sort == "updated" else (lambda pr: pr.number)
        pulls.sort(key=key, reverse=direction == "desc")
        chunk = pulls[(page - 1) * per_page : page * per_page]
        links = []
        last = max(1, -(-len(pulls) // per_page))
        base = f"{self.base_url}/repos/{repo.full_name}/pulls"
        if page < last:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**query, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, [self.pull_json(repo, pr) for pr in chunk], headers

    def _create_pull(self, repo: FakeRepo, login: str, body: Any) -> dict[str, Any]:
        schema = {
            "title": "string",
            "head": "string",
            "head_repo": "string",
            "base": "string",
            "body": "string",
            "maintainer_can_modify": "boolean",
            "draft": "boolean",
            "issue": "integer",
        }
        body = _check_body(body, schema, required=("head", "base"))
        if "title" not in body:
            raise _invalid_request('"title" wasn\'t supplied.')
        if len(body.get("body") or "") > MAX_BODY:
            raise _validation(
                resource="Issue", field="body", code="custom", message="body is too long (maximum is 65536 characters)"
            )
        owner, _, head = body["head"].rpartition(":")
        if owner and owner != repo.full_name.split("/")[0]:
            raise _validation(resource="PullRequest", field="head", code="invalid")
        if repo.head_of(head) is None:
            raise _validation(resource="PullRequest", field="head", code="invalid")
        if repo.head_of(body["base"]) is None:
            raise _validation(resource="PullRequest", field="base", code="invalid")
        for pr in repo.pulls.values():
            if pr.state == "open" and pr.head == head and pr.base == body["base"] and pr.fork is None:
                message = f"A pull request already exists for {repo.full_name.split('/')[0]}:{head}."
                raise _validation(resource="PullRequest", code="custom", message=message)
        number = repo.next_number
        repo.next_number += 1
        pr = FakePull(
            number=number,
            node_id=f"PR_kw{repo.id}n{number}",
            title=body["title"],
            body=body.get("body"),
            head=head,
            base=body["base"],
            author=login,
            draft=body.get("draft", False),
            maintainer_can_modify=body.get("maintainer_can_modify", False),
        )
        self._touch(pr)
        repo.pulls[number] = pr
        return self.pull_json(repo, pr, full=True)

    def _edit_pull(self, repo: FakeRepo, pr: FakePull, body: Any) -> dict[str, Any]:
        schema = {
            "title": "string",
            "body": "string?",
            "state": "enum:open|closed",
            "base": "string",
            "maintainer_can_modify": "boolean",
        }
        body = _check_body(body, schema)
        if len(body.get("body") or "") > MAX_BODY:
            raise _validation(
                resource="Issue", field="body", code="custom", message="body is too long (maximum is 65536 characters)"
            )
        if "state" in body and pr.merged and body["state"] == "open":
            raise _validation(resource="PullRequest", code="custom", message="Cannot reopen a merged pull request.")
        if body.get("state") == "open" and pr.state == "closed" and repo.head_of(pr.head) is None:
            raise _validation(resource="PullRequest", field="state", code="invalid")
        if "title" in body:
            pr.title = body["title"]
        if "body" in body:
            pr.body = body["body"]
        if "base" in body:
            pr.base = body["base"]
        if "maintainer_can_modify" in body:
            pr.maintainer_can_modify = body["maintainer_can_modify"]
        if body.get("state") == "closed" and pr.state == "open":
            pr.state, pr.closed_at, pr.head_sha_at_close = "closed", now(), repo.head_of(pr.head)
            pr.auto_merge = None
        elif body.get("state") == "open" and pr.state == "closed":
            pr.state, pr.closed_at = "open", None
        self._touch(pr)
        return self.pull_json(repo, pr, full=True)

    def _request_reviewers(self, repo: FakeRepo, pr: FakePull, body: Any) -> dict[str, Any]:
        body = _check_body(body, {"reviewers": "array", "team_reviewers": "array"})
        if not body.get("reviewers") and not body.get("team_reviewers"):
            raise _invalid_request('"reviewers" wasn\'t supplied.')
        for user in body.get("reviewers", []):
            if user == pr.author:
                raise _validation("Review cannot be requested from pull request author.")
            if user not in repo.collaborators:
                raise _validation(
                    "Reviews may only be requested from collaborators. One or more of the users or teams you"
                    f" specified is not a collaborator of the {repo.full_name} repository."
                )
        pr.reviewers += [u for u in body.get("reviewers", []) if u not in pr.reviewers]
        pr.team_reviewers += [t for t in body.get("team_reviewers", []) if t not in pr.team_reviewers]
        self._touch(pr)
        return self.pull_json(repo, pr, full=True)

    def _edit_issue(self, repo: FakeRepo, pr: FakePull, body: Any) -> dict[str, Any]:
        schema = {
            "title": "string",
            "body": "string?",
            "assignee": "string?",
            "state": "enum:open|closed",
            "state_reason": "string?",
            "milestone": "integer?",
            "labels": "array",
            "assignees": "array",
        }
        body = _check_body(body, schema)
        for user in body.get("assignees", []):
            if user not in repo.collaborators and user != pr.author:
                raise _validation(resource="Issue", field="assignees", code="invalid", value=user)
        if "labels" in body:
            for name in body["labels"]:
                repo.labels.setdefault(name, next(_ids))
            pr.labels = list(dict.fromkeys(body["labels"]))
        if "assignees" in body:
            pr.assignees = list(dict.fromkeys(body["assignees"]))
        if "title" in body:
            pr.title = body["title"]
        if "body" in body:
            pr.body = body["body"]
        self._touch(pr)
        return self.issue_json(repo, pr)

    def _comment(self, repo: FakeRepo, pr: FakePull, login: str, body: Any) -> dict[str, Any]:
        body = _check_body(body, {"body": "string"}, required=("body",))
        pr.comments.append(body["body"])
        self._touch(pr)
        comment_id = next(_ids)
        issue_url = f"{self.base_url}/repos/{repo.full_name}/issues/{pr.number}"
        return {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": f"{self.base_url}/repos/{repo.full_name}/issues/comments/{comment_id}",
            "html_url": f"{self._html(repo)}/pull/{pr.number}#issuecomment-{comment_id}",
            "issue_url": issue_url,
            "body": body["body"],
            "user": self.user_json(login),
            "created_at": now(),
            "updated_at": now(),
            "author_association": "MEMBER",
        }

    def _status(self, repo: FakeRepo, sha: str, login: str, body: Any) -> dict[str, Any]:
        schema = {
            "state": "enum:error|failure|pending|success",
            "target_url": "string?",
            "description": "string?",
            "context": "string",
        }
        body = _check_body(body, schema, required=("state",))
        if not repo.knows_commit(sha):
            raise _validation(f"No commit found for SHA: {sha}")
        if len(body.get("description") or "") > 140:
            raise _validation(resource="Status", field="description", code="custom", message="description is too long")
        status_id = next(_ids)
        status = {
            "url": f"{self.base_url}/repos/{repo.full_name}/statuses/{sha}",
            "avatar_url": None,
            "id": status_id,
            "node_id": f"SC_{status_id}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": now(),
            "updated_at": now(),
            "creator": self.user_json(login),
            "sha": sha,
        }
        repo.statuses.append(status)
        return status

    def _graphql(self, login: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise HTTPError(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        query = " ".join(body["query"].split())
        if not re.search(
            r"mutation \w* ?\(\$input: EnablePullRequestAutoMergeInput!\) "
            r"\{ enablePullRequestAutoMerge\(input: \$input\)",
            query,
        ):
            error = {"message": "Only enablePullRequestAutoMerge is implemented by this fake", "type": "UNSUPPORTED"}
            return 200, {"errors": [error]}, {}
        data = (body.get("variables") or {}).get("input")
        if not isinstance(data, dict) or not isinstance(data.get("pullRequestId"), str):
            error = {"message": "Variable $input of type EnablePullRequestAutoMergeInput! was provided invalid value"}
            return 200, {"errors": [error]}, {}
        allowed = {"pullRequestId", "mergeMethod", "authorEmail", "clientMutationId", "commitBody", "commitHeadline"}
        allowed.add("expectedHeadOid")
        if set(data) - allowed or data.get("mergeMethod", "MERGE") not in ("MERGE", "SQUASH", "REBASE"):
            error = {"message": "Variable $input of type EnablePullRequestAutoMergeInput! was provided invalid value"}
            return 200, {"errors": [error]}, {}
        target = next(
            (
                (repo, pr)
                for repo in self.repos.values()
                for pr in repo.pulls.values()
                if pr.node_id == data["pullRequestId"]
            ),
            None,
        )
        path = ["enablePullRequestAutoMerge"]
        if target is None:
            message = f"Could not resolve to a node with the global id of '{data['pullRequestId']}'"
            return (
                200,
                {"data": {path[0]: None}, "errors": [{"type": "NOT_FOUND", "path": path, "message": message}]},
                {},
            )
        repo, pr = target
        problem = None
        if not repo.allow_auto_merge:
            problem = "Pull request Auto merge is not allowed for this repository"
        elif pr.draft:
            problem = "Pull request Pull request is in draft state"
        elif pr.state != "open":
            problem = "Pull request Pull request is closed"
        if problem:
            refusal = {"type": "UNPROCESSABLE", "path": path, "message": problem}
            return 200, {"data": {path[0]: None}, "errors": [refusal]}, {}
        pr.auto_merge = {
            "enabled_by": self.user_json(login),
            "merge_method": data.get("mergeMethod", "MERGE").lower(),
            "commit_title": data.get("commitHeadline"),
            "commit_message": data.get("commitBody"),
        }
        self._touch(pr)
        actor = {"avatarUrl": "", "login": login, "resourcePath": f"/{login}", "url": f"{self._html(repo)}/../{login}"}
        return 200, {"data": {path[0]: {"actor": actor, "clientMutationId": data.get("clientMutationId")}}}, {}

    # -- JSON shapes -------------------------------------------------------------------

    def _html(self, repo: FakeRepo) -> str:
        return f"{self.base_url.removesuffix('/api/v3')}/{repo.full_name}"

    def user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": int(hashlib.sha1(login.encode()).hexdigest()[:6], 16),
            "node_id": f"U_{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"{self.base_url.removesuffix('/api/v3')}/{login}",
        }

    def repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "private": True,
            "owner": self.user_json(owner),
            "html_url": self._html(repo),
            "url": f"{self.base_url}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
            "fork": False,
        }

    def _label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        return {
            "id": repo.labels.get(name, 0),
            "node_id": f"LA_{name}",
            "url": f"{self.base_url}/repos/{repo.full_name}/labels/{name}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def _ref_json(self, repo: FakeRepo, ref: str, sha: str | None) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user_json(owner),
            "repo": self.repo_json(repo),
        }

    def _head_json(self, repo: FakeRepo, pr: FakePull, sha: str | None) -> dict[str, Any]:
        if pr.fork is None:
            return self._ref_json(repo, pr.head, sha)
        if not pr.fork:
            return {"label": f"unknown:{pr.head}", "ref": pr.head, "sha": sha, "user": None, "repo": None}
        return self._ref_json(FakeRepo(pr.fork, id=repo.id + 1), pr.head, sha)

    def pull_json(self, repo: FakeRepo, pr: FakePull, *, full: bool = False) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{repo.full_name}/pulls/{pr.number}"
        closed_or_fork = pr.state == "closed" or pr.fork is not None
        head_sha = pr.head_sha_at_close if closed_or_fork else repo.head_of(pr.head)
        data: dict[str, Any] = {
            "url": url,
            "id": 50_000 + pr.number,
            "node_id": pr.node_id,
            "html_url": f"{self._html(repo)}/pull/{pr.number}",
            "diff_url": f"{self._html(repo)}/pull/{pr.number}.diff",
            "patch_url": f"{self._html(repo)}/pull/{pr.number}.patch",
            "issue_url": f"{self.base_url}/repos/{repo.full_name}/issues/{pr.number}",
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "comments_url": f"{self.base_url}/repos/{repo.full_name}/issues/{pr.number}/comments",
            "statuses_url": f"{self.base_url}/repos/{repo.full_name}/statuses/{head_sha}",
            "number": pr.number,
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "user": self.user_json(pr.author),
            "body": pr.body,
            "labels": [self._label_json(repo, name) for name in pr.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pr.created_at,
            "updated_at": pr.updated_at,
            "closed_at": pr.closed_at,
            "merged_at": pr.merged_at,
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": self.user_json(pr.assignees[0]) if pr.assignees else None,
            "assignees": [self.user_json(u) for u in pr.assignees],
            "requested_reviewers": [self.user_json(u) for u in pr.reviewers],
            "requested_teams": [{"slug": t, "name": t, "id": next(_ids)} for t in pr.team_reviewers],
            "head": self._head_json(repo, pr, head_sha),
            "base": self._ref_json(repo, pr.base, repo.head_of(pr.base)),
            "author_association": "MEMBER",
            "auto_merge": pr.auto_merge,
            "draft": pr.draft,
        }
        if full:
            data |= {
                "merged": pr.merged,
                "mergeable": None if pr.state == "open" else False,
                "rebaseable": None,
                "mergeable_state": "unknown",
                "merged_by": None,
                "comments": len(pr.comments),
                "review_comments": 0,
                "maintainer_can_modify": pr.maintainer_can_modify,
                "commits": 1,
                "additions": 1,
                "deletions": 1,
                "changed_files": 1,
            }
        return data

    def issue_json(self, repo: FakeRepo, pr: FakePull) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{repo.full_name}/issues/{pr.number}"
        return {
            "id": 60_000 + pr.number,
            "node_id": f"I_{pr.node_id}",
            "url": url,
            "repository_url": f"{self.base_url}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "html_url": f"{self._html(repo)}/pull/{pr.number}",
            "number": pr.number,
            "state": pr.state,
            "title": pr.title,
            "body": pr.body,
            "user": self.user_json(pr.author),
            "labels": [self._label_json(repo, name) for name in pr.labels],
            "assignee": self.user_json(pr.assignees[0]) if pr.assignees else None,
            "assignees": [self.user_json(u) for u in pr.assignees],
            "milestone": None,
            "locked": False,
            "comments": len(pr.comments),
            "pull_request": {
                "url": f"{self.base_url}/repos/{repo.full_name}/pulls/{pr.number}",
                "html_url": f"{self._html(repo)}/pull/{pr.number}",
                "diff_url": f"{self._html(repo)}/pull/{pr.number}.diff",
                "patch_url": f"{self._html(repo)}/pull/{pr.number}.patch",
            },
            "closed_at": pr.closed_at,
            "created_at": pr.created_at,
            "updated_at": pr.updated_at,
            "author_association": "MEMBER",
        }


def _route_name(method: str, path: str) -> str:
    """A path with numbers, SHAs and repository names replaced, for counting calls per endpoint."""
    path = re.sub(r"^/api/v3/repos/[^/]+/[^/]+", "/repos/{repo}", path)
    path = re.sub(r"/statuses/[0-9a-fA-F]+", "/statuses/{sha}", path)
    return re.sub(r"/\d+", "/{n}", path.removeprefix("/api/v3").removeprefix("/api"))


_HEX40 = re.compile(r"[0-9a-f]{40}")


def git_head(git_dir: Path, branch: str) -> str | None:
    """The commit ``refs/heads/<branch>`` points at in a (bare) repository, or ``None``.

    Read from the ref files as git writes them (the loose ref, else ``packed-refs``), as GitHub
    answers from its own ref store without a process per request; anything else (a symbolic
    ref, a name git would refuse) is asked of ``git rev-parse``."""
    if ".." not in branch and not branch.startswith("/"):
        try:
            text = (git_dir / "refs" / "heads" / branch).read_text().strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        if _HEX40.fullmatch(text):
            return text
        if not text:
            try:
                packed = (git_dir / "packed-refs").read_text()
            except (OSError, UnicodeDecodeError):
                packed = ""
            for line in packed.splitlines():
                sha, _, name = line.partition(" ")
                if name == f"refs/heads/{branch}" and _HEX40.fullmatch(sha):
                    return sha
            if not (git_dir / "refs" / "heads" / branch).exists():
                return None
    ref = f"refs/heads/{branch}^{{commit}}"
    out = subprocess.run(
        ["git", "-C", str(git_dir), "rev-parse", "--verify", "-q", ref], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or None


def git_has_commit(git_dir: Path, sha: str) -> bool:
    args = ["git", "-C", str(git_dir), "cat-file", "-e", f"{sha}^{{commit}}"]
    done = subprocess.run(args, capture_output=True, check=False)
    return done.returncode == 0


def git_merge(git_dir: Path, base_ref: str, base: str, head: str, message: str) -> str:
    """Merge ``head`` into ``base`` inside a bare repository (no worktree) and move ``base_ref``."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(git_dir), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    tree = git("merge-tree", "--write-tree", base, head).splitlines()[0]
    env_args = ["-c", "user.name=Fake Forge", "-c", "user.email=forge@example.invalid"]
    commit = subprocess.run(
        ["git", *env_args, "-C", str(git_dir), "commit-tree", tree, "-p", base, "-p", head, "-m", message],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git("update-ref", f"refs/heads/{base_ref}", commit, base)
    return commit


class JSONHandler(BaseHTTPRequestHandler):
    """Serves ``state.handle(method, path, headers, body) -> (status, json, headers)`` over keep-alive HTTP/1.1."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one send per response: headers and body split across sends stall on delayed ACKs
    disable_nagle_algorithm = True
    state: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.state.handle(self.command, self.path, headers, payload)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Remaining", extra.pop("X-RateLimit-Remaining", "4999"))
        self.send_header("X-RateLimit-Reset", extra.pop("X-RateLimit-Reset", str(int(time.time()) + 3600)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


@contextlib.contextmanager
def serve_state(state: Any, name: str) -> Iterator[str]:
    """Serve a fake's ``state`` (its ``handle`` method) on 127.0.0.1, a free port; yield the origin."""
    handler = type("Handler", (JSONHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    host, port = str(server.server_address[0]), int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    wait_until_listening(host, port)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def github_server(state: GitHubState | None = None) -> Iterator[GitHubState]:
    """Serve ``state`` on 127.0.0.1 (a free port) until the block exits; ``state.base_url`` is the API URL."""
    state = state or GitHubState()
    with serve_state(state, "fake-github") as origin:
        state.base_url = f"{origin}/api/v3"
        yield state


def wait_until_listening(host: str, port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


@pytest.fixture
def fake_github() -> Iterator[GitHubState]:
    """A fake GitHub with token ``GITHUB_TOKEN`` (user ``automator-bot``) and repository ``octo/app``."""
    with github_server() as state:
        state.tokens[GITHUB_TOKEN] = "automator-bot"
        state.add_repo("octo/app", collaborators=("alice", "bob", "automator-bot"))
        yield state
