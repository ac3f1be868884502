"""Locate YAML nodes and their exact source spans, without constructing or re-dumping anything.

The rewrite engine never serialises a document: it needs only *where* each scalar sits in
the original text (start/end offsets, line, column) and *how* it is quoted, so that a new
value can be spliced into the very same bytes.  That information lives in the parser's
event stream, so this module builds a small node tree straight from events:

* Events, the backend (libyaml, else ruamel.yaml, which has the last word on a text libyaml
  refuses) and the nesting limit come from :mod:`automator.yamlevents`, the one event layer
  the policy loader reads too.  Both backends report marks as code-point offsets, so the tree
  is identical either way (the tests run every golden case through both).
* The composer here is iterative: deeply nested flow collections cannot overflow the C
  stack (PyYAML's Cython composer segfaults at ~50,000 levels) nor Python's recursion limit.
* Aliases are *not* expanded: an alias resolves to the very node object that carries the
  anchor, so a "billion laughs" document costs one node per anchor, and walkers that keep a
  ``seen`` set visit each node once.

Comments never reach the event stream; :func:`line_comment` reads the comment that ends a
scalar's line directly from the text, which is exactly where a setter marker lives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from automator.yamlevents import describe, is_yaml_error, parse_with_fallback

SCALAR = "scalar"
MAPPING = "mapping"
SEQUENCE = "sequence"

PLAIN = ""
SINGLE = "'"
DOUBLE = '"'
LITERAL = "|"
FOLDED = ">"


class YAMLSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(eq=False, slots=True)
class Node:
    """One node: a scalar (``value`` is its text), a mapping (``pairs``) or a sequence (``items``).

    ``start``/``end`` are code-point offsets into the parsed text (a scalar's span includes
    its anchor, tag and quotes); ``line`` and ``column`` are 0-based, of the start.
    """

    kind: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    value: str = ""
    style: str = PLAIN
    flow: bool = False
    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    items: list[Node] = field(default_factory=list)

    def get(self, key: str) -> Node | None:
        """The value under ``key`` in a mapping, honouring ``<<`` merge keys; None otherwise."""
        return _mapping_get(self, key, set())

    def text(self, key: str) -> str | None:
        """The value under ``key`` when it is a non-block scalar, else None."""
        node = self.get(key)
        if node is None or node.kind != SCALAR or node.style in (LITERAL, FOLDED):
            return None
        return node.value


def _mapping_get(node: Node, key: str, seen: set[int]) -> Node | None:
    if node.kind != MAPPING or id(node) in seen:
        return None
    seen.add(id(node))
    merges: list[Node] = []
    for k, v in node.pairs:
        if k.kind == SCALAR:
            if k.value == key:
                return v
            if k.value == "<<" and k.style == PLAIN:
                merges.append(v)
    for m in merges:
        sources = m.items if m.kind == SEQUENCE else [m]
        for src in sources:
            found = _mapping_get(src, key, seen)
            if found is not None:
                return found
    return None


def compose(text: str, backend: str | None = None) -> list[Node]:
    """Parse every document of ``text`` into a :class:`Node` tree (None roots are dropped).

    Raises :class:`YAMLSyntaxError` with a 1-based line when the text is not YAML (or nests
    deeper than :data:`automator.yamlevents.MAX_DEPTH`).
    """
    # A BOM is not content: libyaml drops it without counting it, ruamel counts it; parse
    # without it and shift every offset back, so both backends agree on positions.
    shift = 1 if text.startswith("\ufeff") else 0
    try:
        return parse_with_fallback(text[shift:], lambda events: _build(events, shift), backend)
    except YAMLSyntaxError:
        raise
    except Exception as exc:
        if not is_yaml_error(exc):
            raise
        message, mark = describe(exc)
        raise YAMLSyntaxError(message or "invalid YAML", mark.line + 1 if mark is not None else 0) from exc


def _build(events: Iterator[Any], shift: int) -> list[Node]:
    docs: list[Node] = []
    anchors: dict[str, Node] = {}
    stack: list[tuple[Node, list[Node]]] = []  # open collection, pending key (mappings)
    root: Node | None = None

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent, pending = stack[-1]
        if parent.kind == SEQUENCE:
            parent.items.append(node)
        elif pending:
            parent.pairs.append((pending.pop(), node))
        else:
            pending.append(node)

    for event in events:
        name = type(event).__name__
        if name == "ScalarEvent":
            sm, em = event.start_mark, event.end_mark
            node = Node(
                SCALAR,
                sm.index + shift,
                em.index + shift,
                sm.line,
                sm.column,
                em.line,
                value=event.value,
                style=event.style or PLAIN,
            )
            if event.anchor:
                anchors[str(event.anchor)] = node
            attach(node)
        elif name in ("MappingStartEvent", "SequenceStartEvent"):
            sm = event.start_mark
            kind = MAPPING if name == "MappingStartEvent" else SEQUENCE
            start = sm.index + shift
            node = Node(kind, start, start, sm.line, sm.column, sm.line, flow=bool(event.flow_style))
            if event.anchor:
                anchors[str(event.anchor)] = node
            attach(node)
            stack.append((node, []))
        elif name in ("MappingEndEvent", "SequenceEndEvent"):
            node, _ = stack.pop()
            node.end = event.end_mark.index + shift
            node.end_line = event.end_mark.line
        elif name == "AliasEvent":
            target = anchors.get(str(event.anchor))
            if target is None:
                raise YAMLSyntaxError(f"found undefined alias {event.anchor!r}", event.start_mark.line + 1)
            attach(target)
        elif name == "DocumentStartEvent":
            root = None
            anchors = {}
        elif name == "DocumentEndEvent":
            if root is not None:
                docs.append(root)
            root = None
    return docs


def walk(root: Node) -> Iterator[tuple[Node, bool]]:
    """Every node reachable from ``root`` once, with ``True`` when it is a mapping key."""
    seen: set[int] = set()
    todo: list[tuple[Node, bool]] = [(root, False)]
    while todo:
        node, is_key = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, is_key
        if node.kind == MAPPING:
            for k, v in reversed(node.pairs):
                todo.append((v, False))
                todo.append((k, True))
        elif node.kind == SEQUENCE:
            todo.extend((item, False) for item in reversed(node.items))


def value_start(text: str, node: Node) -> int:
    """Offset of the scalar's own text, past any anchor (``&a``) and tag (``!t``, ``!!str``)."""
    pos, end = node.start, node.end
    while pos < end and text[pos] in "&!":
        if text.startswith("!<", pos):
            close = text.find(">", pos)
            pos = close + 1 if close != -1 else end
        else:
            while pos < end and text[pos] not in " \t\r\n":
                pos += 1
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
    return pos


def line_comment(text: str, node: Node) -> tuple[int, str] | None:
    """The comment on the line where a scalar ends, when nothing but flow punctuation
    (``,``, ``]``, ``}``) and blanks separates them: ``(offset of '#', comment text)``."""
    pos = node.end
    n = len(text)
    while pos < n and text[pos] in " \t,]}":
        pos += 1
    if pos >= n or text[pos] != "#":
        return None
    if pos > 0 and text[pos - 1] not in " \t" and pos != node.end:
        return None
    if pos == node.end and node.style == PLAIN:
        return None  # "a#b" is one plain scalar; a comment needs a blank before it
    eol = text.find("\n", pos)
    if eol == -1:
        eol = n
    comment = text[pos:eol]
    return pos, comment.removesuffix("\r")
