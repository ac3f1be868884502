"""End to end: `automator run --once` against a real registry, a real git remote and each forge.

The pull-request lifecycle a user lives through: a fresh config repo opens a PR; a rerun is a
no-op (zero forge writes, nothing pushed); a newer tag updates the same PR; after the PR is
merged the next run starts clean; a PR closed unmerged for version X is never reopened for X.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.fake_gitlab import GITLAB_TOKEN, gitlab_server
from tests.servers.git_http import git_http_server, read_file, write_commit
from tests.servers.registry import RunningRegistry

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def make_remote(tmp: Path, image: str, subdir: str = "") -> Path:
    """A bare config repo holding one policy and one Deployment with a setter marker."""
    top = tmp / "seed"
    work = top / subdir
    (work / "apps").mkdir(parents=True)
    (work / "apps" / "policy.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\n"
        f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )
    (work / "apps" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: apps\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
        f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app"}}\n'
    )
    (top / "README.md").write_text("config repo\n")
    return bare_remote(top, tmp)


def bare_remote(top: Path, tmp: Path) -> Path:
    """``top`` committed as one commit on main, cloned bare to ``tmp/remote.git`` (returned)."""
    git("init", "-q", "-b", "main", cwd=top)
    git("add", "-A", cwd=top)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init", cwd=top)
    remote = tmp / "remote.git"
    git("clone", "-q", "--bare", str(top), str(remote))
    return remote


def seeded_remote(
    registry: RunningRegistry, tmp: Path, repo_name: str, tags: Sequence[str], subdir: str = ""
) -> tuple[str, Path]:
    """Push ``tags`` of ``repo_name`` to the registry; return its image and a config repo pinned to it."""
    for tag in tags:
        registry.push(repo_name, tag)
    image = registry.image(repo_name)
    return image, make_remote(tmp, image, subdir)


def automator_run(
    remote: Path, cache: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``automator run --once`` against ``remote`` as a user runs it, isolated from ~/.gitconfig."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "automator",
            "run",
            "--once",
            "--git-url",
            str(remote),
            "--cache-dir",
            str(cache),
            *args,
        ],
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class ForgeUnderTest:
    args: list[str]
    env: dict[str, str]
    writes: Callable[[], int]
    prs: Callable[[], list[tuple[int, str, str]]]  # (number, state, title)
    merge: Callable[[int], object]
    close: Callable[[int], object]
    body: Callable[[int], str]
    web: str = ""
    fail_next: Callable[..., None] = lambda *a, **k: None  # (method, path regex, status, times=)
    proposals: str = ""  # the path of the create-pull-request call, for fail_next


@contextlib.contextmanager
def forge(kind: str, remote: Path) -> Iterator[ForgeUnderTest]:
    if kind == "github":
        with github_server() as gh:
            gh.tokens[GITHUB_TOKEN] = "automator-bot"
            repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
            yield ForgeUnderTest(
                ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"],
                {"FORGE_TOKEN": GITHUB_TOKEN},
                gh.writes,
                lambda: [(n, "merged" if p.merged else p.state, p.title) for n, p in sorted(repo.pulls.items())],
                lambda n: gh.merge("octo/app", n),
                lambda n: gh.close("octo/app", n),
                lambda n: repo.pulls[n].body or "",
                gh.base_url.removesuffix("/api/v3") + "/octo/app",
                gh.fail_next,
                r"/pulls$",
            )
    else:
        with gitlab_server() as gl:
            gl.tokens[GITLAB_TOKEN] = "automator-bot"
            project = gl.add_project("group/app", members=("automator-bot",), git_dir=remote)
            yield ForgeUnderTest(
                ["--forge", "gitlab", "--forge-url", gl.url, "--forge-repository", "group/app"],
                {"FORGE_TOKEN": GITLAB_TOKEN},
                gl.writes,
                lambda: [(i, m.state, m.title) for i, m in sorted(project.mrs.items())],
                lambda n: gl.merge("group/app", n),
                lambda n: gl.close("group/app", n),
                lambda n: project.mrs[n].description,
                gl.url + "/group/app/-",
                gl.fail_next,
                r"/merge_requests$",
            )


def run_once(
    remote: Path,
    cache: Path,
    f: ForgeUnderTest,
    *args: str,
    env: dict[str, str] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    """One cycle on forge ``f`` with JSON output; asserts the exit code and that the token never shows."""
    args = ("--forge-token-env", "FORGE_TOKEN", "--output", "json", *f.args, *args)
    proc = automator_run(remote, cache, *args, env={**f.env, **(env or {})})
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert f.env["FORGE_TOKEN"] not in proc.stdout + proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def outcomes(doc: dict[str, Any]) -> list[str]:
    return [g["outcome"] for g in doc["groups"]]


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_pull_request_lifecycle(kind: str, registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = f"run-{kind}/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.1.0"))
    cache = tmp_path / "cache"
    with forge(kind, remote) as f:
        # fresh config repo: one PR, our branch carries the change
        first = run_once(remote, cache, f)
        assert outcomes(first) == ["opened"]
        branch = first["groups"][0]["branch"]
        assert branch == "automator/apps-app"
        assert f"{image}:1.1.0" in git("show", f"{branch}:apps/deploy.yaml", cwd=remote)
        assert git("show", "main:apps/deploy.yaml", cwd=remote).count(":1.0.0") == 1  # base untouched
        [(number, state, title)] = f.prs()
        assert state in ("open", "opened")
        assert "1.1.0" in title

        # rerun: nothing new, so nothing is written anywhere
        tip = git("rev-parse", branch, cwd=remote)
        writes = f.writes()
        again = run_once(remote, cache, f)
        assert outcomes(again) == ["unchanged"]
        assert f.writes() == writes
        assert again["forgeCalls"]["writes"] == 0
        assert git("rev-parse", branch, cwd=remote) == tip

        # a newer tag: the same PR is updated, the branch moves
        registry.push(repo_name, "1.2.0")
        third = run_once(remote, cache, f)
        assert outcomes(third) == ["updated"]
        assert [(n, t) for n, _, t in f.prs()] == [(number, f.prs()[0][2])]
        assert "1.2.0" in f.prs()[0][2]
        assert f"{image}:1.2.0" in git("show", f"{branch}:apps/deploy.yaml", cwd=remote)

        # merged: the next run starts clean (nothing to propose, no new PR)
        f.merge(number)
        assert f"{image}:1.2.0" in git("show", "main:apps/deploy.yaml", cwd=remote)
        fourth = run_once(remote, cache, f)
        assert fourth["changes"] == 0
        assert all(o != "opened" for o in outcomes(fourth))
        assert len(f.prs()) == 1

        # a PR closed unmerged for 1.3.0 is never reopened for 1.3.0 ...
        registry.push(repo_name, "1.3.0")
        fifth = run_once(remote, cache, f)
        assert outcomes(fifth) == ["opened"]
        second_number = f.prs()[-1][0]
        assert second_number != number
        f.close(second_number)
        sixth = run_once(remote, cache, f)
        assert outcomes(sixth) == ["skipped"]
        assert len(f.prs()) == 2

        # ... but 1.4.0 gets a PR of its own
        registry.push(repo_name, "1.4.0")
        seventh = run_once(remote, cache, f)
        assert outcomes(seventh) == ["opened"]
        assert len(f.prs()) == 3
        assert "1.4.0" in f.prs()[-1][2]


def test_direct_mode_commits_to_base(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "run-direct/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.5.0"))
    args = ("--mode", "direct", "--output", "json")
    proc = automator_run(remote, tmp_path / "cache", *args)
    assert proc.returncode == 0, proc.stderr
    assert outcomes(json.loads(proc.stdout)) == ["committed"]
    assert f"{image}:1.5.0" in git("show", "main:apps/deploy.yaml", cwd=remote)
    log = git("log", "--format=%an <%ae>%n%s", "-1", "main", cwd=remote)
    assert log.startswith("automator <")
    assert "1.5.0" in log
    # rerun: nothing to commit, no new commit on main
    head = git("rev-parse", "main", cwd=remote)
    proc = automator_run(remote, tmp_path / "cache", *args)
    assert proc.returncode == 0, proc.stderr
    assert outcomes(json.loads(proc.stdout)) == ["unchanged"]
    assert git("rev-parse", "main", cwd=remote) == head


def test_config_in_the_repo_is_honoured_and_validated(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "run-config/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "2.0.0"))
    config = (
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  mode: direct\n  commit:\n"
        "    author: {name: release-bot, email: bot@example.com}\n"
        "    messageTemplate: 'chore(deps): {{ updates[0].image }} {{ updates[0].old }} -> {{ updates[0].tag }}'\n"
    )
    write_commit(remote, {"automator.yaml": config}, "configure")
    proc = automator_run(remote, tmp_path / "cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = git("log", "--format=%an|%s", "-1", "main", cwd=remote).strip()
    assert log == f"release-bot|chore(deps): {image} 1.0.0 -> 2.0.0"

    # a typo in the config is an error naming file, line and field; nothing is pushed
    typo = "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  mdoe: x\n"
    write_commit(remote, {"automator.yaml": typo}, "typo")
    head = git("rev-parse", "main", cwd=remote)
    registry.push(repo_name, "2.1.0")
    proc = automator_run(remote, tmp_path / "cache")
    assert proc.returncode == 2
    assert "automator.yaml:4:3" in proc.stderr
    assert "mdoe" in proc.stderr
    assert "did you mean 'mode'" in proc.stderr
    assert git("rev-parse", "main", cwd=remote) == head


def test_pull_request_body_links_files_and_policies(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "run-body/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.0.1"))
    with forge("github", remote) as f:
        run_once(remote, tmp_path / "cache", f)
        [(number, _, _)] = f.prs()
        body = f.body(number)
    assert f"`{image}`" in body
    assert "`1.0.0` → `1.0.1`" in body
    web = f.web
    assert f"({web}/blob/main/apps/deploy.yaml#L11)" in body  # the changed line
    assert f"({web}/blob/main/apps/policy.yaml#L4)" in body  # where the policy is named
    assert "<!-- automator:state" in body


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_pr_closed_when_its_change_reaches_base_another_way(
    kind: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    repo_name = f"run-settled-{kind}/app"
    _image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.1.0"))
    with forge(kind, remote) as f:
        first = run_once(remote, tmp_path / "cache", f)
        assert outcomes(first) == ["opened"]
        branch = first["groups"][0]["branch"]
        # a person bumps the image on main by hand
        deploy = read_file(remote, "main", "apps/deploy.yaml") or ""
        write_commit(remote, {"apps/deploy.yaml": deploy.replace(":1.0.0", ":1.1.0")}, "bump by hand")
        second = run_once(remote, tmp_path / "cache", f)
        assert outcomes(second) == ["closed"]
        [(_, state, _)] = f.prs()
        assert state == "closed"
        assert branch not in git("branch", "--list", "automator/*", cwd=remote)
        # a registry outage never closes a PR: the scan fails, the open PR stays open
        registry.push(repo_name, "1.2.0")
        third = run_once(remote, tmp_path / "cache", f)
        assert outcomes(third) == ["opened"]
        stored = registry.storage / "repositories" / repo_name
        stored.rename(stored.with_name("app-away"))
        try:
            outage = run_once(remote, tmp_path / "cache", f, code=1)
        finally:
            stored.with_name("app-away").rename(stored)
        assert outage["scan"][0]["error"]
        assert "closed" not in outcomes(outage)
        assert f.prs()[-1][1] in ("open", "opened")


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_branch_left_without_a_pull_request_is_deleted_once_it_has_no_purpose(
    kind: str, registry: RunningRegistry, tmp_path: Path
) -> None:
    """The adversarial run: a branch pushed just before a crash (its pull request never opened)
    stayed forever once its change was no longer needed."""
    _image, remote = seeded_remote(registry, tmp_path, f"run-orphan-{kind}/app", ("1.0.0", "1.1.0"))
    with forge(kind, remote) as f:
        f.fail_next("POST", f.proposals, 422, times=5)  # pushed, then the proposal fails: as a crash would
        first = run_once(remote, tmp_path / "cache", f, code=1)
        branch = first["groups"][0]["branch"]
        assert branch in git("branch", "--list", "automator/*", cwd=remote)
        assert f.prs() == []
        # the change reaches main another way: the branch has no purpose left
        deploy = read_file(remote, "main", "apps/deploy.yaml") or ""
        write_commit(remote, {"apps/deploy.yaml": deploy.replace(":1.0.0", ":1.1.0")}, "bump by hand")
        second = run_once(remote, tmp_path / "cache", f)
        assert outcomes(second) == ["deleted"]
        assert second["groups"][0]["branch"] == branch
        assert branch not in git("branch", "--list", "automator/*", cwd=remote)
        # a branch with someone else's commit on it is theirs: never deleted
        write_commit(remote, {"NOTES.md": "mine\n"}, "wip", branch="automator/alice", author="alice <a@example.com>")
        assert outcomes(run_once(remote, tmp_path / "cache", f)) == []
        assert "automator/alice" in git("branch", "--list", "automator/*", cwd=remote)


def test_subpath_limits_policies_and_rewrites(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "run-subpath/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.0.2"), subdir="clusters/prod")
    with forge("github", remote) as f:
        doc = run_once(remote, tmp_path / "cache", f, "--path", "clusters/prod")
        assert outcomes(doc) == ["opened"]
        branch = doc["groups"][0]["branch"]
        assert f"{image}:1.0.2" in git("show", f"{branch}:clusters/prod/apps/deploy.yaml", cwd=remote)
        body = f.body(f.prs()[0][0])
        assert f"{f.web}/blob/main/clusters/prod/apps/deploy.yaml#L11" in body


def test_commits_by_others_on_our_branch_are_never_overwritten(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "run-edited/app"
    _image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.1.0"))
    with forge("github", remote) as f:
        first = run_once(remote, tmp_path / "cache", f)
        branch = first["groups"][0]["branch"]
        write_commit(remote, {"NOTES.md": "reviewed\n"}, "fix-up", branch=branch, author="alice <alice@example.com>")
        tip = git("rev-parse", branch, cwd=remote)
        registry.push(repo_name, "1.2.0")
        second = run_once(remote, tmp_path / "cache", f)
        assert outcomes(second) == ["skipped"]
        assert "alice@example.com" in second["groups"][0]["reason"]
        assert git("rev-parse", branch, cwd=remote) == tip


def test_the_git_token_serves_the_forge_api_only_on_the_same_host(registry: RunningRegistry, tmp_path: Path) -> None:
    _, remote = seeded_remote(registry, tmp_path, "run-one-token/app", ("1.0.0", "1.1.0"))
    with git_http_server(tmp_path, token=GITHUB_TOKEN) as served, forge("github", remote) as f:
        url = served.url(remote.name)  # http://127.0.0.1:PORT/remote.git, like the fake GitHub's host
        args = ("--git-token-env", "FORGE_TOKEN", "--output", "json", *f.args)
        proc = automator_run(remote, tmp_path / "cache", *args, "--git-url", url, env=f.env)
        assert proc.returncode == 0, proc.stderr
        assert outcomes(json.loads(proc.stdout)) == ["opened"]
        assert GITHUB_TOKEN not in proc.stdout + proc.stderr

        # the forge on another host never receives the git token
        elsewhere = [a.replace("127.0.0.1", "localhost") for a in f.args]
        proc = automator_run(
            remote, tmp_path / "cache2", *args[: -len(f.args)], *elsewhere, "--git-url", url, env=f.env
        )
        assert proc.returncode == 2, proc.stderr
        assert "the github forge needs spec.forge.auth.tokenEnv or tokenFile or app" in proc.stderr
        assert "(localhost)" in proc.stderr
        assert GITHUB_TOKEN not in proc.stdout + proc.stderr
