"""`--wait`: rollout health with kstatus rules, driven by writing status through the status subresource."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from automator.sync.cluster import Resource
from tests.servers.kube import DEPLOY, DS, JOB, STS, Sync, configmap, daemonset, deployment, statefulset


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

    # started and running: kstatus would call it Current, --wait waits for it to finish
    sync.repo.write("run.yaml", job.format(name="run"))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kube.patch_status(JOB, sync.ns, "run", {"startTime": "2026-12-01T00:00:00Z", "active": 1})
    code, out = sync.run("--wait", "--timeout", "1s")
    assert code == 1
    assert {o["name"]: o["health"] for o in out["objects"]} == {"bad": "Failed", "ok": "Ready", "run": "Progressing"}
    running = "Job running: succeeded 0/1, active 1, failed 0"
    assert f"Job {sync.ns}/run: still Progressing after 1s: {running}" in out["errors"]


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


# -- the other kinds kstatus computes: a Pod, a CRD, a PVC ----------------------------------------

POD = Resource("", "v1", "Pod", "pods", True)
PVC = Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True)


def _pod(name: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers: [{{name: app, image: "nginx:1.25"}}]
"""


def _health(out: dict[str, Any]) -> dict[str, Any]:
    return {f"{o['kind']}/{o['name']}": o.get("health") for o in out["objects"]}


def test_pod_ready_crash_looping_and_failed(sync: Sync) -> None:
    sync.repo.write("web.yaml", _pod("web"))
    sync.repo.commit()
    # created and waited for in one run: the API server makes it Pending; no scheduler runs here
    code, out = sync.run("--wait", "--timeout", "1s")
    assert (code, _health(out)) == (1, {"Pod/web": "Progressing"}), out
    assert out["errors"] == [f"Pod {sync.ns}/web: still Progressing after 1s: the pod is Pending"]

    ready = {"type": "Ready", "status": "True"}
    sync.kube.patch_status(POD, sync.ns, "web", {"phase": "Running", "conditions": [ready]})
    code, out = sync.run("--wait", "--timeout", "10s")
    assert (code, _health(out)) == (0, {"Pod/web": "Ready"}), out

    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}
    crashing = {
        "name": "app",
        "image": "nginx:1.25",
        "imageID": "",
        "ready": False,
        "restartCount": 5,
        "state": waiting,
    }
    sync.kube.patch_status(
        POD,
        sync.ns,
        "web",
        {"phase": "Running", "conditions": [{**ready, "status": "False"}], "containerStatuses": [crashing]},
    )
    code, out = sync.run("--wait", "--timeout", "10s")
    assert (code, _health(out)) == (1, {"Pod/web": "Failed"}), out
    assert out["errors"] == [f"Pod {sync.ns}/web: Failed: containers in CrashLoopBackOff: app"]

    # a bare pod that ran and failed is Failed, as a failed Job is (kstatus would call it Current)
    sync.kube.patch_status(POD, sync.ns, "web", {"phase": "Failed"})
    code, out = sync.run("--wait", "--timeout", "10s")
    assert (code, _health(out)) == (1, {"Pod/web": "Failed"}), out
    assert "the pod has completed, but not successfully" in out["errors"][0]


def test_an_unschedulable_pod_fails_once_the_schedule_window_has_passed(sync: Sync) -> None:
    sync.repo.write("web.yaml", _pod("web"))
    sync.repo.commit()
    assert sync.run()[0] == 0
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
    sync.kube.patch_status(POD, sync.ns, "web", {"phase": "Pending", "conditions": [unschedulable]})

    # moments after its creation, kstatus gives the scheduler time (SCHEDULE_WINDOW)
    code, out = sync.run("--wait", "--timeout", "1s")
    assert (code, _health(out)) == (1, {"Pod/web": "Progressing"}), out
    assert out["errors"][0].endswith("the pod has not been scheduled yet")

    # still unschedulable once the window has passed: Failed, and the wait ends there
    code, out = sync.run("--wait", "--timeout", "60s")
    assert (code, _health(out)) == (1, {"Pod/web": "Failed"}), out
    assert out["errors"] == [f"Pod {sync.ns}/web: Failed: the pod cannot be scheduled: Unschedulable: 0/3 nodes"]


def _crd(kind: str, short: str) -> str:
    plural = kind.lower() + "s"
    return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.health.example.com
spec:
  group: health.example.com
  scope: Namespaced
  names: {{plural: {plural}, singular: {plural}-one, kind: {kind}, listKind: {kind}List, shortNames: [{short}]}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


def test_crd_established_and_names_not_accepted(sync: Sync) -> None:
    """The API server's own naming and establishing controllers write a CRD's status.

    They also rewrite it within moments, so a CRD not yet established (Progressing) cannot be
    held here: that rule is in the unit table (test_sync_health_kstatus)."""
    suffix = "".join(c for c in sync.name.title() if c.isalpha())[:20]
    gizmo, gadget = f"Gizmo{suffix}", f"Gadget{suffix}"
    names = {k: f"CustomResourceDefinition/{k.lower()}s.health.example.com" for k in (gizmo, gadget)}
    sync.repo.write("gizmo.yaml", _crd(gizmo, "gz" + suffix.lower()))
    sync.repo.write("gadget.yaml", _crd(gadget, "gd" + suffix.lower()))
    sync.repo.commit()
    code, out = sync.run("--wait", "--timeout", "30s")
    assert (code, _health(out)) == (0, {names[gizmo]: "Ready", names[gadget]: "Ready"}), out

    # the gadget CRD now asks for the gizmo's short name: its new names are refused, its old ones still served
    sync.repo.write("gadget.yaml", _crd(gadget, "gz" + suffix.lower()))
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    crds = sync.kube.resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert crds is not None

    def refused() -> bool:
        live = sync.kube.get(crds, "", names[gadget].partition("/")[2]) or {}
        conditions = (live.get("status") or {}).get("conditions") or []
        return any(c["type"] == "NamesAccepted" and c["status"] == "False" for c in conditions)

    deadline = time.monotonic() + 30
    while not refused() and time.monotonic() < deadline:
        time.sleep(0.1)  # the naming controller runs in the API server: poll for it, bounded
    code, out = sync.run("--wait", "--timeout", "10s")
    assert (code, _health(out)) == (1, {names[gizmo]: "Ready", names[gadget]: "Failed"}), out
    [error] = out["errors"]
    assert error.startswith(f"{names[gadget].replace('/', ' ')}: Failed: names not accepted: ShortNamesConflict")


def test_wait_for_a_pvc_until_bound_and_while_it_is_deleted(sync: Sync) -> None:
    """A kind that is not a workload is waited for until its status says Current, up to --timeout."""
    sync.repo.write(
        "data.yaml",
        """apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  finalizers: [example.com/hold]
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
""",
    )
    sync.repo.write("settings.yaml", configmap("settings", None, {"k": "v"}))
    sync.repo.commit()
    code, out = sync.run("--wait", "--timeout", "1s")
    # a ConfigMap has no status: it is not waited for (nor fetched), so it has no health
    assert (code, _health(out)) == (1, {"ConfigMap/settings": None, "PersistentVolumeClaim/data": "Progressing"}), out
    [error] = out["errors"]
    assert error.startswith(f"PersistentVolumeClaim {sync.ns}/data: still Progressing after 1s: not Bound: phase ")

    # the stand-in volume controller binds it a second into the wait
    binder = threading.Timer(1.0, sync.kube.patch_status, (PVC, sync.ns, "data", {"phase": "Bound"}))
    binder.start()
    try:
        code, out = sync.run("--wait", "--timeout", "60s")
    finally:
        binder.join()
    assert (code, _health(out)["PersistentVolumeClaim/data"], out["errors"]) == (0, "Ready", []), out

    # deleted by someone, held by its finalizer: Terminating is not healthy
    sync.kubectl("-n", sync.ns, "delete", "pvc", "data", "--wait=false")
    try:
        code, out = sync.run("--wait", "--timeout", "1s")
        assert (code, _health(out)["PersistentVolumeClaim/data"]) == (1, "Terminating"), out
        assert out["errors"] == [
            f"PersistentVolumeClaim {sync.ns}/data: still Terminating after 1s: the object is being deleted"
        ]
    finally:
        sync.kubectl("-n", sync.ns, "patch", "pvc", "data", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
