"""Benchmark one automator against three shards (``--leader-elect --shards 3``), side by side.

    python3 benchmarks/shards_bench.py [--sizes 1000,10000] [--tags 100] [--cycles 3]

For each size P (policies): a docker-registry store seeded on /dev/shm with P/2 repositories of
``--tags`` tags each (benchmarks/registry_seed.py, one template repository linked), and a bare
config repo with two policies per repository (two files per directory, every field already at
the newest tag: each cycle lists every repository, chooses, and finds nothing to change).
Then, in one run:

* **one process**: ``automator run --forge none --interval 1s`` without leader election;
* **three shards**: three such processes with ``--leader-elect --shards 3``, their Leases on
  the envtest kube-apiserver (../shared/envtest), once each holds one shard.

Cycle times and CPU seconds (the process's threads and its git children: on this 2-core machine
three replicas share two cores, so the CPU per replica is what it would cost on a node of its own)
come from each process's ``/status`` (every cycle's start, end and ``cpuSeconds``, polled), after
the first cycle (the clone) and, for the shards, after they settled; the peak RSS (VmHWM) of each
process over the cycles measured (reset through /proc/PID/clear_refs once settled). Reported per
size: the one process's median cycle and peak RSS; per shard replica, its median cycle, its
policies and its peak RSS; and the sharded cycle (the slowest replica's median). Every run is
checked: each replica's cycles scanned only its shard's policies, together every policy once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from registry_seed import seed_registry  # noqa: E402

from automator.demo.registry import LocalRegistry  # noqa: E402
from tests.servers.kube import NS, start_apiserver  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
DEADLINE = 1800.0


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_remote(work: Path, host: str, repos: Sequence[str], newest: str) -> Path:
    seed = work / "seed"
    for i, repo in enumerate(repos):
        app = seed / "apps" / f"app-{i:05d}"
        app.mkdir(parents=True)
        image = f"{host}/{repo}"
        docs, containers = [], []
        for side in ("a", "b"):
            name = f"app-{i:05d}-{side}"
            docs.append(
                "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
                f"metadata:\n  name: {name}\n  namespace: apps\nspec:\n  image: {image}\n  insecure: true\n"
                "  policy:\n    semver:\n      range: '^1'\n"
            )
            containers.append(
                f'        - name: {side}\n          image: {image}:{newest} # {{"$imagepolicy": "apps:{name}"}}\n'
            )
        (app / "policy.yaml").write_text("---\n".join(docs))
        (app / "deploy.yaml").write_text(
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i:05d}\n  namespace: apps\n"
            "spec:\n  template:\n    spec:\n      containers:\n" + "".join(containers)
        )
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "seed", cwd=seed)
    remote = work / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(remote), cwd=work)
    return remote


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as resp:
        doc: dict[str, Any] = json.load(resp)
        return doc


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Replica:
    def __init__(self, name: str, argv: list[str], work: Path) -> None:
        self.name, self.port = name, free_port()
        self.log = work / f"{name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [*argv, "--listen", f"127.0.0.1:{self.port}", "--cache-dir", str(work / f"cache-{name}")],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env={**os.environ, **GIT_ENV},
            )
        self.cycles: dict[str, tuple[float, int, float]] = {}  # started -> (seconds, policies, CPU seconds)

    def poll(self) -> dict[str, Any] | None:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.name} exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            doc = status(self.port)
        except OSError:
            return None
        last = doc.get("lastCycle") or {}
        if last.get("finished") and last.get("outcome") == "ok" and last["started"] not in self.cycles:
            took = datetime.fromisoformat(last["finished"]) - datetime.fromisoformat(last["started"])
            scanned = len((last.get("result") or {}).get("scan") or [])
            self.cycles[last["started"]] = (took.total_seconds(), scanned, float(last.get("cpuSeconds") or 0))
        return doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def held(doc: dict[str, Any] | None) -> set[int]:
    leader = (doc or {}).get("leader") or {}
    return {s["shard"] for s in leader.get("shards") or [] if s["held"]}


def wait(what: str, check: Any, replicas: Sequence[Replica]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        docs = [r.poll() for r in replicas]
        if check(docs):
            return
        time.sleep(0.5)  # poll interval (a /status of 10,000 policies is not free), bounded by the deadline
    raise SystemExit(f"timed out waiting for {what}")


def measure(replicas: Sequence[Replica], cycles: int, *, sharded: bool) -> list[dict[str, Any]]:
    """Settle, reset the peaks, then collect ``cycles`` more cycles of each replica."""
    if sharded:
        wait("one shard each", lambda docs: all(len(held(d)) == 1 for d in docs), replicas)
    wait("a first cycle each", lambda docs: all(r.cycles for r in replicas), replicas)
    marks = {r.name: set(r.cycles) for r in replicas}
    # a cycle that started before this point may have run with another share of the shards
    wait(
        "a cycle each started after settling",
        lambda docs: all(set(r.cycles) - marks[r.name] for r in replicas),
        replicas,
    )
    for r in replicas:
        reset_peak(r.proc.pid)
    marks = {r.name: set(r.cycles) for r in replicas}
    wait(
        f"{cycles} measured cycles each",
        lambda docs: all(len(set(r.cycles) - marks[r.name]) >= cycles for r in replicas),
        replicas,
    )
    out = []
    for r in replicas:
        measured = [r.cycles[k] for k in sorted(set(r.cycles) - marks[r.name])][:cycles]
        out.append(
            {
                "replica": r.name,
                "median_s": round(statistics.median(s for s, _, _ in measured), 2),
                "min_s": round(min(s for s, _, _ in measured), 2),
                "max_s": round(max(s for s, _, _ in measured), 2),
                "cpu_s": round(statistics.median(c for _, _, c in measured), 2),
                "policies": sorted({n for _, n, _ in measured}),
                "peak_rss_mib": round(peak_rss_kib(r.proc.pid) / 1024, 1),
            }
        )
    return out


@contextmanager
def replicas_of(argvs: list[tuple[str, list[str]]], work: Path) -> Iterator[list[Replica]]:
    made = [Replica(name, argv, work) for name, argv in argvs]
    try:
        yield made
    finally:
        for r in made:
            r.stop()


def bench(size: int, tags: int, cycles: int, *, top: Path, kubeconfig: Path, namespace_of: Any) -> dict[str, Any]:
    work = top / f"size-{size}"
    work.mkdir()
    repos = size // 2
    seeded = seed_registry(work / "store", repos, tags, share=True)
    newest = seeded.tags[-1]
    result: dict[str, Any] = {"policies": repos * 2, "repositories": repos, "tags": tags}
    with LocalRegistry(work / "store", work) as registry:
        remote = make_remote(work, registry.host, seeded.repositories, newest)
        base = [
            sys.executable, "-m", "automator", "--log-level", "warning", "run", "--git-url", str(remote),
            "--forge", "none", "--interval", "1s", "--output", "json",
        ]  # fmt: skip
        with replicas_of([("single", base)], work) as [single]:
            [one] = measure([single], cycles, sharded=False)
        result["one_process"] = one
        ns = namespace_of(f"bench-{size}")
        lease = [
            "--leader-elect", "--shards", "3", "--lease-namespace", ns, "--lease-duration", "6s",
            "--lease-kubeconfig", str(kubeconfig),
        ]  # fmt: skip
        argvs = [(f"shard-{x}", [*base, *lease, "--lease-identity", f"replica-{x}"]) for x in "abc"]
        with replicas_of(argvs, work) as group:
            shards = measure(group, cycles, sharded=True)
        result["three_shards"] = shards
        scanned = [p for s in shards for p in s["policies"]]
        if sum(scanned) != repos * 2 or any(len(s["policies"]) != 1 for s in shards):
            raise SystemExit(f"the shards did not split the {repos * 2} policies once each: {shards}")
        result["sharded_cycle_s"] = max(s["median_s"] for s in shards)
    shutil.rmtree(work / "store", ignore_errors=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="policy counts, comma-separated")
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3, help="cycles measured per process")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with ExitStack() as stack:
        top = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shards-bench-", dir=shm)))
        kube = stack.enter_context(start_apiserver(top / "kube"))
        from automator.sync.cluster import KubeCluster

        cluster = KubeCluster.connect(str(kube.kubeconfig), pool_size=1, timeout=10.0)

        def namespace_of(name: str) -> str:
            cluster.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            return name

        results = [
            bench(size, args.tags, args.cycles, top=top, kubeconfig=kube.kubeconfig, namespace_of=namespace_of)
            for size in sizes
        ]
        cluster.close()
    print(json.dumps(results, indent=2))
    for r in results:
        one = r["one_process"]
        print(
            f"{r['policies']:>6} policies / {r['repositories']} repositories x {r['tags']} tags: one process"
            f" {one['median_s']} s ({one['cpu_s']} s CPU), {one['peak_rss_mib']} MiB;"
            f" three shards {r['sharded_cycle_s']} s"
            f" (replicas {', '.join(str(s['median_s']) for s in r['three_shards'])} s,"
            f" CPU {', '.join(str(s['cpu_s']) for s in r['three_shards'])} s;"
            f" {', '.join(str(s['policies'][0]) for s in r['three_shards'])} policies;"
            f" {', '.join(str(s['peak_rss_mib']) for s in r['three_shards'])} MiB)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
