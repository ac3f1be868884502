"""The one duration grammar: Go's (``time.ParseDuration``), for policy fields and every flag.

Flux writes ``interval`` and ``timeout`` this way, and both programs' flags (``run --interval``,
``--webhook-debounce``, ``--cycle-timeout``, ``sync --interval``, ``--timeout``) take the same
words: ``5m``, ``1h30m``, ``90s``, ``1.5h``, ``250ms``; units ``ns``, ``us``/``µs``, ``ms``,
``s``, ``m``, ``h``.  A sign and a bare ``0`` are accepted as Go does; a bare number is not (is
``90`` seconds or minutes?).  Hand-written: the grammar is one regex, and ``durationpy``
(installed with ``kubernetes``) is not Go's: it takes ``1d`` and reads ``5mm`` as 150 days,
so a policy it accepted would be refused by Flux.
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
        hint = f" (did you mean '{text}s'?)" if re.fullmatch(r"\d+(?:\.\d+)?", text.strip()) else ""
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (h, m, s, ms), like '5m' or '1h30m'{hint}"
        )
    total = sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))
    return -total if text.startswith("-") else total


def positive_duration(flag: str, text: str, *, zero_ok: bool = False) -> float:
    """A flag's duration in seconds; ValueError naming the flag when it is invalid or not positive."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{flag} {text!r}: {exc}") from None
    if seconds < 0 or (seconds == 0 and not zero_ok):
        raise ValueError(f"{flag} {text!r}: must be {'zero or ' if zero_ok else ''}positive")
    return seconds
