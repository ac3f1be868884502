"""Benchmark `automator scan` with signature verification against the same scan without it.

    python3 benchmarks/verify_bench.py [--repos 100] [--tags 20] [--runs 7] [--scheme legacy|bundle]
                                       [--digest-reflection Never|IfNotPresent|Always]

Starts Debian's docker-registry on loopback over an empty store, pushes ``--repos`` repositories of
``--tags`` tags each and signs every repository's newest tag as cosign does (``legacy``: the
``sha256-<hex>.sig`` tag; ``bundle``: a v0.3 bundle in the referrers tag schema) with one ECDSA
P-256 key. Two config repositories hold one semver policy per repository, identical but for
``spec.verify`` (the key as a file of the repository). Whole-process runs of
``automator scan --output json`` over each alternate; prints the median, min and max wall time of
each, their ratio, the peak RSS of each (from wait4's rusage), and the load average around the
timed runs (on a shared machine, a figure means little without it). Every run is checked: every
policy chose its newest tag, and (with verify) every choice says how it verified.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automator.demo.registry import LocalRegistry  # noqa: E402
from tests.servers import cosign  # noqa: E402
from tests.servers.registry_push import OCI_MANIFEST, RegistryHTTP, push_image  # noqa: E402


def timed(cmd: list[str]) -> tuple[float, int, bytes, float]:
    """Run ``cmd``; return wall seconds, peak RSS in KiB, stdout, and CPU seconds (user + system)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed ({status}): {err.decode()[-2000:]}")
    return wall, rusage.ru_maxrss, out, rusage.ru_utime + rusage.ru_stime


def write_policies(repo: Path, host: str, repos: int, key_pem: str | None, reflect: str = "Never") -> None:
    docs = []
    verify = "  verify:\n    publicKeys: [{file: keys/cosign.pub}]\n" if key_pem else ""
    for i in range(repos):
        docs.append(
            "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
            f"metadata:\n  name: app-{i:03d}\nspec:\n  image: {host}/bench/app-{i:03d}\n"
            f"  insecure: true\n  digestReflectionPolicy: {reflect}\n"
            "  policy:\n    semver:\n      range: '>=1.0.0 <2'\n"
            f"{verify}"
        )
    repo.mkdir()
    (repo / "policies.yaml").write_text("---\n".join(docs))
    if key_pem:
        (repo / "keys").mkdir()
        (repo / "keys" / "cosign.pub").write_text(key_pem)


def seed(base_url: str, repos: int, tags: int, key: cosign.Key, scheme: str) -> None:
    def one(i: int) -> None:
        http = RegistryHTTP(base_url)
        name = f"bench/app-{i:03d}"
        pushed = None
        for t in range(tags):
            pushed = push_image(base_url, name, f"1.{t}.0", http=http)
        assert pushed is not None
        if scheme == "legacy":
            host = base_url.removeprefix("http://")
            cosign.sign_legacy(http, name, pushed.digest, key, reference=f"{host}/{name}")  # as cosign names it
        else:
            bundle = cosign.key_bundle(key, pushed.digest)
            cosign.sign_bundle_referrer(http, name, (pushed.digest, OCI_MANIFEST, 0), bundle)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(repos)))


def check(out: bytes, repos: int, newest: str, verified: bool) -> None:
    results = json.loads(out)["results"]
    chosen = [r for r in results if r.get("tag") == newest]
    assert len(chosen) == repos, f"only {len(chosen)}/{repos} policies chose {newest}: {results[:2]}"
    if verified:
        assert not any(r.get("reason") for r in results), results[:2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=100)
    ap.add_argument("--tags", type=int, default=20)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--scheme", choices=("legacy", "bundle"), default="legacy")
    ap.add_argument(
        "--digest-reflection",
        choices=("Never", "IfNotPresent", "Always"),
        default="Never",
        help="both configs' digestReflectionPolicy (Always: the scan resolves each chosen digest anyway)",
    )
    args = ap.parse_args()
    automator = str(Path(sys.executable).parent / "automator")
    key = cosign.Key.generate()
    newest = f"1.{args.tags - 1}.0"
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
        work = Path(tmp)
        (work / "store").mkdir()
        with LocalRegistry(work / "store", work) as reg:
            t0 = time.perf_counter()
            seed(f"http://{reg.host}", args.repos, args.tags, key, args.scheme)
            print(f"seeded {args.repos} x {args.tags} tags, signed ({args.scheme}) in {time.perf_counter() - t0:.1f}s")
            write_policies(work / "plain", reg.host, args.repos, None, args.digest_reflection)
            write_policies(work / "verify", reg.host, args.repos, key.pem, args.digest_reflection)
            plain_cmd = [automator, "scan", str(work / "plain"), "--output", "json"]
            verify_cmd = [automator, "scan", str(work / "verify"), "--output", "json"]
            for cmd, verified in ((plain_cmd, False), (verify_cmd, True)):  # warm up, and check the answers
                check(timed(cmd)[2], args.repos, newest, verified)
            plain, signed, plain_rss, signed_rss, plain_cpu, signed_cpu = [], [], [], [], [], []
            load_before = os.getloadavg()
            for _ in range(args.runs):
                wall, peak, out, cpu = timed(plain_cmd)
                check(out, args.repos, newest, False)
                plain.append(wall)
                plain_rss.append(peak)
                plain_cpu.append(cpu)
                wall, peak, out, cpu = timed(verify_cmd)
                check(out, args.repos, newest, True)
                signed.append(wall)
                signed_rss.append(peak)
                signed_cpu.append(cpu)
            load_after = os.getloadavg()
    n = f"{args.repos} policies x {args.tags} tags ({args.scheme}, digestReflectionPolicy {args.digest_reflection})"
    rows = (
        ("scan without verify", plain, plain_rss, plain_cpu),
        ("scan with verify   ", signed, signed_rss, signed_cpu),
    )
    print(n)
    for label, walls, rss, cpu in rows:
        print(
            f"{label}: median {statistics.median(walls):.2f}s (min {min(walls):.2f}, max {max(walls):.2f}), "
            f"{args.runs} runs; CPU median {statistics.median(cpu):.2f}s; "
            f"peak RSS median {statistics.median(rss) / 1024:.0f} MiB (max {max(rss) / 1024:.0f})"
        )
    wall = statistics.median(signed) / statistics.median(plain)
    cpu = statistics.median(signed_cpu) / statistics.median(plain_cpu)
    print(f"ratio verify/plain: wall {wall:.2f}x, CPU {cpu:.2f}x")
    # two cores shared with other work skew the wall ratio first (3 requests per policy against 1)
    print("load average (1, 5, 15 min) before the timed runs: {:.2f} {:.2f} {:.2f}".format(*load_before))
    print("load average (1, 5, 15 min) after the timed runs:  {:.2f} {:.2f} {:.2f}".format(*load_after))


if __name__ == "__main__":
    main()
