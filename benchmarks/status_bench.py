"""Benchmark: ``automator status`` over 1,000 policies and 3 clusters, from state (target: under 1 s).

Seeds a state database as a service leaves it -- ``--policies`` policies, each on its own
repository with ``--tags`` tags, its choice, a pull request opened and merged for half of them
(one still open for the others), a merge per policy, and ``--clusters`` clusters whose recorded
reports each run every policy's workload (one a version behind) -- then runs
``automator status --state-dir DIR --output json`` (and the table) ``--runs`` times, each a
whole new process, and reports the median and worst wall time and the peak RSS of the processes
(RUSAGE_CHILDREN), beside the time of ``python -c pass`` and of importing the CLI alone.

    python3 benchmarks/status_bench.py [--policies 1000] [--clusters 3] [--tags 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seed(directory: Path, policies: int, clusters: int, tags: int) -> None:
    from automator.state import PolicyChoice, StateStore
    from automator.status import cluster_payload
    from automator.sync.model import ClusterReport, WorkloadReport

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    clock = [t0]
    with StateStore(directory, now=lambda: clock[0]) as store:
        store.rebuilt()
        repos = [f"registry.example.com/team/app-{i}" for i in range(policies)]
        names = [f"apps:app-{i}" for i in range(policies)]
        with store.transaction():
            store.record_listings({r: [f"1.{t}.0" for t in range(tags - 1)] for r in repos})
            cycle = store.begin_cycle("a" * 40)
            store.record_choices(
                cycle,
                [
                    PolicyChoice(n, r, f"1.{tags - 2}.0", current=f"1.{tags - 2}.0")
                    for n, r in zip(names, repos, strict=True)
                ],
            )
            store.record_merge("a" * 40, t0, {n: [f"1.{tags - 2}.0"] for n in names})
        clock[0] = t0 + timedelta(hours=1)
        new = f"1.{tags - 1}.0"
        with store.transaction():
            store.record_listings({r: [f"1.{t}.0" for t in range(tags)] for r in repos})
            cycle = store.begin_cycle("b" * 40)
            current = [(f"1.{tags - 2}.0" if i % 2 else new) for i in range(policies)]
            store.record_choices(
                cycle, [PolicyChoice(n, r, new, current=c) for n, r, c in zip(names, repos, current, strict=True)]
            )
            for i, n in enumerate(names):
                store.record_pr_event(f"g{i}", i + 1, f"https://forge/pr/{i + 1}", "opened", {n: f"{repos[i]}:{new}"})
        clock[0] = t0 + timedelta(hours=2)
        with store.transaction():
            merged = {n: [new] for i, n in enumerate(names) if i % 2 == 0}
            for i, n in enumerate(names):
                if i % 2 == 0:
                    store.record_pr_event(
                        f"g{i}", i + 1, f"https://forge/pr/{i + 1}", "merged", {n: f"{repos[i]}:{new}"}
                    )
            store.record_merge("c" * 40, clock[0], merged)
            for c in range(clusters):
                workloads = tuple(
                    WorkloadReport(
                        "Deployment", "apps", f"app-{i}", (f"{repos[i]}:{new if c and i % 2 == 0 else current[i]}",),
                        "Ready", "", clock[0],
                    )
                    for i in range(policies)
                )  # fmt: skip
                report = ClusterReport(f"cluster-{c}", "c" * 40, clock[0], workloads, policies)
                store.record_cluster_report(f"cluster-{c}", "c" * 40, cluster_payload(report))


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    # byte code written and reused, as an installed package has it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="status-bench-") as scratch:
        state = Path(scratch) / "state"
        started = time.perf_counter()
        seed(state, args.policies, args.clusters, args.tags)
        print(f"seeded {args.policies} policies, {args.clusters} clusters in {time.perf_counter() - started:.1f}s;"
              f" {(state / 'state.db').stat().st_size / 1e6:.1f} MB")  # fmt: skip
        python = [sys.executable]
        timed([*python, "-c", "import automator.cli, automator.status, automator.status_history"])  # byte code
        baseline = statistics.median(timed([*python, "-c", "pass"]) for _ in range(args.runs))
        imports = statistics.median(timed([*python, "-c", "import automator.cli"]) for _ in range(args.runs))
        results = {}
        for output in ("json", "table"):
            argv = [*python, "-m", "automator", "status", "--state-dir", str(state), "--output", output]
            timed(argv)  # the first run writes the byte code
            runs = [timed(argv) for _ in range(args.runs)]
            results[output] = (statistics.median(runs), max(runs))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"python -c pass: {baseline * 1000:.0f} ms; import automator.cli: {imports * 1000:.0f} ms")
    for output, (median, worst) in results.items():
        verdict = "within" if median < 1.0 else "OVER"
        print(
            f"automator status -o {output}: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms ({verdict} 1 s)"
        )
    print(f"peak RSS of the processes: {peak:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
