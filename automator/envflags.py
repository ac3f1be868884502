"""Flags whose defaults come from the environment: one helper for both programs.

Every flag of ``automator run`` can be set as ``AUTOMATOR_<NAME>`` and every flag of
``automator sync`` as ``AUTOMATOR_SYNC_<NAME>`` (the Helm chart sets them so). An :class:`Env`
reads those values with one set of rules: a list is comma-separated with blanks dropped, a
boolean is ``1``/``true``/``yes``/``on`` (any case) or ``0``/``false``/``no``/``off``, and
anything else is an error naming the variable, never silently false.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import overload

from automator.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class Env:
    """The environment variables of one program: ``prefix`` + the upper-cased name."""

    prefix: str
    environ: Mapping[str, str] | None = None  # None: the process environment, read at each call

    def name(self, dest: str) -> str:
        return self.prefix + dest.upper().replace("-", "_")

    @overload
    def __call__(self, dest: str) -> str | None: ...

    @overload
    def __call__(self, dest: str, default: str) -> str: ...

    def __call__(self, dest: str, default: str | None = None) -> str | None:
        return (os.environ if self.environ is None else self.environ).get(self.name(dest), default)

    def list(self, dest: str) -> list[str]:
        value = self(dest)
        return [v.strip() for v in value.split(",") if v.strip()] if value else []

    def bool(self, dest: str, default: bool) -> bool:
        value = self(dest)
        if value is None:
            return default
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ConfigError(f"{self.name(dest)}={value!r}: expected true or false (1/0, yes/no, on/off)")
