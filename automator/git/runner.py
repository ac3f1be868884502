"""One ``Git`` runner for every git command automator runs.

Credentials never reach argv, a URL that is printed, a log line or an exception: an HTTPS token
travels as an ``http.extraHeader`` set through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``
environment variables (the environment form of ``git -c``, invisible in ``ps``), an SSH key via
``GIT_SSH_COMMAND``; every message is passed through :func:`automator.redact.redact` with the
token (and its encoded header) as known secrets.

Every git command starts in a session (and process group) of its own, through
:func:`run_process_group`: git's helpers (``git-remote-http``, ``ssh``, credential helpers,
``upload-pack`` wrappers) are its children, and ``subprocess.run``'s timeout would kill git
alone and leave them running. On a timeout, or any exception while waiting (an interrupt), the
whole group gets SIGTERM (git removes its lock files), a short grace, then SIGKILL; the pipes are
drained and git is reaped. Hand-written because the standard library kills only the direct child.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automator.errors import CredentialError, GitError
from automator.redact import redact, redact_url

log = logging.getLogger("automator.git")

# How long git and its helpers get to exit on SIGTERM before the group is killed outright.
KILL_GRACE = 2.0

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


def run_process_group(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    kill_grace: float = KILL_GRACE,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new session, capturing its output as text, and wait up to ``timeout``.

    On :class:`subprocess.TimeoutExpired`, or any exception while waiting (``KeyboardInterrupt``
    included), the whole process group is killed, the pipes drained and the child reaped before
    the exception propagates, so no descendant that stayed in the group outlives the call.
    """
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return _wait(proc, None, timeout, kill_grace)


def run_process_group_bytes(
    argv: Sequence[str],
    *,
    input: bytes,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    kill_grace: float = KILL_GRACE,
) -> subprocess.CompletedProcess[bytes]:
    """:func:`run_process_group` for batch commands (``cat-file --batch``, ``fast-import``): ``input``
    goes to stdin and the output stays bytes, so file contents cross untouched (no decoding, no
    newline translation: a CRLF file stays CRLF)."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return _wait(proc, input, timeout, kill_grace)


def _wait(
    proc: subprocess.Popen[Any], input: Any, timeout: float | None, grace: float
) -> subprocess.CompletedProcess[Any]:
    """Feed ``input``, wait up to ``timeout``; on any exception kill the group before it propagates."""
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except BaseException:
        _kill_group(proc, grace)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the group ``proc`` leads, wait up to ``grace`` for it, SIGKILL the group, reap ``proc``."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not _exited(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Not reaped yet (at worst a zombie), the leader keeps its pid, so pgid still names our group.
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.communicate(timeout=max(grace, 1.0))  # drain the pipes to EOF and reap
    except subprocess.TimeoutExpired:  # a descendant that left the group holds a pipe open
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signum)


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (``WNOWAIT``)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


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
        self.processes = 0  # git commands started through this runner, for benchmarks and tests

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
        """Run ``git args``; raise :class:`GitError` with redacted stderr when it fails and ``check``.

        git runs in its own process group; after ``timeout`` seconds the group is killed and a
        :class:`GitError` names the command and the timeout.
        """
        shown = self.redact(" ".join(redact_url(a) for a in args))
        log.debug("git %s", shown)
        self.processes += 1
        try:
            proc = run_process_group([self.binary, *args], cwd=cwd, env=self.environment(env), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {shown} timed out after {self.timeout:g}s and was killed with its helpers;"
                " check that the remote is reachable and answering"
            ) from None
        except OSError as exc:
            raise GitError(f"git {shown}: {self.redact(str(exc))}") from None
        if check and proc.returncode != 0:
            stderr = self.redact(proc.stderr.strip() or proc.stdout.strip())
            raise GitError(f"git {shown} failed (exit {proc.returncode}): {stderr}")
        return proc

    def run_bytes(
        self,
        args: Sequence[str],
        *,
        input: bytes,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """:meth:`run` for a batch command fed on stdin, its output kept as bytes.

        One ``cat-file --batch`` or ``fast-import`` does for a whole cycle what would otherwise
        be a process per file or per commit. Errors are raised as :meth:`run` raises them.
        """
        shown = self.redact(" ".join(redact_url(a) for a in args))
        log.debug("git %s (%d bytes on stdin)", shown, len(input))
        self.processes += 1
        try:
            proc = run_process_group_bytes(
                [self.binary, *args], input=input, cwd=cwd, env=self.environment(env), timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {shown} timed out after {self.timeout:g}s and was killed with its helpers;"
                " check that the repository is not locked by another process"
            ) from None
        except OSError as exc:
            raise GitError(f"git {shown}: {self.redact(str(exc))}") from None
        if check and proc.returncode != 0:
            detail = self.redact(proc.stderr.decode("utf-8", "replace").strip())
            raise GitError(f"git {shown} failed (exit {proc.returncode}): {detail}")
        return proc
