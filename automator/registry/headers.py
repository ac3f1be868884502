"""Parsers for the HTTP headers the registry protocol relies on.

* ``WWW-Authenticate`` challenges (RFC 7235 auth-params, quoted strings with escapes,
  several challenges in one header or over several headers);
* ``Link: <url>; rel="next"`` (RFC 8288), resolved against the page's URL and kept
  byte for byte otherwise, because registries put opaque cursors in the query;
* ``Retry-After`` as delta-seconds or an HTTP date.

Hand-written because httpx parses none of these and the grammars are a few lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from urllib.parse import urljoin

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# unquoted values are read leniently up to the next comma (some registries send bare URLs)
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|[^\s,\"]+)\s*")
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?=\s|$|,)")
_LINK_RE = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_LINK_PARAM_RE = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*({_QUOTED}|[^;,\s]+)")


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a lower-case scheme and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def realm(self) -> str | None:
        """The token endpoint (Bearer) or protection space name (Basic)."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` parameter a token request must repeat."""
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        """The scope the registry asked for, when it said."""
        return self.params.get("scope")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Every challenge in one or more ``WWW-Authenticate`` header values, in order."""
    if isinstance(values, str):
        values = [values]
    challenges: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            while pos < len(value) and value[pos] in " ,\t":
                pos += 1
            scheme_match = _SCHEME_RE.match(value, pos)
            if scheme_match is None:
                break
            pos = scheme_match.end()
            params: dict[str, str] = {}
            while True:
                param = _PARAM_RE.match(value, pos)
                if param is None:
                    break
                params[param.group(1).lower()] = _unquote(param.group(2))
                pos = param.end()
                if pos < len(value) and value[pos] == ",":
                    pos += 1
            challenges.append(Challenge(scheme_match.group(1).lower(), params))
    return challenges


def parse_link_next(values: str | Iterable[str], base_url: str) -> str | None:
    """The absolute URL of the ``rel="next"`` link in ``Link`` header(s), or None.

    The target is resolved against ``base_url`` (the URL of the page that carried
    the header); its query string is left exactly as the registry wrote it.
    """
    if isinstance(values, str):
        values = [values]
    for value in values:
        for match in _LINK_RE.finditer(value):
            target, raw_params = match.group(1).strip(), match.group(2)
            for param in _LINK_PARAM_RE.finditer(raw_params):
                if param.group(1).lower() == "rel" and "next" in _unquote(param.group(2)).lower().split():
                    return str(urljoin(base_url, target))
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
