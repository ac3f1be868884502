"""Benchmark the automator's service: registry push -> pull request, through a real registry webhook.

    python3 benchmarks/webhook_bench.py [--policies 200] [--runs 3] [--debounce 0.5s] [--state]

Seeds a docker-registry (one repository per policy, tag 1.0.0) whose push notifications go to
the service, builds a config repo with one Deployment per policy pinned at 1.0.0, serves the
fake GitHub with that repo behind it, and starts `automator run` (the service) with a 1h
interval. After the start-up cycle (which lists every repository and opens nothing), one new
tag is pushed over HTTP; the registry notifies the service, which opens the pull request.

Reported (medians over fresh runs): push -> pull request latency (the push itself included,
with the debounce set), the webhook cycle's and the start-up cycle's wall time, repositories
listed by each, and the service's peak RSS (VmHWM) at the end. ``--state`` runs the service with
``--state-dir`` (the state database recording every cycle) and reports its size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_bench import GIT_ENV, make_remote  # noqa: E402

from automator.demo.seed import RegistryStore  # noqa: E402
from tests.servers.fake_github import GITHUB_TOKEN, github_server  # noqa: E402
from tests.servers.registry import free_port, run_registry  # noqa: E402
from tests.servers.registry_push import push_image  # noqa: E402

SECRET = "bench-webhook-secret"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def poll(check: object, deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def metric(text: str, name: str, labels: str) -> float:
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def seconds(cycle: dict[str, str]) -> float:
    return (datetime.fromisoformat(cycle["finished"]) - datetime.fromisoformat(cycle["started"])).total_seconds()


def one_run(work: Path, policies: int, debounce: str, automator: str, state: bool = False) -> dict[str, float]:
    store = RegistryStore(work / "store")  # written to disk: no notification backlog
    for i in range(policies):
        store.add_tags(f"bench/app-{i:03d}", ["1.0.0"])
    port = free_port()
    svc = f"http://127.0.0.1:{port}"
    notify = (f"{svc}/hooks/distribution", {"Authorization": f"Bearer {SECRET}"})
    with run_registry(work / "registry", root=work / "store", notify=notify) as reg:
        remote, _ = make_remote(work, reg.host, policies)
        (work / "secret").write_text(SECRET)
        with github_server() as gh:
            gh.tokens[GITHUB_TOKEN] = "automator-bot"
            repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
            cmd = [automator, "run", "--git-url", str(remote), "--cache-dir", str(work / "cache")]
            cmd += ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"]
            cmd += ["--forge-token-env", "BENCH_TOKEN", "--output", "json", "--interval", "1h"]
            cmd += ["--listen", f"127.0.0.1:{port}", "--webhook-secret-file", str(work / "secret")]
            cmd += ["--webhook-debounce", debounce]
            if state:
                cmd += ["--state-dir", str(work / "state")]
            env = {**os.environ, **GIT_ENV, "BENCH_TOKEN": GITHUB_TOKEN}
            with open(work / "service.log", "wb") as log:
                proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

            def status() -> dict[str, Any]:
                doc: dict[str, Any] = json.loads(get(f"{svc}/status"))
                return doc

            def listed() -> float:
                return metric(get(f"{svc}/metrics"), "automator_registry_listings_total", 'source="registry"')

            try:
                poll(lambda: (status()["lastCycle"] or {}).get("finished"), 120, "the start-up cycle")
                full = status()["lastCycle"]
                assert full["outcome"] == "ok" and not repo.pulls, full
                listed_before = listed()
                started = time.monotonic()
                push_image(reg.base_url, "bench/app-007", "1.1.0")
                poll(lambda: len(repo.pulls) == 1, 60, "the pull request")
                latency = time.monotonic() - started
                poll(lambda: status()["lastCycle"]["finished"] and not status()["running"], 60, "the cycle end")
                hook = status()["lastCycle"]
                assert hook["trigger"] == "webhook", hook
                vm = Path(f"/proc/{proc.pid}/status").read_text()
                hwm = re.search(r"VmHWM:\s+(\d+) kB", vm)
                return {
                    "latency": latency,
                    "hook_wall": seconds(hook),
                    "full_wall": seconds(full),
                    "full_listed": listed_before,
                    "hook_listed": listed() - listed_before,
                    "rss_kib": float(hwm.group(1)) if hwm else 0.0,
                    "state_kib": sum(f.stat().st_size for f in (work / "state").glob("state.db*")) / 1024,
                }
            finally:
                proc.terminate()
                proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--debounce", default="0.5s")
    ap.add_argument("--state", action="store_true", help="run the service with --state-dir")
    args = ap.parse_args()
    automator = str(Path(sys.executable).parent / "automator")
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        runs = []
        for run in range(args.runs):
            work = Path(tmp) / f"run-{run}"
            work.mkdir()
            runs.append(one_run(work, args.policies, args.debounce, automator, args.state))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    lat = [r["latency"] for r in runs]
    print(f"automator run (service), {args.policies} policies, one push via a registry webhook, {args.runs} runs:")
    print(f"  push -> pull request: median {med('latency'):.2f}s (min {min(lat):.2f}, max {max(lat):.2f})")
    print(f"    (the push over HTTP and --webhook-debounce {args.debounce} included)")
    print(f"  webhook cycle: median {med('hook_wall'):.2f}s, {med('hook_listed'):.0f} repository listed")
    print(f"  start-up cycle (every repository): median {med('full_wall'):.2f}s, {med('full_listed'):.0f} listed")
    print(f"  peak RSS of the service: median {med('rss_kib') / 1024:.0f} MiB")
    if args.state:
        print(f"  state database (--state-dir): median {med('state_kib'):.0f} KiB")


if __name__ == "__main__":
    main()
