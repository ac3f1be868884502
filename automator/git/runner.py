"""One ``Git`` runner for every git command automator runs.

Credentials never reach argv, a URL that is printed, a log line or an exception: an HTTPS token
travels as an ``http.extraHeader`` set through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``
environment variables (the environment form of ``git -c``, invisible in ``ps``), an SSH key via
``GIT_SSH_COMMAND``; every message is passed through :func:`automator.redact.redact` with the
token (and its encoded header) as known secrets.
"""

from __future__ import annotations

import base64
import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automator.errors import CredentialError, GitError
from automator.redact import redact, redact_url

log = logging.getLogger("automator.git")

# Set by git for hooks and by users' shells; inherited, they would point every command of ours
# at another repository, index or object store.
_REPO_LOCAL_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to the remote: an HTTPS token, or an SSH private key."""

    token: str = field(default="", repr=False)
    username: str = "x-access-token"
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    def secrets(self) -> list[str]:
        if not self.token:
            return []
        return [self.token, self._basic()]

    def _basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self.token}".encode()).decode()

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        config: list[tuple[str, str]] = []
        if self.token:
            config.append(("http.extraHeader", f"Authorization: Basic {self._basic()}"))
        if self.ssh_key is not None:
            if not os.access(self.ssh_key, os.R_OK):
                raise CredentialError(f"SSH key {self.ssh_key} is not readable; check --ssh-key")
            ssh = ["ssh", "-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
            if self.known_hosts is not None:
                ssh += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
            else:
                ssh += ["-o", "StrictHostKeyChecking=accept-new"]
            env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        if config:
            env["GIT_CONFIG_COUNT"] = str(len(config))
            for i, (key, value) in enumerate(config):
                env[f"GIT_CONFIG_KEY_{i}"] = key
                env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env


class Git:
    """Run git with credentials in the environment and every output redacted."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        binary: str = "git",
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.binary = binary
        self.timeout = timeout
        inherited = {k: v for k, v in os.environ.items() if k not in _REPO_LOCAL_ENV}
        self._env = {**inherited, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra_env or {})}
        self._env.update(self.credentials.env())
        self._secrets = self.credentials.secrets()

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment git runs with (credentials included): for companion tools such as gpg."""
        return {**self._env, **(extra or {})}

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``git args``; raise :class:`GitError` with redacted stderr when it fails and ``check``."""
        shown = self.redact(" ".join(redact_url(a) for a in args))
        log.debug("git %s", shown)
        try:
            proc = subprocess.run(
                [self.binary, *args],
                cwd=cwd,
                env=self.environment(env),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {shown}: {self.redact(str(exc))}") from None
        if check and proc.returncode != 0:
            stderr = self.redact(proc.stderr.strip() or proc.stdout.strip())
            raise GitError(f"git {shown} failed (exit {proc.returncode}): {stderr}")
        return proc
