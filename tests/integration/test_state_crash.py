"""A restart mid-cycle loses nothing: ``automator run --once --state-dir`` killed with SIGKILL
while a cycle is under way leaves the database as the last completed cycle left it.

The process really runs (the CLI, as a user starts it) against a real registry and a real git
remote; one policy's registry is a blackhole (accepts, never answers), so the cycle is stuck in
the scan -- after the store was opened and its lock taken, before anything of the cycle was
recorded -- when it is killed. :mod:`automator.state` promises a cycle is recorded in one
transaction, "the whole cycle or none of it": so none of the killed cycle's rows exist.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automator.errors import ConfigError
from automator.state import DB_NAME, StateStore
from tests.e2e.test_run_forges import GIT_ENV, automator_run, git, seeded_remote
from tests.servers.faults import BlackholeServer
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry

DEADLINE = 60.0  # seconds to wait for the process to reach the blackhole


def policy(name: str, image: str) -> str:
    return (
        f"apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: apps\n"
        f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )


def dump(state: Path) -> list[str]:
    """Every row and every table of the database, read-only (what a crash could have touched)."""
    conn = sqlite3.connect(f"file:{state / DB_NAME}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_cycle_killed_mid_scan_leaves_the_last_completed_cycle_intact(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image, remote = seeded_remote(registry, tmp_path, "state-crash/app", ("1.0.0", "1.1.0"))
    cache, state = tmp_path / "cache", tmp_path / "state"
    args = ("--mode", "direct", "--forge", "none", "--state-dir", str(state))

    done = automator_run(remote, cache, *args)  # a completed cycle: 1.1.0 committed and recorded
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{image}:1.1.0 " in (read_file(remote, "main", "apps/deploy.yaml") or "")
    before = dump(state)
    with StateStore.read_only(state) as store:
        [first] = store.cycles()
        assert first.outcome == "ok"

    registry.push("state-crash/app", "1.2.0")  # what the killed cycle would have recorded and committed
    tip = git("rev-parse", "main", cwd=remote).strip()
    with BlackholeServer() as hole:
        write_commit(remote, {"apps/stall.yaml": policy("stall", f"{hole.host}/stall/app")}, "a hung registry")
        tip = git("rev-parse", "main", cwd=remote).strip()
        out, err = (tmp_path / "killed.out").open("w"), (tmp_path / "killed.err").open("w")
        cmd = [sys.executable, "-m", "automator", "run", "--once", "--git-url", str(remote), "--cache-dir", str(cache)]
        proc = subprocess.Popen(
            [*cmd, *args],
            env={**os.environ, **GIT_ENV},
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: the kill takes its git children too
        )
        try:
            deadline = time.monotonic() + DEADLINE
            while hole.accepted == 0 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)  # polling for the process to reach the blackhole, not a wait for time
            assert proc.poll() is None, (tmp_path / "killed.err").read_text()
            assert hole.accepted >= 1, "the cycle never reached the hung registry"
            with pytest.raises(ConfigError, match="another automator process writes this state"):
                StateStore(state)  # the stuck process is the writer: it holds the lock
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            out.close()
            err.close()
    assert proc.returncode == -signal.SIGKILL

    # nothing half-written: the file is the one the completed cycle left, row for row
    assert dump(state) == before
    files = {p.name for p in state.iterdir()}
    assert files <= {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}.lock"}  # nothing moved aside
    assert git("rev-parse", "main", cwd=remote).strip() == tip  # nor committed
    with StateStore(state) as store:  # the lock died with the process: a new writer opens it
        assert store.recovered is None and not store.rebuild_pending
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [(c.id, c.outcome) for c in store.cycles()] == [(first.id, "ok")]
        assert "1.2.0" not in {t.tag for t in store.tags(image)}

    # the policy fixed, the next cycle records as usual
    write_commit(remote, {"apps/stall.yaml": policy("stall", image)}, "the registry is back")
    again = automator_run(remote, cache, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{image}:1.2.0 " in (read_file(remote, "main", "apps/deploy.yaml") or "")
    with StateStore.read_only(state) as store:
        cycles = store.cycles()
        assert [c.outcome for c in cycles] == ["ok", "ok"] and cycles[0] == first
        assert {c.policy: c.tag for c in store.choices(cycles[-1].id)} == {"apps:app": "1.2.0", "apps:stall": "1.2.0"}
        assert "1.2.0" in {t.tag for t in store.tags(image)}
