"""Benchmark the rewrite phase: a generated 10,000-file config repo holding 2,000 image refs.

    python3 benchmarks/rewrite_bench.py                 # generate in a temp dir, 5 runs
    python3 benchmarks/rewrite_bench.py --runs 9 --write
    python3 benchmarks/rewrite_bench.py --keep /tmp/bench-repo   # keep the generated repo

Each run is a fresh process (imports and all), so the figures include a cold start; the
process times ``update_tree`` alone (the rewrite phase: walk, pre-filter, parse, splice,
verify) and reports its peak RSS.  Printed: the median rewrite-phase time, the median
whole-process time and the largest peak RSS over the runs.  Targets (issue 3): rewrite phase
< 3 s and peak RSS < 200 MB on 2 cores.

The repository mixes what real config repos hold: Deployments and CronJobs with setter
markers, kustomizations, Helm values and HelmReleases (marked and marker-less), and a large
majority of files with no image at all (ConfigMaps, Services, RBAC, NetworkPolicies).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 10_000
REFS = 2_000
POLICIES = 200
MARKER_LESS_EVERY = 4  # one policy in four is marker-less


def policy_image(i: int) -> str:
    return f"registry.example.com/team{i % 17}/service-{i}"


def deployment(name: str, ns: str, images: list[tuple[str, str, int]]) -> str:
    containers = []
    for n, (image, tag, pol) in enumerate(images):
        marker = f'  # {{"$imagepolicy": "flux-system:policy-{pol}"}}' if pol % MARKER_LESS_EVERY else ""
        containers.append(
            f"        - name: c{n}\n"
            f"          image: {image}:{tag}{marker}\n"
            f"          ports:\n"
            f"            - containerPort: {8080 + n}\n"
            f"          resources:\n"
            f"            requests: {{cpu: 50m, memory: 64Mi}}\n"
            f"            limits: {{cpu: 500m, memory: 256Mi}}\n"
            f"          env:\n"
            f"            - name: LOG_LEVEL\n"
            f'              value: "info"\n'
        )
    return (
        f"# {name}: generated for the rewrite benchmark\n"
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
        f"  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: bench\n"
        f"spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n"
        f"  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n"
        f"    spec:\n      serviceAccountName: {name}\n      containers:\n" + "".join(containers)
    )


def values(images: list[tuple[str, str, int]]) -> str:
    out = ["# Helm values\nreplicaCount: 1\n"]
    for n, (image, tag, pol) in enumerate(images):
        repo, _, name = image.partition("/")
        if pol % MARKER_LESS_EVERY:
            out.append(
                f"component{n}:\n  image:\n    registry: {repo}\n    repository: {name}\n"
                f'    tag: "{tag}" # {{"$imagepolicy": "flux-system:policy-{pol}:tag"}}\n'
                f"    pullPolicy: IfNotPresent\n  service:\n    port: 80\n"
            )
        else:
            out.append(f"component{n}:\n  image:\n    repository: {image}\n    tag: {tag}\n  service:\n    port: 80\n")
    return "".join(out)


def configmap(i: int) -> str:
    data = "".join(f"  key-{k}: value-{i}-{k}\n" for k in range(20))
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: ns-{i % 40}\n"
        f"  labels:\n    app: app-{i}\ndata:\n{data}"
    )


def service(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: ns-{i % 40}\nspec:\n"
        f"  selector:\n    app: app-{i}\n  ports:\n    - name: http\n      port: 80\n      targetPort: 8080\n"
        f"---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: svc-{i}\n  namespace: ns-{i % 40}\n"
    )


def generate(root: Path, seed: int = 3) -> None:
    rng = random.Random(seed)
    refs = []
    for r in range(REFS):
        pol = r % POLICIES
        refs.append((policy_image(pol), f"1.{rng.randint(0, 20)}.{rng.randint(0, 9)}", pol))
    rng.shuffle(refs)
    written = 0
    # 1,000 files carry the 2,000 references: 700 Deployments and 300 Helm values files.
    for f in range(1000):
        chunk = refs[2 * f : 2 * f + 2]
        team = root / "apps" / f"team-{f % 25}"
        team.mkdir(parents=True, exist_ok=True)
        if f < 700:
            (team / f"deploy-{f}.yaml").write_text(deployment(f"app-{f}", f"ns-{f % 40}", chunk))
        else:
            (team / f"values-{f}.yaml").write_text(values(chunk))
        written += 1
    i = 0
    while written < FILES:
        area = root / "infra" / f"area-{i % 50}"
        area.mkdir(parents=True, exist_ok=True)
        (area / f"res-{i}.yaml").write_text(configmap(i) if i % 2 else service(i))
        written += 1
        i += 1


def decisions_json() -> str:
    items = [
        {
            "name": f"flux-system:policy-{p}",
            "image": policy_image(p),
            "chosen": f"{policy_image(p)}:2.0.{p % 7}",
            "markerLess": p % MARKER_LESS_EVERY == 0,
        }
        for p in range(POLICIES)
    ]
    return json.dumps(items)


def run_once(repo: Path, spec: str, write: bool) -> None:
    """The child process: build decisions, time update_tree, print figures as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from automator.policy.model import Policy, SemverChoice, SourceLocation
    from automator.refs import parse_reference
    from automator.update import Decision, Decisions, update_tree

    decisions = Decisions.of(
        Decision(
            Policy(
                name=item["name"],
                image=parse_reference(item["image"]),
                choice=SemverChoice(">=0"),
                source=SourceLocation("bench", 1),
                marker_less=item["markerLess"],
            ),
            parse_reference(item["chosen"]),
        )
        for item in json.loads(spec)
    )
    start = time.perf_counter()
    result = update_tree(repo, decisions, write=write)
    elapsed = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "rss_mb": rss_kb / 1024,
                "scanned": result.scanned,
                "parsed": result.parsed,
                "files": len(result.files),
                "changes": len(result.changes),
                "warnings": len(result.warnings),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the files (each run on a fresh copy)")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run_once(args.child, sys.stdin.read(), args.write)
        return 0

    base = args.keep or Path(tempfile.mkdtemp(prefix="rewrite-bench-"))
    template = base / "template"
    if not template.exists():
        t0 = time.perf_counter()
        generate(template)
        print(f"generated {FILES} files with {REFS} image references in {time.perf_counter() - t0:.1f}s: {template}")
    spec = decisions_json()
    runs = []
    try:
        for _ in range(args.runs):
            repo = template
            if args.write:
                repo = base / "work"
                shutil.rmtree(repo, ignore_errors=True)
                shutil.copytree(template, repo)
            cmd = [sys.executable, __file__, "--child", str(repo)] + (["--write"] if args.write else [])
            t0 = time.perf_counter()
            out = subprocess.run(cmd, input=spec, capture_output=True, text=True, check=True).stdout
            wall = time.perf_counter() - t0
            figures = json.loads(out.strip().splitlines()[-1])
            figures["wall"] = wall
            runs.append(figures)
            print(
                f"  run: rewrite {figures['seconds']:.2f}s, process {wall:.2f}s, peak RSS {figures['rss_mb']:.0f} MB, "
                f"{figures['parsed']}/{figures['scanned']} files parsed, {figures['files']} changed, "
                f"{figures['changes']} changes, {figures['warnings']} warnings"
            )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(
        f"rewrite phase median {statistics.median(r['seconds'] for r in runs):.2f}s "
        f"(whole process median {statistics.median(r['wall'] for r in runs):.2f}s), "
        f"peak RSS max {max(r['rss_mb'] for r in runs):.0f} MB over {len(runs)} runs, {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
