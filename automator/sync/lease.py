"""Leader election over a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Several replicas of a program share one Lease; the one named in ``spec.holderIdentity`` works,
the others wait. :class:`LeaseHolder` runs the election on a thread of its own:

* every ``retry`` seconds it reads the Lease; absent, it creates it naming itself; held by
  another, it takes it over only once the record has not changed for ``duration`` seconds, as
  *this* process measured it (the holder's clock is never compared with ours); held by itself,
  it renews ``renewTime``. Every write carries the ``resourceVersion`` it read, so two replicas
  racing for a free Lease cannot both win: the API server refuses the second write (409).
* :meth:`LeaseHolder.held` is true only while the last renewal is younger than
  ``renew_deadline``, which is shorter than ``duration``: a holder cut off from the API server
  stops calling itself the holder (and the work it guards stops) before any other replica may
  take the Lease over. That gap, ``duration - renew_deadline``, is what keeps two holders from
  working at once, provided work checks :meth:`held` before each write.
* :meth:`LeaseHolder.stop` releases a Lease it holds (holder emptied), so a replica shut down
  on purpose hands over at once instead of after ``duration``.

Written here rather than taken from the ``kubernetes`` package: its Python leaderelection module
is a thread loop without release and with the holder's clock compared to ours. The Lease object
is plain JSON over :class:`~automator.sync.cluster.KubeCluster`'s transport.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from automator.errors import AutomatorError, ConfigError

__all__ = ["KubeLeases", "LeaseAPI", "LeaseConfig", "LeaseHolder", "lease_for"]

log = logging.getLogger("automator.lease")
PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


@dataclass(frozen=True)
class LeaseConfig:
    """One election: the Lease ``namespace/name``, who we are, and its timings (seconds)."""

    namespace: str
    name: str
    identity: str
    duration: float = 15.0  # how long a Lease nobody renews stays someone's
    renew_deadline: float = 10.0  # a holder that could not renew for this long stops working
    retry: float = 2.0  # how often the Lease is read (and renewed)
    # written on the Lease while we hold it (e.g. where the holder takes webhooks), read by the others
    annotations: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.identity:
            raise ConfigError("leader election needs an identity (the pod's name)")
        if not 0 < self.retry < self.renew_deadline < self.duration:
            raise ConfigError(
                f"lease timings: need 0 < retry ({self.retry:g}s) < renew deadline ({self.renew_deadline:g}s)"
                f" < duration ({self.duration:g}s)"
            )


def lease_for(
    namespace: str,
    name: str,
    identity: str | None,
    duration: float,
    annotations: tuple[tuple[str, str], ...] = (),
) -> LeaseConfig:
    """The election both programs run from ``--lease-duration``: renewed every duration/7.5 (at
    least 0.2 s), given up after 2/3 of it; the identity ``--lease-identity``, else
    ``$POD_NAME``, else the host name."""
    who = identity or os.environ.get("POD_NAME") or socket.gethostname()
    return LeaseConfig(
        namespace,
        name,
        who,
        duration=duration,
        renew_deadline=duration * 2 / 3,
        retry=max(0.2, duration / 7.5),
        annotations=annotations,
    )


class LeaseAPI(Protocol):
    """What the election needs of the API server: read, create and replace one Lease."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create(self, namespace: str, body: dict[str, Any]) -> bool: ...  # False: it exists already
    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> bool: ...  # False: a conflict


class KubeLeases:
    """:class:`LeaseAPI` over a ``KubeCluster`` (its ``request``); errors are ``ClusterUnavailable``
    or an ``AutomatorError`` naming the status (a 403: the Lease RBAC is missing)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, data = self.cluster.request("GET", f"{PATH.format(namespace=namespace)}/{name}")
        if status == 404:
            return None
        _check(status, data, f"get lease {namespace}/{name}")
        return dict(data)

    def create(self, namespace: str, body: dict[str, Any]) -> bool:
        status, data = self.cluster.request("POST", PATH.format(namespace=namespace), body=body)
        if status == 409:
            return False
        _check(status, data, f"create lease {namespace}/{body['metadata']['name']}")
        return True

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        status, data = self.cluster.request("PUT", f"{PATH.format(namespace=namespace)}/{name}", body=body)
        if status == 409:
            return False
        _check(status, data, f"update lease {namespace}/{name}")
        return True


def _check(status: int, data: Any, what: str) -> None:
    if not 200 <= status < 300:
        message = data.get("message") if isinstance(data, dict) else data
        raise AutomatorError(f"{what}: the API server answered {status}: {message}")


def _micro_time(when: datetime) -> str:
    """A MicroTime as Kubernetes writes it."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseHolder:
    """One replica's side of one election (see the module docstring)."""

    def __init__(
        self,
        api: LeaseAPI,
        config: LeaseConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.api, self.config = api, config
        self.monotonic, self.wall = monotonic, wall
        self.on_change = on_change
        self._lock = threading.Lock()
        self._renewed: float | None = None  # monotonic time of our last successful write
        self._observed: tuple[Any, ...] | None = None  # the record as last read
        self._observed_at = 0.0  # monotonic time it last changed
        self._holder = ""  # who the Lease named when last read
        self._annotations: dict[str, str] = {}
        self._was_held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the work asks -------------------------------------------------------------------

    def held(self) -> bool:
        """Whether we hold the Lease now: named in it, and renewed within the renew deadline."""
        with self._lock:
            renewed = self._renewed
        return renewed is not None and self.monotonic() - renewed < self.config.renew_deadline

    @property
    def holder(self) -> str:
        """Who the Lease named when last read ("" when nobody)."""
        return self._holder

    @property
    def annotations(self) -> dict[str, str]:
        """The Lease's annotations when last read (what its holder advertises)."""
        return dict(self._annotations)

    def wait(self, timeout: float) -> bool:
        """Wait until we hold the Lease, at most ``timeout`` seconds; whether we do."""
        deadline = self.monotonic() + timeout
        while not self.held():
            left = deadline - self.monotonic()
            if left <= 0 or self._stop.wait(min(left, 0.05)):
                return self.held()
        return True

    # -- the election -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"lease-{self.config.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop electing; release the Lease if we hold it, so another replica takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.retry + 5)
        if self.held():
            try:
                self._release()
            except AutomatorError as exc:
                log.warning(
                    "lease %s: could not release it (another replica takes over once it expires): %s",
                    self.config.name,
                    exc,
                )
        with self._lock:
            self._renewed = None
        self._changed()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except AutomatorError as exc:
                log.warning("lease %s: %s", self.config.name, exc)
            self._changed()
            self._stop.wait(self.config.retry)

    def step(self) -> bool:
        """One round: read the Lease, then create, take over or renew it when we may. Whether we
        hold it afterwards (by our own last write, within the renew deadline)."""
        c = self.config
        now_mono = self.monotonic()
        lease = self.api.get(c.namespace, c.name)
        if lease is None:
            if self.api.create(c.namespace, self._body(None, transitions=0, acquired=True)):
                self._wrote(now_mono, c.identity)
            return self.held()
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, spec.get("renewTime"), spec.get("acquireTime"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed, self._observed_at = record, now_mono
        self._holder = holder
        self._annotations = {
            str(k): str(v) for k, v in ((lease.get("metadata") or {}).get("annotations") or {}).items()
        }
        duration = float(spec.get("leaseDurationSeconds") or c.duration)
        if holder and holder != c.identity and now_mono - self._observed_at < duration:
            with self._lock:
                self._renewed = None  # someone else's, and alive
            return False
        ours = holder == c.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        if self.api.replace(c.namespace, c.name, self._body(lease, transitions=transitions, acquired=not ours)):
            self._wrote(now_mono, c.identity)
            if not ours:
                log.info("lease %s: acquired (was %s)", c.name, holder or "free")
        return self.held()

    def _wrote(self, at: float, holder: str) -> None:
        with self._lock:
            self._renewed = at
        self._holder = holder

    def _body(self, lease: dict[str, Any] | None, *, transitions: int, acquired: bool) -> dict[str, Any]:
        c = self.config
        now = _micro_time(self.wall())
        spec = dict((lease or {}).get("spec") or {})
        spec.update(
            holderIdentity=c.identity,
            leaseDurationSeconds=int(c.duration),
            renewTime=now,
            leaseTransitions=transitions,
        )
        if acquired or "acquireTime" not in spec:
            spec["acquireTime"] = now
        metadata = dict((lease or {}).get("metadata") or {"name": c.name, "namespace": c.namespace})
        metadata.pop("managedFields", None)
        if c.annotations:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), **dict(c.annotations)}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _release(self) -> None:
        c = self.config
        lease = self.api.get(c.namespace, c.name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != c.identity:
            return
        body = self._body(
            lease, transitions=int((lease.get("spec") or {}).get("leaseTransitions") or 0), acquired=False
        )
        body["spec"]["holderIdentity"] = None
        body["spec"]["leaseDurationSeconds"] = 1
        if self.api.replace(c.namespace, c.name, body):
            log.info("lease %s: released", c.name)

    def _changed(self) -> None:
        now = self.held()
        if now != self._was_held:
            self._was_held = now
            log.info("lease %s: %s", self.config.name, "holding it: working" if now else "not holding it: waiting")
            if self.on_change is not None:
                self.on_change(now)
