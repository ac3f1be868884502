"""`automator sync --once --notifications FILE` against the real kube-apiserver (envtest): drift
reverted, a workload unhealthy after the sync gave it a new image, a sync that failed, each
announced to a webhook receiver on loopback that verifies the signature and the schema.

No controller runs here: a thread stands in for the Deployment controller and reports each new
generation as having missed its progress deadline, as a rollout of a broken image does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.kube import DEPLOY, Sync, configmap, deployment
from tests.servers.receivers import Receiver, receiver_server

SECRET = "sync-hook-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_server(SECRET.encode()) as r:
        yield r


def notifications(tmp: Path, receiver: Receiver) -> tuple[str, str]:
    (tmp / "hmac").write_text(SECRET + "\n")
    (tmp / "teams-url").write_text(receiver.url("/teams/flow?sig=s3cr3t") + "\n")
    path = tmp / "notifications.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Notifications\nspec:\n  notifiers:\n"
        f"    - name: hook\n      type: webhook\n      url: {receiver.url('/webhook')}\n"
        f"      secretFile: {tmp / 'hmac'}\n"
        f"    - name: teams\n      type: teams\n      urlFile: {tmp / 'teams-url'}\n"
        "      events: [workloadUnhealthy]\n"
    )
    return ("--notifications", str(path))


def deadline_exceeded(generation: int) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": 1,
        "updatedReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-2" has timed out progressing.',
            },
        ],
    }


class FailingRollouts:
    """The Deployment controller's part, for a broken image: every new generation times out."""

    def __init__(self, sync: Sync) -> None:
        self.sync, self.stop = sync, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            live = self.sync.get(DEPLOY, "web")
            generation = int(live["metadata"]["generation"]) if live else 0
            if live and (live.get("status") or {}).get("observedGeneration") != generation:
                self.sync.kube.patch_status(DEPLOY, self.sync.ns, "web", deadline_exceeded(generation))
            self.stop.wait(0.05)

    def __enter__(self) -> FailingRollouts:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def test_drift_unhealthy_after_update_and_failure_are_announced(sync: Sync, tmp_path: Path, receiver: Receiver) -> None:
    flags = notifications(tmp_path, receiver)
    seen = 0

    def new() -> list[dict[str, Any]]:
        nonlocal seen
        docs = receiver.of("/webhook")
        out, seen = docs[seen:], len(docs)
        return out

    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    sync.repo.commit()
    assert sync.run(*flags)[0] == 0
    assert new() == []  # a first sync that succeeds: nothing to tell

    # someone edits the cluster by hand: the sync reverts it and says so
    sync.kubectl("-n", sync.ns, "patch", "configmap", "settings", "-p", '{"data":{"level":"debug"}}')
    assert sync.run(*flags)[0] == 0
    [drift] = new()
    assert (drift["kind"], drift["source"], drift["subject"]) == ("driftCorrected", "sync", sync.name)
    assert drift["objects"] == [f"ConfigMap {sync.ns}/settings"]
    assert drift["details"] == [f"ConfigMap {sync.ns}/settings: /data/level"]

    # a new image whose rollout misses its deadline: unhealthy after the update (and the sync fails)
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.27-broken"))
    sync.repo.commit()
    with FailingRollouts(sync):
        code, _ = sync.run("--wait", "--timeout", "60s", *flags)
    assert code == 1
    events = {d["kind"]: d for d in new()}
    assert set(events) == {"workloadUnhealthy", "syncFailed"}
    unhealthy = events["workloadUnhealthy"]
    assert unhealthy["objects"] == [f"Deployment {sync.ns}/web"]
    assert "nginx:1.27-broken" in unhealthy["message"] and "progress deadline exceeded" in unhealthy["message"]
    [card] = receiver.of("/teams")  # the teams notifier asked for this event only
    assert "unhealthy" in card["attachments"][0]["content"]["body"][0]["text"]

    # a manifest that does not render: the sync fails, nothing applied
    sync.repo.write("broken.yaml", "kind: [unclosed\n")
    sync.repo.commit()
    code, out = sync.run(*flags)
    assert code == 1
    [failed] = new()
    assert (failed["kind"], failed["severity"]) == ("syncFailed", "error")
    assert failed["details"] == out["errors"]
    assert "render" in failed["message"]
    assert receiver.refused == []


def test_the_service_tells_the_same_failure_once(sync: Sync, tmp_path: Path, receiver: Receiver) -> None:
    """One runner across passes, as the service keeps it: a failure that repeats is one event."""
    from automator.cli import build_parser
    from automator.sync.command import config_from
    from automator.sync.runner import Runner

    flags = notifications(tmp_path, receiver)
    sync.repo.write("broken.yaml", "kind: [unclosed\n")
    sync.repo.commit()
    args = build_parser("sync").parse_args(["sync", *sync.argv(*flags), "--output", "json"])
    runner = Runner(config_from(args).runner)
    try:
        assert not runner.once().ok
        assert not runner.once().ok
        assert runner.notify is not None and runner.notify.dispatcher.flush(20.0)
    finally:
        runner.close()
    assert [d["kind"] for d in receiver.of("/webhook")] == ["syncFailed"]
    assert runner.notify.dispatcher.stats[("hook", "deduped")] == 1
