"""The git runner keeps credentials out of argv, config files and every message."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from automator.errors import ConfigError, CredentialError, GitError
from automator.git import Credentials, Git, fetch_branch

TOKEN = "glpat-abcdefghijklmnop"


def test_a_token_travels_as_an_extra_header_in_the_environment() -> None:
    env = Credentials(token=TOKEN, username="oauth2").env()
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Basic " + base64.b64encode(f"oauth2:{TOKEN}".encode()).decode()
    assert TOKEN not in repr(Credentials(token=TOKEN))


def test_an_ssh_key_is_passed_through_git_ssh_command(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    env = Credentials(ssh_key=key, known_hosts=tmp_path / "known").env()
    assert env["GIT_SSH_COMMAND"].startswith(f"ssh -i {key} -o IdentitiesOnly=yes")
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]
    assert "accept-new" in Credentials(ssh_key=key).env()["GIT_SSH_COMMAND"]
    with pytest.raises(CredentialError, match="not readable"):
        Credentials(ssh_key=tmp_path / "missing").env()


def test_failures_are_redacted(tmp_path: Path) -> None:
    git = Git(Credentials(token=TOKEN))
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert git.redact(f"token {TOKEN} header {basic}") == "token *** header ***"
    with pytest.raises(GitError) as info:
        git.run(["ls-remote", f"https://user:{TOKEN}@127.0.0.1:1/{TOKEN}.git"], cwd=tmp_path)
    assert TOKEN not in str(info.value)
    assert "exit" in str(info.value)


@pytest.mark.parametrize(("url", "branch"), [("--upload-pack=touch /tmp/x", "main"), ("/repo", "--help"), ("/r", "")])
def test_option_like_urls_and_branches_are_refused(tmp_path: Path, url: str, branch: str) -> None:
    with pytest.raises(ConfigError, match="would be read as an option"):
        fetch_branch(Git(), url, branch, tmp_path)
    assert list(tmp_path.iterdir()) == []
