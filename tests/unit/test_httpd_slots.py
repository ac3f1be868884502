"""The shared listener's connection budgets: idle or slow clients never take health and metrics down.

A real :class:`~automator.httpd.Listener` on loopback (port chosen by the OS), with handlers of
the test's own: GETs answer at once, a POST holds its webhook slot until the test lets it go.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping

import pytest

from automator import httpd
from automator.errors import ConfigError
from automator.httpd import Listener, Response

DEADLINE = 10.0
IDLE = 40  # more connections than MAX_CONNECTIONS, the webhook budget
PROBES = ("/healthz", "/readyz", "/metrics")


def wait_until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out waiting for {what}")


class Service:
    """GETs of the probe paths answer 200; a POST waits for ``release`` (at most DEADLINE)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> Response | None:
        return Response(200, "ok") if path in PROBES else None

    def post(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        with self._lock:
            self.entered += 1
        self.release.wait(DEADLINE)
        return Response(200, "done")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for conn in opened:
        conn.close()


@pytest.fixture
def serve(sockets: list[socket.socket]) -> Iterator[Callable[..., tuple[Listener, Service]]]:
    started: list[tuple[Listener, Service]] = []

    def start(**kwargs: object) -> tuple[Listener, Service]:
        service = Service()
        listener = Listener("127.0.0.1:0", service.get, service.post, **kwargs)  # type: ignore[arg-type]
        listener.start("test-http")
        started.append((listener, service))
        return listener, service

    yield start
    for conn in sockets:  # hang up first, so no handler is left reading
        conn.close()
    for listener, service in started:
        service.release.set()
        listener.close()


def connect(listener: Listener, sockets: list[socket.socket], first: bytes = b"") -> socket.socket:
    conn = socket.create_connection(listener.address, timeout=DEADLINE)
    sockets.append(conn)
    if first:
        conn.sendall(first)
    return conn


def hold_idle(listener: Listener, sockets: list[socket.socket], count: int) -> list[socket.socket]:
    """Connections that never finish a request: silent, half a request line, or half the headers."""
    partial = (b"", b"GET /heal", b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\n")
    return [connect(listener, sockets, partial[i % len(partial)]) for i in range(count)]


def status(listener: Listener, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection(*listener.address, timeout=DEADLINE)
    try:
        conn.request(method, path, body=body)
        return conn.getresponse().status
    except OSError:  # refused or cut: certainly not an answer
        return -1
    finally:
        conn.close()


def closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def post_head(path: str = "/hooks/generic", length: int = 2, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_probes_answer_while_idle_connections_hold_the_listener(
    serve: Callable[..., tuple[Listener, Service]], sockets: list[socket.socket]
) -> None:
    listener, _ = serve()
    hold_idle(listener, sockets, IDLE)
    answers = [status(listener, "GET", PROBES[i % len(PROBES)]) for i in range(20)]
    assert answers == [200] * 20


def test_webhooks_beyond_their_budget_get_503_while_probes_still_answer(
    serve: Callable[..., tuple[Listener, Service]], sockets: list[socket.socket]
) -> None:
    listener, service = serve()
    in_flight = [connect(listener, sockets, post_head() + b"{}") for _ in range(httpd.MAX_CONNECTIONS)]
    wait_until(lambda: service.entered == httpd.MAX_CONNECTIONS, "every webhook slot to be taken")
    hold_idle(listener, sockets, IDLE)
    # one webhook more is refused at once, from its head, with its body unread...
    late = connect(listener, sockets, post_head() + b"{}")
    answer = late.recv(300)
    assert answer.startswith(b"HTTP/1.1 503") and b"Connection: close" in answer
    # ...and before "100 Continue" invites a body
    eager = connect(listener, sockets, post_head("/hooks/generic", 9000, "Expect: 100-continue"))
    assert eager.recv(300).startswith(b"HTTP/1.1 503")
    # health and metrics do not queue behind webhook traffic
    assert [status(listener, "GET", path) for path in PROBES * 5] == [200] * 15
    assert service.entered == httpd.MAX_CONNECTIONS
    # the webhooks in flight finish, and give their slots back
    service.release.set()
    for conn in in_flight:
        assert conn.recv(300).startswith(b"HTTP/1.1 200")
    wait_until(lambda: status(listener, "POST", "/hooks/generic", b"{}") == 200, "a webhook slot to be free")


def test_a_connection_that_never_finishes_its_request_is_cut_at_the_head_deadline(
    serve: Callable[..., tuple[Listener, Service]], sockets: list[socket.socket]
) -> None:
    clock = FakeClock()
    listener, service = serve(clock=clock)
    working = connect(listener, sockets, post_head() + b"{}")
    wait_until(lambda: service.entered == 1, "the webhook to be in its handler")
    silent, half = hold_idle(listener, sockets, 2)
    assert status(listener, "GET", "/healthz") == 200
    clock.now += httpd.HEAD_TIMEOUT + 1  # the idle ones are past their deadline; the webhook is not
    silent.settimeout(DEADLINE)
    assert closed(silent) and closed(half)
    service.release.set()
    assert working.recv(300).startswith(b"HTTP/1.1 200")


def test_the_connection_waiting_longest_makes_room_for_a_new_one(
    serve: Callable[..., tuple[Listener, Service]], sockets: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpd, "MAX_WAITING", 8)
    listener, _ = serve()
    idle = hold_idle(listener, sockets, 24)
    assert [status(listener, "GET", path) for path in PROBES * 4] == [200] * 12
    assert all(closed(conn) for conn in idle[:16])  # evicted by the 16 that came after them


def test_an_address_in_use_is_a_config_error(serve: Callable[..., tuple[Listener, Service]]) -> None:
    listener, service = serve()
    host, port = listener.address
    with pytest.raises(ConfigError, match="cannot listen there"):
        Listener(f"{host}:{port}", service.get, service.post)
