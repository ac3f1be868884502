"""End to end: `automator plan` over a config repo against a real registry; the repo never changes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli_scan import automator, policy
from tests.servers.registry import RunningRegistry


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_plan_shows_diff_keeps_repo_and_never_downgrades(registry: RunningRegistry, tmp_path: Path) -> None:
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.2.0-alpine", "1.3.0-alpine", "1.4.0"]:
        registry.push("plan/app", tag)
    repo = tmp_path / "repo"
    repo.mkdir()
    app, pinned, variant = registry.image("plan/app"), registry.image("plan/app"), registry.image("plan/app")
    (repo / "policies.yaml").write_text(
        "---\n".join(
            [
                policy("app", app, "  policy:\n    semver:\n      range: '>=1.0.0 <1.3'\n", namespace="apps"),
                policy("pinned", pinned, "  policy:\n    semver:\n      range: '>=1.0.0 <1.3'\n", namespace="apps"),
                policy(
                    "variant",
                    variant,
                    "  variantAware: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n",
                    namespace="apps",
                ),
            ]
        )
    )
    deploy = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  template:\n"
        "    spec:\n      containers:\n"
        f'        - image: "{app}:1.0.0" # {{"$imagepolicy": "apps:app"}}\n'
        "          name: app   # keep this comment\n"
        f'        - image: {pinned}:1.9.0 # {{"$imagepolicy": "apps:pinned"}}\n'
        "          name: ahead\n"
        f'        - image: {variant}:1.2.0-alpine # {{"$imagepolicy": "apps:variant"}}\n'
        "          name: slim\n"
        f'        - image: {app}:0.1.0 # {{"$imagepolicy": "apps:nobody"}}\n'
        "          name: unknown\n"
    )
    (repo / "deploy.yaml").write_text(deploy)
    before = snapshot(repo)

    proc = automator("plan", "--repo", str(repo), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    changes = [c for f in doc["update"]["files"] for o in f["objects"] for c in o["changes"]]
    by_policy = {c["policy"]: c for c in changes}
    assert by_policy["apps:app"]["new"] == f"{app}:1.2.0"
    assert by_policy["apps:variant"]["new"] == f"{variant}:1.3.0-alpine"
    assert "apps:pinned" not in by_policy  # 1.9.0 is ahead of the range's best: never downgraded
    assert any("apps:nobody" in w["message"] for w in doc["update"]["warnings"])
    assert snapshot(repo) == before

    diff = automator("plan", "--repo", str(repo))
    assert diff.returncode == 0
    assert f'+        - image: "{app}:1.2.0" # {{"$imagepolicy": "apps:app"}}' in diff.stdout
    assert "FILE:LINE" in diff.stderr  # the table goes beside the patch when stdout is not a terminal
    assert snapshot(repo) == before


def test_plan_patch_applies_with_git(registry: RunningRegistry, tmp_path: Path) -> None:
    registry.push("plan/patch", "2.0.0")
    registry.push("plan/patch", "2.1.0")
    repo = tmp_path / "repo"
    repo.mkdir()
    image = registry.image("plan/patch")
    (repo / "p.yaml").write_text(policy("patch", image, "  policy:\n    semver:\n      range: '^2'\n"))
    (repo / "values.yaml").write_text(
        f'image:\r\n  repository: {image}\r\n  tag: 2.0.0 # {{"$imagepolicy": "patch:tag"}}\r\n'
    )
    # bytes, not text: universal newlines would turn the patch's CRLF lines into LF
    proc = subprocess.run(
        [sys.executable, "-m", "automator", "plan", "--repo", str(repo)], capture_output=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert b"\r\n" in proc.stdout
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "apply", "-"], cwd=repo, input=proc.stdout, check=True)
    assert (repo / "values.yaml").read_bytes() == (
        f'image:\r\n  repository: {image}\r\n  tag: 2.1.0 # {{"$imagepolicy": "patch:tag"}}\r\n'.encode()
    )


def test_variant_aware_moves_a_repository_that_holds_only_variant_tags(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """The adversarial run: with only ``-alpine`` tags, the scan without the current tag chose
    nothing, so the plan never learnt the current tag, said "unknown policy" and moved nothing."""
    for tag in ["1.2.0-alpine", "1.3.0-alpine", "1.4.0-slim"]:
        registry.push("plan/variants", tag)
    image = registry.image("plan/variants")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "policy.yaml").write_text(
        policy("v", image, "  variantAware: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n", namespace="apps")
    )
    (repo / "deploy.yaml").write_text(f'image: {image}:1.2.0-alpine # {{"$imagepolicy": "apps:v"}}\n')
    proc = automator("plan", "--repo", str(repo), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    changes = [c for f in doc["update"]["files"] for o in f["objects"] for c in o["changes"]]
    assert [(c["old"], c["new"]) for c in changes] == [(f"{image}:1.2.0-alpine", f"{image}:1.3.0-alpine")]
    assert doc["update"]["warnings"] == []


def test_no_change_never_claims_every_field_holds_its_choice_when_a_scan_failed(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    registry.push("plan/steady", "1.0.0")
    steady = registry.image("plan/steady")
    repo = tmp_path / "repo"
    repo.mkdir()
    dead = "127.0.0.1:9/plan/gone"  # the discard port: nothing listens, the scan fails
    (repo / "policies.yaml").write_text(
        policy("steady", steady, "  policy:\n    semver:\n      range: '>=1.0.0'\n")
        + "---\n"
        + policy("gone", dead, "  policy:\n    semver:\n      range: '>=1.0.0'\n")
    )
    (repo / "deploy.yaml").write_text(
        f'a: {steady}:1.0.0 # {{"$imagepolicy": "steady"}}\nb: {dead}:1.0.0 # {{"$imagepolicy": "gone"}}\n'
    )
    proc = automator("plan", "--repo", str(repo))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    assert "every image field already holds" not in out
    assert "no changes: the fields found hold their policies' choices, but 1 policy could not be scanned" in out
    assert "error: policy gone:" in out
