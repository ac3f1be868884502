"""Benchmark: the state database after 10,000 versions (target: under 50 MB).

One run, in a fresh interpreter: 1,000 policies, each on its own repository, seeded with
5 tags each; then ``--cycles`` cycles as the service records them (every repository's listing,
every policy's choice, a pull-request event and a merge for each policy whose choice moved),
new tags spread over the cycles so that ``--versions`` tags exist at the end, cycles
``--interval`` seconds apart on a fake clock with ``--retention`` pruning every cycle.
Reports the database size, the rows kept, the median time to record one cycle, the whole
process's wall time and its peak RSS; with ``--runs`` the median of several processes.

    python3 benchmarks/state_bench.py [--versions 10000] [--policies 1000] [--cycles 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
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


def one(args: argparse.Namespace) -> dict[str, float]:
    import random

    from automator.state import PolicyChoice, StateStore

    started = time.perf_counter()
    rnd = random.Random(14)
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    policies = [f"ns:app-{i}" for i in range(args.policies)]
    repos = [f"registry.example.com/team/app-{i}" for i in range(args.policies)]
    seed = 5
    tags: list[list[str]] = [[f"1.0.{p}" for p in range(seed)] for _ in repos]
    left = args.versions - seed * args.policies
    per_cycle = max(left, 0) / args.cycles
    carry = 0.0
    held = [t[0] for t in tags]
    cycle_times = []
    with (
        tempfile.TemporaryDirectory(prefix="state-bench-") as scratch,
        StateStore(Path(scratch), now=lambda: clock[0], retention=timedelta(seconds=args.retention)) as store,
    ):
        store.rebuilt()
        for n in range(args.cycles):
            carry += per_cycle
            moved = []
            while carry >= 1:
                carry -= 1
                i = rnd.randrange(len(repos))
                tags[i].append(f"1.0.{len(tags[i])}")
                moved.append(i)
            t0 = time.perf_counter()
            cycle = store.begin_cycle(f"{n:040x}")
            digests = {repos[i]: {tags[i][-1]: "sha256:" + f"{i:064x}"} for i in moved}
            store.record_listings({r: tags[i] for i, r in enumerate(repos)}, digests)
            store.record_choices(
                cycle,
                (PolicyChoice(p, repos[i], tags[i][-1], None, held[i]) for i, p in enumerate(policies)),
            )
            for i in moved:
                store.record_pr_event(
                    f"apps-{i}",
                    10_000 + i,
                    f"https://forge/pr/{i}",
                    "updated",
                    {policies[i]: f"{repos[i]}:{tags[i][-1]}"},
                )
            if moved and n % 10 == 0:  # every tenth cycle, the PRs so far are merged
                store.record_merge(f"{n:040x}", clock[0], {policies[i]: [tags[i][-1]] for i in moved})
                for i in moved:
                    held[i] = tags[i][-1]
            store.finish_cycle(cycle, "ok")
            store.prune()
            cycle_times.append(time.perf_counter() - t0)
            clock[0] += timedelta(seconds=args.interval)
        store.checkpoint()
        counts = {
            table: store._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("tags", "cycles", "choices", "pr_events", "merges")
        }
        size = store.size()
    return {
        "db_mb": round(size / 1e6, 2),
        "cycle_ms_median": round(statistics.median(cycle_times) * 1000, 2),
        "cycle_ms_max": round(max(cycle_times) * 1000, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **{f"rows_{k}": v for k, v in counts.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=1_000)
    parser.add_argument("--cycles", type=int, default=2_000)
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between cycles (fake clock)")
    parser.add_argument("--retention", type=float, default=90 * 86400.0, help="seconds (default 90 days)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return 0
    forwarded = [f"--{k}={getattr(args, k)}" for k in ("versions", "policies", "cycles", "interval", "retention")]
    results = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--one", *forwarded], capture_output=True, text=True, check=True
        ).stdout
        doc = json.loads(out)
        doc["process_s"] = round(time.perf_counter() - t0, 2)
        results.append(doc)
    median = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(json.dumps({"runs": args.runs, "median": median, "each": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
