"""Benchmark `automator plan` over 20 ``newestBuild`` policies with 50 ms added to every registry request.

    python3 benchmarks/newest_latency_bench.py [--runs 5] [--vs REF] [--latency 0.05]

Each policy tracks its own repository of 20 tags with distinct build times, so choosing asks
for every tag's image config (a manifest and a config blob each). A small reverse proxy in
front of Debian's docker-registry sleeps ``--latency`` seconds before forwarding each request,
as a registry across a WAN would answer. Each run is a whole `automator plan --output json`
process; printed are the medians of its wall time and peak RSS, and the number of requests
the proxy saw per run. With ``--vs REF`` the same runs are made, interleaved, with the
checkout of git revision REF (e.g. the commit before a change), and the ratio is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automator.demo.registry import LocalRegistry  # noqa: E402
from automator.demo.seed import RegistryStore  # noqa: E402

POLICIES = 20
TAGS = 20


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops a burst of connects (1 s SYN retries)
    upstream: tuple[str, int]
    latency: float
    count: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, format: str, *args: object) -> None:
        return

    def _forward(self) -> None:
        self.server.count += 1
        time.sleep(self.server.latency)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        for attempt in (1, 2):  # a kept-alive connection the registry closed is opened again once
            conn = _upstream(self.server.upstream)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                _LOCAL.conn = None
                if attempt == 2:
                    raise
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_HEAD = do_POST = _forward


_LOCAL = threading.local()


def _upstream(address: tuple[str, int]) -> http.client.HTTPConnection:
    """One kept-alive connection to the registry per proxy thread (one per client connection)."""
    conn: http.client.HTTPConnection | None = getattr(_LOCAL, "conn", None)
    if conn is None:
        conn = _LOCAL.conn = http.client.HTTPConnection(*address, timeout=30)
    return conn


@contextlib.contextmanager
def latency_proxy(upstream: str, latency: float) -> Iterator[_Proxy]:
    host, port = upstream.rsplit(":", 1)
    server = _Proxy(("127.0.0.1", 0), _Handler)
    server.upstream, server.latency, server.count = (host, int(port)), latency, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def write_repo(repo: Path, host: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    docs, lines = [], []
    for i in range(POLICIES):
        image = f"{host}/newest/app-{i:02d}"
        docs.append(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: app-{i:02d}\nspec:\n  image: {image}\n  insecure: true\n"
            "  policy:\n    newestBuild: {}\n"
        )
        lines.append(f'app{i:02d}: {image}:build-00 # {{"$imagepolicy": "app-{i:02d}"}}\n')
    (repo / "policies.yaml").write_text("---\n".join(docs))
    (repo / "values.yaml").write_text("".join(lines))


def run_plan(checkout: Path, repo: Path) -> tuple[float, int]:
    """One whole `automator plan` process of ``checkout``: wall seconds and peak RSS (KiB)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "automator", "plan", "--repo", str(repo), "--output", "json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=checkout)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"plan of {checkout} failed ({status})")
    changes = json.loads(out)["update"]["summary"]["changes"]
    if changes != POLICIES:
        sys.exit(f"expected {POLICIES} changes, the plan of {checkout} has {changes}")
    return wall, rusage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every registry request")
    ap.add_argument("--vs", metavar="REF", help="also time the checkout of this git revision, interleaved")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="newest-bench-") as tmp:
        work = Path(tmp)
        store = RegistryStore(work / "store")
        base = datetime(2024, 1, 1, tzinfo=UTC)
        for i in range(POLICIES):
            for t in range(TAGS):
                store.add_tags(f"newest/app-{i:02d}", [f"build-{t:02d}"], base + timedelta(hours=t))
        checkouts = {"this tree": ROOT}
        if args.vs:
            other = work / "vs"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(other), args.vs], check=True
            )
            checkouts[args.vs] = other
        try:
            with LocalRegistry(work / "store", work) as reg, latency_proxy(reg.host, args.latency) as proxy:
                repo = work / "repo"
                write_repo(repo, f"127.0.0.1:{proxy.server_address[1]}")
                walls: dict[str, list[float]] = {name: [] for name in checkouts}
                rss: dict[str, list[int]] = {name: [] for name in checkouts}
                requests: dict[str, list[int]] = {name: [] for name in checkouts}
                for _ in range(args.runs + 1):  # the first round warms caches and is dropped
                    for name, checkout in checkouts.items():
                        before = proxy.count
                        wall, peak = run_plan(checkout, repo)
                        walls[name].append(wall)
                        rss[name].append(peak)
                        requests[name].append(proxy.count - before)
        finally:
            if args.vs:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "vs")], check=False)
    print(
        f"automator plan, {POLICIES} newestBuild policies x {TAGS} tags, {args.latency * 1000:.0f} ms per request,"
        f" {args.runs} runs (medians)"
    )
    for name in checkouts:
        w = walls[name][1:]
        print(
            f"  {name:<12} {statistics.median(w):6.2f}s (min {min(w):.2f}, max {max(w):.2f}),"
            f" {statistics.median(requests[name][1:]):.0f} registry requests,"
            f" peak RSS {statistics.median(rss[name][1:]) / 1024:.0f} MiB"
        )
    if args.vs:
        ratio = statistics.median(walls["this tree"][1:]) / statistics.median(walls[args.vs][1:])
        print(f"  this tree / {args.vs}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
