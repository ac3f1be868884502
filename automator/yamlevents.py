"""The one YAML event layer: every parser of the project reads its events from here.

The policy loader (:mod:`automator.policy.yamldocs`) and the rewriter
(:mod:`automator.update._yaml`) each build a small tree of their own straight from parser
events -- values with positions for error messages, exact source spans for splicing -- so
neither ever constructs Python objects through a recursive composer, and aliases are shared,
never expanded (no "billion laughs").  What those builders have in common lives here, once:

* **the backends**: libyaml through PyYAML's ``CSafeLoader`` when that C extension is
  importable (about 30 times faster than a pure-Python parser), else ruamel.yaml's own pure
  parser, the project's YAML library.  Both report 0-based marks as code-point offsets.
* **the fallback**: ruamel.yaml (YAML 1.2) accepts a few documents libyaml (YAML 1.1) refuses,
  so when libyaml refuses a text, ruamel.yaml has the last word (:func:`parse_with_fallback`).
* **the nesting rule**: at most :data:`MAX_DEPTH` levels of mappings and sequences, block or
  flow.  It is ours, not the parser's: libyaml 0.2.6 refuses about 1,000 levels by itself
  while 0.2.5 and ruamel.yaml accept any depth (and both scanners spend O(depth) per token on
  flow nesting), so without a rule of our own the same file would load or not depending on
  the wheel pip picked.  500 levels, well below libyaml's own limit, gives the same answer
  whichever libyaml is installed and bounds the scanners' work; Kubernetes objects nest a few
  dozen levels at most.  Two checks enforce it, because the scanners read flow collections far
  ahead of the events they yield: the text is refused up front when its brackets open more
  than :data:`MAX_DEPTH` levels (:func:`check_flow_depth`; brackets inside quotes or comments
  count too, so a text would need 500 unclosed ones there to be refused wrongly), and the
  events are counted as they come (:func:`bounded`), which catches block nesting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

try:  # pragma: no cover - depends on how PyYAML was built
    import yaml as _pyyaml

    _CLoader: Any = _pyyaml.CSafeLoader if getattr(_pyyaml, "__with_libyaml__", False) else None
except ImportError:  # pragma: no cover
    _pyyaml = None  # type: ignore[assignment]
    _CLoader = None

LIBYAML = "libyaml"
RUAMEL = "ruamel"
BACKENDS: tuple[str, ...] = (LIBYAML, RUAMEL) if _CLoader is not None else (RUAMEL,)
MAX_DEPTH = 500

_BRACKETS = re.compile(r"[\[\]{}]")
_STARTS = frozenset({"MappingStartEvent", "SequenceStartEvent"})
_ENDS = frozenset({"MappingEndEvent", "SequenceEndEvent"})
T = TypeVar("T")


class TooDeep(Exception):
    """The text nests mappings and sequences more than :data:`MAX_DEPTH` levels deep."""

    def __init__(self, mark: Any) -> None:
        super().__init__(f"mappings and sequences nested more than {MAX_DEPTH} levels deep")
        self.mark = mark  # the parser's 0-based mark of the first collection too deep


@dataclass(frozen=True)
class Mark:
    """A position in the text, 0-based, as the parsers' own marks give it."""

    line: int
    column: int
    index: int


def check_flow_depth(text: str) -> None:
    """Refuse ``text`` when its brackets open more than :data:`MAX_DEPTH` levels: :class:`TooDeep`."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # the common case, in two C-speed passes
    depth = 0
    for m in _BRACKETS.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        if depth > MAX_DEPTH:
            line_start = text.rfind("\n", 0, m.start()) + 1
            raise TooDeep(Mark(text.count("\n", 0, m.start()), m.start() - line_start, m.start()))


def events(text: str, backend: str) -> Iterator[Any]:
    """The parser events of every document of ``text``, with :data:`MAX_DEPTH` enforced."""
    check_flow_depth(text)
    if backend == LIBYAML:
        # the events yaml.parse() yields, pulled from libyaml without a Python generator between
        raw: Iterator[Any] = iter(_CLoader(text).get_event, None)
    else:
        # imported here: with libyaml present the policy loader never needs ruamel.yaml (~10 ms to import)
        from ruamel.yaml import YAML  # noqa: PLC0415

        raw = iter(YAML(typ="safe", pure=True).parse(text))
    return bounded(raw)


def bounded(stream: Iterator[Any]) -> Iterator[Any]:
    """``stream`` unchanged, until a collection opens :data:`MAX_DEPTH` levels deep: :class:`TooDeep`."""
    depth = 0
    for event in stream:
        name = type(event).__name__
        if name in _STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep(event.start_mark)
        elif name in _ENDS:
            depth -= 1
        yield event


def is_yaml_error(exc: BaseException) -> bool:
    """True for a parse error of either backend (and for :class:`TooDeep`)."""
    if isinstance(exc, TooDeep) or (_pyyaml is not None and isinstance(exc, _pyyaml.YAMLError)):
        return True
    import sys  # noqa: PLC0415

    ruamel_error = sys.modules.get("ruamel.yaml.error")  # not loaded: the error cannot be ruamel's
    return ruamel_error is not None and isinstance(exc, ruamel_error.YAMLError)


def describe(exc: BaseException) -> tuple[str, Any]:
    """A parse error as ``(message, 0-based mark or None)``, the same words from either backend."""
    if isinstance(exc, TooDeep):
        return str(exc), exc.mark
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    message = " ".join(str(p) for p in parts if p)
    if not message:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message, mark


def parse_with_fallback(text: str, build: Callable[[Iterator[Any]], T], backend: str | None = None) -> T:
    """``build(events(text))`` with the given backend, or: libyaml first, ruamel.yaml when libyaml refuses."""
    if backend is not None:
        return build(events(text, backend))
    if _CLoader is not None:
        try:
            return build(events(text, LIBYAML))
        except TooDeep:
            raise  # our rule: the same answer from either backend
        except Exception as exc:
            if not is_yaml_error(exc):
                raise
    return build(events(text, RUAMEL))
