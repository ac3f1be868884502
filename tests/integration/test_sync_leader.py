"""Two replicas of one sync (``automator sync --leader-elect``, real processes): only the one
holding the Lease applies; killed, the other takes over and applies the next commit."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.kube import CM, Sync, configmap
from tests.servers.registry import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # poll interval, bounded by the deadline


def leader_gauge(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    found = re.search(r"^automator_sync_leader (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


class Replica:
    def __init__(self, sync: Sync, name: str, tmp_path: Path) -> None:
        self.name, self.port, self.log = name, free_port(), tmp_path / f"{name}.log"
        argv = sync.argv(
            "--listen", f"127.0.0.1:{self.port}", "--interval", "1s", "--leader-elect",
            "--lease-duration", "3s", "--lease-identity", name, "--cache-dir", str(tmp_path / f"{name}-cache"),
        )  # fmt: skip
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "automator", "--log-level", "info", "sync", *argv],
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def applied(self) -> int:
        return len(re.findall(r"sync at [0-9a-f]{12}", self.log.read_text()))


@pytest.fixture
def replicas(sync: Sync, tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
        r.proc.wait(timeout=30)


def test_only_the_lease_holder_applies_and_a_standby_takes_over(
    sync: Sync, replicas: list[Replica], tmp_path: Path
) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    a = Replica(sync, "sync-a", tmp_path)
    replicas.append(a)
    until(lambda: leader_gauge(a.port) == 1, "a to hold the lease")
    b = Replica(sync, "sync-b", tmp_path)
    replicas.append(b)
    until(lambda: leader_gauge(b.port) == 0, "b to stand by")
    until(lambda: a.applied() >= 3, "a to sync a few times")  # b had as many chances
    assert b.applied() == 0, b.log.read_text()
    assert (sync.get(CM, "settings") or {})["data"] == {"level": "info"}
    with urllib.request.urlopen(f"http://127.0.0.1:{b.port}/readyz", timeout=2) as resp:
        assert resp.status == 200  # a standby is ready: a rollout of replicas does not wait on it

    a.proc.send_signal(signal.SIGKILL)  # no release: b takes over once the Lease expires
    a.proc.wait(timeout=30)
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "debug"}))
    sync.repo.commit()
    until(lambda: leader_gauge(b.port) == 1, "b to take over")
    until(lambda: (sync.get(CM, "settings") or {}).get("data") == {"level": "debug"}, "b to apply the new commit")
    assert b.applied() >= 1
    b.proc.send_signal(signal.SIGTERM)  # a clean stop releases the Lease
    assert b.proc.wait(timeout=30) == 0
    lease = sync.kube.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{sync.ns}/leases/automator-sync-{sync.name}"
    )
    assert lease[1]["spec"].get("holderIdentity") is None
