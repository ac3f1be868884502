"""Fetching the config repo with real git: shallow cache, credentials kept out of sight, signatures."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automator.errors import GitAuthError, GitError, VerificationError
from automator.git import Credentials, Git, fetch_branch, verify_commit
from tests.servers.kube import CM, ConfigRepo, Sync, configmap


def test_shallow_fetch_into_the_cache_records_the_revision(config_repo: ConfigRepo, tmp_path: Path) -> None:
    config_repo.write("a.yaml", "a: 1\n")
    config_repo.commit("one")
    config_repo.write("a.yaml", "a: 2\n")
    rev = config_repo.commit("two")
    git = Git()

    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    assert checkout.revision == rev
    assert (checkout.path / "a.yaml").read_text() == "a: 2\n"
    assert git.run(["rev-parse", "--is-shallow-repository"], cwd=checkout.path).stdout.strip() == "true"
    assert git.run(["rev-list", "--count", "HEAD"], cwd=checkout.path).stdout.strip() == "1"

    (checkout.path / "stray.yaml").write_text("left: behind\n")
    config_repo.write("b.yaml", "b: 1\n")
    rev2 = config_repo.commit("three")
    again = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    assert again.path == checkout.path
    assert again.revision == rev2
    assert (again.path / "b.yaml").is_file()
    assert not (again.path / "stray.yaml").exists()


def test_missing_branch_says_which_flag_to_check(config_repo: ConfigRepo, tmp_path: Path) -> None:
    config_repo.commit("one")
    with pytest.raises(GitError, match=r"branch 'nope'.*check --branch"):
        fetch_branch(Git(), config_repo.url, "nope", tmp_path / "cache")


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []  # noqa: RUF012 - shared with the test thread on purpose

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(403)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_remote() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/org/repo.git"
    server.shutdown()
    server.server_close()
    thread.join()


def test_https_token_is_sent_as_a_header_and_never_printed(http_remote: str, tmp_path: Path) -> None:
    token = "ghp_s3cr3tT0kenValue"
    git = Git(Credentials(token=token))
    url_with_userinfo = http_remote.replace("http://", f"http://user:{token}@")
    with pytest.raises(GitAuthError) as info:
        fetch_branch(git, url_with_userinfo, "main", tmp_path / "cache")
    message = str(info.value)
    assert token not in message
    assert "***" in message
    assert any(auth.startswith("Basic ") for _, auth in _Recorder.seen), _Recorder.seen
    config = (next((tmp_path / "cache").iterdir()) / ".git" / "config").read_text()
    assert token not in config


@pytest.fixture
def ssh_keys(tmp_path: Path) -> dict[str, Path]:
    keys = {}
    for who in ("trusted", "stranger"):
        key = tmp_path / f"{who}_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who, "-f", str(key)], check=True)
        keys[who] = key
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"test@example.com {keys['trusted'].with_suffix('.pub').read_text()}")
    keys["allowed_signers"] = signers
    return keys


def test_verify_commit_with_ssh_allowed_signers(
    config_repo: ConfigRepo, ssh_keys: dict[str, Path], tmp_path: Path
) -> None:
    git = Git()
    signers = ssh_keys["allowed_signers"]
    rev = config_repo.commit("signed", sign_with=ssh_keys["trusted"])
    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    assert checkout.revision == rev
    assert "Good" in verify_commit(git, checkout.path, rev, allowed_signers=signers)

    rev = config_repo.commit("strange", sign_with=ssh_keys["stranger"])
    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    with pytest.raises(VerificationError, match=rf"commit {rev} failed signature verification.*not applied"):
        verify_commit(git, checkout.path, rev, allowed_signers=signers)

    rev = config_repo.commit("unsigned")
    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    with pytest.raises(VerificationError, match="not signed"):
        verify_commit(git, checkout.path, rev, allowed_signers=signers)


def test_sync_refuses_unverified_commits(sync: Sync, ssh_keys: dict[str, Path]) -> None:
    flags = ("--verify-signatures", "--allowed-signers", str(ssh_keys["allowed_signers"]))
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit("unsigned")
    code, out = sync.run(*flags)
    assert code == 1
    assert out["objects"] == []
    assert "not signed" in out["errors"][0]
    assert sync.get(CM, "settings") is None

    sync.repo.commit("wrong key", sign_with=ssh_keys["stranger"])
    code, out = sync.run(*flags)
    assert code == 1
    assert "failed signature verification" in out["errors"][0]
    assert sync.get(CM, "settings") is None

    rev = sync.repo.commit("signed", sign_with=ssh_keys["trusted"])
    code, out = sync.run(*flags)
    assert code == 0, out
    assert out["revision"] == rev
    assert sync.actions(out) == {"ConfigMap/settings": "created"}


def _gpg_key(home: Path, email: str) -> tuple[str, Path]:
    """A passphrase-less ed25519 key in its own GNUPGHOME; returns (fingerprint, exported public key)."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", email, "ed25519", "sign", "never"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys", email],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    public = home / "public.asc"
    public.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", fingerprint], env=env, check=True, capture_output=True
        ).stdout
    )
    return fingerprint, public


@pytest.fixture
def gpg_homes(tmp_path: Path) -> Iterator[Path]:
    """Where the test's GNUPGHOMEs live; their gpg-agents are stopped afterwards."""
    root = tmp_path / "gnupg"
    root.mkdir()
    yield root
    for home in root.iterdir():
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def test_verify_commit_with_gpg_public_keys(config_repo: ConfigRepo, gpg_homes: Path, tmp_path: Path) -> None:
    trusted, trusted_pub = _gpg_key(gpg_homes / "trusted", "release@example.com")
    stranger, _ = _gpg_key(gpg_homes / "stranger", "mallory@example.com")
    git = Git()

    rev = config_repo.commit("signed", gpg_key=(trusted, gpg_homes / "trusted"))
    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    assert "Good signature" in verify_commit(git, checkout.path, rev, gpg_keys=[trusted_pub])

    rev = config_repo.commit("strange", gpg_key=(stranger, gpg_homes / "stranger"))
    checkout = fetch_branch(git, config_repo.url, "main", tmp_path / "cache")
    with pytest.raises(VerificationError, match="failed signature verification"):
        verify_commit(git, checkout.path, rev, gpg_keys=[trusted_pub])


def test_a_refused_commit_is_not_checked_again_until_a_new_one_arrives(
    sync: Sync, ssh_keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service re-verified the same refused commit every interval (and retried it on the
    fast backoff): the refusal is permanent for that commit, so it is remembered instead."""
    import argparse

    from automator.sync import command
    from automator.sync import runner as sync_runner

    checks: list[str] = []
    real = verify_commit

    def counting(git: Any, path: Path, revision: str, **kwargs: Any) -> None:
        checks.append(revision)
        real(git, path, revision, **kwargs)

    monkeypatch.setattr(sync_runner, "verify_commit", counting)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(sync.argv("--verify-signatures", "--allowed-signers", str(ssh_keys["allowed_signers"])))
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    unsigned = sync.repo.commit("unsigned")
    runner = sync_runner.Runner(command.config_from(args).runner)
    try:
        first, second = runner.once(), runner.once()
        assert not first.ok and second.errors == first.errors
        assert isinstance(second.error, VerificationError) and not second.error.retryable
        assert checks == [unsigned]  # checked once
        signed = sync.repo.commit("signed", sign_with=ssh_keys["trusted"])
        assert runner.once().ok
        assert checks == [unsigned, signed]
    finally:
        runner.close()
    assert sync.get(CM, "settings") is not None
