"""Go ``text/template``, as Flux's image-automation-controller renders commit messages.

Flux executes ``spec.git.commit.messageTemplate`` with Go's ``text/template`` and Sprig's
``HermeticTxtFuncMap``; a Flux document read by automator must give the same commit message,
byte for byte.  :func:`parse` reads a template once (when the policy file is loaded) and
refuses, with line and column, what Go refuses and what this module does not implement;
:meth:`GoTemplate.render` executes it over data, bounded.

Why hand-written: no maintained Python implementation of Go templates exists.  PyPI has
bindings that need a Go toolchain or a shared library at install time (``go-template``,
``py-go-template``, ``cognihub-pygotemplate``) and one pure-Python port, ``gotpl``, that had a
single 0.1.0 release ("Development Status :: 1 - Planning") pulling in time-zone packages of
the same age; none bounds a render's time and memory, which an untrusted template needs.  So
the interpreter is kept small and to the language Flux's templates reach:

* text and actions ``{{ }}``, trim markers ``{{- `` and `` -}}``, comments ``{{/* */}}``;
* pipelines with ``|``, parenthesised pipelines, fields and methods ``.A.B`` (chained on any
  operand: ``$x.A``, ``(index . 0).B``), variables ``$x := ...``, ``$x = ...``, ``$``;
* ``if``/``else if``/``else``, ``with``/``else with``/``else``, ``range`` over slices, maps (in
  Go's sorted key order) and integers, with ``$i, $v :=``, ``else``, ``break``, ``continue``;
* constants: strings (``"..."`` with Go's escapes, raw ```...```), characters, integers
  (decimal, ``0x``, ``0o``, ``0b``, ``_``), floats, ``true``, ``false``, ``nil``;
* the functions of :mod:`automator.gotemplate_funcs` (Go's builtins and much of Sprig).

``define``, ``template`` and ``block`` (Flux's documented templates use none), complex numbers
and the functions listed as unsupported there are refused at :func:`parse`, naming them.

Data model (what :meth:`GoTemplate.render` accepts; :mod:`automator.gotemplate_fmt` prints it):
``str``, ``bool``, ``int``, ``float``, ``None`` (nil), lists and tuples (slices), mappings (maps;
``.key`` reads a string key, a missing one is Go's ``<no value>``; a
:class:`~automator.gotemplate_fmt.GoMap` also knows its element's zero value for ``index``),
and dataclasses (structs: ``.Field`` reads a field, fields of the classes named in
``__go_embedded__`` are promoted, and a method whose name starts with an upper-case letter is a
Go method: ``.Changed.Changes`` calls it, with arguments when the command gives some).  Nothing
else of a Python object is reachable: no attribute starting with ``_``, no other callables.
:func:`flux_template_data` builds Flux's ``TemplateData`` (see :mod:`automator.gotemplate_flux`).

Bounds (the numbers of :mod:`automator.templates`' ``RenderLimits``, restated here because the
policy layer may not import that module): 1,000,000 steps (nodes evaluated, loop iterations,
function calls, and a step per 16 characters or items a function reads or returns), 262,144
characters of output and in any one value a function builds, 10,000 items in a ``range`` over
an integer, 64 levels of nesting.  A refusal is a :class:`TemplateError` saying which limit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automator.errors import ConfigError
from automator.gotemplate_flux import (
    Change,
    NamespacedName,
    ObjectIdentifier,
    Result,
    TemplateData,
    flux_template_data,
)
from automator.gotemplate_fmt import MISSING, GoError, GoMap, fmt_v, go_type_name, is_true, sorted_items
from automator.gotemplate_funcs import FUNCS, Func, check_arg, unsupported_reason

__all__ = [
    "Change",
    "GoMap",
    "GoTemplate",
    "NamespacedName",
    "ObjectIdentifier",
    "Result",
    "TemplateData",
    "TemplateError",
    "flux_template_data",
    "parse",
]

MAX_STEPS = 1_000_000
MAX_OUTPUT = 262_144
MAX_VALUE = 262_144
MAX_RANGE = 10_000
MAX_DEPTH = 64


class TemplateError(ConfigError):
    """A Go template that cannot be parsed, uses what is not supported, or failed to render.

    ``line`` and ``column`` (1-based, in the template text) say where, when known; ``reason``
    is the message without the place.
    """

    def __init__(self, reason: str, *, source: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.column = column
        where = source if line is None else f"{source}:{line}:{column or 1}"
        super().__init__(f"{where}: {reason}")


# -- lexer -----------------------------------------------------------------------------------------

_SPACE = " \t\r\n"


@dataclass(frozen=True)
class _Tok:
    kind: str  # text, left, right, space, field, var, ident, string, char, number, ( ) | , := = . eof
    val: str
    pos: int
    trim: bool = False  # for left/right: a trim marker


class _Lexer:
    def __init__(self, text: str, fail: Callable[[str, int], TemplateError]) -> None:
        self.text = text
        self.fail = fail
        self.toks: list[_Tok] = []

    def run(self) -> list[_Tok]:
        t, n, pos = self.text, len(self.text), 0
        while pos < n:
            i = t.find("{{", pos)
            if i < 0:
                self.toks.append(_Tok("text", t[pos:], pos))
                break
            trim_left = t.startswith("-", i + 2) and i + 3 < n and t[i + 3] in _SPACE
            text = t[pos:i]
            if trim_left:
                text = text.rstrip(_SPACE)
            if text:
                self.toks.append(_Tok("text", text, pos))
            start = i + 2 + (2 if trim_left else 0)
            self.toks.append(_Tok("left", "{{", i, trim_left))
            pos = self._action(start, i)
            if self.toks[-1].trim:  # right trim marker: skip leading space of the next text
                while pos < n and t[pos] in _SPACE:
                    pos += 1
        self.toks.append(_Tok("eof", "", n))
        return self.toks

    def _right_at(self, p: int) -> tuple[int, bool] | None:
        t = self.text
        if t.startswith("}}", p):
            return p + 2, False
        if p < len(t) and t[p] in _SPACE and t.startswith("-}}", p + 1):
            return p + 4, True
        return None

    def _action(self, p: int, left: int) -> int:
        t, n = self.text, len(self.text)
        # a comment: {{/* ... */}} right after the delimiter (and its trim marker)
        if t.startswith("/*", p):
            end = t.find("*/", p + 2)
            if end < 0:
                raise self.fail("unclosed comment", p)
            q = end + 2
            r = self._right_at(q)
            if r is None:
                raise self.fail("comment ends before closing delimiter", q)
            self.toks.pop()  # a comment is no action
            self.toks.append(_Tok("comment", "", left))
            self.toks.append(_Tok("right", "}}", q, r[1]))
            return r[0]
        paren = 0
        while True:
            if p >= n:
                raise self.fail("unclosed action", left)
            r = self._right_at(p)
            if r is not None:
                if paren:
                    raise self.fail("unclosed left paren", p)
                self.toks.append(_Tok("right", "}}", p, r[1]))
                return r[0]
            c = t[p]
            if c in _SPACE:
                q = p
                while q < n and t[q] in _SPACE and self._right_at(q) is None:
                    q += 1
                if q == p:  # this space starts a right trim marker: the loop's next turn ends the action
                    continue
                self.toks.append(_Tok("space", t[p:q], p))
                p = q
            elif t.startswith("/*", p):
                raise self.fail("comment must be the whole action: {{/* ... */}}", p)
            elif c == ":":
                if not t.startswith(":=", p):
                    raise self.fail("expected :=", p)
                self.toks.append(_Tok(":=", ":=", p))
                p += 2
            elif c in "|,=":
                self.toks.append(_Tok(c, c, p))
                p += 1
            elif c == "(":
                paren += 1
                self.toks.append(_Tok("(", c, p))
                p += 1
            elif c == ")":
                paren -= 1
                if paren < 0:
                    raise self.fail("unexpected right paren", p)
                self.toks.append(_Tok(")", c, p))
                p += 1
            elif c == '"':
                p = self._quoted(p)
            elif c == "`":
                end = t.find("`", p + 1)
                if end < 0:
                    raise self.fail("unterminated raw quoted string", p)
                self.toks.append(_Tok("string", t[p : end + 1], p))
                p = end + 1
            elif c == "'":
                p = self._char(p)
            elif c == "$":
                q = p + 1
                while q < n and (t[q].isalnum() or t[q] == "_"):
                    q += 1
                self.toks.append(_Tok("var", t[p:q], p))
                p = q
            elif c == "." and p + 1 < n and t[p + 1].isdigit():
                p = self._number(p)
            elif c == ".":
                q = p + 1
                while q < n and (t[q].isalnum() or t[q] == "_"):
                    q += 1
                self.toks.append(_Tok("field" if q > p + 1 else ".", t[p:q], p))
                p = q
            elif c.isdigit() or (c in "+-" and p + 1 < n and (t[p + 1].isdigit() or t[p + 1] == ".")):
                p = self._number(p)
            elif c.isalpha() or c == "_":
                q = p
                while q < n and (t[q].isalnum() or t[q] == "_"):
                    q += 1
                self.toks.append(_Tok("ident", t[p:q], p))
                p = q
            else:
                raise self.fail(f"unrecognized character in action: {c!r}", p)

    def _quoted(self, p: int) -> int:
        return self._delimited(p, '"', "string", "unterminated quoted string")

    def _char(self, p: int) -> int:
        return self._delimited(p, "'", "char", "unterminated character constant")

    def _delimited(self, p: int, quote: str, kind: str, unterminated: str) -> int:
        """A string or character constant from ``p`` (its opening quote): one line, escapes skipped."""
        t, n, q = self.text, len(self.text), p + 1
        while q < n:
            c = t[q]
            if c == "\\":
                q += 2
                continue
            if c == "\n":
                break
            if c == quote:
                self.toks.append(_Tok(kind, t[p : q + 1], p))
                return q + 1
            q += 1
        raise self.fail(unterminated, p)

    def _number(self, p: int) -> int:
        t, n, q = self.text, len(self.text), p
        while q < n and (t[q].isalnum() or t[q] in "._+-"):
            if t[q] in "+-" and q > p and t[q - 1] not in "eEpP":
                break
            q += 1
        self.toks.append(_Tok("number", t[p:q], p))
        return q


# -- nodes -----------------------------------------------------------------------------------------


@dataclass
class _Node:
    pos: int


@dataclass
class _Text(_Node):
    text: str


@dataclass
class _Const(_Node):
    value: Any


@dataclass
class _Dot(_Node):
    pass


@dataclass
class _Nil(_Node):
    pass


@dataclass
class _Field(_Node):
    names: list[str]


@dataclass
class _Var(_Node):
    name: str
    names: list[str]


@dataclass
class _Ident(_Node):
    name: str


@dataclass
class _Chain(_Node):
    node: _Node
    names: list[str]


@dataclass
class _Cmd(_Node):
    args: list[_Node]


@dataclass
class _Pipe(_Node):
    decl: list[str]
    assign: bool
    cmds: list[_Cmd]


@dataclass
class _Action(_Node):
    pipe: _Pipe


@dataclass
class _Branch(_Node):
    kind: str  # if, with, range
    pipe: _Pipe
    body: list[_Node]
    other: list[_Node] | None


@dataclass
class _Break(_Node):
    pass


@dataclass
class _Continue(_Node):
    pass


# -- parser ----------------------------------------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}
_NUM_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)\Z")
_NUM_FLOAT = re.compile(
    r"[+-]?(([0-9][0-9_]*)?\.?[0-9_]*([eE][+-]?[0-9_]+)?|0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9_]+)\Z"
)


def _unquote_go(text: str, quote: str, fail: Callable[[str], TemplateError]) -> str:
    if text[0] == "`":
        return text[1:-1].replace("\r", "")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            if c == quote and quote == "'":
                raise fail(f"malformed character constant: {text}")
            out.append(c)
            i += 1
            continue
        e = body[i + 1 : i + 2]
        if e in _ESCAPES and (e != "'" or quote == "'") and (e != '"' or quote == '"'):
            out.append(_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(
                chr(int(body[i + 2 : i + 4], 16)) if re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]) else ""
            )
            if not re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
                raise fail(f"invalid syntax: {text}")
            i += 4
        elif e in ("u", "U"):
            size = 4 if e == "u" else 8
            digits = body[i + 2 : i + 2 + size]
            if not re.fullmatch(rf"[0-9a-fA-F]{{{size}}}", digits) or int(digits, 16) > 0x10FFFF:
                raise fail(f"invalid syntax: {text}")
            out.append(chr(int(digits, 16)))
            i += 2 + size
        elif e in "01234567" and e:
            digits = body[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise fail(f"invalid syntax: {text}")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise fail(f"invalid syntax: {text}")
    return "".join(out)


def _number(text: str) -> int | float | None:
    """A Go number constant, or None (bad syntax or, like Go, an integer that overflows)."""
    if "_" in text and (text.lstrip("+-").startswith("_") or "__" in text or text.endswith("_")):
        return None
    s = text.replace("_", "")
    if _NUM_INT.match(text):
        sign = -1 if s.startswith("-") else 1
        s = s.lstrip("+-")
        if s[:2] in ("0x", "0X"):
            v = int(s[2:], 16)
        elif s[:2] in ("0o", "0O"):
            v = int(s[2:], 8)
        elif s[:2] in ("0b", "0B"):
            v = int(s[2:], 2)
        elif len(s) > 1 and s[0] == "0":
            v = int(s[1:], 8)
        else:
            v = int(s)
        v *= sign
        return v if -(2**63) <= v < 2**63 else None
    if not any(ch in text for ch in ".eEpP") or not _NUM_FLOAT.match(text) or not any(c.isdigit() for c in text):
        return None
    try:
        return float.fromhex(s) if "x" in s.lower() else float(s)
    except ValueError:
        return None


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.toks = _Lexer(text, self.fail_at).run()
        self.i = 0
        self.vars = _Scope()
        self.vars.push("$", None)
        self.range_depth = 0
        self.depth = 0

    def fail_at(self, reason: str, pos: int) -> TemplateError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return TemplateError(reason, source=self.source, line=line, column=column)

    def peek(self, skip_space: bool = True) -> _Tok:
        j = self.i
        while skip_space and self.toks[j].kind == "space":
            j += 1
        return self.toks[j]

    def next(self, skip_space: bool = True) -> _Tok:
        while skip_space and self.toks[self.i].kind == "space":
            self.i += 1
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect_right(self, what: str) -> None:
        tok = self.next()
        if tok.kind != "right":
            raise self.fail_at(f"unexpected {self._describe(tok)} in {what}", tok.pos)

    @staticmethod
    def _describe(tok: _Tok) -> str:
        return "EOF" if tok.kind == "eof" else f"<{tok.val}>" if tok.val else tok.kind

    # list parsing: returns (nodes, terminator keyword, terminator token)
    def parse(self) -> list[_Node]:
        nodes, end, tok = self._list(top=True)
        if end is not None:
            raise self.fail_at(f"unexpected {{{{{end}}}}}", tok.pos)
        return nodes

    def _list(self, top: bool = False) -> tuple[list[_Node], str | None, _Tok]:
        nodes: list[_Node] = []
        while True:
            tok = self.next(skip_space=False)
            if tok.kind == "eof":
                if not top:
                    raise self.fail_at("unexpected EOF", tok.pos)
                return nodes, None, tok
            if tok.kind == "text":
                nodes.append(_Text(tok.pos, tok.val))
                continue
            if tok.kind == "comment":
                self.next()  # its right delimiter
                continue
            assert tok.kind == "left"
            kw = self.peek()
            if kw.kind == "ident" and kw.val in ("end", "else"):
                self.next()
                return nodes, kw.val, kw
            node = self._action(tok)
            if node is not None:
                nodes.append(node)

    def _action(self, left: _Tok) -> _Node | None:
        kw = self.peek()
        if kw.kind == "ident":
            if kw.val in ("if", "with", "range"):
                self.next()
                return self._branch(kw.val, kw)
            if kw.val in ("break", "continue"):
                self.next()
                if self.range_depth == 0:
                    raise self.fail_at(f"{{{{{kw.val}}}}} outside {{{{range}}}}", kw.pos)
                self.expect_right(kw.val)
                return _Break(kw.pos) if kw.val == "break" else _Continue(kw.pos)
            if kw.val in ("define", "template", "block"):
                raise self.fail_at(f"{{{{{kw.val}}}}} is not supported here; write the text inline", kw.pos)
        pipe = self._pipe("command", allow_decl=True, multi=False)
        return _Action(left.pos, pipe)

    def _branch(self, kind: str, kw: _Tok) -> _Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail_at(f"more than {MAX_DEPTH} nested actions", kw.pos)
        mark = self.vars.mark()
        pipe = self._pipe(kind, allow_decl=True, multi=kind == "range")
        if kind == "range":
            self.range_depth += 1
        body, end, _tok = self._list()
        if kind == "range":
            self.range_depth -= 1
        other: list[_Node] | None = None
        if end == "else":
            nxt = self.peek()
            if nxt.kind == "ident" and nxt.val in ("if", "with") and kind in ("if", "with"):
                if nxt.val != kind:
                    raise self.fail_at(f"{{{{else {nxt.val}}}}} inside {{{{{kind}}}}}", nxt.pos)
                # {{else if ...}}: a nested branch that shares our {{end}}
                self.next()
                other = [self._branch(nxt.val, nxt)]
            else:
                self.expect_right("else")
                other, end2, tok2 = self._list()
                if end2 != "end":
                    raise self.fail_at("expected end; found {{else}}", tok2.pos)
                self.expect_right("end")
        elif end == "end":
            self.expect_right("end")
        self.vars.pop_to(mark)
        self.depth -= 1
        return _Branch(kw.pos, kind, pipe, body, other)

    def _pipe(self, context: str, *, allow_decl: bool, multi: bool) -> _Pipe:
        start = self.peek()
        decl: list[str] = []
        assign = False
        if allow_decl and start.kind == "var":
            # look ahead for a declaration: $x := / $x = / $i, $e :=
            j = self.i
            names: list[str] = []
            ok = False
            while True:
                while self.toks[j].kind == "space":
                    j += 1
                if self.toks[j].kind != "var":
                    break
                names.append(self.toks[j].val)
                j += 1
                while self.toks[j].kind == "space":
                    j += 1
                k = self.toks[j].kind
                if k in (":=", "="):
                    ok = True
                    assign = k == "="
                    j += 1
                    break
                if k == "," and multi and len(names) < 2:
                    j += 1
                    continue
                break
            if ok:
                if len(names) > 1 and context != "range":
                    raise self.fail_at(f"too many declarations in {context}", start.pos)
                if assign:
                    for name in names:
                        if not self.vars.has(name):
                            raise self.fail_at(f'undefined variable "{name}"', start.pos)
                decl = names
                self.i = j
        cmds: list[_Cmd] = []
        while True:
            tok = self.peek()
            if tok.kind in ("right", ")"):
                break
            cmds.append(self._command(context))
            tok = self.peek()
            if tok.kind == "|":
                self.next()
                continue
        end = self.peek()
        if end.kind == "right" and context not in ("(",):
            self.next()
        if not cmds:
            raise self.fail_at(f"missing value for {context}", end.pos)
        for stage, c in enumerate(cmds[1:], start=2):
            if isinstance(c.args[0], _Const | _Nil | _Dot):
                raise self.fail_at(f"non executable command in pipeline stage {stage}", c.pos)
        if not assign:
            for name in decl:
                self.vars.push(name, None)
        return _Pipe(start.pos, decl, assign, cmds)

    def _command(self, context: str) -> _Cmd:
        args: list[_Node] = []
        first = self.peek()
        while True:
            tok = self.peek()
            if tok.kind in ("right", "|", ")", "eof"):
                break
            if args and self.toks[self.i].kind != "space":
                raise self.fail_at(f"missing space before {self._describe(tok)}", tok.pos)
            args.append(self._operand())
        if not args:
            raise self.fail_at("empty command", first.pos)
        if isinstance(args[0], _Nil) and len(args) == 1 and context != "(":
            raise self.fail_at("nil is not a command", args[0].pos)
        return _Cmd(first.pos, args)

    def _operand(self) -> _Node:
        node = self._term()
        names: list[str] = []
        while self.toks[self.i].kind == "field":  # chained without a space
            names.append(self.toks[self.i].val[1:])
            self.i += 1
        if not names:
            return node
        if isinstance(node, _Field):
            node.names.extend(names)
            return node
        if isinstance(node, _Var):
            node.names.extend(names)
            return node
        if isinstance(node, _Const | _Nil | _Dot):
            raise self.fail_at(
                f"unexpected . after term {self.text[node.pos : self.toks[self.i - len(names)].pos]!r}", node.pos
            )
        return _Chain(node.pos, node, names)

    def _term(self) -> _Node:
        tok = self.next()
        if tok.kind == "field":
            return _Field(tok.pos, [tok.val[1:]])
        if tok.kind == ".":
            return _Dot(tok.pos)
        if tok.kind == "var":
            if not self.vars.has(tok.val):
                raise self.fail_at(f'undefined variable "{tok.val}"', tok.pos)
            return _Var(tok.pos, tok.val, [])
        if tok.kind == "string":
            return _Const(tok.pos, _unquote_go(tok.val, '"', lambda m: self.fail_at(m, tok.pos)))
        if tok.kind == "char":
            s = _unquote_go(tok.val, "'", lambda m: self.fail_at(m, tok.pos))
            if len(s) != 1:
                raise self.fail_at(f"malformed character constant: {tok.val}", tok.pos)
            return _Const(tok.pos, ord(s))
        if tok.kind == "number":
            if tok.val.endswith("i"):
                raise self.fail_at(f"complex number {tok.val} is not supported here", tok.pos)
            v = _number(tok.val)
            if v is None:
                raise self.fail_at(f"bad number syntax or integer overflow: {tok.val!r}", tok.pos)
            return _Const(tok.pos, v)
        if tok.kind == "ident":
            if tok.val in ("true", "false"):
                return _Const(tok.pos, tok.val == "true")
            if tok.val == "nil":
                return _Nil(tok.pos)
            if tok.val in ("end", "else", "if", "with", "range", "break", "continue", "define", "template", "block"):
                raise self.fail_at(f"unexpected <{tok.val}> in command", tok.pos)
            reason = unsupported_reason(tok.val)
            if reason is not None:
                raise self.fail_at(reason, tok.pos)
            if tok.val not in FUNCS:
                raise self.fail_at(f'function "{tok.val}" not defined', tok.pos)
            return _Ident(tok.pos, tok.val)
        if tok.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail_at(f"more than {MAX_DEPTH} nested parentheses", tok.pos)
            pipe = self._pipe("(", allow_decl=False, multi=False)
            close = self.next()
            if close.kind != ")":
                raise self.fail_at("unclosed left paren", tok.pos)
            self.depth -= 1
            return _Chain(tok.pos, pipe, [])
        raise self.fail_at(f"unexpected {self._describe(tok)} in operand", tok.pos)


# -- evaluation ------------------------------------------------------------------------------------


class _Scope:
    """Variables: a stack of declarations, and per name the stack of its values (O(1) lookups)."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.values: dict[str, list[Any]] = {}

    def push(self, name: str, value: Any) -> None:
        self.order.append(name)
        self.values.setdefault(name, []).append(value)

    def mark(self) -> int:
        return len(self.order)

    def pop_to(self, mark: int) -> None:
        while len(self.order) > mark:
            self.values[self.order.pop()].pop()

    def has(self, name: str) -> bool:
        return bool(self.values.get(name))

    def get(self, name: str) -> Any:
        return self.values[name][-1]  # the parser refused undefined variables

    def set(self, name: str, value: Any) -> None:
        self.values[name][-1] = value


class _BreakLoop(Exception):
    pass


class _ContinueLoop(Exception):
    pass


@dataclass(frozen=True)
class _Tail:
    """What a command passes to its last field or function: its other words and the pipeline's value."""

    args: list[_Node]
    final: Any
    has_final: bool


_NO_TAIL = _Tail([], None, False)


class _Exec:
    def __init__(self, tmpl: GoTemplate, data: Any) -> None:
        self.tmpl = tmpl
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.vars = _Scope()
        self.vars.push("$", data)
        self.node_pos = 0

    def fail(self, reason: str, pos: int | None = None) -> TemplateError:
        p = self.node_pos if pos is None else pos
        text = self.tmpl.text
        line = text.count("\n", 0, p) + 1
        column = p - (text.rfind("\n", 0, p) + 1) + 1
        return TemplateError(reason, source=self.tmpl.source, line=line, column=column)

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise self.fail(f"the template took more than {MAX_STEPS} steps; loop over less")

    def budget(self, size: int) -> None:
        if size > MAX_VALUE:
            raise GoError(f"it would build a value of more than {MAX_VALUE} characters or items")

    def write(self, s: str) -> None:
        self.size += len(s)
        if self.size > MAX_OUTPUT:
            raise self.fail(f"the message would be longer than {MAX_OUTPUT} characters; print less")
        self.out.append(s)

    def run(self, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            self.tick()
            self.node_pos = node.pos
            if isinstance(node, _Text):
                self.write(node.text)
            elif isinstance(node, _Action):
                v = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.write(self.printable(v))
            elif isinstance(node, _Branch):
                self.branch(node, dot)
            elif isinstance(node, _Break):
                raise _BreakLoop
            elif isinstance(node, _Continue):
                raise _ContinueLoop

    def printable(self, v: Any) -> str:
        if v is MISSING:
            return "<no value>"
        return fmt_v(v, top=False)

    def branch(self, node: _Branch, dot: Any) -> None:
        mark = self.vars.mark()
        try:
            if node.kind == "range":
                self.range(node, dot)
                return
            v = self.pipe(node.pipe, dot)
            if is_true(v):
                self.run(node.body, v if node.kind == "with" else dot)
            elif node.other is not None:
                self.run(node.other, dot)
        finally:
            self.vars.pop_to(mark)

    def range(self, node: _Branch, dot: Any) -> None:
        v = self.pipe(node.pipe, dot)
        decl = node.pipe.decl
        items: list[tuple[Any, Any]]
        if v is MISSING or v is None:
            items = []
        elif isinstance(v, Mapping):
            items = sorted_items(v)
        elif isinstance(v, list | tuple):
            items = list(enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            if len(decl) > 1:
                raise self.fail("can't use a second variable when ranging over an integer")
            if v > MAX_RANGE:
                raise self.fail(f"range over {v}: more than {MAX_RANGE} iterations")
            items = [(i, i) for i in range(v)]
        else:
            raise self.fail(f"range can't iterate over {fmt_v(v, top=False)}")
        if not items:
            if node.other is not None:
                self.run(node.other, dot)
            return
        for key, elem in items:
            self.tick()
            if len(decl) == 1:
                self.vars.set(decl[0], elem)
            elif len(decl) == 2:
                self.vars.set(decl[0], key)
                self.vars.set(decl[1], elem)
            mark = self.vars.mark()
            try:
                self.run(node.body, elem)
            except _BreakLoop:
                break
            except _ContinueLoop:
                continue
            finally:
                self.vars.pop_to(mark)

    def pipe(self, pipe: _Pipe, dot: Any) -> Any:
        value: Any = MISSING
        first = True
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, None if first else value, has_final=not first)
            if value is None:  # Go digs into an interface{} result: a nil one is no value
                value = MISSING
            first = False
        for name in pipe.decl:
            if pipe.assign:
                self.vars.set(name, value)
            else:
                self.vars.push(name, value)
        return value

    def command(self, cmd: _Cmd, dot: Any, final: Any, has_final: bool) -> Any:
        self.tick()
        head = cmd.args[0]
        self.node_pos = head.pos
        rest = cmd.args[1:]
        if isinstance(head, _Field):
            return self.fields(dot, head.names, head.pos, dot, _Tail(rest, final, has_final))
        if isinstance(head, _Var):
            v = self.vars.get(head.name)
            if head.names:
                return self.fields(v, head.names, head.pos, dot, _Tail(rest, final, has_final))
            self.no_args(head, rest, has_final)
            return v
        if isinstance(head, _Chain):
            base = self.pipe(head.node, dot) if isinstance(head.node, _Pipe) else self.arg(head.node, dot)
            if head.names:
                return self.fields(base, head.names, head.pos, dot, _Tail(rest, final, has_final))
            self.no_args(head, rest, has_final)
            return base
        if isinstance(head, _Ident):
            return self.call(head, rest, dot, final, has_final)
        self.no_args(head, rest, has_final)
        if isinstance(head, _Dot):
            return dot
        if isinstance(head, _Nil):
            raise self.fail("nil is not a command", head.pos)
        if isinstance(head, _Const):
            return head.value
        raise self.fail("can't evaluate command", head.pos)  # pragma: no cover

    def no_args(self, head: _Node, rest: list[_Node], has_final: bool) -> None:
        if rest or has_final:
            raise self.fail(
                f"can't give argument to non-function {self.tmpl.text[head.pos : head.pos + 40].split()[0]}"
            )

    def arg(self, node: _Node, dot: Any) -> Any:
        """An argument's value (a field chain with no arguments of its own)."""
        self.tick()
        if isinstance(node, _Field):
            return self.fields(dot, node.names, node.pos, dot)
        if isinstance(node, _Var):
            v = self.vars.get(node.name)
            return self.fields(v, node.names, node.pos, dot) if node.names else v
        if isinstance(node, _Chain):
            base = self.pipe(node.node, dot) if isinstance(node.node, _Pipe) else self.arg(node.node, dot)
            return self.fields(base, node.names, node.pos, dot) if node.names else base
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Nil):
            return None
        if isinstance(node, _Const):
            return node.value
        if isinstance(node, _Ident):
            return self.call(node, [], dot, None, False)
        raise self.fail("can't evaluate argument", node.pos)  # pragma: no cover

    def fields(self, receiver: Any, names: list[str], pos: int, dot: Any, tail: _Tail = _NO_TAIL) -> Any:
        """``receiver.A.B.C``; the last name gets the command's arguments (``tail``)."""
        self.node_pos = pos
        for i, name in enumerate(names):
            receiver = self.field(receiver, name, dot, tail if i == len(names) - 1 else _NO_TAIL)
        return receiver

    def field(self, receiver: Any, name: str, dot: Any, tail: _Tail) -> Any:
        self.tick()
        args, final, has_final = tail.args, tail.final, tail.has_final
        has_args = bool(args) or has_final
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
        method = _go_method(receiver, name)
        if method is not None:
            argv = [self.arg(a, dot) for a in args]
            if has_final:
                argv.append(final)
            try:
                return method(*argv)
            except TypeError as exc:
                raise self.fail(f"wrong number of args for {name}: {exc}") from exc
            except GoError as exc:
                raise self.fail(f"error calling {name}: {exc}") from exc
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments")
            string_keys = (
                receiver.string_keys if isinstance(receiver, GoMap) else all(isinstance(k, str) for k in receiver)
            )
            if not string_keys:
                raise self.fail(f"can't evaluate field {name} in type {go_type_name(receiver)}")
            return receiver.get(name, MISSING)
        found, value = _go_field(receiver, name)
        if found:
            if has_args:
                raise self.fail(f"{name} has arguments but cannot be invoked as function")
            return value
        raise self.fail(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def call(self, ident: _Ident, args: list[_Node], dot: Any, final: Any, has_final: bool) -> Any:
        fn: Func = FUNCS[ident.name]
        self.node_pos = ident.pos
        name = ident.name
        nargs = len(args) + (1 if has_final else 0)
        want = len(fn.params)
        if (fn.variadic is None and nargs != want) or (fn.variadic is not None and nargs < want):
            at_least = "at least " if fn.variadic is not None else ""
            raise self.fail(f"wrong number of args for {name}: want {at_least}{want} got {nargs}")
        if name in ("and", "or"):
            return self.and_or(name, args, dot, final, has_final)
        values = [self.arg(a, dot) for a in args]
        if has_final:
            values.append(final)
        self.node_pos = ident.pos
        # a function's work is its input and output: a step per 16 characters or items
        self.tick(sum(len(v) for v in values if isinstance(v, str | list | tuple | Mapping)) // 16)
        try:
            checked = [
                check_arg(fn.params[i] if i < want else (fn.variadic or "any"), v, name) for i, v in enumerate(values)
            ]
            result = fn.impl(self.budget, *checked) if fn.needs_budget else fn.impl(*checked)
        except GoError as exc:
            raise self.fail(f"error calling {name}: {exc}") from exc
        if isinstance(result, str | list | tuple | Mapping):
            if len(result) > MAX_VALUE:
                raise self.fail(f"error calling {name}: it built more than {MAX_VALUE} characters or items")
            self.tick(1 + len(result) // 16)
        return result

    def and_or(self, name: str, args: list[_Node], dot: Any, final: Any, has_final: bool) -> Any:
        nodes: list[Any] = [*args]
        value: Any = MISSING
        for i, node in enumerate([*nodes, *([final] if has_final else [])]):
            value = node if has_final and i == len(nodes) else self.arg(node, dot)
            if is_true(value) == (name == "or"):
                return value
        return value


def _go_method(receiver: Any, name: str) -> Callable[..., Any] | None:
    """A Go method: a callable class attribute of a dataclass whose name is exported."""
    if not name[:1].isupper() or not dataclasses.is_dataclass(receiver) or isinstance(receiver, type):
        return None
    if name in {f.name for f in dataclasses.fields(receiver)}:
        return None
    attr = getattr(type(receiver), name, None)
    if attr is None or not callable(attr) or isinstance(attr, type):
        return None
    bound = getattr(receiver, name)
    return bound if callable(bound) else None


def _go_field(receiver: Any, name: str) -> tuple[bool, Any]:
    """A struct field, or one promoted from an embedded struct (breadth first, as Go)."""
    if not dataclasses.is_dataclass(receiver) or isinstance(receiver, type) or name.startswith("_"):
        return False, None
    level = [receiver]
    for _ in range(MAX_DEPTH):
        nxt = []
        for obj in level:
            names = {f.name for f in dataclasses.fields(obj)}
            if name in names:
                return True, getattr(obj, name)
            for emb in getattr(type(obj), "__go_embedded__", ()):
                inner = getattr(obj, emb, None)
                if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
                    nxt.append(inner)
        if not nxt:
            break
        level = nxt
    return False, None


@dataclass(frozen=True)
class GoTemplate:
    """A parsed template; :meth:`render` executes it (pure, bounded)."""

    text: str
    source: str
    nodes: tuple[Any, ...]

    def render(self, data: object) -> str:
        """Execute over ``data`` (see the module docstring); raise :class:`TemplateError` on failure."""
        ex = _Exec(self, data)
        try:
            ex.run(list(self.nodes), data)
        except (_BreakLoop, _ContinueLoop) as exc:  # pragma: no cover - the parser allows them in range only
            raise ex.fail("break or continue outside range") from exc
        except RecursionError as exc:  # pragma: no cover - nesting is capped at parse
            raise ex.fail("the template nests too deeply") from exc
        return "".join(ex.out)


def parse(text: str, *, source: str) -> GoTemplate:
    """Parse a Go template, or raise :class:`TemplateError` naming what and where (line:column).

    ``source`` names the template in messages (a field path such as ``spec.git.commit.messageTemplate``).
    """
    if not isinstance(text, str):
        raise TemplateError("a template must be a string", source=source)
    if len(text) > MAX_OUTPUT:
        raise TemplateError(f"the template is longer than {MAX_OUTPUT} characters", source=source)
    nodes = _Parser(text, source).parse()
    return GoTemplate(text, source, tuple(nodes))
