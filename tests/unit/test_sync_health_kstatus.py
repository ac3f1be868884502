"""``status_of`` against kstatus, rule by rule (sigs.k8s.io/cli-utils ``pkg/kstatus/status``).

Each case restates one rule of kstatus's ``Compute``: the generic checks every kind goes through
first (deletion, generation, the Reconciling and Stalled conditions), the rules of the kinds it
knows (``core.go``), the Ready condition of every other kind, and the objects it cannot read
(an error there, Unknown here). The cases were written from reading those rules and the
situations ``status_compute_test.go`` exercises; where we differ on purpose, the last table
says so and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from automator.sync.health import NOTHING_REPORTED, status_of
from automator.sync.model import Health

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
IN_PROGRESS, CURRENT, FAILED = Health.PROGRESSING, Health.READY, Health.FAILED
TERMINATING, UNKNOWN = Health.TERMINATING, Health.UNKNOWN


def k(
    api: str,
    kind: str,
    status: Any = None,
    spec: dict[str, Any] | None = None,
    *,
    generation: Any = 1,
    **meta: Any,
) -> dict[str, Any]:
    """One live object as the API server answers it (``status`` left out when None)."""
    metadata: dict[str, Any] = {"name": "test", "namespace": "qual", **meta}
    if generation is not None:
        metadata["generation"] = generation
    out: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": metadata}
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def c(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    out = {"type": kind, "status": status}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def created(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


DEP_COUNTS = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
NEW_RS = c("Progressing", "True", "NewReplicaSetAvailable")
AVAILABLE = c("Available", "True", "MinimumReplicasAvailable")
DEP_OK = {**DEP_COUNTS, "conditions": [NEW_RS, AVAILABLE]}
DEP2 = {"replicas": 2}
STS_OK = {"observedGeneration": 1, "replicas": 4, "readyReplicas": 4, "currentReplicas": 4}
DS_OK = {
    "observedGeneration": 1,
    "desiredNumberScheduled": 4,
    "currentNumberScheduled": 4,
    "updatedNumberScheduled": 4,
    "numberAvailable": 4,
    "numberReady": 4,
}
RS_OK = {"observedGeneration": 1, "replicas": 4, "readyReplicas": 4, "availableReplicas": 4, "fullyLabeledReplicas": 4}
RS4 = {"replicas": 4}
UNSCHEDULABLE = {"phase": "Pending", "conditions": [c("PodScheduled", "False", "Unschedulable", "0/3 nodes")]}
CRASHING = {"name": "nginx", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
CRD = "apiextensions.k8s.io/v1"
NAMES_OK = c("NamesAccepted", "True", "NoConflicts")


RULES: list[tuple[str, dict[str, Any], Health, str]] = [
    # --- generic checks, before any kind's own rules --------------------------------------------
    ("deleted Deployment", k("apps/v1", "Deployment", DEP_OK, deletionTimestamp=created(1)),
     TERMINATING, "being deleted"),
    ("deleted ConfigMap: even an always-ready kind", k("v1", "ConfigMap", deletionTimestamp=created(1)),
     TERMINATING, "being deleted"),
    ("empty deletionTimestamp is not a deletion", k("v1", "ConfigMap", deletionTimestamp=""), CURRENT, "always"),
    ("PDB, generation not observed", k("policy/v1", "PodDisruptionBudget", {"observedGeneration": 1}, generation=2),
     IN_PROGRESS, "has not observed the latest generation: generation 2, observed 1"),
    ("observed generation ahead of the generation", k("example.com/v1", "Widget", {"observedGeneration": 3},
     generation=2), IN_PROGRESS, "has not observed the latest generation"),
    ("no metadata.generation: nothing to compare", k("example.com/v1", "Widget", {"observedGeneration": 3},
     generation=None), CURRENT, NOTHING_REPORTED),
    ("Reconciling on a built-in kind", k("apps/v1", "Deployment", {**DEP_OK, "conditions": [
     NEW_RS, AVAILABLE, c("Reconciling", "True", "Rollout", "rolling")]}),
     IN_PROGRESS, "Reconciling: Rollout: rolling"),
    ("Stalled on a built-in kind", k("v1", "Service", {"conditions": [c("Stalled", "True", "NoIP", "exhausted")]}),
     FAILED, "Stalled: NoIP: exhausted"),
    ("the first of Reconciling and Stalled decides: Reconciling",
     k("example.com/v1", "Widget", {"conditions": [c("Reconciling", "True"), c("Stalled", "True")]}),
     IN_PROGRESS, "Reconciling"),
    ("the first of Reconciling and Stalled decides: Stalled",
     k("example.com/v1", "Widget", {"conditions": [c("Stalled", "True"), c("Reconciling", "True")]}),
     FAILED, "Stalled"),
    ("Reconciling False is normal", k("example.com/v1", "Widget", {"conditions": [c("Reconciling", "False")]}),
     CURRENT, NOTHING_REPORTED),
    # --- the Ready condition: every kind without rules of its own -------------------------------
    ("custom resource, no status", k("something/v1", "MyCR"), CURRENT, NOTHING_REPORTED),
    ("custom resource, Ready True", k("something/v1", "MyCR", {"conditions": [c("Ready", "True", "AllOk")]}),
     CURRENT, "Ready"),
    ("custom resource, Ready False", k("something/v1", "MyCR", {"observedGeneration": 1, "conditions": [
     c("Ready", "False", "NotReadyYet")]}), IN_PROGRESS, "Ready is False: NotReadyYet"),
    ("custom resource, Ready Unknown", k("something/v1", "MyCR", {"conditions": [c("Ready", "Unknown")]}),
     IN_PROGRESS, "Ready is Unknown"),
    ("custom resource, Ready with a status no convention has",
     k("something/v1", "MyCR", {"conditions": [c("Ready", "Maybe")]}), CURRENT, NOTHING_REPORTED),
    ("custom resource, other conditions only", k("something/v1", "MyCR", {"conditions": [c("SomeCondition", "False")]}),
     CURRENT, NOTHING_REPORTED),
    ("custom resource, generation not observed", k("something/v1", "MyCR", {"observedGeneration": 1}, generation=2),
     IN_PROGRESS, "has not observed"),
    ("built-in kind without rules of its own reads Ready too",
     k("networking.k8s.io/v1", "Ingress", {"conditions": [c("Ready", "False", "NoBackend")]}),
     IN_PROGRESS, "Ready is False: NoBackend"),
    ("built-in kind without rules, no status", k("networking.k8s.io/v1", "Ingress", {}), CURRENT, NOTHING_REPORTED),
    ("a kind with rules of its own ignores Ready", k("v1", "PersistentVolumeClaim", {"phase": "Bound", "conditions": [
     c("Ready", "False")]}), CURRENT, "Bound"),
    ("a custom kind named like a built-in one follows the generic rules",
     k("batch.volcano.sh/v1alpha1", "Job", {"conditions": [c("Ready", "True")]}), CURRENT, "Ready"),
    # --- what kstatus cannot read: an error there, Unknown here --------------------------------
    ("status is a string", k("example.com/v1", "Widget", "Active"), UNKNOWN, "status is not an object"),
    ("conditions is a map", k("example.com/v1", "Widget", {"conditions": {"Ready": True}}),
     UNKNOWN, "status.conditions is not a list"),
    ("a condition is a string", k("example.com/v1", "Widget", {"conditions": ["Ready"]}),
     UNKNOWN, "status.conditions[0] is not an object"),
    ("a condition's status is a boolean", k("example.com/v1", "Widget", {"conditions": [{"type": "Ready",
     "status": True}]}), UNKNOWN, "status.conditions[0].status is not a string"),
    ("observedGeneration is a string", k("example.com/v1", "Widget", {"observedGeneration": "2"}),
     UNKNOWN, "status.observedGeneration is not an integer"),
    ("observedGeneration is a string, no generation to compare", k("example.com/v1", "Widget",
     {"observedGeneration": "2"}, generation=None), CURRENT, NOTHING_REPORTED),
    ("generation is a string", k("example.com/v1", "Widget", {}, generation="2"),
     UNKNOWN, "metadata.generation is not an integer"),
    ("deletionTimestamp is a number", k("example.com/v1", "Widget", deletionTimestamp=5),
     UNKNOWN, "metadata.deletionTimestamp is not a string"),
    ("a built-in kind's unreadable conditions", k("apps/v1", "Deployment", {**DEP_COUNTS, "conditions": "ok"}),
     UNKNOWN, "status.conditions is not a list"),
    # --- Deployment ------------------------------------------------------------------------------
    ("Deployment, no status", k("apps/v1", "Deployment"), IN_PROGRESS, "replicas 0/1"),
    ("Deployment, rolled out", k("apps/v1", "Deployment", DEP_OK), CURRENT, "available"),
    ("Deployment, extensions group", k("extensions/v1beta1", "Deployment"), IN_PROGRESS, "replicas 0/1"),
    ("Deployment with a deadline, Progressing not NewReplicaSetAvailable", k("apps/v1", "Deployment", {**DEP_COUNTS,
     "conditions": [c("Progressing", "False", "Some reason"), AVAILABLE]}, {"progressDeadlineSeconds": 45}),
     IN_PROGRESS, "the new ReplicaSet is not available yet"),
    ("Deployment without a deadline needs no Progressing condition", k("apps/v1", "Deployment", {**DEP_COUNTS,
     "conditions": [AVAILABLE]}), CURRENT, "available"),
    ("Deployment, a deadline of MaxInt32 means none", k("apps/v1", "Deployment", {**DEP_COUNTS,
     "conditions": [AVAILABLE]}, {"progressDeadlineSeconds": 2147483647}), CURRENT, "available"),
    ("Deployment, Available False", k("apps/v1", "Deployment", {**DEP_COUNTS, "conditions": [NEW_RS,
     c("Available", "False", "MinimumReplicasUnavailable")]}), IN_PROGRESS, "Deployment not Available"),
    ("Deployment, no Available condition", k("apps/v1", "Deployment", DEP_COUNTS), IN_PROGRESS,
     "Deployment not Available"),
    ("Deployment, progress deadline exceeded, whatever the counts", k("apps/v1", "Deployment", {"conditions": [
     c("Progressing", "False", "ProgressDeadlineExceeded", "too slow")]}),
     FAILED, "progress deadline exceeded: too slow"),
    ("Deployment, too few updated", k("apps/v1", "Deployment", {**DEP_OK, "replicas": 2, "updatedReplicas": 1}, DEP2),
     IN_PROGRESS, "updatedReplicas 1/2"),
    ("Deployment, old replicas left", k("apps/v1", "Deployment", {**DEP_OK, "replicas": 3, "updatedReplicas": 2,
     "availableReplicas": 2, "readyReplicas": 2}, DEP2), IN_PROGRESS, "1 old replicas pending termination"),
    ("Deployment, updated but not available", k("apps/v1", "Deployment", {**DEP_OK, "replicas": 2,
     "updatedReplicas": 2, "readyReplicas": 2}, DEP2), IN_PROGRESS, "availableReplicas 1/2"),
    ("Deployment, available but not ready", k("apps/v1", "Deployment", {**DEP_OK, "replicas": 2, "updatedReplicas": 2,
     "availableReplicas": 2}, DEP2), IN_PROGRESS, "readyReplicas 1/2"),
    # --- StatefulSet -----------------------------------------------------------------------------
    ("StatefulSet, no status", k("apps/v1", "StatefulSet"), IN_PROGRESS, "replicas 0/1"),
    ("StatefulSet, status without replicas", k("apps/v1", "StatefulSet", {"observedGeneration": 1,
     "currentReplicas": 1}), IN_PROGRESS, "replicas 0/1"),
    ("StatefulSet, all current", k("apps/v1", "StatefulSet", STS_OK, {"replicas": 4}), CURRENT, "update revision"),
    ("StatefulSet, too few ready", k("apps/v1", "StatefulSet", {**STS_OK, "readyReplicas": 2}, {"replicas": 4}),
     IN_PROGRESS, "readyReplicas 2/4"),
    ("StatefulSet, too few current", k("apps/v1", "StatefulSet", {**STS_OK, "currentReplicas": 2}, {"replicas": 4}),
     IN_PROGRESS, "currentReplicas 2/4"),
    ("StatefulSet, extra pods", k("apps/v1", "StatefulSet", {**STS_OK, "replicas": 8}, {"replicas": 4}),
     IN_PROGRESS, "4 extra replicas pending termination"),
    ("StatefulSet, revisions differ", k("apps/v1", "StatefulSet", {**STS_OK, "currentRevision": "a",
     "updateRevision": "b"}, {"replicas": 4}), IN_PROGRESS, "revision a -> b"),
    ("StatefulSet, OnDelete: the user rolls it out", k("apps/v1", "StatefulSet", {}, {"replicas": 4,
     "updateStrategy": {"type": "OnDelete"}}), CURRENT, "OnDelete"),
    ("StatefulSet, partition not reached", k("apps/v1", "StatefulSet", {**STS_OK, "updatedReplicas": 1}, {"replicas": 4,
     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
     IN_PROGRESS, "updatedReplicas 1/2"),
    ("StatefulSet, partition reached", k("apps/v1", "StatefulSet", {**STS_OK, "updatedReplicas": 2,
     "currentReplicas": 2}, {"replicas": 4, "updateStrategy": {"rollingUpdate": {"partition": 2}}}),
     CURRENT, "partitioned rollout complete: 2 updated"),
    # --- DaemonSet -------------------------------------------------------------------------------
    ("DaemonSet, no status", k("apps/v1", "DaemonSet"), IN_PROGRESS, "status.observedGeneration"),
    ("DaemonSet, no generation", k("apps/v1", "DaemonSet", DS_OK, generation=None), IN_PROGRESS, "metadata.generation"),
    ("DaemonSet, no desired number", k("apps/v1", "DaemonSet", {"observedGeneration": 1, "currentReplicas": 1}),
     IN_PROGRESS, "desiredNumberScheduled"),
    ("DaemonSet, all scheduled", k("apps/v1", "DaemonSet", DS_OK), CURRENT, "available"),
    ("DaemonSet, extensions group", k("extensions/v1beta1", "DaemonSet", DS_OK), CURRENT, "available"),
    ("DaemonSet, generation not observed", k("apps/v1", "DaemonSet", DS_OK, generation=2),
     IN_PROGRESS, "has not observed"),
    ("DaemonSet, too few current", k("apps/v1", "DaemonSet", {**DS_OK, "currentNumberScheduled": 3}),
     IN_PROGRESS, "currentNumberScheduled 3/4"),
    ("DaemonSet, too few updated", k("apps/v1", "DaemonSet", {**DS_OK, "updatedNumberScheduled": 1}),
     IN_PROGRESS, "updatedNumberScheduled 1/4"),
    ("DaemonSet, OnDelete still counts updated pods", k("apps/v1", "DaemonSet", {**DS_OK, "updatedNumberScheduled": 1},
     {"updateStrategy": {"type": "OnDelete"}}), IN_PROGRESS, "updatedNumberScheduled 1/4"),
    ("DaemonSet, too few available", k("apps/v1", "DaemonSet", {**DS_OK, "numberAvailable": 2}),
     IN_PROGRESS, "numberAvailable 2/4"),
    ("DaemonSet, too few ready", k("apps/v1", "DaemonSet", {**DS_OK, "numberReady": 2}),
     IN_PROGRESS, "numberReady 2/4"),
    # --- ReplicaSet ------------------------------------------------------------------------------
    ("ReplicaSet, no status", k("apps/v1", "ReplicaSet"), IN_PROGRESS, "fullyLabeledReplicas 0/1"),
    ("ReplicaSet, ready, ReplicaFailure False", k("apps/v1", "ReplicaSet", {**RS_OK, "conditions": [
     c("ReplicaFailure", "False")]}, RS4), CURRENT, "all replicas"),
    ("ReplicaSet, ready", k("apps/v1", "ReplicaSet", RS_OK, RS4), CURRENT, "all replicas"),
    ("ReplicaSet, too few available", k("apps/v1", "ReplicaSet", {**RS_OK, "availableReplicas": 2}, RS4),
     IN_PROGRESS, "availableReplicas 2/4"),
    ("ReplicaSet, too few ready", k("apps/v1", "ReplicaSet", {**RS_OK, "readyReplicas": 2}, RS4),
     IN_PROGRESS, "readyReplicas 2/4"),
    ("ReplicaSet, ReplicaFailure", k("apps/v1", "ReplicaSet", {**RS_OK, "conditions": [
     c("ReplicaFailure", "True", "FailedCreate", "quota")]}, RS4), IN_PROGRESS, "ReplicaFailure: FailedCreate: quota"),
    ("ReplicaSet, extra pods", k("apps/v1", "ReplicaSet", {**RS_OK, "replicas": 5}, RS4),
     IN_PROGRESS, "1 extra replicas pending termination"),
    # --- PodDisruptionBudget: Current once its generation is observed ---------------------------
    ("PDB, observed", k("policy/v1", "PodDisruptionBudget", {"observedGeneration": 1}), CURRENT, "computed"),
    ("PDB, budget short: kstatus does not read it", k("policy/v1beta1", "PodDisruptionBudget", {"observedGeneration": 1,
     "currentHealthy": 1, "desiredHealthy": 2}), CURRENT, "computed"),
    # --- Job (a started Job: see the differences below) -------------------------------------------
    ("Job, no status", k("batch/v1", "Job"), IN_PROGRESS, "not started"),
    ("Job, complete", k("batch/v1", "Job", {"succeeded": 1, "conditions": [c("Complete", "True")]}),
     CURRENT, "completed: succeeded 1/1"),
    ("Job, failed", k("batch/v1", "Job", {"succeeded": 3, "failed": 1, "conditions": [
     c("Failed", "True", "JobFailed")]}, {"completions": 4}), FAILED, "failed: JobFailed: failed 1/4"),
    ("Job, suspended", k("batch/v1", "Job", {"conditions": [c("Suspended", "True")]}, {"suspend": True}),
     CURRENT, "suspended"),
    ("Job, being suspended", k("batch/v1", "Job", {"conditions": [c("Suspended", "False")]}, {"suspend": True}),
     IN_PROGRESS, "not started"),
    ("Job, being resumed", k("batch/v1", "Job", {"conditions": [c("Suspended", "True")]}, {"suspend": False}),
     IN_PROGRESS, "not started"),
    # --- Pod -------------------------------------------------------------------------------------
    ("Pod, no status", k("v1", "Pod"), IN_PROGRESS, "no phase yet"),
    ("Pod, Ready", k("v1", "Pod", {"phase": "Running", "conditions": [c("Ready", "True")]}),
     CURRENT, "the pod is Ready"),
    ("Pod, completed", k("v1", "Pod", {"phase": "Succeeded", "conditions": [c("Ready", "False", "PodCompleted")]}),
     CURRENT, "completed successfully"),
    ("Pod, unschedulable within the schedule window", k("v1", "Pod", UNSCHEDULABLE, creationTimestamp=created(14)),
     IN_PROGRESS, "has not been scheduled yet"),
    ("Pod, unschedulable past the schedule window", k("v1", "Pod", UNSCHEDULABLE, creationTimestamp=created(16)),
     FAILED, "cannot be scheduled: Unschedulable: 0/3 nodes"),
    ("Pod, unschedulable, no creation time", k("v1", "Pod", UNSCHEDULABLE), FAILED, "cannot be scheduled"),
    ("Pod, crash loop", k("v1", "Pod", {"phase": "Running", "conditions": [c("PodScheduled", "False", "Unschedulable")],
     "containerStatuses": [CRASHING, {"name": "sidecar", "state": {"running": {}}}]}),
     FAILED, "containers in CrashLoopBackOff: nginx"),
    ("Pod, Ready even with a container crash-looping", k("v1", "Pod", {"phase": "Running", "conditions": [
     c("Ready", "True")], "containerStatuses": [CRASHING]}), CURRENT, "Ready"),
    ("Pod, running, not Ready", k("v1", "Pod", {"phase": "Running", "conditions": [c("Ready", "False")]}),
     IN_PROGRESS, "running but not Ready"),
    ("Pod, pending", k("v1", "Pod", {"phase": "Pending"}), IN_PROGRESS, "Pending"),
    ("Pod, pending, init container crash-looping: only running pods' containers count",
     k("v1", "Pod", {"phase": "Pending", "initContainerStatuses": [CRASHING]}), IN_PROGRESS, "Pending"),
    ("Pod, a phase no Kubernetes version has", k("v1", "Pod", {"phase": "Unknown"}), UNKNOWN, "unknown phase Unknown"),
    # --- PersistentVolumeClaim -------------------------------------------------------------------
    ("PVC, no status", k("v1", "PersistentVolumeClaim"), IN_PROGRESS, "not Bound: phase unknown"),
    ("PVC, Pending", k("v1", "PersistentVolumeClaim", {"phase": "Pending"}), IN_PROGRESS, "not Bound: phase Pending"),
    ("PVC, Bound", k("v1", "PersistentVolumeClaim", {"phase": "Bound"}), CURRENT, "Bound"),
    # --- Service ---------------------------------------------------------------------------------
    ("Service, default type", k("v1", "Service"), CURRENT, "Service is ready"),
    ("Service, NodePort", k("v1", "Service", spec={"type": "NodePort"}), CURRENT, "Service is ready"),
    ("Service, LoadBalancer without a cluster IP", k("v1", "Service", spec={"type": "LoadBalancer"}),
     IN_PROGRESS, "no cluster IP yet"),
    ("Service, LoadBalancer with a cluster IP: kstatus does not wait for the ingress", k("v1", "Service",
     spec={"type": "LoadBalancer", "clusterIP": "1.2.3.4"}), CURRENT, "Service is ready"),
    # --- always Current once the generic checks pass --------------------------------------------
    ("CronJob, no status", k("batch/v1", "CronJob"), CURRENT, "always Current"),
    ("CronJob, empty status", k("batch/v1", "CronJob", {}), CURRENT, "always Current"),
    ("ConfigMap", k("v1", "ConfigMap"), CURRENT, "always Current"),
    ("Secret", k("v1", "Secret"), CURRENT, "always Current"),
    # --- CustomResourceDefinition ----------------------------------------------------------------
    ("CRD, no conditions", k(CRD, "CustomResourceDefinition"), IN_PROGRESS, "not Established yet"),
    ("CRD, installing", k(CRD, "CustomResourceDefinition", {"conditions": [NAMES_OK,
     c("Established", "False", "Installing")]}), IN_PROGRESS, "not Established yet"),
    ("CRD, names not accepted", k(CRD, "CustomResourceDefinition", {"conditions": [
     c("NamesAccepted", "False", "KindConflict", "Widget is already in use")]}),
     FAILED, "KindConflict: Widget is already in use"),
    ("CRD, not established for another reason", k(CRD, "CustomResourceDefinition", {"conditions": [NAMES_OK,
     c("Established", "False", "NotAccepted", "not all names are accepted")]}), FAILED, "NotAccepted"),
    ("CRD, established", k(CRD, "CustomResourceDefinition", {"conditions": [NAMES_OK,
     c("Established", "True", "InitialNamesAccepted")]}), CURRENT, "established"),
]  # fmt: skip


@pytest.mark.parametrize(("live", "health", "reason"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_kstatus_rules(live: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(live, now=NOW)
    assert (got, reason in why) == (health, True), why


# Where we differ from kstatus on purpose: (our answer, kstatus's answer, why).
DIFFERENCES: list[tuple[str, dict[str, Any], Health, str]] = [
    # --wait promises that a Job has run: kstatus calls a started Job Current while it runs.
    ("Job, started", k("batch/v1", "Job", {"startTime": "2019-06-04T01:17:13Z", "succeeded": 3, "active": 2,
     "conditions": [c("Failed", "False"), c("Complete", "False")]}, {"completions": 10, "parallelism": 2}),
     IN_PROGRESS, "Job running: succeeded 3/10, active 2, failed 0"),
    # For the same reason a bare Pod that ran and failed is Failed, as a Job that failed is
    # (kstatus: Current, "Pod has completed, but not successfully").
    ("Pod, completed unsuccessfully", k("v1", "Pod", {"phase": "Failed", "conditions": [
     c("Ready", "False", "PodCompleted")]}), FAILED, "the pod has completed, but not successfully"),
]  # fmt: skip


@pytest.mark.parametrize(("live", "health", "reason"), [r[1:] for r in DIFFERENCES], ids=[r[0] for r in DIFFERENCES])
def test_where_we_differ_from_kstatus_on_purpose(live: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(live, now=NOW)
    assert (got, why) == (health, reason)
    assert got is not CURRENT  # kstatus would call it Current


def test_a_hand_built_object_without_apiversion_is_judged_by_its_kind() -> None:
    assert status_of({"kind": "Deployment", "metadata": {"generation": 1}, "status": DEP_OK}, now=NOW)[0] is CURRENT
    assert status_of({"kind": "DaemonSet", "metadata": {"generation": 1}}, now=NOW)[0] is IN_PROGRESS


def test_every_status_kstatus_computes_has_a_health() -> None:
    # InProgress, Failed, Current, Terminating, Unknown (NotFound is the wait's: the object is gone)
    assert [str(h) for h in Health] == ["Ready", "Progressing", "Failed", "Terminating", "Unknown"]


def test_a_creation_time_without_a_zone_is_utc() -> None:
    pending = k("v1", "Pod", UNSCHEDULABLE, creationTimestamp=created(1).rstrip("Z"))
    assert status_of(pending, now=NOW)[0] is IN_PROGRESS
