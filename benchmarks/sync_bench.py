"""Benchmark `automator sync` against `kubectl apply --server-side` on the envtest control plane.

    python3 benchmarks/sync_bench.py [--runs 3] [--noop-repeats 3] [--objects 1000] [--namespaces 50]
                                     [--rss-objects 5000]

One kube-apiserver + etcd (from ../shared/envtest) serves both tools in the same run. Each run
generates the same tree twice (ConfigMaps, Services and Deployments spread over N namespaces,
plus the Namespace objects) under fresh names, one copy per tool, in a local git repository
for the agent and a plain directory for kubectl, and alternates which tool goes first.

Measured per tool and run, as whole processes:
  * first sync wall time (`automator sync --once` vs `kubectl apply --server-side -R -f`);
  * no-op resync wall time (the median of --noop-repeats back-to-back resyncs: a half-second
    process is at the mercy of the machine's load) and write requests. Writes are counted by the
    API server itself (the delta of apiserver_request_total for POST/PUT/PATCH/DELETE, dry runs
    excluded, on namespaces/configmaps/services/deployments), not by the agent's own bookkeeping;
  * the agent's peak RSS (ru_maxrss of the child), and separately at --rss-objects objects;
  * the service-mode resync: one agent process syncing the same commit again, timed inside
    the process (what every --interval costs a running agent, without interpreter start-up).
Medians over --runs are printed as a table and, with --json, as one JSON object, with the load
average before and after (other work on the machine shows up in every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"}
RESOURCES = {"namespaces", "configmaps", "services", "deployments"}


def tree(root: Path, prefix: str, objects: int, namespaces: int) -> None:
    """ConfigMaps, Services and Deployments (round-robin) across ``namespaces``; one file per namespace."""
    per_ns: dict[int, list[str]] = {i: [] for i in range(namespaces)}
    for n in range(objects):
        ns_index = n % namespaces
        ns = f"{prefix}-{ns_index:03d}"
        kind = n % 3
        name = f"obj-{n:05d}"
        if kind == 0:
            doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n"
            doc += "".join(f"  key{k}: value-{n}-{k}\n" for k in range(5))
        elif kind == 1:
            doc = (
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
                f"  selector: {{app: {name}}}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
                "    protocol: TCP\n"
            )
        else:
            doc = (
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
                f"  labels: {{app: {name}}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n"
                f"  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n"
                f"      - name: app\n        image: registry.example/app:1.{n % 7}.0\n"
                f"        ports: [{{containerPort: 8080}}]\n"
                f"        resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}\n"
            )
        per_ns[ns_index].append(doc)
    root.mkdir(parents=True, exist_ok=True)
    for i, docs in per_ns.items():
        ns = f"{prefix}-{i:03d}"
        text = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n" + "---\n".join(docs)
        (root / f"{ns}.yaml").write_text(text)


def git_repo(src: Path, work: Path) -> str:
    bare = work / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}  # fmt: skip
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"],
                 ["push", "-q", str(bare), "HEAD:refs/heads/main"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=src, env=env, check=True)
    return str(bare)


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{err.decode()[-3000:]}\n{out.decode()[-2000:]}"
        )
    return wall, usage.ru_maxrss // 1024, out.decode()


_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def api_writes(url: str, token: str, ca: Path) -> int:
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        text = resp.read().decode()
    total = 0
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in RESOURCES and not labels.get("dry_run"):
            total += int(float(m["value"]))
    return total


SERVICE_RESYNC = """
import argparse, json, sys, time
from automator.sync.command import add_arguments, config_from
from automator.sync.runner import Runner
parser = argparse.ArgumentParser()
add_arguments(parser)
runner = Runner(config_from(parser.parse_args(sys.argv[1:])).runner)
runner.once()
times = []
for _ in range(3):
    start = time.perf_counter()
    result = runner.once()
    times.append(time.perf_counter() - start)
    assert result.ok and result.writes == 0, (result.errors, result.writes)
print(json.dumps(sorted(times)[1]))
"""


class Bench:
    def __init__(self, server: Any, work: Path) -> None:
        self.server = server
        self.work = work
        self.ca = server.workdir / "certs" / "apiserver.crt"

    def writes(self) -> int:
        return api_writes(self.server.url, self.server.token, self.ca)

    def agent(self, url: str, name: str, inventory_ns: str) -> list[str]:
        return [
            sys.executable, "-m", "automator.sync", "--once", "--output", "json",
            "--git-url", url, "--branch", "main", "--kubeconfig", str(self.server.kubeconfig),
            "--name", name, "--inventory-namespace", inventory_ns,
            "--cache-dir", str(self.work / "cache"),
        ]  # fmt: skip

    def kubectl(self, src: Path) -> list[str]:
        return ["kubectl", "--kubeconfig", str(self.server.kubeconfig), "apply", "--server-side", "-R", "-f", str(src)]

    def measure(self, cmd: list[str]) -> dict[str, Any]:
        before = self.writes()
        wall, rss, out = timed(cmd)
        return {"wall": wall, "rss_mb": rss, "writes": self.writes() - before, "out": out}

    def measure_noop(self, cmd: list[str], repeats: int) -> dict[str, Any]:
        samples = [self.measure(cmd) for _ in range(max(1, repeats))]
        middle = sorted(samples, key=lambda m: m["wall"])[len(samples) // 2]
        return {**middle, "writes": sum(m["writes"] for m in samples)}

    def one_run(self, index: int, objects: int, namespaces: int, noop_repeats: int = 1) -> dict[str, dict[str, Any]]:
        run_dir = self.work / f"run{index}"
        a_src, k_src = run_dir / "agent-src", run_dir / "kubectl-src"
        tree(a_src, f"r{index}a", objects, namespaces)
        tree(k_src, f"r{index}k", objects, namespaces)
        url = git_repo(a_src, run_dir)
        agent_cmd = self.agent(url, f"bench{index}", "default")
        order = ["agent", "kubectl"] if index % 2 == 0 else ["kubectl", "agent"]
        out: dict[str, dict[str, Any]] = {}
        for tool in order:
            cmd = agent_cmd if tool == "agent" else self.kubectl(k_src)
            first = self.measure(cmd)
            noop = self.measure_noop(cmd, noop_repeats if tool == "agent" else 1)  # kubectl's takes seconds
            if tool == "agent":
                actions = {o["action"] for o in json.loads(noop["out"])["objects"]}
                assert actions == {"unchanged"}, actions
            out[tool] = {"first": first, "noop": noop}
        _, _, text = timed([sys.executable, "-c", SERVICE_RESYNC, *agent_cmd[3:]])
        out["agent"]["service"] = {"wall": float(text)}
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--noop-repeats", type=int, default=3, help="no-op resyncs per run (median taken)")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--rss-objects", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="also print the medians as JSON")
    args = parser.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("kubectl is needed on PATH for the side-by-side comparison")

    from tests.servers.kube import start_apiserver

    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    try:
        with start_apiserver(work / "envtest") as server:
            bench = Bench(server, work)
            load_before = os.getloadavg()
            runs = [bench.one_run(i, args.objects, args.namespaces, args.noop_repeats) for i in range(args.runs)]
            load_after = os.getloadavg()
            rss_dir = work / "rss"
            tree(rss_dir / "src", "rss", args.rss_objects, max(args.namespaces, args.rss_objects // 50))
            rss_cmd = bench.agent(git_repo(rss_dir / "src", rss_dir), "rss", "default")
            rss_first = bench.measure(rss_cmd)
            rss_noop = bench.measure(rss_cmd)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(tool: str, phase: str, key: str) -> float:
        return float(statistics.median(r[tool][phase][key] for r in runs))

    summary = {
        "objects": args.objects + args.namespaces,
        "runs": args.runs,
        "agent_first_s": med("agent", "first", "wall"),
        "kubectl_first_s": med("kubectl", "first", "wall"),
        "agent_noop_s": med("agent", "noop", "wall"),
        "agent_service_resync_s": med("agent", "service", "wall"),
        "kubectl_noop_s": med("kubectl", "noop", "wall"),
        "agent_noop_writes": med("agent", "noop", "writes"),
        "kubectl_noop_writes": med("kubectl", "noop", "writes"),
        "agent_first_writes": med("agent", "first", "writes"),
        "agent_peak_rss_mb": med("agent", "first", "rss_mb"),
        "rss_objects": args.rss_objects + max(args.namespaces, args.rss_objects // 50),
        "rss_first_peak_mb": rss_first["rss_mb"],
        "rss_noop_peak_mb": rss_noop["rss_mb"],
        "rss_first_s": rss_first["wall"],
        "rss_noop_s": rss_noop["wall"],
        "rss_noop_writes": rss_noop["writes"],
        "noop_repeats": args.noop_repeats,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }
    summary["first_ratio_vs_kubectl"] = summary["agent_first_s"] / summary["kubectl_first_s"]
    summary["noop_ratio_vs_first"] = summary["agent_noop_s"] / summary["agent_first_s"]
    summary["service_resync_ratio_vs_first"] = summary["agent_service_resync_s"] / summary["agent_first_s"]
    rows = [
        ("", "automator sync", "kubectl --server-side"),
        ("first sync (s)", f"{summary['agent_first_s']:.2f}", f"{summary['kubectl_first_s']:.2f}"),
        ("no-op resync (s)", f"{summary['agent_noop_s']:.2f}", f"{summary['kubectl_noop_s']:.2f}"),
        ("service resync (s)", f"{summary['agent_service_resync_s']:.2f}", "-"),
        ("no-op writes", f"{summary['agent_noop_writes']:.0f}", f"{summary['kubectl_noop_writes']:.0f}"),
        ("peak RSS (MB)", f"{summary['agent_peak_rss_mb']:.0f}", "-"),
    ]
    print(f"{summary['objects']} objects, median of {args.runs} runs (per-run walls below)")
    print(f"  load average 1/5/15 min: before {summary['load_before']}, after {summary['load_after']}")
    for r in rows:
        print(f"  {r[0]:<18} {r[1]:>15} {r[2]:>22}")
    print(f"  first sync ratio vs kubectl: {summary['first_ratio_vs_kubectl']:.2f}x (target <= 1.0x)")
    print(f"  no-op / first sync:          {summary['noop_ratio_vs_first']:.2f}x (target <= 0.25x), whole process")
    print(f"  service resync / first sync: {summary['service_resync_ratio_vs_first']:.2f}x, inside a running agent")
    print(
        f"{summary['rss_objects']} objects: peak RSS first sync {rss_first['rss_mb']} MB ({rss_first['wall']:.1f}s),"
        f" no-op {rss_noop['rss_mb']} MB ({rss_noop['wall']:.1f}s, {rss_noop['writes']} writes) (target < 200 MB)"
    )
    for i, r in enumerate(runs):
        walls = ", ".join(f"{t} {p} {r[t][p]['wall']:.2f}s" for t in ("agent", "kubectl") for p in ("first", "noop"))
        print(f"  run {i}: {walls}")
    if args.json:
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
