"""The service's parse cache (automator.policy.ParseCache): an unchanged policy file is not
parsed again from one cycle to the next, and what a load returns is the same either way."""

from __future__ import annotations

from pathlib import Path

from automator.policy import ParseCache, load_policies

POLICY = """apiVersion: automator.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: {name}
  namespace: apps
spec:
  image: ghcr.io/org/{name}
  policy:
    semver:
      range: '>=1.0.0'
"""
BROKEN = "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: bad\nspec:\n  image: [\n"


def test_unchanged_files_are_not_parsed_again_and_the_load_is_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a"))
    (tmp_path / "b.yaml").write_text(POLICY.format(name="b"))
    (tmp_path / "bad.yaml").write_text(BROKEN)
    cache = ParseCache()
    first = load_policies(tmp_path, cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    again = load_policies(tmp_path, cache=cache)
    assert (cache.hits, cache.misses) == (3, 3)
    plain = load_policies(tmp_path)
    for got in (first, again):
        assert [p.name for p in got.policies] == [p.name for p in plain.policies] == ["apps:a", "apps:b"]
        assert [str(e) for e in got.errors] == [str(e) for e in plain.errors] != []  # the broken file still says so
        assert got.policies == plain.policies


def test_a_changed_or_removed_file_is_read_afresh_and_forgotten(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a"))
    (tmp_path / "b.yaml").write_text(POLICY.format(name="b"))
    cache = ParseCache()
    load_policies(tmp_path, cache=cache)
    (tmp_path / "a.yaml").write_text(POLICY.format(name="a").replace(">=1.0.0", ">=2.0.0"))
    (tmp_path / "b.yaml").unlink()
    changed = load_policies(tmp_path, cache=cache)
    assert (cache.hits, cache.misses) == (0, 3)
    assert [p.name for p in changed.policies] == ["apps:a"]
    assert len(cache._files) == 1  # b's entry and a's old one are gone
