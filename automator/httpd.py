"""The small HTTP listener both services share: health, readiness, metrics and webhooks.

The standard library's threading server is enough for a handful of endpoints that answer in
microseconds; a web framework would cost more import time than the whole listener. Webhook
endpoints face the internet, so the listener defends itself: at most ``MAX_CONNECTIONS``
connections at once (503 beyond), a timeout on every read and a deadline on every connection
(a client trickling bytes cannot hold a slot), capped bodies, and a pre-check that refuses a
request from its path and headers before its body is read (also before ``100 Continue``).
It is not a substitute for an ingress that buffers requests in front of a public endpoint.
Paths are never logged (a webhook path may carry a token), and IPv6 listen addresses work.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automator.errors import ConfigError

log = logging.getLogger("automator.httpd")
MAX_BODY = 1024 * 1024  # default cap; registry payloads are a few kB, a git push hook can be more
MAX_CONNECTIONS = 32
READ_TIMEOUT = 15.0  # per read
CONNECTION_DEADLINE = 30.0  # whole connection, keep-alive included: no slot is held longer


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


class SecretFile:
    """A shared secret in a file, read again whenever the file changes.

    A mounted Kubernetes Secret is updated in place (a symlink swap), so a rotated webhook
    secret is honoured without a restart. If the new file cannot be read or is empty, the
    last good value is kept and a warning logged.
    """

    def __init__(self, path: str, flag: str = "--webhook-secret-file") -> None:
        self.path, self.flag = Path(path), flag
        self._stamp: tuple[int, int, int] | None = None
        self._bad: tuple[int, int, int] | None = None  # a changed file that could not be used
        self._warned = False
        self._lock = threading.Lock()
        self._value = b""
        try:
            self._value, self._stamp = self._read()
        except OSError as exc:
            raise ConfigError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{flag} {path}: {exc}") from None

    def _read(self) -> tuple[bytes, tuple[int, int, int]]:
        st = self.path.stat()
        try:
            value = self.path.read_text(encoding="utf-8").strip().encode()
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        if not value:
            raise ValueError("is empty")
        return value, (st.st_ino, st.st_mtime_ns, st.st_size)

    def __call__(self) -> bytes:
        with self._lock:
            stamp: tuple[int, int, int] | None = None
            try:
                st = self.path.stat()
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if stamp not in (self._stamp, self._bad):
                    self._value, self._stamp = self._read()
                    log.info("%s %s changed: using the new secret", self.flag, self.path)
            except (OSError, ValueError) as exc:
                self._bad = stamp if isinstance(exc, ValueError) else None
                if not self._warned:  # once per bad spell: callers are strangers' requests
                    log.warning("%s %s: %s; keeping the previous secret", self.flag, self.path, exc)
                self._warned = True
            else:
                self._warned = False
            return self._value


SecretSource = Callable[[], bytes]


def secret_source(secret: str | SecretSource) -> SecretSource:
    """A fixed string (tests, or none: webhooks off) or a :class:`SecretFile`, as one callable."""
    if callable(secret):
        return secret
    fixed = secret.encode()
    return lambda: fixed


@dataclass(frozen=True)
class Response:
    status: int
    body: str | bytes
    content_type: str = "text/plain; charset=utf-8"


GetHandler = Callable[[str], Response | None]
PostHandler = Callable[[str, Mapping[str, str], bytes], Response]
# Answers a POST from its path and (lower-cased) headers alone, before the body is read; None
# lets the request through.
PreCheck = Callable[[str, Mapping[str, str]], Response | None]


def _no_precheck(path: str, headers: Mapping[str, str]) -> Response | None:
    return None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    slots: threading.BoundedSemaphore
    max_body: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: dict[Any, float] = {}  # connection -> monotonic time it was accepted
        self._open_lock = threading.Lock()
        self._closing = threading.Event()
        threading.Thread(target=self._reap, name="http-reaper", daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # full: answer at once, never queue a thread
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
                )
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nobody else will give the slot back
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: Any) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is None:
                return
        self.slots.release()

    def _reap(self) -> None:
        """Cut connections older than CONNECTION_DEADLINE, however slowly they trickle bytes in."""
        while not self._closing.wait(1.0):
            cutoff = time.monotonic() - CONNECTION_DEADLINE
            with self._open_lock:
                old = [conn for conn, since in self._open.items() if since < cutoff]
            for conn in old:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # the handler's next read or write fails

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for every error; a client hanging up on a
        # kept-alive connection (registries do) is routine, anything else is logged once.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):  # a reset, a timeout, a socket we cut
            log.debug("http: client %s went away: %s", client_address[0], exc)
        else:
            log.error("http: request from %s failed", client_address[0], exc_info=exc)


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    get: GetHandler
    post: PostHandler
    precheck: PreCheck
    server: _Server
    server_version = "automator"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT  # a client that stalls mid-request loses its connection

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self._send(self.get(path) or Response(404, "not found"))

    def _request(self) -> tuple[str, dict[str, str]]:
        return self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()}

    def _early(self, path: str, headers: Mapping[str, str]) -> Response | None:
        """An answer decided before the body is read: bad framing, a refusal, or a body too large."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Response(411, "send a Content-Length")
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            return Response(400, "bad Content-Length")
        early = self.precheck(path, headers)
        if early is None and (length < 0 or length > self.server.max_body):
            early = Response(413, f"body over {self.server.max_body} bytes")
        return early

    def handle_expect_100(self) -> bool:
        # decide before "100 Continue" invites the body
        early = self._early(*self._request()) if self.command == "POST" else None
        if early is not None:
            self._refuse(early)
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        path, headers = self._request()
        early = self._early(path, headers)
        if early is not None:
            self._refuse(early)
            return
        body = self.rfile.read(int(headers.get("content-length") or 0))
        try:
            response = self.post(path, headers, body)
        except Exception:  # a bug in a handler must not kill the listener thread's connection silently
            log.exception("webhook handler failed")
            response = Response(500, "internal error")
        self._send(response)

    def _refuse(self, response: Response) -> None:
        self.close_connection = True  # the unread body must not be taken for a next request
        self._send(response)

    def _send(self, response: Response) -> None:
        data = response.body.encode() if isinstance(response.body, str) else response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Only the path's first segment: the rest may be a token, or a secret put where the
        # source belongs (which is why the source is not logged either).
        first = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        log.debug("http %s /%s/... -> %s", self.command, first if first in ("hooks", "healthz") else "?", code)

    def log_error(self, format: str, *args: Any) -> None:
        # send_error's messages quote the raw request line, which may carry a token
        log.debug("http: refused a malformed request")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class Listener:
    """A threading HTTP server bound at construction (so a bad address fails at start-up)."""

    def __init__(
        self,
        listen: str,
        get: GetHandler,
        post: PostHandler,
        *,
        precheck: PreCheck = _no_precheck,
        max_body: int = MAX_BODY,
        flag: str = "--listen",
    ) -> None:
        host, port = parse_listen(listen, flag)
        handler = type(
            "Handler",
            (_Handler,),
            {"get": staticmethod(get), "post": staticmethod(post), "precheck": staticmethod(precheck)},
        )
        server_class = _V6Server if ":" in host else _Server
        try:
            self.server = server_class((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"{flag} {listen!r}: cannot listen there: {exc.strerror or exc}") from exc
        self.server.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.server.max_body = max_body
        self.address: tuple[str, int] = self.server.server_address[:2]  # type: ignore[assignment]
        self._thread: threading.Thread | None = None

    def start(self, name: str = "http") -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()
