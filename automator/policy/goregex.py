r"""Go regular expressions and ``Regexp.Expand`` templates, on RE2: linear time, Go's syntax.

Flux compiles ``filterTags.pattern`` and ``exclusionList`` with Go's ``regexp`` and expands
``filterTags.extract`` with ``Regexp.ExpandString``.  Go's ``regexp`` *is* RE2's syntax and
semantics, so patterns are compiled with RE2 itself (``google-re2``, Google's own binding of the
C++ library) rather than translated to Python's backtracking ``re``: a pattern such as
``^(a+)+$`` costs time linear in the tag, never the minutes backtracking takes, and what Go
accepts (``(?<name>re)``, ``[[:digit:]]``, ``\pL``, ``\z``, ``\Q...\E``) or refuses
(look-around, back-references, ``\Z``) is exactly what is accepted or refused here.  As in Go,
``\d``, ``\w``, ``\s`` and ``\b`` are ASCII, ``$`` is the end of the text, and matching is
leftmost-first.  Patterns are searched (not anchored), as Go's ``FindStringSubmatchIndex``.

A compiled program is bounded too: patterns whose automaton would need more than
:data:`MAX_PROGRAM_BYTES` (``(a{1000}){1000}``, say) are refused when the policy loads, and a
pattern longer than :data:`MAX_PATTERN_CHARS` is refused before RE2 sees it.

Templates: ``$name``/``${name}`` (a name or a group number; ``$name`` takes the longest run of
letters, digits and ``_``), ``$$`` for a literal ``$``; a ``$`` not followed by either is
literal text.  Unlike Go, naming a group the pattern does not define is an error at load time
rather than an empty string at run time.  The template reader is hand-written: it is Go's
``Expand`` grammar, which no Python package implements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import re2

from automator.policy import fastregex

MAX_PATTERN_CHARS = 4096
MAX_PROGRAM_BYTES = 8 << 20  # RE2's own default; Go refuses repetitions over 1,000 in the same spirit


class GoRegexError(ValueError):
    """A pattern Go's regexp would refuse (or one too large to run in bounded memory)."""


class Match(Protocol):
    def group(self, group: int | str = 0, /) -> str | None: ...

    def groups(self) -> tuple[str | None, ...]: ...


class Regex(Protocol):
    """What the policy code uses of a compiled pattern (RE2's, or ``re``'s in tests)."""

    @property
    def groups(self) -> int: ...

    @property
    def groupindex(self) -> Mapping[str, int]: ...

    def search(self, text: str) -> Match | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error reaches the user through GoRegexError, not stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


_OPTIONS = _options()
_UNANCHORED = re2._Anchor.UNANCHORED
# What a user most often brings from other engines, and what to write instead.
_HINTS = (
    ("invalid perl operator: (?=", "look-around assertions are not supported by Go regexp (RE2)"),
    ("invalid perl operator: (?!", "look-around assertions are not supported by Go regexp (RE2)"),
    ("invalid perl operator: (?<=", "look-around assertions are not supported by Go regexp (RE2)"),
    ("invalid perl operator: (?<!", "look-around assertions are not supported by Go regexp (RE2)"),
    ("invalid escape sequence: \\Z", "\\Z is not valid in Go regexp; use \\z or $ for the end of the tag"),
    *(
        (f"invalid escape sequence: \\{d}", "back-references are not supported by Go regexp (RE2)")
        for d in range(1, 10)
    ),
)
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")  # RE2's \C (any byte); Go refuses it


class _Match:
    """A match of an ASCII text: spans from RE2 are character offsets too."""

    __slots__ = ("_spans", "_text")

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        self._text, self._spans = text, spans

    def group(self, group: int | str = 0, /) -> str | None:
        start, end = self._spans[group if isinstance(group, int) else 0]
        return None if start < 0 else self._text[start:end]

    def groups(self) -> tuple[str | None, ...]:
        return tuple(self.group(i) for i in range(1, len(self._spans)))


class GoRegex:
    """A compiled pattern.  Tags are ASCII, and for those ``search`` calls the extension's
    ``RE2.Match`` directly: google-re2's pure-Python ``search`` maps UTF-8 offsets back to
    characters and builds a rich match object per call, 20 times the cost of the match itself
    (100,000 tags: 1.2 s against 0.1 s).  Other text takes that general path."""

    __slots__ = ("_fast", "_match", "_regex", "groupindex", "groups", "pattern")

    def __init__(self, pattern: str, regex: Any) -> None:
        self.pattern = pattern
        self._regex = regex
        self._match = regex._regexp.Match  # the C++ RE2 object behind re2._Regexp
        self.groups: int = regex.groups
        self.groupindex: Mapping[str, int] = dict(regex.groupindex)
        # a pattern re cannot backtrack on runs there for printable ASCII tags (see fastregex)
        self._fast = fastregex.linear(pattern)

    def search(self, text: str) -> Match | None:
        spans = self.spans(text)
        return None if spans is None else _Match(text, spans)

    def scan(self, texts: Iterable[str]) -> Iterator[tuple[str, list[tuple[int, int]]]]:
        """``(text, spans)`` of each text that matches, in order: :meth:`spans` in one tight loop."""
        match, unanchored = self._match, _UNANCHORED
        fast, safe = self._fast, fastregex.safe_text
        for text in texts:
            if fast is not None and safe(text):
                m = fast.search(text)
                if m is not None:
                    yield text, list(m.regs)
                continue
            if text.isascii():
                data = text.encode("ascii")
                found: list[tuple[int, int]] | None = match(unanchored, data, 0, len(data))
                if found is not None and found[0][0] >= 0:
                    yield text, found
            else:
                found = self.spans(text)
                if found is not None:
                    yield text, found

    def matches(self, texts: Iterable[str]) -> Iterator[tuple[str, Match]]:
        """``(text, match)`` of each text that matches, in order."""
        for text, spans in self.scan(texts):
            yield text, _Match(text, spans)

    def spans(self, text: str) -> list[tuple[int, int]] | None:
        """The ``(start, end)`` character offsets of the match and of each group (``(-1, -1)``
        for a group that took no part), or None: the cheapest way to scan 100,000 tags."""
        if self._fast is not None and fastregex.safe_text(text):
            m = self._fast.search(text)
            return None if m is None else list(m.regs)
        if text.isascii():
            data = text.encode("ascii")
            spans: list[tuple[int, int]] = self._match(_UNANCHORED, data, 0, len(data))
            return None if spans[0][0] < 0 else spans
        m = self._regex.search(text)
        return None if m is None else [m.span(i) for i in range(self.groups + 1)]


def compile_go(pattern: str) -> GoRegex:
    """Compile a Go regexp; raise :class:`GoRegexError` with the reason when it is invalid."""
    if not isinstance(pattern, str):
        raise GoRegexError("a regular expression must be a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise GoRegexError(f"the pattern is {len(pattern):,} characters long; at most {MAX_PATTERN_CHARS:,} are read")
    if _ANY_BYTE.search(pattern):
        raise GoRegexError("invalid regular expression: invalid escape sequence: \\C (Go has no any-byte class)")
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        hint = next((f" ({h})" for prefix, h in _HINTS if reason.startswith(prefix)), "")
        raise GoRegexError(f"invalid regular expression: {reason}{hint}") from exc
    return GoRegex(pattern, compiled)


@dataclass(frozen=True)
class Template:
    """A parsed ``Expand`` template: literal strings and group references, in order."""

    text: str
    parts: tuple[str | int, ...]  # str: literal; int: group number (names resolved)

    def expand(self, m: Match) -> str:
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], int):
            return m.group(parts[0]) or ""
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)


def parse_template(template: str, regex: Regex) -> Template:
    """Parse ``template`` against ``regex``'s groups; unknown group names are errors."""
    parts: list[str | int] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "$":
            literal.append(c)
            i += 1
            continue
        if template.startswith("$$", i):
            literal.append("$")
            i += 2
            continue
        name: str | None = None
        if template.startswith("${", i):
            close = template.find("}", i + 2)
            candidate = template[i + 2 : close] if close != -1 else ""
            if close != -1 and re.fullmatch(r"\w+", candidate, re.ASCII):
                name, i = candidate, close + 1
        else:
            m = re.match(r"\w+", template[i + 1 :], re.ASCII)
            if m is not None:
                name, i = m.group(0), i + 1 + m.end()
        if name is None:  # malformed: Go keeps the '$' as text
            literal.append("$")
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_group_number(name, regex))
    if literal:
        parts.append("".join(literal))
    return Template(template, tuple(parts))


def _group_number(name: str, regex: Regex) -> int:
    if name.isdigit():
        number = int(name)
        if number > regex.groups:
            raise GoRegexError(f"extract refers to group {number} but the pattern has {regex.groups} group(s)")
        return number
    if name not in regex.groupindex:
        known = ", ".join(sorted(regex.groupindex)) or "none"
        raise GoRegexError(f"extract names group {name!r} which the pattern does not define (named groups: {known})")
    return regex.groupindex[name]
