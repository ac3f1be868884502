"""GitLabForge (python-gitlab) against the stateful fake GitLab: lifecycle, options, errors, call counts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from automator.errors import ConfigError, ForgeAuthError, ForgeNotFound, ForgeRejected, ForgeUnavailable
from automator.forge.base import Forge, PROptions, PRState, with_marker
from automator.forge.gitlab import GitLabForge
from automator.forge.lifecycle import DesiredPR, plan_pull_requests
from tests.servers.fake_gitlab import GitLabState, gitlab_server

TOKEN = "glpat-" + "s3cr3t" * 4
PROJECT = "group/app"
PREFIX = "automator/"
V1 = {"app": "registry.gitlab.com/group/app:1.0.0@sha256:" + "1" * 64}
V2 = {"app": "registry.gitlab.com/group/app:2.0.0@sha256:" + "2" * 64}


@pytest.fixture
def gl() -> Iterator[GitLabState]:
    with gitlab_server() as state:
        state.tokens[TOKEN] = "automator-bot"
        state.add_project(PROJECT, members=("automator-bot", "alice", "bob"))
        yield state


@pytest.fixture
def forge(gl: GitLabState) -> GitLabForge:
    return GitLabForge(PROJECT, token=TOKEN, url=gl.url)


def body(versions: dict[str, str], group: str = "app") -> str:
    return with_marker("Update", PRState(group, versions))


def test_open_then_list_recovers_the_marker(gl: GitLabState, forge: GitLabForge) -> None:
    typed: Forge = forge  # the adapter satisfies the Protocol, statically and at runtime
    assert isinstance(typed, Forge)
    sha = gl.push(PROJECT, "automator/app")
    opened = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    assert (opened.number, opened.state, opened.head_sha) == (1, "open", sha)
    assert opened.url == f"{gl.url}/group/app/-/merge_requests/1"
    assert forge.calls.total == 1 == gl.writes()

    gl.push(PROJECT, "feature/x")
    forge.open_pull_request("feature/x", "main", "Not ours", "hi")
    fresh = GitLabForge(PROJECT, token=TOKEN, url=gl.url)
    [listed] = fresh.list_pull_requests(PREFIX)
    assert listed.marker == PRState("app", V1)
    assert (listed.branch, listed.base, listed.title) == ("automator/app", "main", "Update app")
    assert fresh.calls.total == 1 == gl.requests[("GET", "/projects/:id/merge_requests")]


def test_listing_pages_and_reports_merged_and_closed(gl: GitLabState, forge: GitLabForge) -> None:
    for i in range(120):
        gl.push(PROJECT, f"automator/p{i}")
        forge.open_pull_request(f"automator/p{i}", "main", f"t{i}", body(V1, f"p{i}"))
    gl.merge(PROJECT, 1)
    gl.close(PROJECT, 2)
    reader = GitLabForge(PROJECT, token=TOKEN, url=gl.url)
    prs = reader.list_pull_requests(PREFIX)
    assert len(prs) == 120 and reader.calls.reads == 2
    states = {pr.number: pr.state for pr in prs}
    assert (states[1], states[2], states[3]) == ("merged", "closed", "open")
    assert [pr.number for pr in prs[:2]] == [2, 1]

    limited = GitLabForge(PROJECT, token=TOKEN, url=gl.url, list_limit=100)
    assert len(limited.list_pull_requests(PREFIX)) == 100 and limited.calls.reads == 1


def test_a_full_last_page_costs_no_extra_call(gl: GitLabState, forge: GitLabForge) -> None:
    for i in range(100):
        gl.push(PROJECT, f"automator/p{i}")
        forge.open_pull_request(f"automator/p{i}", "main", f"t{i}", body(V1, f"p{i}"))
    reader = GitLabForge(PROJECT, token=TOKEN, url=gl.url)
    assert len(reader.list_pull_requests(PREFIX)) == 100 and reader.calls.reads == 1


def test_merge_requests_from_forks_are_never_ours(gl: GitLabState, forge: GitLabForge) -> None:
    gl.open_from_fork(PROJECT, "automator/app")
    gl.push(PROJECT, "automator/app")
    forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    assert [(pr.number, pr.branch) for pr in forge.list_pull_requests(PREFIX)] == [(2, "automator/app")]


def test_update_only_when_changed_and_draft_kept(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/app")
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1), PROptions(draft=True))
    assert pr.draft and pr.title == "Update app" and gl.mr(PROJECT, 1).title == "Draft: Update app"
    writes = gl.writes()
    assert forge.update_pull_request(pr, "Update app", pr.body) is pr
    assert gl.writes() == writes

    updated = forge.update_pull_request(pr, "Update app to 2", body(V2))
    assert gl.mr(PROJECT, 1).title == "Draft: Update app to 2"
    assert updated.title == "Update app to 2" and updated.draft and updated.marker == PRState("app", V2)
    assert gl.writes() == writes + 1


def test_close_with_note_flags_the_marker(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/app")
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    forge.close_pull_request(pr, "Superseded")
    mr = gl.mr(PROJECT, 1)
    assert mr.state == "closed" and mr.notes == ["Superseded"]
    [listed] = forge.list_pull_requests(PREFIX)
    assert listed.state == "closed" and listed.marker is not None and listed.marker.closed_by_automator


def test_labels_reviewers_assignees_and_auto_merge(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/a")
    gl.push(PROJECT, "automator/b")
    options = PROptions(labels=("deps", "bot"), reviewers=("alice",), assignees=("bob", "alice"), auto_merge=True)
    forge.open_pull_request("automator/a", "main", "a", body(V1), options)
    mr = gl.mr(PROJECT, 1)
    assert mr.labels == ["deps", "bot"] and mr.merge_when_pipeline_succeeds
    assert mr.reviewer_ids == [gl.users["alice"]] and mr.assignee_ids == [gl.users["bob"], gl.users["alice"]]
    assert forge.calls.by_kind["GET /users"] == 2  # one lookup per distinct user
    assert forge.calls.writes == 2

    forge.open_pull_request("automator/b", "main", "b", body(V2), options)
    assert forge.calls.by_kind["GET /users"] == 2  # cached
    assert forge.calls.writes == 4


def test_auto_merge_without_pipelines_merges_at_once(gl: GitLabState, forge: GitLabForge) -> None:
    gl.projects[PROJECT].has_pipelines = False
    gl.push(PROJECT, "automator/a")
    pr = forge.open_pull_request("automator/a", "main", "a", body(V1), PROptions(auto_merge=True))
    assert pr.state == "merged"


def test_auto_merge_refused_is_reported_and_the_mr_kept(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/a")
    gl.fail_next("PUT", r"/merge$", 405, body={"message": "405 Method Not Allowed"})
    pr = forge.open_pull_request("automator/a", "main", "a", body(V1), PROptions(auto_merge=True))
    assert pr.state == "open" and len(gl.projects[PROJECT].mrs) == 1
    [warning] = pr.warnings
    assert "merge when the pipeline succeeds" in warning and "405" in warning


def test_draft_never_asks_for_auto_merge(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/a")
    forge.open_pull_request("automator/a", "main", "a", body(V1), PROptions(auto_merge=True, draft=True))
    assert gl.requests[("PUT", "/projects/:id/merge_requests/:iid/merge")] == 0


def test_commit_status_and_same_state_is_idempotent(gl: GitLabState, forge: GitLabForge) -> None:
    sha = gl.push(PROJECT, "automator/app")
    forge.set_commit_status(sha, "pending", "automator", "checking", "https://ci.example/1")
    forge.set_commit_status(sha, "pending", "automator", "checking")
    forge.set_commit_status(sha, "failure", "automator", "no")
    statuses = gl.projects[PROJECT].statuses
    assert [(s["status"], s["name"]) for s in statuses] == [("pending", "automator"), ("failed", "automator")]
    assert statuses[0]["target_url"] == "https://ci.example/1"
    with pytest.raises(ForgeNotFound):
        forge.set_commit_status("f" * 40, "success", "automator")


def test_open_twice_returns_the_existing_mr(gl: GitLabState, forge: GitLabForge) -> None:
    gl.push(PROJECT, "automator/app")
    first = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    gl.open_from_fork(PROJECT, "automator/app")  # a fork's branch of the same name is not ours
    again = GitLabForge(PROJECT, token=TOKEN, url=gl.url).open_pull_request("automator/app", "main", "x", body(V1))
    assert again.number == first.number and len(gl.projects[PROJECT].mrs) == 2


@pytest.mark.parametrize("status", [500, 502, 429])
def test_transient_errors_are_retryable_and_not_slept_on(gl: GitLabState, forge: GitLabForge, status: int) -> None:
    gl.fail_next("GET", r"/merge_requests$", status, headers={"Retry-After": "30"})
    with pytest.raises(ForgeUnavailable, match="retry later") as info:
        forge.list_pull_requests(PREFIX)
    assert info.value.retryable and gl.requests[("GET", "/projects/:id/merge_requests")] == 1
    assert forge.list_pull_requests(PREFIX) == []


def test_permanent_errors_name_the_project_and_never_the_token(gl: GitLabState) -> None:
    bad = GitLabForge(PROJECT, token="glpat-wrong-token", url=gl.url)
    with pytest.raises(ForgeAuthError, match=r"group/app \(401: 401 Unauthorized\)") as info:
        bad.list_pull_requests(PREFIX)
    assert "glpat-wrong-token" not in str(info.value)

    gl.tokens["glpat-reader"] = "alice"
    gl.read_only_tokens.add("glpat-reader")
    gl.push(PROJECT, "automator/app")
    with pytest.raises(ForgeAuthError, match="api scope"):
        GitLabForge(PROJECT, token="glpat-reader", url=gl.url).open_pull_request("automator/app", "main", "t", "b")

    with pytest.raises(ForgeNotFound, match=r"group/missing .*404 Project Not Found"):
        GitLabForge("group/missing", token=TOKEN, url=gl.url).list_pull_requests(PREFIX)

    forge = GitLabForge(PROJECT, token=TOKEN, url=gl.url)
    with pytest.raises(ForgeRejected, match='Source branch "automator/nope" does not exist'):
        forge.open_pull_request("automator/nope", "main", "t", "b")
    with pytest.raises(ForgeRejected, match="user 'mallory' not found"):
        forge.open_pull_request("automator/app", "main", "t", "b", PROptions(reviewers=("mallory",)))


def test_oauth_token_and_numeric_project_id(gl: GitLabState) -> None:
    gl.push(PROJECT, "automator/app")
    forge = GitLabForge(gl.projects[PROJECT].id, token=TOKEN, url=gl.url, oauth=True)
    forge.open_pull_request("automator/app", "main", "t", body(V1))
    assert len(forge.list_pull_requests(PREFIX)) == 1


def test_unreachable_server_is_transient() -> None:
    with gitlab_server() as state:
        url = state.url
    with pytest.raises(ForgeUnavailable, match="unreachable") as info:
        GitLabForge(PROJECT, token=TOKEN, url=url, timeout=2).list_pull_requests(PREFIX)
    assert TOKEN not in str(info.value)


def test_constructor_checks() -> None:
    with pytest.raises(ConfigError, match="token is required"):
        GitLabForge(PROJECT, token="")


def run_cycle(
    forge: GitLabForge, gl: GitLabState, desired: list[DesiredPR], settled: tuple[str, ...] = ()
) -> list[str]:
    actions: list[str] = []
    for decision in plan_pull_requests(desired, forge.list_pull_requests(PREFIX), settled):
        actions.append(decision.action)
        want = next((d for d in desired if d.group == decision.group), None)
        if decision.action == "open" and want:
            gl.push(PROJECT, want.branch)
            forge.open_pull_request(want.branch, "main", f"Update {want.group}", body(dict(want.versions)))
        elif decision.action == "update" and want and decision.pr:
            gl.push(PROJECT, want.branch)
            forge.update_pull_request(decision.pr, f"Update {want.group}", body(dict(want.versions)))
        elif decision.action == "close" and decision.pr:
            forge.close_pull_request(decision.pr, decision.reason)
    return actions


def test_lifecycle_end_to_end(gl: GitLabState, forge: GitLabForge) -> None:
    assert run_cycle(forge, gl, [DesiredPR("app", "automator/app", V1)]) == ["open"]
    writes = gl.writes()
    assert run_cycle(forge, gl, [DesiredPR("app", "automator/app", V1)]) == ["noop"]
    assert gl.writes() == writes
    assert run_cycle(forge, gl, [DesiredPR("app", "automator/app", V2)]) == ["update"]
    assert len(gl.projects[PROJECT].mrs) == 1
    gl.merge(PROJECT, 1)
    assert run_cycle(forge, gl, [], settled=("app",)) == []
    v3 = {"app": "registry.gitlab.com/group/app:3.0.0@sha256:" + "3" * 64}
    assert run_cycle(forge, gl, [DesiredPR("app", "automator/app", v3)]) == ["open"]
    gl.close(PROJECT, 2)
    assert run_cycle(forge, gl, [DesiredPR("app", "automator/app", v3)]) == ["skip"]
    assert len(gl.projects[PROJECT].mrs) == 2
    assert forge.calls.total == sum(gl.requests.values())  # every request the fake saw was counted


def test_a_project_backed_by_real_git(tmp_path: Path) -> None:
    work, bare = tmp_path / "work", tmp_path / "remote.git"
    ident = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]

    def git(*args: str, cwd: Path = work) -> str:
        done = subprocess.run(["git", *ident, *args], cwd=cwd, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("clone", str(bare), str(work), cwd=tmp_path)
    (work / "app.yaml").write_text("image: app:1.0.0\n")
    git("add", "app.yaml")
    git("commit", "-m", "init")
    git("push", "origin", "HEAD:main")
    (work / "app.yaml").write_text("image: app:2.0.0\n")
    git("commit", "-am", "Update app to 2.0.0")
    git("push", "origin", "HEAD:automator/app")

    with gitlab_server() as gl:
        gl.tokens[TOKEN] = "automator-bot"
        gl.add_project(PROJECT, members=("automator-bot",), git_dir=bare)
        forge = GitLabForge(PROJECT, token=TOKEN, url=gl.url)
        pr = forge.open_pull_request("automator/app", "main", "Update app", body(V2))
        assert pr.head_sha == git("rev-parse", "HEAD")
        forge.set_commit_status(git("rev-parse", "HEAD"), "success", "automator")
        gl.merge(PROJECT, pr.number)
        assert [p.state for p in forge.list_pull_requests(PREFIX)] == ["merged"]
    assert git("show", "main:app.yaml", cwd=bare) == "image: app:2.0.0"
