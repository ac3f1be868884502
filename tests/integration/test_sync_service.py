"""Service mode: the interval loop, push webhooks (GitHub, GitLab, generic HMAC), health and metrics."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automator.sync.command import add_arguments, config_from
from automator.sync.runner import Runner
from automator.sync.service import Service
from automator.sync.settings import SyncConfig
from tests.servers.kube import CM, Sync, configmap

SECRET = "hook-s3cret"


def configure(argv: list[str]) -> SyncConfig:
    """What `automator sync ARGV` runs with: the flags parsed once, as the CLI does."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from(parser.parse_args(argv))


@pytest.fixture
def service(sync: Sync, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    config = configure(sync.argv("--interval", "1h", "--listen", "127.0.0.1:0"))
    runner = Runner(config.runner)
    svc = Service(runner, config.service, SECRET)
    svc.start()
    loop = threading.Thread(target=svc.run, daemon=True)
    loop.start()
    host, port = svc.address[:2]
    yield svc, f"http://{host}:{port}"
    svc.stop.set()
    svc.trigger.set()
    loop.join(timeout=30)
    runner.close()


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.05)


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_first_sync_makes_it_ready_and_metrics_count_it(sync: Sync, service: tuple[Service, str]) -> None:
    _, url = service
    assert request(f"{url}/healthz") == (200, "ok")
    until(lambda: request(f"{url}/readyz")[0] == 200)
    assert sync.get(CM, "settings") is not None
    status, text = request(f"{url}/metrics")
    assert status == 200
    assert 'automator_sync_runs_total{outcome="success"} 1.0' in text
    assert 'automator_sync_objects{action="created"} 1.0' in text


@pytest.mark.parametrize("source", ["github", "gitlab", "generic"])
def test_a_verified_push_triggers_a_sync(sync: Sync, service: tuple[Service, str], source: str) -> None:
    svc, url = service
    until(svc.ready.is_set)
    sync.repo.write("new.yaml", configmap("new", None, {"k": "v"}))
    sync.repo.commit()
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = {
        "github": {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)},
        "gitlab": {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET},
        "generic": {"X-Signature-256": sign(body)},
    }[source]
    assert request(f"{url}/hooks/{source}", body, headers) == (202, "sync triggered")
    until(lambda: sync.get(CM, "new") is not None)


def test_unverified_or_irrelevant_webhooks_do_not_trigger(sync: Sync, service: tuple[Service, str]) -> None:
    svc, url = service
    until(svc.ready.is_set)
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    forged = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(b"something else")}
    assert request(f"{url}/hooks/github", body, forged)[0] == 401
    assert request(f"{url}/hooks/gitlab", body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"})[0] == 401
    assert request(f"{url}/hooks/generic", body, {})[0] == 401
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    status, text = request(f"{url}/hooks/github", other, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(other)})
    assert (status, "ignored" in text) == (202, True)
    assert request(f"{url}/hooks/github", b"{}", {"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(b"{}")}) == (
        200,
        "pong",
    )
    assert not svc.trigger.is_set()
    _, metrics = request(f"{url}/metrics")
    assert 'automator_sync_webhooks_total{outcome="401",source="github"} 1.0' in metrics
    # no proof at all is refused from the headers: the (claimed) 4 MB body is never read
    host, port = svc.address[:2]
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 401")


def test_commit_status_is_set_on_the_applied_revision(sync: Sync) -> None:
    from automator.forge import NoneForge

    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    rev = sync.repo.commit()
    forge = NoneForge()
    config = configure(sync.argv("--once", "--commit-status", "github", "--forge-repository", "acme/config"))
    runner = Runner(config.runner, reporter=forge)
    try:
        assert runner.once().ok
        assert runner.once().ok  # same revision, same state: no second status
    finally:
        runner.close()
    assert [(s.sha, s.state, s.context) for s in forge.statuses] == [(rev, "success", f"automator/sync/{sync.name}")]
    assert forge.statuses[0].description == "applied 1 object; no workloads"
