"""How long the registry client takes to give up on a dead registry, and how many connections it tries.

    python benchmarks/dead_registry_bench.py [--scenario hung|blackhole|refused] [--repos 64]
                                             [--read-timeout S] [--connect-timeout S] [--retries N]

Lists ``--repos`` repositories concurrently (as a scan does) on one dead host, with the
client's default config unless a flag says otherwise, and prints the wall time until the
last listing failed, the connections the host saw and the requests the client sent:

* ``blackhole``  accepts TCP connections and never answers (a hung registry or proxy)
* ``refused``    a port where every connection is refused
* ``hung``       answers the ``/v2/`` ping, then never answers a tag list
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automator.refs import parse_reference  # noqa: E402
from automator.registry import RegistryClient, RegistryConfig, RetryPolicy, Timeouts  # noqa: E402
from tests.servers.faults import BlackholeServer, FaultServer, RefusedPort  # noqa: E402


async def give_up(host: str, repos: int, config: RegistryConfig) -> tuple[float, int, Counter[str]]:
    images = [parse_reference(f"{host}/slow/app-{i:03d}") for i in range(repos)]
    async with RegistryClient(config) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(client.list_tags(image) for image in images), return_exceptions=True)
        wall = time.perf_counter() - started
    kinds: Counter[str] = Counter()
    for result in results:
        if not isinstance(result, BaseException):
            kinds["listed"] += 1
        elif "not retried again" in str(result):
            kinds[f"{type(result).__name__} (not retried again)"] += 1
        else:
            kinds[type(result).__name__] += 1
    return wall, client.requests, kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=("hung", "blackhole", "refused"), default="blackhole")
    ap.add_argument("--repos", type=int, default=64)
    defaults = Timeouts()
    ap.add_argument("--read-timeout", type=float, default=defaults.read)
    ap.add_argument("--connect-timeout", type=float, default=defaults.connect)
    ap.add_argument("--retries", type=int, default=RetryPolicy().retries)
    args = ap.parse_args()
    config = RegistryConfig(
        insecure=True,
        timeouts=Timeouts(connect=args.connect_timeout, read=args.read_timeout),
        retry=RetryPolicy(retries=args.retries),
    )
    if args.scenario == "blackhole":
        with BlackholeServer(lifetime=7200) as hole:
            wall, requests, kinds = asyncio.run(give_up(hole.host, args.repos, config))
            connections = hole.accepted
    elif args.scenario == "refused":
        with RefusedPort() as port:
            wall, requests, kinds = asyncio.run(give_up(port.host, args.repos, config))
            connections = 0
    else:
        server = FaultServer(slow_seconds=7200, lifetime=7200)
        server.start()
        try:
            wall, requests, kinds = asyncio.run(give_up(server.host, args.repos, config))
            connections = len(server.requests_to("/v2/slow/"))
        finally:
            server.stop()
    print(
        f"scenario={args.scenario} repos={args.repos} read={args.read_timeout:g}s connect={args.connect_timeout:g}s "
        f"retries={args.retries}: gave up after {wall:.1f}s; {connections} connections/requests seen by the host, "
        f"{requests} requests sent; outcomes {dict(kinds)}"
    )


if __name__ == "__main__":
    main()
