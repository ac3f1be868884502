"""Which shard works which policies (``automator run --leader-elect --shards N``): pure.

A cycle's work falls into *units*: the policies that write one branch together (a pull request
group, an ImageUpdateAutomation, direct mode's base branch). Units that track one image
repository or write one branch are joined, so that one repository is listed by one replica and
one branch is written by one replica. Each joined set goes to shard ``sha256(repository) mod N`` of its
first repository in sort order: the same image lands on the same shard in every replica and
every cycle, whatever else the config repo holds, so a shard's replica keeps its cache and its
pull requests. Adding a policy that joins two sets moves the later set to the first's shard.

Hand-written: a union-find over a few thousand strings, no library needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Partition", "ShardSelection", "Unit", "partition", "shard_of"]


def shard_of(key: str, count: int) -> int:
    """The shard of ``key`` among ``count``: stable across processes and Python versions."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Unit:
    """Policies that write one branch together, and the image repositories they track."""

    name: str
    policies: tuple[str, ...]
    repositories: frozenset[str]
    branches: frozenset[str] = frozenset()  # the branches it writes, where known (joined like repositories)


@dataclass(frozen=True)
class ShardSelection:
    """The shards this replica holds, of ``count``, as a cycle starts."""

    count: int
    held: frozenset[int]

    def __str__(self) -> str:
        held = ", ".join(str(i) for i in sorted(self.held)) or "none"
        return f"shards {held} of {self.count}"


@dataclass(frozen=True)
class Partition:
    """Every unit's and every repository's shard, over all of a cycle's policies."""

    count: int
    units: Mapping[str, int] = field(default_factory=dict)
    repositories: Mapping[str, int] = field(default_factory=dict)

    def unit_in(self, unit: str, held: Iterable[int]) -> bool:
        """Whether the shards ``held`` work ``unit`` (an unknown unit: shard 0's)."""
        return self.units.get(unit, 0) in set(held)


def partition(units: Iterable[Unit], count: int) -> Partition:
    """Join units that share a repository; give each joined set its shard (module docstring)."""
    units = list(units)
    parent = list(range(len(units)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, unit in enumerate(units):
        for repo in [*unit.repositories, *("\0branch:" + b for b in unit.branches)]:
            j = first.setdefault(repo, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    keys: dict[int, str] = {}
    for i, unit in enumerate(units):
        r = root(i)
        key = min(unit.repositories, default="unit:" + unit.name)
        keys[r] = min(keys.get(r, key), key)
    by_unit = {unit.name: shard_of(keys[root(i)], count) for i, unit in enumerate(units)}
    by_repo = {repo: shard_of(keys[root(i)], count) for i, unit in enumerate(units) for repo in unit.repositories}
    return Partition(count, by_unit, by_repo)
