"""scan and plan choose past the gates that need memory when given the state run keeps."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli_scan import automator
from tests.e2e.test_run_forges import automator_run, git, seeded_remote
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry


def test_plan_and_scan_hold_a_fresh_tag_as_run_does(registry: RunningRegistry, tmp_path: Path) -> None:
    _image, remote = seeded_remote(registry, tmp_path, "cli-gates/app", ("1.0.0", "1.1.0"))
    policy = read_file(remote, "main", "apps/policy.yaml") or ""
    write_commit(remote, {"apps/policy.yaml": policy.replace("spec:\n", "spec:\n  minAge: 72h\n", 1)}, "cool down")
    state = tmp_path / "state"
    proc = automator_run(remote, tmp_path / "cache", "--forge", "none", "--state-dir", str(state), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert [g["outcome"] for g in json.loads(proc.stdout)["groups"]] == []  # 1.1.0 first seen now: it waits

    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work))
    planned = automator("plan", "--repo", str(work), "--state-dir", str(state), "--output", "json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["update"]["files"] == []
    scanned = automator("scan", "--repo", str(work), "--state-dir", str(state), "--output", "json")
    assert scanned.returncode == 0, scanned.stderr
    [result] = json.loads(scanned.stdout)["results"]
    assert result["tag"] == "1.0.0"

    blind = automator("plan", "--repo", str(work), "--output", "json")  # no memory: never a fresh tag
    assert blind.returncode == 1, blind.stdout + blind.stderr
    assert json.loads(blind.stdout)["update"]["files"] == []
    assert "--state-dir" in blind.stdout + blind.stderr
