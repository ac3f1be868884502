"""The embedded default behind ``make demo``: a local registry and a local config repo.

It seeds Debian's docker-registry with a handful of images, copies
``examples/config-repo`` into a scratch git repository (``localhost:5000`` replaced by the
port the registry got), and runs the main job over it: three single cycles, then the same job
as a service that a (signed) webhook wakes when a new tag is pushed.  No accounts, no network.

With ``keep_running`` (``automator demo --keep-running``) the registry and the scratch config
repo stay after that, and the demo prints the commands that run the bundled examples against
them, until Ctrl-C.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from automator.config import DEFAULT, Automation, with_overrides
from automator.daemon import AutomatorService, Schedule
from automator.demo.registry import LocalRegistry
from automator.demo.seed import RegistryStore, SeedImage
from automator.errors import ConfigError
from automator.forge import NoneForge
from automator.registry.memo import RegistryMemo
from automator.report import ScanProgress, print_run
from automator.run import RunOptions, RunSummary, run_once

EXAMPLE_HOST = "localhost:5000"
_T0 = datetime(2024, 1, 1, tzinfo=UTC)

# (repository, tag, days after _T0): what the demo registry holds
DEMO_IMAGES: tuple[tuple[str, str, int], ...] = (
    ("demo/podinfo", "6.0.0", 0),
    ("demo/podinfo", "6.0.1", 3),
    ("demo/podinfo", "6.1.0", 10),
    ("demo/podinfo", "6.2.0-rc.1", 12),
    ("demo/podinfo", "7.0.0", 20),
    ("demo/podinfo", "latest", 20),
    ("demo/podinfo", "sha256-" + "ab" * 32 + ".sig", 20),
    ("demo/worker", "1.2.0-alpine", 0),
    ("demo/worker", "1.2.1-alpine", 5),
    ("demo/worker", "1.3.0", 9),
    ("demo/worker", "1.3.0-alpine", 9),
    ("demo/web", "main-20240101-abc1234", 0),
    ("demo/web", "main-20240103-0a1b2c3", 2),
    ("demo/web", "main-20240105-def5678", 4),
    ("demo/web", "pr-42-20240109-fff0000", 8),
    ("demo/cache", "latest", 6),
)


def example_repo() -> Path:
    """The bundled example config repo (in a source checkout)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "config-repo"
    if not path.is_dir():
        raise ConfigError(f"the example config repo is missing at {path}; run the demo from a source checkout")
    return path


def seed(store_dir: Path) -> None:
    """Write the demo images into a registry store."""
    store = RegistryStore(store_dir)
    for repo, tag, days in DEMO_IMAGES:
        store.add(SeedImage(repo, tag, _T0 + timedelta(days=days)))


def make_config_repo(source: Path, dest: Path, host: str) -> Path:
    """Copy ``source`` to ``dest`` with the example host replaced, as a git repo with one commit."""
    shutil.copytree(source, dest)
    for path in dest.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if EXAMPLE_HOST in text:
            path.write_text(text.replace(EXAMPLE_HOST, host), encoding="utf-8")
    git = shutil.which("git")
    if git is not None:
        env_args = ["-c", "user.name=automator demo", "-c", "user.email=demo@automator.invalid"]
        for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Initial config"]):
            subprocess.run([git, *env_args, *cmd], cwd=dest, check=True)
    return dest


def run_demo(*, keep: bool = False, keep_running: bool = False) -> int:
    """Run the demo end to end; return the exit code of the main job.

    With ``keep_running``, then leave the registry running and print how to run the examples
    against it, until Ctrl-C (exit code unchanged) or SIGTERM.
    """
    out = sys.stdout
    work = Path(tempfile.mkdtemp(prefix="automator-demo-"))
    try:
        seed(work / "registry")
        with LocalRegistry(work / "registry", work) as registry:
            print(f"registry:    {registry.host} (docker-registry on loopback, {len(DEMO_IMAGES)} tags)", file=out)
            source = make_config_repo(example_repo(), work / "config-repo", registry.host)
            remote = work / "remote.git"
            subprocess.run(["git", "clone", "-q", "--bare", str(source), str(remote)], check=True)
            print(f"config repo: {remote} (a local bare repo; forge: none)", file=out)
            config = with_overrides(
                DEFAULT,
                {
                    "spec.git.url": str(remote),
                    "spec.commit.author.name": "automator demo",
                    "spec.commit.author.email": "demo@automator.invalid",
                },
            )
            forge = NoneForge(repository="demo/config-repo")
            options = RunOptions(work / "cache", progress=ScanProgress(0, sys.stderr))
            code = 0
            for title, before in (
                ("first cycle: one pull request per policy with a newer tag", None),
                ("second cycle: nothing new, so nothing is written", None),
                ("podinfo 6.1.1 is pushed: the same pull request is updated", "demo/podinfo:6.1.1"),
            ):
                if before is not None:
                    repo_path, tag = before.split(":")
                    RegistryStore(work / "registry").add(SeedImage(repo_path, tag, _T0 + timedelta(days=30)))
                print(f"\n$ automator run --once   # {title}", file=out)
                summary = run_once(config, lambda _: forge, options)
                print_run(summary, out)
                code = max(code, 1 if summary.failed else 0)
            step = _service_step(config, forge, options, store=work / "registry", host=registry.host, out=out)
            code = max(code, step)
            branches = subprocess.run(
                ["git", "-C", str(remote), "branch", "--list", "automator/*"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            kept = "" if keep else " (removed on exit; `automator demo --keep` keeps it)"
            print(f"\nbranches pushed to {remote}{kept}:\n{branches}", file=out)
            if keep_running:
                _keep_running(registry.host, source, remote, work, out)
        return code
    finally:
        if keep:
            print(f"kept {work}", file=out)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _program() -> str:
    """How this shell can run automator: by name when it is on PATH, else by its path."""
    if shutil.which("automator"):
        return "automator"
    script = Path(sys.executable).parent / "automator"
    return shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m automator"


def _keep_running(host: str, source: Path, remote: Path, work: Path, out: TextIO) -> None:
    """Print the commands that run the bundled examples against the registry; wait for Ctrl-C."""
    me, repo, git_url = _program(), shlex.quote(str(source)), shlex.quote(str(remote))
    author = "--author-name 'automator demo' --author-email demo@automator.invalid"
    lines = [
        f"\nThe registry keeps running at {host} until Ctrl-C. {source} is examples/config-repo with",
        f"{EXAMPLE_HOST} replaced by {host}; run the bundled examples against it:",
        f"  {me} validate {repo}",
        f"  {me} scan {repo}",
        f"  {me} plan {repo}",
        f"  {me} run --once --git-url {git_url} --forge none {author} --cache-dir {shlex.quote(str(work / 'cache'))}",
    ]
    print("\n".join(lines), file=out, flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (and SIGTERM) stop it whatever this process inherited: a shell that starts a job in
    # the background has it ignore SIGINT, and the registry and scratch repos must still go
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the registry", file=out, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _service_step(
    config: Automation, forge: NoneForge, options: RunOptions, *, store: Path, host: str, out: TextIO
) -> int:
    """The same job as a service: a pushed tag, announced by a signed webhook, updates the PR at once."""
    secret = secrets.token_hex(16)
    shown: list[RunSummary] = []

    def cycle(memo: RegistryMemo) -> RunSummary:
        return run_once(config, lambda _: forge, replace(options, memo=memo, progress=None))

    svc = AutomatorService(
        cycle, Schedule.parse(3600, None, "UTC"), "127.0.0.1:0", secret=secret, debounce=0.2, report=shown.append
    )
    address = "{}:{}".format(*svc.address)
    thread = threading.Thread(target=svc.run, name="demo-service", daemon=True)
    thread.start()
    try:
        _wait(lambda: (svc.status()["lastCycle"] or {}).get("finished"), "the service's start-up cycle")
        print(f"\n$ automator run --listen {address} --webhook-secret-file FILE   # the service", file=out)
        print("  (its start-up cycle found nothing new)", file=out)
        RegistryStore(store).add(SeedImage("demo/podinfo", "6.1.2", _T0 + timedelta(days=40)))
        body = json.dumps({"image": f"{host}/demo/podinfo:6.1.2"}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        print(
            f"$ curl -d '{body.decode()}' -H 'X-Signature-256: {signature[:15]}...' http://{address}/hooks/generic",
            file=out,
        )
        print("  # podinfo 6.1.2 was pushed; CI (or the registry itself) tells the service", file=out)
        listed, started = svc.memo.misses, time.monotonic()
        request = urllib.request.Request(
            f"http://{address}/hooks/generic", data=body, headers={"X-Signature-256": signature}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            print(f"{resp.status} {resp.read().decode()}", file=out)
        _wait(lambda: _webhook_cycle_done(svc.status()), "the webhook's cycle")
        elapsed = time.monotonic() - started
        if not shown or svc.status()["lastCycle"]["outcome"] == "error":
            raise ConfigError(f"the demo's service cycle failed: {svc.status()['lastCycle']['error']}")
        print_run(shown[-1], out)
        repositories = len({r.policy.image.repository for r in shown[-1].plan.scan})
        print(
            f"(webhook -> pull request in {elapsed:.1f}s; the cycle listed {svc.memo.misses - listed} of"
            f" {repositories} repositories, the rest came from the previous cycle)",
            file=out,
        )
        return 1 if shown[-1].failed else 0
    except (OSError, urllib.error.URLError) as exc:
        raise ConfigError(f"the demo's service step failed: {exc}") from exc
    finally:
        svc.shutdown()
        thread.join(timeout=60)


def _webhook_cycle_done(status: dict[str, Any]) -> bool:
    last = status["lastCycle"] or {}
    return bool(last.get("trigger") == "webhook" and last.get("finished") and not status["running"])


def _wait(check: Any, what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise ConfigError(f"the demo timed out waiting for {what}")
