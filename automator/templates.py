"""User templates for commit messages, PR titles, bodies and branch names.

Rendered with Jinja2's ``SandboxedEnvironment`` (a template from a config repo cannot reach
Python internals) and ``StrictUndefined`` (a misspelt variable is an error, not an empty
string).  The context is built from the change record, never re-derived from files:

    group     the group (or policy) name          prefix   the branch prefix
    base      the base branch                      updates  one entry per policy:
              {policy, image, old, new, tag, digest, files}
    changes   one entry per changed scalar: {policy, file, line, object, old, new}

A template is untrusted input, so :func:`render` bounds it (:class:`RenderLimits`):

    output     262,144 characters rendered, counted as it renders.  One cap for every template:
               it stops runaways, it does not validate; forges check their own limits (GitHub:
               65,536 for a body, 256 for a title; GitLab: 1,048,576), and the default commit
               message, one line per update, still fits about 4,000 updates
    value      262,144 characters (or items) in any one string, list or formatted piece it
               builds, checked *before* building: ``'x' * 2000000000`` is refused, not allocated
    built      8,388,608 characters and items built in total (bounds what a render can retain)
    steps      1,000,000 loop iterations, calls, operators and output pieces (16 for a call
               that runs template code: a macro, ``caller()``, ``loop()``), plus what filters and
               methods read (an item each for per-item filters such as ``sort`` and ``map``, else
               64 characters or items): nested loops and recursion stop deterministically
    depth      64 nested calls (a recursive macro without a base case)
    range      10,000 items in a ``range()`` (Jinja allows 100,000; a message needs a few)
    integers   4,096 bits from ``*``, ``**`` and ``+``
    seconds    5 of wall time, a backstop read every 64 steps (the clock is a parameter)

Any refusal is a :class:`ConfigError` naming the setting, the limit and what to do.  Jinja has
no resource limits beyond ``MAX_RANGE``, so they are written here, through its documented hooks:
``SandboxedEnvironment.call`` / ``call_binop`` / ``wrap_str_format``, the filter table, and
``Environment.code_generator_class`` (a subclass that routes every ``for`` iterable, ``~``
concatenation and output piece through the environment).  The optimizer is off so nothing is
evaluated at compile time, outside the budget.
"""

from __future__ import annotations

import functools
import re
import time
import types
from collections import deque
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any, cast

from jinja2 import Environment, StrictUndefined, Template, TemplateError, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter, make_multi_attrgetter
from jinja2.nodes import EvalContext
from jinja2.runtime import BlockReference, Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter, modifies_known_mutable
from jinja2.utils import Namespace, generate_lorem_ipsum, pass_environment
from markupsafe import EscapeFormatter, Markup

from automator.errors import ConfigError

DEFAULT_MESSAGE = (
    "{% if updates | length == 1 %}Update {{ updates[0].image }} to {{ updates[0].tag }}"
    "{% else %}Update {{ updates | length }} images ({{ group }}){% endif %}\n\n"
    "{% for u in updates %}- {{ u.image }}: {{ u.old or '(unset)' }} -> {{ u.new }} (policy {{ u.policy }})\n"
    "{% endfor %}"
)
DEFAULT_TITLE = (
    "{% if updates | length == 1 %}Update {{ updates[0].image }} to {{ updates[0].tag }}"
    "{% else %}Update {{ updates | length }} images ({{ group }}){% endif %}"
)
DEFAULT_BRANCH = "{{ prefix }}{{ group | slug }}"

# The setting each rendered template comes from, for error messages.
SETTINGS: Mapping[str, str] = {
    "commit message": "spec.commit.messageTemplate",
    "pull request title": "spec.pullRequest.titleTemplate",
    "pull request body": "spec.pullRequest.bodyTemplate",
    "branch name": "spec.pullRequest.branchTemplate",
}


@dataclass(frozen=True)
class RenderLimits:
    """What one render may use; see the module docstring for why each number."""

    output: int = 262_144
    value: int = 262_144
    built: int = 8_388_608
    steps: int = 1_000_000
    depth: int = 64
    range: int = 10_000
    int_bits: int = 4_096
    seconds: float = 5.0


LIMITS = RenderLimits()

_FIX_SIZE = "build smaller values: a template may not repeat, pad, join or format text past that size"
_FIX_OUTPUT = "print less: list fewer items or cut long values with `| truncate(...)`"
_FIX_LOOPS = "loop over the change record (updates, changes) instead of large or nested ranges"
_FIX_DEPTH = "give the recursive macro or loop a condition that stops it"
_FIX_NUMBERS = "compute with smaller numbers"


class _Refused(Exception):
    """A limit was hit; :func:`render` turns it into a ConfigError naming the template."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class _Budget:
    """The counters of one render.  The clock is read every ``CLOCK_EVERY`` steps."""

    CLOCK_EVERY = 64
    __slots__ = ("built", "clock", "deadline", "depth", "limits", "max_built", "max_steps", "next_clock", "steps")

    def __init__(self, limits: RenderLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.deadline = clock() + limits.seconds
        self.max_steps = limits.steps
        self.max_built = limits.built
        self.steps = 0
        self.next_clock = self.CLOCK_EVERY
        self.built = 0
        self.depth = 0

    def tick(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps >= self.next_clock or self.steps > self.max_steps:
            self._check()

    def build(self, size: int) -> None:
        self.built += size
        if self.built > self.max_built:
            self._check()

    def piece(self, size: int) -> None:
        """One piece of output (a step) of ``size`` characters (built)."""
        self.steps += 1
        self.built += size
        if self.steps >= self.next_clock or self.steps > self.max_steps or self.built > self.max_built:
            self._check()

    def _check(self) -> None:
        if self.steps > self.max_steps:
            raise _Refused(
                f"it took more than {self.max_steps} steps (loop iterations, calls, operators, output pieces)",
                _FIX_LOOPS,
            )
        if self.built > self.max_built:
            raise _Refused(f"it built more than {self.max_built} characters and items in total", _FIX_SIZE)
        if self.steps >= self.next_clock:
            self.next_clock = self.steps + self.CLOCK_EVERY
            if self.clock() > self.deadline:
                raise _Refused(f"it ran for more than {self.limits.seconds:g} seconds", _FIX_LOOPS)


# The budget of the render running in this thread (or task); None outside render(), where
# only the per-value caps apply.
_BUDGET: ContextVar[_Budget | None] = ContextVar("automator_template_budget", default=None)


def _limits() -> RenderLimits:
    budget = _BUDGET.get()
    return LIMITS if budget is None else budget.limits


def _tick(steps: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick(steps)


def _build(size: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.build(size)


def _too_big(size: int, what: str) -> None:
    limit = _limits().value
    if size > limit:
        raise _Refused(f"{what} would build a value of more than {limit} characters or items", _FIX_SIZE)


def _int_too_wide(bits: int, what: str) -> None:
    limit = _limits().int_bits
    if bits > limit:
        raise _Refused(f"{what} would compute an integer wider than {limit} bits", _FIX_NUMBERS)


# -- sizes --------------------------------------------------------------------------------------------------------

_TEXT = (str, bytes, bytearray)
_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _children(value: Any) -> Iterator[Any] | None:
    """What ``str(value)`` prints inside ``value``, or None for a leaf."""
    kind = type(value)
    if kind is list or kind is tuple:
        items: Iterator[Any] = iter(value)
        return items
    if kind is dict:
        return chain.from_iterable(value.items())
    if isinstance(value, _TEXT):
        return None
    if isinstance(value, Mapping):
        return chain.from_iterable(value.items())
    if isinstance(value, Namespace):
        attrs = value._Namespace__attrs  # its repr prints them
        return chain.from_iterable(attrs.items()) if isinstance(attrs, dict) else None
    if isinstance(value, (list, tuple, set, frozenset, deque, KeysView, ValuesView, ItemsView)):
        return iter(value)
    return None


def _leaf(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray)):
        return 4 * len(value) + 3
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, float):
        return 24
    return 32  # reprs of macros, loops, ranges, undefined: short


def _measure(value: Any, stop: int, indent: int = 0) -> tuple[int, int]:
    """An upper estimate of ``len(str(value))`` (plus ``indent`` per item and nesting level), and
    the nodes visited to find it.  Stops once past ``stop``; follows shared references as
    ``str()`` does and stops at cycles as it does."""
    children = _children(value)
    if children is None:
        return _leaf(value), 1
    total, visited = 2, 1
    on_path = {id(value)}
    stack: list[tuple[int, Iterator[Any], int]] = [(id(value), children, 1)]
    while stack:
        owner, items, depth = stack[-1]
        pad = 2 + indent * depth
        for child in items:  # the common leaves inline: this loop is the cost of printing a container
            visited += 1
            kind = type(child)
            if kind is str:
                total += pad + len(child)
            elif kind is int:
                total += pad + child.bit_length() // 3 + 2
            elif child is None or kind is bool or kind is float:
                total += pad + 24
            elif id(child) in on_path:
                total += pad + 5
            else:
                grandchildren = _children(child)
                if grandchildren is None:
                    total += pad + _leaf(child)
                else:
                    total += pad + 2
                    on_path.add(id(child))
                    stack.append((id(child), grandchildren, depth + 1))
                    break  # descend; this level's iterator resumes afterwards
            if total > stop:
                return total, visited
        else:
            stack.pop()
            on_path.discard(owner)
    return total, visited


def _text_size(value: Any) -> int:
    """Roughly ``len(str(value))``, without calling ``str``; charges the walk to the budget."""
    if isinstance(value, str):
        return len(value)
    if value is None or isinstance(value, (int, float)):
        return _leaf(value)
    size, visited = _measure(value, _limits().value)
    _tick(visited)
    return size


def _check_text(value: Any, what: str) -> None:
    _too_big(_text_size(value), what)


def _check_result(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _int_too_wide(value.bit_length(), what)
    elif isinstance(value, _SIZED):
        _too_big(len(value), what)
        _build(len(value))


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# -- operators and formatting -------------------------------------------------------------------------------------


def _check_binop(operator: str, left: Any, right: Any) -> None:
    what = f"`{operator}`"
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(count, int) and isinstance(seq, (*_TEXT, list, tuple)):
                _too_big(len(seq) * max(count, 0), what)
        if isinstance(left, int) and isinstance(right, int):
            _int_too_wide(left.bit_length() + right.bit_length() - 1, what)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _int_too_wide((left.bit_length() - 1) * right + 1, what)
    elif operator == "+":
        if isinstance(left, (*_TEXT, list, tuple)) and isinstance(right, (*_TEXT, list, tuple)):
            _too_big(len(left) + len(right), what)
    elif operator == "%" and isinstance(left, _TEXT):
        _check_percent(left, right, what)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _check_percent(fmt: str | bytes | bytearray, params: Any, what: str) -> None:
    """Bound ``fmt % params`` before computing it: fields x the widest argument, plus widths."""
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    if isinstance(params, Mapping):
        values = list(params.values())
    elif isinstance(params, tuple):
        values = list(params)
    else:
        values = [params]
    widest = max((_text_size(v) for v in values), default=0)
    _too_big(widest, what)
    star = max((abs(v) for v in values if isinstance(v, int)), default=0)
    escape = 6 if isinstance(fmt, Markup) else 1  # Markup escapes its arguments
    limit = _limits().value
    size = len(text)
    for match in _PERCENT.finditer(text):
        width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for number in (width, precision):
            if number == "*":
                size += star
            elif number:
                size += int(number) if len(number) <= 9 else limit + 1
        size += widest * (10 if conversion in "ra" else escape) + 32
        if size > limit:
            break
    _too_big(size, what)


_DIGITS = re.compile(r"\d+")


class _Formatter(SandboxedFormatter):
    """``str.format`` with bounded widths and a bounded total, counted while it formats."""

    _size = 0

    def vformat(self, format_string: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        self._size = 0
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            _check_text(value, "`.format()`")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _DIGITS.findall(format_spec):
            _too_big(int(number) if len(number) <= 9 else _limits().value + 1, "`.format()`")
        _check_text(value, "`.format()`")
        text = super().format_field(value, format_spec)
        self._size += len(text)
        _too_big(self._size, "`.format()`")
        return text


class _EscapeFormatter(_Formatter, EscapeFormatter):
    pass


# -- calls --------------------------------------------------------------------------------------------------------


def _check_replace(text: Any, old: Any, new: Any, count: Any, what: str) -> None:
    try:
        found = text.count(old) if len(old) else len(text) + 1
        growth = len(new) - len(old)
    except TypeError:
        return  # the call itself reports the wrong types
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _too_big(len(text) + found * max(growth, 0), what)


def _check_text_method(
    owner: str | bytes | bytearray, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Refuse ``str``/``bytes`` methods that would build more than the value cap."""
    what = f"`.{name}()`"
    if name in {"center", "ljust", "rjust", "zfill"}:
        width = _arg(args, kwargs, 0, "width", 0)
        if isinstance(width, int):
            _too_big(width, what)
    elif name == "expandtabs":
        tabsize = _arg(args, kwargs, 0, "tabsize", 8)
        if isinstance(tabsize, int):
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _too_big(len(owner) + tabs * max(tabsize, 0), what)
    elif name == "replace":
        _check_replace(
            owner, _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new"), _arg(args, kwargs, 2, "count", -1), what
        )
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else list(args[0])
        _too_big(sum(_text_size(item) for item in items) + len(owner) * max(len(items) - 1, 0), what)
        return (items, *args[1:])
    elif name == "translate" and args:
        table = args[0]
        values: Iterable[Any] = (
            table.values() if isinstance(table, Mapping) else table if isinstance(table, (list, tuple)) else ()
        )
        widest = max((len(v) for v in values if isinstance(v, _TEXT)), default=1)
        _too_big(len(owner) * max(widest, 1), what)
    return args


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a call that would build too much; may return the arguments it had to materialise."""
    if isinstance(obj, LoopContext) and args:  # loop(...) in a recursive for: count its items too
        return (_guard_iter(args[0]), *args[1:])
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, _SIZED):
        _tick(len(owner) // 64)
    if isinstance(owner, _TEXT):
        return _check_text_method(owner, getattr(obj, "__name__", ""), args, kwargs)
    if isinstance(owner, int) and getattr(obj, "__name__", "") == "to_bytes":
        length = _arg(args, kwargs, 0, "length", 1)
        if isinstance(length, int):
            _too_big(length, "`.to_bytes()`")
    return args


def _describe(obj: Any) -> str:
    if isinstance(obj, Macro):
        return f"the macro `{obj.name}`"
    name = getattr(obj, "__name__", None)
    return f"`{name}()`" if isinstance(name, str) else "a call"


def _check_after_call(obj: Any, args: tuple[Any, ...], result: Any) -> None:
    name = getattr(obj, "__name__", None)
    what = _describe(obj)
    _check_result(result, what)
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, _SIZED) and isinstance(name, str) and modifies_known_mutable(owner, name):
        _too_big(len(owner), what)  # l.extend(l) doubles; whatever was added is charged
        for arg in args:
            size, visited = _measure(arg, _limits().value)
            _tick(visited)
            _build(size)


class _Counted:
    """A ``for`` loop's iterable: one step per item.  Keeps ``len`` so ``loop.length`` is cheap."""

    __slots__ = ("_budget", "_iterator", "_length")

    def __init__(self, iterable: Iterable[Any], budget: _Budget) -> None:
        self._length = (
            len(iterable) if isinstance(iterable, (*_SIZED, range, KeysView, ValuesView, ItemsView)) else None
        )
        self._iterator = iter(iterable)
        self._budget = budget

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> Any:
        item = next(self._iterator)
        self._budget.tick()
        return item

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("this loop's iterable has no length")
        return self._length


def _guard_iter(iterable: Any) -> Any:
    budget = _BUDGET.get()
    if budget is None or isinstance(iterable, (_Counted, Undefined)):
        return iterable
    return _Counted(iterable, budget)


# -- globals and filters ------------------------------------------------------------------------------------------


def _range(*args: int) -> range:
    """``range`` capped at ``RenderLimits.range`` items."""
    numbers = range(*args)
    limit = _limits().range
    try:
        size = len(numbers)
    except OverflowError:  # more items than an index can count
        size = limit + 1
    if size > limit:
        raise _Refused(f"range() would have more than {limit} items", _FIX_LOOPS)
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # Jinja's parameter names
    if isinstance(n, int) and isinstance(max, int):
        _too_big((n if n > 0 else 0) * (max if max > 0 else 0) * 12, "`lipsum()`")
    return generate_lorem_ipsum(n, html, min, max)


@pass_environment
def _sum(environment: Environment, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
    """Jinja's ``sum``, in linear time when it concatenates lists or tuples (``sum(start=[])``)."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if not isinstance(start, (list, tuple)):
        return sum(iterable, start)
    total = list(start)
    for item in iterable:
        if not isinstance(item, type(start)):
            kind = type(start).__name__
            raise TypeError(f'can only concatenate {kind} (not "{type(item).__name__}") to {kind}')
        total.extend(item)
        _too_big(len(total), "the `sum` filter")
    return total if isinstance(start, list) else tuple(total)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _filter_center(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    width = _arg(args, kwargs, 0, "width", 80)
    if isinstance(width, int):
        _too_big(width, "the `center` filter")
    return value


def _filter_indent(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    width = _arg(args, kwargs, 0, "width", 4)
    prefix = width if isinstance(width, int) else len(width) if isinstance(width, str) else 0
    text = _text_of(value)
    _too_big(len(text) + (text.count("\n") + 1) * max(prefix, 0), "the `indent` filter")
    return value


def _filter_wordwrap(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    width = _arg(args, kwargs, 0, "width", 79)
    wrapstring = _arg(args, kwargs, 2, "wrapstring", None)
    if isinstance(width, int) and width > 0:
        text = _text_of(value)
        lines = len(text) // width + text.count("\n") + 1
        _too_big(len(text) + lines * (1 if wrapstring is None else _text_size(wrapstring)), "the `wordwrap` filter")
    return value


def _filter_replace(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    _check_text(old, "the `replace` filter")
    _check_text(new, "the `replace` filter")
    count = _arg(args, kwargs, 2, "count", None)
    _check_replace(_text_of(value), str(old), str(new), -1 if count is None else count, "the `replace` filter")
    return value


def _filter_format(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    _check_percent(_text_of(value), kwargs or args, "the `format` filter")
    return value


def _filter_join(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    items = value if isinstance(value, (list, tuple)) else list(value)
    separator = _text_size(_arg(args, kwargs, 0, "d", ""))
    _too_big(sum(_text_size(item) for item in items) + separator * max(len(items) - 1, 0), "the `join` filter")
    return items


def _filter_count(name: str, index: int, param: str) -> Callable[[Any, tuple[Any, ...], Mapping[str, Any]], Any]:
    def check(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        count = _arg(args, kwargs, index, param)
        if isinstance(count, int):
            _too_big(count, f"the `{name}` filter")
        return value

    return check


def _filter_case_keys(
    name: str, case_index: int, attribute_index: int | None, *, multi: bool = False
) -> Callable[[Any, tuple[Any, ...], Mapping[str, Any]], Any]:
    """``sort``, ``unique``, ``min``, ``max``, ``groupby`` lower-case every key they compare
    (unless ``case_sensitive``): bound the text of those keys, which they copy."""

    def check(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        if _arg(args, kwargs, case_index, "case_sensitive", False):
            return value
        items = value if isinstance(value, (list, tuple)) else list(value)
        attribute = None if attribute_index is None else _arg(args, kwargs, attribute_index, "attribute")
        keys: Iterable[Any] = items
        if attribute is not None:
            if multi:
                getter = make_multi_attrgetter(_env(), attribute)
                keys = chain.from_iterable(getter(item) for item in items)
            else:
                keys = map(make_attrgetter(_env(), attribute), items)
        size = sum(len(key) for key in keys if isinstance(key, str))
        _too_big(size, f"the `{name}` filter")
        _build(size)
        return items

    return check


def _filter_dictsort(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    if not _arg(args, kwargs, 0, "case_sensitive", False) and isinstance(value, Mapping):
        keys = value.keys() if _arg(args, kwargs, 1, "by", "key") == "key" else value.values()
        size = sum(len(key) for key in keys if isinstance(key, str))
        _too_big(size, "the `dictsort` filter")
        _build(size)
    return value


def _filter_tojson(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    indent = _arg(args, kwargs, 0, "indent", None)
    size, visited = _measure(value, _limits().value, indent if isinstance(indent, int) and indent > 0 else 0)
    _tick(visited)
    _too_big(size, "the `tojson` filter")
    return value


def _filter_pprint(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    size, visited = _measure(value, _limits().value, 1)
    _tick(visited)
    _too_big(2 * size, "the `pprint` filter")
    return value


def _filter_urlize(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    text = _text_of(value)
    extra = sum(_text_size(_arg(args, kwargs, i, name, "")) for i, name in ((2, "target"), (3, "rel")))
    links = sum(1 for word in text.split() if "." in word or "@" in word or ":" in word)
    _too_big(2 * len(text) + links * (extra + 64), "the `urlize` filter")
    return value


# Checks run before a filter, on its value and arguments; each may return a materialised value.
_FILTER_CHECKS: Mapping[str, Callable[[Any, tuple[Any, ...], Mapping[str, Any]], Any]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "wordwrap": _filter_wordwrap,
    "replace": _filter_replace,
    "format": _filter_format,
    "join": _filter_join,
    "batch": _filter_count("batch", 0, "linecount"),
    "slice": _filter_count("slice", 0, "slices"),
    "tojson": _filter_tojson,
    "pprint": _filter_pprint,
    "urlize": _filter_urlize,
    "sort": _filter_case_keys("sort", 1, 2, multi=True),
    "unique": _filter_case_keys("unique", 0, 1),
    "min": _filter_case_keys("min", 0, 1),
    "max": _filter_case_keys("max", 0, 1),
    "groupby": _filter_case_keys("groupby", 2, 0),
    "dictsort": _filter_dictsort,
}
# Filters that run Python code per item (or per character of a string): a step for each.
_PER_ITEM = frozenset(
    {
        "batch", "dictsort", "groupby", "indent", "items", "map", "max", "min", "pprint", "reject", "rejectattr",
        "select", "selectattr", "slice", "sort", "striptags", "sum", "title", "tojson", "unique", "urlencode",
        "urlize", "wordwrap", "xmlattr",
    }
)  # fmt: skip
# Filters that print their value: a list of big strings must not be printed whole.
_STRINGIFYING = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "replace", "safe", "slug",
        "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
        "xmlattr",
    }
)  # fmt: skip


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: checks before, steps for what it reads, the result's size after."""
    check = _FILTER_CHECKS.get(name)
    prints = name in _STRINGIFYING
    per_step = 1 if name in _PER_ITEM else 64  # items (or characters) read per step
    what = f"the `{name}` filter"

    @functools.wraps(func)  # keeps Jinja's pass_context/pass_environment marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        lead = 1 if args and isinstance(args[0], (Context, EvalContext, Environment)) else 0
        if len(args) > lead:
            value, rest = args[lead], args[lead + 1 :]
            _tick(1 + len(value) // per_step if isinstance(value, (*_SIZED, range)) else 1)
            if prints:
                _check_text(value, what)
            if check is not None:
                checked = check(value, rest, kwargs)
                if checked is not value and isinstance(checked, list):  # it read an iterator into a list
                    _tick(len(checked) // per_step)
                args = (*args[:lead], checked, *rest)
        result = func(*args, **kwargs)
        _check_result(result, what)
        return result

    return guarded


def _guard_test(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a test (``is``, ``select``, ``selectattr``): a step, plus one per 64 characters it reads."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        lead = 1 if args and isinstance(args[0], (Context, EvalContext, Environment)) else 0
        _tick(1 + sum(len(arg) // 64 for arg in args[lead:] if isinstance(arg, _SIZED)))
        return func(*args, **kwargs)

    return guarded


# -- the environment ----------------------------------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's compiler, routing loops, ``~`` and output through the environment's guards."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._loop_iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.guard_iter(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja's own visit_Concat decides between markup_join and str_join.
        markup = "context.eval_ctx.volatile" if frame.eval_ctx.volatile else str(bool(frame.eval_ctx.autoescape))
        self.write("environment.guard_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")

    def visit_EvalContextModifier(self, node: nodes.EvalContextModifier, frame: Frame) -> None:
        # Jinja evaluates the option at compile time; only fold a literal, as nothing else may run.
        for keyword in node.options:
            self.writeline(f"context.eval_ctx.{keyword.key} = ")
            self.visit(keyword.value, frame)
            if isinstance(keyword.value, nodes.Const):
                setattr(frame.eval_ctx, keyword.key, keyword.value.value)
            else:
                frame.eval_ctx.volatile = True

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData):  # only literal text is folded at compile time
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.guard_piece({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.guard_piece(")
        super()._output_child_pre(node, frame, finalize)
        self.write("environment.guard_text(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")")
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class _BoundedEnvironment(SandboxedEnvironment):
    """The sandbox plus the limits of :class:`RenderLimits` (counted in the current render's budget)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False, optimized=False)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        filters = {**self.filters, "slug": slug, "sum": _sum}
        self.filters = {name: _guard_filter(name, func) for name, func in filters.items()}
        tests = cast(dict[str, Callable[..., Any]], self.tests)
        self.tests = {name: _guard_test(func) for name, func in tests.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        _check_result(result, f"`{operator}`")
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            # Running template code (a macro, caller(), loop(), self.block()) costs up to twenty
            # times a loop iteration: charge it more, so the step limit stays about as fast.
            budget.tick(16 if isinstance(obj, (Macro, LoopContext, BlockReference)) else 1)
            if budget.depth >= budget.limits.depth:
                raise _Refused(f"macros or calls nested more than {budget.limits.depth} deep", _FIX_DEPTH)
            budget.depth += 1
        try:
            args = _check_call(obj, args, kwargs)
            result = super().call(context, obj, *args, **kwargs)
            _check_after_call(obj, args, result)
            return result
        finally:
            if budget is not None:
                budget.depth -= 1

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's own ``str.format`` sandboxing, with :class:`_Formatter`'s bounds."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter = _EscapeFormatter(self, escape=f_self.escape) if isinstance(f_self, Markup) else _Formatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    # Called by the compiled template (see _BoundedCodeGenerator).

    def guard_iter(self, iterable: Any) -> Any:
        return _guard_iter(iterable)

    def guard_text(self, value: Any) -> Any:
        """Before ``str(value)`` is printed: a list of big strings must not print whole."""
        if not isinstance(value, (str, int, float)) and value is not None:
            _check_text(value, "printing a value")
        return value

    def guard_piece(self, text: str) -> str:
        """Each piece of output, yielded or buffered (macros, ``set`` blocks, filter blocks)."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.piece(len(text))
        return text

    def guard_concat(self, pieces: tuple[Any, ...], markup: bool) -> str:
        _too_big(sum(_text_size(piece) for piece in pieces), "`~`")
        result = markup_join(pieces) if markup else str_join(pieces)
        _tick()
        _check_result(result, "`~`")
        return result


def slug(value: object) -> str:
    """A branch-safe form of ``value``: ``apps:podinfo`` -> ``apps-podinfo``."""
    text = re.sub(r"[^A-Za-z0-9._/-]+", "-", str(value)).strip("-./")
    return re.sub(r"/{2,}|\.{2,}", "-", text) or "update"


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return _BoundedEnvironment()


@lru_cache(maxsize=64)
def compile_template(source: str) -> Template:
    """Parse ``source`` once; raises jinja2's TemplateSyntaxError for the config loader to place.

    Render it with :func:`render`: only there do the step, time and output limits apply.
    """
    return _env().from_string(source)


# What every template can rely on; config loading renders each template against it, so a
# misspelt variable is reported when automator.yaml is read, not after a branch was pushed.
SAMPLE_CONTEXT: Mapping[str, Any] = {
    "group": "apps:podinfo",
    "prefix": "automator/",
    "base": "main",
    "updates": [
        {
            "policy": "apps:podinfo",
            "image": "ghcr.io/stefanprodan/podinfo",
            "repository": "ghcr.io/stefanprodan/podinfo",
            "tag": "6.5.0",
            "digest": None,
            "old": "6.4.0",
            "new": "6.5.0",
            "files": [{"file": "apps/podinfo/deployment.yaml", "line": 19}],
            "source": {"file": "apps/podinfo/policy.yaml", "line": 4},
        }
    ],
    "changes": [
        {"policy": "apps:podinfo", "file": "apps/podinfo/deployment.yaml", "line": 19, "old": "6.4.0", "new": "6.5.0"}
    ],
}


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    what: str,
    limits: RenderLimits = LIMITS,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Render a template within ``limits``; any failure is a :class:`ConfigError` naming the template.

    ``what`` says which template ("commit message", ...); the message adds its setting.
    """
    setting = SETTINGS.get(what)
    label = f"the {what} template ({setting})" if setting else f"the {what} template"
    token = _BUDGET.set(_Budget(limits, clock))
    try:
        return _render(compile_template(source), context, limits.output)
    except _Refused as exc:
        raise ConfigError(f"{label} failed: {exc.reason}; {exc.fix}; check automator.yaml") from None
    except TemplateError as exc:
        raise ConfigError(f"{label} failed: {exc}; check automator.yaml") from None
    except Exception as exc:  # a template can divide by zero or index past a list: still the user's input
        raise ConfigError(f"{label} failed: {type(exc).__name__}: {exc}; check automator.yaml") from None
    finally:
        _BUDGET.reset(token)


def _render(template: Template, context: Mapping[str, Any], cap: int) -> str:
    """Join the output as it is produced, stopping as soon as it passes ``cap`` characters."""
    pieces: list[str] = []
    size = 0
    stream = template.generate(**context)
    try:
        for piece in stream:
            size += len(piece)
            if size > cap:
                raise _Refused(f"its output passed {cap} characters", _FIX_OUTPUT)
            pieces.append(piece)
    finally:
        if isinstance(stream, types.GeneratorType):
            stream.close()
    return "".join(pieces)
