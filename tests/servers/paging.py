"""A registry that pages ``tags/list`` in every way the spec and real registries allow.

Each repository's first path component picks the behaviour (25 tags ``t00``..``t24``
unless said otherwise; page size is the ``n`` asked for, 10 when absent):

* ``rel/*``      ``Link: </v2/<name>/tags/list?n=N&last=t09>; rel="next"`` (relative)
* ``abs/*``      the same link as an absolute URL
* ``opaque/*``   ``?cursor=<opaque>`` with ``+``, ``/``, ``=`` and ``%2F`` in it; the server
                 refuses (400) a cursor that was not sent back byte for byte
* ``loop/*``     the second page links back to the first page's URL
* ``repeat/*``   every next link is a new URL, but the page content never changes
* ``endless/*``  always a next page with new tags
* ``ignoren/*``  ignores ``n``: one page with every tag, unsorted (distribution 2.8)
* ``empty/*``    ``{"tags": null}``
* ``missing/*``  404 NAME_UNKNOWN
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.servers.registry_loopback import Handler, LoopbackServer

TAGS = tuple(f"t{i:02d}" for i in range(25))
_ROUTE = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


def _cursor(index: int) -> str:
    # looks like what some registries send: base64 with '+', '/', '=' and an escaped slash
    raw = base64.b64encode(f"~~>{index:04d}?".encode()).decode()
    return f"{raw}%2Fx+y"


class PagingHandler(Handler):
    def handle_request(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/v2/":
            self.reply(200, {})
            return
        match = _ROUTE.match(parts.path)
        if match is None:
            self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such route"}]})
            return
        name = match["name"]
        kind = name.split("/", 1)[0]
        query = parse_qs(parts.query)
        n = int(query.get("n", ["10"])[0])
        if kind == "missing":
            self.reply(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]})
            return
        if kind == "empty":
            self.reply(200, {"name": name, "tags": None})
            return
        if kind == "ignoren":
            self.reply(200, {"name": name, "tags": list(reversed(TAGS))})
            return
        start = 0
        if kind == "opaque" and "cursor" in parts.query:
            raw = parts.query.split("cursor=", 1)[1].split("&", 1)[0]
            expected = [_cursor(i) for i in range(0, 1000, 1)]
            if raw not in expected:
                self.reply(400, {"errors": [{"code": "PAGINATION_NUMBER_INVALID", "message": f"bad cursor {raw}"}]})
                return
            start = expected.index(raw)
        elif "last" in query and kind != "repeat":
            last = query["last"][0]
            start = TAGS.index(last) + 1 if last in TAGS else int(last.lstrip("e")) + 1
        page = [f"e{i}" for i in range(start, start + n)] if kind == "endless" else list(TAGS[start : start + n])
        end = start + n
        headers: dict[str, str] = {}
        more = kind in ("endless", "repeat") or end < len(TAGS)
        if kind == "loop" and start > 0:
            headers["Link"] = f'</v2/{name}/tags/list?n={n}>; rel="next"'
        elif more:
            last_tag = page[-1] if kind != "repeat" else f"r{len(self.owner.seen)}"
            if kind == "opaque":
                target = f"/v2/{name}/tags/list?cursor={_cursor(end)}&n={n}"
            else:
                target = f"/v2/{name}/tags/list?n={n}&last={last_tag}"
            if kind == "abs":
                target = f"http://{self.owner.host}{target}"
            headers["Link"] = f'<{target}>; rel="next"'
        self.reply(200, {"name": name, "tags": page}, headers)


class PagingServer(LoopbackServer):
    """See the module docstring for the repositories it serves."""

    handler = PagingHandler


@pytest.fixture(scope="session")
def paging_server() -> Iterator[PagingServer]:
    """A started :class:`PagingServer` (plain HTTP on 127.0.0.1)."""
    server = PagingServer()
    server.start()
    yield server
    server.stop()
