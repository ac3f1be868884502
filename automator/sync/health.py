"""Health as kstatus computes it, and ``--wait`` for every kind that reports one, up to a deadline.

``status_of`` is a pure function of one live object (and of the time, for a Pod's schedule
window) that restates ``Compute`` of sigs.k8s.io/cli-utils kstatus (``pkg/kstatus/status``),
which Flux's health checks rest on. kstatus is Go and has no Python port, so its rules are
written out here, and case by case in ``tests/unit/test_sync_health_kstatus.py``:

1. Every kind first: an object being deleted is Terminating; a generation its controller has
   not observed is Progressing; the first ``Reconciling=True`` or ``Stalled=True`` condition
   makes it Progressing or Failed.
2. The kinds kstatus has rules for (``RULES``): Deployment, StatefulSet, DaemonSet, ReplicaSet,
   Job, Pod, PersistentVolumeClaim, Service, PodDisruptionBudget, CustomResourceDefinition, and
   CronJob, ConfigMap and Secret, which are always Current.
3. Every other kind, custom or built-in: ``Ready=True`` is Ready, ``False`` or ``Unknown``
   Progressing; with none of these it is Ready because nothing says otherwise
   (:data:`NOTHING_REPORTED`).

kstatus's Current is :attr:`Health.READY` and its InProgress :attr:`Health.PROGRESSING`; what
kstatus cannot read (a status that is not an object, conditions that are not a list of objects,
a generation that is not an integer, a Pod phase no Kubernetes has) is an error there and
:attr:`Health.UNKNOWN` here. Its NotFound is the wait's: an object applied moments ago and
gone is Failed.

Where we differ on purpose, because ``--wait`` promises that the work has run: a Job that has
started is Progressing until Complete or Failed (kstatus: Current while it runs), and a Pod
whose phase is Failed is Failed, as a failed Job is (kstatus: Current, "completed, but not
successfully").

``wait_healthy`` polls every object a sync applied, except the kinds that have no status at all
(:data:`NO_STATUS_KINDS`, never fetched: a ConfigMap can only be Current), until each is Ready
or Failed or ``--timeout`` passes. Progressing, Terminating (an object being deleted is not
healthy) and Unknown (its controller may still rewrite the status) keep it waiting, as Flux's
health checks do; any still so at the deadline is an error and fails the run. An object that
reports nothing kstatus reads is not judged; a custom resource this sync wrote is given
``STATUS_GRACE`` seconds for its controller to report first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from automator.errors import AutomatorError
from automator.sync.cluster import Cluster, KubeAPIError
from automator.sync.model import Action, Health, ObjectRef, ObjectResult, Seen, SyncResult, WorkloadReport, images_of
from automator.sync.running import running_digests

log = logging.getLogger("automator.sync")

STATUS_GRACE = 5.0  # seconds a custom resource just written may take to report a status
SCHEDULE_WINDOW = timedelta(seconds=15)  # kstatus: how long a pod may be unschedulable before it is Failed
NOTHING_REPORTED = "no condition says otherwise"
NO_STATUS_YET = "no status reported yet"
SETTLED = frozenset({Health.READY, Health.FAILED})
_NO_DEADLINE = 2**31 - 1  # progressDeadlineSeconds the Deployment controller treats as none (math.MaxInt32)
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
# built-in kinds without a status: Current whatever happens, so --wait does not fetch them
_RBAC, _ADMISSION = "rbac.authorization.k8s.io", "admissionregistration.k8s.io"
NO_STATUS_KINDS = frozenset(
    {("", k) for k in ("ConfigMap", "Secret", "ServiceAccount", "Endpoints", "LimitRange", "PodTemplate", "Event")}
    | {(_RBAC, k) for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}
    | {(_ADMISSION, f"{k}Configuration") for k in ("MutatingWebhook", "ValidatingWebhook")}
    | {(_ADMISSION, f"{k}AdmissionPolicyBinding") for k in ("Mutating", "Validating")}
    | {
        ("apps", "ControllerRevision"), ("coordination.k8s.io", "Lease"), ("discovery.k8s.io", "EndpointSlice"),
        ("events.k8s.io", "Event"), ("networking.k8s.io", "IngressClass"), ("networking.k8s.io", "NetworkPolicy"),
        ("node.k8s.io", "RuntimeClass"), ("scheduling.k8s.io", "PriorityClass"), ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
    }
)  # fmt: skip


def is_custom(group: str) -> bool:
    return group not in BUILTIN_GROUPS


class _Unreadable(Exception):
    """What kstatus answers with an error: part of the object is not the shape the API has."""


class _Condition(NamedTuple):
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class _Live:
    """One object as the rules read it: fields by dotted path, as kstatus's ``Get*Field`` do."""

    obj: dict[str, Any]
    conditions: list[_Condition]
    now: datetime

    def integer(self, path: str, default: int) -> int:
        value = _lenient(self.obj, path)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def string(self, path: str, default: str) -> str:
        value = _lenient(self.obj, path)
        return value if isinstance(value, str) else default

    def flag(self, path: str, default: bool) -> bool:
        value = _lenient(self.obj, path)
        return value if isinstance(value, bool) else default

    def first(self, kind: str, status: str) -> _Condition | None:
        return next((c for c in self.conditions if c.type == kind and c.status == status), None)


Rule = Callable[[_Live], tuple[Health, str]]


def _nested(obj: Any, path: str) -> tuple[bool, Any]:
    """``unstructured.NestedFieldNoCopy``: (found, value); something not an object on the way is unreadable."""
    value, keys = obj, path.split(".")
    for i, key in enumerate(keys):
        if value is None:
            return False, None
        if not isinstance(value, dict):
            raise _Unreadable(f"{'.'.join(keys[:i])} is not an object")
        if value.get(key) is None:
            return False, None
        value = value[key]
    return True, value


def _lenient(obj: dict[str, Any], path: str) -> Any:
    try:
        return _nested(obj, path)[1]
    except _Unreadable:
        return None


def _strict_int(obj: dict[str, Any], path: str) -> int | None:
    """``unstructured.NestedInt64``: None when absent; anything but an integer is unreadable."""
    found, value = _nested(obj, path)
    if not found:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Unreadable(f"{path} is not an integer")
    return value


def _conditions(obj: dict[str, Any]) -> list[_Condition]:
    """``status.conditions`` as kstatus decodes them, or unreadable where it cannot."""
    status = obj.get("status")
    if status is not None and not isinstance(status, dict):
        raise _Unreadable("status is not an object")
    listed = (status or {}).get("conditions")
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise _Unreadable("status.conditions is not a list")
    out = []
    for i, entry in enumerate(listed):
        item = {} if entry is None else entry
        if not isinstance(item, dict):
            raise _Unreadable(f"status.conditions[{i}] is not an object")
        fields = []
        for key in _Condition._fields:
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise _Unreadable(f"status.conditions[{i}].{key} is not a string")
            fields.append(value or "")
        out.append(_Condition(*fields))
    return out


def _why(condition: _Condition) -> str:
    return ": ".join(v for v in (condition.reason, condition.message) if v) or "no reason given"


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    kind = str(obj.get("kind", ""))
    api = obj.get("apiVersion")
    if api is None:  # not from the API server (a hand-built object): the kind decides
        return next((g for g, k in RULES if k == kind), ""), kind
    return str(api).rpartition("/")[0], kind


def status_of(obj: dict[str, Any], *, now: datetime | None = None) -> tuple[Health, str]:
    """(health, reason) of one live object, as kstatus computes it; ``now`` defaults to the clock."""
    try:
        return _compute(obj, now or datetime.now(UTC))
    except _Unreadable as exc:
        return Health.UNKNOWN, f"cannot compute the status: {exc}"


def _compute(obj: dict[str, Any], now: datetime) -> tuple[Health, str]:
    found, deleted = _nested(obj, "metadata.deletionTimestamp")
    if found and not isinstance(deleted, str):
        raise _Unreadable("metadata.deletionTimestamp is not a string")
    if deleted:
        return Health.TERMINATING, "the object is being deleted"
    generation = _strict_int(obj, "metadata.generation")
    observed = _strict_int(obj, "status.observedGeneration") if generation is not None else None
    if observed is not None and observed != generation:
        return Health.PROGRESSING, (
            f"the controller has not observed the latest generation: generation {generation}, observed {observed}"
        )
    conditions = _conditions(obj)
    for c in conditions:
        if c.type in ("Reconciling", "Stalled") and c.status == "True":
            return (Health.PROGRESSING if c.type == "Reconciling" else Health.FAILED), f"{c.type}: {_why(c)}"
    rule = RULES.get(_group_kind(obj))
    if rule is not None:
        return rule(_Live(obj, conditions, now))
    for c in conditions:
        if c.type == "Ready" and c.status == "True":
            return Health.READY, "Ready"
        if c.type == "Ready" and c.status in ("False", "Unknown"):
            return Health.PROGRESSING, f"Ready is {c.status}: {_why(c)}"
    if observed is not None:
        return Health.READY, "the controller has observed the latest generation"
    return Health.READY, NOTHING_REPORTED


# -- the kinds kstatus has rules for --------------------------------------------------------------


def _always(live: _Live) -> tuple[Health, str]:
    return Health.READY, f"a {live.obj.get('kind')} is always Current"


def _deployment(live: _Live) -> tuple[Health, str]:
    """The counts, then (with a progress deadline) Progressing=NewReplicaSetAvailable, then Available."""
    progressing = live.integer("spec.progressDeadlineSeconds", _NO_DEADLINE) == _NO_DEADLINE
    available, why = False, "no Available condition"
    for c in live.conditions:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            return Health.FAILED, f"progress deadline exceeded: {c.message}".rstrip(": ")
        if c.type == "Progressing" and c.status == "True" and c.reason == "NewReplicaSetAvailable":
            progressing = True
        if c.type == "Available":
            available, why = available or c.status == "True", _why(c)
    want, replicas = live.integer("spec.replicas", 1), live.integer("status.replicas", 0)
    updated, ready = live.integer("status.updatedReplicas", 0), live.integer("status.readyReplicas", 0)
    ok = live.integer("status.availableReplicas", 0)
    if replicas < want:
        return Health.PROGRESSING, f"replicas {replicas}/{want}"
    if updated < want:
        return Health.PROGRESSING, f"updatedReplicas {updated}/{want}"
    if replicas > want:
        return Health.PROGRESSING, f"{replicas - want} old replicas pending termination"
    if ok < updated:
        return Health.PROGRESSING, f"availableReplicas {ok}/{updated}"
    if ready < want:
        return Health.PROGRESSING, f"readyReplicas {ready}/{want}"
    if not progressing:
        return Health.PROGRESSING, "the new ReplicaSet is not available yet (Progressing is not NewReplicaSetAvailable)"
    if not available:
        return Health.PROGRESSING, f"Deployment not Available: {why}"
    return Health.READY, "all replicas updated and available"


def _statefulset(live: _Live) -> tuple[Health, str]:
    """Replicas and readiness, then the partition, or the current replicas and revisions."""
    if live.string("spec.updateStrategy.type", "") == "OnDelete":
        return Health.READY, "OnDelete update strategy: pods are updated when the user deletes them"
    want, replicas = live.integer("spec.replicas", 1), live.integer("status.replicas", 0)
    ready, updated = live.integer("status.readyReplicas", 0), live.integer("status.updatedReplicas", 0)
    if replicas < want:
        return Health.PROGRESSING, f"replicas {replicas}/{want}"
    if ready < want:
        return Health.PROGRESSING, f"readyReplicas {ready}/{want}"
    if replicas > want:
        return Health.PROGRESSING, f"{replicas - want} extra replicas pending termination"
    partition = live.integer("spec.updateStrategy.rollingUpdate.partition", -1)
    if partition != -1:  # the API server defaults it to 0 for RollingUpdate
        # the rollout is done once the ordinals at or above the partition are updated (a canary when > 0)
        if updated < want - partition:
            return Health.PROGRESSING, f"updatedReplicas {updated}/{want - partition}"
        return Health.READY, f"partitioned rollout complete: {updated} updated"
    current = live.integer("status.currentReplicas", 0)
    if current < want:
        return Health.PROGRESSING, f"currentReplicas {current}/{want}"
    revision, update = live.string("status.currentRevision", ""), live.string("status.updateRevision", "")
    if revision != update:
        return Health.PROGRESSING, f"rolling update in progress: revision {revision} -> {update}"
    return Health.READY, "all replicas ready at the update revision"


def _daemonset(live: _Live) -> tuple[Health, str]:
    """Generation and observedGeneration must be set, then every count reach desiredNumberScheduled."""
    for path in ("metadata.generation", "status.observedGeneration"):
        if _strict_int(live.obj, path) is None:
            return Health.PROGRESSING, f"{path} not found"
    want = live.integer("status.desiredNumberScheduled", -1)
    if want == -1:
        return Health.PROGRESSING, "the controller has not reported desiredNumberScheduled"
    for field in ("currentNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"):
        if (got := live.integer(f"status.{field}", 0)) < want:
            return Health.PROGRESSING, f"{field} {got}/{want}"
    return Health.READY, "all scheduled pods updated and available"


def _replicaset(live: _Live) -> tuple[Health, str]:
    if failure := live.first("ReplicaFailure", "True"):
        return Health.PROGRESSING, f"ReplicaFailure: {_why(failure)}"
    want = live.integer("spec.replicas", 1)
    for field in ("fullyLabeledReplicas", "availableReplicas", "readyReplicas"):
        if (got := live.integer(f"status.{field}", 0)) < want:
            return Health.PROGRESSING, f"{field} {got}/{want}"
    if (replicas := live.integer("status.replicas", 0)) > want:
        return Health.PROGRESSING, f"{replicas - want} extra replicas pending termination"
    return Health.READY, "all replicas ready and available"


def _job(live: _Live) -> tuple[Health, str]:
    """kstatus's rules, except that a started Job is Progressing (not Current) until it ends."""
    completions = live.integer("spec.completions", live.integer("spec.parallelism", 1))
    succeeded, failed = live.integer("status.succeeded", 0), live.integer("status.failed", 0)
    for c in live.conditions:
        if c.type == "Complete" and c.status == "True":
            return Health.READY, f"Job completed: succeeded {succeeded}/{completions}"
        if c.type == "Failed" and c.status == "True":
            return Health.FAILED, f"Job failed: {_why(c)}: failed {failed}/{completions}"
        if c.type == "Suspended" and c.status == "True" and live.flag("spec.suspend", False):
            return Health.READY, "Job is suspended"
    if not live.string("status.startTime", ""):
        return Health.PROGRESSING, "Job not started"
    active = live.integer("status.active", 0)
    return Health.PROGRESSING, f"Job running: succeeded {succeeded}/{completions}, active {active}, failed {failed}"


def _pod(live: _Live) -> tuple[Health, str]:
    """By phase: Running is Current once Ready and Failed if a container crash-loops; Pending is
    Failed once unschedulable for longer than the schedule window."""
    phase = live.string("status.phase", "")
    if phase == "Succeeded":
        return Health.READY, "the pod has completed successfully"
    if phase == "Failed":  # kstatus: Current; see the module docstring
        return Health.FAILED, "the pod has completed, but not successfully"
    if phase == "Running":
        if live.first("Ready", "True"):
            return Health.READY, "the pod is Ready"
        if crashing := _crash_looping(live.obj):
            return Health.FAILED, f"containers in CrashLoopBackOff: {', '.join(crashing)}"
        return Health.PROGRESSING, "the pod is running but not Ready"
    if phase == "Pending":
        scheduled = live.first("PodScheduled", "False")
        if scheduled is not None and scheduled.reason == "Unschedulable":
            created = _timestamp(live.string("metadata.creationTimestamp", ""))
            if created is not None and live.now - SCHEDULE_WINDOW < created:
                return Health.PROGRESSING, "the pod has not been scheduled yet"
            return Health.FAILED, f"the pod cannot be scheduled: {_why(scheduled)}"
        return Health.PROGRESSING, "the pod is Pending"
    if not phase:
        return Health.PROGRESSING, "the pod has no phase yet"
    raise _Unreadable(f"unknown phase {phase}")


def _crash_looping(obj: dict[str, Any]) -> list[str]:
    found, statuses = _nested(obj, "status.containerStatuses")
    if found and not isinstance(statuses, list):
        raise _Unreadable("status.containerStatuses is not a list")
    names = []
    for item in statuses or []:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and _lenient(item, "state.waiting.reason") == "CrashLoopBackOff":
            names.append(name)
    return names


def _timestamp(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None  # kstatus reads it as the zero time: long ago
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _pvc(live: _Live) -> tuple[Health, str]:
    phase = live.string("status.phase", "unknown")
    return (Health.READY, "Bound") if phase == "Bound" else (Health.PROGRESSING, f"not Bound: phase {phase}")


def _service(live: _Live) -> tuple[Health, str]:
    """A LoadBalancer needs a cluster IP; kstatus does not wait for the load balancer's address."""
    if live.string("spec.type", "ClusterIP") == "LoadBalancer" and not live.string("spec.clusterIP", ""):
        return Health.PROGRESSING, "type LoadBalancer, no cluster IP yet"
    return Health.READY, "Service is ready"


def _pdb(live: _Live) -> tuple[Health, str]:
    """Current once its generation is observed (the generic check); the budget itself is not read."""
    return Health.READY, "the disruption budget has been computed"


def _crd(live: _Live) -> tuple[Health, str]:
    for c in live.conditions:
        if c.type == "NamesAccepted" and c.status == "False":
            return Health.FAILED, f"names not accepted: {_why(c)}"
        if c.type == "Established" and c.status == "False" and c.reason != "Installing":
            return Health.FAILED, f"not Established: {_why(c)}"
        if c.type == "Established" and c.status == "True":
            return Health.READY, "the CRD is established"
    return Health.PROGRESSING, "install in progress (not Established yet)"


RULES: dict[tuple[str, str], Rule] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("extensions", "Deployment"): _deployment,
    ("extensions", "DaemonSet"): _daemonset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("batch", "CronJob"): _always,
    ("", "ConfigMap"): _always,
    ("", "Secret"): _always,
}


# -- --wait ----------------------------------------------------------------------------------------


def waits_for(o: ObjectResult) -> bool:
    """Whether ``--wait`` judges this object: applied (or in sync), and of a kind with a status."""
    return o.action not in (Action.PRUNED, Action.FAILED, Action.SKIPPED) and o.ref.group_kind not in NO_STATUS_KINDS


def _judge(cluster: Cluster, ref: ObjectRef, now: datetime) -> tuple[Health, str]:
    try:
        res = cluster.resource(ref.group, ref.version, ref.kind)
        live = cluster.get(res, ref.namespace, ref.name) if res else None
    except KubeAPIError as exc:  # refused (a 403, say): kstatus's Unknown, with the error
        return Health.UNKNOWN, f"cannot read it: {exc}"
    return status_of(live, now=now) if live else (Health.FAILED, "the object is gone")


def wait_healthy(cluster: Cluster, result: SyncResult, timeout: float, interval: float = 0.5) -> SyncResult:
    """Poll the synced objects until each is Ready or Failed, or ``timeout`` passes; record each health."""
    todo = {i: o for i, o in enumerate(result.objects) if waits_for(o)}
    health: dict[int, tuple[Health, str]] = {}
    deadline = time.monotonic() + timeout
    grace = time.monotonic() + min(STATUS_GRACE, timeout)
    while True:
        now = datetime.now(UTC)
        for i, o in list(todo.items()):
            if i in health and health[i][0] in SETTLED:
                continue
            judged = _judge(cluster, o.ref, now)
            if judged[1] == NOTHING_REPORTED:
                # a custom resource just written may not have been reconciled yet: give its
                # controller STATUS_GRACE seconds to report before deciding it reports nothing
                written = o.action in (Action.CREATED, Action.CONFIGURED)
                if not (written and is_custom(o.ref.group)) or time.monotonic() >= grace:
                    del todo[i]  # reports nothing to wait for: its health stays unknown
                    health.pop(i, None)
                    continue
                judged = (Health.PROGRESSING, NO_STATUS_YET)
            health[i] = judged
        if all(h in SETTLED for h, _ in health.values()) or time.monotonic() >= deadline:
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
        elif h is not Health.READY:  # Progressing, Terminating or Unknown: not healthy in time
            errors.append(f"{objects[i].ref}: still {h} after {timeout:g}s: {reason}")
    return replace(result, objects=tuple(objects), errors=tuple(errors))


# -- what runs: the inventory's record of each workload ----------------------------------------------


def observe(
    cluster: Cluster,
    seen: Sequence[Seen],
    previous: Iterable[WorkloadReport],
    now: datetime,
    *,
    concurrency: int = 8,
    pods: bool = True,
) -> tuple[WorkloadReport, ...]:
    """Each applied workload's images, the digests its pods run, its health and since when.

    The images are the live object's (pod template) spec, what was applied. The digests are what
    its pods report running (:func:`.running.running_digests`): one Pod LIST per namespace with
    workloads other than Pods (``pods`` False: none, and no digests); a LIST refused (no ``list
    pods`` permission) or failed leaves that namespace's digests empty, with a warning, and never
    fails the sync. The health is :func:`status_of` the live object: the one the sync's LIST
    returned when it was in sync, a fresh GET when the sync wrote it. ``since`` carries over from
    ``previous`` while the health and the images stay the same, and is ``now`` when either
    changes. The GETs and the LISTs run in parallel, ``concurrency`` at a time.
    """
    before = {(w.kind, w.namespace, w.name): w for w in previous}

    def fetch(s: Seen) -> tuple[dict[str, Any] | None, str]:
        try:
            res = cluster.resource(s.ref.group, s.ref.version, s.ref.kind)
            return (cluster.get(res, s.ref.namespace, s.ref.name) if res else None), ""
        except AutomatorError as exc:  # refused (a 403, say) or unreachable: Unknown, with the error
            return None, f"cannot read it: {exc}"

    def list_pods(namespace: str) -> list[dict[str, Any]]:
        try:
            res = cluster.resource("", "v1", "Pod")
            return list(cluster.list(res, namespace=namespace)) if res else []
        except AutomatorError as exc:
            log.warning(
                "cannot list the pods in %s, so the digests they run are not recorded"
                " (--no-pod-digests stops trying): %s",
                namespace or "-",
                exc,
            )
            return []

    stale = [s for s in seen if s.written or s.live is None]
    namespaces = sorted({s.ref.namespace for s in seen if s.ref.kind != "Pod"}) if pods else []
    fetched: dict[ObjectRef, tuple[dict[str, Any] | None, str]] = {}
    listed: dict[str, list[dict[str, Any]]] = {}
    if stale or namespaces:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(stale) + len(namespaces)))) as pool:
            gets = pool.map(fetch, stale)
            lists = pool.map(list_pods, namespaces)
            fetched = dict(zip((s.ref for s in stale), gets, strict=True))
            listed = dict(zip(namespaces, lists, strict=True))
    out = []
    for s in seen:
        live, error = fetched.get(s.ref, (s.live, ""))
        if live is None:
            health, reason = (Health.UNKNOWN, error) if error else (Health.FAILED, "the object is gone")
        else:
            health, reason = status_of(live, now=now)
        old = before.get((s.ref.kind, s.ref.namespace, s.ref.name))
        images = images_of(live) if live is not None else s.images
        # a health holds for what the workload runs: other images start it afresh, even Ready
        # before and after (a rollout done between two passes)
        since = old.since if old is not None and old.health == health and old.images == images else now
        digests: tuple[str, ...] = ()
        if live is not None and pods:
            digests = running_digests(live, [live] if s.ref.kind == "Pod" else listed.get(s.ref.namespace, ()))
        out.append(WorkloadReport(s.ref.kind, s.ref.namespace, s.ref.name, images, str(health), reason, since, digests))
    return tuple(out)
