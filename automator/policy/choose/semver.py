"""Semver: the highest version inside the policy's range (Flux ``semver``).

* Tags are read strictly (Flux documents: ``X.Y.Z`` with an optional ``v``) or leniently
  (native default: ``1.2`` is ``1.2.0``), see :mod:`automator.policy.versions`.
* Pre-releases count only when the range names one or ``allowPrerelease`` is set.
* Ties (``1.2.0``, ``v1.2.0``, ``1.2``, ``1.0.0+a``): the tag that wrote all three parts
  without leading zeros wins, then the greater build metadata, then the greater tag.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from automator.policy.choose.base import Candidate, Pick, policy_matcher
from automator.policy.model import Policy, SemverChoice
from automator.policy.versions import (
    _LEADING_ZERO,
    VERSION_RE,
    Key,
    Range,
    TagVersion,
    _pre_key,
    parse_range,
    parse_version,
)


@lru_cache(maxsize=1024)
def _range(text: str) -> Range:
    return parse_range(text)


def _best(rng: Range, cands: Sequence[Candidate], strict: bool, pre_ok: bool) -> TagVersion | None:
    """The best candidate; the hot loop works on raw regex groups and builds one object at the end."""
    match = VERSION_RE.match
    allows = rng.allows
    lz = _LEADING_ZERO.search
    best_key: Key | None = None
    best: list[tuple[str, tuple[str, ...]]] = []  # candidates sharing best_key: (tag, groups)
    for tag, value in cands:
        m = match(value)
        if m is None:
            continue
        _v, major, minor, patch, pre, _build = g = m.groups()
        if strict and (minor is None or patch is None or lz(f"{major}.{minor}.{patch}")):
            continue
        if pre is None:
            key: Key = (int(major), int(minor or 0), int(patch or 0), 1, ())
        else:
            pk = _pre_key(pre)
            if pk is None:
                continue
            key = (int(major), int(minor or 0), int(patch or 0), 0, pk)
        if best_key is not None and key < best_key:
            continue
        if not allows(key, prerelease_ok=pre_ok):
            continue
        if best_key is None or key > best_key:
            best_key, best = key, [(tag, g)]
        else:
            best.append((tag, g))
    if best_key is None:
        return None
    return max((_tag_version(tag, best_key, g) for tag, g in best), key=TagVersion.rank)


def _tag_version(tag: str, key: Key, groups: tuple[str, ...]) -> TagVersion:
    _v, major, minor, patch, _pre, build = groups
    precision = 1 + (minor is not None) + (patch is not None)
    numbers = ".".join(p for p in (major, minor, patch) if p is not None)
    return TagVersion(tag, key, precision, precision == 3 and not _LEADING_ZERO.search(numbers), build or "")


# --- variant awareness (Renovate docker versioning) -------------------------------------

_DOCKER_PREFIX = re.compile(r"^(\d+(?:\.\d+)*)(\w*)$")
_COMMIT = re.compile(r"^[a-f0-9]{7,40}$")


@dataclass(frozen=True)
class _Docker:
    release: tuple[int, ...]
    prerelease: str  # letters glued to the numbers: 3.9.0b1 -> "b1"
    suffix: str  # after the first '-': the variant
    v: bool

    def order(self) -> tuple[tuple[int, ...], int, str]:
        return (self.release, 0 if self.prerelease else 1, self.prerelease)

    def semver_key(self) -> Key:
        r = (*self.release, 0, 0)[:3]
        if self.prerelease:
            return (r[0], r[1], r[2], 0, ((1, self.prerelease),))
        return (r[0], r[1], r[2], 1, ())


def _docker(value: str) -> _Docker | None:
    if _COMMIT.match(value) and not value.isdigit():
        return None
    v = value.startswith("v")
    head, _, suffix = value[1 if v else 0 :].partition("-")
    m = _DOCKER_PREFIX.match(head)
    if m is None:
        return None
    return _Docker(tuple(int(p) for p in m.group(1).split(".")), m.group(2), suffix, v)


def _choose_variant(
    policy: Policy, choice: SemverChoice, cands: Sequence[Candidate], current: str, cur: _Docker
) -> Pick:
    rng = _range(choice.range)
    best: tuple[tuple[tuple[int, ...], int, str], str] | None = None
    for tag, value in cands:
        d = _docker(value)
        if d is None or d.suffix != cur.suffix or len(d.release) != len(cur.release) or d.v != cur.v:
            continue
        if not rng.allows(d.semver_key(), prerelease_ok=choice.allow_prerelease):
            continue
        rank = (d.order(), tag)
        if best is None or rank > best:
            best = rank
    variant = f"variant {cur.suffix!r}, " if cur.suffix else ""
    if best is None:
        shape = f"{variant}{len(cur.release)} parts"
        return Pick(None, f"no tag of the current tag's shape ({shape}) satisfies {rng.text!r}")
    order, tag = best
    if order < cur.order() and not policy.allow_downgrade:
        return Pick(current, f"kept {current}: the highest matching tag {tag} is lower (allowDowngrade is off)")
    if order == cur.order():
        return Pick(current)
    return Pick(tag)


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
    rng = _range(choice.range)
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
