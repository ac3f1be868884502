"""A cycle that holds some shards (``--shards``), in-process against a real registry, a real git
remote and the fake GitHub: it scans and proposes only its shards' policies, leaves the other
shards' pull requests as they are, and never deletes another shard's branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from automator.config import DEFAULT, with_overrides
from automator.run import RunOptions, RunSummary, run_once
from automator.shards import ShardSelection, shard_of
from automator.wiring import make_forge
from tests.e2e.test_run_forges import git
from tests.e2e.test_run_shards import config_repo
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")


def test_a_cycle_works_only_its_shards(registry: RunningRegistry, github: GitHubState, tmp_path: Path) -> None:
    # two images on different shards of two
    first = registry.image("shards-run/a0")
    second = next(
        registry.image(f"shards-run/b{i}")
        for i in range(64)
        if shard_of(registry.image(f"shards-run/b{i}"), 2) != shard_of(first, 2)
    )
    images = [first, second]
    for image in images:
        name = image.split("/", 1)[1]
        for tag in ("1.0.0", "1.1.0"):
            registry.push(name, tag)
    remote = config_repo(tmp_path, images)
    repo = github.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
    config = with_overrides(
        DEFAULT,
        {
            "spec.git.url": str(remote),
            "spec.forge.provider": "github",
            "spec.forge.url": github.base_url,
            "spec.forge.repository": "octo/app",
        },
    )

    def cycle(*held: int) -> RunSummary:
        options = RunOptions(tmp_path / "cache", shards=ShardSelection(2, frozenset(held)))
        return run_once(config, lambda c: make_forge(c, token=GITHUB_TOKEN), options)

    both = cycle(0, 1)
    assert both.partition is not None and both.partition.repositories == {i: shard_of(i, 2) for i in images}
    assert sorted(g.outcome for g in both.groups) == ["opened", "opened"]
    pulls = {p.head: p for p in repo.pulls.values()}
    mine, theirs = shard_of(first, 2), shard_of(second, 2)

    for image in images:
        registry.push(image.split("/", 1)[1], "1.2.0")
    github.close("octo/app", next(p.number for p in pulls.values() if p.head.endswith("app1")))
    only = cycle(mine)
    assert [r.policy.image.repository for r in only.plan.scan] == [first]  # the other shard's is not scanned
    assert len(only.policies) == 2  # but known, for webhooks
    outcomes = {g.branch: g.outcome for g in only.groups}
    [ours] = [b for b in outcomes if b.endswith("app0")]
    assert outcomes[ours] == "updated"
    assert "1.2.0" in repo.pulls[pulls[ours].number].title
    [other] = [p for p in pulls if p.endswith("app1")]
    assert "deleted" not in outcomes.values()
    assert other in git("for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/", cwd=remote).split()
    assert "1.1.0" in repo.pulls[pulls[other].number].title  # left as it was
    assert theirs != mine
