"""The small HTTP listener both services share: health, readiness, metrics and webhooks.

The standard library's threading server is enough for a handful of endpoints that answer in
microseconds; a web framework would cost more import time than the whole listener. Request
bodies are capped, paths are never logged (a webhook path may carry a token), and IPv6 listen
addresses work.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import logging
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automator.errors import ConfigError

log = logging.getLogger("automator.httpd")
MAX_BODY = 5 * 1024 * 1024


def parse_listen(listen: str, flag: str = "--listen") -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} {listen!r}: expected host:port, e.g. 0.0.0.0:8080, [::]:8080 or :8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def hmac_hex(secret: bytes, body: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret, body, getattr(hashlib, algorithm)).hexdigest()


def same(secret: bytes, offered: str) -> bool:
    """Constant-time comparison of a shared secret with what a request offered."""
    return bool(secret) and hmac.compare_digest(secret, offered.encode())


@dataclass(frozen=True)
class Response:
    status: int
    body: str | bytes
    content_type: str = "text/plain; charset=utf-8"


GetHandler = Callable[[str], Response | None]
PostHandler = Callable[[str, Mapping[str, str], bytes], Response]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for every error; a client hanging up on a
        # kept-alive connection (registries do) is routine, anything else is logged once.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("http: client %s went away: %s", client_address[0], exc)
        else:
            log.error("http: request from %s failed", client_address[0], exc_info=exc)


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    get: GetHandler
    post: PostHandler
    server_version = "automator"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self._send(self.get(path) or Response(404, "not found"))

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(Response(400, "bad Content-Length"))
            return
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(Response(413, f"body over {MAX_BODY} bytes"))
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.post(self.path.split("?", 1)[0], headers, body)
        except Exception:  # a bug in a handler must not kill the listener thread's connection silently
            log.exception("webhook handler failed")
            response = Response(500, "internal error")
        self._send(response)

    def _send(self, response: Response) -> None:
        data = response.body.encode() if isinstance(response.body, str) else response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The request line is left out on purpose: webhook paths may carry a secret token.
        log.debug("http %s %s -> %s", self.command, self.path.split("/", 3)[1:3], code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class Listener:
    """A threading HTTP server bound at construction (so a bad address fails at start-up)."""

    def __init__(self, listen: str, get: GetHandler, post: PostHandler, *, flag: str = "--listen") -> None:
        host, port = parse_listen(listen, flag)
        handler = type("Handler", (_Handler,), {"get": staticmethod(get), "post": staticmethod(post)})
        server_class = _V6Server if ":" in host else _Server
        try:
            self.server = server_class((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"{flag} {listen!r}: cannot listen there: {exc.strerror or exc}") from exc
        self.address: tuple[str, int] = self.server.server_address[:2]  # type: ignore[assignment]
        self._thread: threading.Thread | None = None

    def start(self, name: str = "http") -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()
