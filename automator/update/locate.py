"""Locate: what every image field holds now, read before anything is chosen.

Choosing needs the tag a policy's fields hold today (never downgrade; variant awareness reads
its shape), and only the rewrite engine knows where those fields are.  So the plan runs
locate -> choose -> rewrite, each once: :func:`locate_tree` runs the very engine that will
rewrite (markers, marker-less shapes, the same resolution of policy names), read-only and
without splicing, against a probe decision per policy whose tag no file can hold, so every
field the policy owns shows up as a change from its current value.  The probe is internal
to this module; callers get the current tags per policy and the files that hold them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automator.errors import InvalidReference
from automator.policy.model import Policy
from automator.refs import parse_reference
from automator.update.model import Change, Decision, Decisions, UpdateResult
from automator.update.tree import DEFAULT_MAX_BYTES, update_tree

PROBE_TAG = "0.0.0-automator-locate-probe"  # not a tag any file holds
PROBE_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Located:
    """Per policy, the distinct tags its fields hold now (in file order); the files holding them."""

    current: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    files: frozenset[str] = frozenset()  # root-relative paths with a field of some policy, or a warning
    # per policy, the digest its fields pin, when they all pin one (digestReflectionPolicy IfNotPresent)
    digests: Mapping[str, str] = field(default_factory=dict)


def locate_tree(
    root: Path,
    policies: Iterable[Policy],
    *,
    others: Mapping[str, str] | None = None,
    subpath: str = "",
    marker_less_paths: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    only: Collection[str] | None = None,
) -> Located:
    """Where ``policies``' fields are under ``root`` and what they hold; reads, never writes.

    ``others`` names the repository's other policies (see :class:`Decisions`), so a marker of
    one of them is never taken for a look-alike's.
    """
    probe = Decisions.of(
        (Decision(p, p.image.with_tag(PROBE_TAG, PROBE_DIGEST if p.tracks_digest else None)) for p in policies),
        others,
    )
    found = update_tree(
        root,
        probe,
        write=False,
        splice=False,
        subpath=subpath,
        marker_less_paths=marker_less_paths,
        max_bytes=max_bytes,
        only=only,
    )
    # a file with a warning is read again by the rewrite, which reports it with the real decisions
    files = frozenset(f.path for f in found.files) | {w.file for w in found.warnings}
    return Located(current_tags(found, probe), files, current_digests(found, probe))


def _old_tag(change: Change, decisions: Decisions) -> str | None:
    """The tag a change replaces, when its scalar holds a tag (not a name or a digest)."""
    tag = decisions[change.policy].tag
    if change.new == tag:  # a tag field: ":tag" setter, Helm `tag:`, kustomize `newTag:`
        return change.old
    if change.new.endswith(f":{tag}") or f":{tag}@" in change.new:  # a whole reference
        try:
            return parse_reference(change.old).tag
        except InvalidReference:
            return None
    return None  # a name or digest field


def current_tags(update: UpdateResult, decisions: Decisions) -> dict[str, tuple[str, ...]]:
    """Per policy, the distinct tags the changes of ``update`` replace (in file order)."""
    found: dict[str, list[str]] = {}
    for change in update.changes:
        tag = _old_tag(change, decisions)
        if tag is not None and tag not in found.setdefault(change.policy, []):
            found[change.policy].append(tag)
    return {name: tuple(tags) for name, tags in found.items()}


def current_digests(update: UpdateResult, decisions: Decisions) -> dict[str, str]:
    """Per policy whose fields pin one digest and nothing else, that digest (``tag@digest``
    references or ``:digest`` fields); a policy with a field holding no digest, or with two
    digests, has none here."""
    found: dict[str, set[str | None]] = {}
    for change in update.changes:
        probe = decisions[change.policy]
        if probe.digest is None:
            continue
        if change.new == probe.digest:  # a digest field
            found.setdefault(change.policy, set()).add(change.old or None)
        elif change.new.endswith(f"@{probe.digest}") or _old_tag(change, decisions) is not None:
            digest = change.old.rpartition("@")[2] if "@" in change.old else None
            found.setdefault(change.policy, set()).add(digest)
    out: dict[str, str] = {}
    for name, digests in found.items():
        only = next(iter(digests)) if len(digests) == 1 else None
        if only is not None:
            out[name] = only
    return out
