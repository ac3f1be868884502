"""The registry client: httpx (HTTP/2 where offered) behind the :class:`Registry` Protocol.

One :class:`RegistryClient` serves every registry of a scan.  Per registry host it
keeps: an ``httpx.AsyncClient`` (TLS settings differ per host), the ``/v2/``
challenge (pinged once, shared by every repository), Bearer tokens per scope until
they expire, a concurrency semaphore and a request-rate limiter.

Every exchange goes through :meth:`RegistryClient._exchange`: rate limit,
semaphore, manual redirects (``Authorization`` only ever goes to the host it was
made for; blob downloads redirect to storage), a streamed read with a size cap, and
bounded retries with backoff for 429/5xx/timeouts.  Requests go straight to the
transport httpx picks (:func:`_send`), and the connection pool's bookkeeping is
made linear in the connections (:func:`_lean_pools`): at a host's 16 connections
httpcore's own is much of a request's CPU.  httpx exceptions never escape:
they are wrapped in the :mod:`automator.errors` tree with the registry, the
repository and what to do in the message.

Deadlines: each attempt, body included, must end within ``timeouts.request`` (httpx's
own timeouts are per read, and a trickle never trips them); one exchange's attempts
and backoff within ``retry.max_elapsed``; everything within the host's
``scan_deadline`` of the :class:`~automator.registry.cycle.Cycle`.  The cycle also
remembers a host that stopped answering, so the next requests to it fail at once
instead of each paying the timeouts again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import select
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpcore
import httpx

from automator.errors import (
    ConfigError,
    PlatformNotFound,
    RegistryAuthError,
    RegistryError,
    RegistryResponseError,
    RegistryTLSError,
    RegistryUnavailable,
    RepositoryNotFound,
)
from automator.refs import ImageRef
from automator.registry.base import ManifestInfo, TagListing
from automator.registry.config import RegistryConfig, RegistrySettings, canonical_host
from automator.registry.credentials import Credential, CredentialProvider
from automator.registry.cycle import Cycle
from automator.registry.headers import Challenge, parse_link_next, parse_retry_after, parse_www_authenticate
from automator.registry.limits import RateLimiter, retry_delay

log = logging.getLogger("automator.registry")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
DEFAULT_PLATFORM = "linux/amd64"

MAX_REDIRECTS = 5
RAISE_CAP = "--max-response-size (AUTOMATOR_MAX_RESPONSE_SIZE), e.g. 64MiB"
DEFAULT_TOKEN_SECONDS = 60
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_STR_ONLY = frozenset({str})
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_UNREACHABLE = "check that the registry is reachable, or raise the timeouts/retries for it"
_OVERLOADED = (
    "the registry is overloaded or failing, try again later or lower requests_per_second/max_concurrency for it"
)
_clock = time.monotonic  # token expiry clock (a module attribute so tests can move time)


class _DeadlineHit(Exception):
    """An attempt ran out of time: ``which`` knob (``timeouts.request``, ...) of ``seconds``."""

    def __init__(self, which: str, seconds: float, *, sent: bool) -> None:
        super().__init__(which)
        self.which = which
        self.seconds = seconds
        self.sent = sent

    def __str__(self) -> str:
        if self.which == "retry.max_elapsed":
            return f"no complete answer within the {self.seconds:g} s of retry.max_elapsed"
        return f"no complete answer within {self.seconds:g} s ({self.which})"


@dataclass
class _Attempts:
    """One exchange as the deadlines and the cycle see it (it is also its identity as a probe)."""

    max_elapsed: float | None
    first_sent: float | None = None  # on the cycle's clock; retry.max_elapsed runs from here
    host: _Host | None = None  # where the last attempt went (a redirect moves it)


def _host_down(exc: BaseException) -> bool:
    """No answer at all: refused, reset, timed out. Not a pool wait (our own queue) nor a garbled reply."""
    if isinstance(exc, _DeadlineHit):
        return exc.which != "scan_deadline"
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError) and not isinstance(exc, httpx.PoolTimeout)


class _KeptSocketStream(httpcore.AsyncNetworkStream):
    """A connection's stream that answers httpcore's "is this idle connection readable?" itself.

    httpcore's pool asks that of every idle HTTP/1.1 connection each time it hands out a connection
    or takes one back (a readable idle socket is one the server closed), and anyio answers it by
    rebuilding the socket's attribute table, a ``getpeername`` call included, every time: with a
    host's 16 connections, a third of the Python calls of a scan of 100 verifying policies
    (encode/httpcore#928 proposes polling less in the pool). Here the socket is looked up once and
    polled directly, the same check; everything else goes to the stream it wraps."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        sock = stream.get_extra_info("socket")  # a socket.socket, or asyncio's TransportSocket around one
        self._socket = sock if callable(getattr(sock, "fileno", None)) else None
        self._poll: select.poll | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _KeptSocketStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable" or self._socket is None or not hasattr(select, "poll"):
            return self._stream.get_extra_info(info)
        fd = self._socket.fileno()
        if fd < 0:
            return True  # closed: as httpcore, readable (the next read says so)
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
        return bool(self._poll.poll(0))


class _KeptSocketBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its streams wrapped in :class:`_KeptSocketStream`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _KeptSocketStream(await self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _KeptSocketStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _LinearPool(httpcore.AsyncConnectionPool):
    """httpcore 1.0's connection pool, its bookkeeping in linear time instead of quadratic.

    The pool runs ``_assign_requests_to_connections`` twice per request (handing a connection
    out, taking it back), and httpcore 1.0.x rebuilds a list of every connection inside its loop
    over every idle one (``len([c.is_idle() for c in self._connections])``, which is only
    ``len(self._connections)``): with a host's 16 connections idle in turn, hundreds of calls per
    request, a third of the Python calls of a scan of 100 verifying policies (encode/httpcore#924
    proposed the same). The same decisions in the same order, each list walked once; used for the
    httpcore 1.0 it was written against only (:func:`_lean_pools`)."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        for connection in list(connections):
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing.append(connection)
        for pool_request in [r for r in self._requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            available = next((c for c in connections if c.can_handle_request(origin) and c.is_available()), None)
            if available is not None:
                pool_request.assign_to_connection(available)
                continue
            if len(connections) >= self._max_connections:
                idle = next((c for c in connections if c.is_idle()), None)
                if idle is None:
                    continue  # the request waits for a connection to come back
                connections.remove(idle)
                closing.append(idle)
            connection = self.create_connection(origin)
            connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


def _lean_pools(client: httpx.AsyncClient) -> None:
    """Give the pools of ``client``'s own transports (the direct one, and those for proxies from
    the environment) the :class:`_KeptSocketBackend`, and the direct one the bookkeeping of
    :class:`_LinearPool`. httpx takes neither, so they are set on the pool it made; a transport or
    pool of another shape (a test's, another httpcore) is left as it is."""
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None) if isinstance(transport, httpx.AsyncHTTPTransport) else None
        if not isinstance(pool, httpcore.AsyncConnectionPool):
            continue
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(backend, _KeptSocketBackend):
            pool._network_backend = _KeptSocketBackend(backend)
        if type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__.startswith("1.0."):
            pool.__class__ = _LinearPool


async def _send(
    client: httpx.AsyncClient, method: str, url: str, headers: Mapping[str, str], data: Mapping[str, str] | None
) -> httpx.Response:
    """One request through the transport ``client`` picks for ``url``, its response still to be read.

    What ``client.send`` adds on top is what this client does itself (authentication, redirects,
    deadlines) or never wants: a cookie jar (docker and containerd keep none for a registry either),
    event hooks; skipping it saves a tenth of a request's Python calls. The request carries the client's
    default headers and its timeouts, as ``client.build_request`` makes it; proxies from the
    environment stay the client's choice. The line httpx logs per request at INFO is logged here,
    at DEBUG."""
    merged = client.headers.copy()
    merged.update(headers)
    request = httpx.Request(method, url, headers=merged, data=data, extensions={"timeout": client.timeout.as_dict()})
    transport = client._transport_for_url(request.url)  # the proxy mounts, as client.send picks them
    response = await transport.handle_async_request(request)
    response.request = request
    log.debug('%s %s "%s %d %s"', method, url, response.http_version, response.status_code, response.reason_phrase)
    return response


@dataclass(frozen=True)
class _Response:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str


@dataclass
class _Host:
    """What the client keeps per registry (or token realm, or storage) host."""

    key: str
    netloc: str
    config: RegistryConfig
    client: httpx.AsyncClient
    semaphore: asyncio.Semaphore
    limiter: RateLimiter
    challenge: Challenge | None = None
    pinged: bool = False
    ping_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tokens: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    token_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    credential: Credential | None = None
    credential_known: bool = False

    @property
    def scheme(self) -> str:
        return "http" if self.config.insecure else "https"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}"


@dataclass(frozen=True)
class _Target:
    """What one exchange is about, for error messages."""

    host: str
    repository: str | None
    action: str

    def __str__(self) -> str:
        where = f"registry {self.host}"
        if self.repository:
            where += f", repository {self.repository}"
        return f"{where}: {self.action}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _error_detail(body: bytes) -> str:
    """The registry's own error codes/messages from a distribution error body, if any."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors[:3]:
        if isinstance(item, dict):
            code, message = item.get("code", ""), item.get("message", "")
            parts.append(f"{code}: {message}"[:200] if message else str(code)[:200])
    return f" ({'; '.join(parts)})" if parts else ""


def _parse_created(value: Any) -> datetime | None:
    """RFC 3339 with up to nanoseconds (Go writes 9 digits) -> aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    match = re.match(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", value.strip())
    if match is None:
        return None
    head, fraction, zone = match.groups()
    text = head.replace(" ", "T")
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    text += "+00:00" if zone in (None, "Z") else zone
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(UTC)


def _parse_platform(platform: str) -> tuple[str, str, str | None]:
    parts = platform.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(f"platform {platform!r} is not os/arch[/variant] (for example linux/amd64 or linux/arm/v7)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _platform_matches(entry: Mapping[str, Any], os_name: str, arch: str, variant: str | None) -> bool:
    plat = entry.get("platform")
    if not isinstance(plat, Mapping) or plat.get("os") != os_name or plat.get("architecture") != arch:
        return False
    have = plat.get("variant")
    if variant is None or have == variant:
        return True
    # Docker treats arm64 without a variant as v8
    return arch == "arm64" and variant == "v8" and not have


class RegistryClient:
    """Talks to container registries; implements :class:`automator.registry.base.Registry`.

    ``settings`` is a :class:`RegistrySettings` (per-host configs) or one
    :class:`RegistryConfig` used for every host.  ``credentials`` answers logins per
    host (see :mod:`automator.registry.credentials`); None means anonymous.
    ``cycle`` is the :class:`Cycle` the client serves (its clock, its start for
    ``scan_deadline``, the hosts found dead); clients of one cycle with different
    credentials share one; by default the client starts its own.  ``transport``
    replaces the network (tests only).

    Use as ``async with RegistryClient(settings, credentials) as reg: ...``.
    """

    def __init__(
        self,
        settings: RegistrySettings | RegistryConfig | None = None,
        credentials: CredentialProvider | None = None,
        *,
        cycle: Cycle | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if isinstance(settings, RegistryConfig):
            settings = RegistrySettings(default=settings)
        self.settings = settings or RegistrySettings()
        self.credentials = credentials
        self.cycle = cycle or Cycle()
        self._transport = transport
        self._hosts: dict[str, _Host] = {}
        self._closed = False
        self.requests = 0  # exchanges sent, redirects and retries included (for benchmarks and tests)
        self.http_versions: Counter[str] = Counter()  # "HTTP/1.1", "HTTP/2" per response

    def __repr__(self) -> str:
        return f"RegistryClient(hosts={sorted(self._hosts)!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection pool."""
        self._closed = True
        clients = [h.client for h in self._hosts.values()]
        self._hosts.clear()
        for client in clients:
            await client.aclose()

    # --- per-host state ----------------------------------------------------------------------

    def _ssl_context(self, config: RegistryConfig, host: str) -> ssl.SSLContext | bool:
        if config.ca_file is None and config.client_cert is None:
            return True
        ctx = httpx.create_ssl_context()
        if config.ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"registry {host}: cannot load CA file {config.ca_file} ({exc}); point ca_file at a PEM bundle"
                ) from exc
        if config.client_cert is not None:
            try:
                # an encrypted key fails here instead of OpenSSL prompting on the terminal
                ctx.load_cert_chain(config.client_cert, config.client_key, password=lambda: b"")
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"registry {host}: cannot load the client certificate {config.client_cert} with its key "
                    f"{config.client_key} ({exc}); point them at a PEM certificate and its PEM private key"
                ) from exc
        return ctx

    def _host(self, netloc: str) -> _Host:
        netloc = netloc.lower()
        state = self._hosts.get(netloc)
        if state is not None:
            return state
        if self._closed:
            raise RuntimeError("RegistryClient is closed")
        config = self.settings.for_host(netloc)
        client = httpx.AsyncClient(
            http2=True,
            verify=self._ssl_context(config, netloc),
            timeout=httpx.Timeout(
                connect=config.timeouts.connect,
                read=config.timeouts.read,
                write=config.timeouts.write,
                pool=config.timeouts.pool,
            ),
            limits=httpx.Limits(
                max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency
            ),
            follow_redirects=False,
            headers={"User-Agent": config.user_agent},
            transport=self._transport,
        )
        if self._transport is None:
            _lean_pools(client)
        state = _Host(
            key=canonical_host(netloc),
            netloc=netloc,
            config=config,
            client=client,
            semaphore=asyncio.Semaphore(config.max_concurrency),
            limiter=RateLimiter(config.requests_per_second),
        )
        self._hosts[netloc] = state
        return state

    async def _credential(self, state: _Host) -> Credential | None:
        if not state.credential_known:
            state.credential = await self.credentials.get(state.key) if self.credentials else None
            state.credential_known = True
        return state.credential

    # --- one exchange: limits, redirects, size cap, retries ----------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self, state: _Host, attempts: _Attempts, target: _Target) -> AsyncIterator[None]:
        """A connection slot on ``state``, once the cycle lets ``attempts`` send there.

        The cycle is asked again after the wait for the semaphore: the host may have died
        or become suspect meanwhile, and then this exchange waits outside the semaphore,
        leaving the slots to the probe.
        """
        while True:
            await self.cycle.admit(state.netloc, attempts, str(target), state.config.scan_deadline)
            await state.limiter.acquire()
            await state.semaphore.acquire()
            if self.cycle.clear_to_send(state.netloc, attempts):
                break
            state.semaphore.release()
        try:
            yield
        finally:
            state.semaphore.release()

    def _time_left(self, state: _Host, attempts: _Attempts) -> tuple[float, str, float]:
        """Seconds this attempt may take, the knob that limits it, and that knob's value."""
        now = self.cycle.clock()
        if attempts.first_sent is None:
            attempts.first_sent = now
        request = state.config.timeouts.request
        limits = [(request, "timeouts.request", request)]
        if attempts.max_elapsed is not None:
            left = attempts.first_sent + attempts.max_elapsed - now
            limits.append((left, "retry.max_elapsed", attempts.max_elapsed))
        scan_left = self.cycle.remaining(state.config.scan_deadline)
        if scan_left is not None and state.config.scan_deadline is not None:
            limits.append((scan_left, "scan_deadline", state.config.scan_deadline))
        return min(limits, key=lambda limit: limit[0])

    async def _send_once(
        self,
        state: _Host,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        *,
        attempts: _Attempts,
        target: _Target,
    ) -> _Response:
        """One request, following redirects by hand; Authorization only to ``state``'s own origin.

        Each hop must end, body included, within the time :meth:`_time_left` gives it.
        """
        current, current_state = url, state
        origin: tuple[str, str] | None = None  # parsed only once a redirect makes it matter
        for _hop in range(MAX_REDIRECTS + 1):
            send_headers = headers
            if current is not url:
                origin = origin or _origin(url)
                if _origin(current) != origin:
                    send_headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            attempts.host = current_state
            async with self._slot(current_state, attempts, target):
                seconds, which, configured = self._time_left(current_state, attempts)
                if seconds <= 0:
                    raise _DeadlineHit(which, configured, sent=False)
                self.requests += 1
                deadline = asyncio.timeout(seconds)
                try:
                    async with deadline:
                        response = await _send(current_state.client, method, current, send_headers, data)
                        self.http_versions[response.http_version] += 1
                        try:
                            location = response.headers.get("location")
                            if response.status_code not in _REDIRECTS or not location:
                                # a HEAD's answer is read too (no bytes): only past the end of the message
                                # does httpcore keep the connection, instead of closing it at aclose()
                                body = (
                                    await response.aread()
                                    if method == "HEAD"
                                    else await self._read_capped(response, current_state)
                                )
                                self.cycle.answered(current_state.netloc)
                                return _Response(response.status_code, response.headers, body, str(response.url))
                        finally:
                            await response.aclose()
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    raise _DeadlineHit(which, configured, sent=True) from None
            self.cycle.answered(current_state.netloc)  # a redirect is an answer too
            target_url = str(httpx.URL(current).join(location))
            scheme, netloc = _origin(target_url)
            if scheme not in ("http", "https"):
                raise RegistryResponseError(f"redirect to unsupported URL scheme {scheme!r}")
            current_state = self._host(netloc)
            if scheme == "http" and not current_state.config.insecure:
                raise RegistryResponseError(
                    f"redirect to plain-HTTP {netloc} refused; mark that host insecure only if you trust the network"
                )
            if response.status_code == 303:
                method, data = "GET", None
            current = target_url
        raise RegistryResponseError(f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    async def _read_capped(response: httpx.Response, state: _Host) -> bytes:
        cap = state.config.max_response_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise RegistryResponseError(
                f"response of {int(declared):,} bytes exceeds the cap of {cap:,}; if that is expected (a"
                f" repository with millions of tags), raise it with {RAISE_CAP}"
            )
        if declared and declared.isdigit() and "content-encoding" not in response.headers:
            return await response.aread()  # framed by Content-Length, already checked against the cap
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise RegistryResponseError(
                    f"response exceeds the cap of {cap:,} bytes; if that is expected (a repository with millions"
                    f" of tags), raise it with {RAISE_CAP}"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _exchange(
        self,
        state: _Host,
        method: str,
        url: str,
        target: _Target,
        *,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
        data: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> _Response:
        """Send with auth, retrying transient failures; returns the final response (any status)."""
        attempts = _Attempts(max_elapsed=state.config.retry.max_elapsed)
        try:
            return await self._attempt(
                state,
                method,
                url,
                target,
                headers=headers,
                scope=scope,
                data=data,
                authenticate=authenticate,
                attempts=attempts,
            )
        finally:
            self.cycle.release(attempts)

    async def _attempt(
        self,
        state: _Host,
        method: str,
        url: str,
        target: _Target,
        *,
        headers: dict[str, str] | None,
        scope: str | None,
        data: Mapping[str, str] | None,
        authenticate: bool,
        attempts: _Attempts,
    ) -> _Response:
        """The retry loop of :meth:`_exchange`."""
        policy = state.config.retry
        attempt = 0
        reauthed = False
        last = ""  # the previous attempt's failure, for an exchange that runs out of time before the next
        while True:
            self.cycle.check(state.netloc, str(target), state.config.scan_deadline)
            send_headers = dict(headers or {})
            if authenticate:
                auth = await self._authorization(state, scope, target)
                if auth:
                    send_headers["Authorization"] = auth
            retry_after: float | None = None
            down: _Host | None = None
            cause: BaseException | None = None
            try:
                response = await self._send_once(
                    state, method, url, send_headers, data, attempts=attempts, target=target
                )
            except RegistryResponseError as exc:
                raise RegistryResponseError(f"{target}: {exc}") from exc
            except _DeadlineHit as exc:
                if exc.which == "scan_deadline":
                    if not exc.sent:
                        self.cycle.check(state.netloc, str(target), state.config.scan_deadline)  # "not sent"
                    raise RegistryUnavailable(
                        f"{target}: cut off by the scan deadline of {exc.seconds:g} s (scan_deadline); "
                        "the next cycle tries again, or raise scan_deadline"
                    ) from None
                if not exc.sent:  # waited for another exchange's probe until no time was left
                    raise RegistryUnavailable(
                        f"{target}: {last} after {attempt} attempts (no time for another within "
                        f"retry.max_elapsed of {exc.seconds:g} s); {_UNREACHABLE}"
                    ) from None
                down, what, detail, advice, cause = attempts.host, str(exc), "", _UNREACHABLE, exc
            except (*_TRANSIENT, ssl.SSLError) as exc:
                if isinstance(exc, httpx.ConnectError) and _is_tls_failure(exc):
                    raise RegistryTLSError(
                        f"{target}: TLS certificate did not verify ({exc}); fix the certificate or set ca_file "
                        "to the CA bundle that signed it"
                    ) from exc
                alert = _tls_alert(exc)
                if alert or isinstance(exc, ssl.SSLError):  # httpx lets a TLS alert read mid-response through
                    advice = (
                        "it wants a client certificate it trusts: give the policy a spec.certSecretRef with "
                        "tls.crt and tls.key, or fix the one it has"
                        if alert.endswith(_CLIENT_CERTIFICATE_ALERTS)
                        else "check the registry's TLS settings"
                    )
                    raise RegistryTLSError(
                        f"{target}: the registry ended the TLS session ({alert or exc}); {advice}"
                    ) from exc
                down = attempts.host if _host_down(exc) else None
                what, detail, advice, cause = exc.__class__.__name__, f" ({exc})" if str(exc) else "", _UNREACHABLE, exc
            except httpx.HTTPError as exc:
                raise RegistryResponseError(f"{target}: HTTP error {exc.__class__.__name__}: {exc}") from exc
            else:
                if response.status == 401:
                    if authenticate and not reauthed and self._forget_auth(state, scope, response):
                        reauthed = True
                        continue
                    return response
                if response.status not in _RETRY_STATUS:
                    return response
                what, detail, advice = f"HTTP {response.status}", _error_detail(response.body), _OVERLOADED
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if down is not None:
                self.cycle.failed(down.netloc, attempts)
            delay = retry_delay(attempt, policy, retry_after)
            spent = isinstance(cause, _DeadlineHit) and cause.which == "retry.max_elapsed"  # the message says so
            cut = "" if attempt >= policy.retries or spent else self._no_time_for(state, attempts, delay)
            if attempt >= policy.retries or spent or cut:
                if down is not None:
                    self.cycle.give_up(down.netloc, attempts, f"{what} after {attempt + 1} attempts")
                raise RegistryUnavailable(
                    f"{target}: {what} after {attempt + 1} attempts{detail}{cut}; {advice}"
                ) from (None if isinstance(cause, _DeadlineHit) else cause)
            log.debug("%s: %s, retrying", target, what)
            last = what
            await asyncio.sleep(delay)
            attempt += 1

    def _no_time_for(self, state: _Host, attempts: _Attempts, delay: float) -> str:
        """Why a retry after ``delay`` would start too late ("" if it would not), for the message."""
        now = self.cycle.clock()
        budget = attempts.max_elapsed
        if budget is not None and attempts.first_sent is not None and now + delay >= attempts.first_sent + budget:
            return f" (no time for another within retry.max_elapsed of {budget:g} s)"
        left = self.cycle.remaining(state.config.scan_deadline)
        if left is not None and delay >= left:
            return f" (no time for another before the scan deadline of {state.config.scan_deadline:g} s)"
        return ""

    # --- authentication -----------------------------------------------------------------------

    async def _challenge(self, state: _Host, asker: _Target) -> Challenge | None:
        """The host's ``/v2/`` challenge, pinged once and cached for every repository.

        The ping that failed is not repeated by each waiter when the host is dead: after the
        lock, the cycle is asked first, and the error names the waiter's own request.
        """
        if state.pinged:
            return state.challenge
        async with state.ping_lock:
            if state.pinged:
                return state.challenge
            self.cycle.check(state.netloc, str(asker), state.config.scan_deadline)
            target = _Target(state.netloc, None, "ping /v2/")
            response = await self._exchange(state, "GET", f"{state.base}/v2/", target, authenticate=False)
            if response.status == 401:
                state.challenge = self._pick_challenge(response, target)
            elif 200 <= response.status < 300:
                state.challenge = None
            elif response.status == 404:
                raise RegistryResponseError(f"{target}: HTTP 404; this host does not serve the registry v2 API")
            else:
                raise RegistryResponseError(
                    f"{target}: unexpected HTTP {response.status}{_error_detail(response.body)}"
                )
            state.pinged = True
            return state.challenge

    @staticmethod
    def _pick_challenge(response: _Response, target: _Target) -> Challenge:
        challenges = parse_www_authenticate(response.headers.get_list("www-authenticate"))
        for scheme in ("bearer", "basic"):
            for challenge in challenges:
                if challenge.scheme == scheme and (scheme == "basic" or challenge.realm):
                    return challenge
        offered = ", ".join(c.scheme for c in challenges) or "none"
        raise RegistryAuthError(f"{target}: unsupported authentication challenge ({offered}); want Bearer or Basic")

    def _forget_auth(self, state: _Host, scope: str | None, response: _Response) -> bool:
        """After a 401: drop the cached token (or re-learn the challenge); True if worth one retry."""
        if state.challenge is None:
            # /v2/ is open but this repository is not: learn the challenge from this answer
            try:
                state.challenge = self._pick_challenge(response, _Target(state.netloc, None, "challenge"))
            except RegistryAuthError:
                return False
            return True
        if state.challenge.scheme == "bearer" and scope is not None:
            dropped = state.tokens.pop((state.challenge.realm or "", scope), None)
            return dropped is not None
        return False

    async def _authorization(self, state: _Host, scope: str | None, target: _Target) -> str | None:
        challenge = await self._challenge(state, target)
        if challenge is None:
            return None
        credential = await self._credential(state)
        if challenge.scheme == "basic":
            if credential is None or not credential.has_basic:
                raise RegistryAuthError(
                    f"{target}: the registry requires a username and password (Basic auth); add a login for "
                    f"{state.key} to the docker config or pull secret"
                )
            raw = f"{credential.username}:{credential.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if credential is not None and credential.registry_token:
            return f"Bearer {credential.registry_token}"
        if scope is None:
            return None
        return f"Bearer {await self._token(state, challenge, scope, credential, target)}"

    async def _token(
        self, state: _Host, challenge: Challenge, scope: str, credential: Credential | None, target: _Target
    ) -> str:
        key = (challenge.realm or "", scope)
        cached = state.tokens.get(key)
        if cached and cached[1] > _clock():
            return cached[0]
        lock = state.token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = state.tokens.get(key)
            if cached and cached[1] > _clock():
                return cached[0]
            token, lifetime = await self._fetch_token(state, challenge, scope, credential, target)
            # renew a little early so a token never expires in flight
            state.tokens[key] = (token, _clock() + max(1.0, lifetime - min(10.0, lifetime / 10)))
            return token

    async def _fetch_token(
        self, state: _Host, challenge: Challenge, scope: str, credential: Credential | None, target: _Target
    ) -> tuple[str, float]:
        realm = challenge.realm or ""
        scheme, netloc = _origin(realm)
        if scheme not in ("http", "https") or not netloc:
            raise RegistryAuthError(f"{target}: token realm {realm!r} is not an http(s) URL")
        realm_state = self._host(netloc)
        if scheme == "http" and not (state.config.insecure or realm_state.config.insecure):
            raise RegistryAuthError(
                f"{target}: token realm {realm} is plain HTTP; refusing to send credentials there "
                "(mark the registry insecure only if you trust the network)"
            )
        token_target = _Target(state.netloc, target.repository, f"get a token for scope {scope} from {realm}")
        params = {"scope": scope}
        if challenge.service:
            params["service"] = challenge.service
        headers: dict[str, str] = {}
        if credential is not None and credential.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.identity_token,
                "client_id": "automator",
                **params,
            }
            response = await self._exchange(realm_state, "POST", realm, token_target, data=form, authenticate=False)
        else:
            if credential is not None and credential.has_basic:
                raw = f"{credential.username}:{credential.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            url = str(httpx.URL(realm).copy_merge_params(params))
            response = await self._exchange(realm_state, "GET", url, token_target, headers=headers, authenticate=False)
        if response.status in (401, 403):
            who = "anonymous access" if credential is None else f"the credentials from {credential.source}"
            raise RegistryAuthError(
                f"{token_target}: refused {who} (HTTP {response.status}){_error_detail(response.body)}; "
                "check the login for this registry and that it may pull this repository"
            )
        if response.status != 200:
            raise RegistryAuthError(f"{token_target}: HTTP {response.status}{_error_detail(response.body)}")
        try:
            data = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryResponseError(f"{token_target}: the token response is not JSON") from None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryResponseError(f"{token_target}: the token response has no token or access_token")
        expires = data.get("expires_in", DEFAULT_TOKEN_SECONDS)
        lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else DEFAULT_TOKEN_SECONDS
        return token, lifetime

    # --- the Registry protocol ----------------------------------------------------------------

    def _repo_state(self, image: ImageRef) -> _Host:
        return self._host(image.api_host)

    @staticmethod
    def _scope(image: ImageRef) -> str:
        return f"repository:{image.path}:pull"

    def _raise_for_status(self, response: _Response, target: _Target, state: _Host) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        detail = _error_detail(response.body)
        if status == 404:
            raise RepositoryNotFound(f"{target}: not found (HTTP 404){detail}; check the image name and tag")
        if status in (401, 403):
            who = "anonymously" if state.credential is None else f"with the login from {state.credential.source}"
            raise RegistryAuthError(
                f"{target}: access denied {who} (HTTP {status}){detail}; add or fix the login for {state.key}"
            )
        raise RegistryResponseError(f"{target}: unexpected HTTP {status}{detail}")

    async def list_tags(self, image: ImageRef) -> TagListing:
        """Every tag of ``image``'s repository, following ``Link`` pages; never a partial list."""
        state = self._repo_state(image)
        config = state.config
        target = _Target(state.netloc, image.path, "list tags")
        url: str | None = f"{state.base}/v2/{image.path}/tags/list?n={config.page_size}"
        seen_urls: set[str] = set()
        seen_pages: set[tuple[str, ...]] = set()
        tags: dict[str, None] = {}
        pages = 0
        while url is not None:
            if pages >= config.max_pages:
                raise RegistryResponseError(
                    f"{target}: more than {config.max_pages} pages of tags; raise max_pages if the repository "
                    "really has that many"
                )
            if url in seen_urls:
                raise RegistryResponseError(
                    f"{target}: the next-page link repeats an earlier page ({url}); paging loop"
                )
            seen_urls.add(url)
            response = await self._exchange(state, "GET", url, target, scope=self._scope(image))
            self._raise_for_status(response, target, state)
            page = self._parse_tags(response.body, target)
            pages += 1
            if page and page in seen_pages:
                raise RegistryResponseError(f"{target}: page {pages} repeats an earlier page of tags; paging loop")
            seen_pages.add(page)
            tags.update(dict.fromkeys(page))
            url = parse_link_next(response.headers.get_list("link"), response.url)
            if url is not None and _origin(url)[1] != state.netloc:
                raise RegistryResponseError(f"{target}: next-page link points to another host ({_origin(url)[1]})")
        return TagListing(image=image.bare(), tags=tuple(tags), pages=pages)

    @staticmethod
    def _parse_tags(body: bytes, target: _Target) -> tuple[str, ...]:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryResponseError(f"{target}: the tag list is not valid JSON ({len(body)} bytes)") from None
        if not isinstance(data, dict):
            raise RegistryResponseError(f"{target}: the tag list is not a JSON object")
        tags = data.get("tags")
        if tags is None:
            return ()
        # json.loads makes exact str objects, so the set of element types says it in one C pass
        if not isinstance(tags, list) or not _STR_ONLY.issuperset(map(type, tags)):
            raise RegistryResponseError(f"{target}: 'tags' is not a list of strings")
        return tuple(tags)

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        """Digest and media type of a tag or digest (HEAD; GET when HEAD gives no digest)."""
        state = self._repo_state(image)
        target = _Target(state.netloc, image.path, f"manifest {reference}")
        url = f"{state.base}/v2/{image.path}/manifests/{reference}"
        headers = {"Accept": MANIFEST_ACCEPT}
        response = await self._exchange(state, "HEAD", url, target, headers=headers, scope=self._scope(image))
        digest = response.headers.get("docker-content-digest")
        if response.status == 200 and digest:
            size = response.headers.get("content-length")
            return ManifestInfo(
                digest=digest,
                media_type=response.headers.get("content-type", "").split(";")[0].strip(),
                size=int(size) if size and size.isdigit() else None,
            )
        if response.status in (404, 401, 403):
            self._raise_for_status(response, target, state)
        info, _ = await self._get_manifest(state, image, reference)
        return info

    async def _get_manifest(self, state: _Host, image: ImageRef, reference: str) -> tuple[ManifestInfo, Any]:
        target = _Target(state.netloc, image.path, f"manifest {reference}")
        url = f"{state.base}/v2/{image.path}/manifests/{reference}"
        response = await self._exchange(
            state, "GET", url, target, headers={"Accept": MANIFEST_ACCEPT}, scope=self._scope(image)
        )
        self._raise_for_status(response, target, state)
        computed = "sha256:" + hashlib.sha256(response.body).hexdigest()
        if reference.startswith("sha256:") and computed != reference:
            raise RegistryResponseError(f"{target}: the manifest body does not match its digest (got {computed})")
        try:
            doc = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryResponseError(f"{target}: the manifest is not valid JSON") from None
        if not isinstance(doc, dict):
            raise RegistryResponseError(f"{target}: the manifest is not a JSON object")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
            media_type = doc["mediaType"]
        digest = response.headers.get("docker-content-digest") or computed
        return ManifestInfo(digest=digest, media_type=media_type, size=len(response.body)), doc

    async def created(self, image: ImageRef, reference: str, platform: str = DEFAULT_PLATFORM) -> datetime | None:
        """The image config's ``created`` time, resolving an index to ``platform`` (os/arch[/variant])."""
        os_name, arch, variant = _parse_platform(platform)
        state = self._repo_state(image)
        info, doc = await self._get_manifest(state, image, reference)
        if info.media_type in INDEX_TYPES or ("manifests" in doc and "config" not in doc):
            entries = doc.get("manifests")
            if not isinstance(entries, list):
                raise RegistryResponseError(f"registry {state.netloc}, repository {image.path}: index has no manifests")
            chosen = next(
                (e for e in entries if isinstance(e, Mapping) and _platform_matches(e, os_name, arch, variant)), None
            )
            if chosen is None or not isinstance(chosen.get("digest"), str):
                available = sorted(
                    "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k))
                    for e in entries
                    if isinstance(e, Mapping) and isinstance(p := e.get("platform"), Mapping)
                )
                raise PlatformNotFound(
                    f"registry {state.netloc}, repository {image.path}: {reference} has no manifest for {platform} "
                    f"(available: {', '.join(available) or 'none'}); set the policy's platform to one of them"
                )
            info, doc = await self._get_manifest(state, image, chosen["digest"])
        config = doc.get("config")
        if not isinstance(config, Mapping) or not isinstance(config.get("digest"), str):
            return None
        if config.get("mediaType") not in IMAGE_CONFIG_TYPES:
            return None  # an artifact (signature, SBOM, helm chart): no build time
        blob = await self._get_blob(state, image, config["digest"])
        try:
            data = json.loads(blob)
        except (ValueError, UnicodeDecodeError):
            raise RegistryResponseError(
                f"registry {state.netloc}, repository {image.path}: config blob {config['digest']} is not JSON"
            ) from None
        return _parse_created(data.get("created")) if isinstance(data, dict) else None

    async def fetch_manifest(self, image: ImageRef, reference: str) -> tuple[ManifestInfo, bytes] | None:
        """The manifest's info and its exact bytes (a signature's digest is over them); None on 404."""
        state = self._repo_state(image)
        target = _Target(state.netloc, image.path, f"manifest {reference}")
        url = f"{state.base}/v2/{image.path}/manifests/{reference}"
        response = await self._exchange(
            state, "GET", url, target, headers={"Accept": MANIFEST_ACCEPT}, scope=self._scope(image)
        )
        if response.status == 404:
            return None
        self._raise_for_status(response, target, state)
        computed = "sha256:" + hashlib.sha256(response.body).hexdigest()
        if reference.startswith("sha256:") and computed != reference:
            raise RegistryResponseError(f"{target}: the manifest body does not match its digest (got {computed})")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        digest = computed  # the bytes' own digest: a registry's header is not evidence
        return ManifestInfo(digest=digest, media_type=media_type, size=len(response.body)), response.body

    async def fetch_blob(self, image: ImageRef, digest: str, limit: int) -> bytes:
        """A blob checked against its digest, refused when over ``limit`` bytes."""
        body = await self._get_blob(self._repo_state(image), image, digest)
        if len(body) > limit:
            raise RegistryResponseError(
                f"registry {image.api_host}, repository {image.path}: blob {digest} is {len(body):,} bytes, "
                f"over the {limit:,} read for a signature"
            )
        return body

    async def referrers(self, image: ImageRef, digest: str) -> bytes | None:
        """``GET /v2/<name>/referrers/<digest>`` (OCI distribution 1.1); None when the registry has no
        such API (404, 400, 405: the referrers tag schema is the fallback)."""
        state = self._repo_state(image)
        target = _Target(state.netloc, image.path, f"referrers of {digest}")
        url = f"{state.base}/v2/{image.path}/referrers/{digest}"
        response = await self._exchange(
            state, "GET", url, target, headers={"Accept": OCI_INDEX}, scope=self._scope(image)
        )
        if response.status in (400, 404, 405):
            return None
        self._raise_for_status(response, target, state)
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        if kind and kind != OCI_INDEX:
            return None  # something else answers that path (a front page, a proxy): not the API
        return response.body

    async def _get_blob(self, state: _Host, image: ImageRef, digest: str) -> bytes:
        target = _Target(state.netloc, image.path, f"blob {digest}")
        url = f"{state.base}/v2/{image.path}/blobs/{digest}"
        response = await self._exchange(state, "GET", url, target, scope=self._scope(image))
        self._raise_for_status(response, target, state)
        if _DIGEST_RE.match(digest) and "sha256:" + hashlib.sha256(response.body).hexdigest() != digest:
            raise RegistryResponseError(f"{target}: the blob does not match its digest")
        return response.body


# TLS alerts by which a server refuses the client's certificate, or its absence (OpenSSL reason suffixes)
_CLIENT_CERTIFICATE_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN")


def _tls_alert(exc: BaseException) -> str:
    """The OpenSSL reason of a TLS alert the server sent (``TLSV13_ALERT_CERTIFICATE_REQUIRED``), or ""."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return ""
        reason = seen.reason if isinstance(seen, ssl.SSLError) else None
        if isinstance(reason, str) and "_ALERT_" in reason:
            return reason
        seen = seen.__cause__ or seen.__context__
    return ""


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


__all__ = ["MANIFEST_ACCEPT", "RegistryClient", "RegistryError"]
