"""A registry that misbehaves on purpose, one repository per fault.

The repository name (after ``/v2/``) picks the fault; ``<n>`` counts how many
requests fail before the server answers properly (per repository, per server):

* ``ratelimit<n>/*``   429 with ``Retry-After: 1`` (seconds)
* ``ratedate<n>/*``    429 with ``Retry-After`` as an HTTP date one second ahead
* ``flaky<n>/*``       503 with a distribution error body
* ``down/*``           always 503
* ``slow/*``           answers after ``slow_seconds`` (the client should time out)
* ``trickle/*``        headers at once, then the body one byte per ``trickle_interval`` seconds (1 s by
                     default: no read ever times out); sets ``trickle_closed`` when the client hangs up
* ``pause/*``          answers after 50 ms (to observe concurrency: ``max_inflight['pause']``)
* ``truncated/*``      declares a Content-Length, sends half, closes the connection
* ``badjson/*``        a complete body holding truncated JSON
* ``garbage/*``        an HTML error page with status 200
* ``huge/*``           ``huge_bytes`` of valid JSON, with Content-Length
* ``hugechunked/*``    the same without Content-Length (chunked)
* ``notfound/*``       404 NAME_UNKNOWN; ``denied/*``: 403 DENIED
* ``redirect/*``       307 to the same path on ``other`` (another host:port)
* ``needauth/*``       401 Basic unless ``NEEDAUTH_LOGIN`` is sent, while ``/v2/`` itself is open
                     (use it on ``other``, whose ``/v2/`` needs no login)
* ``nodigest/*``       manifests without Docker-Content-Digest (client must hash the body)
* ``blobredirect/*``   a manifest whose config blob redirects to ``other`` (as S3 storage does)

With ``basic=(user, password)`` the ``/v2/`` ping answers a Basic challenge, so a
client sends ``Authorization`` on every request: ``other`` records whether it leaked.

Two hosts that are not registries at all stand for a dead one: :class:`BlackholeServer`
accepts TCP connections and never answers (counting them), :class:`RefusedPort` holds a
port where every connection is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from tests.servers.registry_loopback import Handler, LoopbackServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
CONFIG = json.dumps({"created": "2024-05-06T07:08:09.123456789Z", "os": "linux", "architecture": "amd64"}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
NEEDAUTH_LOGIN = ("repo-user", "repo-pass-456")
NEEDAUTH_HEADER = "Basic " + base64.b64encode(":".join(NEEDAUTH_LOGIN).encode()).decode()
_ROUTE = re.compile(r"^/v2/(?P<name>[^?]+?)/(?P<kind>tags/list|manifests|blobs)(?:/(?P<ref>[^?]*))?(?:\?.*)?$")


class FaultHandler(Handler):
    owner: FaultServer

    def handle_request(self) -> None:
        owner = self.owner
        path = self.path
        if path.startswith("/storage/"):
            self.reply(200, CONFIG, {"Content-Type": "application/octet-stream"})
            return
        if path == "/v2/":
            if owner.basic and self.headers.get("Authorization") != owner.basic_header:
                self.reply(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": 'Basic realm="faults"'})
            else:
                self.reply(200, {})
            return
        match = _ROUTE.match(path)
        if match is None:
            self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        name, kind = match["name"], match["kind"]
        fault = name.split("/", 1)[0]
        count = owner.hit(name + kind)
        failing = re.match(r"^(ratelimit|ratedate|flaky)(\d+)$", fault)
        if failing and count <= int(failing[2]):
            if failing[1] == "flaky":
                self.reply(503, {"errors": [{"code": "UNAVAILABLE", "message": "try later"}]})
            else:
                after = "1" if failing[1] == "ratelimit" else formatdate(time.time() + 1, usegmt=True)
                self.reply(429, {"errors": [{"code": "TOOMANYREQUESTS"}]}, {"Retry-After": after})
            return
        if fault == "needauth" and self.headers.get("Authorization") != NEEDAUTH_HEADER:
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": 'Basic realm="repo"'})
            return
        if fault == "down":
            self.reply(503, {"errors": [{"code": "UNAVAILABLE", "message": "down for maintenance"}]})
        elif fault == "pause":
            owner.slow_release.wait(0.05)
            self.reply(200, {"name": name, "tags": ["1.0.0"]})
        elif fault == "slow":
            owner.slow_release.wait(owner.slow_seconds)
            self.reply(200, {"name": name, "tags": ["late"]})
        elif fault == "trickle":
            self._trickle(name)
        elif fault == "truncated":
            body = json.dumps({"name": name, "tags": [f"v{i}" for i in range(200)]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif fault == "badjson":
            self.reply(200, b'{"name": "x", "tags": ["a", "b"')
        elif fault == "garbage":
            self.reply(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        elif fault in ("huge", "hugechunked"):
            self._huge(name, chunked=fault == "hugechunked")
        elif fault == "notfound":
            self.reply(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]})
        elif fault == "denied":
            self.reply(403, {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})
        elif fault == "redirect" and owner.other_url:
            self.reply(307, b"", {"Location": f"{owner.other_url}{path}"})
        elif kind == "tags/list":
            self.reply(200, {"name": name, "tags": ["1.0.0", "1.1.0"]})
        elif kind == "manifests":
            headers = {"Content-Type": OCI_MANIFEST}
            if fault != "nodigest":
                headers["Docker-Content-Digest"] = MANIFEST_DIGEST
            self.reply(200, MANIFEST, headers)
        elif kind == "blobs" and fault == "blobredirect":
            self.reply(307, b"", {"Location": f"{owner.other_url}/storage/{match['ref']}?X-Amz-Signature=abc"})
        elif kind == "blobs":
            self.reply(200, CONFIG, {"Content-Type": "application/octet-stream"})
        else:
            self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})

    def _trickle(self, name: str) -> None:
        """Headers now, then one byte per interval, watching for the client to hang up."""
        owner = self.owner
        body = json.dumps({"name": name, "tags": ["late"]}).encode().ljust(owner.trickle_bytes)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        try:
            for index in range(len(body)):
                readable, _, _ = select.select([conn], [], [], owner.trickle_interval)
                if readable and not conn.recv(1, socket.MSG_PEEK):
                    break  # EOF: the client closed the connection
                if owner.slow_release.is_set():
                    return  # the server is stopping
                conn.sendall(body[index : index + 1])
            else:
                return  # the whole body went out: the client waited for all of it
        except OSError:
            pass  # reset or broken pipe: closed too
        owner.trickle_closed.set()

    def _huge(self, name: str, *, chunked: bool) -> None:
        tags = ",".join(f'"tag-{i:08d}"' for i in range(self.owner.huge_bytes // 15))
        body = f'{{"name": "{name}", "tags": [{tags}]}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 65536):
                chunk = body[start : start + 65536]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class FaultServer(LoopbackServer):
    """See the module docstring; ``other`` is a second server standing for another host."""

    handler = FaultHandler

    def __init__(
        self,
        *,
        basic: tuple[str, str] | None = None,
        slow_seconds: float = 3.0,
        huge_bytes: int = 4 << 20,
        trickle_interval: float = 1.0,
        trickle_bytes: int = 600,
        lifetime: float = 600.0,
    ):
        super().__init__(lifetime)
        self.basic = basic
        self.basic_header = "Basic " + base64.b64encode(":".join(basic).encode()).decode() if basic else ""
        self.slow_seconds = slow_seconds
        self.slow_release = threading.Event()
        self.huge_bytes = huge_bytes
        self.trickle_interval = trickle_interval
        self.trickle_bytes = trickle_bytes
        self.trickle_closed = threading.Event()
        self.other_url = ""
        self._hits: dict[str, int] = {}

    def hit(self, key: str) -> int:
        with self._lock:
            self._hits[key] = self._hits.get(key, 0) + 1
            return self._hits[key]

    def stop(self) -> None:
        self.slow_release.set()  # let slow handlers finish at once
        super().stop()


class BlackholeServer:
    """Accepts TCP connections on 127.0.0.1 and never reads or answers (a hung registry or proxy).

    ``accepted`` counts the connections; all are closed on ``stop()`` or after ``lifetime``.
    """

    def __init__(self, lifetime: float = 120.0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self.accepted = 0

    @property
    def host(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.05)
            if readable:
                conn, _ = self._listener.accept()
                with self._lock:
                    self._conns.append(conn)
                    self.accepted += 1

    def start(self) -> BlackholeServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._timer.cancel()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._listener.close()

    def __enter__(self) -> BlackholeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RefusedPort:
    """A loopback port bound but never listened on: every connection to it is refused at once."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # held, so no other process takes the port meanwhile

    @property
    def host(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RefusedPort:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sock.close()


@pytest.fixture(scope="session")
def fault_servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    """``(registry, other)``: a Basic-auth fault registry and the "other host" it redirects to."""
    other = FaultServer()
    other.start()
    main = FaultServer(basic=("fault-user", "fault-pass-123"))
    main.other_url = other.base_url
    main.start()
    yield main, other
    main.stop()
    other.stop()
