"""Go durations (``time.ParseDuration``), as Flux writes ``interval`` and ``timeout``.

``5m``, ``1h30m``, ``90s``, ``1.5h``, ``250ms``; units ``ns``, ``us``/``µs``, ``ms``,
``s``, ``m``, ``h``.  A sign and a bare ``0`` are accepted as Go does.  Hand-written:
the grammar is one regex and no Python package parses Go durations.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_WHOLE = re.compile(r"^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError("a duration must be a string like '5m' or '1h30m'")
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _WHOLE.match(text):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (h, m, s, ms), like '5m' or '1h30m'")
    total = sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))
    return -total if text.startswith("-") else total
