"""Renderers for plan output: unified diff, change rows, JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from automator.policy.model import Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import (
    Decision,
    Decisions,
    FileResult,
    ObjectId,
    change_rows,
    file_diff,
    render_json,
    to_json,
    unified_diff,
    update_tree,
)

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  template:
    spec:
      containers:
      - name: web
        image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}
"""
VALUES = 'tag: 1.0.0 # {"$imagepolicy": "ns:app:tag"}'  # no final newline


def decisions() -> Decisions:
    policy = Policy(
        name="ns:app",
        image=parse_reference("ghcr.io/org/app"),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
    )
    return Decisions.of([Decision(policy, parse_reference("ghcr.io/org/app:2.0.0"))])


def make_repo(root: Path) -> None:
    (root / "apps").mkdir(parents=True)
    (root / "apps" / "deploy.yaml").write_text(DEPLOY)
    (root / "values.yaml").write_text(VALUES)
    (root / "broken.yaml").write_text('x: [ # {"$imagepolicy": "ns:app"}\n')


def test_unified_diff_applies_with_git(tmp_path: Path) -> None:
    """The diff is what `git apply` takes, including the missing final newline."""
    plan = tmp_path / "plan"
    make_repo(plan)
    result = update_tree(plan, decisions(), write=False)
    diff = unified_diff(result)
    assert "--- a/apps/deploy.yaml\n+++ b/apps/deploy.yaml\n" in diff
    assert '+        image: ghcr.io/org/app:2.0.0 # {"$imagepolicy": "ns:app"}\n' in diff
    assert diff.endswith('+tag: 2.0.0 # {"$imagepolicy": "ns:app:tag"}\n\\ No newline at end of file\n')

    applied = tmp_path / "applied"
    make_repo(applied)
    subprocess.run(["git", "init", "-q", str(applied)], check=True)
    subprocess.run(["git", "apply", "-"], input=diff, text=True, cwd=applied, check=True)
    written = tmp_path / "written"
    make_repo(written)
    update_tree(written, decisions(), write=True)
    for rel in ("apps/deploy.yaml", "values.yaml"):
        assert (applied / rel).read_bytes() == (written / rel).read_bytes()


def test_empty_result_renders_empty_diff(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n")
    result = update_tree(tmp_path, decisions(), write=False)
    assert result.empty
    assert unified_diff(result) == ""
    assert to_json(result)["files"] == []


def test_json_groups_changes_by_file_and_object(tmp_path: Path) -> None:
    make_repo(tmp_path)
    result = update_tree(tmp_path, decisions(), write=False)
    data = json.loads(render_json(result))
    assert data["files"] == [
        {
            "path": "apps/deploy.yaml",
            "objects": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "namespace": "prod",
                    "name": "web",
                    "changes": [
                        {"line": 11, "old": "ghcr.io/org/app:1.0.0", "new": "ghcr.io/org/app:2.0.0", "policy": "ns:app"}
                    ],
                }
            ],
        },
        {
            "path": "values.yaml",
            "objects": [
                {
                    "apiVersion": "",
                    "kind": "",
                    "namespace": "",
                    "name": "",
                    "changes": [{"line": 1, "old": "1.0.0", "new": "2.0.0", "policy": "ns:app"}],
                }
            ],
        },
    ]
    assert data["warnings"] == [{"file": "broken.yaml", "line": 2, "message": data["warnings"][0]["message"]}]
    assert data["summary"] == {
        "filesScanned": 3,
        "filesParsed": 3,
        "filesChanged": 2,
        "changes": 2,
        "policies": ["ns:app"],
    }


def test_change_rows_and_object_names(tmp_path: Path) -> None:
    make_repo(tmp_path)
    result = update_tree(tmp_path, decisions(), write=False)
    assert change_rows(result) == [
        ("apps/deploy.yaml:11", "Deployment/prod/web", "ns:app", "ghcr.io/org/app:1.0.0", "ghcr.io/org/app:2.0.0"),
        ("values.yaml:1", "-", "ns:app", "1.0.0", "2.0.0"),
    ]
    assert str(ObjectId("v1", "Namespace", "", "team")) == "Namespace/team"
    assert result.by_policy()["ns:app"] == result.changes
    assert result.policies == ("ns:app",)


def test_diff_splits_lines_on_line_feeds_only() -> None:
    """git splits on LF alone; str.splitlines would also split on FF, VT, U+2028 and more."""
    original = "a: 1\x0c2\r\nb: x\u2028y\r\nc: old\r\n"
    result = FileResult("odd.yaml", original, original.replace("old", "new"))
    assert file_diff(result, context=1) == (
        "diff --git a/odd.yaml b/odd.yaml\n"
        "--- a/odd.yaml\n"
        "+++ b/odd.yaml\n"
        "@@ -2,2 +2,2 @@\n"
        " b: x\u2028y\r\n"
        "-c: old\r\n"
        "+c: new\r\n"
    )
