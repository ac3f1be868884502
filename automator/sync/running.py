"""Which digests a workload's pods run: the Pods' ``status.containerStatuses[].imageID``.

A Deployment (StatefulSet, DaemonSet, ReplicaSet, Job) says which image it should run, not which
digest its pods pulled: a tag re-pushed between two pulls runs two digests under one name. The
kubelet reports, per container, the image it resolved: ``imageID`` is the repository digest
(``registry/app@sha256:...``, ``docker-pullable://`` before it on the Docker runtime). Pure
functions over what a Pod LIST returned; :func:`.health.observe` does the LIST.

Which pods are a workload's:

* a Pod is its own;
* a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job: the pods its ``spec.selector``
  (``matchLabels`` and ``matchExpressions``, as Kubernetes matches them) selects in its
  namespace; a workload without a selector has none;
* a CronJob: the pods of its Jobs, which the CronJob controller names ``<cronjob>-<minutes>``.

Of those, only the pods that run the workload's current template count: for each container
(init containers first, by name), the pods whose container of that name has the image applied;
pods being deleted, and the old pods of a rollout in progress, do not. A container's digests are
what those pods report, most pods first, at most :data:`MAX_DIGESTS`; an ``imageID`` that is not
a repository digest (a bare ``sha256:`` is the local image's config, not what the registry serves)
is not one.

Hand-written: the label-selector rules are four operators over a dict, and the kubernetes client
offers no matcher.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["MAX_DIGESTS", "digest_of", "running_digests", "selects"]

MAX_DIGESTS = 4  # distinct digests kept per container
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


def digest_of(image_id: str) -> str:
    """The repository digest in a container's ``imageID``, or ``""``."""
    m = _DIGEST.search(image_id.strip())
    return m[1] if m else ""


def selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector (``matchLabels``, ``matchExpressions``) selects ``labels``. A
    selector that is not an object, or selects by nothing, selects no pod here: a workload always
    has one, and a controller without one owns nothing."""
    if not isinstance(selector, dict):
        return False
    match = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match, dict) or not isinstance(expressions, list) or not (match or expressions):
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for e in expressions:
        if not isinstance(e, dict):
            return False
        key, op, values = str(e.get("key", "")), e.get("operator"), e.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _containers(pod_spec: Any) -> list[dict[str, Any]]:
    if not isinstance(pod_spec, dict):
        return []
    found = (c for key in ("initContainers", "containers") for c in pod_spec.get(key) or ())
    return [c for c in found if isinstance(c, dict) and c.get("image")]  # as images_of lists them


def _template(live: Mapping[str, Any]) -> Any:
    """The pod spec a workload creates its pods from."""
    spec = live.get("spec") or {}
    if live.get("kind") == "Pod":
        return spec
    if live.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def _owns(live: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    meta = live.get("metadata") or {}
    pod_meta = pod.get("metadata") or {}
    if pod_meta.get("namespace", "") != meta.get("namespace", "") or pod_meta.get("deletionTimestamp"):
        return False
    kind, name = live.get("kind"), meta.get("name")
    if kind == "Pod":
        return bool(pod_meta.get("name") == name)
    if kind == "CronJob":
        prefix = f"{name}-"
        jobs = (
            str(o.get("name", ""))
            for o in pod_meta.get("ownerReferences") or ()
            if isinstance(o, dict) and o.get("kind") == "Job"
        )
        return any(job.startswith(prefix) and job[len(prefix) :].isdigit() for job in jobs)
    return selects((live.get("spec") or {}).get("selector"), pod_meta.get("labels") or {})


def running_digests(live: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Beside each container of ``live``'s template (init containers first): the digests its
    current pods among ``pods`` run, most pods first, joined by ``,`` (``""``: none said). Empty
    when no pod of it reported a digest."""
    containers = _containers(_template(live))
    counts: list[Counter[str]] = [Counter() for _ in containers]
    index = {str(c.get("name", "")): (i, str(c.get("image", ""))) for i, c in enumerate(containers)}
    for pod in pods:
        if not _owns(live, pod):
            continue
        images = {str(c.get("name", "")): str(c.get("image", "")) for c in _containers(pod.get("spec"))}
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in status.get(key) or ():
                if not isinstance(cs, dict):
                    continue
                name = str(cs.get("name", ""))
                found = index.get(name)
                if found is None or images.get(name) != found[1]:
                    continue  # not a container of this template, or a pod of an older one
                if digest := digest_of(str(cs.get("imageID", ""))):
                    counts[found[0]][digest] += 1
    if not any(counts):
        return ()
    return tuple(",".join(_ordered(c)[:MAX_DIGESTS]) for c in counts)


def _ordered(counts: Counter[str]) -> Sequence[str]:
    return [d for d, _ in sorted(counts.items(), key=lambda dc: (-dc[1], dc[0]))]
