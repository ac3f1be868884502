"""A reverse proxy of our own in front of a registry that records every request: who sent it
(the User-Agent, which names the replica under ``--leader-elect``), the method and the path.

Policies name the proxy's address as their registry host, so every request of every process
passes through it; the tests count tag listings per replica and repository from its log.
Plain HTTP/1.1, one upstream connection per request, bounded bodies; it stops by itself after
``lifetime`` seconds if a test forgets it.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
MAX_BODY = 64 << 20
LISTING = re.compile(r"^/v2/(?P<repo>.+)/tags/list(?:\?.*)?$")


class CountingProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, lifetime: float = 600.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.log: list[tuple[str, str, str]] = []  # (user agent, method, path)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.log.append((self.headers.get("User-Agent", ""), self.command, self.path))
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read(MAX_BODY + 1)
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def listings(self) -> Counter[tuple[str, str]]:
        """Tag listings (first pages) per (replica, repository): a replica is the User-Agent's
        ``(replica NAME)``, or the whole User-Agent without one."""
        out: Counter[tuple[str, str]] = Counter()
        with self._lock:
            log = list(self.log)
        for agent, method, path in log:
            found = LISTING.match(path)
            if method != "GET" or found is None or "last=" in path:
                continue
            who = re.search(r"\(replica ([^)]+)\)", agent)
            out[(who.group(1) if who else agent, found.group("repo"))] += 1
        return out

    def clear(self) -> None:
        with self._lock:
            self.log.clear()

    def __enter__(self) -> CountingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
