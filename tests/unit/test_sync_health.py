"""kstatus rollout rules as a pure function of one live object."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.health import status_of
from automator.sync.model import Health


def deploy(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": status or {}}


READY = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
STS_READY = {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2,
             "currentRevision": "a", "updateRevision": "a"}  # fmt: skip
DS_READY = {"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 3}  # fmt: skip


def sts(status: dict[str, Any], *, partition: int | None = None, strategy: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": 2}
    if strategy:
        spec["updateStrategy"] = {"type": strategy}
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    return {"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": spec, "status": status}


def ds(status: dict[str, Any], *, strategy: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"updateStrategy": {"type": strategy}} if strategy else {}
    return {"kind": "DaemonSet", "metadata": {"generation": 2}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "health", "reason"),
    [
        (deploy(READY), Health.READY, "available"),
        (deploy({**READY, "observedGeneration": 2}), Health.PROGRESSING, "generation"),
        (deploy(), Health.PROGRESSING, "generation"),
        (deploy({**READY, "updatedReplicas": 1}), Health.PROGRESSING, "updatedReplicas 1/2"),
        (deploy({**READY, "availableReplicas": 1}), Health.PROGRESSING, "availableReplicas 1/2"),
        (deploy({**READY, "replicas": 3}), Health.PROGRESSING, "old replicas"),
        (
            deploy({**READY, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
            Health.FAILED,
            "deadline",
        ),
        (sts(STS_READY), Health.READY, "ready at the update revision"),
        (sts({**STS_READY, "replicas": 1}), Health.PROGRESSING, "replicas 1/2"),
        (sts({**STS_READY, "readyReplicas": 1}), Health.PROGRESSING, "readyReplicas 1/2"),
        (sts({**STS_READY, "replicas": 3}), Health.PROGRESSING, "1 extra replicas pending termination"),
        (sts({**STS_READY, "currentReplicas": 1}), Health.PROGRESSING, "currentReplicas 1/2"),
        (sts({**STS_READY, "updateRevision": "b"}), Health.PROGRESSING, "rolling update in progress: revision a -> b"),
        (sts({**STS_READY, "observedGeneration": 1}), Health.PROGRESSING, "generation"),
        # A canary held by a partition is done once the ordinals above it are updated (kstatus).
        (sts({**STS_READY, "updateRevision": "b", "updatedReplicas": 1}, partition=1), Health.READY, "partitioned"),
        (sts({**STS_READY, "updateRevision": "b", "updatedReplicas": 0}, partition=1), Health.PROGRESSING,
         "updatedReplicas 0/1"),
        (sts({**STS_READY, "updateRevision": "b"}, strategy="OnDelete"), Health.READY, "OnDelete"),
        (ds(DS_READY), Health.READY, "available"),
        (ds({**DS_READY, "numberAvailable": 2}), Health.PROGRESSING, "numberAvailable 2/3"),
        (ds({**DS_READY, "currentNumberScheduled": 2}), Health.PROGRESSING, "currentNumberScheduled 2/3"),
        (ds({**DS_READY, "updatedNumberScheduled": 1}), Health.PROGRESSING, "updatedNumberScheduled 1/3"),
        (ds({**DS_READY, "updatedNumberScheduled": 1}, strategy="OnDelete"), Health.READY, "available"),
        (ds({"observedGeneration": 2}), Health.PROGRESSING, "desiredNumberScheduled"),
        ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
         Health.READY, "completed"),
        ({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
         Health.FAILED, "failed"),
        ({"kind": "Job", "status": {}}, Health.PROGRESSING, "not complete"),
    ],
)  # fmt: skip
def test_status_of(obj: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(obj)
    assert got is health
    assert reason in why


# --- kstatus's rules for the other kinds it computes (cases written from its documented rules) ---


def obj(api: str, kind: str, status: dict[str, Any], spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"generation": 1, **meta},
        "spec": spec or {},
        "status": status,
    }


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


NEW_RS = cond("Progressing", "True", "NewReplicaSetAvailable")
AVAILABLE = cond("Available", "True", "MinimumReplicasAvailable")
ROLLED = {**READY, "conditions": [NEW_RS, AVAILABLE]}
DEADLINE = {"replicas": 2, "progressDeadlineSeconds": 600}
RUNNING_READY = {"phase": "Running", "conditions": [cond("Ready", "True")]}
CRASHING = {
    "phase": "Running",
    "conditions": [cond("Ready", "False")],
    "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
}
UNSCHEDULABLE = {"phase": "Pending", "conditions": [cond("PodScheduled", "False", "Unschedulable", "0/3 nodes")]}
RS_READY = {
    "observedGeneration": 1,
    "replicas": 2,
    "fullyLabeledReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}


@pytest.mark.parametrize(
    ("live", "health", "reason"),
    [
        # Deployment: the counts, then Progressing (with a deadline set) and Available
        (obj("apps/v1", "Deployment", {**ROLLED, "observedGeneration": 1}, DEADLINE), Health.READY, "all replicas"),
        (
            obj("apps/v1", "Deployment", {**READY, "observedGeneration": 1, "conditions": [AVAILABLE]}, DEADLINE),
            Health.PROGRESSING,
            "not NewReplicaSetAvailable",
        ),
        (
            obj(
                "apps/v1",
                "Deployment",
                {
                    **READY,
                    "observedGeneration": 1,
                    "conditions": [NEW_RS, cond("Available", "False", "MinimumReplicasUnavailable")],
                },
                DEADLINE,
            ),
            Health.PROGRESSING,
            "Deployment not Available: MinimumReplicasUnavailable",
        ),
        # Pod
        (obj("v1", "Pod", {"phase": "Succeeded"}), Health.READY, "completed successfully"),
        (obj("v1", "Pod", {"phase": "Failed"}), Health.FAILED, "not successfully"),
        (obj("v1", "Pod", RUNNING_READY), Health.READY, "the pod is Ready"),
        (
            obj("v1", "Pod", {"phase": "Running", "conditions": [cond("Ready", "False")]}),
            Health.PROGRESSING,
            "not Ready",
        ),
        (obj("v1", "Pod", CRASHING), Health.FAILED, "container app is in CrashLoopBackOff"),
        (obj("v1", "Pod", UNSCHEDULABLE), Health.FAILED, "cannot be scheduled: Unschedulable: 0/3 nodes"),
        (obj("v1", "Pod", {"phase": "Pending"}), Health.PROGRESSING, "Pending and not Ready"),
        # PersistentVolumeClaim
        (obj("v1", "PersistentVolumeClaim", {"phase": "Bound"}), Health.READY, "Bound"),
        (obj("v1", "PersistentVolumeClaim", {"phase": "Pending"}), Health.PROGRESSING, "not Bound: phase Pending"),
        # Service
        (obj("v1", "Service", {}, {"type": "ClusterIP"}), Health.READY, "Service is ready"),
        (obj("v1", "Service", {}, {"type": "LoadBalancer"}), Health.PROGRESSING, "no ingress address"),
        (
            obj("v1", "Service", {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}, {"type": "LoadBalancer"}),
            Health.READY,
            "Service is ready",
        ),
        # ReplicaSet
        (obj("apps/v1", "ReplicaSet", RS_READY, {"replicas": 2}), Health.READY, "all replicas"),
        (
            obj("apps/v1", "ReplicaSet", {**RS_READY, "readyReplicas": 1}, {"replicas": 2}),
            Health.PROGRESSING,
            "readyReplicas 1/2",
        ),
        (
            obj(
                "apps/v1",
                "ReplicaSet",
                {**RS_READY, "conditions": [cond("ReplicaFailure", "True", "FailedCreate")]},
                {"replicas": 2},
            ),
            Health.PROGRESSING,
            "ReplicaFailure: FailedCreate",
        ),
        (obj("apps/v1", "ReplicaSet", {"replicas": 2}, {"replicas": 2}), Health.PROGRESSING, "not observed"),
        # PodDisruptionBudget
        (
            obj(
                "policy/v1", "PodDisruptionBudget", {"observedGeneration": 1, "currentHealthy": 2, "desiredHealthy": 2}
            ),
            Health.READY,
            "budget met",
        ),
        (
            obj(
                "policy/v1", "PodDisruptionBudget", {"observedGeneration": 1, "currentHealthy": 1, "desiredHealthy": 2}
            ),
            Health.PROGRESSING,
            "budget not met: 1 healthy, 2 desired",
        ),
        # CronJob: always Current
        (obj("batch/v1", "CronJob", {}), Health.READY, "always Current"),
        # CustomResourceDefinition
        (
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {"conditions": [cond("Established", "True")]}),
            Health.READY,
            "established",
        ),
        (
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", {"conditions": []}),
            Health.PROGRESSING,
            "not Established",
        ),
        (
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                {"conditions": [cond("NamesAccepted", "False", "ListKindConflict")]},
            ),
            Health.FAILED,
            "names not accepted: ListKindConflict",
        ),
        # Terminating, whatever the kind: not Current while it is being deleted
        (obj("v1", "Pod", RUNNING_READY, deletionTimestamp="2026-12-01T00:00:00Z"), Health.PROGRESSING, "Terminating"),
    ],
)
def test_kstatus_rules_for_the_kinds_it_computes(live: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(live)
    assert got is health, why
    assert reason in why
