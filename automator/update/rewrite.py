"""The pure core: ``rewrite_text(text, path, decisions) -> FileResult``.

Nodes are located from the parser's events (:mod:`automator.update._yaml`), each new value
is rendered in its scalar's quoting style (:mod:`automator.update._scalar`) and spliced
into the original text at the scalar's exact offsets.  No document is ever re-dumped, so
comments, blank lines, key order, indentation, anchors, merge keys, document markers,
CRLF endings and a missing final newline come through byte for byte.

Two ways to find targets:

* **Setter markers**, as Flux's image-automation-controller reads them: a line comment
  ``# {"$imagepolicy": "ns:name"}`` after a scalar.  The comment, stripped of its leading
  ``#`` characters, must be a JSON object of strings (kyaml ``fieldmeta`` rules); the
  reference may end in ``:tag``, ``:name`` or ``:digest``.  The full setter writes
  ``name:tag`` plus ``@digest`` when the policy tracks digests.
  The file's own spelling of the repository is kept when it names the same one
  (``nginx`` stays ``nginx``); otherwise the policy's familiar name is written.  As in Flux,
  the full setter of a policy that does not track digests writes no digest, even where the
  old value had one.  A marker naming no known policy is reported and left alone.
* **Marker-less** (opt-in per policy with ``Policy.marker_less``, or per call): fields whose
  image names the policy's repository after normalisation (``nginx`` is
  ``docker.io/library/nginx``), and only these:

  - ``image`` of ``containers``/``initContainers``/``ephemeralContainers`` in the Pod
    template of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob
    (also inside ``kind: List`` / ``*List`` items);
  - kustomization ``images:`` entries (``kustomize.config.k8s.io`` at the top level, Flux's
    ``kustomize.toolkit.fluxcd.io`` under ``spec``, or a ``kustomization.yaml`` without a
    kind), matched on ``newName`` else ``name``, writing ``newTag`` (and ``digest``);
  - Helm values shapes under any ``image`` key: ``repo:tag[@digest]`` strings and
    ``{[registry,] repository, tag[, digest]}`` maps, in HelmRelease ``spec.values`` and in
    files without a kind whose name contains ``values`` (so a docker-compose file or a CI
    workflow is never touched).

  A value without a tag is left alone (reported).  A value pinned by digest moves only
  when the policy tracks digests and the decision has one; an unpinned string gains the
  digest when the policy tracks digests.  A scalar that carries any marker is the marker's.

After splicing, the new text is parsed again and compared with the original tree with only
the targeted values replaced; any other difference leaves the file untouched with a warning.
"""

from __future__ import annotations

import json
import posixpath
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from automator.errors import InvalidReference
from automator.refs import ImageRef, parse_reference
from automator.update._scalar import render
from automator.update._yaml import (
    DOUBLE,
    FOLDED,
    LITERAL,
    MAPPING,
    PLAIN,
    SCALAR,
    SEQUENCE,
    SINGLE,
    Node,
    YAMLSyntaxError,
    compose,
    line_comment,
    value_start,
)
from automator.update.model import (
    Change,
    Decision,
    Decisions,
    FileResult,
    ObjectChanges,
    ObjectId,
    UpdateWarning,
)

MARKER_TOKEN = "$imagepolicy"

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})

ByRepo = Mapping[str, tuple[Decision, ...]]


@dataclass
class _Edit:
    node: Node
    new: str
    decision: Decision
    obj: ObjectId
    setter: str = ""  # the setter marker's canonical name (Flux's Change.Setter); "" without a marker


class _File:
    """Working state for one file: the text, its trees, the edits and warnings so far."""

    def __init__(self, text: str, path: str, decisions: Decisions, docs: list[Node]) -> None:
        self.text = text
        self.path = path
        self.decisions = decisions
        self.docs = docs
        self.edits: dict[int, _Edit] = {}
        self.marked: set[int] = set()  # scalars carrying any setter marker: marker-less keeps off
        self.warnings: list[UpdateWarning] = []
        self._objects: dict[int, ObjectId] | None = None

    def object_of(self, node: Node) -> ObjectId:
        """The innermost Kubernetes object holding ``node`` (indexed on first use)."""
        if self._objects is None:
            self._objects = {}
            for doc in self.docs:
                _index_objects(self._objects, doc)
        return self._objects.get(id(node), ObjectId())

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(UpdateWarning(self.path, line, message))

    def edit(self, node: Node, new: str, decision: Decision, obj: ObjectId, setter: str = "") -> None:
        if node.style in (LITERAL, FOLDED):
            self.warn(node.line + 1, f"{node.value.strip()!r} is a block scalar; only inline scalars are rewritten")
            return
        if new == node.value:
            return
        prior = self.edits.get(id(node))
        if prior is not None:
            if prior.new != new:
                self.warn(
                    node.line + 1,
                    f"policies {prior.decision.name} and {decision.name} both target this value; "
                    f"kept {prior.decision.name}'s {prior.new!r}",
                )
            return
        self.edits[id(node)] = _Edit(node, new, decision, obj, setter)


def rewrite_text(
    text: str, path: str, decisions: Decisions, *, marker_less: bool = False, splice: bool = True
) -> FileResult:
    """Rewrite the image scalars of one YAML file; pure, no I/O.

    ``path`` (relative, ``/``-separated) names the file in changes and warnings and tells a
    kustomization or Helm values file apart.  ``marker_less=True`` applies marker-less
    discovery to every decision, not only to policies with ``marker_less`` set.
    ``splice=False`` finds the changes without making them (the text comes back as it was):
    what :mod:`automator.update.locate` needs to read the current values.
    """
    has_marker = MARKER_TOKEN in text
    by_repo = decisions.marker_less(everyone=marker_less)
    if not has_marker and not by_repo:
        return FileResult(path, text, text)
    try:
        docs = compose(text)
    except YAMLSyntaxError as exc:
        where = UpdateWarning(path, exc.line, f"not valid YAML, left untouched: {exc}")
        return FileResult(path, text, text, warnings=(where,))

    state = _File(text, path, decisions, docs)
    if has_marker:
        _apply_markers(state, docs)
    if by_repo:
        for doc in docs:
            _apply_marker_less(state, doc, by_repo)
    return _finish(state, docs) if splice else _located(state)


# ---------------------------------------------------------------------------------------------
# objects


def _object_id(node: Node) -> ObjectId | None:
    if node.kind != MAPPING:
        return None
    api, kind = node.text("apiVersion"), node.text("kind")
    if not api or not kind:
        return None
    meta = node.get("metadata")
    name = namespace = ""
    if meta is not None and meta.kind == MAPPING:
        name = meta.text("name") or ""
        namespace = meta.text("namespace") or ""
    return ObjectId(api, kind, namespace, name)


def _index_objects(objects: dict[int, ObjectId], doc: Node) -> None:
    """Remember, for every node, the innermost Kubernetes object that holds it."""
    seen: set[int] = set()
    root_id = _object_id(doc) or ObjectId()
    todo: list[tuple[Node, ObjectId]] = [(doc, root_id)]
    while todo:
        node, obj = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == MAPPING:
            obj = _object_id(node) or obj
            for k, v in node.pairs:
                todo.append((k, obj))
                todo.append((v, obj))
        elif node.kind == SEQUENCE:
            todo.extend((item, obj) for item in node.items)
        objects[id(node)] = obj


def _scalars(doc: Node) -> Iterator[tuple[Node, bool]]:
    seen: set[int] = set()
    todo: list[tuple[Node, bool]] = [(doc, False)]
    while todo:
        node, is_key = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == SCALAR:
            yield node, is_key
        elif node.kind == MAPPING:
            for k, v in node.pairs:
                todo.append((k, True))
                todo.append((v, False))
        else:
            todo.extend((item, False) for item in node.items)


# ---------------------------------------------------------------------------------------------
# setter markers


def parse_marker(comment: str) -> str | None:
    """The policy reference in a setter-marker comment, or None when it is not one.

    Mirrors kyaml: leading ``#`` characters are dropped, the rest must be a JSON object whose
    values are all strings, and ``$imagepolicy`` must be a non-empty one of them.
    """
    body = comment.lstrip("#").strip()
    if not body.startswith("{"):
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    ref = data.get(MARKER_TOKEN)
    return ref or None


def _marker_positions(text: str) -> list[int]:
    out = []
    pos = text.find(MARKER_TOKEN)
    while pos != -1:
        out.append(pos)
        pos = text.find(MARKER_TOKEN, pos + len(MARKER_TOKEN))
    return out


def _apply_markers(state: _File, docs: list[Node]) -> None:
    text = state.text
    positions = _marker_positions(text)
    last_on_line: dict[int, tuple[Node, bool]] = {}
    inside_scalar: set[int] = set()  # marker positions that are data, not comments
    for doc in docs:
        for node, is_key in _scalars(doc):
            start = node.start
            if node.style in (LITERAL, FOLDED):  # the header line's comment is not content
                start = text.find("\n", start) + 1 or node.end
            i = bisect_left(positions, start)
            while i < len(positions) and positions[i] < node.end:
                inside_scalar.add(positions[i])
                i += 1
            best = last_on_line.get(node.end_line)
            if best is None or node.end > best[0].end:
                last_on_line[node.end_line] = (node, is_key)

    handled: set[int] = set()  # comment offsets read as (or ruled out as) a scalar's marker
    for node, is_key in last_on_line.values():
        if is_key or node.style in (LITERAL, FOLDED):
            continue
        found = line_comment(text, node)
        if found is None or MARKER_TOKEN not in found[1]:
            continue
        offset, comment = found
        handled.add(offset)
        ref = parse_marker(comment)
        line = node.end_line + 1
        if ref is None:
            state.warn(line, f"comment {comment.strip()!r} mentions $imagepolicy but is not a setter marker (JSON)")
            continue
        state.marked.add(id(node))
        if node.style == PLAIN and node.value == "":
            state.warn(line, "the marked value is empty; write the current value there for the marker to update it")
            continue
        _apply_setter(state, node, ref, line)

    for pos in positions:
        if pos in inside_scalar:
            continue
        start = text.rfind("\n", 0, pos) + 1
        hash_at = _comment_start(text, start, pos)
        if hash_at is None or hash_at in handled:
            continue
        eol = text.find("\n", pos)
        comment = text[hash_at : eol if eol != -1 else len(text)].removesuffix("\r")
        if parse_marker(comment) is not None:
            line = text.count("\n", 0, pos) + 1
            state.warn(line, "setter marker is not after an inline scalar value on its line; ignored")


def _comment_start(text: str, line_start: int, limit: int) -> int | None:
    pos = text.find("#", line_start, limit)
    while pos != -1:
        if pos == line_start or text[pos - 1] in " \t":
            return pos
        pos = text.find("#", pos + 1, limit)
    return None


def _spelled_name(value: str, ref: ImageRef) -> str:
    """The repository part of ``value`` exactly as the file spells it."""
    rest = value.split("@", 1)[0]
    if ref.tag is not None:
        rest = rest[: rest.rfind(":")]
    return rest


def _name_for(current: str, decision: Decision) -> str:
    """Keep the file's spelling of the repository when it names the same one."""
    try:
        ref = parse_reference(current)
    except InvalidReference:
        return decision.image.familiar
    if ref.repository == decision.image.repository:
        return _spelled_name(current, ref)
    return decision.image.familiar


def _apply_setter(state: _File, node: Node, ref: str, line: int) -> None:
    resolution = state.decisions.resolve(ref)
    decision = resolution.decision
    if decision is None:
        if resolution.problem:  # no problem: the policy's decision belongs to another change
            state.warn(line, resolution.problem)
        return
    obj = state.object_of(node)
    if resolution.setter == "tag":
        new = decision.tag
    elif resolution.setter == "digest":
        if decision.digest is None:
            state.warn(line, f"policy {decision.name} has no digest for {decision.image}; ':digest' left as it is")
            return
        new = decision.digest
    elif resolution.setter == "name":
        new = _name_for(node.value, decision)
    else:
        new = f"{_name_for(node.value, decision)}:{decision.tag}"
        if decision.policy.tracks_digest and decision.digest:
            new += f"@{decision.digest}"
    suffix = "" if resolution.setter == "image" else f":{resolution.setter}"
    state.edit(node, new, decision, obj, decision.name + suffix)


# ---------------------------------------------------------------------------------------------
# marker-less discovery


def _path(node: Node | None, keys: tuple[str, ...]) -> Node | None:
    for key in keys:
        if node is None or node.kind != MAPPING:
            return None
        node = node.get(key)
    return node


def _objects(doc: Node) -> Iterator[tuple[Node, ObjectId]]:
    """Top-level objects of a document, looking inside ``kind: List`` (``*List``) items."""
    todo = [doc]
    seen: set[int] = set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        oid = _object_id(node)
        if oid is not None and oid.kind.endswith("List"):
            items = node.get("items")
            if items is not None and items.kind == SEQUENCE:
                todo.extend(reversed(items.items))
            continue
        yield node, oid or ObjectId()


def _apply_marker_less(state: _File, doc: Node, by_repo: ByRepo) -> None:
    base = posixpath.basename(state.path)
    for node, oid in _objects(doc):
        if node.kind != MAPPING:
            continue
        kind, api = oid.kind, oid.api_version
        if kind in POD_SPEC_PATHS:
            spec = _path(node, POD_SPEC_PATHS[kind])
            for list_key in CONTAINER_LISTS:
                containers = _path(spec, (list_key,))
                if containers is None or containers.kind != SEQUENCE:
                    continue
                for container in containers.items:
                    image = _path(container, ("image",))
                    if image is not None and image.kind == SCALAR:
                        _string_site(state, image, by_repo, oid)
        elif kind == "Kustomization" and api.startswith("kustomize.config.k8s.io/"):
            _kustomize_images(state, node.get("images"), by_repo, oid)
        elif kind == "Kustomization" and api.startswith("kustomize.toolkit.fluxcd.io/"):
            _kustomize_images(state, _path(node, ("spec", "images")), by_repo, oid)
        elif kind == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
            values = _path(node, ("spec", "values"))
            if values is not None:
                _helm_values(state, values, by_repo, oid)
        elif not kind and base in KUSTOMIZATION_FILES:
            _kustomize_images(state, node.get("images"), by_repo, oid)
        elif not kind and "values" in base.lower():
            _helm_values(state, node, by_repo, oid)


def _match(state: _File, node: Node, name: str, by_repo: ByRepo) -> tuple[ImageRef, Decision] | None:
    """The decision for an image name, if exactly one marker-less policy owns its repository."""
    try:
        ref = parse_reference(name)
    except InvalidReference:
        return None
    found: tuple[Decision, ...] = by_repo.get(ref.repository, ())
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(sorted(d.name for d in found))
        state.warn(node.line + 1, f"image {name!r} matches several marker-less policies ({names}); left as it is")
        return None
    return ref, found[0]


def _usable(node: Node | None) -> bool:
    return node is not None and node.kind == SCALAR and node.style not in (LITERAL, FOLDED)


def _string_site(state: _File, node: Node, by_repo: ByRepo, oid: ObjectId) -> None:
    """``image: repo[:tag][@digest]`` in one string."""
    if id(node) in state.marked or not _usable(node):
        return
    value = node.value
    matched = _match(state, node, value, by_repo)
    if matched is None:
        return
    ref, decision = matched
    line = node.line + 1
    name = _spelled_name(value, ref)
    tracks = decision.policy.tracks_digest
    if ref.digest is not None:
        if not tracks:
            state.warn(line, f"{value!r} is pinned by digest and policy {decision.name} does not track digests; left")
            return
        if decision.digest is None:
            state.warn(line, f"{value!r} is pinned by digest but policy {decision.name} chose no digest; left")
            return
        new = f"{name}:{decision.tag}@{decision.digest}" if ref.tag is not None else f"{name}@{decision.digest}"
    elif ref.tag is None:
        state.warn(line, f"image {value!r} has no tag; left as it is")
        return
    else:
        new = f"{name}:{decision.tag}"
        if tracks and decision.digest:
            new += f"@{decision.digest}"
    state.edit(node, new, decision, oid)


def _fields_site(
    state: _File,
    owner: Node,
    *,
    name: str,
    tag: Node | None,
    digest: Node | None,
    by_repo: ByRepo,
    oid: ObjectId,
    tag_key: str,
) -> None:
    """A repository name with sibling tag and digest fields (Helm values, kustomize images)."""
    if any(n is not None and id(n) in state.marked for n in (tag, digest)):
        return
    matched = _match(state, owner, name, by_repo)
    if matched is None:
        return
    _, decision = matched
    line = owner.line + 1
    pinned = _usable(digest) and digest is not None and digest.value.strip() != ""
    has_tag = _usable(tag) and tag is not None and tag.value.strip() != ""
    if pinned:
        assert digest is not None
        if not decision.policy.tracks_digest:
            state.warn(
                line, f"{name!r} is pinned by digest and policy {decision.name} does not track digests; left as it is"
            )
            return
        if decision.digest is None:
            state.warn(line, f"{name!r} is pinned by digest but policy {decision.name} chose no digest; left")
            return
        state.edit(digest, decision.digest, decision, oid)
        if has_tag and tag is not None:
            state.edit(tag, decision.tag, decision, oid)
        return
    if not has_tag or tag is None:
        state.warn(line, f"{name!r} has no {tag_key} to update; left as it is")
        return
    state.edit(tag, decision.tag, decision, oid)


def _kustomize_images(state: _File, images: Node | None, by_repo: ByRepo, oid: ObjectId) -> None:
    if images is None or images.kind != SEQUENCE:
        return
    for entry in images.items:
        if entry.kind != MAPPING:
            continue
        name = entry.text("newName") or entry.text("name")
        if not name:
            continue
        _fields_site(
            state,
            entry,
            name=name,
            tag=entry.get("newTag"),
            digest=entry.get("digest"),
            by_repo=by_repo,
            oid=oid,
            tag_key="newTag",
        )


def _helm_values(state: _File, root: Node, by_repo: ByRepo, oid: ObjectId) -> None:
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == SEQUENCE:
            todo.extend(reversed(node.items))
            continue
        if node.kind != MAPPING:
            continue
        for key, value in node.pairs:
            if key.kind == SCALAR and key.value == "image":
                if value.kind == SCALAR:
                    _string_site(state, value, by_repo, oid)
                    continue
                if value.kind == MAPPING and value.text("repository"):
                    repository = value.text("repository") or ""
                    registry = (value.text("registry") or "").strip().rstrip("/")
                    name = f"{registry}/{repository}" if registry else repository
                    _fields_site(
                        state,
                        value,
                        name=name,
                        tag=value.get("tag"),
                        digest=value.get("digest"),
                        by_repo=by_repo,
                        oid=oid,
                        tag_key="tag",
                    )
                    continue
            if value.kind in (MAPPING, SEQUENCE):
                todo.append(value)


# ---------------------------------------------------------------------------------------------
# splice and verify


def _finish(state: _File, docs: list[Node]) -> FileResult:
    text, path = state.text, state.path
    warnings = tuple(sorted(set(state.warnings), key=lambda w: (w.line, w.message)))
    if not state.edits:
        return FileResult(path, text, text, warnings=warnings)

    edits = sorted(state.edits.values(), key=lambda e: e.node.start)
    pieces: list[str] = []
    cursor = 0
    for e in edits:
        start = value_start(text, e.node)
        if start < cursor:  # overlapping spans cannot happen for distinct scalars; be safe
            raise AssertionError(f"{path}: overlapping edits at offset {start}")
        pieces.append(text[cursor:start])
        pieces.append(render(e.new, e.node.style))
        cursor = e.node.end
    pieces.append(text[cursor:])
    updated = "".join(pieces)

    problem = _verify(docs, updated, state.edits)
    if problem:
        warn = UpdateWarning(path, 0, f"rewrite did not re-parse as expected ({problem}); file left untouched")
        return FileResult(path, text, text, warnings=(*warnings, warn))

    grouped: dict[ObjectId, list[Change]] = {}
    for e in edits:
        change = Change(path, e.node.line + 1, e.node.value, e.new, e.decision.name, e.setter)
        grouped.setdefault(e.obj, []).append(change)
    objects = tuple(ObjectChanges(obj, tuple(changes)) for obj, changes in grouped.items())
    return FileResult(path, text, updated, objects, warnings)


def _located(state: _File) -> FileResult:
    """The edits as changes, the text untouched (nothing spliced, nothing to verify)."""
    grouped: dict[ObjectId, list[Change]] = {}
    for e in sorted(state.edits.values(), key=lambda e: e.node.start):
        change = Change(state.path, e.node.line + 1, e.node.value, e.new, e.decision.name, e.setter)
        grouped.setdefault(e.obj, []).append(change)
    objects = tuple(ObjectChanges(obj, tuple(changes)) for obj, changes in grouped.items())
    return FileResult(state.path, state.text, state.text, objects, tuple(state.warnings))


def _shape(docs: list[Node], replaced: dict[int, _Edit] | None) -> list[Any]:
    """A comparable rendering of the trees: kinds, values and styles, aliases as back-references."""
    out: list[Any] = []
    for doc in docs:
        index: dict[int, int] = {}
        todo: list[Node] = [doc]
        while todo:
            node = todo.pop()
            if id(node) in index:
                out.append(("*", index[id(node)]))
                continue
            index[id(node)] = len(index)
            if node.kind == SCALAR:
                edit = replaced.get(id(node)) if replaced is not None else None
                out.append(("=", edit.new) if edit is not None else ("s", node.value, node.style))
            elif node.kind == MAPPING:
                out.append(("m", len(node.pairs)))
                for k, v in reversed(node.pairs):
                    todo.append(v)
                    todo.append(k)
            else:
                out.append(("q", len(node.items)))
                todo.extend(reversed(node.items))
        out.append("---")
    return out


def _verify(docs: list[Node], updated: str, edits: dict[int, _Edit]) -> str:
    try:
        again = compose(updated)
    except YAMLSyntaxError as exc:
        return f"line {exc.line}: {exc}"
    expected = _shape(docs, edits)
    actual = _shape(again, None)
    if len(expected) != len(actual):
        return "document structure changed"
    for want, got in zip(expected, actual, strict=True):
        if want[0] == "=":
            if got[0] != "s" or got[1] != want[1] or got[2] not in (PLAIN, SINGLE, DOUBLE):
                return f"expected {want[1]!r}, read back {got[1:]!r}"
        elif want != got:
            return f"unexpected difference near {want!r}"
    return ""
