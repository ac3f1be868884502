"""GitHubForge (PyGithub) against the stateful fake GitHub: lifecycle, options, errors, call counts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from automator.errors import ConfigError, ForgeAuthError, ForgeNotFound, ForgeRejected, ForgeUnavailable
from automator.forge.base import Forge, PROptions, PRState, with_marker
from automator.forge.github import GitHubForge, enterprise_api_url
from automator.forge.lifecycle import DesiredPR, plan_pull_requests
from tests.servers.fake_github import GitHubState, github_server

TOKEN = "ghp_" + "s3cr3t" * 6
REPO = "octo/app"
PREFIX = "automator/"


@pytest.fixture
def gh() -> Iterator[GitHubState]:
    with github_server() as state:
        state.tokens[TOKEN] = "automator-bot"
        state.add_repo(REPO, collaborators=("alice", "bob", "automator-bot"))
        yield state


@pytest.fixture
def forge(gh: GitHubState) -> GitHubForge:
    return GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)


def body(versions: dict[str, str], group: str = "app", text: str = "Update") -> str:
    return with_marker(text, PRState(group, versions))


V1 = {"app": "ghcr.io/octo/app:1.0.0@sha256:" + "1" * 64}
V2 = {"app": "ghcr.io/octo/app:2.0.0@sha256:" + "2" * 64}


def test_open_then_list_recovers_the_marker(gh: GitHubState, forge: GitHubForge) -> None:
    typed: Forge = forge  # the adapter satisfies the Protocol, statically and at runtime
    assert isinstance(typed, Forge)
    gh.push(REPO, "automator/app")
    opened = forge.open_pull_request("automator/app", "main", "Update app to 1.0.0", body(V1))
    assert opened.number == 1 and opened.state == "open" and opened.url.endswith("/octo/app/pull/1")
    assert opened.head_sha == gh.repos[REPO].branches["automator/app"]
    assert forge.calls.writes == 1

    gh.push(REPO, "feature/other")
    forge.open_pull_request("feature/other", "main", "Not ours", "hello")
    fresh = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)
    [listed] = fresh.list_pull_requests(PREFIX)
    assert listed.marker == PRState("app", V1)
    assert (listed.branch, listed.base, listed.title, listed.state) == (
        "automator/app",
        "main",
        "Update app to 1.0.0",
        "open",
    )
    assert fresh.calls.reads == 1 and gh.requests[("GET", "/repos/{repo}/pulls")] == 1


def test_listing_reports_merged_and_closed_and_pages_within_the_limit(gh: GitHubState, forge: GitHubForge) -> None:
    for i in range(150):
        gh.push(REPO, f"automator/p{i}")
        forge.open_pull_request(f"automator/p{i}", "main", f"t{i}", body(V1, group=f"p{i}"))
    gh.merge(REPO, 1)
    gh.close(REPO, 2)
    before = gh.requests[("GET", "/repos/{repo}/pulls")]
    prs = forge.list_pull_requests(PREFIX)
    assert len(prs) == 150
    assert gh.requests[("GET", "/repos/{repo}/pulls")] - before == 2
    states = {pr.number: pr.state for pr in prs}
    assert states[1] == "merged" and states[2] == "closed" and states[3] == "open"
    assert [pr.number for pr in prs[:2]] == [2, 1]  # most recently updated first

    limited = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url, list_limit=100)
    assert len(limited.list_pull_requests(PREFIX)) == 100 and limited.calls.reads == 1


def test_a_full_last_page_costs_no_extra_call(gh: GitHubState, forge: GitHubForge) -> None:
    for i in range(200):
        gh.push(REPO, f"automator/p{i}")
        forge.open_pull_request(f"automator/p{i}", "main", f"t{i}", body(V1, group=f"p{i}"))
    assert forge.calls.writes == 200 == gh.writes()  # one call per new PR without options
    reader = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)
    assert len(reader.list_pull_requests(PREFIX)) == 200
    assert reader.calls.reads == 2 == gh.requests[("GET", "/repos/{repo}/pulls")]


def test_pull_requests_from_forks_are_never_ours(gh: GitHubState, forge: GitHubForge) -> None:
    gh.open_from_fork(REPO, "mallory/app", "automator/app")
    gh.open_from_fork(REPO, "", "automator/other")  # the fork was deleted: head.repo is null
    gh.push(REPO, "automator/app")
    forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    assert [(pr.number, pr.branch) for pr in forge.list_pull_requests(PREFIX)] == [(3, "automator/app")]


def test_update_makes_no_call_when_unchanged(gh: GitHubState, forge: GitHubForge) -> None:
    gh.push(REPO, "automator/app")
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    writes = gh.writes()
    assert forge.update_pull_request(pr, pr.title, pr.body) is pr
    assert gh.writes() == writes

    fresh = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)
    updated = fresh.update_pull_request(pr, "Update app to 2.0.0", body(V2))
    assert updated.title == "Update app to 2.0.0" and updated.marker == PRState("app", V2)
    assert gh.pull(REPO, 1).title == "Update app to 2.0.0"
    assert fresh.calls.total == 1 and gh.writes() == writes + 1


def test_close_with_comment_flags_the_marker(gh: GitHubState, forge: GitHubForge) -> None:
    gh.push(REPO, "automator/app")
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    forge.close_pull_request(pr, "Superseded by #2")
    fake = gh.pull(REPO, 1)
    assert fake.state == "closed" and fake.comments == ["Superseded by #2"]
    [listed] = forge.list_pull_requests(PREFIX)
    assert listed.state == "closed" and listed.marker is not None and listed.marker.closed_by_automator
    assert gh.requests[("POST", "/repos/{repo}/issues/{n}/comments")] == 1
    assert gh.requests[("PATCH", "/repos/{repo}/pulls/{n}")] == 1


def test_options_cost_at_most_three_calls(gh: GitHubState, forge: GitHubForge) -> None:
    gh.push(REPO, "automator/app")
    options = PROptions(
        labels=("dependencies", "automated"), reviewers=("alice",), team_reviewers=("ops",), assignees=("bob",)
    )
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1), options)
    fake = gh.pull(REPO, pr.number)
    assert fake.labels == ["dependencies", "automated"]
    assert fake.assignees == ["bob"] and fake.reviewers == ["alice"] and fake.team_reviewers == ["ops"]
    assert forge.calls.total == 3 == gh.writes()


def test_draft_and_auto_merge(gh: GitHubState, forge: GitHubForge) -> None:
    gh.push(REPO, "automator/a")
    gh.push(REPO, "automator/b")
    pr = forge.open_pull_request(
        "automator/a", "main", "a", body(V1), PROptions(auto_merge=True, merge_method="squash")
    )
    assert gh.pull(REPO, pr.number).auto_merge == {
        "enabled_by": gh.user_json("automator-bot"),
        "merge_method": "squash",
        "commit_title": None,
        "commit_message": None,
    }
    assert gh.requests[("POST", "/graphql")] == 1
    draft = forge.open_pull_request("automator/b", "main", "b", body(V2), PROptions(draft=True, auto_merge=True))
    assert draft.draft and gh.pull(REPO, draft.number).draft
    assert gh.pull(REPO, draft.number).auto_merge is None  # GitHub refuses auto-merge on drafts; not attempted
    assert gh.requests[("POST", "/graphql")] == 1


def test_auto_merge_refused_by_the_repository_is_reported(gh: GitHubState, forge: GitHubForge) -> None:
    gh.repos[REPO].allow_auto_merge = False
    gh.push(REPO, "automator/a")
    pr = forge.open_pull_request("automator/a", "main", "a", body(V1), PROptions(auto_merge=True, labels=("x",)))
    assert pr.state == "open" and gh.pull(REPO, 1).labels == ["x"]
    [warning] = pr.warnings
    assert "Auto merge is not allowed" in warning and "octo/app" in warning


def test_commit_status(gh: GitHubState, forge: GitHubForge) -> None:
    sha = gh.push(REPO, "automator/app")
    forge.set_commit_status(sha, "pending", "automator/policy", "checking", "https://ci.example/1")
    [status] = gh.repos[REPO].statuses
    assert (status["sha"], status["state"], status["context"], status["target_url"]) == (
        sha,
        "pending",
        "automator/policy",
        "https://ci.example/1",
    )
    assert forge.calls.total == 1 == gh.writes()
    with pytest.raises(ForgeRejected, match="No commit found"):
        forge.set_commit_status("f" * 40, "success", "automator/policy")


def test_open_twice_returns_the_existing_pr(gh: GitHubState, forge: GitHubForge) -> None:
    gh.push(REPO, "automator/app")
    first = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    again = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url).open_pull_request(
        "automator/app", "main", "Update app", body(V1)
    )
    assert again.number == first.number and len(gh.repos[REPO].pulls) == 1


def test_github_app_installation_token(gh: GitHubState) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    gh.apps["4242"] = public.decode()
    gh.installations[77] = "4242"
    forge = GitHubForge(REPO, app_id=4242, private_key=pem.decode(), installation_id=77, base_url=gh.base_url)
    gh.push(REPO, "automator/app")
    pr = forge.open_pull_request("automator/app", "main", "Update app", body(V1))
    assert gh.pull(REPO, pr.number).author == "app-4242[bot]"
    assert gh.requests[("POST", "/app/installations/{n}/access_tokens")] == 1
    assert forge.calls.total == 1


TRANSIENT = [
    (502, {"message": "Bad Gateway"}, {}, "retry later"),
    (429, {"message": "Too Many Requests"}, {"Retry-After": "7"}, "retry later"),
    (403, {"message": "API rate limit exceeded for user ID 1."}, {"X-RateLimit-Remaining": "0"}, "rate limit"),
    (403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "60"}, "rate limit"),
]


@pytest.mark.parametrize("case", TRANSIENT, ids=["502", "429", "primary-limit", "secondary-limit"])
def test_transient_errors_are_retryable(
    gh: GitHubState, forge: GitHubForge, case: tuple[int, dict[str, str], dict[str, str], str]
) -> None:
    status, payload, headers, text = case
    gh.fail_next("GET", r"/pulls$", status, body=payload, headers=headers)
    with pytest.raises(ForgeUnavailable, match=text) as info:
        forge.list_pull_requests(PREFIX)
    assert info.value.retryable
    if "Retry-After" in headers:
        assert info.value.retry_after == float(headers["Retry-After"])
    elif "X-RateLimit-Remaining" in headers:
        assert info.value.retry_after is not None and 3000 < info.value.retry_after <= 3600
    assert forge.list_pull_requests(PREFIX) == []


def test_permanent_errors_name_the_repo_and_never_the_token(gh: GitHubState) -> None:
    bad = GitHubForge(REPO, token="ghp_wrong_token_value", base_url=gh.base_url)
    with pytest.raises(ForgeAuthError, match=r"octo/app \(401: Bad credentials\): the token was refused") as info:
        bad.list_pull_requests(PREFIX)
    assert "ghp_wrong_token_value" not in str(info.value) and not info.value.retryable

    gh.tokens["ghp_readonly_0123"] = "reader"
    gh.read_only_tokens.add("ghp_readonly_0123")
    gh.push(REPO, "automator/app")
    reader = GitHubForge(REPO, token="ghp_readonly_0123", base_url=gh.base_url)
    with pytest.raises(ForgeAuthError, match="lacks a permission"):
        reader.open_pull_request("automator/app", "main", "t", "b")

    missing = GitHubForge("octo/missing", token=TOKEN, base_url=gh.base_url)
    with pytest.raises(ForgeNotFound, match=r"octo/missing .*check the repository name"):
        missing.list_pull_requests(PREFIX)

    forge = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)
    with pytest.raises(ForgeRejected, match="Validation Failed; PullRequest head invalid"):
        forge.open_pull_request("automator/never-pushed", "main", "t", "b")
    opened = forge.open_pull_request("automator/app", "main", "t", "b", PROptions(reviewers=("mallory",)))
    [warning] = opened.warnings  # the PR exists; the refused option is reported, not lost
    assert "request reviews on #1" in warning and "not a collaborator" in warning
    assert gh.pull(REPO, 1).state == "open"


def test_unreachable_server_is_transient() -> None:
    with github_server() as state:
        url = state.base_url
    forge = GitHubForge(REPO, token=TOKEN, base_url=url, timeout=2)
    with pytest.raises(ForgeUnavailable, match="unreachable") as info:
        forge.list_pull_requests(PREFIX)
    assert TOKEN not in str(info.value)


def test_constructor_checks() -> None:
    with pytest.raises(ConfigError, match="owner/name"):
        GitHubForge("app", token=TOKEN)
    with pytest.raises(ConfigError, match="either a token"):
        GitHubForge(REPO)
    assert enterprise_api_url("github.example.com") == "https://github.example.com/api/v3"


def run_cycle(
    forge: GitHubForge, gh: GitHubState, desired: list[DesiredPR], settled: tuple[str, ...] = ()
) -> list[str]:
    """What the run orchestrator does with the forge, with the git push simulated on the fake."""
    actions: list[str] = []
    existing = forge.list_pull_requests(PREFIX)
    for decision in plan_pull_requests(desired, existing, settled):
        actions.append(decision.action)
        want = next((d for d in desired if d.group == decision.group), None)
        if decision.action == "open" and want:
            gh.push(REPO, want.branch)
            forge.open_pull_request(want.branch, "main", f"Update {want.group}", body(dict(want.versions), want.group))
        elif decision.action == "update" and want and decision.pr:
            gh.push(REPO, want.branch)
            forge.update_pull_request(decision.pr, f"Update {want.group}", body(dict(want.versions), want.group))
        elif decision.action == "close" and decision.pr:
            forge.close_pull_request(decision.pr, decision.reason)
    return actions


def test_lifecycle_end_to_end(gh: GitHubState, forge: GitHubForge) -> None:
    want = DesiredPR("app", "automator/app", V1)
    assert run_cycle(forge, gh, [want]) == ["open"]

    writes = gh.writes()
    assert run_cycle(forge, gh, [want]) == ["noop"]
    assert gh.writes() == writes  # a no-op rerun makes no forge writes

    assert run_cycle(forge, gh, [DesiredPR("app", "automator/app", V2)]) == ["update"]
    assert len(gh.repos[REPO].pulls) == 1 and gh.pull(REPO, 1).title == "Update app"
    [pr] = forge.list_pull_requests(PREFIX)
    assert pr.marker == PRState("app", V2)

    gh.merge(REPO, 1)
    assert run_cycle(forge, gh, [], settled=("app",)) == []
    v3 = {"app": "ghcr.io/octo/app:3.0.0@sha256:" + "3" * 64}
    assert run_cycle(forge, gh, [DesiredPR("app", "automator/app", v3)]) == ["open"]
    assert gh.pull(REPO, 2).state == "open"

    gh.close(REPO, 2)  # the user rejects 3.0.0
    assert run_cycle(forge, gh, [DesiredPR("app", "automator/app", v3)]) == ["skip"]
    assert run_cycle(forge, gh, [DesiredPR("app", "automator/app", v3)]) == ["skip"]
    assert len(gh.repos[REPO].pulls) == 2
    v4 = {"app": "ghcr.io/octo/app:4.0.0@sha256:" + "4" * 64}
    assert run_cycle(forge, gh, [DesiredPR("app", "automator/app", v4)]) == ["open"]
    assert run_cycle(forge, gh, [], settled=("app",)) == ["close"]
    assert gh.pull(REPO, 3).state == "closed"
    assert forge.calls.total == sum(gh.requests.values())  # every request the fake saw was counted


def test_a_repository_backed_by_real_git(tmp_path: Path) -> None:
    """The fake reads branch heads from a bare repository and merges with a real merge commit."""

    def git(*args: str, cwd: Path = tmp_path / "work") -> str:
        env_args = ["-c", "user.name=T", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]
        done = subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    bare = tmp_path / "remote.git"
    git("init", "--bare", str(bare), cwd=tmp_path)
    git("clone", str(bare), "work", cwd=tmp_path)
    (tmp_path / "work" / "app.yaml").write_text("image: app:1.0.0\n")
    git("add", "app.yaml")
    git("commit", "-m", "init")
    git("push", "origin", "HEAD:main")
    git("checkout", "-b", "automator/app")
    (tmp_path / "work" / "app.yaml").write_text("image: app:2.0.0\n")
    git("commit", "-am", "Update app to 2.0.0")
    git("push", "origin", "automator/app")
    head = git("rev-parse", "HEAD")

    with github_server() as gh:
        gh.tokens[TOKEN] = "automator-bot"
        gh.add_repo(REPO, git_dir=bare)
        forge = GitHubForge(REPO, token=TOKEN, base_url=gh.base_url)
        pr = forge.open_pull_request("automator/app", "main", "Update app", body(V2))
        assert pr.head_sha == head
        forge.set_commit_status(head, "success", "automator")
        merge = gh.merge(REPO, pr.number)
        [merged] = forge.list_pull_requests(PREFIX)
        assert merged.state == "merged"
    assert git("rev-parse", "main", cwd=bare) == merge
    assert git("show", "main:app.yaml", cwd=bare) == "image: app:2.0.0"
    assert git("rev-list", "--parents", "-n1", "main", cwd=bare).split()[1:] == [
        git("rev-parse", "main~1", cwd=bare),
        head,
    ]
