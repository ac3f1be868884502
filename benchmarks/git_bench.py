"""Benchmark: the git side of 200 pull requests against a config repo of 2,000 files.

Builds a bare remote (``--files`` YAML files, ``uploadpack.allowFilter`` on), then in one
``Repository`` session calls ``commit_branch`` once per change (one file rewritten each) and
reports: clone time, the wall time per branch, git processes per branch and pushes per
branch (target: one push per new branch); then a rerun with identical content (target:
zero pushes) and a rerun after a fetch; finally ``commit_direct`` of one change.

    python3 benchmarks/git_bench.py [--files 2000] [--branches 200] [--http]

``--http`` serves the remote through ``tests/servers/git_http.py`` (smart HTTP with a token)
so the numbers include the partial clone's lazy blob fetches over a real transport.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automator.git import Credentials, Git  # noqa: E402
from automator.git.signing import Identity  # noqa: E402
from automator.git.workspace import Repository  # noqa: E402
from tests.servers.git_http import GIT_ENV, git_http_server  # noqa: E402

TOKEN = "bench-token-123"


class CountingGit(Git):
    """A Git that counts its processes by verb (``push``, ``worktree``...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def run(
        self, args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "?")
        self.calls[verb] += 1
        return super().run(args, cwd=cwd, env=env, check=check)


def build_remote(bare: Path, files: int) -> None:
    work = bare.parent / "seed"
    env = {**GIT_ENV, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s"}
    env["GIT_COMMITTER_EMAIL"] = "s@x"
    run = lambda *a, cwd=None: subprocess.run(["git", *a], cwd=cwd, env=env, check=True, capture_output=True)  # noqa: E731
    if not (bare / "HEAD").exists():
        run("init", "-q", "--bare", "-b", "main", str(bare))
    run("config", "uploadpack.allowFilter", "true", cwd=bare)
    run("init", "-q", "-b", "main", str(work))
    for i in range(files):
        path = work / "apps" / f"app{i:05d}" / "deployment.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(f"kind: Deployment\nmetadata:\n  name: app{i}\nspec:\n  image: ghcr.io/x/app{i}:1.0.0\n")
    run("add", "-A", cwd=work)
    run("commit", "-q", "-m", "seed", cwd=work)
    run("push", "-q", str(bare), "HEAD:main", cwd=work)


def rewrite(i: int, version: str) -> Any:
    def apply(root: Path) -> bool:
        path = root / "apps" / f"app{i:05d}" / "deployment.yaml"
        path.write_text(path.read_text().replace(":1.0.0", f":{version}"))
        return True

    return apply


def session(git: CountingGit, url: str, cache: Path, branches: int, version: str) -> dict[str, Any]:
    git.calls.clear()
    start = time.perf_counter()
    per: list[float] = []
    statuses: Counter[str] = Counter()
    with Repository(git, url, cache, author=Identity("bench", "bench@example.com")) as repo:
        synced = time.perf_counter() - start
        for i in range(branches):
            t = time.perf_counter()
            statuses[repo.commit_branch(f"automator/app{i}", rewrite(i, version), f"app{i} {version}").status] += 1
            per.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return {
        "sync": repo.synced,
        "sync_s": round(synced, 3),
        "total_s": round(total, 2),
        "per_branch_ms_median": round(statistics.median(per) * 1000, 1),
        "per_branch_ms_max": round(max(per) * 1000, 1),
        "statuses": dict(statuses),
        "git_processes_per_branch": round(sum(git.calls.values()) / branches, 1),
        "pushes": git.calls["push"],
        "calls": dict(git.calls.most_common()),
    }


@contextlib.contextmanager
def remote_url(tmp: Path, files: int, http: bool) -> Iterator[str]:
    if not http:
        build_remote(tmp / "remote.git", files)
        yield f"file://{tmp / 'remote.git'}"
        return
    with git_http_server(tmp / "srv", token=TOKEN, lifetime=3600) as srv:
        build_remote(srv.create_repo("bench.git"), files)
        yield srv.url("bench.git")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--branches", type=int, default=200)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="automator-git-bench-") as tmp_name:
        tmp = Path(tmp_name)
        creds = Credentials(token=TOKEN) if args.http else None
        git = CountingGit(creds, extra_env=GIT_ENV)
        with remote_url(tmp, args.files, args.http) as url:
            report = {
                "files": args.files,
                "branches": args.branches,
                "transport": "smart-http" if args.http else "file",
                "first_run": session(git, url, tmp / "cache", args.branches, "1.1.0"),
                "identical_rerun": session(git, url, tmp / "cache", args.branches, "1.1.0"),
                "newer_tag_run": session(git, url, tmp / "cache", args.branches, "1.2.0"),
            }
            git.calls.clear()
            start = time.perf_counter()
            with Repository(git, url, tmp / "cache", author=Identity("bench", "bench@example.com")) as repo:
                result = repo.commit_direct(rewrite(0, "2.0.0"), "direct")
            report["direct"] = {
                "attempts": result.attempts,
                "total_s": round(time.perf_counter() - start, 3),
                "calls": dict(git.calls.most_common()),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
