"""The inventory: the set of objects a sync applied, stored in the cluster as a ConfigMap.

One ConfigMap (or, with ``--inventory-kind secret``, a Secret) per sync, named
``automator-sync-<name>`` in the agent's namespace. It records the source it belongs to (the
git URL without credentials, the branch and the paths), the applied revision, the objects
(group, version, kind, namespace, name) in apply order, and the images each workload runs. It is
written only when its content changes, so a no-op resync makes no write here either. An
annotation ``sync.automator.io/suspend: "true"`` on it suspends the sync.

Before a sync creates objects its inventory does not list yet, it records them (with the old
revision) first: a sync killed between applying and recording leaves an inventory that still
names everything it may have created, so the next sync prunes what the next commit removed.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from automator.sync.cluster import Cluster, Resource
from automator.sync.model import OWNER_ANNOTATION, SUSPEND_ANNOTATION, ObjectRef

CONFIGMAP = Resource("", "v1", "ConfigMap", "configmaps", True)
SECRET = Resource("", "v1", "Secret", "secrets", True)
KINDS = {"configmap": CONFIGMAP, "secret": SECRET}
COMPRESS_OVER = 128 * 1024


def inventory_name(name: str) -> str:
    return f"automator-sync-{name}"


@dataclass(frozen=True)
class Inventory:
    revision: str = ""
    objects: tuple[ObjectRef, ...] = ()
    images: dict[str, list[str]] = field(default_factory=dict)
    suspended: bool = False
    exists: bool = False
    source: str = ""  # url#branch:paths of the sync it belongs to ("" before it was recorded)

    def data(self) -> dict[str, str]:
        return {
            "source": self.source,
            "revision": self.revision,
            "objects": json.dumps([o.to_json() for o in self.objects], separators=(",", ":")),
            "images": json.dumps(self.images, sort_keys=True, separators=(",", ":")),
        }


def read(cluster: Cluster, namespace: str, name: str, kind: str = "configmap") -> Inventory:
    res = KINDS[kind]
    live = cluster.get(res, namespace, inventory_name(name))
    if live is None:
        return Inventory()
    data = _decode(live, secret=res is SECRET)
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    objects = tuple(ObjectRef.from_json(o) for o in json.loads(data.get("objects") or "[]"))
    return Inventory(
        revision=data.get("revision", ""),
        objects=objects,
        images=json.loads(data.get("images") or "{}"),
        suspended=str(annotations.get(SUSPEND_ANNOTATION, "")).lower() == "true",
        exists=True,
        source=data.get("source", ""),
    )


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
