"""Reading ``git push --porcelain`` and git's stderr: moved, refused credentials, or something else."""

from __future__ import annotations

import pytest

from automator.errors import ConfigError, CredentialError, GitAuthError, GitError, PushRejected
from automator.git.push import is_auth_failure, parse_porcelain, push_outcome
from automator.git.signing import Identity, Signing, commit_config
from automator.git.workspace import _branch_name

REF = "refs/heads/automator/web"
WHERE = "https://git.example.com/org/config.git"


def porcelain(*lines: str) -> str:
    return "\n".join([f"To {WHERE}", *lines, "Done", ""])


def test_parse_every_flag() -> None:
    out = porcelain(
        "*\tabc:refs/heads/automator/new\t[new branch]",
        " \tabc:refs/heads/main\t1111111..2222222",
        "+\tabc:refs/heads/automator/web\t1111111...2222222 (forced update)",
        "-\t:refs/heads/automator/old\t[deleted]",
        "=\tHEAD:refs/heads/automator/same\t[up to date]",
        "!\tabc:refs/heads/automator/x\t[rejected] (stale info)",
    )
    updates = parse_porcelain(out)
    assert [(u.ref, u.status) for u in updates] == [
        ("refs/heads/automator/new", "new"),
        ("refs/heads/main", "fast-forward"),
        ("refs/heads/automator/web", "forced"),
        ("refs/heads/automator/old", "deleted"),
        ("refs/heads/automator/same", "up-to-date"),
        ("refs/heads/automator/x", "rejected"),
    ]
    assert updates[3].source == ""
    assert updates[2].reason == "forced update"
    assert updates[5].moved


def test_noise_lines_are_ignored() -> None:
    out = "remote: Resolving deltas\nTo x\n!\tno-colon-here\t[rejected]\n\tshort\nDone\n"
    assert parse_porcelain(out) == []


@pytest.mark.parametrize("reason", ["non-fast-forward", "fetch first", "stale info", "already exists"])
def test_a_moved_ref_is_a_retryable_rejection(reason: str) -> None:
    out = porcelain(f"!\tabc:{REF}\t[rejected] ({reason})")
    with pytest.raises(PushRejected, match=rf"rejected \({reason}\).*fetch and retry") as info:
        push_outcome(REF, 1, out, "error: failed to push some refs", WHERE)
    assert info.value.retryable


@pytest.mark.parametrize(
    "reason",
    [
        "cannot lock ref 'refs/heads/main': is at 1111111 but expected 2222222",
        "failed to update ref",
        "failed to lock",
        "incorrect old value provided",
    ],
)
def test_losing_the_race_to_a_concurrent_push_is_a_retryable_rejection_not_branch_protection(reason: str) -> None:
    out = porcelain(f"!\tabc:{REF}\t[remote rejected] ({reason})")
    with pytest.raises(PushRejected, match="the remote branch moved since we fetched it") as info:
        push_outcome(REF, 1, out, "error: failed to push some refs", WHERE)
    assert info.value.retryable
    assert "branch protection" not in str(info.value)


@pytest.mark.parametrize(
    "summary",
    ["[remote rejected] (protected branch hook declined)", "[remote rejected] (pre-receive hook declined)"],
)
def test_a_refusal_by_the_server_is_permanent_and_names_the_rule(summary: str) -> None:
    out = porcelain(f"!\tabc:{REF}\t{summary}")
    with pytest.raises(GitError, match="branch protection") as info:
        push_outcome(REF, 1, out, "", WHERE)
    assert not isinstance(info.value, PushRejected)
    assert not info.value.retryable


@pytest.mark.parametrize(
    "stderr",
    [
        "fatal: Authentication failed for 'https://git.example.com/org/config.git/'",
        "fatal: could not read Username for 'https://git.example.com': terminal prompts disabled",
        "fatal: unable to access 'https://git.example.com/org/config.git/': The requested URL returned error: 403",
        "remote: Permission to org/config.git denied to bot.\nfatal: unable to access ...: returned error: 403",
        "remote: Write access to repository not granted.",
        "remote: You are not allowed to push code to this project.",
        "remote: HTTP Basic: Access denied\nfatal: Authentication failed",
        "git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.",
        "Host key verification failed.\nfatal: Could not read from remote repository.",
        "remote: Invalid username or password.",
    ],
)
def test_refused_credentials_are_an_auth_error_that_says_what_to_do(stderr: str) -> None:
    assert is_auth_failure(stderr)
    with pytest.raises(GitAuthError, match=r"refused our credentials.*check that the token") as info:
        push_outcome(REF, 128, "", stderr, WHERE)
    assert WHERE in str(info.value)


@pytest.mark.parametrize(
    "stderr",
    [
        "fatal: unable to access 'https://git.example.com/': Could not resolve host: git.example.com",
        "fatal: the remote end hung up unexpectedly",
        "error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500",
    ],
)
def test_other_failures_are_plain_git_errors(stderr: str) -> None:
    assert not is_auth_failure(stderr)
    with pytest.raises(GitError, match="check the git URL") as info:
        push_outcome(REF, 128, "", stderr, WHERE)
    assert type(info.value) is GitError


def test_a_successful_push_returns_its_line() -> None:
    update = push_outcome(REF, 0, porcelain(f"*\tabc:{REF}\t[new branch]"), "", WHERE)
    assert (update.ref, update.status) == (REF, "new")


def test_another_refs_rejection_does_not_count_as_ours() -> None:
    out = porcelain("!\tabc:refs/heads/other\t[rejected] (non-fast-forward)")
    with pytest.raises(GitError) as info:
        push_outcome(REF, 1, out, "error: failed to push some refs", WHERE)
    assert not isinstance(info.value, PushRejected)


@pytest.mark.parametrize(
    ("given", "name"), [("main", "main"), ("refs/heads/automator/web", "automator/web"), ("a/b-c_1.2", "a/b-c_1.2")]
)
def test_branch_names_are_normalised(given: str, name: str) -> None:
    assert _branch_name(given) == name


@pytest.mark.parametrize("bad", ["", "-x", "a..b", "a b", "a:b", "a~1", "a^", "/a", "a*", "refs/heads/"])
def test_bad_branch_names_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a valid branch name"):
        _branch_name(bad)


def test_signing_becomes_per_command_config() -> None:
    assert commit_config(None) == (["-c", "commit.gpgsign=false"], ["--no-gpg-sign"], {})
    gpg = Signing.gpg("ABCDEF", program="/usr/bin/gpg2", gnupg_home=None)
    before, flags, env = commit_config(gpg)
    assert before == ["-c", "gpg.format=openpgp", "-c", "user.signingkey=ABCDEF", "-c", "gpg.program=/usr/bin/gpg2"]
    assert (flags, env) == (["-S"], {})
    agent = Signing.ssh("key::ssh-ed25519 AAAAC3Nza bot", program="/opt/ssh-keygen")
    assert agent.config()[-1] == "gpg.ssh.program=/opt/ssh-keygen"
    with pytest.raises(CredentialError):
        Signing.ssh("/nonexistent/key")
    with pytest.raises(ConfigError, match="signing key is empty"):
        Signing.gpg(" ")


def test_identity_renders_and_exports() -> None:
    bot = Identity("Image Bot", "bot@example.com")
    assert str(bot) == "Image Bot <bot@example.com>"
    assert bot.env("COMMITTER") == {"GIT_COMMITTER_NAME": "Image Bot", "GIT_COMMITTER_EMAIL": "bot@example.com"}
    with pytest.raises(ConfigError, match="'<', '>'"):
        Identity("Bot", "<bot@example.com>")
