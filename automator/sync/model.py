"""The synchronizer's records: what was desired, what was done, what was found.

Frozen dataclasses built once at the boundary (render, cluster answers) and rendered into the
table, the JSON output, logs and metrics without being re-derived.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
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
