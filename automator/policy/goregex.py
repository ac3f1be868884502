"""Go (RE2) regular expressions and ``Regexp.Expand`` templates, read with Python's ``re``.

Flux compiles ``filterTags.pattern`` and ``exclusionList`` with Go's ``regexp`` and
expands ``filterTags.extract`` with ``Regexp.ExpandString``.  The common syntax is the
same in both engines; this module translates the differences a tag pattern can meet:

* ``(?<name>re)`` (Go >= 1.22) -> ``(?P<name>re)``; ``(?P<name>re)`` is the same in both;
* POSIX classes inside brackets (``[[:digit:]]``, ``[[:alpha:]]``...) -> explicit sets;
* ``\\z`` (end of text) -> ``\\Z``; ``\\Q...\\E`` literal text -> escaped text;
* what RE2 refuses (look-around, back-references, ``\\Z``) is refused here too, so a
  pattern that loads here also loads in Flux; ``\\pL``-style Unicode classes are refused
  because ``re`` has none.

Patterns are searched (not anchored), as Go's ``FindStringSubmatchIndex``.  Templates:
``$name``/``${name}`` (a name or a group number; ``$name`` takes the longest run of
letters, digits and ``_``), ``$$`` for a literal ``$``; a ``$`` not followed by either
is literal text.  Unlike Go, naming a group the pattern does not define is an error at
load time rather than an empty string at run time.

Hand-written because no Python package translates RE2 syntax to ``re``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_RE = re.compile(r"\[:(\^?)([a-z]+):\]")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class GoRegexError(ValueError):
    """A pattern Go's regexp would refuse, or one ``re`` cannot express."""


def translate(pattern: str) -> str:
    """Rewrite a Go regexp as an equivalent Python ``re`` pattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise GoRegexError("trailing backslash at end of expression")
            e = pattern[i + 1]
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end == -1 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end == -1 else end + 2
                continue
            if e.isdigit() and e != "0" and not in_class:
                raise GoRegexError(f"back-reference \\{e} is not supported by Go regexp (RE2)")
            if e in "pP":
                raise GoRegexError(f"Unicode class \\{e}... is not supported; use an explicit set like [A-Za-z]")
            if e == "Z":
                raise GoRegexError("\\Z is not valid in Go regexp; use \\z or $ for the end of the tag")
            out.append("\\Z" if e == "z" and not in_class else pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "[":
                m = _POSIX_RE.match(pattern, i)
                if m is not None:
                    neg, name = m.groups()
                    if name not in _POSIX:
                        raise GoRegexError(f"invalid character class range [:{name}:]")
                    if neg:
                        raise GoRegexError(f"negated POSIX class [:^{name}:] is not supported; use [^...]")
                    out.append(_POSIX[name])
                    i = m.end()
                    continue
                out.append("\\[")
                i += 1
                continue
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # a leading '^' and/or ']' are literal parts of the set
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2 : i + 4]
            if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
                raise GoRegexError("look-around assertions are not supported by Go regexp (RE2)")
            if rest[:1] == "<":
                out.append("(?P<")
                i += 3
                continue
        out.append(c)
        i += 1
    return "".join(out)


def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go regexp; raise :class:`GoRegexError` with the reason when it is invalid."""
    if not isinstance(pattern, str):
        raise GoRegexError("a regular expression must be a string")
    translated = translate(pattern)
    try:
        return re.compile(translated, re.ASCII)  # Go's \d, \w, \s and \b are ASCII-only
    except re.error as exc:
        raise GoRegexError(f"invalid regular expression: {exc.msg} (at position {exc.pos})") from exc


@dataclass(frozen=True)
class Template:
    """A parsed ``Expand`` template: literal strings and group references, in order."""

    text: str
    parts: tuple[str | int, ...]  # str: literal; int: group number (names resolved)

    def expand(self, m: re.Match[str]) -> str:
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], int):
            return m.group(parts[0]) or ""
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)


def parse_template(template: str, regex: re.Pattern[str]) -> Template:
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


def _group_number(name: str, regex: re.Pattern[str]) -> int:
    if name.isdigit():
        number = int(name)
        if number > regex.groups:
            raise GoRegexError(f"extract refers to group {number} but the pattern has {regex.groups} group(s)")
        return number
    if name not in regex.groupindex:
        known = ", ".join(sorted(regex.groupindex)) or "none"
        raise GoRegexError(f"extract names group {name!r} which the pattern does not define (named groups: {known})")
    return regex.groupindex[name]
