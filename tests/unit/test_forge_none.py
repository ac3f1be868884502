"""``forge: none``: the PR we would have opened, kept in memory and shown as text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from automator.forge import Forge, NoneForge, PROptions, PRState, with_marker
from automator.forge.body import BodyRow, Location, build_body

STATE = PRState("app", {"app": "ghcr.io/x/app:1.1.0"})


def test_none_forge_satisfies_the_protocol_and_makes_no_calls() -> None:
    forge = NoneForge()
    assert isinstance(forge, Forge)
    pr = forge.open_pull_request("automator/app", "main", "Update app", with_marker("b", STATE))
    forge.update_pull_request(pr, "Update app", pr.body)
    forge.set_commit_status("abc", "success", "automator")
    assert forge.calls.total == 0


def test_render_shows_title_branch_options_and_body_without_the_marker() -> None:
    forge = NoneForge(repository="file:///srv/config.git")
    body = build_body([BodyRow("ghcr.io/x/app", "1.0.0", "1.1.0", (Location("apps/app.yaml", 7),))], STATE)
    options = PROptions(labels=("deps",), reviewers=("alice",), draft=True, auto_merge=True, merge_method="squash")
    pr = forge.open_pull_request("automator/app", "main", "Update app to 1.1.0", body, options)
    text = forge.render(pr)
    assert text.splitlines()[:5] == [
        "Pull request file:///srv/config.git#1 (draft, open)",
        "  branch: automator/app -> main",
        "  title:  Update app to 1.1.0",
        "  labels: deps",
        "  reviewers: alice",
    ]
    assert "  auto-merge: squash" in text
    assert "| `ghcr.io/x/app` | `1.0.0` → `1.1.0` | `apps/app.yaml:7` |" in text
    assert "automator:state" not in text


def test_open_is_idempotent_per_branch_and_close_is_remembered() -> None:
    forge = NoneForge()
    first = forge.open_pull_request("automator/app", "main", "t", with_marker("b", STATE))
    assert forge.open_pull_request("automator/app", "main", "t", "other") == first
    forge.close_pull_request(first, "superseded")
    [closed] = forge.list_pull_requests("automator/")
    assert closed.state == "closed" and closed.marker is not None and closed.marker.closed_by_automator
    assert forge.comments == {1: ["superseded"]}
    assert forge.list_pull_requests("other/") == []


def test_importing_the_forge_package_does_not_import_the_clients() -> None:
    code = "import sys, automator.forge; print('github' in sys.modules, 'gitlab' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, "ForgeUnavailable", True),
        (500, "ForgeUnavailable", True),
        (503, "ForgeUnavailable", True),
        (401, "ForgeAuthError", False),
        (403, "ForgeAuthError", False),
        (404, "ForgeNotFound", False),
        (409, "ForgeRejected", False),
        (422, "ForgeRejected", False),
    ],
)
def test_both_forges_climb_one_status_ladder(status: int, kind: str, retryable: bool) -> None:
    from automator.forge.base import status_error
    from automator.forge.github import _HINTS as GITHUB
    from automator.forge.gitlab import _HINTS as GITLAB

    for hints in (GITHUB, GITLAB):
        error = status_error(status, lambda hint: f"refused: {hint}", hints, retry_after=7.0)
        assert type(error).__name__ == kind
        assert error.retryable is retryable
        assert error.retry_after == (7.0 if retryable else None)
        assert str(error).startswith("refused: ")
