"""YAML documents with the position of every field, for error messages.

A file is split at its ``---`` lines first and each document parsed on its own with
ruamel.yaml's round-trip loader, so a syntax error in one document never hides the
others and every position is a line of the original file.  Documents that do not
mention an image kind are never parsed (a byte search decides).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

Path_ = tuple[str | int, ...]
KINDS = ("ImagePolicy", "ImageRepository")
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
_DECLARES_KIND = re.compile(r"""^\s*kind:\s*["']?Image(?:Policy|Repository)\b""", re.MULTILINE)


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
    for begin, end in itertools.pairwise(starts):
        chunk = text[begin:end]
        if chunk.strip():
            yield text.count("\n", 0, begin), chunk


def _plain(node: Any, path: Path_, offset: int, keys: dict[Path_, Position], values: dict[Path_, Position]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for k, v in node.items():
            name = str(k) if isinstance(k, str) else k
            child = (*path, name)
            try:
                kl, kc = node.lc.key(k)
                keys[child] = Position(kl + 1 + offset, kc + 1)
                vl, vc = node.lc.value(k)
                values[child] = Position(vl + 1 + offset, vc + 1)
            except (KeyError, TypeError, AttributeError):  # merged keys have no position
                pass
            out[name] = _plain(v, child, offset, keys, values)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, v in enumerate(node):
            child = (*path, i)
            try:
                il, ic = node.lc.item(i)
                values[child] = keys[child] = Position(il + 1 + offset, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(v, child, offset, keys, values))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def read_documents(text: str) -> Iterator[Document | SyntaxProblem]:
    """Parse the documents of ``text`` that may hold image policies or repositories."""
    yaml = YAML(typ="rt")
    for offset, chunk in split_documents(text):
        if "ImagePolicy" not in chunk and "ImageRepository" not in chunk:
            continue
        try:
            node = yaml.load(chunk)
        except YAMLError as exc:
            if not _DECLARES_KIND.search(chunk):
                continue  # a broken document that is none of ours: not our business
            last_line = offset + chunk.rstrip().count("\n") + 1
            problem = _problem(exc, offset)
            if problem.position.line > last_line:  # "unexpected end": point at the document's last line
                problem = SyntaxProblem(problem.message, Position(last_line, 1))
            yield problem
            continue
        if not isinstance(node, CommentedMap):
            continue
        keys: dict[Path_, Position] = {}
        values: dict[Path_, Position] = {}
        data = _plain(node, (), offset, keys, values)
        first = min(keys.values(), key=lambda p: (p.line, p.column), default=Position(offset + 1, 1))
        yield Document(data, first, keys, values)


def _problem(exc: YAMLError, offset: int) -> SyntaxProblem:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is not None:
            return SyntaxProblem(f"YAML syntax error: {what}", Position(mark.line + 1 + offset, mark.column + 1))
        return SyntaxProblem(f"YAML syntax error: {what}", Position(offset + 1, 1))
    return SyntaxProblem(f"YAML error: {exc}", Position(offset + 1, 1))
