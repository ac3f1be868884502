"""A registry that misbehaves on purpose, one repository per fault.

The repository name (after ``/v2/``) picks the fault; ``<n>`` counts how many
requests fail before the server answers properly (per repository, per server):

* ``ratelimit<n>/*``   429 with ``Retry-After: 1`` (seconds)
* ``ratedate<n>/*``    429 with ``Retry-After`` as an HTTP date one second ahead
* ``flaky<n>/*``       503 with a distribution error body
* ``down/*``           always 503
* ``slow/*``           answers after ``slow_seconds`` (the client should time out)
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
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
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

    def __init__(self, *, basic: tuple[str, str] | None = None, slow_seconds: float = 3.0, huge_bytes: int = 4 << 20):
        super().__init__()
        self.basic = basic
        self.basic_header = "Basic " + base64.b64encode(":".join(basic).encode()).decode() if basic else ""
        self.slow_seconds = slow_seconds
        self.slow_release = threading.Event()
        self.huge_bytes = huge_bytes
        self.other_url = ""
        self._hits: dict[str, int] = {}

    def hit(self, key: str) -> int:
        with self._lock:
            self._hits[key] = self._hits.get(key, 0) + 1
            return self._hits[key]

    def stop(self) -> None:
        self.slow_release.set()  # let slow handlers finish at once
        super().stop()


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
