"""The inventory: the set of objects a sync applied, stored in the cluster as a ConfigMap.

One ConfigMap (or, with ``--inventory-kind secret``, a Secret) per sync, named
``automator-sync-<name>`` in the agent's namespace. It records the source it belongs to (the
git URL without credentials, the branch and the paths), the applied revision and when it was
applied, the objects (group, version, kind, namespace, name) in apply order, and what each
workload runs: its images, its health and since when. It is written only when its content
changes, so a no-op resync makes no write here either. An annotation
``sync.automator.io/suspend: "true"`` on it suspends the sync.

Its data keys, format 2 (``format: "2"``)::

    format      "2"
    source      url#branch:paths of the sync it belongs to
    revision    the applied commit
    appliedAt   when that revision was first applied (RFC 3339, UTC, seconds)
    objects     JSON [{group, version, kind, namespace, name}, ...] in apply order
    workloads   JSON [{kind, namespace, name, images: [...], health, reason, since,
                digests: [...]}, ...] (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
                CronJob, Pod); health is Ready, Progressing, Failed, Terminating or Unknown, as
                :mod:`.health` judges it; ``digests`` (absent when no pod said) beside ``images``,
                what the pods run, see :class:`~.model.WorkloadReport`
    workloadsOmitted  how many workloads were left out to stay inside the size cap (absent: none)

Format 1 (no ``format`` key) had ``images`` (JSON ``{"Kind ns/name": [images]}``) instead of
``workloads`` and no ``appliedAt``; it still reads: its workloads have health Unknown and their
``since`` and ``appliedAt`` are the time the synchronizer last wrote the object (its managed
fields), and the next sync rewrites it in format 2. Later formats only add keys.

A ConfigMap or Secret holds at most 1 MiB: any value over 128 KiB is stored gzipped (``KEY.gz``
in ``binaryData``), a reason is cut at :data:`MAX_REASON` characters and a workload's images (and
digests) at :data:`MAX_IMAGES`, and workloads beyond what gzips into :data:`MAX_WORKLOADS_BYTES` are dropped
from the end (the last applied first) and counted in ``workloadsOmitted``.

Before a sync creates objects its inventory does not list yet, it records them (with the old
revision) first: a sync killed between applying and recording leaves an inventory that still
names everything it may have created, so the next sync prunes what the next commit removed.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from automator.sync.cluster import Cluster, Resource
from automator.sync.model import (
    EPOCH,
    FIELD_MANAGER,
    OWNER_ANNOTATION,
    SUSPEND_ANNOTATION,
    Health,
    ObjectRef,
    WorkloadReport,
    parse_time,
    timestamp,
)

CONFIGMAP = Resource("", "v1", "ConfigMap", "configmaps", True)
SECRET = Resource("", "v1", "Secret", "secrets", True)
KINDS = {"configmap": CONFIGMAP, "secret": SECRET}
COMPRESS_OVER = 128 * 1024
FORMAT = "2"
MAX_REASON = 200  # characters of a health reason kept
MAX_IMAGES = 32  # images kept per workload (init containers first)
MAX_WORKLOADS_BYTES = 384 * 1024  # the workloads, gzipped: with the objects, well inside 1 MiB
OLD_FORMAT_REASON = "recorded by an older synchronizer (inventory format 1): health not recorded"


def inventory_name(name: str) -> str:
    return f"automator-sync-{name}"


@dataclass(frozen=True)
class Inventory:
    revision: str = ""
    objects: tuple[ObjectRef, ...] = ()
    workloads: tuple[WorkloadReport, ...] = ()
    applied_at: datetime | None = None  # None: not recorded (an empty inventory)
    omitted: int = 0  # workloads left out by bound()
    suspended: bool = False
    exists: bool = False
    source: str = ""  # url#branch:paths of the sync it belongs to ("" before it was recorded)

    def data(self) -> dict[str, str]:
        data = {
            "format": FORMAT,
            "source": self.source,
            "revision": self.revision,
            "appliedAt": timestamp(self.applied_at) if self.applied_at else "",
            "objects": _json([o.to_json() for o in self.objects]),
            "workloads": _json([w.to_json() for w in self.workloads]),
        }
        if self.omitted:
            data["workloadsOmitted"] = str(self.omitted)
        return data


def bound(workloads: Sequence[WorkloadReport]) -> tuple[tuple[WorkloadReport, ...], int]:
    """The workloads as stored (reasons and image lists cut) and how many were dropped to fit."""
    kept = [
        replace(w, images=w.images[:MAX_IMAGES], reason=w.reason[:MAX_REASON], digests=w.digests[:MAX_IMAGES])
        for w in workloads
    ]
    total = len(kept)
    while kept and _stored_size([w.to_json() for w in kept]) > MAX_WORKLOADS_BYTES:
        kept = kept[: len(kept) * 3 // 4]  # a few passes at most, each one gzip
    return tuple(kept), total - len(kept)


def _stored_size(entries: list[dict[str, Any]]) -> int:
    text = _json(entries)
    return len(text) if len(text) <= COMPRESS_OVER else len(gzip.compress(text.encode(), mtime=0))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def read(cluster: Cluster, namespace: str, name: str, kind: str = "configmap") -> Inventory:
    res = KINDS[kind]
    live = cluster.get(res, namespace, inventory_name(name))
    if live is None:
        return Inventory()
    return parse(live, secret=res is SECRET)


def parse(live: dict[str, Any], *, secret: bool = False) -> Inventory:
    """An inventory object as the API server returns it, in any format so far (see the docstring)."""
    data = _decode(live, secret=secret)
    meta = live.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    objects = tuple(ObjectRef.from_json(o) for o in json.loads(data.get("objects") or "[]"))
    applied_at = parse_time(data.get("appliedAt", "")) or _last_written(meta)
    if "workloads" in data:
        workloads = tuple(WorkloadReport.from_json(w, applied_at) for w in json.loads(data["workloads"] or "[]"))
    else:  # format 1: the images only
        workloads = tuple(
            _old_workload(key, images, applied_at) for key, images in json.loads(data.get("images") or "{}").items()
        )
    return Inventory(
        revision=data.get("revision", ""),
        objects=objects,
        workloads=workloads,
        applied_at=applied_at,
        omitted=int(data.get("workloadsOmitted") or 0),
        suspended=str(annotations.get(SUSPEND_ANNOTATION, "")).lower() == "true",
        exists=True,
        source=data.get("source", ""),
    )


def _old_workload(key: str, images: list[str], applied_at: datetime | None) -> WorkloadReport:
    """A format-1 entry, ``"Kind ns/name": [images]``."""
    kind, _, where = key.partition(" ")
    namespace, _, name = where.rpartition("/")
    return WorkloadReport(
        kind, namespace, name, tuple(images), str(Health.UNKNOWN), OLD_FORMAT_REASON, applied_at or EPOCH
    )


def _last_written(meta: dict[str, Any]) -> datetime | None:
    """When the synchronizer last wrote the object (its managed fields), else when it was created."""
    times = [str(m.get("time", "")) for m in meta.get("managedFields") or () if m.get("manager") == FIELD_MANAGER]
    for text in [*sorted(times, reverse=True), str(meta.get("creationTimestamp", ""))]:
        if when := parse_time(text):
            return when
    return None


def write(
    cluster: Cluster, namespace: str, name: str, old: Inventory, new: Inventory, *, kind: str = "configmap"
) -> bool:
    """Store ``new`` unless it equals ``old``; True when a write was made."""
    if old.exists and old.data() == new.data():
        return False
    res = KINDS[kind]
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": res.kind,
        "metadata": {
            "name": inventory_name(name),
            "namespace": namespace,
            "annotations": {OWNER_ANNOTATION: f"{namespace}/{name}"},
        },
        **_encode(new.data(), secret=res is SECRET),
    }
    cluster.apply(res, body)
    return True


def _encode(values: dict[str, str], *, secret: bool) -> dict[str, dict[str, str]]:
    """``data``/``binaryData`` fields; a value over COMPRESS_OVER is gzipped under ``KEY.gz``.

    ConfigMaps and Secrets hold at most 1 MiB; gzip keeps tens of thousands of entries inside it.
    """
    plain: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, value in values.items():
        if len(value) > COMPRESS_OVER:
            binary[f"{key}.gz"] = base64.b64encode(gzip.compress(value.encode(), mtime=0)).decode()
        elif secret:
            binary[key] = base64.b64encode(value.encode()).decode()
        else:
            plain[key] = value
    if secret:
        return {"data": binary}
    return {"data": plain, **({"binaryData": binary} if binary else {})}


def _decode(live: dict[str, Any], *, secret: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    raw = {**(live.get("data") or {}), **(live.get("binaryData") or {})}
    for key, value in raw.items():
        binary = secret or key in (live.get("binaryData") or {})
        blob = base64.b64decode(value) if binary else value.encode()
        if key.endswith(".gz"):
            out[key.removesuffix(".gz")] = gzip.decompress(blob).decode()
        else:
            out[key] = blob.decode()
    return out
