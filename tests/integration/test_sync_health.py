"""`--wait`: rollout health with kstatus rules, driven by writing status through the status subresource."""

from __future__ import annotations

from typing import Any

from tests.servers.kube import DEPLOY, JOB, Sync, deployment


def _ready_status(generation: int, replicas: int) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
    }


def _generation(sync: Sync, name: str) -> int:
    live = sync.get(DEPLOY, name)
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
