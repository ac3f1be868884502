"""Gates that need memory, in real cycles: a real registry, a real git remote, the fake GitHub.

``minAge`` holds a tag younger than the policy says (counted from when the state database first
listed it, or from the image's build time) and the choice falls to the best tag old enough.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.config import with_overrides
from automator.run import RunOptions, run_once
from automator.state import StateStore
from automator.state.gates import holds
from tests.integration.test_state_run import T0, Setup
from tests.servers.fake_github import GitHubState
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")


def with_spec(s: Setup, extra: str) -> None:
    """Add ``extra`` (spec fields, two-space indented) to the seeded policy on the base branch."""
    policy = read_file(s.remote, "main", "apps/policy.yaml") or ""
    write_commit(s.remote, {"apps/policy.yaml": policy.replace("spec:\n", "spec:\n" + extra, 1)}, "policy gate")


def test_the_cooldown_holds_a_fresh_tag_and_releases_it_when_due(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/cooldown")
    with_spec(s, "  minAge: 72h\n")
    # a database started afresh: every tag is first seen now, so 1.1.0 must wait its 72 hours
    first, _ = s.cycle()
    assert first.groups == ()  # nothing to propose
    [r] = first.plan.scan
    assert r.choice is not None and r.choice.tag == "1.0.0"
    assert r.choice.held is not None and r.choice.held.tag == "1.1.0"
    assert r.choice.held.gate == "minAge" and r.choice.held.until == T0 + timedelta(hours=72)
    assert "1.1.0" in r.choice.reason and "2026-03-04T12:00:00Z" in r.choice.reason
    with StateStore(s.state, now=s.now) as store:  # what `automator status` reads
        [(policy, held)] = store.held_back().items()
    assert (policy, held.tag, held.gate, held.until) == ("apps:app", "1.1.0", "minAge", T0 + timedelta(hours=72))

    s.now.when = T0 + timedelta(hours=72)  # due: released
    second, _ = s.cycle()
    assert [g.outcome for g in second.groups] == ["opened"]
    assert second.plan.scan[0].choice is not None and second.plan.scan[0].choice.held is None
    assert second.plan.scan[0].choice.tag == "1.1.0"
    with StateStore(s.state, now=s.now) as store:
        assert store.held_back() == {}

    registry.push("gates/cooldown", "1.2.0")  # first seen an hour later: held, the PR stays at 1.1.0
    s.now.when = T0 + timedelta(hours=73)
    third, _ = s.cycle()
    assert [g.outcome for g in third.groups] == ["unchanged"]
    choice = third.plan.scan[0].choice
    assert choice is not None and choice.tag == "1.1.0"
    assert choice.held is not None and choice.held.tag == "1.2.0"
    assert choice.held.until == T0 + timedelta(hours=73 + 72)

    s.now.when = T0 + timedelta(hours=73 + 72)
    fourth, _ = s.cycle()
    assert [g.outcome for g in fourth.groups] == ["updated"]
    assert fourth.plan.scan[0].choice is not None and fourth.plan.scan[0].choice.tag == "1.2.0"


def test_min_age_from_build_time_needs_no_state(registry: RunningRegistry, github: GitHubState, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    s = Setup(registry, github, tmp_path, "gates/built")
    registry.push("gates/built", "1.1.0", created=now - timedelta(days=10))  # old enough
    registry.push("gates/built", "1.2.0", created=now - timedelta(hours=1))  # built an hour ago
    with_spec(s, "  minAge: 72h\n  minAgeFrom: buildTime\n")
    summary = run_once(s.config, s.forges, RunOptions(s.cache))  # no --state-dir
    [r] = summary.plan.scan
    assert r.error is None
    assert r.choice is not None and r.choice.tag == "1.1.0"
    assert r.choice.held is not None and r.choice.held.tag == "1.2.0" and r.choice.held.gate == "minAge"
    assert r.choice.held.until is not None and r.choice.held.until > now
    assert [g.outcome for g in summary.groups] == ["opened"]


def test_min_age_from_first_seen_without_state_is_an_error_of_that_policy(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/nostate")
    with_spec(s, "  minAge: 72h\n")
    summary = run_once(s.config, s.forges, RunOptions(s.cache))
    [r] = summary.plan.scan
    assert r.error is not None and r.choice is None  # never a fresh tag let through
    assert "spec.minAge" in str(r.error) and "--state-dir" in str(r.error)
    assert "apps/policy.yaml" in str(r.error)
    assert summary.failed


def set_base_tag(s: Setup, tag: str) -> str:
    """Someone moves the image on the base branch to ``tag`` (a revert, a hand edit)."""
    deploy = read_file(s.remote, "main", "apps/deploy.yaml") or ""
    before = deploy.split(f"{s.image}:", 1)[1].split(" ", 1)[0]
    write_commit(s.remote, {"apps/deploy.yaml": deploy.replace(f":{before} ", f":{tag} ")}, f"back to {tag}")
    return before


def test_a_rollback_on_base_is_held_until_a_newer_tag_appears(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/rollback")
    first, _ = s.cycle()
    [opened] = first.groups
    assert opened.outcome == "opened" and opened.pull_request is not None
    github.merge("octo/app", opened.pull_request.number)
    s.now.when = T0 + timedelta(hours=1)
    s.cycle()  # the merge of 1.1.0 is seen on the base branch

    assert set_base_tag(s, "1.0.0") == "1.1.0"  # a bad release: someone moves back
    s.now.when = T0 + timedelta(hours=2)
    third, _ = s.cycle()
    assert [g.outcome for g in third.groups if g.outcome != "deleted"] == []  # 1.1.0 is not proposed again
    choice = third.plan.scan[0].choice
    assert choice is not None and choice.tag == "1.0.0"
    assert choice.held is not None and (choice.held.tag, choice.held.gate) == ("1.1.0", "rollback")
    assert "back from it to 1.0.0" in choice.held.reason
    with StateStore(s.state, now=s.now) as store:
        [(policy, (hold,))] = holds(store).items()
    assert (policy, hold.tag, hold.back_to) == ("apps:app", "1.1.0", ("1.0.0",))

    s.now.when = T0 + timedelta(hours=3)
    fourth, _ = s.cycle()  # still held, cycle after cycle
    assert [g.outcome for g in fourth.groups] == []

    registry.push("gates/rollback", "1.2.0")  # a newer tag than the one held: proposed
    s.now.when = T0 + timedelta(hours=4)
    fifth, _ = s.cycle()
    assert [g.outcome for g in fifth.groups] == ["opened"]
    assert fifth.plan.scan[0].choice is not None and fifth.plan.scan[0].choice.tag == "1.2.0"


def test_a_rollback_of_our_direct_commit_is_not_committed_again(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/direct")
    s.config = with_overrides(s.config, {"spec.mode": "direct"})
    first, _ = s.cycle()
    assert [g.outcome for g in first.groups] == ["committed"]
    s.now.when = T0 + timedelta(hours=1)
    s.cycle()
    set_base_tag(s, "1.0.0")
    s.now.when = T0 + timedelta(hours=2)
    third, _ = s.cycle()
    assert [g.outcome for g in third.groups] == ["unchanged"]
    assert read_file(s.remote, "main", "apps/deploy.yaml") is not None
    assert ":1.0.0 " in (read_file(s.remote, "main", "apps/deploy.yaml") or "")


def test_a_pin_sets_the_version_by_hand(registry: RunningRegistry, github: GitHubState, tmp_path: Path) -> None:
    s = Setup(registry, github, tmp_path, "gates/pin")
    registry.push("gates/pin", "1.2.0")
    with_spec(s, "  pin: 1.1.0\n")
    first, _ = s.cycle()
    assert [g.outcome for g in first.groups] == ["opened"]
    choice = first.plan.scan[0].choice
    assert choice is not None and choice.tag == "1.1.0" and "pinned" in choice.reason


def test_a_merged_pull_request_moved_back_is_not_opened_again_even_without_state(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/stateless")
    first = run_once(s.config, s.forges, RunOptions(s.cache))
    [opened] = first.groups
    assert opened.pull_request is not None
    github.merge("octo/app", opened.pull_request.number)
    set_base_tag(s, "1.0.0")  # reverted before any cycle saw the merge
    second = run_once(s.config, s.forges, RunOptions(s.cache))
    [skipped] = [g for g in second.groups if g.outcome != "deleted"]
    assert skipped.outcome == "skipped"
    assert f"#{opened.pull_request.number}" in skipped.reason and "moved back" in skipped.reason
    assert len(github.repos["octo/app"].pulls) == 1


def two_policies(s: Setup, registry: RunningRegistry) -> None:
    """A second policy and Deployment (``apps:bpp``) beside the seeded ``apps:app``."""
    for tag in ("2.0.0", "2.1.0"):
        registry.push(s.name + "-b", tag)
    image = registry.image(s.name + "-b")
    policy = (read_file(s.remote, "main", "apps/policy.yaml") or "").replace("name: app", "name: bpp")
    deploy = (read_file(s.remote, "main", "apps/deploy.yaml") or "").replace("name: app", "name: bpp")
    deploy = deploy.replace(f"{s.image}:1.0.0", f"{image}:2.0.0").replace('"apps:app"', '"apps:bpp"')
    policy = policy.replace(s.image, image)
    write_commit(s.remote, {"apps/policy-b.yaml": policy, "apps/deploy-b.yaml": deploy}, "second app")


def test_the_open_pull_request_limit_holds(registry: RunningRegistry, github: GitHubState, tmp_path: Path) -> None:
    s = Setup(registry, github, tmp_path, "gates/limits-a")
    two_policies(s, registry)
    s.config = with_overrides(s.config, {"spec.pullRequest.maxOpen": 1})
    first = run_once(s.config, s.forges, RunOptions(s.cache))
    by_group = {g.group: g for g in first.groups}
    assert by_group["apps:app"].outcome == "opened"  # by group name: the same group goes first each cycle
    assert by_group["apps:bpp"].outcome == "skipped"
    assert "spec.pullRequest.maxOpen" in by_group["apps:bpp"].reason and "1 open" in by_group["apps:bpp"].reason

    registry.push("gates/limits-a", "1.2.0")  # an open PR is still updated at the limit
    second = run_once(s.config, s.forges, RunOptions(s.cache))
    assert {g.group: g.outcome for g in second.groups} == {"apps:app": "updated", "apps:bpp": "skipped"}

    pr = by_group["apps:app"].pull_request
    assert pr is not None
    github.merge("octo/app", pr.number)  # a slot frees up
    third = run_once(s.config, s.forges, RunOptions(s.cache))
    assert [g.outcome for g in third.groups if g.group == "apps:bpp"] == ["opened"]
    assert len(github.repos["octo/app"].pulls) == 2


def test_at_most_m_pull_requests_are_opened_per_hour(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/hourly-a")
    two_policies(s, registry)
    s.config = with_overrides(s.config, {"spec.pullRequest.maxOpenedPerHour": 1})
    first, _ = s.cycle()
    assert {g.group: g.outcome for g in first.groups} == {"apps:app": "opened", "apps:bpp": "skipped"}
    assert "spec.pullRequest.maxOpenedPerHour" in {g.group: g for g in first.groups}["apps:bpp"].reason
    s.now.when = T0 + timedelta(minutes=59)
    second, _ = s.cycle()
    assert {g.group: g.outcome for g in second.groups} == {"apps:app": "unchanged", "apps:bpp": "skipped"}
    s.now.when = T0 + timedelta(minutes=60)  # an hour after the first was opened
    third, _ = s.cycle()
    assert {g.group: g.outcome for g in third.groups} == {"apps:app": "unchanged", "apps:bpp": "opened"}


def test_our_direct_commit_reverted_before_any_cycle_saw_it_is_held(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    s = Setup(registry, github, tmp_path, "gates/direct-fast")
    s.config = with_overrides(s.config, {"spec.mode": "direct"})
    first, _ = s.cycle()
    [committed] = first.groups
    assert committed.outcome == "committed" and committed.sha is not None
    assert set_base_tag(s, "1.0.0") == "1.1.0"  # reverted before the next cycle ran
    s.now.when = T0 + timedelta(hours=1)
    second, _ = s.cycle()
    assert [g.outcome for g in second.groups] == ["unchanged"]  # 1.1.0 is not committed once more
    assert ":1.0.0 " in (read_file(s.remote, "main", "apps/deploy.yaml") or "")
    choice = second.plan.scan[0].choice
    assert choice is not None and choice.tag == "1.0.0"
    assert choice.held is not None and (choice.held.tag, choice.held.gate) == ("1.1.0", "rollback")
    assert "back from it to 1.0.0" in choice.held.reason
    with StateStore(s.state, now=s.now) as store:  # our commit, recorded by the cycle that made it
        merges = [(m.revision, dict(m.versions)) for m in store.merges()]
    assert (committed.sha, {"apps:app": ("1.1.0",)}) in merges

    registry.push("gates/direct-fast", "1.2.0")  # a newer tag: committed as usual
    s.now.when = T0 + timedelta(hours=2)
    third, _ = s.cycle()
    assert [g.outcome for g in third.groups] == ["committed"]
    assert ":1.2.0 " in (read_file(s.remote, "main", "apps/deploy.yaml") or "")


def test_without_state_the_hourly_limit_counts_the_forges_pull_requests(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path
) -> None:
    """No --state-dir: the pull requests the forge says we opened in the last hour count."""
    s = Setup(registry, github, tmp_path, "gates/hourly-forge")
    two_policies(s, registry)
    s.config = with_overrides(s.config, {"spec.pullRequest.maxOpenedPerHour": 1})

    def cycle() -> dict[str, str]:
        summary = run_once(s.config, s.forges, RunOptions(s.cache))
        return {g.group: g.outcome for g in summary.groups}

    assert cycle() == {"apps:app": "opened", "apps:bpp": "skipped"}
    assert cycle() == {"apps:app": "unchanged", "apps:bpp": "skipped"}  # the first is under an hour old
    [pr] = github.repos["octo/app"].pulls.values()
    pr.created_at = "2026-01-01T00:00:00Z"  # opened long ago, as the forge reports it
    assert cycle() == {"apps:app": "unchanged", "apps:bpp": "opened"}
