"""The dashboard's routes on the service's ``--listen`` port: pages, assets, sign-in.

Read-only: every page is a GET rendered from the status model (:mod:`automator.status`, the one
``automator status`` and ``GET /status`` use) and the state's timelines; nothing here writes.

* ``GET /`` — every policy; ``GET /policies/<name>`` — one policy and its timeline;
  ``GET /static/dashboard.{css,js}`` — the one stylesheet and script, cacheable for good (their
  URLs carry a hash of their content). No CDN, no web font, no build step.
* **Bearer token** (``--dashboard-token-file``, read again whenever the file changes, so a
  rotated Secret is honoured without a restart): with one, the pages and ``GET /status`` need
  ``Authorization: Bearer <token>`` or the session cookie ``POST /login`` sets from the sign-in
  form: HttpOnly, SameSite=Strict, Secure behind an HTTPS proxy, its value an HMAC of the token
  (never the token), so a rotated token signs everyone out. A browser opening a page is sent to
  the form and back; anything else is answered 401. Without a token the dashboard is open to
  whoever reaches ``--listen``, as ``/status`` is. Failed sign-ins are limited to
  :data:`MAX_FAILURES` a minute.
* Every page is sent with a Content-Security-Policy that allows only this origin's script and
  stylesheet, and ``Cache-Control: no-store``.

The status model is built again when ``version()`` (the state database's files) changes, and at
least every :data:`MODEL_TTL` seconds (ages are computed when a page renders); the service
builds it after each cycle (:meth:`Dashboard.warm`), so a page costs a render, not a rebuild.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

from automator.dashboard.pages import ASSETS, PageContext, asset, index_page, login_page, policy_page, problem_page
from automator.errors import AutomatorError
from automator.httpd import Request, Response, SecretSource, hmac_hex
from automator.state import StateStore
from automator.state.store import DB_NAME
from automator.status import Status, status_from_state
from automator.status_history import VersionHistory, histories

__all__ = ["COOKIE", "Dashboard", "DashboardSource", "is_page", "state_source"]

COOKIE = "automator_session"
MAX_FAILURES = 20  # failed sign-ins a minute, from anyone; more are answered 429
MODEL_TTL = 60.0  # seconds a built status model is reused while the database says nothing changed
BLIND_TTL = 5.0  # ... when there is no version to say so
_SESSION = b"automator dashboard session v1"
HTML = "text/html; charset=utf-8"
SECURITY = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True)
class DashboardSource:
    """Where the pages' data comes from (the service wires it to the state database).

    ``status`` builds the model at a time; ``history`` one policy's versions, oldest first;
    ``version`` changes whenever the database does (None: rebuild every ``MODEL_TTL``);
    ``policy_url`` links a policy to its file on the forge; ``cycle`` is one line on the last cycle.
    """

    status: Callable[[datetime], Status]
    history: Callable[[str], Sequence[VersionHistory]]
    version: Callable[[], int] | None = None
    policy_url: Callable[[str], str | None] = field(default=lambda policy: None)
    cycle: Callable[[], str | None] = field(default=lambda: None)


def state_source(
    directory: Path,
    *,
    policy_url: Callable[[str], str | None] = lambda policy: None,
    cycle: Callable[[], str | None] = lambda: None,
) -> DashboardSource:
    """The pages' data from the state database under ``directory`` (read-only connections, one
    per page: the loop writes on its own). Its version is the database's and its write-ahead
    log's size and time of change, which move with every commit."""
    files = [directory / DB_NAME, directory / f"{DB_NAME}-wal"]

    def version() -> int:
        stamps = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                stamps.append((0, 0))
            else:
                stamps.append((st.st_mtime_ns, st.st_size))
        return hash(tuple(stamps))

    def history(policy: str) -> Sequence[VersionHistory]:
        reader = StateStore.read_only(directory)
        try:
            return histories(reader, [policy]).get(policy, [])
        finally:
            reader.close()

    return DashboardSource(
        status=lambda now: status_from_state(directory, now),
        history=history,
        version=version,
        policy_url=policy_url,
        cycle=cycle,
    )


class Dashboard:
    """The pages of one service. ``source`` None: the service keeps no state (no ``--state-dir``)
    and every page says so. ``token`` None: no sign-in."""

    def __init__(
        self,
        source: DashboardSource | None,
        *,
        token: SecretSource | None = None,
        refresh: int = 15,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.token = token
        self.refresh = refresh
        self.now = now
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._model: tuple[float, int | None, Status] | None = None
        self._failures: list[float] = []

    # -- routes -----------------------------------------------------------------------------

    def page(self, request: Request) -> Response | None:
        """A GET this dashboard answers, or None for the service's own endpoints."""
        path = request.path
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in ASSETS:
                return None
            cache = ("Cache-Control", "public, max-age=31536000, immutable")
            return Response(200, asset(name), ASSETS[name], (cache, ("X-Content-Type-Options", "nosniff")))
        if path == "/login":
            failed = request.query.get("failed") == "1"
            target = _next(request.query.get("next"))
            context = replace(self._context(), refresh=0)  # never refresh a form being filled in
            return self._html(200, login_page(failed=failed, next_path=target, context=context))
        if path == "/logout":
            return Response(
                303,
                "",
                headers=(("Location", "/login"), ("Set-Cookie", self._cookie("", request.headers, expire=True))),
            )
        if not _state_page(path) and path != "/status":
            return None
        authenticated = self._authenticated(request.headers)
        if authenticated is False:
            if path != "/status" and _navigating(request.headers):
                # a browser opening a page: to the sign-in form, and back here after it
                return Response(303, "", headers=(("Location", "/login?" + urlencode({"next": _next(path)})),))
            challenge = (("WWW-Authenticate", 'Bearer realm="automator"'),)
            return Response(401, "sign in: Authorization: Bearer <the --dashboard-token-file token>", headers=challenge)
        if path == "/status":
            return None  # the service's own answer, now that the caller may see it
        context = self._context(authenticated=authenticated is True and COOKIE in request.headers.get("cookie", ""))
        if self.source is None:
            return self._html(200, _no_state(context))
        try:
            status = self._status()
        except AutomatorError as exc:
            return self._html(503, problem_page(f"the status cannot be read: {exc}", context=context))
        if path == "/":
            now = self.now()
            q, state = request.query.get("q", "")[:200], request.query.get("state", "")
            return self._html(200, index_page(status, now=now, q=q, state=state, context=context))
        return self._policy(unquote(path.removeprefix("/policies/")), status, context)

    def login(self, headers: Mapping[str, str], body: bytes) -> Response:
        """``POST /login`` from the sign-in form: the session cookie, or the form again."""
        if self.token is None:
            return Response(303, "", headers=(("Location", "/"),))
        try:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=8))
        except ValueError:  # more fields than the form has: not our form
            return Response(400, "expected the sign-in form: token and next")
        target = _next(form.get("next"))
        secret = self.token()
        if secret and hmac.compare_digest(secret, form.get("token", "").strip().encode()):
            return Response(
                303, "", headers=(("Location", target), ("Set-Cookie", self._cookie(self._session(secret), headers)))
            )
        with self._lock:
            now = self.monotonic()
            self._failures = [t for t in self._failures if now - t < 60.0]
            if len(self._failures) >= MAX_FAILURES:
                return Response(429, "too many failed sign-ins; wait a minute", headers=(("Retry-After", "60"),))
            self._failures.append(now)
        return Response(303, "", headers=(("Location", "/login?" + urlencode({"failed": "1", "next": target})),))

    # -- the pieces -------------------------------------------------------------------------

    def _policy(self, name: str, status: Status, context: PageContext) -> Response:
        row = next((p for p in status.policies if p.policy == name), None)
        if row is None:
            return self._html(404, problem_page(f"no policy {name!r} in the state database", context=context))
        assert self.source is not None
        timeline = self.source.history(name)
        url = self.source.policy_url(name)
        body = policy_page(row, timeline, now=self.now(), generated=status.generated, policy_url=url, context=context)
        return self._html(200, body)

    def warm(self) -> None:
        """Build the model now (after a cycle, on the loop's thread), so the next page only renders."""
        if self.source is not None:
            self._status(force=True)

    def _status(self, *, force: bool = False) -> Status:
        """The model, rebuilt when the database changed or ``MODEL_TTL`` passed."""
        assert self.source is not None
        version = self.source.version() if self.source.version is not None else None
        with self._lock:
            held = self._model
            ttl = MODEL_TTL if version is not None else BLIND_TTL
            fresh = held is not None and held[1] == version and self.monotonic() - held[0] < ttl
            if fresh and held is not None and not force:
                return held[2]
        status = self.source.status(self.now())
        with self._lock:
            self._model = (self.monotonic(), version, status)
        return status

    def _authenticated(self, headers: Mapping[str, str]) -> bool | None:
        """None: no token configured; else whether the request carries it (header or cookie)."""
        if self.token is None:
            return None
        secret = self.token()
        if not secret:
            return False
        scheme, _, offered = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(secret, offered.strip().encode()):
            return True
        cookie = _cookie_value(headers.get("cookie", ""))
        return bool(cookie) and hmac.compare_digest(self._session(secret).encode(), cookie.encode())

    @staticmethod
    def _session(secret: bytes) -> str:
        return hmac_hex(secret, _SESSION)

    @staticmethod
    def _cookie(value: str, headers: Mapping[str, str], *, expire: bool = False) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if headers.get("x-forwarded-proto", "").lower() == "https":
            parts.append("Secure")
        if expire:
            parts.append("Max-Age=0")
        return "; ".join(parts)

    def _context(self, *, authenticated: bool = False) -> PageContext:
        cycle = self.source.cycle() if self.source is not None else None
        return PageContext(refresh=self.refresh, cycle=cycle, authenticated=authenticated)

    @staticmethod
    def _html(status: int, body: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        return Response(status, body, HTML, SECURITY + headers)


def _state_page(path: str) -> bool:
    """A page drawn from the state: the table, or one policy."""
    return path == "/" or path.startswith("/policies/")


def is_page(path: str) -> bool:
    """Whether ``path`` is one of the dashboard's pages (not its assets): what a standby passes
    on to the Lease holder, whose state is current."""
    return _state_page(path) or path in ("/login", "/logout")


def _navigating(headers: Mapping[str, str]) -> bool:
    """A browser opening a page (not its script's fetch, not curl): worth a redirect to sign in."""
    mode = headers.get("sec-fetch-mode")
    return mode == "navigate" if mode else "text/html" in headers.get("accept", "")


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of ours, never another site (``//host``, ``/\\host``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 500:
        return "/"
    return value


def _cookie_value(header: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else ""


def _no_state(context: PageContext) -> str:
    return problem_page(
        "The dashboard shows what the state database records: start `automator run` with --state-dir DIR"
        " (the chart keeps one on an emptyDir by default).",
        context=context,
    )
