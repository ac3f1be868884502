"""A small Docker token server (the registry "token" auth spec) for distribution's ``auth: token``.

It issues JWTs signed by a key whose certificate chains to a test CA; the real
``docker-registry`` verifies them itself (``x5c`` header, issuer, audience, expiry,
``access`` claim).  Supported, as Docker Hub's auth service does:

* ``GET /token?service=&scope=`` anonymous, or with Basic credentials (answers ``token``);
* ``POST /token`` OAuth2 form: ``grant_type=refresh_token`` (identity tokens) or
  ``grant_type=password`` (answers ``access_token``).

Anonymous callers get ``pull`` on repositories under ``public/`` only.  Every request
is recorded in ``requests`` so tests can assert caching.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.servers.registry_pki import Issued

ANONYMOUS_PREFIX = "public/"


@dataclass
class TokenRequest:
    method: str
    grant: str
    account: str | None
    scopes: list[str]
    status: int


@dataclass
class TokenServer:
    signer: Issued
    issuer: str = "automator-test-issuer"
    service: str = "automator-test-registry"
    users: dict[str, str] = field(default_factory=lambda: {"alice": "wonderland"})
    refresh_tokens: dict[str, str] = field(default_factory=lambda: {"rt-alice-0123456789": "alice"})
    expires_in: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/token"

    def start(self) -> TokenServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                account = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if owner.users.get(user) != password:
                        self._reply(owner.record("GET", "basic", user, query.get("scope", []), 401), {})
                        return
                    account = user
                scopes = query.get("scope", [])
                if query.get("service", [""])[0] != owner.service:
                    self._reply(owner.record("GET", "basic", account, scopes, 400), {"error": "bad service"})
                    return
                token = owner.issue(account, scopes)
                owner.record("GET", "basic" if account else "anonymous", account, scopes, 200)
                self._reply(200, {"token": token, "expires_in": owner.expires_in, "issued_at": _now_iso()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                grant = form.get("grant_type", [""])[0]
                scopes = form.get("scope", [])
                account: str | None = None
                if grant == "refresh_token":
                    account = owner.refresh_tokens.get(form.get("refresh_token", [""])[0])
                elif grant == "password":
                    user = form.get("username", [""])[0]
                    account = user if owner.users.get(user) == form.get("password", [""])[0] else None
                else:
                    self._reply(owner.record("POST", grant, None, scopes, 400), {"error": "unsupported_grant_type"})
                    return
                if account is None or form.get("service", [""])[0] != owner.service:
                    self._reply(owner.record("POST", grant, None, scopes, 401), {"error": "invalid_grant"})
                    return
                token = owner.issue(account, scopes)
                owner.record("POST", grant, account, scopes, 200)
                self._reply(200, {"access_token": token, "expires_in": owner.expires_in, "scope": " ".join(scopes)})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record(self, method: str, grant: str, account: str | None, scopes: list[str], status: int) -> int:
        with self._lock:
            self.requests.append(TokenRequest(method, grant, account, list(scopes), status))
        return status

    def issue(self, account: str | None, scopes: list[str]) -> str:
        """A JWT granting what ``account`` may do within ``scopes``."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if kind != "repository" or not name:
                continue
            granted = wanted if account else [a for a in wanted if a == "pull" and name.startswith(ANONYMOUS_PREFIX)]
            if granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = [base64.b64encode(self.signer.cert_der).decode()]
        return jwt.encode(claims, self.signer.key, algorithm="ES256", headers={"x5c": x5c})


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
