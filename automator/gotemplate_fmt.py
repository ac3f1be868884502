"""Go's view of Python values for :mod:`automator.gotemplate`: printing (``fmt``), truth, order.

Python values stand for Go values this way (see :mod:`automator.gotemplate` for the data model):
``str`` string, ``bool`` bool, ``int`` int, ``float`` float64, ``None`` a nil interface,
``list``/``tuple`` a slice, a ``Mapping`` a map, a dataclass a struct (fields in declaration
order; ``__go_embedded__`` names the embedded ones, ``__go_type__`` the Go type name, a method
``String`` makes it a ``fmt.Stringer``).  :data:`MISSING` is Go's invalid value: what a missing
map key yields, printed ``<no value>`` by an action.

Printing follows ``fmt``'s ``%v``: ``map[k:v ...]`` with keys sorted as ``internal/fmtsort``
sorts them, ``[a b]``, ``{f1 f2}`` (``%+v``: ``{Name:f1 ...}``), ``<nil>``, floats as
``strconv.FormatFloat(f, 'g', -1, 64)`` (``1e+06``, ``1.5``).  ``printf`` knows the verbs
``%v %+v %s %q %d %t %f %e %g %x %X %c %%`` with flags, width and precision, and writes Go's
``%!verb(type=value)`` for a wrong type, ``%!s(MISSING)`` and ``%!(EXTRA ...)``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value`` (a missing map key): false, printed ``<no value>``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class GoError(Exception):
    """An execution error, as Go's ``text/template`` would report it (the evaluator adds where)."""


class Int64(int):
    """An ``int64`` (what Sprig's arithmetic returns): printed as an int, but not an ``int`` to a
    parameter that wants one (``trunc (add 1 2) "x"`` fails in Go, and so here)."""

    __slots__ = ()


class GoMap(dict[Any, Any]):
    """A map that knows its element type's zero value (what ``index`` yields for a missing key)
    and its Go type name (for error messages).  A plain ``dict`` is ``map[string]interface{}``."""

    def __init__(self, items: Mapping[Any, Any] | None = None, *, zero: Any = None, go_type: str = "") -> None:
        super().__init__(items or {})
        self.zero = zero
        self.go_type = go_type

    @property
    def string_keys(self) -> bool:
        """Whether ``.name`` can look a key up (Go: the key type is string)."""
        return not self.go_type or self.go_type.startswith("map[string]")


def go_type_name(v: Any) -> str:
    """The Go type a value stands for, as error messages and ``%!d(string=x)`` name it."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Int64):
        return "int64"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoMap) and v.go_type:
        return v.go_type
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    name = getattr(type(v), "__go_type__", None)
    return name if isinstance(name, str) else type(v).__name__


# -- truth and order ---------------------------------------------------------------------------


def is_true(v: Any) -> bool:
    """Go's ``template.IsTrue``: the zero value of its type is false; structs are always true."""
    if v is None or v is MISSING:
        return False
    if isinstance(v, bool | int | float | str):
        return bool(v)
    if isinstance(v, Mapping | list | tuple):
        return len(v) > 0
    return True


def _sort_key(v: Any) -> Any:
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, int | float):
        return (1, v)
    if isinstance(v, str):
        return (2, v.encode("utf-8", "surrogatepass"))
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (3, tuple(_sort_key(getattr(v, f.name)) for f in dataclasses.fields(v)))
    if v is None:
        return (4,)
    return (5, repr(v))


def sorted_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """A map's entries in ``internal/fmtsort`` order (range and printing both use it)."""
    return sorted(m.items(), key=lambda kv: _sort_key(kv[0]))


# -- fmt ------------------------------------------------------------------------------------------


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat(f, verb, prec, 64)`` for the verbs ``g``, ``e``, ``f``."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if verb == "f":
        return f"{f:.{6 if prec < 0 else prec}f}" if prec >= 0 else _shortest_f(f)
    if verb == "e":
        if prec < 0:
            digits, exp = _shortest(f)
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return _exp(("-" if math.copysign(1, f) < 0 else "") + mant, exp)
        text = f"{f:.{prec}e}"
        mant, _, e = text.partition("e")
        return _exp(mant, int(e))
    # 'g'
    if prec < 0:  # shortest: %e when the exponent is < -4 or >= 6 (strconv's eprec for shortest)
        digits, exp = _shortest(f)
        neg = "-" if math.copysign(1, f) < 0 else ""
        if exp < -4 or exp >= 6:
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return _exp(neg + mant, exp)
        return neg + _place(digits, exp)
    text = f"{f:.{max(prec, 1)}g}"
    if "e" in text:
        mant, _, e = text.partition("e")
        return _exp(mant, int(e))
    return text


def _shortest(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and its decimal exponent (d.ddd x 10^exp)."""
    if f == 0:
        return "0", 0
    _sign, digits, exponent = Decimal(repr(abs(f))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    exp = len(digits) + exponent - 1
    return text, exp


def _place(digits: str, exp: int) -> str:
    """Digits d1d2d3 with the decimal point after position exp+1 (%f form, no trailing zeros)."""
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if len(digits) <= exp + 1:
        return digits + "0" * (exp + 1 - len(digits))
    return digits[: exp + 1] + "." + digits[exp + 1 :]


def _shortest_f(f: float) -> str:
    digits, exp = _shortest(f)
    return ("-" if math.copysign(1, f) < 0 else "") + _place(digits, exp)


def _exp(mant: str, exp: int) -> str:
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _stringer(v: Any) -> Callable[[], Any] | None:
    method = getattr(type(v), "String", None)
    if callable(method) and not isinstance(v, str | int | float | Mapping | list | tuple):
        return lambda: method(v)
    return None


def fmt_v(v: Any, plus: bool = False, top: bool = True) -> str:
    """``fmt.Sprint``'s ``%v`` (``%+v`` with ``plus``) of one value."""
    if v is MISSING:
        return "<nil>" if not top else "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, str):
        return v
    stringer = _stringer(v)
    if stringer is not None:
        return str(stringer())
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{fmt_v(k, plus, False)}:{fmt_v(x, plus, False)}" for k, x in sorted_items(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(fmt_v(x, plus, False) for x in v) + "]"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        parts = []
        for f in dataclasses.fields(v):
            text = fmt_v(getattr(v, f.name), plus, False)
            parts.append(f"{f.name}:{text}" if plus else text)
        return "{" + " ".join(parts) + "}"
    return str(v)


def sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(fmt_v(a, top=False))
    return "".join(out)


def sprintln(args: Sequence[Any]) -> str:
    return " ".join(fmt_v(a, top=False) for a in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.S)


def _pad(text: str, width: int | None, flags: str, numeric: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        body = text[len(sign) :]
        return sign + "0" * (width - len(text)) + body
    return " " * (width - len(text)) + text


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """``strconv.Quote``: Go's escapes; printable Unicode kept."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _bad(verb: str, a: Any) -> str:
    if a is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(a)}={fmt_v(a, top=False)})"


def _int_verb(verb: str, a: int, flags: str, prec: int | None) -> str:
    neg = a < 0
    n = -a if neg else a
    if verb == "d":
        body = str(n)
    elif verb == "x":
        body = f"{n:x}"
    elif verb == "X":
        body = f"{n:X}"
    elif verb == "o":
        body = f"{n:o}"
    elif verb == "b":
        body = f"{n:b}"
    else:  # c
        return chr(a) if 0 <= a <= 0x10FFFF else "\ufffd"
    if prec is not None:
        body = body.rjust(prec, "0")
    if "#" in flags and verb in "xX":
        body = "0" + verb + body
    sign = "-" if neg else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + body


def sprintf(fmt: str, args: Sequence[Any], budget: Callable[[int], None]) -> str:
    """``fmt.Sprintf`` for the verbs in the module docstring; ``budget`` is told each width first."""
    out: list[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _VERB.match(fmt, j)
        assert m is not None
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        i = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            width = args[argi] if argi < len(args) and isinstance(args[argi], int) else None
            argi += 1
        elif width_s:
            width = int(width_s)
        if prec_s == "*":
            prec = args[argi] if argi < len(args) and isinstance(args[argi], int) else None
            argi += 1
        elif prec_s is not None:
            prec = int(prec_s) if prec_s else 0
        if width is not None:
            budget(width)
        if prec is not None:
            budget(prec)
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        if a is MISSING:
            a = None
        out.append(_one_verb(verb, a, flags, width, prec))
    if argi < len(args):
        extra = ", ".join(f"{go_type_name(a)}={fmt_v(a, top=False)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _one_verb(verb: str, a: Any, flags: str, width: int | None, prec: int | None) -> str:
    """One verb applied to one operand, as ``fmt``'s ``printArg``/``printValue`` do."""
    if verb == "T":
        return _pad("<nil>" if a is None else go_type_name(a), width, flags)
    if a is None:
        return _pad("<nil>" if verb == "v" else f"%!{verb}(<nil>)", width, flags)
    if verb in "vsxXq":
        stringer = _stringer(a)
        if stringer is not None:
            return _leaf(verb, str(stringer()), flags, width, prec)
    if isinstance(a, bool | int | float | str):
        return _leaf(verb, a, flags, width, prec)
    plus = "+" in flags and verb == "v"
    if isinstance(a, Mapping):
        items = [
            f"{_one_verb(verb, k, flags, width, prec)}:{_one_verb(verb, x, flags, width, prec)}"
            for k, x in sorted_items(a)
        ]
        return "map[" + " ".join(items) + "]"
    if isinstance(a, list | tuple):
        return "[" + " ".join(_one_verb(verb, x, flags, width, prec) for x in a) + "]"
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        parts = []
        for f in dataclasses.fields(a):
            text = _one_verb(verb, getattr(a, f.name), flags, width, prec)
            parts.append(f"{f.name}:{text}" if plus else text)
        return "{" + " ".join(parts) + "}"
    return _leaf(verb, str(a), flags, width, prec)


def _leaf(verb: str, a: Any, flags: str, width: int | None, prec: int | None) -> str:
    if verb == "v":
        flags = flags.replace("+", "")  # %+v: field names (plusV), never a sign
    if isinstance(a, bool):
        ok = verb in "vt"
        return _pad(("true" if a else "false") if ok else _bad(verb, a), width, flags)
    if isinstance(a, int):
        if verb == "v":
            verb = "d"
        if verb in "dxXobc":
            return _pad(_int_verb(verb, a, flags, prec), width, flags, numeric=verb != "c")
        if verb == "q":
            return _pad("'" + go_quote(chr(a))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'", width, flags)
        if verb == "U":
            return _pad(f"U+{a:04X}" if a >= 0 else f"U+-{-a:04X}", width, flags)
        return _pad(_bad(verb, a), width, flags)
    if isinstance(a, float):
        if verb == "v":
            text = format_float(a, "g", -1 if prec is None else prec)
        elif verb in "feEgG":
            v = verb.lower()
            text = format_float(a, v, 6 if prec is None and v in "fe" else (-1 if prec is None else prec))
            if verb in "EG":
                text = text.upper()
        else:
            return _pad(_bad(verb, a), width, flags)
        if "+" in flags and not text.startswith("-"):
            text = "+" + text
        return _pad(text, width, flags, numeric=True)
    # a string
    if verb in "vs":
        return _pad(a if prec is None else a[:prec], width, flags)
    if verb == "q":
        return _pad(go_quote(a), width, flags)
    if verb in "xX":
        text = a.encode("utf-8", "surrogatepass").hex()
        return _pad(text.upper() if verb == "X" else text, width, flags)
    return _pad(_bad(verb, a), width, flags)
