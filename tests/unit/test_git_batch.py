"""The pure pieces of committing many branches at once: the per-file rewrite gives the golden
bytes, commit messages are cleaned up as ``git commit`` does, and a push of several refs is read
per ref."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automator.errors import GitError, PushRejected
from automator.git.push import push_outcome
from automator.git.workspace import _cleanup, _fast_import_path
from automator.update import rewrite_file
from tests.unit.test_rewrite_golden import CASES, DATA, files_under, load_case

WHERE = "https://git.example.com/org/config.git"


@pytest.mark.parametrize("case", CASES)
def test_the_per_file_rewrite_gives_the_golden_bytes(case: str) -> None:
    decisions, _ = load_case(DATA / case)
    original = DATA / case / "original"
    expected = files_under(DATA / case / "expected")
    for rel, data in files_under(original).items():
        if (original / rel).is_symlink():
            continue  # never followed by the tree walk, never read from a tree by the batch path
        new = rewrite_file(data, rel, decisions)
        assert (new if new is not None else data) == expected[rel], f"{case}/{rel}"


def test_the_per_file_rewrite_leaves_what_the_walk_leaves(tmp_path: Path) -> None:
    case = next(c for c in CASES if any(p.suffix == ".yaml" for p in (DATA / c / "original").rglob("*")))
    decisions, _ = load_case(DATA / case)
    data = next(p.read_bytes() for p in (DATA / case / "original").rglob("*.yaml"))
    assert rewrite_file(data, "notes.txt", decisions) is None  # not a YAML name
    assert rewrite_file(data, "x.yaml", decisions, max_bytes=len(data) - 1) is None
    assert rewrite_file(b"\xff\xfe image: x", "x.yaml", decisions) is None
    assert rewrite_file(b"kind: ConfigMap\n", "x.yaml", decisions) is None


def stripspace(message: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", "stripspace"], input=message.encode(), env=env, capture_output=True, check=True)
    return proc.stdout.decode()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize(
    "message",
    [
        "Update app",
        "Update app\n\n\n\nbody   \n# kept, not a comment to strip\n\n",
        "\n\n  indented first line\r\n\ttabs\t\nno final newline",
        "a\n \n\t\nb\n\n",
        "Ünïcødé — 更新\n",
    ],
)
def test_the_message_is_cleaned_up_as_git_commit_does(message: str) -> None:
    assert _cleanup(message) == stripspace(message)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab #\t\r\n\v\f é")), max_size=40))
def test_the_cleanup_agrees_with_git_on_any_message(message: str) -> None:
    assert _cleanup(message) == stripspace(message)


@pytest.mark.parametrize(
    ("path", "quoted"),
    [
        ("apps/web.yaml", b"apps/web.yaml"),
        ("apps/with space.yaml", b"apps/with space.yaml"),
        ('"quoted".yaml', b'"\\"quoted\\".yaml"'),
        ("back\\slash.yaml", b'"back\\\\slash.yaml"'),
        ("new\nline.yaml", b'"new\\nline.yaml"'),
    ],
)
def test_paths_reach_fast_import_unambiguously(path: str, quoted: bytes) -> None:
    assert _fast_import_path(path) == quoted


def porcelain(*lines: str) -> str:
    return "\n".join([f"To {WHERE}", *lines, "Done", ""])


def test_a_push_of_several_refs_is_read_per_ref() -> None:
    out = porcelain(
        "*\tabc:refs/heads/automator/a\t[new branch]",
        "!\tdef:refs/heads/automator/b\t[rejected] (stale info)",
        "+\tghi:refs/heads/automator/c\t111...222 (forced update)",
    )
    err = "error: failed to push some refs"
    assert push_outcome("refs/heads/automator/a", 1, out, err, WHERE, several=True).status == "new"
    assert push_outcome("refs/heads/automator/c", 1, out, err, WHERE, several=True).status == "forced"
    with pytest.raises(PushRejected, match="moved since we fetched it"):
        push_outcome("refs/heads/automator/b", 1, out, err, WHERE, several=True)
    # alone, a non-zero exit still fails the ref, as before
    with pytest.raises(GitError, match="cannot push"):
        push_outcome("refs/heads/automator/a", 1, out, err, WHERE)
