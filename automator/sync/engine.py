"""The orchestrator: sync one checked-out revision into the cluster.

render -> plan (discovery scope, default namespace, ownership) -> apply in phases (CRDs,
Namespaces, cluster-scoped RBAC/storage/priority, the rest) -> prune (reverse order, our label
only, never after a failure) -> inventory. Each object's write is decided before it is sent:
unchanged objects cost nothing but their share of one paged LIST per kind.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from automator.errors import ApplyError, ImmutableFieldError, RenderError, SyncError
from automator.sync import inventory
from automator.sync.cluster import Cluster, KubeAPIError, Resource
from automator.sync.diff import (
    VOLATILE_META,
    checksum,
    comparable,
    drifted,
    keep_live,
    parse_pointer,
    set_native_defaults,
    without,
)
from automator.sync.model import (
    APPLY_ANNOTATION,
    CHECKSUM_ANNOTATION,
    IGNORE_ANNOTATION,
    IGNORE_FIELDS_ANNOTATION,
    OWNER_ANNOTATION,
    OWNER_LABEL,
    PRUNE_ANNOTATION,
    RECREATE_ANNOTATION,
    Action,
    ClusterReport,
    Health,
    Manifest,
    ObjectRef,
    ObjectResult,
    Observer,
    Seen,
    SyncResult,
    WorkloadReport,
    images_of,
    is_workload,
)
from automator.sync.render import render

log = logging.getLogger("automator.sync")

CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
NOT_OBSERVED = "health not observed"
CLUSTER_WIDE_FIRST = {
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
}


def phase_of(group: str, kind: str) -> int:
    """Apply order: CRDs, Namespaces, cluster-scoped RBAC/StorageClass/PriorityClass, the rest."""
    if (group, kind) == CRD:
        return 0
    if (group, kind) == ("", "Namespace"):
        return 1
    if (group, kind) in CLUSTER_WIDE_FIRST:
        return 2
    return 3


@dataclass(frozen=True)
class SyncOptions:
    name: str = "default"
    paths: tuple[str, ...] = (".",)
    default_namespace: str = "default"
    inventory_namespace: str = "default"
    inventory_kind: str = "configmap"  # or "secret"
    prune: bool = True
    allow_empty: bool = False
    force_conflicts: bool = True
    dry_run: bool = False
    ignore_fields: tuple[str, ...] = ()  # "/pointer" or "Kind:/pointer"
    concurrency: int = 8
    crd_timeout: float = 30.0
    recreate_timeout: float = 30.0
    suspend: bool = False
    kubectl: str = "kubectl"
    render_cache: Path | None = None  # directory for rendered revisions, see RenderCache
    source: str = ""  # what this sync reads (url without credentials, branch, paths): its identity
    take_over: bool = False  # adopt an inventory recorded by a sync of another source


@dataclass
class Planned:
    manifest: Manifest
    res: Resource
    body: dict[str, Any]
    ref: ObjectRef
    phase: int
    ignored: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.ref.group, self.ref.kind, self.ref.namespace, self.ref.name)


def key_of(ref: ObjectRef) -> tuple[str, str, str, str]:
    return (ref.group, ref.kind, ref.namespace, ref.name)


class Synchronizer:
    """Sync a rendered revision into ``cluster``; one instance per sync identity (``--name``).

    ``observer`` judges what the applied workloads run for the inventory (the runner hands it
    :func:`.health.observe`; without one their health is recorded Unknown); ``clock`` dates it.
    """

    def __init__(
        self,
        cluster: Cluster,
        options: SyncOptions,
        *,
        observer: Observer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cluster = cluster
        self.options = options
        self.observer = observer or _unobserved
        self.clock = clock or (lambda: datetime.now(UTC))
        self._flag_ignores = [_parse_ignore(spec) for spec in options.ignore_fields]
        self._last_render: tuple[tuple[str, tuple[str, ...]], list[Manifest]] | None = None

    @property
    def _owner(self) -> str:
        """The owner annotation of our objects: where our inventory lives."""
        return f"{self.options.inventory_namespace}/{self.options.name}"

    # -- the whole run ---------------------------------------------------------------------

    def sync(self, root: Path, revision: str) -> SyncResult:
        opts = self.options
        writes_before = self.cluster.writes
        inv = inventory.read(self.cluster, opts.inventory_namespace, opts.name, opts.inventory_kind)
        if opts.suspend or inv.suspended:
            log.info("sync %s is suspended; nothing applied", opts.name)
            return SyncResult(revision=revision, suspended=True)
        if inv.source and opts.source and inv.source != opts.source and not opts.take_over:
            where = f"{opts.inventory_namespace}/{inventory.inventory_name(opts.name)}"
            return SyncResult(
                revision=revision,
                errors=(
                    f"the inventory {where} belongs to the sync of {inv.source}, not {opts.source}: two syncs"
                    f" named {opts.name!r} would prune each other's objects; give this one another --name, or,"
                    " if this sync moved to a new source on purpose, run it once with --take-over;"
                    " nothing applied or pruned",
                ),
            )
        try:
            manifests = self._render(root, revision)
        except RenderError as exc:
            return SyncResult(revision=revision, errors=(f"render: {exc}; nothing applied or pruned",), error=exc)

        results: list[ObjectResult] = []
        planned: list[Planned] = []
        ignored: set[tuple[str, str, str]] = set()  # (group, kind, name): left alone, never pruned
        crds = [m for m in manifests if ObjectRef.of(m.obj).group_kind == CRD]
        for m in manifests:
            if m.annotation(IGNORE_ANNOTATION).lower() == "true":
                results.append(ObjectResult(m.ref, Action.SKIPPED))
                ignored.add((m.ref.group, m.ref.kind, m.ref.name))
                continue
            try:
                planned.append(self._plan(m, crds))
            except SyncError as exc:
                results.append(ObjectResult(m.ref, Action.FAILED, error=str(exc)))
        if not manifests and inv.objects and not opts.allow_empty:
            return SyncResult(
                revision=revision,
                objects=tuple(results),
                errors=(
                    f"the render of {', '.join(opts.paths)} produced no objects; refusing to prune the"
                    f" {len(inv.objects)} objects in the inventory — pass --allow-empty if that is intended",
                ),
            )

        planned.sort(key=lambda p: p.phase)
        inv = self._record_intent(inv, planned)
        diffs: dict[ObjectRef, str] = {}
        applied, live = self._apply_all(planned, diffs)
        results.extend(applied)
        failed = any(r.action is Action.FAILED for r in results)

        desired_keys = {p.key for p in planned}
        stale = [ref for ref in inv.objects if key_of(ref) not in desired_keys]
        kept = [ref for ref in stale if (ref.group, ref.kind, ref.name) in ignored]
        stale = [ref for ref in stale if (ref.group, ref.kind, ref.name) not in ignored]
        if failed:
            kept += stale  # keep tracking them; prune once an apply fully succeeds
        elif opts.prune:
            prune_results, prune_failed = self._prune(stale)
            results.extend(prune_results)
            kept += prune_failed
        applied_refs = [p.ref for p in planned]
        report = None
        if not opts.dry_run:
            report = self._report(revision, inv, planned, applied, live)
            new_inv = inventory.Inventory(
                revision=revision,
                objects=tuple(applied_refs + kept),
                workloads=report.workloads,
                applied_at=report.applied_at,
                omitted=report.omitted,
                source=opts.source,
            )
            inventory.write(self.cluster, opts.inventory_namespace, opts.name, inv, new_inv, kind=opts.inventory_kind)
        errors = tuple(r.error for r in results if r.action is Action.FAILED)
        return SyncResult(
            revision=revision,
            objects=tuple(results),
            errors=errors,
            diff="".join(diffs[p.ref] for p in planned if p.ref in diffs),
            writes=self.cluster.writes - writes_before,
            report=report,
        )

    def _report(
        self,
        revision: str,
        inv: inventory.Inventory,
        planned: list[Planned],
        applied: list[ObjectResult],
        live: dict[tuple[str, str, str, str], dict[str, Any]],
    ) -> ClusterReport:
        """What runs now: each applied workload's images and health (the observer's), bounded."""
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        actions = {r.ref: r.action for r in applied}
        seen = [
            Seen(p.ref, images_of(p.body), live.get(p.key), actions.get(p.ref) in (Action.CREATED, Action.CONFIGURED))
            for p in planned
            if is_workload(p.ref)
        ]
        observed = self.observer(seen, inv.workloads, now)
        workloads, omitted = inventory.bound(observed)
        applied_at = inv.applied_at if inv.revision == revision and inv.applied_at else now
        return ClusterReport(self.options.name, revision, applied_at, workloads, len(planned), omitted)

    def reobserve(self, result: SyncResult) -> SyncResult:
        """Judge the workloads of ``result`` again (after ``--wait``) and record what changed."""
        opts = self.options
        if result.report is None or opts.dry_run:
            return result
        inv = inventory.read(self.cluster, opts.inventory_namespace, opts.name, opts.inventory_kind)
        if inv.revision != result.revision:
            return result  # another sync recorded since: leave its record alone
        refs = {(r.kind, r.namespace, r.name): r for r in inv.objects if is_workload(r)}
        seen = [
            Seen(ref, w.images, None, True) for w in inv.workloads if (ref := refs.get((w.kind, w.namespace, w.name)))
        ]
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        workloads, _ = inventory.bound(self.observer(seen, inv.workloads, now))
        inventory.write(
            self.cluster,
            opts.inventory_namespace,
            opts.name,
            inv,
            replace(inv, workloads=workloads),
            kind=opts.inventory_kind,
        )
        return replace(result, report=replace(result.report, workloads=workloads))

    def _record_intent(self, inv: inventory.Inventory, planned: list[Planned]) -> inventory.Inventory:
        """Add what this sync may create to the inventory before creating it (see the inventory's
        docstring); the inventory as stored afterwards. No write when nothing is new."""
        opts = self.options
        known = {key_of(ref) for ref in inv.objects}
        new = [p.ref for p in planned if p.key not in known]
        if opts.dry_run or (not new and inv.source == opts.source):
            return inv
        intent = replace(inv, objects=(*inv.objects, *new), source=opts.source, exists=True)
        inventory.write(self.cluster, opts.inventory_namespace, opts.name, inv, intent, kind=opts.inventory_kind)
        return intent

    def _render(self, root: Path, revision: str) -> list[Manifest]:
        """Render ``root``, reusing an earlier render of the same revision and paths when kept."""
        opts = self.options
        key = (revision, opts.paths)
        if revision and self._last_render is not None and self._last_render[0] == key:
            return self._last_render[1]
        cache = RenderCache(opts.render_cache) if opts.render_cache and revision else None
        manifests = cache.load(revision, opts.paths) if cache else None
        if manifests is None:
            manifests = render(root, list(opts.paths), kubectl=opts.kubectl)
            if cache:
                cache.store(revision, opts.paths, manifests)
        self._last_render = (key, manifests)
        return manifests

    # -- planning --------------------------------------------------------------------------

    def _plan(self, m: Manifest, crds: list[Manifest]) -> Planned:
        ref = m.ref
        res = self.cluster.resource(ref.group, ref.version, ref.kind) or _from_crds(ref, crds)
        if res is None:
            raise ApplyError(
                f"{m.source}: {ref.api_version} {ref.kind} is not served by the cluster; install its CRD"
                " (or add it to the same commit) or fix apiVersion/kind"
            )
        body = json_copy(m.obj)
        meta = body.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = meta.get("namespace") or self.options.default_namespace
        else:
            meta.pop("namespace", None)
        for server_field in VOLATILE_META:
            meta.pop(server_field, None)  # kubectl-generated files carry creationTimestamp: null and the like
        body.pop("status", None)  # the status subresource belongs to controllers
        set_native_defaults(body)
        labels = meta.get("labels") or {}
        labels[OWNER_LABEL] = self.options.name
        meta["labels"] = labels
        annotations = meta.get("annotations") or {}
        annotations[OWNER_ANNOTATION] = self._owner
        annotations.pop(CHECKSUM_ANNOTATION, None)
        meta["annotations"] = annotations
        annotations[CHECKSUM_ANNOTATION] = checksum(body)
        ignored = [parts for kind, parts in self._flag_ignores if kind in ("", ref.kind)]
        for pointer in filter(None, (s.strip() for s in m.annotation(IGNORE_FIELDS_ANNOTATION).split(","))):
            try:
                ignored.append(parse_pointer(pointer))
            except ValueError as exc:
                raise ApplyError(f"{m.source}: {IGNORE_FIELDS_ANNOTATION}: {exc}") from exc
        return Planned(m, res, body, ObjectRef.of(body), phase_of(ref.group, ref.kind), ignored)

    # -- applying --------------------------------------------------------------------------

    def _apply_all(
        self, planned: list[Planned], diffs: dict[ObjectRef, str]
    ) -> tuple[list[ObjectResult], dict[tuple[str, str, str, str], dict[str, Any]]]:
        """Apply phase by phase; the results and our live objects as listed before applying."""
        results: list[ObjectResult] = []
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            live = self._live_index(planned, pool)
            for phase in sorted({p.phase for p in planned}):
                batch = [p for p in planned if p.phase == phase]
                # Objects already in sync are settled here, from data in hand; only the rest (writes,
                # GETs, dry runs) go to the workers, so a no-op resync pays no thread hand-offs.
                settled = [self._in_sync(p, live.get(p.key)) for p in batch]
                todo = [p for p, done in zip(batch, settled, strict=True) if done is None]
                applied = iter(pool.map(lambda p: self._apply_one(p, live.get(p.key), diffs), todo))
                results.extend(done if done is not None else next(applied) for done in settled)
                if phase == 0 and not self.options.dry_run:
                    results = self._wait_crds(batch, results)
        return results, live

    def _live_index(
        self, planned: list[Planned], pool: ThreadPoolExecutor
    ) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        """Our live objects: one paged LIST (by ownership label) per kind in the plan, kinds in parallel."""
        selector = f"{OWNER_LABEL}={self.options.name}"
        kinds = {(p.res.group, p.res.version, p.res.kind): p.res for p in planned}

        def list_kind(res: Resource) -> list[dict[str, Any]]:
            if self.cluster.resource(res.group, res.version, res.kind) is None:
                return []  # a custom resource whose CRD arrives in this very sync
            try:
                return list(self.cluster.list(res, selector))
            except KubeAPIError as exc:
                if exc.status != 403 or not res.namespaced:
                    raise
                # Namespaced RBAC: list each namespace the plan touches instead of the whole cluster.
                namespaces = sorted({p.ref.namespace for p in planned if p.res == res})
                return [o for ns in namespaces for o in self._list_allowed(res, selector, ns)]

        index: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for res, objects in zip(kinds.values(), pool.map(list_kind, kinds.values()), strict=True):
            for obj in objects:
                meta = obj.get("metadata") or {}
                index[(res.group, res.kind, meta.get("namespace") or "", meta.get("name", ""))] = obj
        return index

    def _list_allowed(self, res: Resource, selector: str, namespace: str) -> list[dict[str, Any]]:
        """One namespace's objects; none where RBAC forbids the list. The apply of each object there
        then fails on its own, named, and a failed apply never prunes, so nothing is lost."""
        try:
            return list(self.cluster.list(res, selector, namespace=namespace))
        except KubeAPIError as exc:
            if exc.status != 403:
                raise
            return []

    def _in_sync(self, p: Planned, live: dict[str, Any] | None) -> ObjectResult | None:
        """UNCHANGED when the live object carries this manifest's checksum and no desired field
        drifted; None when a worker must look further (a write, a GET, or a server dry run)."""
        if live is None or p.manifest.annotation(APPLY_ANNOTATION) == "if-absent":
            return None
        desired_sum = p.body["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        if ((live.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM_ANNOTATION) != desired_sum:
            return None
        if drifted(without(p.body, p.ignored), live):
            return None
        return ObjectResult(p.ref, Action.UNCHANGED)

    def _apply_one(self, p: Planned, live: dict[str, Any] | None, diffs: dict[ObjectRef, str]) -> ObjectResult:
        try:
            return self._decide_and_apply(p, live, diffs)
        except ImmutableFieldError as exc:
            if p.manifest.annotation(RECREATE_ANNOTATION).lower() != "true" or self.options.dry_run:
                return ObjectResult(p.ref, Action.FAILED, error=str(exc))
            try:
                return self._recreate(p)
            except SyncError as again:
                return ObjectResult(p.ref, Action.FAILED, error=f"{p.ref}: recreate failed: {again}")
        except SyncError as exc:
            return ObjectResult(p.ref, Action.FAILED, error=str(exc))

    def _decide_and_apply(self, p: Planned, live: dict[str, Any] | None, diffs: dict[ObjectRef, str]) -> ObjectResult:
        opts = self.options
        if live is None and (p.ignored or p.manifest.annotation(APPLY_ANNOTATION) == "if-absent"):
            live = self.cluster.get(p.res, p.ref.namespace, p.ref.name)
        if live is not None and p.manifest.annotation(APPLY_ANNOTATION) == "if-absent":
            return ObjectResult(p.ref, Action.SKIPPED)
        drift: list[str] = []
        body = p.body
        if live is not None:
            body = keep_live(p.body, live, p.ignored)
            live_sum = ((live.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM_ANNOTATION)
            if live_sum == p.body["metadata"]["annotations"][CHECKSUM_ANNOTATION]:
                drift = drifted(without(p.body, p.ignored), live)
                if not drift:
                    return ObjectResult(p.ref, Action.UNCHANGED)
                # The subset check can see a normalised value (a quantity, a defaulted list item) as
                # drift; the server's own dry-run answer settles it without writing.
                dry, _ = self.cluster.apply(p.res, body, force=opts.force_conflicts, dry_run=True)
                if comparable(dry) == comparable(live):
                    return ObjectResult(p.ref, Action.UNCHANGED)
                log.warning("drift on %s at %s; reverting", p.ref, ", ".join(drift))
        if opts.dry_run:
            try:
                dry, _ = self.cluster.apply(p.res, body, force=opts.force_conflicts, dry_run=True)
            except KubeAPIError as exc:
                if exc.status != 404 or live is not None:
                    raise
                dry = body  # its namespace (or CRD) is created by this same sync: show the manifest itself
            diffs[p.ref] = _unified(p.ref, live, dry)
            return ObjectResult(p.ref, Action.CREATED if live is None else Action.CONFIGURED, drift=tuple(drift))
        _, created = self.cluster.apply(p.res, body, force=opts.force_conflicts)
        return ObjectResult(p.ref, Action.CREATED if created else Action.CONFIGURED, drift=tuple(drift))

    def _recreate(self, p: Planned) -> ObjectResult:
        log.warning("recreating %s: an immutable field changed and it opts in to recreation", p.ref)
        self.cluster.delete(p.res, p.ref.namespace, p.ref.name)
        _poll(
            lambda: self.cluster.get(p.res, p.ref.namespace, p.ref.name) is None,
            self.options.recreate_timeout,
            f"{p.ref} was deleted for recreation but is still there after {self.options.recreate_timeout}s"
            " (a finalizer?)",
        )
        self.cluster.apply(p.res, p.body, force=self.options.force_conflicts)
        return ObjectResult(p.ref, Action.CREATED)

    def _wait_crds(self, batch: list[Planned], results: list[ObjectResult]) -> list[ObjectResult]:
        """Wait (bounded) until each applied CRD is Established, then forget stale discovery."""
        out = list(results)
        for p in batch:
            idx = next((i for i, r in enumerate(out) if r.ref == p.ref), None)
            if idx is None or out[idx].action is Action.FAILED:
                continue

            def established(p: Planned = p) -> bool:
                live = self.cluster.get(p.res, "", p.ref.name) or {}
                conditions = (live.get("status") or {}).get("conditions") or []
                return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

            try:
                _poll(
                    established, self.options.crd_timeout, f"{p.ref} not Established after {self.options.crd_timeout}s"
                )
            except SyncError as exc:
                out[idx] = replace(out[idx], action=Action.FAILED, error=str(exc))
            spec = p.body.get("spec") or {}
            for v in spec.get("versions") or [{"name": spec.get("version", "")}]:
                self.cluster.forget(str(spec.get("group", "")), str(v.get("name", "")))
        return out

    # -- pruning ---------------------------------------------------------------------------

    def _prune(self, stale: list[ObjectRef]) -> tuple[list[ObjectResult], list[ObjectRef]]:
        """Delete objects that left the repo, in reverse apply order, only if still labelled ours."""
        results: list[ObjectResult] = []
        kept: list[ObjectRef] = []
        ordered = sorted(enumerate(stale), key=lambda e: (-phase_of(e[1].group, e[1].kind), -e[0]))
        for _, ref in ordered:
            try:
                res = self.cluster.resource(ref.group, ref.version, ref.kind) or self.cluster.preferred(
                    ref.group, ref.kind
                )
                if res is None:
                    continue  # its API is gone (CRD removed): nothing left to delete
                live = self.cluster.get(res, ref.namespace, ref.name)
                if live is None:
                    continue
                meta = live.get("metadata") or {}
                if (meta.get("labels") or {}).get(OWNER_LABEL) != self.options.name:
                    log.info("not pruning %s: it no longer carries %s=%s", ref, OWNER_LABEL, self.options.name)
                    results.append(ObjectResult(ref, Action.SKIPPED))
                    continue
                owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
                if owner is not None and owner != self._owner:
                    log.info("not pruning %s: it belongs to the sync whose inventory is %s", ref, owner)
                    results.append(ObjectResult(ref, Action.SKIPPED))
                    continue
                if (meta.get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled":
                    results.append(ObjectResult(ref, Action.SKIPPED))
                    continue
                if not self.options.dry_run:
                    self.cluster.delete(res, ref.namespace, ref.name)
                results.append(ObjectResult(ref, Action.PRUNED))
            except SyncError as exc:
                kept.append(ref)
                results.append(ObjectResult(ref, Action.FAILED, error=f"prune {ref}: {exc}"))
        return results, kept


class RenderCache:
    """Rendered manifests of a revision, kept as JSON next to the git cache.

    A revision's render never changes (the tree is a pure function of the commit), so a resync
    of the same commit reads the objects back with ``json`` instead of re-parsing YAML and
    re-running kustomize — as Argo CD's repo-server caches manifests per revision. Unreadable
    entries are ignored and rewritten.
    """

    VERSION = 1

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, revision: str, paths: tuple[str, ...]) -> Path:
        digest = hashlib.sha256(json.dumps([self.VERSION, revision, list(paths)]).encode()).hexdigest()[:24]
        return self.directory / f"render-{digest}.json"

    def load(self, revision: str, paths: tuple[str, ...]) -> list[Manifest] | None:
        try:
            data = json.loads(self._path(revision, paths).read_text())
            return [Manifest(obj, source) for source, obj in data]
        except (OSError, ValueError, TypeError):
            return None

    def store(self, revision: str, paths: tuple[str, ...], manifests: list[Manifest]) -> None:
        target = self._path(revision, paths)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for old in self.directory.glob("render-*.json"):
                old.unlink(missing_ok=True)  # keep only the latest revision
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps([[m.source, m.obj] for m in manifests], separators=(",", ":")))
            tmp.replace(target)
        except OSError as exc:
            log.warning("cannot write the render cache %s: %s", target, exc)


def json_copy(value: Any) -> Any:
    """A deep copy of parsed JSON/YAML (dicts, lists, scalars), several times faster than
    ``copy.deepcopy``, which memoises every node to handle cycles and custom types JSON never has."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def _parse_ignore(spec: str) -> tuple[str, tuple[str, ...]]:
    kind, _, pointer = spec.rpartition(":") if not spec.startswith("/") else ("", "", spec)
    return kind, parse_pointer(pointer)


def _from_crds(ref: ObjectRef, crds: Iterable[Manifest]) -> Resource | None:
    """A custom resource's REST location from a CRD in the same render (not yet served)."""
    for m in crds:
        spec = m.obj.get("spec") or {}
        names = spec.get("names") or {}
        versions = [v.get("name") for v in spec.get("versions") or []] or [spec.get("version")]
        if spec.get("group") == ref.group and names.get("kind") == ref.kind and ref.version in versions:
            return Resource(
                ref.group, ref.version, ref.kind, str(names.get("plural")), spec.get("scope") == "Namespaced"
            )
    return None


def _unobserved(seen: Sequence[Seen], previous: Iterable[WorkloadReport], now: datetime) -> tuple[WorkloadReport, ...]:
    """The images applied, health not judged (no observer): Unknown since the first such record."""
    before = {(w.kind, w.namespace, w.name): w for w in previous}
    out = []
    for s in seen:
        old = before.get((s.ref.kind, s.ref.namespace, s.ref.name))
        since = old.since if old is not None and old.health == Health.UNKNOWN else now
        images = s.images
        out.append(
            WorkloadReport(s.ref.kind, s.ref.namespace, s.ref.name, images, str(Health.UNKNOWN), NOT_OBSERVED, since)
        )
    return tuple(out)


def _unified(ref: ObjectRef, live: dict[str, Any] | None, new: dict[str, Any]) -> str:
    before = yaml.safe_dump(comparable(live), sort_keys=True).splitlines(keepends=True) if live else []
    after = yaml.safe_dump(comparable(new), sort_keys=True).splitlines(keepends=True)
    name = f"{ref.api_version}/{ref}".replace(" ", "/")
    return "".join(difflib.unified_diff(before, after, f"live/{name}", f"desired/{name}"))


def _poll(check: Callable[[], bool], timeout: float, message: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise SyncError(message)
        time.sleep(interval)
