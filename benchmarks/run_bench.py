"""Benchmark `automator run --once` in pull-request mode: 200 policies, 200 changes, fake GitHub.

    python3 benchmarks/run_bench.py [--policies 200] [--runs 3]

Seeds a local docker-registry (one repository per policy, tags 1.0.0 and 1.1.0), builds a
bare config repo with one Deployment per policy pinned at 1.0.0 (setter markers), serves the
stateful fake GitHub from tests/servers on loopback with that repo behind it, and runs the
whole process.  Each run starts from a fresh remote and fake; after the first cycle a second
one runs as a no-op.  Reported (medians): wall time and peak RSS of both cycles (and how long the
fake GitHub, in this process, spent answering the first: its share of the wall time), git pushes
(counted by a post-receive hook in the remote), and forge API calls per PR (from the fake's
own request log), with the no-op cycle's forge writes; and automator's own git processes (a
logging ``git`` first on PATH; the fake GitHub's ``git -C <remote>`` calls left out): per PR,
pushes / fetches / worktree calls per cycle, and the seconds spent inside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scan_bench import timed  # noqa: E402

from automator.demo.registry import LocalRegistry  # noqa: E402
from automator.demo.seed import RegistryStore  # noqa: E402
from tests.servers.fake_github import GITHUB_TOKEN, github_server  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def make_remote(work: Path, host: str, policies: int) -> tuple[Path, Path]:
    seed = work / "seed"
    for i in range(policies):
        app = seed / "apps" / f"app-{i:03d}"
        app.mkdir(parents=True)
        image = f"{host}/bench/app-{i:03d}"
        (app / "policy.yaml").write_text(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: app-{i:03d}\n  namespace: apps\nspec:\n  image: {image}\n  insecure: true\n"
            "  policy:\n    semver:\n      range: '^1'\n"
        )
        (app / "deploy.yaml").write_text(
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i:03d}\n  namespace: apps\n"
            "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app-{i:03d}"}}\n'
        )
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init", cwd=seed)
    remote = work / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(remote))
    pushes = work / "pushes.log"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ncat >> {pushes}\necho push >> {pushes}.count\n")
    hook.chmod(0o755)
    return remote, pushes


def counting_git(work: Path) -> Path:
    """Put a ``git`` on PATH that logs each invocation, then runs the real one."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    wrapper_dir = work / "bin"
    wrapper_dir.mkdir()
    log = work / "git-calls.log"
    log.touch()
    wrapper = wrapper_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\nstart=$(date +%s%N)\n"
        f'{real} "$@"\nrc=$?\necho "$(( $(date +%s%N) - start )) $*" >> {log}\nexit $rc\n'
    )
    wrapper.chmod(0o755)
    os.environ["PATH"] = f"{wrapper_dir}:{os.environ['PATH']}"
    return log


def verbs(log: Path, remote: Path) -> list[tuple[str, float]]:
    """The git verb and seconds of each call automator made (``git -c k=v push ...`` -> ``push``);
    the fake GitHub's own calls (``git -C <remote> ...``, resolving a PR's head) are left out."""
    out = []
    for line in log.read_text().splitlines():
        elapsed, _, argv = line.partition(" ")
        if argv.startswith(f"-C {remote} "):
            continue
        words = argv.split()
        i = 0
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in ("-c", "-C", "--git-dir") else 1
        out.append((words[i] if i < len(words) else "", int(elapsed) / 1e9))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="copy the last run's git call log here")
    args = ap.parse_args()
    automator = str(Path(sys.executable).parent / "automator")
    first_walls, noop_walls, rss, pushes_per_pr, calls_per_pr, noop_writes, gits_per_pr = [], [], [], [], [], [], []
    pushes_per_cycle, fetches, worktrees, git_seconds, fake_seconds = [], [], [], [], []
    real_path = os.environ["PATH"]
    with tempfile.TemporaryDirectory(prefix="run-bench-") as tmp:
        base = Path(tmp)
        store = RegistryStore(base / "store")
        for i in range(args.policies):
            store.add_tags(f"bench/app-{i:03d}", ["1.0.0", "1.1.0"])
        with LocalRegistry(base / "store", base) as reg:
            for run in range(args.runs):
                work = base / f"run-{run}"
                work.mkdir()
                remote, pushes = make_remote(work, reg.host, args.policies)
                with github_server() as gh:
                    gh.tokens[GITHUB_TOKEN] = "automator-bot"
                    repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
                    cmd = [automator, "run", "--once", "--git-url", str(remote), "--cache-dir", str(work / "cache")]
                    cmd += ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"]
                    cmd += ["--forge-token-env", "BENCH_TOKEN", "--output", "json"]
                    os.environ.update(GIT_ENV, BENCH_TOKEN=GITHUB_TOKEN, PATH=real_path)
                    git_calls = counting_git(work)
                    wall, peak, out = timed(cmd)
                    fake_seconds.append(gh.busy_seconds)
                    doc = json.loads(out)
                    opened = sum(1 for g in doc["groups"] if g["outcome"] == "opened")
                    assert opened == args.policies == len(repo.pulls), (opened, len(repo.pulls))
                    calls = sum(gh.requests.values())
                    count_file = Path(f"{pushes}.count")
                    n_pushes = len(count_file.read_text().splitlines())
                    first_walls.append(wall)
                    rss.append(peak)
                    pushes_per_pr.append(n_pushes / opened)
                    timed_calls = verbs(git_calls, remote)
                    called = [verb for verb, _ in timed_calls]
                    git_seconds.append(sum(seconds for _, seconds in timed_calls))
                    if args.keep is not None:
                        args.keep.write_text(git_calls.read_text())
                    gits_per_pr.append(len(called) / opened)
                    pushes_per_cycle.append(n_pushes)
                    fetches.append(called.count("fetch") + called.count("clone"))
                    worktrees.append(called.count("worktree"))
                    calls_per_pr.append(calls / opened)
                    writes_before = gh.writes()
                    wall, peak, out = timed(cmd)
                    noop = json.loads(out)
                    assert all(g["outcome"] == "unchanged" for g in noop["groups"])
                    noop_walls.append(wall)
                    noop_writes.append(gh.writes() - writes_before)
                    assert len(count_file.read_text().splitlines()) == n_pushes, "the no-op cycle pushed"
    med = statistics.median
    n = args.policies
    print(f"automator run --once, pull-request mode, {n} policies -> {n} PRs on fake GitHub, {args.runs} runs:")
    print(f"  first cycle  median {med(first_walls):.2f}s (min {min(first_walls):.2f}, max {max(first_walls):.2f})")
    print(f"    of which the fake GitHub spent answering: median {med(fake_seconds):.2f}s (in this process)")
    print(f"  no-op cycle  median {med(noop_walls):.2f}s; forge writes {max(noop_writes)}; pushes 0")
    print(f"  per PR: {med(pushes_per_pr):.2f} git pushes, {med(calls_per_pr):.2f} forge API calls (listing included)")
    print(f"  per PR: {med(gits_per_pr):.2f} git processes (clone/fetch, worktree, commit and push included)")
    print(
        f"  per cycle: {med(pushes_per_cycle):.0f} git push(es), {med(fetches):.0f} clone/fetch, "
        f"{med(worktrees):.0f} git worktree call(s); {med(git_seconds):.2f}s inside git processes"
    )
    print(f"  peak RSS of the first cycle: median {med(rss) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
