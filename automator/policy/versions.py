"""Semantic versions of tags and Masterminds/Flux constraint ranges.

Flux's image-reflector-controller checks tags against a range with Go's
``github.com/Masterminds/semver/v3``; this module reads the same constraint syntax:

* comparators ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=`` (also ``=>``, ``=<``), ``~``/``~>``
  and ``^``, joined by spaces or commas (AND) and ``||`` (OR);
* wildcards ``1.2.x``, ``1.X``, ``*`` and missing parts (``>=1.2`` is ``>=1.2.0``; ``1.2``
  alone is ``1.2.x``), hyphen ranges ``1.2 - 1.4`` (``>=1.2.0 <=1.4.x``);
* pre-releases: a version with a pre-release passes an AND group only when a comparator
  of that group names a pre-release (Masterminds >= 3.4) or the policy allows them.

Tags are read two ways (:func:`parse_version`), both as Masterminds semver v3.5 reads them:

* lenient: ``NewVersion`` with its default ``CoerceNewVersion``: ``v?MAJOR[.MINOR[.PATCH]]``
  with an optional ``-pre`` and ``+build``; ``1.2`` -> ``1.2.0``, ``1`` -> ``1.0.0``, and
  leading zeros in the three numbers are coerced (``v2025.07.03`` is 2025.7.3);
* strict: what Flux's ``fluxcd/pkg/version.ParseVersion`` accepts, used for Flux documents:
  the tag must split into three parts at its first two dots (``strings.SplitN(v, ".", 3)``; a
  dot in the pre-release or build counts, so ``v1.2-beta.5`` passes and ``v1.2`` does not),
  then ``NewVersion`` reads it.

Both refuse what ``NewVersion`` refuses: a number beyond uint64, an empty identifier, a numeric
pre-release identifier with a leading zero (``1.0.0-01``: "version segment starts with 0"), any
character outside ``[0-9A-Za-z-]`` (ASCII only: Go's ``[0-9]``, not Python's ``\\d``), and any
text after the version (Go's ``$`` is the end of the text; Python's ``$`` would let a final
newline through, so the patterns end in ``\\Z``).  Versions in a range are read the same way
(Masterminds' constraint parser calls ``NewVersion``), so ``>=2025.07.01`` is ``>=2025.7.1``.

Precedence is Masterminds' ``Compare``, which is SemVer 2.0 (``semver.Version.compare`` agrees;
a property test checks it) except that a numeric pre-release identifier past uint64 compares
as text, as ``strconv.ParseUint`` fails on it; build metadata never changes precedence.
The comparison key is a plain tuple built from one regex match, and ranges compile to key
intervals, because choosing among 100,000 tags must not construct 100,000 ``semver.Version``
objects or raise an exception per non-version tag.  ``semver.Version`` validates the versions written in a range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# (major, minor, patch, is_release, prerelease identifiers); identifiers are (0, int) or (1, str)
Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]

_IDENT = r"[0-9A-Za-z-]+"
_NUM = r"([0-9]+)"
_TAIL = rf"(?:-({_IDENT}(?:\.{_IDENT})*))?(?:\+({_IDENT}(?:\.{_IDENT})*))?\Z"
# Masterminds' looseSemVerRegex: groups (v, major, minor, patch, pre, build)
VERSION_RE = re.compile(rf"^(v?){_NUM}(?:\.{_NUM})?(?:\.{_NUM})?{_TAIL}")
# Flux's ParseVersion: two dots somewhere, then the same; groups (major, minor, patch, pre, build)
STRICT_VERSION_RE = re.compile(rf"^(?=[^.]*\.[^.]*\.)v?{_NUM}(?:\.{_NUM})?(?:\.{_NUM})?{_TAIL}")
UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class TagVersion:
    """A tag read as a version, with what the comparison key drops (for tie-breaks)."""

    tag: str
    key: Key
    precision: int  # how many of major.minor.patch the tag wrote (1-3)
    build: str

    @property
    def prerelease(self) -> bool:
        return self.key[3] == 0

    def rank(self) -> tuple[object, ...]:
        """Total order: precedence first, then the deterministic tie-break."""
        return (self.key, self.precision, self.build, self.tag)


def _pre_key(pre: str) -> tuple[tuple[int, int | str], ...] | None:
    """The precedence key of a pre-release the regex matched, or None when Masterminds refuses it."""
    out: list[tuple[int, int | str]] = []
    for part in pre.split("."):
        if part.isdigit():  # the regex let only ASCII through
            if len(part) > 1 and part[0] == "0":
                return None  # Masterminds: "version segment starts with 0"
            n = int(part)
            # comparePrePart: ParseUint fails past uint64, so the identifier compares as text
            out.append((0, n) if n <= UINT64_MAX else (1, part))
        else:
            out.append((1, part))
    return tuple(out)


def parse_version(tag: str, *, strict: bool = False) -> TagVersion | None:
    """Read ``tag`` as a version, or None when it is not one (never raises)."""
    m = (STRICT_VERSION_RE if strict else _LENIENT_RE).match(tag)
    if m is None:
        return None
    major, minor, patch, pre, build = m.groups()
    precision = 1 + (minor is not None) + (patch is not None)
    a, b, c = int(major), int(minor or 0), int(patch or 0)
    if a > UINT64_MAX or b > UINT64_MAX or c > UINT64_MAX:
        return None  # strconv.ParseUint: value out of range
    if pre is None:
        key: Key = (a, b, c, 1, ())
    else:
        pk = _pre_key(pre)
        if pk is None:
            return None
        key = (a, b, c, 0, pk)
    return TagVersion(tag, key, precision, build or "")


_LENIENT_RE = re.compile(VERSION_RE.pattern.replace("^(v?)", "^v?", 1))


# --- ranges ---------------------------------------------------------------------------

_OPS = r"!=|>=|=>|<=|=<|~>|\^|~|>|<|="
_CV = r"v?(?:[0-9xX*]+)(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_CV_PARTS = re.compile(
    r"^v?([0-9xX*]+)(?:\.([0-9xX*]+))?(?:\.([0-9xX*]+))?(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$"
)
_HYPHEN = re.compile(rf"(?<![\w.+<>=~^!-])({_CV})\s+-\s+({_CV})(?![\w.+-])")
_COMPARATOR = re.compile(rf"\s*({_OPS})?\s*({_CV})\s*(?:,|\s|$)")
_WILD = frozenset({"x", "X", "*"})
_MIN_PRE: tuple[tuple[int, int | str], ...] = ()
_BOTTOM: Key = (0, 0, 0, 0, _MIN_PRE)


class RangeError(ValueError):
    """A constraint that is not valid Masterminds/Flux range syntax."""


@dataclass(frozen=True, slots=True)
class _Bound:
    key: Key
    inclusive: bool


@dataclass(frozen=True, slots=True)
class _Group:
    """One AND group: an interval of keys minus some excluded intervals."""

    low: _Bound | None
    high: _Bound | None
    holes: tuple[tuple[_Bound | None, _Bound | None], ...]
    names_prerelease: bool
    empty: bool = False


def _inside(key: Key, low: _Bound | None, high: _Bound | None) -> bool:
    if low is not None and (key < low.key or (key == low.key and not low.inclusive)):
        return False
    return not (high is not None and (key > high.key or (key == high.key and not high.inclusive)))


@dataclass(frozen=True)
class Range:
    """A parsed constraint; :meth:`allows` checks one version key."""

    text: str
    groups: tuple[_Group, ...]

    def allows(self, key: Key, *, prerelease_ok: bool = False) -> bool:
        for g in self.groups:
            if g.empty:
                continue
            if key[3] == 0 and not (prerelease_ok or g.names_prerelease):
                continue
            if not _inside(key, g.low, g.high):
                continue
            if any(_inside(key, lo, hi) for lo, hi in g.holes):
                continue
            return True
        return False

    def names_prerelease(self) -> bool:
        """True when some alternative admits pre-releases by naming one."""
        return any(g.names_prerelease and not g.empty for g in self.groups)

    def checker(self, *, prerelease_ok: bool = False) -> Callable[[Key], bool]:
        """A fast predicate equivalent to :meth:`allows` (the hot loop calls it per tag)."""
        checks = [_group_checker(g, prerelease_ok) for g in self.groups if not g.empty]
        if not checks:
            return lambda key: False
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            first, second = checks
            return lambda key: first(key) or second(key)
        return lambda key: any(c(key) for c in checks)

    def allows_tag(self, tag: str, *, strict: bool = False, prerelease_ok: bool = False) -> bool:
        v = parse_version(tag, strict=strict)
        return v is not None and self.allows(v.key, prerelease_ok=prerelease_ok)


def _group_checker(g: _Group, prerelease_ok: bool) -> Callable[[Key], bool]:
    """One AND group as a closure; the common shapes compile to one chained comparison."""
    pre = prerelease_ok or g.names_prerelease
    if g.holes:
        holes = g.holes

        def with_holes(key: Key) -> bool:
            if key[3] == 0 and not pre:
                return False
            return _inside(key, g.low, g.high) and not any(_inside(key, lo, hi) for lo, hi in holes)

        return with_holes
    lo = g.low.key if g.low is not None else None
    hi = g.high.key if g.high is not None else None
    lo_in = g.low is None or g.low.inclusive
    hi_in = g.high is None or g.high.inclusive
    if lo is not None and hi is not None and lo_in and not hi_in:
        return (lambda key: lo <= key < hi) if pre else (lambda key: key[3] == 1 and lo <= key < hi)
    if lo is not None and hi is not None and lo_in and hi_in:
        return (lambda key: lo <= key <= hi) if pre else (lambda key: key[3] == 1 and lo <= key <= hi)
    if lo is not None and hi is None and lo_in:
        return (lambda key: lo <= key) if pre else (lambda key: key[3] == 1 and lo <= key)
    if lo is None and hi is not None and not hi_in:
        return (lambda key: key < hi) if pre else (lambda key: key[3] == 1 and key < hi)
    if lo is None and hi is None:
        return (lambda key: True) if pre else (lambda key: key[3] == 1)
    low, high = g.low, g.high
    return lambda key: (pre or key[3] == 1) and _inside(key, low, high)


def _num(part: str | None) -> int | None:
    if part is None or part in _WILD:
        return None
    if not part.isdigit():
        raise RangeError(f"{part!r} is neither a number nor a wildcard (x, X, *)")
    n = int(part)  # leading zeros are coerced, as NewVersion does: 07 is 7
    if n > UINT64_MAX:
        raise RangeError(f"{part!r} is larger than a version number can be (2**64 - 1)")
    return n


def _comparator(op: str, cv: str) -> tuple[_Bound | None, _Bound | None, bool, bool]:
    """(low, high, is_hole, names_prerelease) for one comparator."""
    m = _CV_PARTS.match(cv)
    if m is None:  # pragma: no cover - _COMPARATOR already matched it
        raise RangeError(f"{cv!r} is not a version")
    smaj, smin, spat, pre, _build = m.groups()
    major, minor, patch = _num(smaj), _num(smin), _num(spat)
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    pk: tuple[tuple[int, int | str], ...] = ()
    if pre is not None:
        # imported here: only a range naming a pre-release needs it (~3 ms off every start-up)
        import semver  # noqa: PLC0415

        try:
            semver.Version(major or 0, minor or 0, patch or 0, prerelease=pre)
        except ValueError as exc:
            raise RangeError(f"{cv!r}: invalid pre-release {pre!r} ({exc})") from exc
        pk_or_none = _pre_key(pre)
        if pk_or_none is None:
            raise RangeError(f"{cv!r}: numeric pre-release identifiers must not start with 0")
        pk = pk_or_none
    base: Key = (major or 0, minor or 0, patch or 0, 0 if pre is not None else 1, pk)
    names_pre = pre is not None

    def at(k: Key, inclusive: bool) -> _Bound:
        return _Bound(k, inclusive)

    def floor(maj: int, mnr: int = 0, pat: int = 0) -> _Bound:
        # the lowest key of maj.mnr.pat (below all of its pre-releases), exclusive upper bound
        return _Bound((maj, mnr, pat, 0, _MIN_PRE), False)

    if major is None:  # "*", "x": any version ("<*" and "!=*": none)
        if op in ("<", "!="):
            return at(_BOTTOM, False), at(_BOTTOM, False), False, names_pre
        return None, None, False, names_pre
    wild_minor = minor is None
    wild_patch = not wild_minor and patch is None
    dirty = wild_minor or wild_patch

    def tilde() -> tuple[_Bound | None, _Bound | None]:
        if not dirty and base[:3] == (0, 0, 0):
            return at(base, True), None  # ~0.0.0: anything
        if wild_minor:
            return at(base, True), floor(major + 1)
        return at(base, True), floor(major, (minor or 0) + 1)

    if op in ("", "="):
        if dirty:
            lo, hi = tilde()
            return lo, hi, False, names_pre
        return at(base, True), at(base, True), False, names_pre
    if op == "!=":
        if dirty:
            lo, hi = tilde()
            return lo, hi, True, names_pre
        return at(base, True), at(base, True), True, names_pre
    if op in ("~", "~>"):
        lo, hi = tilde()
        return lo, hi, False, names_pre
    if op == "^":
        if major > 0 or wild_minor:
            return at(base, True), floor(major + 1), False, names_pre
        if (minor or 0) > 0 or wild_patch:
            return at(base, True), floor(0, (minor or 0) + 1), False, names_pre
        return at(base, True), floor(0, 0, (patch or 0) + 1), False, names_pre
    if op == ">":
        if wild_minor:
            return _Bound((major + 1, 0, 0, 0, _MIN_PRE), True), None, False, names_pre
        if wild_patch:
            return _Bound((major, (minor or 0) + 1, 0, 0, _MIN_PRE), True), None, False, names_pre
        return at(base, False), None, False, names_pre
    if op in (">=", "=>"):
        return at(base, True), None, False, names_pre
    if op == "<":
        return None, at(base, False), False, names_pre
    if op in ("<=", "=<"):
        if wild_minor:
            return None, floor(major + 1), False, names_pre
        if wild_patch:
            return None, floor(major, (minor or 0) + 1), False, names_pre
        return None, at(base, True), False, names_pre
    raise RangeError(f"unknown operator {op!r}")  # pragma: no cover - the regex lists them all


def _tighter_low(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    if a is None:
        return b
    if b is None:
        return a
    if a.key != b.key:
        return a if a.key > b.key else b
    return a if not a.inclusive else b


def _tighter_high(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    if a is None:
        return b
    if b is None:
        return a
    if a.key != b.key:
        return a if a.key < b.key else b
    return a if not a.inclusive else b


def _group(text: str) -> _Group:
    text = _HYPHEN.sub(lambda m: f">= {m.group(1)}, <= {m.group(2)}", text)
    stripped = text.strip()
    if not stripped:
        raise RangeError("empty constraint between '||'")
    pos, low, high = 0, None, None
    holes: list[tuple[_Bound | None, _Bound | None]] = []
    names_pre = False
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _COMPARATOR.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()
            raise RangeError(f"cannot read {bad!r} as a comparator (like '>=1.2.0', '^1.2', '~1.2.3', '1.2.x')")
        op, cv = m.group(1) or "", m.group(2)
        lo, hi, is_hole, pre = _comparator(op, cv)
        names_pre = names_pre or pre
        if is_hole:
            holes.append((lo, hi))
        else:
            low, high = _tighter_low(low, lo), _tighter_high(high, hi)
        pos = m.end()
    empty = low is not None and high is not None and not _nonempty(low, high)
    return _Group(low, high, tuple(holes), names_pre, empty)


def _nonempty(low: _Bound, high: _Bound) -> bool:
    if low.key < high.key:
        return True
    return low.key == high.key and low.inclusive and high.inclusive


def parse_range(text: str) -> Range:
    """Parse a Masterminds/Flux constraint; raise :class:`RangeError` saying what is wrong.

    Ranges are frozen, so each distinct text is parsed once per process: the loader's
    validation and the semver chooser share the result, and policies that repeat a range
    (``>=1.0.0``, ``^1``) do not parse it again.
    """
    if not isinstance(text, str):
        raise RangeError("a semver range must be a string")
    return _parse_range(text)


@lru_cache(maxsize=4096)
def _parse_range(text: str) -> Range:
    if not text.strip():
        raise RangeError("the semver range is empty; use '*' for any version")
    groups = tuple(_group(part) for part in text.split("||"))
    return Range(text, groups)
