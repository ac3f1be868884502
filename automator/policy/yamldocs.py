"""YAML documents with the position of every field, for error messages.

A file is split at its ``---`` lines first and each document read on its own, so a
syntax error in one document never hides the others and every position is a line of
the original file.  Documents that do not mention an image kind are never parsed (a
substring test decides).

Values and positions are built straight from the parser's event stream by one small
iterative builder, with YAML 1.2 core-schema scalars (``yes`` is a string, as in
ruamel.yaml's default).  The events, the choice of backend (libyaml, else ruamel.yaml, which
also has the last word on a text libyaml refuses) and the nesting limit come from
:mod:`automator.yamlevents`, the one event layer the rewriter reads too; both backends give
the same values and the same marks (the tests run every case through both).  Building from
events rather than a node tree means aliases are shared, never expanded (no "billion
laughs"), and deep nesting cannot overflow a stack.  Duplicate keys are errors, as
ruamel.yaml makes them.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from automator.yamlevents import Mark, describe, is_yaml_error, parse_with_fallback

Path_ = tuple[str | int, ...]
KINDS = ("ImagePolicy", "ImageRepository", "ImageUpdateAutomation", "GitRepository")
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
_DECLARES_KIND = re.compile(r"""^\s*kind:\s*["']?Image(?:Policy|Repository|UpdateAutomation)\b""", re.MULTILINE)


@dataclass(frozen=True)
class Position:
    line: int  # 1-based, in the file
    column: int  # 1-based


@dataclass
class Document:
    """One parsed YAML document: plain data plus where each field is."""

    data: Any
    start: Position
    keys: dict[Path_, Position]  # where a mapping key is written
    values: dict[Path_, Position]  # where a value starts

    def locate(self, path: Path_, *, key: bool = False) -> Position:
        """The closest known position of ``path`` (walks up to the parents)."""
        probe = tuple(path)
        while probe:
            table = self.keys if key else self.values
            found = table.get(probe) or self.keys.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
            key = True
        return self.start


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    position: Position


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """``(line offset, text)`` of each ``---``-separated document."""
    starts = [m.start() for m in _DOC_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    line = 0  # newlines before ``begin``, counted chunk by chunk (not from 0 each time: quadratic)
    for begin, end in itertools.pairwise(starts):
        chunk = text[begin:end]
        if chunk.strip():
            yield line, chunk
        line += chunk.count("\n")


class _BuildError(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


_MERGE = object()  # the "<<" key of a merge
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = frozenset({".nan", ".NaN", ".NAN"})
_NUMBER_START = frozenset("0123456789+-.")  # every int, float, 0o/0x, .inf and .nan starts so
_YAML_TAG = "tag:yaml.org,2002:"
_LINE_COLUMN = operator.attrgetter("line", "column")


def _core(value: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value[0] not in _NUMBER_START:  # not empty: "" is null
        return value  # most scalars (names, images, kinds) are no number of any form
    if _INT.match(value):
        return int(value)
    if value.startswith("0o") and re.fullmatch(r"0o[0-7]+", value):
        return int(value[2:], 8)
    if value.startswith("0x") and re.fullmatch(r"0x[0-9a-fA-F]+", value):
        return int(value[2:], 16)
    if _FLOAT.match(value):
        return float(value)
    if _INF.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if value in _NAN:
        return math.nan
    return value


def _scalar(event: Any) -> Any:
    tag, value = event.tag, event.value
    if tag is None:
        return value if event.style else _core(value)
    if tag in ("!", _YAML_TAG + "str") or not str(tag).startswith(_YAML_TAG):
        return value
    converted: Any = _core(value)
    kind = str(tag)[len(_YAML_TAG) :]
    types: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}
    wanted = types.get(kind)
    if wanted is None or (isinstance(converted, bool) and kind != "bool") or not isinstance(converted, wanted):
        raise _BuildError(f"{value!r} is not a valid !!{kind}", event.start_mark)
    return float(cast(float, converted)) if kind == "float" else converted


@dataclass
class _Frame:
    container: Any  # dict or list
    path: Path_
    key: Any = None  # a mapping's pending key
    has_key: bool = False  # True: the next value belongs to ``key``
    merged: set[Any] = field(default_factory=set)  # keys that came from "<<" (explicit keys may override)
    merge_into: _Frame | None = None  # this container is the value of a "<<" key of that frame
    key_path: Path_ = ()  # path of the pending key (its value lands there)


Scalar = Callable[[Any], Any]  # a ScalarEvent -> its value; ValueError when its tag refuses it


def _build(
    events: Iterable[Any], offset: int, scalar: Scalar | None = None, max_values: int | None = None
) -> Document | None:
    """Values and positions of the first document of ``events`` (None when it holds nothing).

    ``scalar`` resolves plain scalars (YAML 1.2 core schema by default); ``max_values``, when
    given, bounds how many values the document holds once its aliases are expanded, as a
    consumer that serialises it (JSON for an API server) would expand them.
    """
    resolve = scalar or _scalar
    aliased = False
    keys: dict[Path_, Position] = {}
    values: dict[Path_, Position] = {}
    anchors: dict[str, Any] = {}
    stack: list[_Frame] = []
    root: Any = None
    start: Position | None = None
    first_line = 1 + offset  # marks are 0-based within the document

    def pos(mark: Any) -> Position:
        return Position(mark.line + first_line, mark.column + 1)

    def place(value: Any, mark: Any, *, fresh: bool = False) -> Path_ | _Frame | None:
        """Attach ``value`` to the open container; return its path (None for a key).  A
        ``fresh`` (still empty) container under "<<" returns the frame to merge into later."""
        nonlocal root
        if not stack:
            root = value
            return ()
        top = stack[-1]
        container = top.container
        if type(container) is list:
            child = (*top.path, len(container))
            container.append(value)
            values[child] = keys[child] = Position(mark.line + first_line, mark.column + 1)
            return child
        if not top.has_key:
            if isinstance(value, dict | list):
                raise _BuildError("complex (mapping or sequence) keys are not supported", mark)
            key: Any = _MERGE if value == "<<" else (value if isinstance(value, str) else str(value))
            if key is not _MERGE:
                if key in container and key not in top.merged:
                    raise _BuildError(f"duplicate key {key!r}", mark)
                if top.merged:
                    top.merged.discard(key)
                top.key_path = (*top.path, key)
                keys[top.key_path] = Position(mark.line + first_line, mark.column + 1)
            top.key, top.has_key = key, True
            return None
        key, top.key, top.has_key = top.key, None, False
        if key is _MERGE:
            if fresh:
                return top
            _merge(top, value, mark)
            return None
        child = top.key_path
        container[key] = value
        values[child] = Position(mark.line + first_line, mark.column + 1)
        return child

    for event in events:
        name = type(event).__name__
        if name == "ScalarEvent":
            try:
                value = resolve(event)
            except ValueError as exc:
                raise _BuildError(str(exc), event.start_mark) from exc
            place(value, event.start_mark)
            if event.anchor:
                anchors[event.anchor] = value
        elif name in ("MappingStartEvent", "SequenceStartEvent"):
            container: dict[Any, Any] | list[Any] = {} if name == "MappingStartEvent" else []
            if start is None:
                start = pos(event.start_mark)
            placed = place(container, event.start_mark, fresh=True)
            if event.anchor:
                anchors[event.anchor] = container
            if isinstance(placed, _Frame):
                stack.append(_Frame(container, (*placed.path, "<<"), merge_into=placed, key=event.start_mark))
            else:
                stack.append(_Frame(container, placed or ()))
        elif name in ("MappingEndEvent", "SequenceEndEvent"):
            done = stack.pop()
            if done.merge_into is not None:
                _merge(done.merge_into, done.container, done.key)
        elif name == "AliasEvent":
            if event.anchor not in anchors:
                raise _BuildError(f"found undefined alias {event.anchor!r}", event.start_mark)
            place(anchors[event.anchor], event.start_mark)
            aliased = True
        elif name == "DocumentEndEvent":
            break
    if root is None:
        return None
    first = min(keys.values(), key=_LINE_COLUMN, default=start or Position(offset + 1, 1))
    if aliased and max_values is not None and expanded_size(root, max_values) > max_values:
        mark = Mark(first.line - 1 - offset, first.column - 1, 0)
        raise _BuildError(f"its aliases expand it to more than {max_values:,} values", mark)
    return Document(root, first, keys, values)


def expanded_size(value: Any, limit: int) -> int:
    """How many values ``value`` holds with every shared (aliased) part counted each time it
    appears, computed once per distinct container; stops counting past ``limit``."""
    sizes: dict[int, int] = {}
    todo: list[tuple[Any, bool]] = [(value, False)]
    while todo:
        node, done = todo.pop()
        if id(node) in sizes:
            continue
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if not done:
            todo.append((node, True))
            todo.extend((c, False) for c in children if isinstance(c, dict | list) and id(c) not in sizes)
            continue
        total = 1
        for c in children:
            total += sizes.get(id(c), 1)
        sizes[id(node)] = min(total, limit + 1)
    return sizes.get(id(value), 1)


def _merge(top: _Frame, value: Any, mark: Any) -> None:
    """``<<: *base`` or ``<<: [*a, *b]``: keys not already set come from the merged maps."""
    sources = value if isinstance(value, list) else [value]
    for source in sources:
        if not isinstance(source, dict):
            raise _BuildError("a merge key ('<<') needs a mapping or a list of mappings", mark)
        for k, v in source.items():
            if k not in top.container:
                top.container[k] = v
                top.merged.add(k)


def read_documents(text: str, *, backend: str | None = None, every: bool = False) -> Iterator[Document | SyntaxProblem]:
    """Parse the documents of ``text`` that may hold image policies or repositories (all with ``every``);
    documents that are not mappings are skipped."""
    for item in _read(text, backend, every=every):
        if isinstance(item, SyntaxProblem) or isinstance(item.data, dict):
            yield item


def read_values(
    text: str, scalar: Scalar, *, max_values: int, backend: str | None = None
) -> Iterator[Document | SyntaxProblem]:
    """Every non-empty document of ``text``, whatever its root, with ``scalar`` resolving plain
    scalars and at most ``max_values`` values per document once aliases are expanded."""
    return _read(text, backend, every=True, scalar=scalar, max_values=max_values)


def _read(
    text: str, backend: str | None, *, every: bool, scalar: Scalar | None = None, max_values: int | None = None
) -> Iterator[Document | SyntaxProblem]:
    for offset, chunk in split_documents(text):
        if not every and not any(kind in chunk for kind in KINDS):
            continue
        build = functools.partial(_build, offset=offset, scalar=scalar, max_values=max_values)
        try:
            doc = parse_with_fallback(chunk, build, backend)
        except _BuildError as exc:
            yield SyntaxProblem(f"YAML syntax error: {exc}", Position(exc.mark.line + 1 + offset, exc.mark.column + 1))
            continue
        except Exception as exc:
            if not is_yaml_error(exc):
                raise
            if not every and not _DECLARES_KIND.search(chunk):
                continue  # a broken document that is none of ours: not our business
            last_line = offset + chunk.rstrip().count("\n") + 1
            problem = _problem(exc, offset)
            if problem.position.line > last_line:  # "unexpected end": point at the document's last line
                problem = SyntaxProblem(problem.message, Position(last_line, 1))
            yield problem
            continue
        if doc is not None:
            yield doc


def _problem(exc: Exception, offset: int) -> SyntaxProblem:
    what, mark = describe(exc)
    message = f"YAML syntax error: {what}"
    if mark is not None:
        return SyntaxProblem(message, Position(mark.line + 1 + offset, mark.column + 1))
    return SyntaxProblem(message, Position(offset + 1, 1))
