"""How ``--shards`` splits the work: units that share an image repository or a branch stay on one
shard, the shard of an image does not depend on what else the config repo holds, and every
replica computes the same split."""

from __future__ import annotations

import subprocess
import sys

from automator.shards import Partition, ShardSelection, Unit, partition, shard_of


def unit(name: str, *repos: str, branches: tuple[str, ...] = ()) -> Unit:
    return Unit(name, (name,), frozenset(repos), frozenset(branches))


def test_a_repository_is_on_the_shard_of_its_hash() -> None:
    split = partition([unit("a", "r.io/app")], 7)
    assert split.units == {"a": shard_of("r.io/app", 7)}
    assert split.repositories == {"r.io/app": shard_of("r.io/app", 7)}


def test_units_sharing_a_repository_or_a_branch_share_a_shard() -> None:
    units = [
        unit("group:a", "r.io/one"),
        unit("group:b", "r.io/one", "r.io/two"),
        unit("automation:x", "r.io/three", branches=("flux-updates",)),
        unit("automation:y", "r.io/four", branches=("flux-updates",)),
    ]
    for count in (2, 3, 5, 16):
        split = partition(units, count)
        assert split.units["group:a"] == split.units["group:b"] == shard_of("r.io/one", count)
        assert split.repositories["r.io/two"] == split.units["group:a"]
        assert split.units["automation:x"] == split.units["automation:y"] == shard_of("r.io/four", count)


def test_the_shard_of_an_image_does_not_depend_on_the_other_policies() -> None:
    alone = partition([unit("a", "r.io/app")], 3).units["a"]
    crowded = partition([unit(f"u{i}", f"r.io/other{i}") for i in range(50)] + [unit("a", "r.io/app")], 3)
    assert crowded.units["a"] == alone


def test_every_process_computes_the_same_shard() -> None:
    # no per-process hash seed: another interpreter agrees
    code = "from automator.shards import shard_of; print(shard_of('r.io/app', 3), shard_of('r.io/other', 1000))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [shard_of("r.io/app", 3), shard_of("r.io/other", 1000)]


def test_shards_spread_many_images() -> None:
    split = partition([unit(f"u{i}", f"r.io/app{i}") for i in range(3000)], 3)
    counts = [list(split.units.values()).count(s) for s in range(3)]
    assert min(counts) > 800, counts  # 1000 each expected


def test_a_unit_without_a_repository_gets_a_shard_by_its_name() -> None:
    split = partition([Unit("group:empty", (), frozenset())], 4)
    assert split.units == {"group:empty": shard_of("unit:group:empty", 4)}
    assert Partition(4, split.units).unit_in("group:empty", {split.units["group:empty"]})
    assert not Partition(4, {}).unit_in("unknown", {1, 2, 3})  # an unknown unit is shard 0's


def test_a_selection_says_what_it_holds() -> None:
    assert str(ShardSelection(3, frozenset({2, 0}))) == "shards 0, 2 of 3"
    assert str(ShardSelection(3, frozenset())) == "shards none of 3"
