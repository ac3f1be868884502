"""How automator talks to each registry: frozen settings, one record per host.

:class:`RegistryConfig` holds the knobs of one registry (transport security,
limits, paging, timeouts and deadlines, retries); :class:`RegistrySettings` maps hosts to their
config with a default for every other host.  Both are plain frozen dataclasses so
the policy/config loaders can build them from validated files and tests can build
them inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class Timeouts:
    """Timeouts in seconds: httpx's per operation (connect, read of each chunk, write, pool wait),
    and ``request``, the deadline of one whole HTTP request, body included.

    httpx's timeouts bound each read, so a server trickling one byte a second never trips
    them; ``request`` does.  A request waiting for a free connection (``max_concurrency``)
    is not counted against it.
    """

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 30.0
    request: float = 30.0

    def __post_init__(self) -> None:
        if not self.request > 0:
            raise ValueError("timeouts.request must be > 0")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures (429, 5xx, timeouts, connection errors).

    The delay before retry ``n`` (0-based) is full jitter: uniform in
    ``[0, min(max_delay, base_delay * 2**n)]``; a ``Retry-After`` header replaces it,
    capped at ``max_retry_after``.  ``max_elapsed`` caps one request's attempts and the
    waits between them, from its first attempt: no retry starts after it, and the
    attempt running then is cut off (None: only ``retries`` bounds them).
    """

    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 60.0
    max_elapsed: float | None = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")
        if self.max_elapsed is not None and not self.max_elapsed > 0:
            raise ValueError("retry.max_elapsed must be > 0 (or None: no cap)")


@dataclass(frozen=True)
class RegistryConfig:
    """Everything the client needs to know about one registry.

    ``insecure`` allows plain HTTP (the only way the client ever speaks it);
    ``ca_file`` adds a PEM bundle of trusted CAs to the system ones; TLS is always
    verified otherwise.  ``client_cert`` and ``client_key`` (PEM files, both or neither)
    are the certificate presented to a registry that asks for one (mutual TLS).
    ``requests_per_second`` of 0 means unlimited.

    ``scan_deadline`` (seconds, None for none) bounds every request to this registry in
    one cycle, counted from the start of the client's :class:`~automator.registry.Cycle`:
    once it passes, requests still running are cut off and the rest fail at once, both
    with a transient error, so the next cycle tries again.
    """

    insecure: bool = False
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    max_concurrency: int = 16
    requests_per_second: float = 0.0
    page_size: int = 1000
    max_pages: int = 1000
    max_response_bytes: int = 16 * 1024 * 1024
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = "automator/0.1"
    scan_deadline: float | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together: give both or neither")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.requests_per_second < 0:
            raise ValueError("requests_per_second must be >= 0 (0 = unlimited)")
        if self.page_size < 1 or self.max_pages < 1:
            raise ValueError("page_size and max_pages must be >= 1")
        if self.max_response_bytes < 1024:
            raise ValueError("max_response_bytes must be >= 1024")
        if self.scan_deadline is not None and not self.scan_deadline > 0:
            raise ValueError("scan_deadline must be > 0 (or None: no deadline)")


def shared(config: RegistryConfig, fraction: float) -> RegistryConfig:
    """``config`` for one of several processes that share a registry's limits (``--shards``: a
    replica holding k of N shards gets k/N of the connections, at least one, and of the rate),
    so that N replicas together stay within what one would use."""
    if fraction >= 1:
        return config
    concurrency = max(1, int(config.max_concurrency * fraction))
    return replace(config, max_concurrency=concurrency, requests_per_second=config.requests_per_second * fraction)


def canonical_host(host: str) -> str:
    """The key a registry host is configured under: lower case, Docker Hub aliases folded."""
    host = host.strip().lower()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.split("/", 1)[0]
    return "docker.io" if host in DOCKER_HUB_ALIASES else host


@dataclass(frozen=True)
class RegistrySettings:
    """Per-host :class:`RegistryConfig` records and the default for every other host."""

    default: RegistryConfig = field(default_factory=RegistryConfig)
    registries: Mapping[str, RegistryConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        folded = {canonical_host(host): config for host, config in self.registries.items()}
        object.__setattr__(self, "registries", MappingProxyType(folded))

    def __hash__(self) -> int:
        return hash((self.default, tuple(sorted(self.registries.items(), key=lambda item: item[0]))))

    def for_host(self, host: str) -> RegistryConfig:
        """The config of ``host`` (``host:port``), or the default."""
        return self.registries.get(canonical_host(host), self.default)

    def with_host(self, host: str, config: RegistryConfig) -> RegistrySettings:
        """A copy with ``host`` configured as ``config`` (e.g. a policy's ``insecure: true`` registry)."""
        return RegistrySettings(self.default, {**self.registries, canonical_host(host): config})
