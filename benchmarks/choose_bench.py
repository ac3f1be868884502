"""Benchmark: choosing a tag among 100,000 (target: < 200 ms per choice).

Reports, for each policy kind, the median (and min/max) of several in-process runs of
``choose(policy, tags)``; then runs one semver choice in a fresh interpreter and reports
that whole process's wall time (imports included) and its peak RSS from
``resource.getrusage``.

    python3 benchmarks/choose_bench.py [--tags 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automator.policy import (  # noqa: E402
    AlphabeticalChoice,
    NumericalChoice,
    Policy,
    SemverChoice,
    SourceLocation,
    TagFilter,
    choose,
)
from automator.refs import parse_reference  # noqa: E402

IMAGE = parse_reference("ghcr.io/example/app")


def _policy(choice: object, **kw: object) -> Policy:
    return Policy("bench", IMAGE, choice, SourceLocation("bench.yaml", 1), **kw)  # type: ignore[arg-type]


def semver_tags(n: int, rnd: random.Random) -> list[str]:
    """A realistic mix: mostly versions (some v-prefixed, pre-releases, variants), some noise."""
    out = []
    for i in range(n):
        major, minor, patch = rnd.randint(0, 30), rnd.randint(0, 60), rnd.randint(0, 200)
        r = rnd.random()
        if r < 0.60:
            out.append(f"{major}.{minor}.{patch}")
        elif r < 0.70:
            out.append(f"v{major}.{minor}.{patch}")
        elif r < 0.78:
            out.append(f"{major}.{minor}.{patch}-rc.{rnd.randint(0, 9)}")
        elif r < 0.85:
            out.append(f"{major}.{minor}.{patch}-alpine")
        elif r < 0.90:
            out.append(f"{major}.{minor}")
        elif r < 0.95:
            out.append(f"sha256-{rnd.getrandbits(256):064x}.sig")
        else:
            out.append(f"main-{1700000000 + i}-{rnd.getrandbits(28):07x}")
    return out


def cases(n: int) -> list[tuple[str, Policy, list[str], str | None]]:
    rnd = random.Random(42)
    mixed = semver_tags(n, rnd)
    ascending = [f"{i // 10000}.{i // 100 % 100}.{i % 100}" for i in range(n)]  # worst case: every tag is a new best
    numbers = [f"main-{1700000000 + i}-{rnd.getrandbits(28):07x}" for i in range(n)]
    rnd.shuffle(numbers)
    return [
        ("semver '>=1.2 <20', mixed tags", _policy(SemverChoice(">=1.2 <20")), mixed, None),
        ("semver '*' strict (Flux), mixed tags", _policy(SemverChoice("*", strict=True)), mixed, None),
        ("semver '^1 || >=5.0.0-0', mixed tags", _policy(SemverChoice("^1 || >=5.0.0-0")), mixed, None),
        ("semver '*', ascending (worst case)", _policy(SemverChoice("*")), ascending, None),
        (
            "semver variant-aware, current 1.2.0-alpine",
            _policy(SemverChoice("*"), variant_aware=True),
            mixed,
            "1.2.0-alpine",
        ),
        (
            "numerical + filterTags extract $ts",
            _policy(NumericalChoice(), filter=TagFilter(r"^main-(?P<ts>\d+)-", "$ts")),
            numbers,
            None,
        ),
        ("alphabetical, mixed tags", _policy(AlphabeticalChoice()), mixed, None),
    ]


def timed(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per run (CPU time is what to trust on a busy machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def once(n: int) -> None:
    """Child mode: one semver choice in a fresh process, then report rusage as JSON."""
    start = time.perf_counter()
    tags = semver_tags(n, random.Random(42))
    t0 = time.perf_counter()
    result = choose(_policy(SemverChoice(">=1.2 <20")), tags)
    choose_ms = (time.perf_counter() - t0) * 1000
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "tag": result.tag,
                "choose_ms": choose_ms,
                "after_start_ms": (time.perf_counter() - start) * 1000,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        once(args.tags)
        return 0

    print(f"choice over {args.tags:,} tags, {args.runs} runs each (python {sys.version.split()[0]})")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer when it exceeds them)")
    worst_wall = worst_cpu = 0.0
    for label, policy, tags, current in cases(args.tags):
        result = choose(policy, tags, current)  # warm caches (compiled range/regexes), as a scan would
        wall, cpu = timed(lambda p=policy, t=tags, c=current: choose(p, t, c), args.runs)
        med, med_cpu = statistics.median(wall), statistics.median(cpu)
        worst_wall, worst_cpu = max(worst_wall, med), max(worst_cpu, med_cpu)
        print(
            f"  {label:<46} median {med:6.1f} ms wall, {med_cpu:6.1f} ms cpu"
            f"  (wall min {min(wall):6.1f}, max {max(wall):6.1f})  -> {result.tag}"
        )

    t0 = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--once", "--tags", str(args.tags)], capture_output=True, text=True, check=True
    )
    wall = (time.perf_counter() - t0) * 1000
    report = json.loads(child.stdout)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"whole process (fresh interpreter: imports, generating {args.tags:,} tags, one semver choice): "
        f"wall {wall:.0f} ms, cpu {report['cpu_s'] * 1000:.0f} ms, choose {report['choose_ms']:.1f} ms, "
        f"peak RSS {report['peak_rss_mb']:.1f} MB (RUSAGE_CHILDREN {children.ru_maxrss / 1024:.1f} MB)"
    )
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"this process: peak RSS {own.ru_maxrss / 1024:.1f} MB")
    target = 200.0
    verdict = "within" if worst_cpu < target else "OVER"
    print(f"slowest median: {worst_wall:.1f} ms wall, {worst_cpu:.1f} ms cpu: {verdict} the {target:.0f} ms target")
    return 0 if worst_cpu < target else 1


if __name__ == "__main__":
    raise SystemExit(main())
