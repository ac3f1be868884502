"""The embedded default behind ``make demo``: a local registry and a local config repo.

It seeds Debian's docker-registry with a handful of images, copies
``examples/config-repo`` into a scratch git repository (``localhost:5000`` replaced by the
port the registry got), and runs the main job over it.  No accounts, no network.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from automator.config import DEFAULT, with_overrides
from automator.demo.registry import LocalRegistry
from automator.demo.seed import RegistryStore, SeedImage
from automator.errors import ConfigError
from automator.forge import NoneForge
from automator.report import ScanProgress, print_run
from automator.run import RunOptions, run_once

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
    out = sys.stdout
    work = Path(tempfile.mkdtemp(prefix="automator-demo-"))
    try:
        seed(work / "registry")
        with LocalRegistry(work / "registry", work) as registry:
            print(f"registry:    {registry.host} (docker-registry on loopback, {len(DEMO_IMAGES)} tags)", file=out)
            source = make_config_repo(example_repo(), work / "config-repo", registry.host)
            remote = work / "remote.git"
            subprocess.run(["git", "clone", "-q", "--bare", str(source), str(remote)], check=True)
            print(f"config repo: {remote} (a local bare repo; forge: none)", file=out)
            config = with_overrides(
                DEFAULT,
                {
                    "spec.git.url": str(remote),
                    "spec.commit.author.name": "automator demo",
                    "spec.commit.author.email": "demo@automator.invalid",
                },
            )
            forge = NoneForge(repository="demo/config-repo")
            options = RunOptions(work / "cache", progress=ScanProgress(0, sys.stderr))
            code = 0
            for title, before in (
                ("first cycle: one pull request per policy with a newer tag", None),
                ("second cycle: nothing new, so nothing is written", None),
                ("podinfo 6.1.1 is pushed: the same pull request is updated", "demo/podinfo:6.1.1"),
            ):
                if before is not None:
                    repo_path, tag = before.split(":")
                    RegistryStore(work / "registry").add(SeedImage(repo_path, tag, _T0 + timedelta(days=30)))
                print(f"\n$ automator run --once   # {title}", file=out)
                summary = run_once(config, lambda _: forge, options)
                print_run(summary, out)
                code = max(code, 1 if summary.failed else 0)
            branches = subprocess.run(
                ["git", "-C", str(remote), "branch", "--list", "automator/*"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            kept = "" if keep else " (removed on exit; `automator demo --keep` keeps it)"
            print(f"\nbranches pushed to {remote}{kept}:\n{branches}", file=out)
        return code
    finally:
        if keep:
            print(f"kept {work}", file=out)
        else:
            shutil.rmtree(work, ignore_errors=True)
