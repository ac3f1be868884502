"""Semver: the highest version inside the policy's range (Flux ``semver``).

* Tags are read strictly (Flux documents: Flux's ``ParseVersion``, two dots and then
  Masterminds' ``NewVersion``) or leniently (native default: ``NewVersion`` alone, ``1.2`` is
  ``1.2.0``); both coerce leading zeros (``v2025.07.03``), see :mod:`automator.policy.versions`.
* Pre-releases count only when the range names one or ``allowPrerelease`` is set.
* Ties (``1.2.0``, ``v1.2.0``, ``1.2``, ``1.0.0+a``): the tag that wrote all three parts
  wins, then the greater build metadata, then the greater tag.
* Never downgrade: when the current tag reads as a higher version than the best
  candidate, the current tag is kept (unless ``allowDowngrade``); an equal version also
  keeps the current tag, so spelling differences never cause churn.
* Variant awareness (opt-in, Renovate's docker versioning): the current tag's suffix
  after the first ``-`` (``-alpine``) and its number of parts (``1.2`` vs ``1.2.3``) must
  match; the suffix is a variant there, not a pre-release.  Without a readable current
  tag the plain rules apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from automator.policy.choose.base import Candidate, Pick, policy_matcher
from automator.policy.model import Policy, SemverChoice
from automator.policy.versions import (
    _LENIENT_RE,
    STRICT_VERSION_RE,
    UINT64_MAX,
    Key,
    Range,
    TagVersion,
    _pre_key,
    parse_range,
    parse_version,
)

_INTS = {str(i): i for i in range(10_000)}


def _best(rng: Range, cands: Sequence[Candidate], strict: bool, pre_ok: bool) -> TagVersion | None:
    """The best candidate.  The hot loop (100k tags) works on raw regex groups, looks small
    numbers up instead of calling int(), compares with the best so far before checking the
    range, and builds one TagVersion per tie at the end.

    The commonest tag, a plain ``X.Y.Z``, skips the regex: when its three dot-separated
    parts are all keys of ``_INTS`` (canonical numbers, no leading zero, no sign, no
    space) it is exactly what the regex would have read, without pre-release or build.

    It walks the tags from the end: registries list tags in lexical order (the distribution
    spec's ``tags/list``), so the highest versions tend to come first and most other tags
    are dismissed by one tuple comparison, without a range check or a new best.  Ties are
    settled by :meth:`TagVersion.rank`, never by position, so the order cannot change the
    choice."""
    match = (STRICT_VERSION_RE if strict else _LENIENT_RE).match
    check = rng.checker(prerelease_ok=pre_ok)
    any_pre = pre_ok or rng.names_prerelease()
    ints = _INTS.get
    best_key: Key | None = None
    best: list[tuple[str, str]] = []  # candidates sharing best_key: (tag, value)
    for tag, value in reversed(cands):
        parts = value.split(".")
        if (
            len(parts) == 3
            and (a := ints(parts[0])) is not None
            and (b := ints(parts[1])) is not None
            and (c := ints(parts[2])) is not None
        ):
            key: Key = (a, b, c, 1, ())
        else:
            m = match(value)
            if m is None:
                continue
            major, minor, patch, pre, _build = m.groups()
            if pre is not None and not any_pre:
                continue
            a = ints(major, -1)
            if a < 0:
                a = int(major)  # a leading zero (07) or a large number
            if minor is None:
                b = 0
            else:
                b = ints(minor, -1)
                if b < 0:
                    b = int(minor)
            if patch is None:
                c = 0
            else:
                c = ints(patch, -1)
                if c < 0:
                    c = int(patch)
            if a > UINT64_MAX or b > UINT64_MAX or c > UINT64_MAX:
                continue  # NewVersion: value out of range
            if pre is None:
                key = (a, b, c, 1, ())
            else:
                pk = _pre_key(pre)
                if pk is None:
                    continue
                key = (a, b, c, 0, pk)
        if best_key is not None and key < best_key:
            continue
        if not check(key):
            continue
        if best_key is None or key > best_key:
            best_key, best = key, [(tag, value)]
        else:
            best.append((tag, value))
    if best_key is None:
        return None
    return max((_tag_version(tag, best_key, _groups(match, value)) for tag, value in best), key=TagVersion.rank)


def _groups(match: Callable[[str], re.Match[str] | None], value: str) -> tuple[str, ...]:
    m = match(value)
    assert m is not None  # it matched (or had the plain X.Y.Z shape the regex reads) in the loop
    return m.groups()


def _tag_version(tag: str, key: Key, groups: tuple[str, ...]) -> TagVersion:
    _major, minor, patch, _pre, build = groups
    precision = 1 + (minor is not None) + (patch is not None)
    return TagVersion(tag, key, precision, build or "")


# --- variant awareness (Renovate docker versioning) -------------------------------------

# Renovate: strip one leading "v", split at the first "-": numbers, letters glued to them
# (3.9.0b1 -> "b1", a pre-release), and the suffix (the variant).
_DOCKER_RE = re.compile(r"^(v?)(\d+(?:\.\d+)*)(\w*)(?:-(.*))?$", re.ASCII | re.DOTALL)
_COMMIT = re.compile(r"^[a-f0-9]{7,40}$")
DockerOrder = tuple[tuple[int, ...], int, str]


@dataclass(frozen=True)
class _Docker:
    release: tuple[int, ...]
    prerelease: str
    suffix: str
    v: bool

    def order(self) -> DockerOrder:
        return _docker_order(self.release, self.prerelease)


def _docker_order(release: tuple[int, ...], prerelease: str) -> DockerOrder:
    return (release, 0 if prerelease else 1, prerelease)


def _docker_semver_key(release: tuple[int, ...], prerelease: str) -> Key:
    a, b, c = (*release, 0, 0)[:3]
    return (a, b, c, 0, ((1, prerelease),)) if prerelease else (a, b, c, 1, ())


def _docker(value: str) -> _Docker | None:
    if _COMMIT.match(value) and not value.isdigit():
        return None
    m = _DOCKER_RE.match(value)
    if m is None:
        return None
    v, release, pre, suffix = m.groups()
    return _Docker(tuple(int(p) for p in release.split(".")), pre, suffix or "", v == "v")


def _choose_variant(
    policy: Policy, choice: SemverChoice, cands: Sequence[Candidate], current: str, cur: _Docker
) -> Pick:
    rng = parse_range(choice.range)  # memoised
    check = rng.checker(prerelease_ok=choice.allow_prerelease)
    dots = len(cur.release) - 1
    suffix = cur.suffix
    if suffix:  # cheap string tests first: most tags of another variant never reach the regex
        ending = "-" + suffix
        pool = [(t, v) for t, v in cands if v.endswith(ending)]
    else:
        pool = [(t, v) for t, v in cands if "-" not in v]
    want_v = "v" if cur.v else ""
    match = _DOCKER_RE.match
    best: tuple[DockerOrder, str] | None = None
    for tag, value in pool:
        m = match(value)
        if m is None:
            continue
        v, release_text, pre, sfx = m.groups()
        if (sfx or "") != suffix or v != want_v or release_text.count(".") != dots:
            continue
        if _COMMIT.match(value) and not value.isdigit():
            continue
        release = tuple(int(p) for p in release_text.split("."))
        rank = (_docker_order(release, pre), tag)
        if best is not None and rank <= best:
            continue
        if check(_docker_semver_key(release, pre)):
            best = rank
    variant = f"variant {suffix!r}, " if suffix else ""
    shape = f"{variant}{len(cur.release)} parts"
    if best is None:
        return Pick(None, f"no tag of the current tag's shape ({shape}) satisfies {rng.text!r}")
    order, tag = best
    if order < cur.order() and not policy.allow_downgrade:
        return Pick(current, f"kept {current}: the highest matching tag {tag} is lower (allowDowngrade is off)")
    rule = f"variant rule: only tags shaped like {current} ({shape}) are candidates"
    return Pick(current if order == cur.order() else tag, rule)


def choose_semver(
    policy: Policy, cands: Sequence[Candidate], current: str | None, created: Mapping[str, datetime] | None
) -> Pick:
    choice = policy.choice
    assert isinstance(choice, SemverChoice)
    current_value = None if current is None else (policy_matcher(policy).value(current) or current)
    if policy.variant_aware and current is not None and current_value is not None:
        cur_docker = _docker(current_value)
        if cur_docker is not None:
            return _choose_variant(policy, choice, cands, current, cur_docker)
    rng = parse_range(choice.range)  # memoised
    best = _best(rng, cands, choice.strict, choice.allow_prerelease)
    if best is None:
        return Pick(None, f"no tag satisfies the range {rng.text!r}")
    if current is not None and current_value is not None:
        cur = parse_version(current_value)
        if cur is not None:
            if best.key < cur.key and not policy.allow_downgrade:
                return Pick(
                    current, f"kept {current}: the highest tag in range, {best.tag}, is lower (allowDowngrade is off)"
                )
            if best.key == cur.key:
                return Pick(current)
    return Pick(best.tag)
