"""Peak RSS and wall time of `automator sync --once` over hostile trees, on the envtest control plane.

    python3 benchmarks/hostile_sync_bench.py [--runs 3]

Each case is a config repo a tenant could push: an alias bomb (nine anchors of ten aliases each,
10^9 values if expanded), a symlink to /dev/zero, a symlink to a file outside the checkout, and a
100,000-deep JSON manifest. Each run is a whole `automator sync --once` process against one
kube-apiserver + etcd (from ../shared/envtest); printed are the medians of wall time and peak RSS
(wait4's rusage), the exit code and the first line of its error. Before this session's fixes the
alias bomb took 3.9 GB in 61 s and the /dev/zero symlink 2.7 GB in 3.7 s, and both crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def alias_bomb() -> str:
    lines = ["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n"]
    lines.append('  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n')
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)]
    return "".join(lines)


def make_repo(work: Path, case: str) -> str:
    src = work / case / "src"
    src.mkdir(parents=True)
    (src / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
    if case == "alias-bomb":
        (src / "bomb.yaml").write_text(alias_bomb())
    elif case == "dev-zero":
        (src / "zero.yaml").symlink_to("/dev/zero")
    elif case == "outside":
        secret = work / case / "host-secret.yaml"
        secret.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n")
        (src / "link.yaml").symlink_to(secret)
    elif case == "deep-json":
        depth = 100_000
        (src / "deep.json").write_text(
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "x": '
            + "[" * depth
            + "]" * depth
            + "}"
        )
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", case]):
        subprocess.run(["git", *argv], cwd=src, check=True, env=env)
    bare = work / case / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    return str(bare)


def run_sync(url: str, kubeconfig: Path, cache: Path) -> tuple[float, int, int, str]:
    cmd = [sys.executable, "-m", "automator", "sync", "--once", "--output", "json", "--git-url", url,
           "--branch", "main", "--kubeconfig", str(kubeconfig), "--name", "hostile",
           "--inventory-namespace", "default", "--cache-dir", str(cache)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    try:
        errors = json.loads(out).get("errors") or [""]
    except ValueError:
        errors = [out.decode(errors="replace")[:200] or "(no output)"]
    return wall, rusage.ru_maxrss, os.waitstatus_to_exitcode(status), str(errors[0])[:160]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from tests.servers.kube import start_apiserver

    cases = ("alias-bomb", "dev-zero", "outside", "deep-json")
    with tempfile.TemporaryDirectory(prefix="hostile-sync-") as tmp:
        work = Path(tmp)
        with start_apiserver(work / "envtest") as server:
            print(f"automator sync --once over hostile trees, {args.runs} runs each (medians)")
            for case in cases:
                url = make_repo(work, case)
                runs = [run_sync(url, server.kubeconfig, work / case / f"cache-{i}") for i in range(args.runs)]
                walls, rss = [r[0] for r in runs], [r[1] for r in runs]
                print(
                    f"  {case:<11} {statistics.median(walls):5.2f}s  peak RSS {statistics.median(rss) / 1024:4.0f} MiB"
                    f"  exit {runs[0][2]}  {runs[0][3]}"
                )


if __name__ == "__main__":
    main()
