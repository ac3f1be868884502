"""A base for the small registry-like test servers: stdlib HTTP in a thread, on loopback.

Each server binds 127.0.0.1 port 0 (the kernel picks), records every request, and
stops on ``stop()`` or, at the latest, after ``lifetime`` seconds by itself.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it (raw path with query, lower-case header names)."""

    method: str
    path: str
    headers: dict[str, str]

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> str:
        return urlsplit(self.path).query

    @property
    def group(self) -> str:
        """The first repository path component (``/v2/<group>/...``): what the test servers key faults on."""
        parts = self.route.split("/")
        return parts[2] if len(parts) > 3 and parts[1] == "v2" else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class Handler(BaseHTTPRequestHandler):
    """Subclasses implement ``handle_request``; helpers write replies."""

    protocol_version = "HTTP/1.1"
    owner: ClassVar[Any]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        self.owner.record(seen)
        self.owner.enter(seen.group)
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.handle_request()
        finally:
            self.owner.leave(seen.group)

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def handle_request(self) -> None:
        raise NotImplementedError

    def reply(self, status: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        hdrs = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        hdrs.update(headers or {})
        for key, value in hdrs.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class LoopbackServer:
    """Runs ``handler`` on 127.0.0.1 in a daemon thread until stopped (or ``lifetime`` passes)."""

    handler: type[Handler] = Handler

    def __init__(self, lifetime: float = 600.0) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        handler = type(f"{type(self).__name__}Handler", (self.handler,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False
        self.inflight: dict[str, int] = {}
        self.max_inflight: dict[str, int] = {}

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def enter(self, group: str) -> None:
        """Count a request in flight, per group, keeping the maximum seen."""
        with self._lock:
            self.inflight[group] = self.inflight.get(group, 0) + 1
            self.max_inflight[group] = max(self.max_inflight.get(group, 0), self.inflight[group])

    def leave(self, group: str) -> None:
        with self._lock:
            self.inflight[group] -= 1

    def requests_to(self, prefix: str) -> list[Seen]:
        """Requests whose path starts with ``prefix``."""
        with self._lock:
            return [s for s in self.seen if s.route.startswith(prefix)]
