"""End to end: the CLI over a Flux repository with ImageUpdateAutomations, as a Flux user runs it.

``validate`` reports what an automation cannot have honoured, with file:line; ``plan`` and
``scan`` show each automation's share of the repository (its update.path, its policies), so the
diff shown is the diff ``run`` commits.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.test_cli_scan import automator
from tests.integration.test_run_flux_automation import automation, deployment
from tests.servers.registry import RunningRegistry


def flux_repo(root: Path, registry: RunningRegistry) -> str:
    for tag in ("1.0.0", "1.1.0"):
        registry.push("cli-flux/podinfo", tag)
    image = registry.image("cli-flux/podinfo")
    files = {
        "clusters/staging/automation.yaml": automation("staging", "./apps/staging", "staging"),
        "clusters/policies.yaml": (
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n"
            f"  namespace: flux-system\nspec:\n  image: {image}\n  interval: 5m\n  insecure: true\n---\n"
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n"
            "  namespace: flux-system\n  labels:\n    env: staging\nspec:\n  imageRepositoryRef:\n    name: podinfo\n"
            "  policy:\n    semver:\n      range: '>=1.0.0'\n"
        ),
        "apps/base/deployment.yaml": deployment("base", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo"}}'),
        "apps/staging/deployment.yaml": deployment(
            "staging", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo"}}'
        ),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return image


def test_plan_and_scan_keep_to_the_automations_update_path(registry: RunningRegistry, tmp_path: Path) -> None:
    image = flux_repo(tmp_path, registry)
    proc = automator("plan", "--repo", str(tmp_path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [f["path"] for f in doc["update"]["files"]] == ["apps/staging/deployment.yaml"]
    proc = automator("plan", "--repo", str(tmp_path))
    assert f"+          image: {image}:1.1.0" in proc.stdout
    assert "apps/base" not in proc.stdout
    proc = automator("scan", "--repo", str(tmp_path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert (result["policy"], result["current"], result["tag"]) == ("flux-system:podinfo", "1.0.0", "1.1.0")


def test_a_suspended_automation_plans_nothing(registry: RunningRegistry, tmp_path: Path) -> None:
    flux_repo(tmp_path, registry)
    path = tmp_path / "clusters/staging/automation.yaml"
    path.write_text(path.read_text() + "  suspend: true\n")
    proc = automator("plan", "--repo", str(tmp_path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["update"]["files"] == []


def test_validate_names_what_an_automation_cannot_have(registry: RunningRegistry, tmp_path: Path) -> None:
    flux_repo(tmp_path, registry)
    path = tmp_path / "clusters/staging/automation.yaml"
    text = path.read_text()
    path.write_text(text.replace("        branch: main\n    commit", "        tag: v1\n    commit"))
    (tmp_path / "clusters/old.yaml").write_text(
        text.replace("image.toolkit.fluxcd.io/v1\n", "image.toolkit.fluxcd.io/v1beta1\n").replace(
            "staging\n  namespace", "old\n  namespace"
        )
    )
    proc = automator("validate", "--repo", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert (
        "clusters/staging/automation.yaml:14:14: [spec.git.checkout.ref.tag] checkout.ref.tag cannot be honoured" in out
    )
    assert (
        "clusters/old.yaml:1:13: [apiVersion] ImageUpdateAutomation 'image.toolkit.fluxcd.io/v1beta1' is not supported"
        in out
    )


def test_a_go_template_in_automator_yaml_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "automator.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  commit:\n"
        "    messageTemplate: 'Update {{ range .Changed.Changes }}{{ .NewValue }} {{ end }}'\n"
    )
    proc = subprocess.run(
        [*automator_cmd(), "validate", "--repo", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "this is a Go text/template, as Flux's messageTemplate is" in proc.stdout + proc.stderr


def automator_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "automator"]


def test_validate_lists_automations_and_warns_of_a_policy_none_selects(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    flux_repo(tmp_path, registry)
    path = tmp_path / "clusters/policies.yaml"
    path.write_text(path.read_text().replace("env: staging", "env: production"))
    proc = automator("validate", "--repo", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok     flux-system/staging" in proc.stdout
    assert "ImageUpdateAutomation, update.path apps/staging  (clusters/staging/automation.yaml:4)" in proc.stdout
    assert (
        "warning: clusters/policies.yaml:14: policy flux-system:podinfo: no ImageUpdateAutomation selects it"
        in proc.stdout
    )
