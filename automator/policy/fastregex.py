"""A proven-linear fast path for the simplest tag patterns: Python's ``re`` where it cannot backtrack.

RE2 (:mod:`automator.policy.goregex`) is the engine, but google-re2's binding costs about 1 µs
a call, three times Python's ``re`` on the patterns nearly every policy writes
(``^main-[a-f0-9]+-(?P<ts>[0-9]+)``, ``^v?[0-9]+\\.[0-9]+\\.[0-9]+$``): over 100,000 tags, a
third of a choice's time. For a pattern in the small class below, backtracking has nothing to
try, so ``re`` runs it in time linear in the tag from each start (at most quadratic over a
tag, and tags longer than :data:`MAX_TAG` never take this path), and it means exactly what
Go's regexp means; anything outside the class stays on RE2. The class:

* a sequence of single-character atoms (a literal, ``\\d``, ``\\w``, a ``[...]`` set of
  literals and ranges, optionally negated), plain groups and named groups (``(?P<name>...)``,
  no alternation, no quantifier on a group), ``^`` at the start and ``$`` at the end;
* greedy quantifiers (``? * + {m} {m,n}``) on single atoms only, and a variable one must be
  followed by a mandatory atom whose characters it cannot match (or by the end): the greedy
  run then has exactly one place to stop, and ``re`` never backtracks into it.

Only ASCII tags without control characters take this path (``$`` and ``\\w`` agree there).
Whether a pattern qualifies is decided once, when it is compiled, from ``re``'s own parse tree;
``tests/unit/test_policy_fastregex.py`` checks the class against RE2 on generated tags.
"""

from __future__ import annotations

import re
import warnings
from re import _parser  # type: ignore[attr-defined]  # re's own parse tree (the stdlib's)
from typing import Any

MAX_TAG = 128  # the OCI distribution spec's limit on a tag's length
_ASCII = frozenset(range(128))
_DIGIT = frozenset(range(48, 58))
_WORD = _DIGIT | frozenset(range(65, 91)) | frozenset(range(97, 123)) | {95}
_SAFE_TEXT = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no blanks or controls


def _parse(pattern: str) -> list[Any] | None:
    if "{," in pattern or "(?" in pattern.replace("(?P<", ""):  # Go reads "{,n}" as text; flags differ
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "[[" and the like: a warning means re reads it otherwise
        try:
            return list(_parser.parse(pattern, re.ASCII).data)
        except (re.error, Warning, RecursionError, OverflowError):
            return None


def _charset(op: Any, av: Any) -> frozenset[int] | None:
    """The ASCII characters a single-character atom matches, or None when it is not one we know."""
    name = str(op)
    if name == "LITERAL":
        return frozenset({av}) if av < 128 else None
    if name == "NOT_LITERAL":
        return frozenset(_ASCII - {av}) if av < 128 else None
    if name != "IN":
        return None
    chars: set[int] = set()
    negate = False
    for item_op, item_av in av:
        kind = str(item_op)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL" and item_av < 128:
            chars.add(item_av)
        elif kind == "RANGE" and item_av[1] < 128:
            chars.update(range(item_av[0], item_av[1] + 1))
        elif kind == "CATEGORY" and str(item_av) == "CATEGORY_DIGIT":
            chars |= _DIGIT
        elif kind == "CATEGORY" and str(item_av) == "CATEGORY_WORD":
            chars |= _WORD
        else:
            return None
    return frozenset(_ASCII - chars) if negate else frozenset(chars)


def _atoms(items: list[Any], out: list[tuple[frozenset[int], int, int]]) -> bool:
    """Flatten ``items`` into (chars, min, max) atoms; False when a construct is outside the class."""
    for op, av in items:
        name = str(op)
        if name == "SUBPATTERN":
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags or not _atoms(list(body.data if hasattr(body, "data") else body), out):
                return False
        elif name == "MAX_REPEAT":
            lo, hi, body = av
            inner = list(body.data if hasattr(body, "data") else body)
            chars = _charset(*inner[0]) if len(inner) == 1 else None
            if chars is None:
                return False
            out.append((chars, lo, hi))
        else:
            chars = _charset(op, av)
            if chars is None:
                return False
            out.append((chars, 1, 1))
    return True


def linear(pattern: str) -> re.Pattern[str] | None:
    """``re``'s compiled ``pattern`` when it is in the class above, else None (use RE2)."""
    tree = _parse(pattern)
    if tree is None:
        return None
    if tree and str(tree[0][0]) == "AT" and str(tree[0][1]) == "AT_BEGINNING":
        tree = tree[1:]
    if tree and str(tree[-1][0]) == "AT" and str(tree[-1][1]) == "AT_END":
        tree = tree[:-1]
    atoms: list[tuple[frozenset[int], int, int]] = []
    if not _atoms(tree, atoms):
        return None
    for i, (chars, lo, hi) in enumerate(atoms):
        if lo == hi:
            continue
        following = atoms[i + 1 : i + 2]
        if following and (following[0][1] == 0 or following[0][0] & chars):
            return None  # the greedy run could stop in several places: backtracking
    return re.compile(pattern, re.ASCII)


def safe_text(text: str) -> bool:
    """Whether ``text`` may be matched on the fast path (printable ASCII, at most MAX_TAG long)."""
    return _SAFE_TEXT.fullmatch(text) is not None
