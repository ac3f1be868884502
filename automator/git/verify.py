"""Commit signature verification with ``git verify-commit``: GPG public keys or SSH allowed signers."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from automator.errors import ConfigError, VerificationError
from automator.git.runner import Git


def verify_commit(
    git: Git,
    repo: Path,
    revision: str,
    *,
    gpg_keys: Sequence[Path] = (),
    allowed_signers: Path | None = None,
) -> str:
    """Return git's description of the good signature on ``revision``, or raise VerificationError.

    Only the given keys are trusted: GPG keys are imported into a throw-away keyring, SSH
    signatures are checked against the allowed-signers file.
    """
    if not gpg_keys and allowed_signers is None:
        raise ConfigError("--verify-signatures needs --gpg-key FILE or --allowed-signers FILE")
    args: list[str] = []
    if allowed_signers is not None:
        if not allowed_signers.is_file():
            raise ConfigError(f"allowed signers file {allowed_signers} does not exist")
        args += ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers}"]
    with tempfile.TemporaryDirectory(prefix="automator-gnupg-") as home:
        env = {"GNUPGHOME": home}
        try:
            for key in gpg_keys:
                _gpg_import(git, key, env)
            proc = git.run([*args, "verify-commit", "-v", revision], cwd=repo, env=env, check=False)
        finally:
            if gpg_keys:  # a long-running agent must not collect one gpg-agent per verification
                subprocess.run(["gpgconf", "--kill", "all"], env=git.environment(env), capture_output=True, check=False)
    detail = git.redact(proc.stderr.strip())
    if proc.returncode != 0:
        reason = detail.splitlines()[-1] if detail else "the commit has no signature"
        if "no signature" in detail.lower() or not detail:
            reason = "the commit is not signed"
        raise VerificationError(
            f"commit {revision} failed signature verification ({reason}); it was not applied —"
            " sign it with a trusted key or fix --gpg-key/--allowed-signers"
        )
    return detail


def _gpg_import(git: Git, key: Path, env: dict[str, str]) -> None:
    if not key.is_file():
        raise ConfigError(f"GPG key file {key} does not exist")
    proc = subprocess.run(
        ["gpg", "--batch", "--quiet", "--import", str(key)],
        env=git.environment(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigError(f"cannot import GPG key {key}: {proc.stderr.strip()}")
