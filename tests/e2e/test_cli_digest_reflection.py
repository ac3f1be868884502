"""digestReflectionPolicy as Flux defines it, seen through ``automator plan`` on a real registry.

Never writes no digest; Always re-resolves the chosen tag's digest every cycle (a re-pushed tag
is followed); IfNotPresent resolves it once, when the tag is first chosen, and keeps the digest
the files already pin for that tag.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_cli_scan import automator
from tests.servers.registry import RunningRegistry


def repo(root: Path, image: str, reflection: str, pinned: str) -> None:
    interval = "  interval: 5m\n" if reflection == "Always" else ""
    (root / "policies.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n"
        f"  namespace: flux-system\nspec:\n  image: {image}\n  interval: 5m\n  insecure: true\n---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n"
        "  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: app\n"
        f"  digestReflectionPolicy: {reflection}\n{interval}  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )
    (root / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
        f'      containers:\n        - name: app\n          image: {pinned} # {{"$imagepolicy": "flux-system:app"}}\n'
    )


def planned(root: Path) -> list[tuple[str, str]]:
    proc = automator("plan", "--repo", str(root), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return [(c["old"], c["new"]) for f in doc["update"]["files"] for o in f["objects"] for c in o["changes"]]


@pytest.mark.parametrize("reflection", ["IfNotPresent", "Always"])
def test_a_re_pushed_tag_is_followed_only_with_always(
    registry: RunningRegistry, tmp_path: Path, reflection: str
) -> None:
    name = f"reflect/{reflection.lower()}"
    first = registry.push(name, "1.0.0", created=datetime(2026, 1, 1, tzinfo=UTC))
    image = registry.image(name)
    pinned = f"{image}:1.0.0@{first.digest}"
    repo(tmp_path, image, reflection, pinned)
    assert planned(tmp_path) == []  # the digest the files pin is the tag's: nothing to do

    again = registry.push(name, "1.0.0", created=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=1))
    assert again.digest != first.digest  # the tag now names another image
    expected = [(pinned, f"{image}:1.0.0@{again.digest}")] if reflection == "Always" else []
    assert planned(tmp_path) == expected

    newer = registry.push(name, "1.1.0")  # a new tag: IfNotPresent resolves its digest too
    assert planned(tmp_path) == [(pinned, f"{image}:1.1.0@{newer.digest}")]


def test_if_not_present_resolves_a_digest_the_files_do_not_have(registry: RunningRegistry, tmp_path: Path) -> None:
    pushed = registry.push("reflect/absent", "1.0.0")
    image = registry.image("reflect/absent")
    repo(tmp_path, image, "IfNotPresent", f"{image}:1.0.0")
    assert planned(tmp_path) == [(f"{image}:1.0.0", f"{image}:1.0.0@{pushed.digest}")]
