"""The git runner's environment and process group: credentials in, repository-pointing variables out,
no helper outliving a timeout."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from automator.errors import GitError
from automator.git import Credentials, Git

TOKEN = "glpat-abcdefghijklmnop"


def test_repository_pointing_variables_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    # set by git for hooks: inherited, every command of ours would act on another repository
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/index")
    env = Git().environment()
    assert "GIT_DIR" not in env
    assert "GIT_INDEX_FILE" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a running process (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _pids(pidfile: Path) -> list[int]:
    """The pids of every helper that has written its whole line (``$$ $!``) so far."""
    try:
        text = pidfile.read_text()
    except FileNotFoundError:
        return []
    lines = [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]
    return [int(p) for fields in lines if len(fields) == 2 and all(f.isdigit() for f in fields) for p in fields]


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(params=["obeys-sigterm", "ignores-sigterm"])
def hanging_ssh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A GIT_SSH_COMMAND that never answers: it starts ``sleep 300`` as git's grandchild and writes
    its own pid and the sleep's to a file, so a test can see whether they outlive the runner.
    One variant ignores SIGTERM (and so does its sleep, which inherits that), as a stuck helper may."""
    pidfile = tmp_path / "pids"
    script = tmp_path / "hanging-ssh"
    out = shlex.quote(str(pidfile))
    trap = "trap '' TERM\n" if request.param == "ignores-sigterm" else ""
    script.write_text(f'#!/bin/sh\n{trap}sleep 300 &\necho "$$ $!" >> {out}\nwait\n')  # every attempt's pids
    script.chmod(0o755)
    env = {"GIT_SSH_COMMAND": str(script), "GIT_SSH_VARIANT": "simple"}
    try:
        yield env, pidfile
    finally:
        _kill_leftovers(_pids(pidfile))


def test_a_timeout_kills_the_helpers_git_started_too(hanging_ssh: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    # subprocess.run's timeout kills git alone: its ssh (or git-remote-http) helper lived on
    env, pidfile = hanging_ssh
    url = f"ssh://git@automator.invalid/{TOKEN}.git"
    for timeout in (0.5, 2.0, 8.0):  # long enough for git to have started its helper
        with pytest.raises(GitError) as info:
            Git(Credentials(token=TOKEN), extra_env=env, timeout=timeout).run(["ls-remote", url], cwd=tmp_path)
        if _pids(pidfile):
            break
    else:
        pytest.fail("git never started the ssh helper")
    assert _gone_within(_pids(pidfile), 10.0), "git's helper outlived the timeout"
    message = str(info.value)
    assert "git ls-remote" in message
    assert f"timed out after {timeout:g}s" in message
    assert TOKEN not in message


class _Interrupted(Exception):
    pass


def test_an_interrupt_while_git_runs_kills_its_process_group(
    hanging_ssh: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, pidfile = hanging_ssh
    main = threading.get_ident()

    def interrupt_once_the_helper_runs() -> None:
        deadline = time.monotonic() + 10.0
        while not _pids(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGUSR1)

    def raise_interrupted(signum: int, frame: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGUSR1, raise_interrupted)
    interrupter = threading.Thread(target=interrupt_once_the_helper_runs)
    try:
        interrupter.start()
        with pytest.raises(_Interrupted):
            Git(extra_env=env, timeout=60.0).run(["ls-remote", "ssh://git@automator.invalid/r.git"], cwd=tmp_path)
    finally:
        interrupter.join()
        signal.signal(signal.SIGUSR1, previous)
    pids = _pids(pidfile)
    assert pids, "git never started the ssh helper"
    assert _gone_within(pids, 10.0), "git's helper outlived the interrupt"
