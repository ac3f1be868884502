"""Render a new scalar value in the quoting style of the one it replaces.

A plain value stays plain unless the new text would read back as something other than a
string (``1.20`` is a float, ``true`` a bool, ``2024-01-02`` a date, in YAML 1.1 or 1.2)
or would not be a valid plain scalar; then it is double-quoted, which is what Flux's
image-automation-controller does (kyaml ``FormatNonStringStyle``).  Quoted values keep
their quote character.  Hand-written because no YAML library exposes "emit this one scalar
in this style" without a full dump.
"""

from __future__ import annotations

import re

from automator.update._yaml import DOUBLE, PLAIN, SINGLE

# Implicit resolvers of YAML 1.1 (PyYAML's table) and the 1.2 core schema, for non-strings.
_NON_STRING = re.compile(
    r"""^(?:
        ~|null|Null|NULL
      | y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
      | [-+]?0b[0-1_]+
      | [-+]?0o?[0-7_]+
      | [-+]?(?:0|[1-9][0-9_]*)
      | [-+]?0x[0-9a-fA-F_]+
      | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
      | [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?
      | [-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
      | [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
      | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
            (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?
      | <<|=
    )$""",
    re.VERBOSE,
)
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./+=~$][A-Za-z0-9_./@+=~$:\-]*$")


def needs_quotes(value: str) -> bool:
    """True when ``value`` cannot be written as a plain scalar that reads back as this string."""
    if not value or _NON_STRING.match(value):
        return True
    if not _PLAIN_SAFE.match(value):
        return True
    return value.endswith(":")


def render(value: str, style: str) -> str:
    """``value`` as scalar source text in ``style`` (plain, single- or double-quoted)."""
    if style == SINGLE:
        return "'" + value.replace("'", "''") + "'"
    if style == PLAIN and not needs_quotes(value):
        return value
    if style not in (PLAIN, DOUBLE, SINGLE):
        raise ValueError(f"cannot render a {style!r} scalar")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'
