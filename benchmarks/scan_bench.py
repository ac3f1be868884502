"""Benchmark `automator scan` against a local docker-registry, side by side with a bare httpx loop.

    python3 benchmarks/scan_bench.py [--repos 1000] [--tags 100] [--runs 5]

Seeds distribution's filesystem store directly (1,000 repositories x 100 tags by
default), starts Debian's docker-registry on loopback, writes a config repo with one
semver policy per repository, then alternates whole-process runs of
``automator scan --output json`` and of a bare httpx loop fetching the same tag lists
with the same concurrency.  Prints the median, min and max wall time of each, their
ratio, and the peak RSS of the scan process (from wait4's rusage).
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

from automator.demo.registry import LocalRegistry  # noqa: E402
from automator.demo.seed import RegistryStore  # noqa: E402

BARE = r"""
import asyncio, sys, httpx
host, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    sem = asyncio.Semaphore(conc)
    async with httpx.AsyncClient(http2=True, limits=httpx.Limits(max_connections=conc)) as c:
        async def one(i):
            async with sem:
                r = await c.get(f"http://{host}/v2/bench/app-{i:04d}/tags/list", params={"n": 1000})
                r.raise_for_status()
                return len(r.json()["tags"])
        counts = await asyncio.gather(*(one(i) for i in range(n)))
    print(sum(counts))
asyncio.run(main())
"""


def timed(cmd: list[str]) -> tuple[float, int, bytes]:
    """Run ``cmd``; return wall seconds, peak RSS in KiB, and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0,):
        sys.exit(f"{cmd[0]} failed ({status}): {err.decode()[-2000:]}")
    return wall, rusage.ru_maxrss, out


def write_policies(repo: Path, host: str, repos: int) -> None:
    docs = []
    for i in range(repos):
        docs.append(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: app-{i:04d}\nspec:\n  image: {host}/bench/app-{i:04d}\n"
            "  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0 <2'\n"
        )
    (repo / "policies.yaml").write_text("---\n".join(docs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16, help="the bare loop's; match RegistryConfig")
    ap.add_argument("--store", type=Path, help="keep the seeded registry store here and reuse it on later runs")
    args = ap.parse_args()
    automator = str(Path(sys.executable).parent / "automator")
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        work = Path(tmp)
        store_dir, repo = args.store or work / "store", work / "repo"
        repo.mkdir()
        tags = [f"1.{m}.{p}" for m in range(10) for p in range(args.tags // 10)]
        done = store_dir / f"seeded-{args.repos}x{len(tags)}"
        if not done.exists():
            t0 = time.perf_counter()
            store = RegistryStore(store_dir)
            for i in range(args.repos):
                store.add_tags(f"bench/app-{i:04d}", tags)
            done.touch()
            print(f"seeded {args.repos} x {len(tags)} tags in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        with LocalRegistry(store_dir, work) as reg:
            write_policies(repo, reg.host, args.repos)
            scan_cmd = [automator, "scan", str(repo), "--output", "json"]
            bare_cmd = [sys.executable, "-c", BARE, reg.host, str(args.repos), str(args.concurrency)]
            _, _, out = timed(scan_cmd)  # warm the registry's page cache once
            results = json.loads(out)["results"]
            chosen = sum(1 for r in results if r.get("tag"))
            assert chosen == args.repos, f"only {chosen}/{args.repos} policies chose a tag"
            scans, bares, rss = [], [], []
            for _ in range(args.runs):
                wall, peak, _ = timed(scan_cmd)
                scans.append(wall)
                rss.append(peak)
                wall, _, out = timed(bare_cmd)
                assert int(out) == args.repos * len(tags)
                bares.append(wall)
    ms, mb = statistics.median(scans), statistics.median(bares)
    n = f"{args.repos} repos x {len(tags)} tags"
    print(f"automator scan   {n}: median {ms:.2f}s (min {min(scans):.2f}, max {max(scans):.2f}), {args.runs} runs")
    print(f"bare httpx loop  {n}: median {mb:.2f}s (min {min(bares):.2f}, max {max(bares):.2f})")
    rss_med, rss_max = statistics.median(rss) / 1024, max(rss) / 1024
    print(f"ratio scan/bare: {ms / mb:.2f}x   peak RSS of scan: median {rss_med:.0f} MiB (max {rss_max:.0f})")


if __name__ == "__main__":
    main()
