"""A stateful fake of the GitLab REST API v4, for python-gitlab.

Only the endpoints ``automator.forge.gitlab`` makes python-gitlab call, following the
public documentation (https://docs.gitlab.com/ee/api/merge_requests.html,
``commits.html#set-the-pipeline-status-of-a-commit``, ``notes.html``, ``users.html``)
for parameters (required, types, enums) and every response field the adapter reads:

* ``GET  /projects/:id/merge_requests``             state, order_by, sort, source_branch, per_page, page
* ``POST /projects/:id/merge_requests``             409 when an open MR exists for the source branch
* ``PUT  /projects/:id/merge_requests/:iid``        title, description, state_event, labels, ...
* ``PUT  /projects/:id/merge_requests/:iid/merge``  ``merge_when_pipeline_succeeds`` / ``auto_merge``
* ``POST /projects/:id/merge_requests/:iid/notes``
* ``POST /projects/:id/statuses/:sha``              400 on a same-state transition, as GitLab does
* ``GET  /projects/:id/repository/commits/:sha/statuses``  ref, name, all, sort, per_page, page
* ``GET  /users?username=``

``:id`` is the numeric id or the URL-encoded path. Errors have GitLab's shapes:
``{"message": "401 Unauthorized"}``, ``{"message": "404 Project Not Found"}``,
``{"message": ["Another open merge request ..."]}``, ``{"error": "title is missing"}``.
Tests act as a user through :class:`GitLabState` (:meth:`~GitLabState.push`,
:meth:`~GitLabState.merge`, :meth:`~GitLabState.close`, :meth:`~GitLabState.fail_next`);
``requests`` counts calls per (method, route).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

from tests.servers.fake_github import (
    FakeForgeState,
    HTTPError,
    git_has_commit,
    git_head,
    git_merge,
    now,
    serve_state,
)

_ids = itertools.count(100)
MAX_DESCRIPTION = 1_048_576
GITLAB_TOKEN = "glpat-fake-gitlab-token-0123"
DRAFT = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|draft\s|\[wip\]|wip:)\s*", re.IGNORECASE)


def _error(status: int, message: Any, key: str = "message") -> HTTPError:
    return HTTPError(status, {key: message})


def _missing(name: str) -> HTTPError:
    return _error(400, f"{name} is missing", key="error")


def _invalid(name: str) -> HTTPError:
    return _error(400, f"{name} is invalid", key="error")


_KINDS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool) or v in ("true", "false"),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit()),
    "integer[]": lambda v: isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v),
    "labels": lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)),
}


def _check(body: Any, schema: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Grape-style validation: missing required params and wrong types are 400 ``{"error": ...}``."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _error(400, "400 Bad request - body must be a JSON object")
    for key in required:
        if key not in body or body[key] in (None, ""):
            raise _missing(key)
    for key, value in body.items():
        if key not in schema:
            raise _error(400, f"400 Bad request - unexpected parameter {key}")
        kind = schema[key]
        if kind.startswith("enum:"):
            if value not in kind[5:].split("|"):
                raise HTTPError(400, {"error": f"{key} does not have a valid value"})
        elif not _KINDS[kind](value):
            raise _invalid(key)
    return body


def _labels(value: str | list[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


@dataclass
class FakeMR:
    iid: int
    id: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    author: str
    state: str = "opened"
    labels: list[str] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    reviewer_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merge_when_pipeline_succeeds: bool = False
    remove_source_branch: bool = False
    squash: bool = False
    merged_at: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    sha_at_close: str | None = None
    source_project_id: int | None = None  # a fork's project id; None for the project itself
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    updated_seq: int = 0


@dataclass
class FakeProject:
    path: str
    id: int = field(default_factory=lambda: next(_ids))
    default_branch: str = "main"
    members: set[str] = field(default_factory=set)
    has_pipelines: bool = True
    git_dir: Path | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: set[str] = field(default_factory=set)
    mrs: dict[int, FakeMR] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    next_iid: int = 1

    def head_of(self, branch: str) -> str | None:
        return git_head(self.git_dir, branch) if self.git_dir else self.branches.get(branch)

    def knows_commit(self, sha: str) -> bool:
        return git_has_commit(self.git_dir, sha) if self.git_dir else sha in self.commits


@dataclass
class GitLabState(FakeForgeState):
    """Everything the fake holds; tests read it and act on it as a user would."""

    users: dict[str, int] = field(default_factory=dict)
    projects: dict[str, FakeProject] = field(default_factory=dict)
    url: str = ""

    # -- set-up and user actions -------------------------------------------------------

    def add_user(self, username: str) -> int:
        return self.users.setdefault(username, next(_ids))

    def add_project(self, path: str, *, members: tuple[str, ...] = (), **kw: Any) -> FakeProject:
        for name in members:
            self.add_user(name)
        project = FakeProject(path, members=set(members), **kw)
        self.projects[path] = project
        if project.git_dir is None:
            self.push(project, project.default_branch)
        return project

    def push(self, project: FakeProject | str, branch: str) -> str:
        project = self.projects[project] if isinstance(project, str) else project
        with self.lock:
            sha = hashlib.sha1(f"{project.path}/{branch}/{next(self.seq)}".encode()).hexdigest()
            project.branches[branch] = sha
            project.commits.add(sha)
            return sha

    def mr(self, path: str, iid: int) -> FakeMR:
        return self.projects[path].mrs[iid]

    def merge(self, path: str, iid: int) -> str:
        """Merge MR ``iid`` as the "Merge" button does; returns the merge commit."""
        project = self.projects[path]
        with self.lock:
            mr = project.mrs[iid]
            assert mr.state == "opened", f"!{iid} is {mr.state}"
            self._merge(project, mr)
            return mr.merge_commit_sha or ""

    def close(self, path: str, iid: int, comment: str | None = None) -> None:
        """Close MR ``iid`` without merging, as a user in the web UI."""
        project = self.projects[path]
        with self.lock:
            mr = project.mrs[iid]
            if comment:
                mr.notes.append(comment)
            mr.state, mr.closed_at = "closed", now()
            mr.sha_at_close = project.head_of(mr.source_branch)
            self._touch(mr)

    def open_from_fork(self, path: str, branch: str, title: str = "From a fork") -> FakeMR:
        """An MR someone opened from a fork of ``path``, as the web UI would."""
        project = self.projects[path]
        with self.lock:
            iid = project.next_iid
            project.next_iid += 1
            mr = FakeMR(iid, next(_ids), title, "", branch, project.default_branch, "stranger")
            mr.source_project_id = project.id + 1000
            mr.sha_at_close = hashlib.sha1(f"fork/{branch}".encode()).hexdigest()
            self._touch(mr)
            project.mrs[iid] = mr
            return mr

    def _merge(self, project: FakeProject, mr: FakeMR) -> None:
        head, base = project.head_of(mr.source_branch), project.head_of(mr.target_branch)
        assert head and base
        mr.sha_at_close = head
        if project.git_dir is None:
            sha = self.push(project, mr.target_branch)
        else:
            message = f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'\n\nSee merge request !{mr.iid}"
            sha = git_merge(project.git_dir, mr.target_branch, base, head, message)
        mr.state, mr.merged_at, mr.merge_commit_sha = "merged", now(), sha
        if mr.remove_source_branch and project.git_dir is None:
            project.branches.pop(mr.source_branch, None)
        self._touch(mr)

    # -- request handling --------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], payload: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        query: dict[str, Any] = {}
        for key, values in parse_qs(parts.query).items():
            query[key.removesuffix("[]")] = values if key.endswith("[]") else values[-1]
        with self.lock:
            route = re.sub(r"/projects/[^/]+", "/projects/:id", parts.path.removeprefix("/api/v4"))
            route = re.sub(r"/statuses/[0-9a-f]+", "/statuses/:sha", route)
            route = re.sub(r"/merge_requests/\d+", "/merge_requests/:iid", route)
            self.requests[(method, route)] += 1
            try:
                for failure in self.failures:
                    if failure.method == method and failure.path.search(parts.path) and failure.times > 0:
                        failure.times -= 1
                        raise HTTPError(failure.status, failure.body, failure.headers)
                status, body, extra = self._dispatch(method, parts.path, query, headers, payload)
            except HTTPError as err:
                status, body, extra = err.status, err.body, err.headers
            self.log.append((method, parts.path, status))
            return status, body, extra

    def _login(self, headers: dict[str, str], *, write: bool) -> str:
        token = headers.get("private-token")
        if token is None:
            scheme, _, bearer = headers.get("authorization", "").partition(" ")
            token = bearer if scheme.lower() == "bearer" else None
        if token is None or token not in self.tokens:
            raise _error(401, "401 Unauthorized")
        if write and token in self.read_only_tokens:
            raise _error(403, "403 Forbidden")
        return self.tokens[token]

    def _dispatch(
        self, method: str, path: str, query: dict[str, Any], headers: dict[str, str], payload: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        body: Any = None
        if payload:
            try:
                body = json.loads(payload)
            except ValueError:
                raise _error(400, "400 Bad request - invalid JSON") from None
        login = self._login(headers, write=method != "GET")
        if method == "GET" and path == "/api/v4/users":
            return self._users(query)
        m = re.fullmatch(r"/api/v4/projects/([^/]+)(/.*)", path)
        if not m:
            raise _error(404, "404 Not Found")
        ident = unquote(m[1])
        project = self.projects.get(ident) or next((p for p in self.projects.values() if str(p.id) == ident), None)
        if project is None or (login not in project.members and login != "root"):
            raise _error(404, "404 Project Not Found")
        rest = m[2]
        if rest == "/merge_requests" and method == "GET":
            return self._list(project, query)
        if rest == "/merge_requests" and method == "POST":
            return 201, self._create(project, login, body), {}
        if m2 := re.fullmatch(r"/merge_requests/(\d+)(/merge|/notes)?", rest):
            mr = project.mrs.get(int(m2[1]))
            if mr is None:
                raise _error(404, "404 Not found")
            if method == "PUT" and m2[2] is None:
                return 200, self._update(project, mr, body), {}
            if method == "PUT" and m2[2] == "/merge":
                return 200, self._auto_merge(project, mr, body), {}
            if method == "POST" and m2[2] == "/notes":
                return 201, self._note(mr, login, body), {}
            if method == "GET" and m2[2] is None:
                return 200, self.mr_json(project, mr), {}
        if method == "POST" and (m2 := re.fullmatch(r"/statuses/([0-9a-f]{5,40})", rest)):
            return 201, self._status(project, m2[1], login, body), {}
        if method == "GET" and (m2 := re.fullmatch(r"/repository/commits/([^/]+)/statuses", rest)):
            return self._list_statuses(project, m2[1], query)
        raise _error(404, "404 Not Found")

    def _list_statuses(self, project: FakeProject, sha: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """``List the statuses of a commit``: oldest first (``sort=desc`` for newest), and only the
        latest of each name unless ``all=true``."""
        if not project.knows_commit(sha):
            raise _error(404, "404 Commit Not Found")
        found = [s for s in project.statuses if s["sha"] == sha]
        for key in ("ref", "name"):
            if key in query:
                found = [s for s in found if s[key] == query[key]]
        if query.get("all", "false") != "true":
            latest = {s["name"]: s for s in found}
            found = [s for s in found if latest[s["name"]] is s]
        if query.get("sort", "asc") == "desc":
            found.reverse()
        per_page = min(int(query.get("per_page", "20")), 100)
        page = max(int(query.get("page", "1")), 1)
        pages = max(1, -(-len(found) // per_page))
        headers = {
            "X-Total": str(len(found)),
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
        }
        return 200, found[(page - 1) * per_page : page * per_page], headers

    # -- endpoints ---------------------------------------------------------------------

    def _users(self, query: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        name = query.get("username")
        found = [self.user_json(name)] if isinstance(name, str) and name in self.users else []
        return 200, found, {"X-Total": str(len(found)), "X-Page": "1", "X-Per-Page": "20", "X-Total-Pages": "1"}

    def _list(self, project: FakeProject, query: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        schema = {
            "state": "enum:opened|closed|locked|merged|all",
            "order_by": "enum:created_at|updated_at|title|merged_at",
            "sort": "enum:asc|desc",
            "source_branch": "string",
            "target_branch": "string",
            "per_page": "integer",
            "page": "integer",
        }
        query = _check(query, schema)
        per_page = min(int(query.get("per_page", 20)), 100)
        page = max(int(query.get("page", 1)), 1)
        state = query.get("state", "all")
        mrs = [mr for mr in project.mrs.values() if state in ("all", mr.state)]
        if "source_branch" in query:
            mrs = [mr for mr in mrs if mr.source_branch == query["source_branch"]]
        if "target_branch" in query:
            mrs = [mr for mr in mrs if mr.target_branch == query["target_branch"]]
        order = query.get("order_by", "created_at")
        key = (lambda mr: mr.updated_seq) if order == "updated_at" else (lambda mr: mr.iid)
        mrs.sort(key=key, reverse=query.get("sort", "desc") == "desc")
        chunk = mrs[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(mrs) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(mrs)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if page < pages:
            base = f"{self.url}/api/v4/projects/{project.id}/merge_requests"
            headers["Link"] = f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"'
        return 200, [self.mr_json(project, mr) for mr in chunk], headers

    def _user_ids(self, project: FakeProject, ids: list[int], field_name: str) -> list[int]:
        known = {uid for name, uid in self.users.items() if name in project.members}
        for uid in ids:
            if uid not in known:
                raise _error(400, {field_name: [f"user {uid} is not a member of the project"]})
        return list(dict.fromkeys(ids))

    def _create(self, project: FakeProject, login: str, body: Any) -> dict[str, Any]:
        schema = {
            "source_branch": "string",
            "target_branch": "string",
            "title": "string",
            "description": "string",
            "labels": "labels",
            "assignee_id": "integer",
            "assignee_ids": "integer[]",
            "reviewer_ids": "integer[]",
            "remove_source_branch": "boolean",
            "squash": "boolean",
            "allow_collaboration": "boolean",
            "milestone_id": "integer",
            "target_project_id": "integer",
        }
        body = _check(body, schema, required=("source_branch", "target_branch", "title"))
        if len(body.get("description", "")) > MAX_DESCRIPTION:
            raise _error(400, {"description": ["is too long (maximum is 1048576 characters)"]})
        source, target = body["source_branch"], body["target_branch"]
        problems = []
        if project.head_of(source) is None:
            problems.append(f'Source branch "{source}" does not exist')
        if project.head_of(target) is None:
            problems.append(f'Target branch "{target}" does not exist')
        if source == target:
            problems.append("You can't use same project/branch for source and target")
        if problems:
            raise _error(422, problems)
        for mr in project.mrs.values():
            if mr.state == "opened" and mr.source_branch == source and mr.source_project_id is None:
                raise _error(409, [f"Another open merge request already exists for this source branch: !{mr.iid}"])
        iid = project.next_iid
        project.next_iid += 1
        mr = FakeMR(
            iid=iid,
            id=next(_ids),
            title=body["title"],
            description=body.get("description", ""),
            source_branch=source,
            target_branch=target,
            author=login,
            labels=_labels(body.get("labels", [])),
            assignee_ids=self._user_ids(project, body.get("assignee_ids", []), "assignees"),
            reviewer_ids=self._user_ids(project, body.get("reviewer_ids", []), "reviewers"),
            remove_source_branch=body.get("remove_source_branch") in (True, "true"),
            squash=body.get("squash") in (True, "true"),
        )
        self._touch(mr)
        project.mrs[iid] = mr
        return self.mr_json(project, mr)

    def _update(self, project: FakeProject, mr: FakeMR, body: Any) -> dict[str, Any]:
        schema = {
            "title": "string",
            "description": "string",
            "state_event": "enum:close|reopen",
            "labels": "labels",
            "add_labels": "labels",
            "remove_labels": "labels",
            "assignee_ids": "integer[]",
            "reviewer_ids": "integer[]",
            "target_branch": "string",
            "remove_source_branch": "boolean",
            "squash": "boolean",
            "discussion_locked": "boolean",
            "milestone_id": "integer",
            "allow_collaboration": "boolean",
        }
        body = _check(body, schema)
        if not body:
            raise HTTPError(400, {"error": f"{', '.join(schema)} are missing, at least one parameter must be provided"})
        if len(body.get("description", "")) > MAX_DESCRIPTION:
            raise _error(400, {"description": ["is too long (maximum is 1048576 characters)"]})
        if mr.state == "merged" and "state_event" in body:
            raise _error(405, "405 Method Not Allowed")
        if "title" in body:
            mr.title = body["title"]
        if "description" in body:
            mr.description = body["description"]
        if "labels" in body:
            mr.labels = _labels(body["labels"])
        if "add_labels" in body:
            mr.labels = list(dict.fromkeys(mr.labels + _labels(body["add_labels"])))
        if "assignee_ids" in body:
            mr.assignee_ids = self._user_ids(project, body["assignee_ids"], "assignees")
        if "reviewer_ids" in body:
            mr.reviewer_ids = self._user_ids(project, body["reviewer_ids"], "reviewers")
        if body.get("state_event") == "close" and mr.state == "opened":
            mr.state, mr.closed_at = "closed", now()
            mr.sha_at_close = project.head_of(mr.source_branch)
            mr.merge_when_pipeline_succeeds = False
        elif body.get("state_event") == "reopen" and mr.state == "closed":
            mr.state, mr.closed_at = "opened", None
        self._touch(mr)
        return self.mr_json(project, mr)

    def _auto_merge(self, project: FakeProject, mr: FakeMR, body: Any) -> dict[str, Any]:
        schema = {
            "merge_commit_message": "string",
            "squash_commit_message": "string",
            "squash": "boolean",
            "should_remove_source_branch": "boolean",
            "merge_when_pipeline_succeeds": "boolean",
            "auto_merge": "boolean",
            "sha": "string",
        }
        body = _check(body, schema)
        if mr.state != "opened" or DRAFT.match(mr.title):
            raise _error(405, "405 Method Not Allowed")
        if "sha" in body and body["sha"] != project.head_of(mr.source_branch):
            raise _error(409, "SHA does not match HEAD of source branch")
        if body.get("should_remove_source_branch") in (True, "true"):
            mr.remove_source_branch = True
        wait = body.get("merge_when_pipeline_succeeds") in (True, "true") or body.get("auto_merge") in (True, "true")
        if wait and project.has_pipelines:
            mr.merge_when_pipeline_succeeds = True
            self._touch(mr)
        else:  # no pipeline to wait for: GitLab merges at once
            self._merge(project, mr)
        return self.mr_json(project, mr)

    def _note(self, mr: FakeMR, login: str, body: Any) -> dict[str, Any]:
        body = _check(body, {"body": "string", "internal": "boolean"}, required=("body",))
        mr.notes.append(body["body"])
        self._touch(mr)
        return {
            "id": next(_ids),
            "type": None,
            "body": body["body"],
            "attachment": None,
            "author": self.user_json(login),
            "created_at": now(),
            "updated_at": now(),
            "system": False,
            "noteable_id": mr.id,
            "noteable_type": "MergeRequest",
            "noteable_iid": mr.iid,
            "resolvable": False,
            "confidential": False,
            "internal": bool(body.get("internal", False)),
        }

    def _status(self, project: FakeProject, sha: str, login: str, body: Any) -> dict[str, Any]:
        schema = {
            "state": "enum:pending|running|success|failed|canceled|skipped",
            "ref": "string",
            "name": "string",
            "context": "string",
            "target_url": "string",
            "description": "string",
            "coverage": "string",
            "pipeline_id": "integer",
        }
        body = _check(body, schema, required=("state",))
        if not project.knows_commit(sha):
            raise _error(404, "404 Commit Not Found")
        name = body.get("name") or body.get("context") or "default"
        previous = [s for s in project.statuses if s["sha"] == sha and s["name"] == name]
        if previous and previous[-1]["status"] == body["state"]:
            event = {"pending": "enqueue", "running": "run", "success": "succeed", "failed": "drop"}
            verb = event.get(body["state"], body["state"])
            message = f"Cannot transition status via :{verb} from :{body['state']}"
            raise _error(400, f'{message} (Reason(s): Status cannot transition via "{verb}")')
        status = {
            "id": next(_ids),
            "sha": sha,
            "ref": body.get("ref"),
            "status": body["state"],
            "name": name,
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "created_at": now(),
            "started_at": None,
            "finished_at": None,
            "allow_failure": False,
            "coverage": None,
            "author": self.user_json(login),
        }
        project.statuses.append(status)
        return status

    # -- JSON shapes -------------------------------------------------------------------

    def user_json(self, username: str) -> dict[str, Any]:
        uid = self.users.get(username) or self.add_user(username)
        return {
            "id": uid,
            "username": username,
            "name": username.title(),
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.url}/{username}",
        }

    def _user_by_id(self, uid: int) -> dict[str, Any]:
        name = next(n for n, i in self.users.items() if i == uid)
        return self.user_json(name)

    def mr_json(self, project: FakeProject, mr: FakeMR) -> dict[str, Any]:
        draft = bool(DRAFT.match(mr.title))
        from_elsewhere = mr.state != "opened" or mr.source_project_id is not None
        sha = mr.sha_at_close if from_elsewhere else project.head_of(mr.source_branch)
        assignees = [self._user_by_id(uid) for uid in mr.assignee_ids]
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": mr.created_at,
            "updated_at": mr.updated_at,
            "merged_by": None,
            "merge_user": None,
            "merged_at": mr.merged_at,
            "closed_by": None,
            "closed_at": mr.closed_at,
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "user_notes_count": len(mr.notes),
            "upvotes": 0,
            "downvotes": 0,
            "author": self.user_json(mr.author),
            "assignees": assignees,
            "assignee": assignees[0] if assignees else None,
            "reviewers": [self._user_by_id(uid) for uid in mr.reviewer_ids],
            "source_project_id": mr.source_project_id or project.id,
            "target_project_id": project.id,
            "labels": list(mr.labels),
            "draft": draft,
            "work_in_progress": draft,
            "milestone": None,
            "merge_when_pipeline_succeeds": mr.merge_when_pipeline_succeeds,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "draft_status" if draft else "mergeable",
            "sha": sha,
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": mr.remove_source_branch,
            "reference": f"!{mr.iid}",
            "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}", "full": f"{project.path}!{mr.iid}"},
            "web_url": f"{self.url}/{project.path}/-/merge_requests/{mr.iid}",
            "time_stats": {"time_estimate": 0, "total_time_spent": 0},
            "squash": mr.squash,
            "squash_on_merge": mr.squash,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
        }


@contextlib.contextmanager
def gitlab_server(state: GitLabState | None = None) -> Iterator[GitLabState]:
    """Serve ``state`` on 127.0.0.1 (a free port) until the block exits; ``state.url`` is the instance URL."""
    state = state or GitLabState()
    with serve_state(state, "fake-gitlab") as origin:
        state.url = origin
        yield state


@pytest.fixture
def fake_gitlab() -> Iterator[GitLabState]:
    """A fake GitLab with token ``GITLAB_TOKEN`` (user ``automator-bot``) and project ``group/app``."""
    with gitlab_server() as state:
        state.tokens[GITLAB_TOKEN] = "automator-bot"
        state.add_project("group/app", members=("automator-bot", "alice", "bob"))
        yield state
