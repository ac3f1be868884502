"""Benchmark `automator plan` over a generated 10,000-file config repo with 2,000 image references.

    python3 benchmarks/plan_bench.py [--runs 5]

The repo comes from rewrite_bench.generate (Deployments, Helm values, ConfigMaps,
Services; a quarter of the policies marker-less) with its images moved onto a local
docker-registry that this script seeds (200 repositories) and starts on loopback.  Each run
is a whole `automator plan --output json` process; printed are the medians of the whole
process wall time, of the scan and rewrite phases (from the plan's own `timings`), and the
peak RSS (wait4's rusage).  Targets (issue 3): rewrite phase < 3 s, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import rewrite_bench  # noqa: E402
from scan_bench import timed  # noqa: E402

from automator.demo.registry import LocalRegistry  # noqa: E402
from automator.demo.seed import RegistryStore  # noqa: E402

FAKE_HOST = "registry.example.com"


def policies(host: str) -> str:
    docs = []
    for p in range(rewrite_bench.POLICIES):
        image = rewrite_bench.policy_image(p).replace(FAKE_HOST, host)
        marker_less = "true" if p % rewrite_bench.MARKER_LESS_EVERY == 0 else "false"
        docs.append(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: policy-{p}\n  namespace: flux-system\nspec:\n  image: {image}\n"
            f"  insecure: true\n  markerLess: {marker_less}\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        )
    return "---\n".join(docs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    automator = str(Path(sys.executable).parent / "automator")
    with tempfile.TemporaryDirectory(prefix="plan-bench-") as tmp:
        work = Path(tmp)
        store = RegistryStore(work / "store")
        tags = [f"1.{m}.{p}" for m in range(21) for p in range(10)] + ["2.0.0", "2.1.0"]
        for p in range(rewrite_bench.POLICIES):
            repo_path = rewrite_bench.policy_image(p).split("/", 1)[1]
            store.add_tags(repo_path, tags)
        repo = work / "repo"
        rewrite_bench.generate(repo)
        with LocalRegistry(work / "store", work) as reg:
            for path in repo.rglob("*.yaml"):
                text = path.read_text()
                if FAKE_HOST in text:
                    path.write_text(text.replace(FAKE_HOST, reg.host))
            (repo / "policies.yaml").write_text(policies(reg.host))
            files = sum(1 for _ in repo.rglob("*.yaml"))
            walls, scans, rewrites, rss = [], [], [], []
            cmd = [automator, "plan", "--repo", str(repo), "--output", "json"]
            for _ in range(args.runs + 1):
                wall, peak, out = timed(cmd)
                doc = json.loads(out)
                changes = doc["update"]["summary"]["changes"]
                walls.append(wall)
                scans.append(doc["timings"]["scan"])
                rewrites.append(doc["timings"]["rewrite"])
                rss.append(peak)
            walls, scans, rewrites, rss = walls[1:], scans[1:], rewrites[1:], rss[1:]  # first run warms caches
    print(f"automator plan over {files} YAML files, {changes} changes, {args.runs} runs (medians):")
    print(f"  whole process {statistics.median(walls):.2f}s (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  scan phase    {statistics.median(scans):.2f}s   rewrite phase {statistics.median(rewrites):.2f}s")
    print(f"  peak RSS      {statistics.median(rss) / 1024:.0f} MiB (max {max(rss) / 1024:.0f})")


if __name__ == "__main__":
    main()
