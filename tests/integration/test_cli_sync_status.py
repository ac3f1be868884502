"""`automator sync --commit-status github` builds its forge from the sync flags (wired in the CLI)."""

from __future__ import annotations

from pathlib import Path

from automator.cli import _status_forge, build_parser
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState


def test_sync_commit_status_reaches_github(fake_github: GitHubState, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(GITHUB_TOKEN + "\n")
    args = build_parser("sync").parse_args(
        [
            "sync",
            "--git-url",
            "file:///nowhere",
            "--branch",
            "main",
            "--path",
            ".",
            "--commit-status",
            "github",
            "--forge-repository",
            "octo/app",
            "--forge-url",
            fake_github.base_url,
            "--forge-token-file",
            str(token),
        ]
    )
    forge = _status_forge(args)
    sha = fake_github.push("octo/app", "main")
    forge.set_commit_status(sha, "success", "automator/sync/default", "applied")
    [status] = fake_github.repos["octo/app"].statuses
    assert status["state"] == "success"
    assert status["context"] == "automator/sync/default"
