"""Benchmark: the dashboard's first page over 1,000 policies and 3 clusters (targets: under 300 ms
on the server, under 500 KB).

Seeds a state database as a service leaves it (``status_bench.seed``: every policy with its
choice, pull requests, merges and three clusters' reports), serves the dashboard from it on a
real loopback listener (the service's own :class:`~automator.httpd.Listener` and
:class:`~automator.dashboard.Dashboard`), and times ``GET /`` ``--runs`` times each way:

* **after a cycle**: the model built (as the service does after each cycle), the page rendered
  per request -- what a user opening the dashboard waits for;
* **cold**: no model yet (the first request after a start-up, or after the database changed
  with no cycle to build it), so the request builds the model and renders.

It prints the median and worst server time (the handler, measured inside the process) and the
wall time of the HTTP request, the page's size, and the process's peak RSS.

    python3 benchmarks/dashboard_bench.py [--policies 1000] [--clusters 3] [--tags 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from status_bench import seed

    from automator.dashboard import Dashboard, state_source
    from automator.httpd import Listener, Request, Response

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        seed(directory, args.policies, args.clusters, args.tags)
        dashboard = Dashboard(state_source(directory), refresh=15)
        served: list[float] = []

        def page(request: Request) -> Response | None:
            started = time.perf_counter()
            try:
                return dashboard.page(request)
            finally:
                served.append(time.perf_counter() - started)

        listener = Listener("127.0.0.1:0", lambda path: None, lambda p, h, b: Response(404, ""), page=page)
        listener.start()
        url = f"http://127.0.0.1:{listener.address[1]}/"
        try:
            results = {}
            for mode in ("after a cycle", "cold"):
                walls, size = [], 0
                served.clear()
                for _ in range(args.runs):
                    if mode == "cold":
                        dashboard._model = None  # no model yet: the request builds it
                    else:
                        dashboard.warm()  # what the service does after each cycle
                    started = time.perf_counter()
                    with urllib.request.urlopen(url, timeout=30) as answer:
                        body = answer.read()
                    walls.append(time.perf_counter() - started)
                    size = len(body)
                results[mode] = (list(served), walls, size)
        finally:
            listener.close()

    print(f"dashboard GET /: {args.policies} policies, {args.clusters} clusters, median of {args.runs} (worst)")
    for mode, (server, walls, size) in results.items():
        print(
            f"  {mode:14} server {statistics.median(server) * 1000:6.1f} ms ({max(server) * 1000:.1f})"
            f"  HTTP wall {statistics.median(walls) * 1000:6.1f} ms ({max(walls) * 1000:.1f})"
            f"  page {size / 1024:.0f} KiB"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of the process {rss:.0f} MiB (targets: server < 300 ms, page < 500 KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
