"""End to end: markers checked against policies (`validate`), `plan --exit-code`, and `scan`
telling the same truth as `plan` (the tag the files hold now and the choice made against it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.test_cli_scan import automator, policy
from tests.servers.registry import RunningRegistry

FLUX = (
    "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: {name}\n"
    "spec:\n  image: {image}\n  interval: 5m\n  insecure: true\n---\n"
    "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: {name}\n"
    "spec:\n  imageRepositoryRef:\n    name: {name}\n  policy:\n    semver:\n      range: 1.x\n"
)


def marker_repo(root: Path, image: str = "ghcr.io/acme/web") -> Path:
    """One native policy (apps:web), one Flux policy in a base an overlay puts in staging, and
    markers: one right, one misspelt, one naming the overlay's namespace, one ambiguous-free unknown."""
    files = {
        "policies/web.yaml": policy("web", image, "  policy:\n    semver:\n      range: '^1'\n", namespace="apps"),
        "base/policy.yaml": FLUX.format(name="api", image=image),
        "base/kustomization.yaml": "resources:\n  - policy.yaml\n",
        "overlays/staging/kustomization.yaml": "namespace: staging\nresources:\n  - ../../base\n",
        "deploy.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n"
            "      containers:\n"
            f'        - image: {image}:1.0.0 # {{"$imagepolicy": "apps:web"}}\n'
            "          name: ok\n"
            f'        - image: {image}:1.0.0 # {{"$imagepolicy": "apps:wbe"}}\n'
            "          name: typo\n"
            f'        - image: {image}:1.0.0 # {{"$imagepolicy": "staging:api"}}\n'
            "          name: overlay\n"
        ),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_validate_reports_every_marker_that_names_no_policy(tmp_path: Path) -> None:
    repo = marker_repo(tmp_path)
    proc = automator("validate", str(repo))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"^error: deploy\.yaml:11:\d+: marker names policy 'apps:wbe'.*did you mean 'apps:web'", out, re.M)
    assert "(declared at policies/web.yaml:4)" in out
    line = next(x for x in out.splitlines() if "'staging:api'" in x)
    assert line.startswith("error: deploy.yaml:13:")
    assert "'flux-system:api' (base/policy.yaml:13)" in line
    assert "put in namespace staging by overlays/staging/kustomization.yaml" in line
    assert "deploy.yaml:9:" not in out  # the marker naming apps:web is fine
    assert out.rstrip().endswith("2 policies valid, 2 errors")

    doc = json.loads(automator("validate", str(repo), "--output", "json").stdout)
    where = sorted((e["path"], e["line"]) for e in doc["errors"])
    assert where == [("deploy.yaml", 11), ("deploy.yaml", 13)]
    assert all(e["type"] == "PolicyFileError" and e["column"] > 1 for e in doc["errors"])


def test_validate_ambiguous_marker_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        policy("web", "nginx", "  policy:\n    semver:\n      range: '*'\n", namespace="apps")
        + "---\n"
        + policy("web", "nginx", "  policy:\n    semver:\n      range: '*'\n", namespace="prod")
    )
    (tmp_path / "d.yaml").write_text('x:\n  image: nginx:1 # {"$imagepolicy": "web"}\n')
    proc = automator("validate", str(tmp_path))
    assert proc.returncode == 2
    assert "error: d.yaml:2:18: marker names policy 'web', which is ambiguous" in proc.stdout
    assert "apps:web, prod:web" in proc.stdout


def test_plan_names_the_closest_policy_and_exit_code_tells_ci(registry: RunningRegistry, tmp_path: Path) -> None:
    image = registry.image("markers/web")
    registry.push("markers/web", "1.0.0")
    repo = marker_repo(tmp_path / "repo", image)

    proc = automator("plan", str(repo))
    assert proc.returncode == 0, proc.stderr  # without --exit-code, markers naming no policy only warn
    warn = next(x for x in proc.stderr.splitlines() if "'apps:wbe'" in x)
    assert warn.startswith("warning: deploy.yaml:11:")
    assert "did you mean 'apps:web'" in warn

    assert automator("plan", str(repo), "--exit-code").returncode == 4  # markers that name no policy
    doc = json.loads(automator("plan", str(repo), "--output", "json").stdout)
    assert sorted(m["line"] for m in doc["markers"]) == [11, 13]

    deploy = repo / "deploy.yaml"
    deploy.write_text(deploy.read_text().replace('"apps:wbe"', '"apps:web"').replace('"staging:api"', '"apps:web"'))
    assert automator("plan", str(repo), "--exit-code").returncode == 0  # nothing to do
    registry.push("markers/web", "1.1.0")
    pending = automator("plan", str(repo), "--exit-code")
    assert pending.returncode == 3, pending.stderr  # changes pending
    assert f"{image}:1.1.0" in pending.stdout


def test_scan_shows_the_current_tag_and_the_choice_made_against_it(registry: RunningRegistry, tmp_path: Path) -> None:
    for tag in ["1.2.0", "1.2.0-alpine", "1.3.0", "1.3.0-alpine"]:
        registry.push("markers/variant", tag)
    image = registry.image("markers/variant")
    spec = "  variantAware: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    (tmp_path / "p.yaml").write_text(
        policy("v", image, spec, namespace="apps")
        + "---\n"
        + policy("unused", image, "  policy:\n    semver:\n      range: '>=1.0.0'\n", namespace="apps")
    )
    (tmp_path / "d.yaml").write_text(f'image: {image}:1.2.0-alpine # {{"$imagepolicy": "apps:v"}}\n')

    doc = json.loads(automator("scan", str(tmp_path), "--output", "json").stdout)
    rows = {r["policy"]: r for r in doc["results"]}
    assert rows["apps:v"]["current"] == "1.2.0-alpine"
    assert rows["apps:v"]["tag"] == "1.3.0-alpine"  # what plan and run choose, not 1.3.0
    assert rows["apps:unused"]["current"] is None
    assert rows["apps:unused"]["tag"] == "1.3.0"

    table = automator("scan", str(tmp_path))
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["POLICY", "IMAGE", "TAGS", "CURRENT", "CHOSEN"]
    row = next(x.split() for x in lines if x.startswith("apps:v "))
    assert row[3:5] == ["1.2.0-alpine", "1.3.0-alpine"]
    assert next(x.split() for x in lines if x.startswith("apps:unused"))[3] == "-"
