"""The I/O edge: only regular files inside the root, never .git, atomic writes, skips reported."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from automator.errors import UnsafePathError, UpdateError
from automator.policy.model import Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import Decision, Decisions, update_tree

MARKED = 'image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}\n'
UPDATED = 'image: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}\n'


def decisions(*, marker_less: bool = False) -> Decisions:
    policy = Policy(
        name="ns:app",
        image=parse_reference("ghcr.io/org/app"),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
        marker_less=marker_less,
    )
    return Decisions.of([Decision(policy, parse_reference("ghcr.io/org/app:2.0.0"))])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def messages(result_warnings: tuple[object, ...]) -> list[str]:
    return [str(w) for w in result_warnings]


def test_writes_atomically_and_keeps_the_mode(repo: Path) -> None:
    target = repo / "apps" / "values.yaml"
    target.parent.mkdir()
    target.write_text(MARKED)
    target.chmod(0o640)
    inode = target.stat().st_ino

    result = update_tree(repo, decisions(), write=True)

    assert target.read_text() == UPDATED
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert [c.file for c in result.changes] == ["apps/values.yaml"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["values.yaml"]  # no temp file left


def test_plan_mode_writes_nothing(repo: Path) -> None:
    (repo / "a.yaml").write_text(MARKED)
    result = update_tree(repo, decisions(), write=False)
    assert (repo / "a.yaml").read_text() == MARKED
    assert result.files[0].text == UPDATED
    assert not result.empty


def test_only_yaml_files_are_read(repo: Path) -> None:
    for name in ("a.yaml", "b.yml", "Kustomization", "c.txt", "d.json", "yaml"):
        (repo / name).write_text(MARKED)
    result = update_tree(repo, decisions(), write=True)
    assert sorted(f.path for f in result.files) == ["Kustomization", "a.yaml", "b.yml"]
    assert (repo / "c.txt").read_text() == MARKED


def test_git_directory_is_never_touched(repo: Path) -> None:
    (repo / ".git" / "refs").mkdir(parents=True)
    (repo / ".git" / "config.yaml").write_text(MARKED)
    (repo / ".git" / "refs" / "x.yaml").write_text(MARKED)
    (repo / "sub").mkdir()
    (repo / "sub" / ".git").write_text("gitdir: ../.git/worktrees/sub\n")
    result = update_tree(repo, decisions(), write=True)
    assert result.empty
    assert result.scanned == 0
    assert (repo / ".git" / "config.yaml").read_text() == MARKED


def test_symlinks_are_never_followed_and_outside_ones_are_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(MARKED)
    (repo / "link.yaml").symlink_to(outside / "secret.yaml")
    (repo / "linkdir").symlink_to(outside, target_is_directory=True)
    (repo / "real.yaml").write_text(MARKED)
    (repo / "inner.yaml").symlink_to(repo / "real.yaml")

    result = update_tree(repo, decisions(), write=True)

    assert (outside / "secret.yaml").read_text() == MARKED
    assert (repo / "link.yaml").is_symlink()
    assert (repo / "inner.yaml").is_symlink()
    assert [f.path for f in result.files] == ["real.yaml"]
    assert "link.yaml: refused: symlink leads outside the repository" in messages(result.warnings)
    assert "linkdir: refused: symlink leads outside the repository" in messages(result.warnings)


def test_subpath_must_stay_inside_the_root(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UnsafePathError, match="outside the repository"):
        update_tree(repo, decisions(), write=True, subpath="../elsewhere")
    (repo / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside the repository"):
        update_tree(repo, decisions(), write=True, subpath="escape")


def test_subpath_limits_the_walk(repo: Path) -> None:
    (repo / "apps").mkdir()
    (repo / "infra").mkdir()
    (repo / "apps" / "a.yaml").write_text(MARKED)
    (repo / "infra" / "b.yaml").write_text(MARKED)
    result = update_tree(repo, decisions(), write=True, subpath="apps")
    assert [f.path for f in result.files] == ["apps/a.yaml"]
    assert (repo / "infra" / "b.yaml").read_text() == MARKED


def test_non_utf8_and_oversized_files_are_skipped_with_a_warning(repo: Path) -> None:
    (repo / "latin1.yaml").write_bytes(MARKED.encode() + "# caf\xe9\n".encode("latin-1"))
    (repo / "huge.yaml").write_text(MARKED + "# padding\n" * 200)
    result = update_tree(repo, decisions(), write=True, max_bytes=1000)
    assert result.empty
    assert "latin1.yaml:2: skipped: not UTF-8 (byte offset 63)" in messages(result.warnings)
    assert any(m.startswith("huge.yaml: skipped: ") and "1000-byte limit" in m for m in messages(result.warnings))
    assert (repo / "huge.yaml").read_text().startswith(MARKED)


def test_invalid_yaml_is_reported_with_file_and_line_and_left_untouched(repo: Path) -> None:
    broken = MARKED + "spec:\n  - a\n  b: [\n"
    (repo / "broken.yaml").write_text(broken)
    result = update_tree(repo, decisions(), write=True)
    assert (repo / "broken.yaml").read_text() == broken
    assert result.empty
    [warning] = result.warnings
    assert warning.file == "broken.yaml"
    assert warning.line == 4  # where the scanner found the problem
    assert "not valid YAML, left untouched" in warning.message


def test_byte_prefilter_skips_parsing(repo: Path) -> None:
    (repo / "plain.yaml").write_text("a: [unclosed\n")  # would be a parse warning if parsed
    (repo / "marked.yaml").write_text(MARKED)
    result = update_tree(repo, decisions(), write=False)
    assert (result.scanned, result.parsed) == (2, 1)
    assert result.warnings == ()


def test_marker_less_prefilter_looks_for_repository_names(repo: Path) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: a\n    image: {}\n"
    (repo / "app.yaml").write_text(pod.format("ghcr.io/org/app:1.0.0"))
    (repo / "other.yaml").write_text(pod.format("ghcr.io/org/other:1.0.0"))
    result = update_tree(repo, decisions(marker_less=True), write=True)
    assert (result.scanned, result.parsed) == (2, 1)
    assert (repo / "app.yaml").read_text() == pod.format("ghcr.io/org/app:2.0.0")


def test_marker_less_can_be_switched_on_per_path(repo: Path) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: a\n    image: {}\n"
    (repo / "auto").mkdir()
    (repo / "auto" / "pod.yaml").write_text(pod.format("ghcr.io/org/app:1.0.0"))
    (repo / "pod.yaml").write_text(pod.format("ghcr.io/org/app:1.0.0"))
    result = update_tree(repo, decisions(), write=True, marker_less_paths=["auto/*"])
    assert [f.path for f in result.files] == ["auto/pod.yaml"]
    assert (repo / "pod.yaml").read_text() == pod.format("ghcr.io/org/app:1.0.0")
    everything = update_tree(repo, decisions(), write=False, marker_less=True)
    assert [f.path for f in everything.files] == ["pod.yaml"]


def test_a_file_changed_during_the_rewrite_is_not_overwritten(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = repo / "a.yaml"
    target.write_text(MARKED)
    from automator.update import tree

    real = tree.rewrite_text

    def racing(text: str, path: str, d: Decisions, **kwargs: bool) -> object:
        target.write_text(MARKED + "# edited by someone else\n")
        return real(text, path, d, **kwargs)

    monkeypatch.setattr(tree, "rewrite_text", racing)
    result = update_tree(repo, decisions(), write=True)
    assert target.read_text() == MARKED + "# edited by someone else\n"
    assert result.empty
    assert "a.yaml: not written: the file changed while it was being rewritten" in messages(result.warnings)


def test_files_are_visited_in_a_stable_order(repo: Path) -> None:
    for name in ("b.yaml", "a.yaml", "c/z.yaml", "c/a.yaml"):
        path = repo / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(MARKED)
    result = update_tree(repo, decisions(), write=False)
    assert [f.path for f in result.files] == ["a.yaml", "b.yaml", "c/a.yaml", "c/z.yaml"]


def test_a_write_failure_stops_the_run_with_the_file_named(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "a.yaml").write_text(MARKED)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UpdateError, match=r"a.yaml: cannot write \(No space left on device\)"):
        update_tree(repo, decisions(), write=True)
    assert (repo / "a.yaml").read_text() == MARKED
    assert sorted(p.name for p in repo.iterdir()) == ["a.yaml"]


def test_a_file_whose_markers_all_name_policies_left_alone_is_not_parsed(repo: Path) -> None:
    # another shard's (or job's, or pull request's) file: theirs to read; unknown names still warn
    theirs = 'image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "ns:web"}\nbroken: [\n'
    (repo / "theirs.yaml").write_text(theirs)
    (repo / "typo.yaml").write_text('image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "ns:wbe"}\n')
    (repo / "mixed.yaml").write_text(MARKED + 'web: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "ns:web:tag"}\n')
    (repo / "odd.yaml").write_text('image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "ns:w\\u0065b"}\nbroken: [\n')
    mine = decisions()
    result = update_tree(repo, Decisions.of(mine.items, {"ns:web": ""}), write=False)
    assert result.parsed == 3  # typo, mixed and odd: theirs.yaml is left unread
    assert [c.file for c in result.changes] == ["mixed.yaml"]
    assert [w.file for w in result.warnings if "ns:wbe" in w.message] == ["typo.yaml"]
    assert "theirs.yaml" not in {w.file for w in result.warnings}
    assert "odd.yaml" in {w.file for w in result.warnings}  # a marker the byte test does not take whole: read
