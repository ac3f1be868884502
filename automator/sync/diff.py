"""Pure drift helpers: JSON pointers, the desired-is-a-subset-of-live comparison, checksums.

The decision "does this object need a write?" is made from data already in hand (one paged
LIST per kind), so a no-op resync sends no writes at all:

* the checksum annotation tells whether the desired manifest changed since our last apply
  (which also catches fields *removed* from git, invisible to a subset comparison);
* :func:`drifted` tells which desired fields the live object no longer matches (out-of-band
  edits), skipping the fields the user declared ignored.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

_MISSING = object()


def checksum(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """``/spec/replicas`` -> ("spec", "replicas"), with RFC 6901 ``~1``/``~0`` unescaped."""
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with '/'")
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def format_pointer(parts: tuple[str, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def lookup(obj: Any, parts: tuple[str, ...]) -> Any:
    cur = obj
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            return _MISSING
    return cur


def remove(obj: Any, parts: tuple[str, ...]) -> None:
    parent = lookup(obj, parts[:-1])
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)
    elif isinstance(parent, list) and parts[-1].isdigit() and int(parts[-1]) < len(parent):
        del parent[int(parts[-1])]


def assign(obj: Any, parts: tuple[str, ...], value: Any) -> None:
    parent = lookup(obj, parts[:-1])
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list) and parts[-1].isdigit() and int(parts[-1]) < len(parent):
        parent[int(parts[-1])] = value


def without(obj: dict[str, Any], ignored: list[tuple[str, ...]]) -> dict[str, Any]:
    """A copy of ``obj`` with the ignored pointers removed (ignored pointers never compare)."""
    if not ignored:
        return obj
    out = copy.deepcopy(obj)
    for parts in ignored:
        remove(out, parts)
    return out


def keep_live(desired: dict[str, Any], live: dict[str, Any], ignored: list[tuple[str, ...]]) -> dict[str, Any]:
    """``desired`` with each ignored field set to its live value, so applying never reverts it."""
    if not ignored:
        return desired
    out = copy.deepcopy(desired)
    for parts in ignored:
        value = lookup(live, parts)
        if value is _MISSING:
            remove(out, parts)
        else:
            assign(out, parts, copy.deepcopy(value))
    return out


def drifted(desired: Any, live: Any, path: tuple[str, ...] = ()) -> list[str]:
    """JSON pointers where ``desired`` is not matched by ``live`` (extra live fields are fine).

    A ``null`` in the desired object asks for nothing (server-side apply treats it as unset).
    """
    if not path and _matches(desired, live):
        return []  # the common case, answered without building a pointer per field
    if desired is None:
        return []
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [format_pointer(path)]
        out: list[str] = []
        for key, value in desired.items():
            if key not in live:
                if value is None or value in ({}, []):
                    continue  # the API server drops empty values; not a drift
                out.append(format_pointer((*path, key)))
            else:
                out.extend(drifted(value, live[key], (*path, key)))
        return out
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return [format_pointer(path)]
        out = []
        for i, (d, lv) in enumerate(zip(desired, live, strict=True)):
            out.extend(drifted(d, lv, (*path, str(i))))
        return out
    if _scalar_equal(desired, live):
        return []
    return [format_pointer(path)]


def _matches(desired: Any, live: Any) -> bool:
    """``drifted(desired, live) == []``, without the pointers."""
    if desired is None:
        return True
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        for key, value in desired.items():
            if key in live:
                if not _matches(value, live[key]):
                    return False
            elif not (value is None or value in ({}, [])):
                return False
        return True
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_matches(d, lv) for d, lv in zip(desired, live, strict=True))
        )
    return _scalar_equal(desired, live)


def _scalar_equal(desired: Any, live: Any) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return False


VOLATILE_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink")


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without server bookkeeping, for comparing a dry-run answer with the live object."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    for key in VOLATILE_META:
        meta.pop(key, None)
    out["metadata"] = meta
    out.pop("status", None)
    return out


def set_native_defaults(obj: dict[str, Any]) -> None:
    """Fill ``protocol: TCP`` into port lists keyed by protocol, as Flux's ssa package does.

    Server-side apply on Kubernetes before 1.21 refuses a Service port without ``protocol``
    ("associative list with keys has an element that omits key field protocol"), and the
    API server would default it to TCP anyway, so the applied object means the same.
    """
    kind = obj.get("kind")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind == "Service":
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
        return
    pod = _pod_spec(kind, spec)
    for key in ("initContainers", "containers"):
        for container in (pod or {}).get(key) or []:
            for port in (container or {}).get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _pod_spec(kind: Any, spec: dict[str, Any]) -> dict[str, Any] | None:
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else None
