"""run_once with a state database: a real registry, a real git remote, the fake GitHub.

What a restart must not lose (first-seen times, choices, pull-request events, merges), and what
a database we cannot read is rebuilt from (the registry, the git history, the forge).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.config import DEFAULT, Automation, with_overrides
from automator.forge import Forge
from automator.run import RunOptions, RunSummary, run_once
from automator.state import DB_NAME, PolicyChoice, StateStore
from automator.status import build_status
from automator.wiring import make_forge
from tests.e2e.test_run_forges import git, seeded_remote
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeNow:
    def __init__(self) -> None:
        self.when = T0

    def __call__(self) -> datetime:
        return self.when


class Setup:
    def __init__(self, registry: RunningRegistry, gh: GitHubState, tmp_path: Path, name: str) -> None:
        self.registry, self.gh, self.name = registry, gh, name
        self.image, self.remote = seeded_remote(registry, tmp_path, name, ("1.0.0", "1.1.0"))
        gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=self.remote)
        self.config: Automation = with_overrides(
            DEFAULT,
            {
                "spec.git.url": str(self.remote),
                "spec.forge.provider": "github",
                "spec.forge.url": gh.base_url,
                "spec.forge.repository": "octo/app",
            },
        )
        self.cache = tmp_path / "cache"
        self.state = tmp_path / "state"
        self.now = FakeNow()

    @property
    def forges(self) -> Callable[[Automation], Forge]:
        return lambda config: make_forge(config, token=GITHUB_TOKEN)

    def cycle(self) -> tuple[RunSummary, dict[str, object]]:
        """One cycle in a new "process": a new StateStore over the same directory."""
        with StateStore(self.state, now=self.now) as store:
            summary = run_once(self.config, self.forges, RunOptions(self.cache, state=store))
            [cycle] = store.cycles(limit=1)
            seen: dict[str, object] = {
                "tags": {t.tag: (t.first_seen, t.rebuilt) for t in store.tags(self.registry.image(self.name))},
                "choices": store.choices(cycle.id),
                "events": [(e.number, e.event, e.rebuilt) for e in store.pr_events()],
                "merges": [(m.revision, dict(m.versions), m.rebuilt) for m in store.merges()],
                "cycles": [(c.revision, c.outcome) for c in store.cycles()],
            }
        return summary, seen


def test_a_restart_keeps_first_seen_times_choices_events_and_merges(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "state/app")
    init = git("rev-parse", "main", cwd=s.remote).strip()

    first, seen = s.cycle()
    assert [g.outcome for g in first.groups] == ["opened"]
    policy = first.plan.scan[0].policy.name
    number = first.groups[0].pull_request.number if first.groups[0].pull_request else -1
    # a database that did not exist is rebuilt: the tags are when first listed now, and say so
    assert seen["tags"] == {"1.0.0": (T0, True), "1.1.0": (T0, True)}
    assert seen["choices"] == [PolicyChoice(policy, s.image, "1.1.0", None, "1.0.0")]
    assert seen["events"] == [(number, "opened", False)]
    assert seen["merges"] == [(init, {policy: ("1.0.0",)}, True)]  # from the git history

    registry.push("state/app", "1.2.0")
    s.now.when = T0 + timedelta(hours=1)
    second, seen = s.cycle()
    assert [g.outcome for g in second.groups] == ["updated"]
    assert seen["tags"] == {
        "1.0.0": (T0, True),
        "1.1.0": (T0, True),
        "1.2.0": (T0 + timedelta(hours=1), False),
    }
    assert seen["choices"] == [PolicyChoice(policy, s.image, "1.2.0", None, "1.0.0")]
    assert seen["events"] == [(number, "opened", False), (number, "updated", False)]
    assert seen["cycles"] == [(init, "ok"), (init, "ok")]

    merge = github.merge("octo/app", number)
    s.now.when = T0 + timedelta(hours=2)
    third, seen = s.cycle()
    assert third.revision == merge
    assert [g.outcome for g in third.groups] == ["deleted"]  # the merged branch; no PR outcome
    assert seen["events"] == [(number, "opened", False), (number, "updated", False), (number, "merged", False)]
    assert seen["merges"] == [(init, {policy: ("1.0.0",)}, True), (merge, {policy: ("1.2.0",)}, False)]
    assert seen["choices"] == [PolicyChoice(policy, s.image, "1.2.0", None, "1.2.0")]
    with StateStore(s.state) as store:
        [_, merged] = store.merges()
        when = int(git("log", "-1", "--format=%ct", merge, cwd=s.remote))
        assert merged.at == datetime.fromtimestamp(when, UTC)  # the commit's time, not the cycle's


def test_a_corrupt_database_is_rebuilt_from_git_history_and_the_forge(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Setup(registry, github, tmp_path, "state/corrupt")
    init = git("rev-parse", "main", cwd=s.remote).strip()
    first, _ = s.cycle()
    policy = first.plan.scan[0].policy.name
    assert first.groups[0].pull_request is not None
    number = first.groups[0].pull_request.number
    merge = github.merge("octo/app", number)

    (s.state / DB_NAME).write_bytes(b"this is not sqlite\n" * 100)
    s.now.when = T0 + timedelta(days=1)
    with caplog.at_level(logging.WARNING, logger="automator.state"):
        _, seen = s.cycle()
    aside = [p.name for p in s.state.iterdir() if p.name.startswith(f"{DB_NAME}.corrupt-")]
    assert aside == ["state.db.corrupt-20260302T120000Z"]
    assert f"{s.state / DB_NAME} is not a SQLite database we can read" in caplog.text
    assert "rebuilt" in caplog.text and "2 merges" in caplog.text
    # merges from the history of the base branch, the PR's fate from the forge, tags from the listing
    assert seen["merges"] == [(init, {policy: ("1.0.0",)}, True), (merge, {policy: ("1.1.0",)}, True)]
    assert seen["events"] == [(number, "merged", True)]
    assert seen["tags"] == {"1.0.0": (T0 + timedelta(days=1), True), "1.1.0": (T0 + timedelta(days=1), True)}
    assert seen["choices"] == [PolicyChoice(policy, s.image, "1.1.0", None, "1.1.0")]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automator.state"):
        _, again = s.cycle()  # rebuilt once: the next cycle adds nothing twice
    assert "rebuilt" not in caplog.text
    assert again["merges"] == seen["merges"]
    assert again["events"] == seen["events"]


def test_a_cycle_that_cannot_be_recorded_still_runs_and_records_nothing_of_itself(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Setup(registry, github, tmp_path, "state/full")
    s.cycle()
    registry.push("state/full", "1.2.0")
    with StateStore(s.state, now=s.now) as store:

        def full(*args: object, **kw: object) -> int:
            raise sqlite3.OperationalError("database or disk is full")

        store.record_choices = full  # type: ignore[method-assign,assignment]
        with caplog.at_level(logging.ERROR, logger="automator.state"):
            summary = run_once(s.config, s.forges, RunOptions(s.cache, state=store))
        assert [g.outcome for g in summary.groups] == ["updated"]  # the cycle's work is done
        assert "could not record the cycle" in caplog.text and "disk is full" in caplog.text
        assert len(store.cycles()) == 1  # and none of it half-recorded: no cycle, no tag, no event
        assert "1.2.0" not in {t.tag for t in store.tags(registry.image("state/full"))}
        assert [e.event for e in store.pr_events()] == ["opened"]


def test_the_rebuild_walks_a_bounded_part_of_the_history(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Setup(registry, github, tmp_path, "state/long")
    for version in ("1.0.1", "1.0.2", "1.0.3"):  # three more commits that change the image field
        deploy = read_file(s.remote, "main", "apps/deploy.yaml") or ""
        before = deploy.split(f"{s.image}:", 1)[1].split(" ", 1)[0]
        write_commit(s.remote, {"apps/deploy.yaml": deploy.replace(f":{before} ", f":{version} ")}, version)
    write_commit(s.remote, {"README.md": "unrelated\n"}, "docs")  # touches no field: never a merge
    monkeypatch.setattr("automator.state.record.HISTORY_COMMITS", 2)
    first, seen = s.cycle()
    policy = first.plan.scan[0].policy.name
    assert [(v, rb) for _, v, rb in seen["merges"]] == [({policy: ("1.0.2",)}, True), ({policy: ("1.0.3",)}, True)]


def test_a_chosen_tags_reason_is_kept_and_status_tells_the_variant_rule(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "state/variant")
    for tag in ("1.1.0-alpine", "1.2.0-alpine", "1.3.0"):  # 1.3.0: newer, but not of the current variant
        registry.push("state/variant", tag)
    policy_file = (read_file(s.remote, "main", "apps/policy.yaml") or "").replace(
        "spec:\n", "spec:\n  variantAware: true\n", 1
    )
    deploy = (read_file(s.remote, "main", "apps/deploy.yaml") or "").replace(
        f"{s.image}:1.0.0 ", f"{s.image}:1.2.0-alpine "
    )
    write_commit(s.remote, {"apps/policy.yaml": policy_file, "apps/deploy.yaml": deploy}, "on alpine")
    first, seen = s.cycle()
    [r] = first.plan.scan
    assert r.choice is not None and r.choice.tag == "1.2.0-alpine"  # the variant is kept
    assert isinstance(seen["choices"], list)
    [stored] = seen["choices"]
    assert stored.reason == r.choice.reason  # the chooser's reason, kept
    assert (
        r.choice.reason == "variant rule: only tags shaped like 1.2.0-alpine (variant 'alpine', 3 parts) are candidates"
    )
    with StateStore.read_only(s.state) as store:
        [row] = build_status(store, {}, now=s.now()).policies
    assert (row.newest, row.qualifies) == ("1.3.0", "1.2.0-alpine")
    assert (row.state, row.reasons[0]) == ("held", r.choice.reason)

    write_commit(s.remote, {"apps/policy.yaml": policy_file.replace("'>=1.0.0'", "'<1.2.0'")}, "a range below")
    s.now.when = T0 + timedelta(hours=1)
    second, seen = s.cycle()  # variantAware, current 1.2.0-alpine above the range: kept, with why
    [r] = second.plan.scan
    assert r.choice is not None and r.choice.tag == "1.2.0-alpine" and r.choice.reason
    assert isinstance(seen["choices"], list)
    [stored] = seen["choices"]
    assert (stored.tag, stored.error, stored.reason) == ("1.2.0-alpine", None, r.choice.reason)
    with StateStore.read_only(s.state) as store:
        [row] = build_status(store, {}, now=s.now()).policies
    assert row.state == "up to date"  # a reason that does not name the variant rule keeps today's word
