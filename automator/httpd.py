"""The small HTTP listener both services share: health, readiness, metrics and webhooks.

The standard library's threading server is enough for a handful of endpoints that answer in
microseconds; a web framework would cost more import time than the whole listener. Webhook
endpoints face the internet, so the listener defends itself, and its defences must never take
health and metrics down with them (a probe that fails restarts the pod). Every connection is
accepted, and is in one of two budgets at a time:

* **Waiting** for a request head (the request line and headers), from its accept or from the
  previous response on a kept-alive connection: at most ``MAX_WAITING`` connections, each for at
  most ``HEAD_TIMEOUT``. When one more arrives, the connection that has waited longest is cut to
  make room, so idle or trickling clients can delay nobody: a probe sends its head at once.
* **Serving** a request once its head is in. A GET (health, readiness, metrics, status: answered
  from memory in microseconds) is always served. A request with a body (a POST: a webhook) needs
  one of ``MAX_CONNECTIONS`` webhook slots, held until its response is sent; beyond that it is
  answered 503 at once, from its head, before its body is read or ``100 Continue`` is sent.

Besides: a timeout on every read, a deadline on every connection (a client trickling bytes cannot
hold a thread), capped bodies, and a pre-check that refuses a request from its path and headers
before its body is read (also before ``100 Continue``). Threads are bounded by the two budgets
(plus GETs in flight, microseconds each). Time is read from an injectable clock. It is not a
substitute for an ingress that buffers requests in front of a public endpoint. Paths are never
logged (a webhook path may carry a token), and IPv6 listen addresses work.
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
from urllib.parse import parse_qsl

from automator.errors import ConfigError

log = logging.getLogger("automator.httpd")
MAX_BODY = 1024 * 1024  # default cap; registry payloads are a few kB, a git push hook can be more
MAX_CONNECTIONS = 32  # webhook requests served at once; one more is answered 503
MAX_WAITING = 128  # connections waiting for a request head; one more cuts the longest-waiting
HEAD_TIMEOUT = 5.0  # for a request line and headers, from the accept or the previous response
READ_TIMEOUT = 15.0  # per read
CONNECTION_DEADLINE = 30.0  # whole connection, keep-alive included: no thread is held longer
REAP_INTERVAL = 0.5  # how often the deadlines are checked
Clock = Callable[[], float]  # monotonic seconds


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
    headers: tuple[tuple[str, str], ...] = ()  # more response headers (Set-Cookie, Location, ...)


@dataclass(frozen=True)
class Request:
    """A GET as a page handler sees it: the path, the query's parameters (the last of each name)
    and the headers, names lower-cased."""

    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


GetHandler = Callable[[str], Response | None]
# Answers a GET that needs more than its path (the dashboard's pages: query, cookies); None
# passes it on to the GetHandler.
PageHandler = Callable[[Request], Response | None]
PostHandler = Callable[[str, Mapping[str, str], bytes], Response]
# Answers a POST from its path and (lower-cased) headers alone, before the body is read; None
# lets the request through.
PreCheck = Callable[[str, Mapping[str, str]], Response | None]


def _no_precheck(path: str, headers: Mapping[str, str]) -> Response | None:
    return None


@dataclass
class _Conn:
    """One accepted connection's place in the budgets."""

    accepted: float
    waiting: float | None  # since when it has waited for a request head; None while serving one
    slot: bool = False  # holds a webhook slot
    cut: bool = False  # shut down by the listener; its thread is ending


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = MAX_WAITING  # the listen backlog: a burst of connects must not drop a probe

    def __init__(self, address: tuple[str, int], handler: type[_Handler], *, clock: Clock, max_body: int) -> None:
        self.clock, self.max_body = clock, max_body
        self.max_hooks, self.max_waiting = MAX_CONNECTIONS, MAX_WAITING
        self.head_timeout, self.deadline = HEAD_TIMEOUT, CONNECTION_DEADLINE
        self._open: dict[socket.socket, _Conn] = {}
        self._hooks = 0  # webhook slots taken
        self._open_lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__(address, handler)  # binds: may raise, and then calls server_close()
        threading.Thread(target=self._reap, name="http-reaper", daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.waiting(request)  # every connection is accepted: a probe must never be turned away
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nobody else will forget the connection
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def waiting(self, request: socket.socket) -> None:
        """The connection now waits for a request head: it gives back any webhook slot, and if too
        many connections wait, the one that has waited longest is cut."""
        now = self.clock()
        with self._open_lock:
            conn = self._open.setdefault(request, _Conn(now, now))
            if conn.slot:
                conn.slot, self._hooks = False, self._hooks - 1
            if conn.waiting is None:
                conn.waiting = now
            queue = [(c.waiting, r) for r, c in self._open.items() if c.waiting is not None and not c.cut]
            oldest = min(queue, key=lambda item: item[0])[1] if len(queue) > self.max_waiting else None
            if oldest is not None:
                self._open[oldest].cut = True
        if oldest is not None:
            _cut(oldest)

    def serving(self, request: socket.socket, *, webhook: bool) -> bool:
        """A request head is in. A webhook also needs a slot: False when none is free."""
        with self._open_lock:
            conn = self._open.get(request)
            if conn is None:
                return False
            conn.waiting = None
            if webhook and not conn.slot:
                if self._hooks >= self.max_hooks:
                    return False
                conn.slot, self._hooks = True, self._hooks + 1
            return True

    def _forget(self, request: socket.socket) -> None:
        with self._open_lock:
            conn = self._open.pop(request, None)
            if conn is not None and conn.slot:
                self._hooks -= 1

    def _reap(self) -> None:
        """Cut connections past a deadline, however slowly they trickle bytes in."""
        while not self._closing.wait(REAP_INTERVAL):
            now = self.clock()
            with self._open_lock:
                late = [
                    request
                    for request, conn in self._open.items()
                    if not conn.cut
                    and (
                        now - conn.accepted > self.deadline
                        or (conn.waiting is not None and now - conn.waiting > self.head_timeout)
                    )
                ]
                for request in late:
                    self._open[request].cut = True
            for request in late:
                _cut(request)

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


def _cut(request: socket.socket) -> None:
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)  # the handler's next read or write fails


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    get: GetHandler
    page: PageHandler | None
    post: PostHandler
    precheck: PreCheck
    server: _Server
    server_version = "automator"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT  # a client that stalls mid-request loses its connection

    def handle_one_request(self) -> None:
        self.server.waiting(self.connection)  # once per request: kept-alive connections wait too
        super().handle_one_request()

    def do_GET(self) -> None:
        self.server.serving(self.connection, webhook=False)  # always served: answered from memory
        path, _, query = self.path.partition("?")
        response = None
        if self.page is not None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                response = self.page(Request(path, dict(parse_qsl(query, max_num_fields=32)), headers))
            except ValueError:  # more than 32 query parameters
                response = Response(400, "too many query parameters")
            except Exception:  # a bug in a page must not take health and metrics down with it
                log.exception("page handler failed")
                response = Response(500, "internal error")
        self._send(response or self.get(path) or Response(404, "not found"))

    def _request(self) -> tuple[str, dict[str, str]]:
        return self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()}

    def _early(self, path: str, headers: Mapping[str, str]) -> Response | None:
        """An answer decided before the body is read: no webhook slot, bad framing, a refusal, or a
        body too large."""
        if not self.server.serving(self.connection, webhook=True):  # answer at once, never queue
            return Response(503, "busy: too many webhook requests at once; retry later")
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
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Only the path's first segment: the rest may be a token, or a secret put where the
        # source belongs (which is why the source is not logged either).
        first = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        shown = first if first in ("hooks", "healthz", "policies", "static", "login") else "?"
        log.debug("http %s /%s/... -> %s", self.command, shown, code)

    def log_error(self, format: str, *args: Any) -> None:
        # send_error's messages quote the raw request line, which may carry a token
        log.debug("http: refused a malformed request")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class Listener:
    """A threading HTTP server bound at construction (so a bad address fails at start-up).

    The budgets and deadlines are the module's constants when it is constructed; ``clock`` is
    the monotonic time the deadlines are measured in.
    """

    def __init__(
        self,
        listen: str,
        get: GetHandler,
        post: PostHandler,
        *,
        precheck: PreCheck = _no_precheck,
        page: PageHandler | None = None,
        max_body: int = MAX_BODY,
        flag: str = "--listen",
        clock: Clock = time.monotonic,
    ) -> None:
        host, port = parse_listen(listen, flag)
        handler = type(
            "Handler",
            (_Handler,),
            {
                "get": staticmethod(get),
                "post": staticmethod(post),
                "precheck": staticmethod(precheck),
                "page": staticmethod(page) if page is not None else None,
            },
        )
        server_class = _V6Server if ":" in host else _Server
        try:
            self.server = server_class((host, port), handler, clock=clock, max_body=max_body)
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


# --------------------------------------------------------------------------- webhook proofs


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "").strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if rest and scheme.lower() in ("bearer", "secret", "token") else value


@dataclass(frozen=True)
class Proof:
    """How one webhook source proves it knows the shared secret, as that sender can.

    A proof complete without the body (the secret as the last path segment, in an
    ``Authorization`` header, or in a header of its own) is checked before the body is read;
    a signature (an HMAC of the body in ``signature``) only once the body is in. Both services
    read their sources from :data:`PROOFS`, so one sender is authenticated one way everywhere.
    """

    how: str  # what to send, for the 401
    path_token: bool = False  # the secret as the last path segment
    bearer: bool = False  # Authorization: Bearer|Token|Secret <secret>
    secret_header: str = ""  # a header holding the secret itself
    signature: str = ""  # a header holding an HMAC of the body
    algorithm: str = "sha256"
    prefix: str = ""  # what precedes the hex digest in ``signature``

    def without_body(self, token: str, headers: Mapping[str, str], secret: bytes) -> bool:
        """Proved by the path and headers alone."""
        if self.path_token and token and same(secret, token):
            return True
        if self.bearer and same(secret, _bearer(headers)):
            return True
        return bool(self.secret_header) and same(secret, headers.get(self.secret_header, ""))

    def may_prove(self, token: str, headers: Mapping[str, str], secret: bytes) -> bool:
        """Not refused before the body is read: proved already, or a signature to check."""
        return self.without_body(token, headers, secret) or bool(self.signature and headers.get(self.signature))

    def proved(self, token: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
        if self.without_body(token, headers, secret):
            return True
        if not self.signature:
            return False
        return same(f"{self.prefix}{hmac_hex(secret, body, self.algorithm)}".encode(), headers.get(self.signature, ""))


_BEARER_OR_PATH = "Authorization: Bearer <secret> or the secret as the last path segment"
_PATH = "the secret as the last path segment"
PROOFS: Mapping[str, Proof] = {
    # registries (the automator's --webhook-listen)
    "distribution": Proof(_BEARER_OR_PATH, path_token=True, bearer=True),
    "acr": Proof(_BEARER_OR_PATH, path_token=True, bearer=True),
    "harbor": Proof(_BEARER_OR_PATH, path_token=True, bearer=True),
    "dockerhub": Proof(_PATH, path_token=True),
    "quay": Proof(_PATH, path_token=True),
    "gcr": Proof(_PATH, path_token=True),
    "nexus": Proof(
        "X-Nexus-Webhook-Signature or the secret as the last path segment",
        path_token=True,
        signature="x-nexus-webhook-signature",
        algorithm="sha1",
    ),
    "jfrog": Proof(
        "X-JFrog-Event-Auth or the secret as the last path segment",
        path_token=True,
        secret_header="x-jfrog-event-auth",
        signature="x-jfrog-event-auth",
    ),
    # forges and CI (both services)
    "github": Proof("an X-Hub-Signature-256 HMAC of the body", signature="x-hub-signature-256", prefix="sha256="),
    "generic": Proof("an X-Signature-256 HMAC of the body", signature="x-signature-256", prefix="sha256="),
    "gitlab": Proof("X-Gitlab-Token with the secret", secret_header="x-gitlab-token"),
}
