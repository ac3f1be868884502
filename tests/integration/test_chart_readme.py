"""The chart README's values table is generated from values.yaml (scripts/chart-readme.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "chart-readme.py"
CHART_DIR = REPO_ROOT / "helm" / "automator"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_committed_readme_is_what_values_yaml_generates() -> None:
    proc = run("--check")
    assert proc.returncode == 0, f"helm/automator/README.md is stale; run scripts/chart-readme.py\n{proc.stdout}"


def test_a_changed_description_makes_the_readme_stale_until_regenerated(tmp_path: Path) -> None:
    chart = tmp_path / "automator"
    shutil.copytree(CHART_DIR, chart)
    values = chart / "values.yaml"
    text = values.read_text()
    old = "# -- Namespace of every namespaced object the chart renders; empty means the release namespace."
    assert old in text
    values.write_text(text.replace(old, "# -- Where the objects go | pipes escaped."))

    stale = run("--check", "--chart", str(chart))
    assert stale.returncode == 1 and "Where the objects go" in stale.stdout

    assert run("--chart", str(chart)).returncode == 0
    readme = (chart / "README.md").read_text()
    assert '| `namespaceOverride` | string | `""` | Where the objects go \\| pipes escaped. |' in readme
    assert run("--check", "--chart", str(chart)).returncode == 0
    # only the generated section changed: the prose around it is kept
    before, after = (CHART_DIR / "README.md").read_text(), readme
    assert before.split("<!-- values:start -->")[0] == after.split("<!-- values:start -->")[0]
    assert before.split("<!-- values:end -->")[1] == after.split("<!-- values:end -->")[1]
