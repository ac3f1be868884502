"""End to end: `automator run` as a service — a registry push reaches the pull request in seconds.

Debian's docker-registry is configured to send its push notifications to the service, exactly
as a production registry would; the service runs as a user runs it (a subprocess), against a
real git remote and the fake GitHub.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_run_forges import GIT_ENV, ForgeUnderTest, forge, git, make_remote, seeded_remote
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry, free_port

SECRET = "s3cret-webhook-token"
DEADLINE = 45.0


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for(check: Callable[[], Any], what: str, proc: subprocess.Popen[str], log: Path) -> Any:
    """Poll ``check`` until it returns something truthy, with a deadline; fail with the service log."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the service exited ({proc.returncode}) waiting for {what}:\n{log.read_text()[-4000:]}")
        try:
            found = check()
        except (OSError, ValueError, KeyError, TypeError):
            found = None
        if found:
            return found
        time.sleep(0.1)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out after {DEADLINE}s waiting for {what}:\n{log.read_text()[-4000:]}")


def metric(base: str, name: str, **labels: str) -> float:
    _, text = http("GET", f"{base}/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


class Service:
    def __init__(self, proc: subprocess.Popen[str], base: str, log: Path) -> None:
        self.proc, self.base, self.log = proc, base, log

    def status(self) -> dict[str, Any]:
        code, text = http("GET", f"{self.base}/status")
        assert code == 200, text
        doc: dict[str, Any] = json.loads(text)
        return doc

    def cycles(self) -> int:
        return int(
            sum(metric(self.base, "automator_cycles_total", trigger=t, outcome="ok") for t in ("schedule", "webhook"))
        )

    def idle(self) -> bool:
        status = self.status()
        return not status["running"] and not status["queuedRepositories"] and bool(status["lastCycle"]["finished"])

    def wait(self, check: Callable[[], Any], what: str) -> Any:
        return wait_for(check, what, self.proc, self.log)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    procs: list[subprocess.Popen[str]] = []

    def launch(remote: Path, f: ForgeUnderTest, port: int, *extra: str, output: str = "json") -> Service:
        secret_file = tmp_path / "webhook-secret"
        secret_file.write_text(SECRET + "\n")
        log = tmp_path / f"service-{len(procs)}.log"
        argv = [
            sys.executable, "-m", "automator", "--log-level", "info", "run",
            "--git-url", str(remote), "--cache-dir", str(tmp_path / "cache"),
            "--listen", f"127.0.0.1:{port}", "--webhook-secret-file", str(secret_file),
            "--webhook-debounce", "0.3s", "--forge-token-env", "FORGE_TOKEN", "--output", output,
            *f.args, *extra,
        ]  # fmt: skip
        with log.open("w") as out:
            proc = subprocess.Popen(
                argv, env={**os.environ, **GIT_ENV, **f.env}, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        procs.append(proc)
        svc = Service(proc, f"http://127.0.0.1:{port}", log)
        svc.wait(lambda: http("GET", f"{svc.base}/readyz")[0] == 200, "/readyz")
        return svc

    yield launch
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_registry_push_updates_the_pull_request_within_seconds(
    registry_launcher: Callable[..., RunningRegistry], start: Callable[..., Service], tmp_path: Path
) -> None:
    port = free_port()
    # Seed a quiet registry first, then serve the same storage from one that notifies the service:
    # a registry's backlog of earlier pushes (re-sent on its own backoff, at its own pace) never
    # lands in the cycle under test, so what that cycle lists does not depend on the machine's speed.
    quiet = registry_launcher()
    for tag in ("1.0.0", "1.1.0"):
        quiet.push("svc/app", tag)
    quiet.push("svc/other", "2.0.0")
    reg = registry_launcher(
        root=quiet.root, notify=(f"http://127.0.0.1:{port}/hooks/distribution", {"Authorization": f"Bearer {SECRET}"})
    )
    image, other = reg.image("svc/app"), reg.image("svc/other")
    remote = make_remote(tmp_path, image)
    # a second policy whose repository the webhook never names: its listing must be reused
    write_commit(
        remote,
        {
            "apps/other-policy.yaml": "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n"
            f"  name: other\n  namespace: apps\nspec:\n  image: {other}\n  insecure: true\n"
            "  policy:\n    semver:\n      range: '>=1.0.0'\n",
            "apps/other.yaml": f'image: {other}:2.0.0 # {{"$imagepolicy": "apps:other"}}\n',
        },
    )
    with forge("github", remote) as f:
        svc = start(remote, f, port, "--interval", "1h")
        # the start-up cycle opens the PR for 1.1.0
        scheduled = {"trigger": "schedule", "outcome": "ok"}
        svc.wait(lambda: metric(svc.base, "automator_cycles_total", **scheduled) == 1, "the start-up cycle")
        [(number, _, title)] = f.prs()
        assert "1.1.0" in title
        assert svc.status()["nextScheduledCycle"] is not None
        svc.wait(svc.idle, "the start-up cycle's end")
        reused = metric(svc.base, "automator_registry_listings_total", source="cache")
        listed = metric(svc.base, "automator_registry_listings_total", source="registry")

        pushed = time.monotonic()
        reg.push("svc/app", "1.2.0")  # the registry notifies the service; nothing else happens
        svc.wait(lambda: "1.2.0" in f.prs()[0][2], "the PR to move to 1.2.0")
        latency = time.monotonic() - pushed
        assert [n for n, _, _ in f.prs()] == [number]  # the same PR, updated
        assert f"{image}:1.2.0" in (read_file(remote, "automator/apps-app", "apps/deploy.yaml") or "")
        svc.wait(svc.idle, "the cycle end")
        assert svc.status()["lastCycle"]["trigger"] == "webhook"
        assert latency < DEADLINE  # reported below; the point is that no interval (1h) had to pass

        # the webhook cycle listed only the pushed repository; the other came from the last cycle
        # (a registry re-sends a notification it thinks timed out: count per cycle, not in total)
        from_cache = metric(svc.base, "automator_registry_listings_total", source="cache") - reused
        from_registry = metric(svc.base, "automator_registry_listings_total", source="registry") - listed
        assert from_cache >= 1
        assert from_registry == from_cache  # each webhook cycle: svc/app listed, svc/other reused
        # blob pushes and the like are answered 200 and trigger nothing
        assert metric(svc.base, "automator_webhooks_total", source="distribution", outcome="ignored") >= 1

        # a forged delivery is refused and changes nothing
        queued = {"source": "distribution", "outcome": "queued"}
        queued_before = metric(svc.base, "automator_webhooks_total", **queued)
        body = json.dumps({"events": []}).encode()
        assert http("POST", f"{svc.base}/hooks/distribution", body, {"Authorization": "Bearer nope"})[0] == 401
        assert http("POST", f"{svc.base}/hooks/dockerhub/nope", b"{}")[0] == 401
        assert http("POST", f"{svc.base}/hooks/nosuch/x", b"{}")[0] == 404
        assert metric(svc.base, "automator_webhooks_total", source="distribution", outcome="401") == 1
        assert metric(svc.base, "automator_webhooks_total", source="dockerhub", outcome="401") == 1
        assert metric(svc.base, "automator_webhooks_total", **queued) == queued_before

        # SIGTERM: finish, exit 0, and the secret never reached the log
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=30) == 0
        text = svc.log.read_text()
        assert SECRET not in text
        assert "Traceback" not in text
    print(f"push -> PR latency: {latency:.2f}s")


def test_a_webhook_for_an_untracked_repository_runs_no_cycle(
    registry: RunningRegistry, start: Callable[..., Service], tmp_path: Path
) -> None:
    _, remote = seeded_remote(registry, tmp_path, "svc2/app", ("1.0.0",))
    with forge("github", remote) as f:
        svc = start(remote, f, free_port(), "--interval", "1h", output="table")
        scheduled = {"trigger": "schedule", "outcome": "ok"}
        svc.wait(lambda: metric(svc.base, "automator_cycles_total", **scheduled) == 1, "the start-up cycle")
        assert f.prs() == []
        cycles = svc.cycles()
        hub = json.dumps({"push_data": {"tag": "9.9"}, "repository": {"repo_name": "someone/else"}}).encode()
        code, text = http("POST", f"{svc.base}/hooks/dockerhub/{SECRET}", hub)
        # the first such push reloads the policies, in case one for it was just merged
        assert (code, text) == (
            202,
            "no loaded policy tracks docker.io/someone/else:9.9; cycle queued to reload the policies",
        )
        svc.wait(lambda: svc.cycles() == cycles + 1 and svc.idle(), "the reload cycle")
        assert metric(svc.base, "automator_registry_listings_total", source="cache") >= 1  # nothing re-listed
        code, text = http("POST", f"{svc.base}/hooks/dockerhub/{SECRET}", hub)
        assert (code, text) == (200, "ignored: no policy tracks docker.io/someone/else:9.9")
        cycles = svc.cycles()
        # a generic hook naming the tracked image queues a cycle for it
        registry.push("svc2/app", "1.1.0")
        payload = json.dumps({"image": registry.image("svc2/app", "1.1.0")}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        code, text = http("POST", f"{svc.base}/hooks/generic", payload, {"X-Signature-256": sig})
        assert code == 202, text
        svc.wait(lambda: f.prs() and "1.1.0" in f.prs()[0][2], "a PR for 1.1.0")
        svc.wait(lambda: svc.cycles() >= cycles + 1, "the cycle to be counted")  # counted when it ends
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=30) == 0
        # idle cycles print one line each; the one that opened the pull request, its table
        log = svc.log.read_text()
        assert log.count("scanned 1 policies") >= 3
        assert log.count("GROUP") == 1


def test_service_flags_are_checked_before_anything_runs(tmp_path: Path) -> None:
    remote = tmp_path / "nowhere.git"
    for extra, expected in [
        (("--schedule", "61 * * * *"), "--schedule '61 * * * *'"),
        (("--timezone", "Mars/Olympus"), "--timezone 'Mars/Olympus'"),
        (("--listen", "localhost"), "--listen 'localhost'"),
        (("--webhook-debounce", "soon"), "--webhook-debounce 'soon'"),
        (("--webhook-debounce=-1s",), "--webhook-debounce '-1s': must be zero or positive"),
        (("--cycle-timeout", "0s"), "--cycle-timeout '0s': must be positive"),
        (("--interval=-5m",), "--interval '-5m': must be positive"),
        (("--schedule", "0 0 30 2 *"), "never fires"),
        (("--webhook-secret-file", str(tmp_path / "missing")), "cannot read --webhook-secret-file"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "automator", "run", "--git-url", str(remote), "--forge", "none", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
        assert proc.returncode == 2, (extra, proc.stderr)
        assert expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert git("--version")  # git is there: the failures above are the flags'
