"""A smart-HTTP git server on loopback: ``git http-backend`` behind Basic auth.

``http.server.CGIHTTPRequestHandler`` is deprecated (and gone in Python 3.13), so this module
bridges CGI itself: it reads the request body (``Content-Length`` or chunked), passes it to
``git http-backend`` on stdin with the CGI variables it reads (``GIT_PROJECT_ROOT``,
``PATH_INFO``, ``QUERY_STRING``, ``REQUEST_METHOD``, ``CONTENT_TYPE``, ``REMOTE_USER``,
``HTTP_CONTENT_ENCODING`` for git's gzip'd requests, ``HTTP_GIT_PROTOCOL`` for protocol v2) and
turns the CGI reply (``Status:`` header, other headers, body) into the HTTP response.

Every request must carry ``Authorization: Basic <user:token>`` with the server's token
(any user name); otherwise 401. The server stops when its context manager exits or, at the
latest, after ``lifetime`` seconds by itself::

    with git_http_server(tmp_path / "srv", token="s3cret") as srv:
        bare = srv.create_repo("org/app.git")       # uploadpack.allowFilter=true
        url = srv.url("org/app.git")                # http://127.0.0.1:<port>/org/app.git
        ...
        assert all(r.status != 500 for r in srv.requests)

Registered as a plugin (``pytest_plugins = ["tests.servers.git_http"]``) it also provides the
``git_http`` fixture. :func:`write_commit` plays "someone else" pushing to a bare repository.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

MAX_BODY = 256 * 1024 * 1024
GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


@dataclass(frozen=True)
class Request:
    """One request as the server saw it; ``user`` is set when the token matched."""

    method: str
    path: str
    query: str
    status: int
    user: str | None
    authorization: str
    content_encoding: str
    chunked: bool
    body_size: int


@dataclass
class GitHttpServer:
    root: Path
    token: str
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def create_repo(self, name: str, *, allow_filter: bool = True, branch: str = "main") -> Path:
        """A bare repository served at :meth:`url` ``(name)``; pushes allowed for authenticated users."""
        bare = self.root / name
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", "-b", branch, str(bare))
        _git("config", "http.receivepack", "true", cwd=bare)
        _git("config", "uploadpack.allowFilter", "true" if allow_filter else "false", cwd=bare)
        _git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
        return bare

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # a stalled client cannot hold a handler thread for ever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._serve()

    do_POST = do_GET

    def _serve(self) -> None:
        owner = self.server.owner
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = self._read_body(chunked)
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        user = _check_basic(auth, owner.token)
        encoding = self.headers.get("Content-Encoding", "")
        if user is None:
            status = 401
            self._reply(401, {"WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain"}, b"denied\n")
        else:
            status = self._cgi(parts.path, parts.query, user, body, encoding)
        owner.record(Request(self.command, parts.path, parts.query, status, user, auth, encoding, chunked, len(body)))

    def _read_body(self, chunked: bool) -> bytes:
        if chunked:
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ValueError("request body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _cgi(self, path: str, query: str, user: str, body: bytes, encoding: str) -> int:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.server.owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
        }
        if encoding:
            env["HTTP_CONTENT_ENCODING"] = encoding
        if self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120, check=False
        )
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        if not sep or (proc.returncode != 0 and status == 200):
            status, headers, payload = 500, {"Content-Type": "text/plain"}, proc.stderr
        self._reply(status, headers, payload)
        return status

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _check_basic(header: str, token: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user or "anonymous") if hmac.compare_digest(password.encode(), token.encode()) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: GitHttpServer


@contextlib.contextmanager
def git_http_server(root: Path, *, token: str = "t0ken-for-tests", lifetime: float = 300.0) -> Iterator[GitHttpServer]:
    """Serve the bare repositories under ``root`` over smart HTTP on 127.0.0.1 (a free port)."""
    root.mkdir(parents=True, exist_ok=True)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.timeout = 30
    owner = GitHttpServer(root=root, token=token, port=server.server_address[1])
    server.owner = owner
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="git-http", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        owner.stopped.set()

    deadline = threading.Timer(lifetime, stop)
    deadline.daemon = True
    deadline.start()
    try:
        yield owner
    finally:
        deadline.cancel()
        stop()
        thread.join(timeout=10)


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[GitHttpServer]:
    """A smart-HTTP git server for one test (token: ``git_http.token``); see :func:`git_http_server`."""
    with git_http_server(tmp_path / "git-http", lifetime=300) as server:
        yield server


def write_commit(
    bare: Path,
    files: dict[str, str | None],
    message: str = "change",
    *,
    branch: str = "main",
    start: str = "main",
    author: str = "Someone Else <else@example.com>",
) -> str:
    """Commit ``files`` (path -> text, None deletes) onto ``branch`` of a bare repo, as another pusher would.

    A branch that does not exist yet starts from ``start`` (when that exists).

    Plumbing only (a temporary index, ``commit-tree``, ``update-ref``): no clone, no hooks, no config.
    """
    name, _, email = author.partition(" <")
    env = {
        **os.environ,
        **GIT_ENV,
        "GIT_DIR": str(bare),
        "GIT_INDEX_FILE": str(bare / f"automator-test-index-{threading.get_ident()}"),
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email.rstrip(">"),
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email.rstrip(">"),
    }

    def git(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["git", *args], env=env, input=stdin, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def tip(name: str) -> str:
        ref = f"refs/heads/{name}"
        proc = subprocess.run(
            ["git", "rev-parse", "-q", "--verify", ref], env=env, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    old = tip(branch)
    parent = old or tip(start)
    try:
        git("read-tree", *([parent] if parent else ["--empty"]))
        for path, text in files.items():
            if text is None:
                git("update-index", "--force-remove", path)
            else:
                blob = git("hash-object", "-w", "--stdin", stdin=text)
                git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = git("write-tree")
        sha = git("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
        git("update-ref", f"refs/heads/{branch}", sha, old or "0" * 40)
    finally:
        Path(env["GIT_INDEX_FILE"]).unlink(missing_ok=True)
    return sha


def read_file(bare: Path, rev: str, path: str) -> str | None:
    """``path`` at ``rev`` in a bare repo, or None when absent."""
    proc = subprocess.run(
        ["git", "--git-dir", str(bare), "show", f"{rev}:{path}"],
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def count_pushes(bare: Path) -> Callable[[], int]:
    """Install a ``post-receive`` hook in ``bare`` that counts the pushes it receives (one run per
    ``git push``, however many refs it carries); the returned function reads the count."""
    log = bare / "automator-test-pushes"
    hook = bare / "hooks" / "post-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\necho push >> '{log}'\n")
    hook.chmod(0o755)

    def pushes() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    return pushes
