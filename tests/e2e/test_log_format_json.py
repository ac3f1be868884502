"""With ``--log-format json`` every line either program prints for a cycle is a JSON object: the
log records, the cycle's (or the pass's) report, and the error that stops it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from automator.sync.__main__ import main as sync_main
from tests.e2e.test_run_forges import automator_run, git, seeded_remote
from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.kube import Sync, deployment
from tests.servers.registry import RunningRegistry


def json_lines(text: str) -> list[dict[str, Any]]:
    docs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(doc, dict) and {"time", "level", "logger", "message"} <= set(doc), line
        docs.append(doc)
    return docs


def test_a_cycle_prints_only_json_lines(registry: RunningRegistry, tmp_path: Path) -> None:
    image, remote = seeded_remote(registry, tmp_path, "logs-json/app", ["1.0.0", "1.1.0"])
    # a second policy whose registry does not answer: warnings and a failed policy in the cycle
    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work))
    (work / "apps" / "broken.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: broken\n  namespace: apps\n"
        "spec:\n  image: 127.0.0.1:9/nowhere/app\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )
    git("add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "broken", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        forge = ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"]
        proc = automator_run(
            remote, tmp_path / "cache", "--log-format", "json", "--log-level", "info",
            *forge, "--forge-token-env", "FORGE_TOKEN", env={"FORGE_TOKEN": GITHUB_TOKEN},
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a policy failed
    [report] = json_lines(proc.stdout)
    assert (report["message"], report["logger"]) == ("cycle finished", "automator.run")
    assert [g["outcome"] for g in report["cycle"]["groups"]] == ["opened"]
    [broken] = [s for s in report["cycle"]["scan"] if s["policy"] == "apps:broken"]
    assert broken["error"] and broken["tag"] is None  # the failed policy, in the report
    logged = json_lines(proc.stderr)  # git, the registry client, the forge: each a JSON record
    assert any(d["logger"] == "automator.git" for d in logged) and image


def test_an_error_that_stops_the_verb_is_a_log_record(tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "automator", "--log-format", "json", "run", "--once", "--git-url", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    [error] = json_lines(proc.stderr)[-1:]
    assert error["level"] == "error" and str(tmp_path / "no") in error["message"]
    assert proc.stdout == ""


def test_a_sync_pass_prints_only_json_lines(sync: Sync, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from automator import logfmt

    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    sync.repo.commit()
    logfmt.configure("info", "json")
    try:
        code = sync_main(sync.argv("--once"))
        logging.getLogger("automator.sync").info("after the pass")
    finally:
        logfmt.configure("warning", "text")
    out = capsys.readouterr()
    assert code == 0, out
    [report] = json_lines(out.out)
    assert json_lines(out.err)[-1]["message"] == "after the pass"
    assert report["message"] == "sync pass finished"
    assert [o["action"] for o in report["sync"]["objects"]] == ["created"]
