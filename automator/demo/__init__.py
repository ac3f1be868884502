"""The embedded default behind ``make demo``: a local registry and a local config repo.

It seeds Debian's docker-registry with a handful of images, copies
``examples/config-repo`` into a scratch git repository (``localhost:5000`` replaced by the
port the registry got), and runs the main job over it.  No accounts, no network.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from automator.demo.registry import LocalRegistry
from automator.demo.seed import RegistryStore, SeedImage
from automator.errors import ConfigError
from automator.policy import load_policies
from automator.report import print_plan, print_scan_table, run_plan
from automator.scan import RegistryAccess

EXAMPLE_HOST = "localhost:5000"
_T0 = datetime(2024, 1, 1, tzinfo=UTC)

# (repository, tag, days after _T0): what the demo registry holds
DEMO_IMAGES: tuple[tuple[str, str, int], ...] = (
    ("demo/podinfo", "6.0.0", 0),
    ("demo/podinfo", "6.0.1", 3),
    ("demo/podinfo", "6.1.0", 10),
    ("demo/podinfo", "6.2.0-rc.1", 12),
    ("demo/podinfo", "7.0.0", 20),
    ("demo/podinfo", "latest", 20),
    ("demo/podinfo", "sha256-" + "ab" * 32 + ".sig", 20),
    ("demo/worker", "1.2.0-alpine", 0),
    ("demo/worker", "1.2.1-alpine", 5),
    ("demo/worker", "1.3.0", 9),
    ("demo/worker", "1.3.0-alpine", 9),
    ("demo/web", "main-20240101-abc1234", 0),
    ("demo/web", "main-20240103-0a1b2c3", 2),
    ("demo/web", "main-20240105-def5678", 4),
    ("demo/web", "pr-42-20240109-fff0000", 8),
    ("demo/cache", "latest", 6),
)


def example_repo() -> Path:
    """The bundled example config repo (in a source checkout)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "config-repo"
    if not path.is_dir():
        raise ConfigError(f"the example config repo is missing at {path}; run the demo from a source checkout")
    return path


def seed(store_dir: Path) -> None:
    """Write the demo images into a registry store."""
    store = RegistryStore(store_dir)
    for repo, tag, days in DEMO_IMAGES:
        store.add(SeedImage(repo, tag, _T0 + timedelta(days=days)))


def make_config_repo(source: Path, dest: Path, host: str) -> Path:
    """Copy ``source`` to ``dest`` with the example host replaced, as a git repo with one commit."""
    shutil.copytree(source, dest)
    for path in dest.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if EXAMPLE_HOST in text:
            path.write_text(text.replace(EXAMPLE_HOST, host), encoding="utf-8")
    git = shutil.which("git")
    if git is not None:
        env_args = ["-c", "user.name=automator demo", "-c", "user.email=demo@automator.invalid"]
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Initial config"]):
            subprocess.run([git, *env_args, *cmd], cwd=dest, check=True)
    return dest


def run_demo(*, keep: bool = False) -> int:
    """Run the demo end to end; return the exit code of the main job."""
    stream = sys.stdout
    work = Path(tempfile.mkdtemp(prefix="automator-demo-"))
    try:
        seed(work / "registry")
        with LocalRegistry(work / "registry", work) as registry:
            print(f"registry:    {registry.host} (docker-registry, loopback)", file=stream)
            repo = make_config_repo(example_repo(), work / "config-repo", registry.host)
            print(f"config repo: {repo}", file=stream)
            policies = load_policies(repo)
            for err in policies.errors:
                print(f"error: {err}", file=sys.stderr)
            print(f"\n$ automator plan --repo {repo}", file=stream)
            plan = asyncio.run(run_plan(repo, policies, RegistryAccess(), sys.stderr))
            print_scan_table(plan.scan, stream)
            print(file=stream)
            print_plan(plan, stream, stream)
        return 1 if policies.errors or plan.failed else 0
    finally:
        if keep:
            print(f"\nkept {work}", file=stream)
        else:
            shutil.rmtree(work, ignore_errors=True)
