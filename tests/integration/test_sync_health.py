"""`--wait`: rollout health with kstatus rules, driven by writing status through the status subresource."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from automator.sync.cluster import Resource
from tests.servers.kube import DEPLOY, DS, JOB, STS, Sync, daemonset, deployment, statefulset


def _ready_status(generation: int, replicas: int) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def _generation(sync: Sync, name: str, res: Resource = DEPLOY) -> int:
    live = sync.get(res, name)
    assert live is not None
    return int(live["metadata"]["generation"])


def test_ready_when_every_replica_is_updated_and_available(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns, replicas=2))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(DEPLOY, sync.ns, "web", _ready_status(_generation(sync, "web"), 2))

    code, out = sync.run("--wait", "--timeout", "10s")
    assert code == 0, out
    assert out["objects"][0]["health"] == "Ready"

    code, out = sync.run("--wait", "--timeout", "10s", output="table")
    assert code == 0
    assert "Ready" in out["text"]


def test_progressing_until_the_timeout_fails_the_run(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns, replicas=3))
    sync.repo.commit()
    assert sync.run()[0] == 0
    status = _ready_status(_generation(sync, "web"), 3)
    status["availableReplicas"] = 1
    sync.kube.patch_status(DEPLOY, sync.ns, "web", status)

    code, out = sync.run("--wait", "--timeout", "1s")
    assert code == 1
    assert out["objects"][0]["health"] == "Progressing"
    assert "still Progressing after 1s" in out["errors"][0]
    assert "availableReplicas 1/3" in out["errors"][0]


def test_failed_on_progress_deadline_exceeded(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns))
    sync.repo.commit()
    assert sync.run()[0] == 0
    status = _ready_status(_generation(sync, "web"), 1)
    status["availableReplicas"] = 0
    status["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
    ]
    sync.kube.patch_status(DEPLOY, sync.ns, "web", status)

    code, out = sync.run("--wait", "--timeout", "30s")
    assert code == 1
    assert out["objects"][0]["health"] == "Failed"
    assert "progress deadline exceeded" in out["errors"][0]


def test_a_new_generation_is_progressing_until_observed(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(DEPLOY, sync.ns, "web", _ready_status(_generation(sync, "web"), 1))
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.27"))
    sync.repo.commit()
    code, out = sync.run("--wait", "--timeout", "1s")
    assert code == 1
    assert out["objects"][0]["action"] == "configured"
    assert out["objects"][0]["health"] == "Progressing"
    assert "generation" in out["errors"][0]


def test_job_complete_and_failed(sync: Sync) -> None:
    job = """apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: m, image: "migrate:1"}}]
"""
    sync.repo.write("ok.yaml", job.format(name="ok"))
    sync.repo.write("bad.yaml", job.format(name="bad"))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(JOB, sync.ns, "ok", {"conditions": [{"type": "Complete", "status": "True"}]})
    sync.kube.patch_status(
        JOB, sync.ns, "bad", {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    )
    code, out = sync.run("--wait", "--timeout", "10s")
    assert code == 1
    assert {o["name"]: o["health"] for o in out["objects"]} == {"bad": "Failed", "ok": "Ready"}
    assert any("BackoffLimitExceeded" in e for e in out["errors"])


# -- StatefulSets and DaemonSets: no controller runs here, so each test plays the controller ---------


def _sts_status(generation: int, *, ready: int = 2, revision: str = "r1", current: str = "r1") -> dict[str, Any]:
    """What the StatefulSet controller reports for 2 replicas, ``ready`` of them ready."""
    return {
        "observedGeneration": generation,
        "replicas": 2,
        "readyReplicas": ready,
        "currentReplicas": 2 if current == revision else 0,
        "updatedReplicas": 2 if current == revision else 1,
        "currentRevision": f"db-{current}",
        "updateRevision": f"db-{revision}",
    }


def _ds_status(generation: int, *, available: int = 3, updated: int = 3) -> dict[str, Any]:
    """What the DaemonSet controller reports for 3 nodes."""
    return {
        "observedGeneration": generation,
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberReady": available,
        "numberMisscheduled": 0,
    }


@pytest.fixture(params=["StatefulSet", "DaemonSet"])
def workload(request: pytest.FixtureRequest) -> tuple[Resource, Callable[..., str], Callable[..., dict[str, Any]]]:
    """(resource, manifest(name, ns, image=...), status(generation, ready=bool, rolled_out=bool))."""

    def sts_status(generation: int, *, ready: bool = True, rolled_out: bool = True) -> dict[str, Any]:
        return _sts_status(generation, ready=2 if ready else 1, current="r2" if rolled_out else "r1", revision="r2")

    def ds_status(generation: int, *, ready: bool = True, rolled_out: bool = True) -> dict[str, Any]:
        return _ds_status(generation, available=3 if ready else 2, updated=3 if rolled_out else 1)

    if request.param == "StatefulSet":
        return STS, statefulset, sts_status
    return DS, daemonset, ds_status


Workload = tuple[Resource, Callable[..., str], Callable[..., dict[str, Any]]]


def test_statefulset_and_daemonset_ready(sync: Sync, workload: Workload) -> None:
    res, manifest, status = workload
    sync.repo.write("app.yaml", manifest("app", sync.ns))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(res, sync.ns, "app", status(_generation(sync, "app", res)))

    code, out = sync.run("--wait", "--timeout", "10s")
    assert code == 0, out
    assert [(o["kind"], o["action"], o["health"]) for o in out["objects"]] == [(res.kind, "unchanged", "Ready")]
    assert out["errors"] == []


def test_statefulset_and_daemonset_progressing_until_the_timeout(sync: Sync, workload: Workload) -> None:
    res, manifest, status = workload
    sync.repo.write("app.yaml", manifest("app", sync.ns))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(res, sync.ns, "app", status(_generation(sync, "app", res), ready=False))

    start = time.monotonic()
    code, out = sync.run("--wait", "--timeout", "1s")
    assert time.monotonic() - start >= 1.0  # it waited the whole timeout before giving up
    assert code == 1
    assert out["objects"][0]["health"] == "Progressing"
    assert len(out["errors"]) == 1
    want = "readyReplicas 1/2" if res is STS else "numberAvailable 2/3"
    assert f"{res.kind} {sync.ns}/app: still Progressing after 1s: {want}" == out["errors"][0]


def test_statefulset_and_daemonset_rollout_that_never_completes(sync: Sync, workload: Workload) -> None:
    """A new image: the controller picks it up but the rollout stalls, then finally completes."""
    res, manifest, status = workload
    sync.repo.write("app.yaml", manifest("app", sync.ns, image="app:1"))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(res, sync.ns, "app", status(_generation(sync, "app", res)))
    assert sync.run("--wait", "--timeout", "10s")[0] == 0

    sync.repo.write("app.yaml", manifest("app", sync.ns, image="app:2"))
    sync.repo.commit()
    code, out = sync.run("--wait", "--timeout", "1s")
    assert code == 1
    assert (out["objects"][0]["action"], out["objects"][0]["health"]) == ("configured", "Progressing")
    assert "has not observed the latest generation" in out["errors"][0]

    generation = _generation(sync, "app", res)
    sync.kube.patch_status(res, sync.ns, "app", status(generation, rolled_out=False))
    code, out = sync.run("--wait", "--timeout", "1s")
    assert code == 1
    assert (out["objects"][0]["action"], out["objects"][0]["health"]) == ("unchanged", "Progressing")
    # The API server defaults a StatefulSet's rollingUpdate.partition to 0, so kstatus counts updated replicas.
    want = "updatedReplicas 1/2" if res is STS else "updatedNumberScheduled 1/3"
    assert out["errors"][0].endswith(want)

    sync.kube.patch_status(res, sync.ns, "app", status(generation))
    code, out = sync.run("--wait", "--timeout", "10s")
    assert code == 0, out
    assert out["objects"][0]["health"] == "Ready"


def test_statefulset_and_daemonset_become_ready_while_waiting(sync: Sync, workload: Workload) -> None:
    res, manifest, status = workload
    sync.repo.write("app.yaml", manifest("app", sync.ns))
    sync.repo.commit()
    assert sync.run()[0] == 0
    generation = _generation(sync, "app", res)
    sync.kube.patch_status(res, sync.ns, "app", status(generation, ready=False))

    # The stand-in controller finishes the rollout a second into the wait.
    controller = threading.Timer(1.0, sync.kube.patch_status, (res, sync.ns, "app", status(generation)))
    controller.start()
    try:
        start = time.monotonic()
        code, out = sync.run("--wait", "--timeout", "60s")
        elapsed = time.monotonic() - start
    finally:
        controller.join()
    assert code == 0, out
    assert out["objects"][0]["health"] == "Ready"
    assert elapsed < 30  # it returned as soon as the rollout finished, not at the timeout
