"""The synchronizer's records: what was desired, what was done, what was found.

Frozen dataclasses built once at the boundary (render, cluster answers) and rendered into the
table, the JSON output, logs and metrics without being re-derived.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from automator.errors import AutomatorError

GROUP = "sync.automator.io"
OWNER_LABEL = f"{GROUP}/name"
OWNER_ANNOTATION = f"{GROUP}/owner"
CHECKSUM_ANNOTATION = f"{GROUP}/checksum"
PRUNE_ANNOTATION = f"{GROUP}/prune"  # "disabled": never prune this object
APPLY_ANNOTATION = f"{GROUP}/apply"  # "if-absent": create it, never update it
IGNORE_ANNOTATION = f"{GROUP}/ignore"  # "true": skip this object entirely
RECREATE_ANNOTATION = f"{GROUP}/recreate"  # "true": delete and recreate on immutable-field errors
IGNORE_FIELDS_ANNOTATION = f"{GROUP}/ignore-fields"  # comma-separated JSON pointers never reverted
SUSPEND_ANNOTATION = f"{GROUP}/suspend"  # "true" on the inventory object: do nothing
FIELD_MANAGER = "automator-sync"


class Action(enum.StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    SKIPPED = "skipped"
    FAILED = "failed"


class Health(enum.StrEnum):
    """kstatus's statuses: Current is Ready, InProgress is Progressing (NotFound: the wait's Failed)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    FAILED = "Failed"
    TERMINATING = "Terminating"  # being deleted: not healthy, --wait keeps waiting
    UNKNOWN = "Unknown"  # the status cannot be read: --wait keeps waiting, then fails


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object's identity: group, version, kind, namespace ('' when cluster-scoped), name."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> tuple[str, str]:
        return (self.group, self.kind)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        api_version = str(obj.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        meta = obj.get("metadata") or {}
        return cls(
            group, version, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", ""))
        )

    def to_json(self) -> dict[str, str]:
        return {
            "group": self.group,
            "version": self.version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ObjectRef:
        return cls(data["group"], data["version"], data["kind"], data.get("namespace", ""), data["name"])


@dataclass(frozen=True)
class Manifest:
    """One rendered object and where it came from (``file:line`` or ``dir (kustomize)``)."""

    obj: dict[str, Any]
    source: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    def annotation(self, key: str) -> str:
        return str(((self.obj.get("metadata") or {}).get("annotations") or {}).get(key, ""))


@dataclass(frozen=True)
class ObjectResult:
    ref: ObjectRef
    action: Action
    error: str = ""
    drift: tuple[str, ...] = ()
    health: Health | None = None
    images: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiVersion": self.ref.api_version,
            "kind": self.ref.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "action": str(self.action),
        }
        if self.drift:
            out["drift"] = list(self.drift)
        if self.health is not None:
            out["health"] = str(self.health)
        return out


WORKLOADS = frozenset(
    {("apps", k) for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")}
    | {("batch", "Job"), ("batch", "CronJob"), ("", "Pod")}
)


def is_workload(ref: ObjectRef) -> bool:
    return ref.group_kind in WORKLOADS


def images_of(obj: dict[str, Any]) -> tuple[str, ...]:
    """The images of a workload's containers, init containers first, from its (pod template) spec."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    pod = spec if kind == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    images = [c.get("image", "") for key in ("initContainers", "containers") for c in pod.get(key) or []]
    return tuple(str(i) for i in images if i)


@dataclass(frozen=True)
class Seen:
    """One applied workload as a sync leaves it: the images applied, the live object in hand (if
    any), and whether the sync wrote it (then what the LIST returned before is stale)."""

    ref: ObjectRef
    images: tuple[str, ...]
    live: dict[str, Any] | None
    written: bool


def timestamp(when: datetime) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes times."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 (or ISO 8601) time, UTC when it names no zone; None when it is not one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class WorkloadReport:
    """What one workload runs, as the synchronizer last saw it: the images of its containers (init
    containers first) as applied, its health (a :class:`Health` value) and why, and since when that
    health holds.

    ``digests`` runs beside ``images``: for each container, the digest (``sha256:...``) its pods
    report running (``status.containerStatuses[].imageID``), ``""`` when none says, and, when pods
    of the current template run different digests (a tag re-pushed between two pulls), each of
    them, most pods first, joined by ``,``. Empty when the pods were not read.
    """

    kind: str
    namespace: str
    name: str
    images: tuple[str, ...]
    health: str
    reason: str
    since: datetime
    digests: tuple[str, ...] = ()

    def running_digest(self, index: int) -> tuple[str, ...]:
        """The digests the pods run for container ``index``, most pods first (none: unknown)."""
        if index >= len(self.digests) or not self.digests[index]:
            return ()
        return tuple(self.digests[index].split(","))

    def to_json(self) -> dict[str, Any]:
        """The record as the inventory and the state database keep it (``digests`` only when read)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "images": list(self.images),
            "health": self.health,
            "reason": self.reason,
            "since": timestamp(self.since),
        }
        if any(self.digests):
            out["digests"] = list(self.digests)
        return out

    @classmethod
    def from_json(cls, entry: dict[str, Any], since: datetime | None = None) -> WorkloadReport:
        """:meth:`to_json`'s output; ``since`` stands in for a missing or unreadable time."""
        return cls(
            kind=str(entry.get("kind", "")),
            namespace=str(entry.get("namespace", "")),
            name=str(entry.get("name", "")),
            images=tuple(str(i) for i in entry.get("images") or ()),
            health=str(entry.get("health") or Health.UNKNOWN),
            reason=str(entry.get("reason", "")),
            since=parse_time(str(entry.get("since", ""))) or since or EPOCH,
            digests=tuple(str(d) for d in entry.get("digests") or ()),
        )


@dataclass(frozen=True)
class ClusterReport:
    """What a cluster runs for one sync: the applied revision, when it was applied, its workloads.

    ``objects`` counts the objects applied (0 when the source does not say); ``omitted`` counts
    workloads left out to keep the record bounded (the inventory's size cap, the commit status's
    140 characters).
    """

    cluster: str
    revision: str
    applied_at: datetime
    workloads: tuple[WorkloadReport, ...]
    objects: int = 0
    omitted: int = 0


# (what the sync applied, the previous records, now) -> the records: health.observe, bound to a cluster
Observer = Callable[[Sequence[Seen], Iterable["WorkloadReport"], datetime], tuple["WorkloadReport", ...]]


@dataclass(frozen=True)
class SyncResult:
    revision: str
    objects: tuple[ObjectResult, ...] = ()
    errors: tuple[str, ...] = ()
    diff: str = ""
    suspended: bool = False
    writes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # what stopped the whole run (fetch, signature, render), when something did: the error tree
    # tells the service's loop whether retrying sooner than the interval can help
    error: AutomatorError | None = field(default=None, compare=False)
    # what runs after this pass (None when nothing was applied: suspended, refused, a dry run)
    report: ClusterReport | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors and all(
            o.action is not Action.FAILED and o.health is not Health.FAILED for o in self.objects
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "objects": [o.to_json() for o in self.objects],
            "errors": list(self.errors),
        }
