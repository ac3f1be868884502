"""Workload health with kstatus's rollout rules, and ``--wait`` up to a deadline.

``status_of`` is a pure function of one live object: the rules of sigs.k8s.io/cli-utils
kstatus for Deployments (counts, then the Progressing and Available conditions), StatefulSets,
DaemonSets, Jobs, ReplicaSets, Pods (a crash loop or an unschedulable pod is Failed), PVCs,
Services, PodDisruptionBudgets, CronJobs and CRDs, and kstatus's generic rules for custom
resources (``observedGeneration``, then the ``Stalled``, ``Reconciling`` and ``Ready``
conditions that Flux, cert-manager, Crossplane and most operators report). Where we differ on
purpose: kstatus's Terminating is Progressing here (``--wait`` waits for it), and a Job that has
started is Progressing until Complete or Failed, as ``--wait`` promises. ``wait_healthy``
polls what a sync touched until each is Ready or Failed, or the timeout leaves it Progressing;
a custom resource that reports none of those is not waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from automator.sync.cluster import Cluster
from automator.sync.model import Action, Health, SyncResult

WAITED_KINDS = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("batch", "Job")}
# the other built-in kinds kstatus computes a status for, with rules of their own below
KSTATUS_KINDS = {
    ("", "Pod"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("apps", "ReplicaSet"),
    ("policy", "PodDisruptionBudget"),
    ("batch", "CronJob"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
}
STATUS_GRACE = 5.0  # seconds a custom resource just written may take to report a status
NO_STATUS_YET = "no status reported yet"
# API groups Kubernetes serves itself; any other group is a custom resource's
BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "autoscaling", "policy", "extensions"}
    | {
        f"{g}.k8s.io"
        for g in (
            "admissionregistration", "apiextensions", "apiregistration", "authentication", "authorization",
            "certificates", "coordination", "discovery", "events", "flowcontrol.apiserver", "internal.apiserver",
            "networking", "node", "rbac.authorization", "resource", "scheduling", "storage", "storagemigration",
        )
    }
)  # fmt: skip


def is_custom(group: str) -> bool:
    return group not in BUILTIN_GROUPS


def _status(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """``status`` and its conditions by type, tolerating shapes a custom resource may have."""
    status = obj.get("status")
    status = status if isinstance(status, dict) else {}
    conditions = status.get("conditions")
    listed = conditions if isinstance(conditions, list) else []
    return status, {c.get("type"): c for c in listed if isinstance(c, dict)}


def has_kstatus(obj: dict[str, Any]) -> bool:
    """Whether a custom resource reports anything the generic rules read."""
    status, conditions = _status(obj)
    return "observedGeneration" in status or bool(conditions.keys() & {"Ready", "Reconciling", "Stalled"})


def status_of(obj: dict[str, Any]) -> tuple[Health, str]:
    """(health, reason) of a live workload or custom resource."""
    api = obj.get("apiVersion")
    if api is None:  # not from the API server (a hand-built object): the kind decides
        group = next((g for g, k in WAITED_KINDS if k == obj.get("kind")), "")
    else:
        group = str(api).rpartition("/")[0]
    kind = obj.get("kind", "") if (group, obj.get("kind", "")) in WAITED_KINDS | KSTATUS_KINDS else ""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status, conditions = _status(obj)
    if meta.get("deletionTimestamp"):  # kstatus: Terminating, which is not Current (we wait on it)
        return Health.PROGRESSING, "Terminating: the object is being deleted"
    if kind in _OWN_RULES:
        return _OWN_RULES[kind](meta, spec, status, conditions)
    if kind == "Job":
        if _true(conditions.get("Failed")):
            return Health.FAILED, f"Job failed: {conditions['Failed'].get('reason', '')}"
        if _true(conditions.get("Complete")):
            return Health.READY, "Job completed"
        return Health.PROGRESSING, "Job not complete"
    generation = meta.get("generation") or 0
    observed = status.get("observedGeneration")
    custom = is_custom(group)
    if not isinstance(observed, int) and observed is not None:
        observed = None
    if (observed is None and not custom) or (observed is not None and observed < generation):
        return Health.PROGRESSING, "the controller has not observed the latest generation"
    if kind == "Deployment":
        return _deployment(spec, status, conditions)
    if kind == "StatefulSet":
        return _statefulset(spec, status)
    if kind == "DaemonSet":
        return _daemonset(spec, status)
    if custom:
        return _generic(conditions)
    return Health.READY, "not a workload"


def _deployment(spec: dict[str, Any], status: dict[str, Any], conditions: Conditions) -> tuple[Health, str]:
    """kstatus's Deployment rules: replica counts, then the Progressing and Available conditions."""
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.FAILED, f"progress deadline exceeded: {progressing.get('message', '')}".rstrip(": ")
    want = spec.get("replicas", 1)
    for field in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if status.get(field, 0) < want:
            return Health.PROGRESSING, f"{field} {status.get(field, 0)}/{want}"
    if status.get("replicas", 0) > status.get("updatedReplicas", 0):
        return Health.PROGRESSING, "old replicas are pending termination"
    new_rs = _true(progressing) and progressing.get("reason") == "NewReplicaSetAvailable"
    if spec.get("progressDeadlineSeconds") is not None and not new_rs:
        return Health.PROGRESSING, "the new ReplicaSet is not available yet (Progressing is not NewReplicaSetAvailable)"
    available = conditions.get("Available")
    if available is not None and not _true(available):
        return Health.PROGRESSING, f"Deployment not Available: {_why(available)}"
    return Health.READY, "all replicas updated and available"


Conditions = dict[Any, dict[str, Any]]
Rule = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], Conditions], tuple[Health, str]]


def _unobserved(meta: dict[str, Any], status: dict[str, Any]) -> bool:
    observed = status.get("observedGeneration")
    return not isinstance(observed, int) or observed < (meta.get("generation") or 0)


def _pod(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    """kstatus: Succeeded is Current, Failed is Failed; a crash loop or an unschedulable pod is
    Failed; running is Current once Ready."""
    phase = status.get("phase")
    if phase == "Succeeded":
        return Health.READY, "the pod has completed successfully"
    if phase == "Failed":
        return Health.FAILED, "the pod has completed, but not successfully"
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = ((container or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            return Health.FAILED, f"container {container.get('name', '?')} is in CrashLoopBackOff"
    scheduled = conditions.get("PodScheduled") or {}
    if str(scheduled.get("status")) == "False" and scheduled.get("reason") == "Unschedulable":
        return Health.FAILED, f"the pod cannot be scheduled: {_why(scheduled)}"
    if phase == "Running" and _true(conditions.get("Ready")):
        return Health.READY, "the pod is Ready"
    return Health.PROGRESSING, f"the pod is {phase or 'Pending'} and not Ready"


def _pvc(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    phase = status.get("phase")
    return (Health.READY, "Bound") if phase == "Bound" else (Health.PROGRESSING, f"not Bound: phase {phase}")


def _service(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    if spec.get("type") == "LoadBalancer" and not ((status.get("loadBalancer") or {}).get("ingress")):
        return Health.PROGRESSING, "the LoadBalancer has no ingress address yet"
    return Health.READY, "Service is ready"


def _replicaset(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    if _unobserved(meta, status):
        return Health.PROGRESSING, "the controller has not observed the latest generation"
    if _true(conditions.get("ReplicaFailure")):
        return Health.PROGRESSING, f"ReplicaFailure: {_why(conditions['ReplicaFailure'])}"
    want = spec.get("replicas", 1)
    for field in ("fullyLabeledReplicas", "availableReplicas", "readyReplicas"):
        if status.get(field, 0) < want:
            return Health.PROGRESSING, f"{field} {status.get(field, 0)}/{want}"
    if status.get("replicas", 0) > want:
        return Health.PROGRESSING, f"{status['replicas'] - want} extra replicas pending termination"
    return Health.READY, "all replicas ready and available"


def _pdb(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    if _unobserved(meta, status):
        return Health.PROGRESSING, "the controller has not observed the latest generation"
    healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
    if healthy < desired:
        return Health.PROGRESSING, f"budget not met: {healthy} healthy, {desired} desired"
    return Health.READY, "budget met"


def _cronjob(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    return Health.READY, "a CronJob is always Current"


def _crd(
    meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any], conditions: Conditions
) -> tuple[Health, str]:
    names = conditions.get("NamesAccepted")
    if names is not None and str(names.get("status")) == "False":
        return Health.FAILED, f"names not accepted: {_why(names)}"
    if _true(conditions.get("Established")):
        return Health.READY, "the CRD is established"
    return Health.PROGRESSING, "install in progress (not Established yet)"


_OWN_RULES: dict[str, Rule] = {
    "Pod": _pod,
    "PersistentVolumeClaim": _pvc,
    "Service": _service,
    "ReplicaSet": _replicaset,
    "PodDisruptionBudget": _pdb,
    "CronJob": _cronjob,
    "CustomResourceDefinition": _crd,
}


def _generic(conditions: dict[Any, dict[str, Any]]) -> tuple[Health, str]:
    """kstatus's generic rules, once the latest generation is observed."""
    if _true(conditions.get("Stalled")):
        return Health.FAILED, f"Stalled: {_why(conditions['Stalled'])}"
    if _true(conditions.get("Reconciling")):
        return Health.PROGRESSING, f"Reconciling: {_why(conditions['Reconciling'])}"
    ready = conditions.get("Ready")
    if ready is not None and not _true(ready):
        return Health.PROGRESSING, f"Ready is {ready.get('status')}: {_why(ready)}"
    return Health.READY, "Ready" if ready is not None else "no condition says otherwise"


def _why(condition: dict[str, Any]) -> str:
    return ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k)) or "no reason given"


def _statefulset(spec: dict[str, Any], status: dict[str, Any]) -> tuple[Health, str]:
    """kstatus's StatefulSet rules: replicas, readiness, then the partition or the revisions."""
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return Health.READY, "OnDelete update strategy: pods are updated when the user deletes them"
    want = spec.get("replicas", 1)
    if status.get("replicas", 0) < want:
        return Health.PROGRESSING, f"replicas {status.get('replicas', 0)}/{want}"
    if status.get("readyReplicas", 0) < want:
        return Health.PROGRESSING, f"readyReplicas {status.get('readyReplicas', 0)}/{want}"
    if status.get("replicas", 0) > want:
        return Health.PROGRESSING, f"{status['replicas'] - want} extra replicas pending termination"
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if partition is not None:  # the API server defaults it to 0 for RollingUpdate
        # The rollout is done once the ordinals at or above the partition are updated (a canary when > 0).
        if status.get("updatedReplicas", 0) < want - partition:
            return Health.PROGRESSING, f"updatedReplicas {status.get('updatedReplicas', 0)}/{want - partition}"
        if partition:
            return Health.READY, f"partitioned rollout complete: {status.get('updatedReplicas', 0)} updated"
        return Health.READY, "all replicas ready and updated"
    if status.get("currentReplicas", 0) < want:
        return Health.PROGRESSING, f"currentReplicas {status.get('currentReplicas', 0)}/{want}"
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return Health.PROGRESSING, (
            f"rolling update in progress: revision {status.get('currentRevision')} -> {status['updateRevision']}"
        )
    return Health.READY, "all replicas ready at the update revision"


def _daemonset(spec: dict[str, Any], status: dict[str, Any]) -> tuple[Health, str]:
    """kstatus's DaemonSet rules; with OnDelete, pods not yet updated do not hold the rollout."""
    want = status.get("desiredNumberScheduled")
    if want is None:
        return Health.PROGRESSING, "the controller has not reported desiredNumberScheduled"
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    for field in ("currentNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"):
        if field == "updatedNumberScheduled" and not rolling:
            continue
        if status.get(field, 0) < want:
            return Health.PROGRESSING, f"{field} {status.get(field, 0)}/{want}"
    return Health.READY, "all scheduled pods updated and available"


def _true(condition: dict[str, Any] | None) -> bool:
    return bool(condition) and str((condition or {}).get("status")) == "True"


def wait_healthy(cluster: Cluster, result: SyncResult, timeout: float, interval: float = 0.5) -> SyncResult:
    """Poll the synced workloads until none is Progressing or ``timeout`` passes; record each health."""
    todo = {
        i: o
        for i, o in enumerate(result.objects)
        if ((o.ref.group, o.ref.kind) in WAITED_KINDS or is_custom(o.ref.group))
        and o.action not in (Action.PRUNED, Action.FAILED, Action.SKIPPED)
    }
    health: dict[int, tuple[Health, str]] = {}
    deadline = time.monotonic() + timeout
    grace = time.monotonic() + min(STATUS_GRACE, timeout)
    while True:
        for i, o in list(todo.items()):
            if i in health and health[i][0] is not Health.PROGRESSING:
                continue
            res = cluster.resource(o.ref.group, o.ref.version, o.ref.kind)
            live = cluster.get(res, o.ref.namespace, o.ref.name) if res else None
            if live is not None and is_custom(o.ref.group) and not has_kstatus(live):
                # a resource just written may not have been reconciled yet: give its controller
                # STATUS_GRACE seconds to report before deciding it reports nothing
                written = o.action in (Action.CREATED, Action.CONFIGURED)
                if not written or time.monotonic() >= grace:
                    del todo[i]  # reports nothing to wait for: its health stays unknown
                    health.pop(i, None)
                    continue
                health[i] = (Health.PROGRESSING, NO_STATUS_YET)
                continue
            health[i] = status_of(live) if live else (Health.FAILED, "the object is gone")
        if all(h is not Health.PROGRESSING for h, _ in health.values()) or time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    # still silent at the deadline: nothing to judge it by, as kstatus sees it (not a failure)
    health = {i: h for i, h in health.items() if h[1] != NO_STATUS_YET}
    objects = list(result.objects)
    errors = list(result.errors)
    for i, (h, reason) in health.items():
        objects[i] = replace(objects[i], health=h)
        if h is Health.FAILED:
            errors.append(f"{objects[i].ref}: Failed: {reason}")
        elif h is Health.PROGRESSING:
            errors.append(f"{objects[i].ref}: still Progressing after {timeout:g}s: {reason}")
    return replace(result, objects=tuple(objects), errors=tuple(errors))
