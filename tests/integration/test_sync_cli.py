"""`automator sync` as a user runs it: a separate process, exit codes, and the service's shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.servers.kube import CM, Sync, configmap

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automator", "sync", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_once_from_the_environment_prints_json_and_exits_by_outcome(sync: Sync, tmp_path: Path) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    rev = sync.repo.commit()
    env = {
        "AUTOMATOR_SYNC_GIT_URL": sync.repo.url,
        "AUTOMATOR_SYNC_KUBECONFIG": str(sync.server.kubeconfig),
        "AUTOMATOR_SYNC_NAME": sync.name,
        "AUTOMATOR_SYNC_DEFAULT_NAMESPACE": sync.ns,
        "AUTOMATOR_SYNC_INVENTORY_NAMESPACE": sync.ns,
        "AUTOMATOR_SYNC_CACHE_DIR": str(tmp_path / "cache"),
        "AUTOMATOR_SYNC_ONCE": "true",
        "AUTOMATOR_SYNC_OUTPUT": "json",
    }
    proc = cli(env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["revision"] == rev
    assert [o["action"] for o in out["objects"]] == ["created"]

    sync.repo.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings\n")
    sync.repo.commit()
    proc = cli(env=env)
    assert proc.returncode == 1
    assert "cm.yaml:" in json.loads(proc.stdout)["errors"][0]

    assert cli("--once", "--output", "yaml").returncode == 2


def test_service_mode_serves_until_sigterm(sync: Sync, tmp_path: Path) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    port = free_port()
    argv = sync.argv("--listen", f"127.0.0.1:{port}", "--interval", "1h")
    proc = subprocess.Popen(
        [sys.executable, "-m", "automator", "sync", *argv],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.1)
        assert sync.get(CM, "settings") is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
