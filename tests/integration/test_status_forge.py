"""Without cluster access: ``automator status`` reads what runs from the synchronizer's commit
statuses, listed by each forge adapter from the fake GitHub and the fake GitLab."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from automator.forge.github import GitHubForge
from automator.forge.gitlab import GitLabForge
from automator.state import PolicyChoice, StateStore
from automator.status import build_status, forge_reports
from automator.sync.model import ClusterReport, SyncResult, WorkloadReport
from automator.sync.status import StatusPublisher
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState
from tests.servers.fake_gitlab import GITLAB_TOKEN, GitLabState

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
IMAGE = "ghcr.io/x/web"


def publish(forge: GitHubForge | GitLabForge, sha: str, cluster: str, version: str) -> None:
    """What a sync posts while web rolls out and once it is Ready."""
    publisher = StatusPublisher(forge, f"automator/sync/{cluster}")
    for health in ("Progressing", "Ready"):
        web = WorkloadReport("Deployment", "prod", "web", (f"{IMAGE}:{version}",), health, "", T0)
        publisher.publish(SyncResult(sha, report=ClusterReport(cluster, sha, T0, (web,), 2)))


def check(forge: GitHubForge | GitLabForge, old: str, new: str, tmp_path: Path) -> None:
    publish(forge, old, "staging", "1.0.0")
    publish(forge, old, "prod", "1.0.0")
    publish(forge, new, "staging", "1.1.0")  # prod has not applied the new commit yet
    forge.set_commit_status(new, "success", "ci/tests", "all tests passed")  # not the synchronizer's
    reports, errors = forge_reports(forge.commit_statuses, [new, old])
    assert errors == {}
    assert {c: (r.revision, r.workloads[0].images, r.workloads[0].health) for c, r in reports.items()} == {
        "staging": (new, (f"{IMAGE}:1.1.0",), "Ready"),
        "prod": (old, (f"{IMAGE}:1.0.0",), "Ready"),
    }
    with StateStore(tmp_path / "state") as store:
        cycle = store.begin_cycle(new)
        store.record_choices(cycle, [PolicyChoice("web", IMAGE, "1.1.0", current="1.1.0")])
        [row] = build_status(store, reports, now=datetime.now(UTC)).policies
    assert (row.state, row.reasons) == ("merged not applied", ("prod runs 1.0.0",))


def test_github_commit_statuses_say_what_runs(fake_github: GitHubState, tmp_path: Path) -> None:
    old = fake_github.push("octo/app", "main")
    new = fake_github.push("octo/app", "main")
    forge = GitHubForge("octo/app", token=GITHUB_TOKEN, base_url=fake_github.base_url)
    check(forge, old, new, tmp_path)
    assert forge.calls.by_kind["list"] >= 2  # one listing per commit read


def test_gitlab_commit_statuses_say_what_runs(fake_gitlab: GitLabState, tmp_path: Path) -> None:
    old = fake_gitlab.push("group/app", "main")
    new = fake_gitlab.push("group/app", "main")
    forge = GitLabForge("group/app", token=GITLAB_TOKEN, url=fake_gitlab.url)
    check(forge, old, new, tmp_path)


def test_a_forge_that_refuses_is_a_reason_not_a_crash(fake_github: GitHubState) -> None:
    forge = GitHubForge("octo/app", token="wrong", base_url=fake_github.base_url)
    reports, errors = forge_reports(forge.commit_statuses, ["0" * 40])
    assert reports == {}
    assert "token" in errors["forge"]


@pytest.mark.parametrize("kind", ["none"])
def test_the_none_forge_lists_what_this_process_set(kind: str) -> None:
    from automator.forge import NoneForge

    forge = NoneForge()
    forge.set_commit_status("abc", "success", "automator/sync/prod", "applied 1 object in prod")
    assert [s["context"] for s in forge.commit_statuses("abc")] == ["automator/sync/prod"]
    assert forge.commit_statuses("def") == []


def test_automator_status_reads_the_base_branchs_recent_commits_on_the_forge(
    fake_github: GitHubState, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from automator.cli import main

    old = fake_github.push("octo/app", "main")
    new = fake_github.push("octo/app", "main")
    forge = GitHubForge("octo/app", token=GITHUB_TOKEN, base_url=fake_github.base_url)
    publish(forge, old, "prod", "1.0.0")
    publish(forge, new, "staging", "1.1.0")
    with StateStore(tmp_path / "state") as store:  # two cycles, on the old tip then the new one
        store.record_choices(store.begin_cycle(old), [PolicyChoice("web", IMAGE, "1.0.0", current="1.0.0")])
        store.record_choices(store.begin_cycle(new), [PolicyChoice("web", IMAGE, "1.1.0", current="1.1.0")])
    monkeypatch.setenv("FORGE_TOKEN", GITHUB_TOKEN)
    forge_flags = ["--forge", "github", "--forge-url", fake_github.base_url, "--forge-repository", "octo/app"]
    code = main(
        [
            "status",
            "--state-dir",
            str(tmp_path / "state"),
            *forge_flags,
            "--forge-token-env",
            "FORGE_TOKEN",
            "-o",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    [row] = doc["policies"]
    assert {c["cluster"]: (c["version"], c["revision"]) for c in row["clusters"]} == {
        "staging": ("1.1.0", new),
        "prod": ("1.0.0", old),
    }
    assert row["state"] == "merged not applied"
