"""End to end: a cycle that opens several pull requests pushes all their branches at once.

`automator run --once` on a config repo with one policy per app, one PR each, on the fake
GitHub: one ``git push`` for the whole cycle (counted by the remote's post-receive hook), none
on a rerun, one again when every PR is updated; signed commits (SSH) go the same way. A branch
someone moves during the cycle fails its group alone; a repo with a ``.gitattributes`` is
committed the per-group way, through worktrees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from automator.config import DEFAULT, with_overrides
from automator.forge import NoneForge
from automator.run import RunOptions
from automator.run import run_once as run_once_in_process
from tests.e2e.test_run_forges import GIT_ENV, forge, git, outcomes, run_once
from tests.servers.git_http import count_pushes, write_commit
from tests.servers.registry import RunningRegistry

APPS = 4


def seeded(registry: RunningRegistry, tmp: Path, name: str) -> tuple[list[str], Path]:
    """A bare config repo with ``APPS`` policies, each pinned at 1.0.0 with 1.1.0 available."""
    files: dict[str, str | None] = {"README.md": "config repo\n"}
    images = []
    for i in range(APPS):
        repo_name = f"{name}/app-{i}"
        for tag in ("1.0.0", "1.1.0"):
            registry.push(repo_name, tag)
        image = registry.image(repo_name)
        images.append(image)
        files[f"apps/app-{i}/policy.yaml"] = (
            f"apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app-{i}\n  namespace: apps\n"
            f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        )
        files[f"apps/app-{i}/deploy.yaml"] = (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: apps\n"
            "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app-{i}"}}\n'
        )
    remote = tmp / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    write_commit(remote, files, "init")
    return images, remote


def test_one_push_opens_every_pull_request_and_updates_them(registry: RunningRegistry, tmp_path: Path) -> None:
    images, remote = seeded(registry, tmp_path, "batch")
    pushes = count_pushes(remote)
    cache = tmp_path / "cache"
    with forge("github", remote) as f:
        first = run_once(remote, cache, f)
        assert outcomes(first) == ["opened"] * APPS
        assert pushes() == 1
        assert len(f.prs()) == APPS
        for i, image in enumerate(images):
            deploy = git("show", f"automator/apps-app-{i}:apps/app-{i}/deploy.yaml", cwd=remote)
            assert f"{image}:1.1.0 #" in deploy
            assert (
                git("log", "-1", "--format=%P", f"automator/apps-app-{i}", cwd=remote).strip()
                == git("rev-parse", "main", cwd=remote).strip()
            )

        again = run_once(remote, cache, f)
        assert outcomes(again) == ["unchanged"] * APPS
        assert again["forgeCalls"]["writes"] == 0
        assert pushes() == 1

        for i in range(APPS):
            registry.push(f"batch/app-{i}", "1.2.0")
        third = run_once(remote, cache, f)
        assert outcomes(third) == ["updated"] * APPS
        assert pushes() == 2


def test_a_fix_up_on_one_branch_is_kept_while_the_others_update(registry: RunningRegistry, tmp_path: Path) -> None:
    _images, remote = seeded(registry, tmp_path, "fixup")
    cache = tmp_path / "cache"
    with forge("github", remote) as f:
        assert outcomes(run_once(remote, cache, f)) == ["opened"] * APPS
        theirs = write_commit(
            remote, {"NOTE.md": "a fix-up\n"}, "fix-up", branch="automator/apps-app-1", author="Dev <dev@example.com>"
        )
        for i in range(APPS):
            registry.push(f"fixup/app-{i}", "1.2.0")
        doc = run_once(remote, cache, f)
        by_group = {g["branch"]: g["outcome"] for g in doc["groups"]}
        assert by_group.pop("automator/apps-app-1") == "skipped"
        assert set(by_group.values()) == {"updated"}
        assert git("rev-parse", "automator/apps-app-1", cwd=remote).strip() == theirs


def test_signed_commits_in_one_push(registry: RunningRegistry, tmp_path: Path) -> None:
    _images, remote = seeded(registry, tmp_path, "signed")
    pushes = count_pushes(remote)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", str(key)], check=True)
    config = tmp_path / "automator.yaml"
    config.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  commit:\n"
        "    author: {name: release-bot, email: bot@example.com}\n"
        f"    signing: {{format: ssh, key: {key}}}\n"
    )
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"bot@example.com {key.with_suffix('.pub').read_text()}")
    with forge("github", remote) as f:
        doc = run_once(remote, tmp_path / "cache", f, "--config", str(config))
        assert outcomes(doc) == ["opened"] * APPS
    assert pushes() == 1
    for group in doc["groups"]:
        proc = subprocess.run(
            ["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", group["branch"]],
            cwd=remote,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert 'Good "git" signature for bot@example.com' in proc.stderr


def test_a_branch_moved_during_the_cycle_fails_its_group_only(
    registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    _images, remote = seeded(registry, tmp_path, "race")
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote)})
    first = run_once_in_process(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache"))
    assert [g.outcome for g in first.groups] == ["opened"] * APPS
    for i in range(APPS):
        registry.push(f"race/app-{i}", "1.2.0")
    theirs: list[str] = []

    def race(_: object) -> None:  # while we scan, after our fetch: a person pushes to one of our branches
        if not theirs:
            theirs.append(write_commit(remote, {"NOTE.md": "mine\n"}, "fix-up", branch="automator/apps-app-2"))

    pushes = count_pushes(remote)
    second = run_once_in_process(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache", progress=race))
    by_branch = {g.branch: g for g in second.groups}
    failed = by_branch.pop("automator/apps-app-2")
    assert failed.outcome == "failed"
    assert "moved since we fetched it" in failed.reason
    assert {g.outcome for g in by_branch.values()} == {"opened"}
    assert pushes() == 1
    assert git("rev-parse", "automator/apps-app-2", cwd=remote).strip() == theirs[0]
    assert "1.2.0" in git("show", "automator/apps-app-0:apps/app-0/deploy.yaml", cwd=remote)


def test_a_repo_with_gitattributes_is_committed_group_by_group(registry: RunningRegistry, tmp_path: Path) -> None:
    images, remote = seeded(registry, tmp_path, "attrs")
    write_commit(remote, {".gitattributes": "*.yaml text eol=lf\n"}, "attributes")
    pushes = count_pushes(remote)
    with forge("github", remote) as f:
        doc = run_once(remote, tmp_path / "cache", f)
        assert outcomes(doc) == ["opened"] * APPS
    assert pushes() == APPS  # the worktree path: checkouts honour the attributes, one push per group
    for i, image in enumerate(images):
        assert f"{image}:1.1.0 #" in git("show", f"automator/apps-app-{i}:apps/app-{i}/deploy.yaml", cwd=remote)
