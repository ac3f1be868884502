"""The functions a Flux commit message template can call: Go's builtins and a part of Sprig.

Flux registers ``sprig.HermeticTxtFuncMap()`` (Sprig v3.3 without its clock, random, environment
and DNS functions).  Implemented here: Go's ``and or not len index slice print printf println eq
ne lt le gt ge`` and the Sprig functions in :data:`SPRIG` (strings, hashes, encodings, lists,
dicts, defaults, integer arithmetic, paths), each with Sprig's argument order and Go's argument
type checks.  The other Sprig names (:data:`SPRIG_UNSUPPORTED`: dates, regular expressions,
JSON, semver, crypto, case conversions of ``xstrings``, ...) and Go's ``call html js urlquery``
are refused when the template is parsed, naming the function; a name neither Go nor Sprig knows
is refused as Go refuses it (``function "x" not defined``).

A function is ``Func(params, variadic, impl)``: ``params`` are Go parameter kinds (``string``,
``int``, ``bool``, ``any``, ``list``) that the evaluator checks and converts arguments to, as
``text/template``'s ``evalArg``/``validateType`` do.  Functions that build text check the size
before they build it (``budget``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import posixpath
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automator.gotemplate_fmt import (
    MISSING,
    GoError,
    GoMap,
    Int64,
    fmt_v,
    go_quote,
    go_type_name,
    is_true,
    sprint,
    sprintf,
    sprintln,
)

Budget = Callable[[int], None]


@dataclass(frozen=True)
class Func:
    params: tuple[str, ...]
    variadic: str | None
    impl: Callable[..., Any]
    needs_budget: bool = False


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _wrap64(n: int) -> int:
    return (n - INT64_MIN) % 2**64 + INT64_MIN


# -- Go builtins --------------------------------------------------------------------------------


def _basic(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return ""


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise GoError("missing argument for comparison")
    ka = _basic(a)
    for b in bs:
        kb = _basic(b)
        if ka and kb:
            if ka != kb:
                raise GoError("incompatible types for comparison")
            if a == b:
                return True
        elif a is None or b is None or a is MISSING or b is MISSING:
            if (a is None or a is MISSING) and (b is None or b is MISSING):
                return True
        else:
            if not ka and not kb and _comparable(a) and _comparable(b) and type(a) is type(b):
                if a == b:
                    return True
                continue
            if not ka and not _comparable(a):
                raise GoError(f"uncomparable type {go_type_name(a)}: {fmt_v(a, top=False)}")
            if not kb and not _comparable(b):
                raise GoError(f"uncomparable type {go_type_name(b)}: {fmt_v(b, top=False)}")
            raise GoError("incompatible types for comparison")
    return False


def _comparable(v: Any) -> bool:
    return not isinstance(v, Mapping | list | tuple)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _basic(a), _basic(b)
    if not ka or ka == "bool":
        raise GoError("invalid type for comparison")
    if not kb or kb == "bool":
        raise GoError("invalid type for comparison")
    if ka != kb:
        raise GoError("incompatible types for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _not(a: Any) -> bool:
    return not is_true(a)


def _len(v: Any) -> int:
    if v is MISSING or v is None:
        raise GoError("len of nil pointer")
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, Mapping | list | tuple):
        return len(v)
    raise GoError(f"len of type {go_type_name(v)}")


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise GoError("index of untyped nil")
    for ix in indexes:
        if isinstance(item, list | tuple | str):
            if not isinstance(ix, int) or isinstance(ix, bool):
                raise GoError(f"cannot index slice/array with type {go_type_name(ix)}")
            seq = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
            if ix < 0 or ix >= len(seq):
                raise GoError(f"index out of range: {ix}")
            item = seq[ix]
        elif isinstance(item, Mapping):
            if ix is MISSING or ix is None:
                raise GoError("value is nil; should be of type string")
            zero = item.zero if isinstance(item, GoMap) else None
            try:
                item = item.get(ix, zero)
            except TypeError as exc:  # an unhashable key: a list or a map
                raise GoError(f"value has type {go_type_name(ix)}; should be string") from exc
        else:
            raise GoError(f"can't index item of type {go_type_name(item)}")
    return item


# -- Sprig --------------------------------------------------------------------------------------


def _sprig_slice(item: Any, *indexes: Any) -> Any:
    """Sprig's ``slice`` (it replaces Go's builtin of that name in Flux's function map): lists only."""
    if item is None:
        raise GoError(_NIL_PANIC)
    if not isinstance(item, list | tuple):
        kind = "string" if isinstance(item, str) else "map" if isinstance(item, Mapping) else go_type_name(item)
        raise GoError(f"list should be type of slice or array but {kind}")
    if not item:
        return None
    start = _to_int64(indexes[0]) if indexes else 0
    end = _to_int64(indexes[1]) if len(indexes) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise GoError(f"reflect: slice index out of range: {start}:{end}")
    return list(item[start:end])


def _strval(v: Any) -> str:
    if v is MISSING or v is None:
        return "<nil>"
    return fmt_v(v, top=False)


def _trunc(c: int, s: str) -> str:
    b = s.encode("utf-8", "surrogatepass")
    if c < 0 and len(b) + c > 0:
        return b[len(b) + c :].decode("utf-8", "replace")
    if c >= 0 and len(b) > c:
        return b[:c].decode("utf-8", "replace")
    return s


def _is_separator(ch: str) -> bool:
    # strings.Title's isSeparator
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _title(s: str) -> str:
    out, prev = [], " "
    for ch in s:
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _untitle(s: str) -> str:
    out, prev = [], " "
    for ch in s:
        out.append(ch.lower() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


_GO_SPACE = (  # unicode.IsSpace
    " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _quote(*strs: Any) -> str:
    return " ".join(go_quote(_strval(s)) for s in strs if s is not None and s is not MISSING)


def _squote(*strs: Any) -> str:
    return " ".join(f"'{_strval(s)}'" for s in strs if s is not None and s is not MISSING)


def _cat(*v: Any) -> str:
    return " ".join(fmt_v(x, top=False) for x in v if x is not None and x is not MISSING)


def _strslice(v: Any) -> list[str]:
    if isinstance(v, list | tuple):
        return [_strval(x) for x in v if x is not None and x is not MISSING]
    if v is None or v is MISSING:
        return []
    return [_strval(v)]


def _join(budget: Budget, sep: str, v: Any) -> str:
    parts = _strslice(v)
    budget(sum(len(p) for p in parts) + len(sep) * max(len(parts) - 1, 0))
    return sep.join(parts)


def _repeat(budget: Budget, count: int, s: str) -> str:
    if count < 0:
        raise GoError("strings: negative Repeat count")
    budget(count * len(s))
    return s * count


def _indent(budget: Budget, spaces: int, v: str) -> str:
    if spaces < 0:
        raise GoError("strings: negative Repeat count")
    pad = " " * spaces
    budget(len(v) + len(pad) * (v.count("\n") + 1))
    return pad + v.replace("\n", "\n" + pad)


def _nindent(budget: Budget, spaces: int, v: str) -> str:
    return "\n" + _indent(budget, spaces, v)


def _replace(budget: Budget, old: str, new: str, src: str) -> str:
    if old:
        budget(len(src) + src.count(old) * max(len(new) - len(old), 0))
    else:
        budget(len(src) + (len(src) + 1) * len(new))
    return _go_replace_all(src, old, new)


def _go_replace_all(s: str, old: str, new: str) -> str:
    if old:
        return s.replace(old, new)
    # strings.ReplaceAll with an empty old inserts new around every rune
    return new + new.join(s) + (new if s else "")


def _substr(start: int, end: int, s: str) -> str:
    b = s.encode("utf-8", "surrogatepass")
    n = len(b)
    if start < 0:
        if end < 0 or end > n:
            raise GoError(f"runtime error: slice bounds out of range [:{end}] with length {n}")
        return b[:end].decode("utf-8", "replace")
    if end < 0 or end > n:
        if start > n:
            raise GoError(f"runtime error: slice bounds out of range [{start}:{n}]")
        return b[start:].decode("utf-8", "replace")
    if start > end:
        raise GoError(f"runtime error: slice bounds out of range [{start}:{end}]")
    return b[start:end].decode("utf-8", "replace")


def _abbrev(width: int, s: str) -> str:
    if width < 4:
        return s
    if len(s) <= width:
        return s
    return s[: width - 3] + "..."


def _empty(v: Any) -> bool:
    return not is_true(v)


def _default(d: Any, *given: Any) -> Any:
    if not given or _empty(given[0]):
        return d
    return given[0]


def _coalesce(*v: Any) -> Any:
    for x in v:
        if not _empty(x):
            return x
    return None


def _ternary(vt: Any, vf: Any, v: bool) -> Any:
    return vt if v else vf


def _list(*v: Any) -> list[Any]:
    return [None if x is MISSING else x for x in v]


def _dict(*v: Any) -> GoMap:
    out = GoMap(go_type="map[string]interface {}")
    for i in range(0, len(v), 2):
        key = _strval(v[i])
        out[key] = v[i + 1] if i + 1 < len(v) else ""
    return out


_NIL_PANIC = "runtime error: invalid memory address or nil pointer dereference"


def _as_list(v: Any, fn: str) -> list[Any]:
    if isinstance(v, list | tuple):
        return list(v)
    if v is None or v is MISSING:
        raise GoError(_NIL_PANIC)  # Sprig calls reflect.TypeOf(nil).Kind()
    kind = "string" if isinstance(v, str) else "map" if isinstance(v, Mapping) else go_type_name(v)
    raise GoError(f"Cannot find {fn} on type {kind}")


def _first(v: Any) -> Any:
    seq = _as_list(v, "first")
    return seq[0] if seq else None


def _last(v: Any) -> Any:
    seq = _as_list(v, "last")
    return seq[-1] if seq else None


def _rest(v: Any) -> Any:
    seq = _as_list(v, "rest")
    return seq[1:] if seq else None


def _initial(v: Any) -> Any:
    seq = _as_list(v, "initial")
    return seq[:-1] if seq else None


def _reverse(v: Any) -> Any:
    return list(reversed(_as_list(v, "reverse")))


def _uniq(v: Any) -> Any:
    out: list[Any] = []
    seen: set[tuple[type, Any]] = set()
    for x in _as_list(v, "uniq"):
        try:
            key = (type(x), x)
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # unhashable (a list, a map): compare with what is kept
            if any(_deep_equal(x, y) for y in out):
                continue
        out.append(x)
    return out


def _deep_equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _has(needle: Any, haystack: Any) -> bool:
    if haystack is None or haystack is MISSING:
        return False
    return any(_deep_equal(needle, x) for x in _as_list(haystack, "has"))


def _without(v: Any, *omit: Any) -> Any:
    return [x for x in _as_list(v, "without") if not any(_deep_equal(x, o) for o in omit)]


def _compact(v: Any) -> Any:
    return [x for x in _as_list(v, "compact") if not _empty(x)]


def _sort_alpha(v: Any) -> list[str]:
    if isinstance(v, list | tuple):
        return sorted(_strslice(v), key=lambda s: s.encode("utf-8", "surrogatepass"))
    return [_strval(v)]


def _append(v: Any, x: Any) -> list[Any]:
    return [*_as_list(v, "push"), x]


def _prepend(v: Any, x: Any) -> list[Any]:
    return [x, *_as_list(v, "prepend")]


def _concat(budget: Budget, *lists: Any) -> list[Any]:
    out: list[Any] = []
    for v in lists:
        out.extend(_as_list(v, "concat"))
        budget(len(out))
    return out


def _split_list(sep: str, orig: str) -> list[str]:
    if sep == "":
        return list(orig)
    return orig.split(sep)


def _split(sep: str, orig: str) -> GoMap:
    parts = _split_list(sep, orig)
    return GoMap({f"_{i}": p for i, p in enumerate(parts)}, zero="", go_type="map[string]string")


def _as_mapping(v: Any, fn: str) -> Mapping[Any, Any]:
    if isinstance(v, Mapping):
        return v
    raise GoError(f"wrong type for value; expected map[string]interface {{}}; got {go_type_name(v)}")


def _get(d: Any, key: str) -> Any:
    return _as_mapping(d, "get").get(key, "")


def _has_key(d: Any, key: str) -> bool:
    return key in _as_mapping(d, "hasKey")


def _keys(*dicts: Any) -> list[str]:
    # Sprig walks Go maps (random order); ours is one of its orders, sorted
    out: list[str] = []
    for d in dicts:
        out.extend(sorted(_as_mapping(d, "keys"), key=lambda s: str(s).encode("utf-8", "surrogatepass")))
    return out


def _values(d: Any) -> list[Any]:
    m = _as_mapping(d, "values")
    return [m[k] for k in sorted(m, key=lambda s: str(s).encode("utf-8", "surrogatepass"))]


def _pick(d: Any, *keys: str) -> GoMap:
    m = _as_mapping(d, "pick")
    return GoMap({k: m[k] for k in keys if k in m}, go_type="map[string]interface {}")


def _omit(d: Any, *keys: str) -> GoMap:
    m = _as_mapping(d, "omit")
    return GoMap({k: v for k, v in m.items() if k not in keys}, go_type="map[string]interface {}")


def _to_int64(v: Any) -> int:
    """Sprig's ``toInt64`` (``cast.ToInt64``): numbers, bools, numeric strings; else 0."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return _wrap64(v)
    if isinstance(v, float):
        return _wrap64(int(v)) if math.isfinite(v) else INT64_MIN
    if isinstance(v, str):
        text = _ZERO_DECIMAL.sub("", v)  # cast's trimZeroDecimal: "2.00" is 2, "2.5" is no int
        try:
            n = int(text, 8) if _OCTAL.fullmatch(text) else int(text, 0)
        except ValueError:
            return 0
        return n if INT64_MIN <= n <= INT64_MAX and text.strip() == text else 0
    return 0


_ZERO_DECIMAL = re.compile(r"(?<=[0-9])\.0*\Z")
_OCTAL = re.compile(r"[+-]?0[0-7_]+")


def _add(*v: Any) -> Int64:
    return Int64(_wrap64(sum(_to_int64(x) for x in v)))


def _add1(v: Any) -> Int64:
    return Int64(_wrap64(_to_int64(v) + 1))


def _sub(a: Any, b: Any) -> Int64:
    return Int64(_wrap64(_to_int64(a) - _to_int64(b)))


def _mul(a: Any, *v: Any) -> Int64:
    out = _to_int64(a)
    for x in v:
        out = _wrap64(out * _to_int64(x))
    return Int64(out)


def _div(a: Any, b: Any) -> int:
    x, y = _to_int64(a), _to_int64(b)
    if y == 0:
        raise GoError("runtime error: integer divide by zero")
    q = abs(x) // abs(y)
    return Int64(_wrap64(q if (x >= 0) == (y >= 0) else -q))


def _mod(a: Any, b: Any) -> int:
    x, y = _to_int64(a), _to_int64(b)
    if y == 0:
        raise GoError("runtime error: integer divide by zero")
    return Int64(x - _div(x, y) * y)


def _max(a: Any, *v: Any) -> Int64:
    return Int64(max([_to_int64(a), *(_to_int64(x) for x in v)]))


def _min(a: Any, *v: Any) -> Int64:
    return Int64(min([_to_int64(a), *(_to_int64(x) for x in v)]))


def _atoi(a: str) -> int:
    try:
        n = int(a, 10) if a.strip() == a and a.lstrip("+-").isdigit() else 0
    except ValueError:
        return 0
    return n if INT64_MIN <= n <= INT64_MAX else 0


def _plural(one: str, many: str, count: int) -> str:
    return one if count == 1 else many


def _b64dec(s: str) -> str:
    try:
        return base64.b64decode(s.encode(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return str(exc)


def _b32dec(s: str) -> str:
    try:
        return base64.b32decode(s.encode()).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return str(exc)


def _go_path_dir(p: str) -> str:
    d = posixpath.dirname(p)
    return posixpath.normpath(d) if d else "."


def _go_clean(p: str) -> str:
    if p == "":
        return "."
    out = posixpath.normpath(p)
    return out[1:] if out.startswith("//") else out


def _go_base(p: str) -> str:
    if p == "":
        return "."
    p = p.rstrip("/")
    return p.rsplit("/", 1)[-1] if p else "/"


def _go_ext(p: str) -> str:
    i = len(p) - 1
    while i >= 0 and p[i] != "/":
        if p[i] == ".":
            return p[i:]
        i -= 1
    return ""


def _hash(name: str) -> Callable[[str], str]:
    return lambda s: hashlib.new(name, s.encode("utf-8", "surrogatepass")).hexdigest()


S, N, A, B, L, D = "string", "int", "any", "bool", "list", "map[string]interface {}"

BUILTINS: dict[str, Func] = {
    "and": Func((A,), A, lambda *a: a[-1]),  # short-circuit: the evaluator handles and/or
    "or": Func((A,), A, lambda *a: a[-1]),
    "not": Func((A,), None, _not),
    "len": Func((A,), None, _len),
    "index": Func((A,), A, _index),
    "print": Func((), A, lambda *a: sprint(a), needs_budget=False),
    "println": Func((), A, lambda *a: sprintln(a)),
    "eq": Func((A,), A, _eq),
    "ne": Func((A, A), None, _ne),
    "lt": Func((A, A), None, _lt),
    "le": Func((A, A), None, _le),
    "gt": Func((A, A), None, _gt),
    "ge": Func((A, A), None, _ge),
}


def _printf(budget: Budget, fmt: str, *args: Any) -> str:
    return sprintf(fmt, args, budget)


BUILTINS["printf"] = Func((S,), A, _printf, needs_budget=True)

SPRIG: dict[str, Func] = {
    # strings
    "trunc": Func((N, S), None, _trunc),
    "trim": Func((S,), None, lambda s: s.strip(_GO_SPACE)),
    "upper": Func((S,), None, str.upper),
    "lower": Func((S,), None, str.lower),
    "title": Func((S,), None, _title),
    "untitle": Func((S,), None, _untitle),
    "substr": Func((N, N, S), None, _substr),
    "repeat": Func((N, S), None, _repeat, needs_budget=True),
    "trimAll": Func((S, S), None, lambda a, b: b.strip(a)),
    "trimall": Func((S, S), None, lambda a, b: b.strip(a)),
    "trimSuffix": Func((S, S), None, lambda a, b: b[: -len(a)] if a and b.endswith(a) else b),
    "trimPrefix": Func((S, S), None, lambda a, b: b[len(a) :] if b.startswith(a) else b),
    "nospace": Func((S,), None, lambda s: "".join(ch for ch in s if ch not in _GO_SPACE)),
    "contains": Func((S, S), None, lambda sub, s: sub in s),
    "hasPrefix": Func((S, S), None, lambda sub, s: s.startswith(sub)),
    "hasSuffix": Func((S, S), None, lambda sub, s: s.endswith(sub)),
    "quote": Func((), A, _quote),
    "squote": Func((), A, _squote),
    "cat": Func((), A, _cat),
    "indent": Func((N, S), None, _indent, needs_budget=True),
    "nindent": Func((N, S), None, _nindent, needs_budget=True),
    "replace": Func((S, S, S), None, _replace, needs_budget=True),
    "plural": Func((S, S, N), None, _plural),
    "abbrev": Func((N, S), None, _abbrev),
    "toString": Func((A,), None, _strval),
    "toStrings": Func((A,), None, _strslice),
    "join": Func((S, A), None, _join, needs_budget=True),
    "splitList": Func((S, S), None, _split_list),
    "split": Func((S, S), None, _split),
    "sortAlpha": Func((A,), None, _sort_alpha),
    # hashes and encodings
    "sha1sum": Func((S,), None, _hash("sha1")),
    "sha256sum": Func((S,), None, _hash("sha256")),
    "sha512sum": Func((S,), None, _hash("sha512")),
    "adler32sum": Func((S,), None, lambda s: str(zlib.adler32(s.encode("utf-8", "surrogatepass")))),
    "b64enc": Func((S,), None, lambda s: base64.b64encode(s.encode("utf-8", "surrogatepass")).decode()),
    "b64dec": Func((S,), None, _b64dec),
    "b32enc": Func((S,), None, lambda s: base64.b32encode(s.encode("utf-8", "surrogatepass")).decode()),
    "b32dec": Func((S,), None, _b32dec),
    # numbers
    "atoi": Func((S,), None, _atoi),
    "int": Func((A,), None, lambda v: int(_to_int64(v))),
    "int64": Func((A,), None, lambda v: Int64(_to_int64(v))),
    "add": Func((), A, _add),
    "add1": Func((A,), None, _add1),
    "sub": Func((A, A), None, _sub),
    "mul": Func((A,), A, _mul),
    "div": Func((A, A), None, _div),
    "mod": Func((A, A), None, _mod),
    "max": Func((A,), A, _max),
    "biggest": Func((A,), A, _max),
    "min": Func((A,), A, _min),
    # defaults and flow
    "default": Func((A,), A, _default),
    "empty": Func((A,), None, _empty),
    "coalesce": Func((), A, _coalesce),
    "ternary": Func((A, A, B), None, _ternary),
    "fail": Func((S,), None, lambda msg: (_ for _ in ()).throw(GoError(msg))),
    # lists
    "slice": Func((A,), A, _sprig_slice),
    "list": Func((), A, _list),
    "tuple": Func((), A, _list),
    "first": Func((A,), None, _first),
    "last": Func((A,), None, _last),
    "rest": Func((A,), None, _rest),
    "initial": Func((A,), None, _initial),
    "reverse": Func((A,), None, _reverse),
    "uniq": Func((A,), None, _uniq),
    "has": Func((A, A), None, _has),
    "without": Func((A,), A, _without),
    "compact": Func((A,), None, _compact),
    "append": Func((A, A), None, _append),
    "push": Func((A, A), None, _append),
    "prepend": Func((A, A), None, _prepend),
    "concat": Func((), A, _concat, needs_budget=True),
    # dicts
    "dict": Func((), A, _dict),
    "get": Func((D, S), None, _get),
    "hasKey": Func((D, S), None, _has_key),
    "keys": Func((), D, _keys),
    "values": Func((D,), None, _values),
    "pick": Func((D,), S, _pick),
    "omit": Func((D,), S, _omit),
    # paths
    "base": Func((S,), None, _go_base),
    "dir": Func((S,), None, _go_path_dir),
    "clean": Func((S,), None, _go_clean),
    "ext": Func((S,), None, _go_ext),
    "isAbs": Func((S,), None, lambda p: p.startswith("/")),
}

# Sprig's hermetic functions this module does not implement, and Go's builtins it does not.
SPRIG_UNSUPPORTED = frozenset(
    {
        "hello", "ago", "duration", "durationRound", "must_date_modify", "mustDateModify", "mustToDate",
        "toDate", "unixEpoch", "abbrevboth", "initials", "swapcase", "shuffle", "snakecase",
        "camelcase", "kebabcase", "wrap", "wrapWith", "float64", "seq", "toDecimal", "splitn",
        "until", "untilStep", "add1f", "addf", "subf", "divf", "mulf", "maxf", "minf", "ceil",
        "floor", "round", "all", "any", "mustCompact", "fromJson", "toJson", "toPrettyJson",
        "toRawJson", "mustFromJson", "mustToJson", "mustToPrettyJson", "mustToRawJson",
        "deepCopy", "mustDeepCopy", "typeOf", "typeIs", "typeIsLike", "kindOf", "kindIs",
        "deepEqual", "osBase", "osClean", "osDir", "osExt", "osIsAbs", "set", "unset",
        "pluck", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite", "mustAppend",
        "mustPush", "mustPrepend", "mustFirst", "mustRest", "mustLast", "mustInitial",
        "mustReverse", "mustUniq", "mustWithout", "mustHas", "mustSlice", "dig", "chunk",
        "mustChunk", "bcrypt", "htpasswd", "genPrivateKey", "derivePassword", "buildCustomCert",
        "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert",
        "genSignedCertWithKey", "encryptAES", "decryptAES", "semver", "semverCompare",
        "regexMatch", "mustRegexMatch", "regexFindAll", "mustRegexFindAll", "regexFind",
        "mustRegexFind", "regexReplaceAll", "mustRegexReplaceAll", "regexReplaceAllLiteral",
        "mustRegexReplaceAllLiteral", "regexSplit", "mustRegexSplit", "regexQuoteMeta",
        "urlParse", "urlJoin", "randInt",
    }
)  # fmt: skip
GO_UNSUPPORTED = frozenset({"call", "html", "js", "urlquery"})

FUNCS: dict[str, Func] = {**BUILTINS, **SPRIG}


def check_arg(kind: str, v: Any, fn: str) -> Any:
    """Go's ``validateType`` for a value passed to a parameter of ``kind``."""
    if kind == A:
        return None if v is MISSING else v
    if v is MISSING:
        raise GoError(f"invalid value; expected {kind}")
    if kind == S:
        if isinstance(v, str):
            return v
    elif kind == N:
        if type(v) is int:  # not a bool, not an int64
            return v
    elif kind == B:
        if isinstance(v, bool):
            return v
    elif kind == L:
        if isinstance(v, list | tuple):
            return v
    elif kind == D:
        if v is None:
            return GoMap(go_type=D)
        if isinstance(v, Mapping) and (not isinstance(v, GoMap) or v.go_type in ("", D)):
            return v
    raise GoError(f"wrong type for value; expected {kind}; got {go_type_name(v)}")


def unsupported_reason(name: str) -> str | None:
    if name in SPRIG_UNSUPPORTED:
        return f'function "{name}" (Sprig) is not supported here; rewrite the template without it'
    if name in GO_UNSUPPORTED:
        return f'function "{name}" is not supported here; rewrite the template without it'
    return None
