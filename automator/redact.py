"""Keep secrets out of anything printed: URLs with userinfo, tokens in text.

Redaction happens at the edge where a secret enters (a credential loader, a git URL,
an HTTP header); this module holds the two small helpers those edges share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password or token in its userinfo replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username if parts.password is not None else None
    userinfo = f"{user}:{_MASK}" if user else _MASK
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL userinfo in ``text`` and every literal occurrence of ``secrets``."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, _MASK)
    return out
