"""A registry with the OCI 1.1 referrers API: a loopback proxy in front of Debian's docker-registry.

distribution 2.8 has no ``GET /v2/<name>/referrers/<digest>``; this server answers it from
``referrers`` (filled by the test with the descriptors :func:`tests.servers.cosign.sign_bundle_referrer`
returns), as an OCI image index, and passes every other request to the registry unchanged. With
``api = False`` it answers 404 there (a registry without the API) and only counts the requests.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.servers.registry import RunningRegistry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")


class ReferrersProxy:
    """The proxy's state: its address, and the referrers it lists per (repository, digest)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.referrers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.asked: list[str] = []
        self.api = True  # False: answer the referrers API 404, as a registry without it (distribution 2.8)
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def image(self, repo: str) -> str:
        return f"{self.host}/{repo}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                found = _REFERRERS.match(urlsplit(self.path).path)
                if found is not None and self.command == "GET":
                    proxy.asked.append(found["digest"])
                    if not proxy.api:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    entries = proxy.referrers.get((found["name"], found["digest"]), [])
                    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", OCI_INDEX)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                if self.command != "HEAD" or resp.getheader("Content-Length") is None:
                    self.send_header("Content-Length", str(len(payload)))
                else:
                    self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        return Handler


@pytest.fixture
def referrers_registry(registry: RunningRegistry) -> Iterator[ReferrersProxy]:
    proxy = ReferrersProxy(registry.base_url)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
