"""Check setter markers against the loaded policies: what ``automator validate`` reports.

A marker naming no policy is left alone by the rewrite (plan and run only warn); here it is an
error with the file, line and column of the marker and the closest name that does exist.
Names resolve exactly as the rewrite resolves them (:meth:`Decisions.resolve`, over every
loaded policy, the refused ones as ``others``), so this check and the rewrite never disagree.

Flux reads a policy's namespace from the cluster, where a kustomize overlay
(``namespace: staging`` over ``resources: [../../base]``) may have set it; automator reads the
files as they are written.  So the closest name also considers the names the repository's
kustomizations would give each policy file they include (:func:`overlay_names`, bounded in
depth, never outside the repository, remote resources ignored).

The pure parts are :func:`find_markers`, :func:`overlay_names` and :func:`check_markers`;
:func:`check_tree` is the I/O edge, reading files with the rewrite's own walker and limits.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automator.errors import PolicyFileError
from automator.policy import PolicySet
from automator.policy.model import Policy
from automator.policy.yamldocs import Document, read_documents
from automator.update.locate import PROBE_TAG
from automator.update.model import SETTERS, Decision, Decisions, UpdateWarning
from automator.update.rewrite import KUSTOMIZATION_FILES, MARKER_TOKEN, _comment_start, parse_marker
from automator.update.tree import DEFAULT_MAX_BYTES, _read, _walk

MAX_OVERLAY_DEPTH = 16  # kustomizations including kustomizations: deeper than any real repository
MAX_KUSTOMIZATIONS = 10_000
_LISTS = ("resources", "bases", "components")  # where a kustomization includes files or directories
_SHOWN = 8  # names listed when nothing is close


@dataclass(frozen=True)
class Marker:
    """One setter marker: where its comment starts (1-based line and column) and what it names."""

    file: str
    line: int
    column: int
    ref: str


@dataclass(frozen=True)
class Overlay:
    """The name a kustomization's ``namespace:`` gives a policy its resources include."""

    name: str
    policy: Policy
    kustomization: str  # root-relative path of the kustomization file
    namespace: str


def find_markers(text: str, path: str) -> tuple[Marker, ...]:
    """The setter markers of one file: comments after a value, read with the rewrite's rules."""
    out: list[Marker] = []
    seen: set[int] = set()
    pos = text.find(MARKER_TOKEN)
    while pos != -1:
        start = text.rfind("\n", 0, pos) + 1
        hash_at = _comment_start(text, start, pos)
        if hash_at is not None and hash_at not in seen and text[start:hash_at].strip():
            seen.add(hash_at)
            eol = text.find("\n", pos)
            ref = parse_marker(text[hash_at : eol if eol != -1 else len(text)].removesuffix("\r"))
            if ref is not None:
                out.append(Marker(path, text.count("\n", 0, start) + 1, hash_at - start + 1, ref))
        pos = text.find(MARKER_TOKEN, pos + len(MARKER_TOKEN))
    return tuple(out)


def overlay_names(policies: Iterable[Policy], kustomizations: Mapping[str, Any]) -> dict[str, Overlay]:
    """Names kustomize overlays would give the policies, by name: ``{namespace}:{short name}``.

    ``kustomizations`` maps each kustomization file (root-relative) to its parsed document.  A
    kustomization's ``namespace`` covers every policy file its ``resources`` (``bases``,
    ``components``) include, directly or through other kustomizations' directories.
    """
    by_file: dict[str, list[Policy]] = {}
    for p in policies:
        by_file.setdefault(p.source.path, []).append(p)
    by_dir = {posixpath.dirname(k) or ".": k for k in kustomizations}
    memo: dict[str, frozenset[str]] = {}

    def files_of(kpath: str, depth: int, stack: frozenset[str]) -> frozenset[str]:
        if kpath in memo:
            return memo[kpath]
        if depth > MAX_OVERLAY_DEPTH or kpath in stack:
            return frozenset()
        data = kustomizations[kpath]
        base = posixpath.dirname(kpath)
        found: set[str] = set()
        for key in _LISTS:
            items = data.get(key) if isinstance(data, dict) else None
            for item in items if isinstance(items, list) else ():
                if not isinstance(item, str) or "://" in item or item.startswith("git@"):
                    continue  # a remote resource: never fetched
                target = posixpath.normpath(posixpath.join(base, item))
                if target == ".." or target.startswith(("../", "/")):
                    continue  # outside the repository
                if target in by_file:
                    found.add(target)
                inner = by_dir.get(target)
                if inner is not None:
                    found |= files_of(inner, depth + 1, stack | {kpath})
        memo[kpath] = frozenset(found)
        return memo[kpath]

    out: dict[str, Overlay] = {}
    for kpath, data in sorted(kustomizations.items()):
        namespace = data.get("namespace") if isinstance(data, dict) else None
        if not isinstance(namespace, str) or not namespace:
            continue
        for file in sorted(files_of(kpath, 0, frozenset())):
            for p in by_file[file]:
                name = f"{namespace}:{p.short_name}"
                if name != p.name:
                    out.setdefault(name, Overlay(name, p, kpath, namespace))
    return out


def _probe(policies: PolicySet) -> Decisions:
    """Every loaded policy as a decision (no tag a file holds), the refused ones as others."""
    return Decisions.of(
        (Decision(p, p.image.with_tag(PROBE_TAG)) for p in policies.policies),
        policies.refused,
    )


def check_markers(
    markers: Iterable[Marker], policies: PolicySet, overlays: Mapping[str, Overlay]
) -> tuple[PolicyFileError, ...]:
    """An error for every marker that names no loaded policy (or names several)."""
    decisions = _probe(policies)
    errors = []
    for m in markers:
        resolution = decisions.resolve(m.ref)
        if resolution.decision is not None:
            continue
        if "ambiguous" in resolution.problem:
            names = resolution.problem.partition("(")[2].partition(")")[0]  # the rewrite's list of candidates
            message = f"marker names policy {m.ref!r}, which is ambiguous ({names}); write it as namespace:name"
            errors.append(_error(m, message))
        elif resolution.problem.startswith("unknown policy"):  # else a refused one: the loader reported it
            errors.append(_error(m, _unknown(m.ref, policies, overlays)))
    return tuple(errors)


def _error(marker: Marker, message: str) -> PolicyFileError:
    return PolicyFileError(message, path=marker.file, line=marker.line, column=marker.column)


def _closest(ref: str, names: Collection[str]) -> tuple[str, str] | None:
    """The closest of ``names`` to the policy part of ``ref``, and the setter suffix kept."""
    head, sep, suffix = ref.rpartition(":")
    queries = [(head, f":{suffix}")] if sep and head and suffix in SETTERS else []
    queries.append((ref, ""))
    shorts: dict[str, list[str]] = {}  # a namespace far off: the one policy whose short name is close
    for name in names:
        shorts.setdefault(name.rpartition(":")[2], []).append(name)
    for query, tail in queries:
        close = difflib.get_close_matches(query, names, n=1, cutoff=0.6)
        if close:
            return close[0], tail
        close = difflib.get_close_matches(query.rpartition(":")[2], list(shorts), n=1, cutoff=0.8)
        if close and len(shorts[close[0]]) == 1:
            return shorts[close[0]][0], tail
    return None


def _unknown(ref: str, policies: PolicySet, overlays: Mapping[str, Overlay]) -> str:
    said = f"marker names policy {ref!r}, which no policy file declares"
    head, sep, suffix = ref.rpartition(":")
    tail = f":{suffix}" if sep and head and suffix in SETTERS else ""
    exact = overlays.get(ref) or (overlays.get(head) if tail else None)
    if exact is not None:
        return f"{said} as written: {_overlaid(exact, tail)}"
    found = _closest(ref, [*policies.names, *overlays])
    if found is None:
        names = sorted(policies.names)
        listed = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
        return f"{said}, and no policy is close to it ({'policies: ' + listed if names else 'no policy loaded'})"
    name, tail = found
    overlay = overlays.get(name)
    if overlay is not None:
        return f"{said}; did you mean {name + tail!r}? That is {_overlaid(overlay, tail)}"
    policy = policies.get(name)
    where = f" (declared at {policy.source})" if policy is not None else ""
    return f"{said}; did you mean {name + tail!r}?{where}"


def _overlaid(o: Overlay, tail: str) -> str:
    p = o.policy
    return (
        f"{p.name!r} ({p.source}), put in namespace {o.namespace} by {o.kustomization}; automator names"
        f" policies as their files are written, so write {p.name + tail!r} in the marker, or set"
        f" metadata.namespace: {o.namespace} in {p.source.path}"
    )


def _document(data: bytes) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    for doc in read_documents(text, every=True):
        return doc.data if isinstance(doc, Document) else None
    return None


def check_tree(
    root: Path, policies: PolicySet, *, only: Collection[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[PolicyFileError, ...]:
    """Check every marker under ``root`` (or in the root-relative files ``only``).

    Files are walked and read as the rewrite reads them (regular YAML files inside the root,
    ``.git`` skipped, at most ``max_bytes`` each); problems reading them are the rewrite's to
    report.  Kustomizations are read only when some marker names no policy.
    """
    root = Path(os.path.realpath(root))
    ignored: list[UpdateWarning] = []
    markers: list[Marker] = []
    kustomizations: list[tuple[Path, str]] = []
    token = MARKER_TOKEN.encode()
    for path, rel in _walk(root, root, ignored):
        if path.name in KUSTOMIZATION_FILES and len(kustomizations) < MAX_KUSTOMIZATIONS:
            kustomizations.append((path, rel))
        if only is not None and rel not in only:
            continue
        read = _read(path, rel, max_bytes, ignored)
        if read is None or token not in read[0]:
            continue
        try:
            markers.extend(find_markers(read[0].decode("utf-8"), rel))
        except UnicodeDecodeError:
            continue
    errors = check_markers(markers, policies, {})
    if not errors:
        return ()
    docs = {}
    for path, rel in kustomizations:
        read = _read(path, rel, max_bytes, ignored)
        if read is not None:
            docs[rel] = _document(read[0])
    return check_markers(markers, policies, overlay_names(policies.policies, docs))
