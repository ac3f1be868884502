"""`automator run --once --state-dir` as a user runs it: two processes, one state database."""

from __future__ import annotations

from pathlib import Path

from automator.state import DB_NAME, StateStore
from tests.e2e.test_run_forges import automator_run, git, seeded_remote
from tests.servers.registry import RunningRegistry


def rows(state: Path, sql: str) -> list[tuple[object, ...]]:
    reader = StateStore.reader(state)  # read-only, as another process would read it
    try:
        return reader.execute(sql).fetchall()
    finally:
        reader.close()


def test_two_processes_share_one_state_database(registry: RunningRegistry, tmp_path: Path) -> None:
    _image, remote = seeded_remote(registry, tmp_path, "state-cli/app", ("1.0.0", "1.1.0"))
    state, cache = tmp_path / "state", tmp_path / "cache"
    init = git("rev-parse", "main", cwd=remote).strip()

    first = automator_run(remote, cache, "--mode", "direct", env={"AUTOMATOR_STATE_DIR": str(state)})
    assert first.returncode == 0, first.stderr
    assert f"no database at {state / DB_NAME}" in first.stderr
    ours = git("rev-parse", "main", cwd=remote).strip()
    assert ours != init
    seen = dict(rows(state, "SELECT tag, first_seen FROM tags"))
    assert sorted(seen) == ["1.0.0", "1.1.0"]

    registry.push("state-cli/app", "1.2.0")
    second = automator_run(remote, cache, "--mode", "direct", "--state-dir", str(state))
    assert second.returncode == 0, second.stderr
    assert "state:" not in second.stderr  # an existing database: nothing to warn about
    again = dict(rows(state, "SELECT tag, first_seen FROM tags"))
    assert {t: again[t] for t in seen} == seen  # the first process's first-seen times stand
    assert sorted(again) == ["1.0.0", "1.1.0", "1.2.0"]
    # each cycle's own commit on the base branch is a merge of that cycle (not seen twice)
    theirs = git("rev-parse", "main", cwd=remote).strip()
    merges = rows(state, "SELECT revision, versions, rebuilt FROM merges ORDER BY id")
    assert [(r, rb) for r, _, rb in merges] == [(init, 1), (ours, 0), (theirs, 0)]
    assert '"1.1.0"' in str(merges[1][1]) and '"1.2.0"' in str(merges[2][1])
    chosen = rows(state, "SELECT tag FROM choices ORDER BY id")
    assert chosen == [("1.1.0",), ("1.2.0",)]
    assert rows(state, "SELECT outcome FROM cycles") == [("ok",), ("ok",)]


def test_without_state_dir_nothing_is_written(registry: RunningRegistry, tmp_path: Path) -> None:
    _image, remote = seeded_remote(registry, tmp_path, "state-cli/none", ("1.0.0",))
    proc = automator_run(remote, tmp_path / "cache", "--mode", "direct")
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob(DB_NAME))


def test_an_unwritable_state_dir_is_a_usage_error(registry: RunningRegistry, tmp_path: Path) -> None:
    _image, remote = seeded_remote(registry, tmp_path, "state-cli/bad", ("1.0.0",))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    proc = automator_run(remote, tmp_path / "cache", "--state-dir", str(blocker / "state"))
    assert proc.returncode == 2, proc.stderr
    assert f"--state-dir {blocker / 'state'}" in proc.stderr
