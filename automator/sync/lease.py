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

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from automator.errors import AutomatorError, ConfigError

__all__ = ["KubeLeases", "LeaseAPI", "LeaseConfig", "LeaseHolder", "ShardLeases", "lease_for", "replica_identity"]

log = logging.getLogger("automator.lease")
PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_UNREAD = object()  # LeaseHolder.step: read the Lease itself


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
    labels: tuple[tuple[str, str], ...] = ()  # on the Lease object (shards: the group, for one LIST)

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
    who = replica_identity(identity)
    return LeaseConfig(
        namespace,
        name,
        who,
        duration=duration,
        renew_deadline=duration * 2 / 3,
        retry=max(0.2, duration / 7.5),
        annotations=annotations,
    )


def replica_identity(identity: str | None) -> str:
    """This replica's name: ``--lease-identity``, else ``$POD_NAME``, else the host name."""
    return identity or os.environ.get("POD_NAME") or socket.gethostname()


class LeaseAPI(Protocol):
    """What the election needs of the API server: read, create and replace one Lease (and, for
    shards, list a group's Leases by label)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
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

    def list(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        path = f"{PATH.format(namespace=namespace)}?labelSelector={quote(selector, safe='')}"
        status, data = self.cluster.request("GET", path)
        _check(status, data, f"list leases {selector} in {namespace}")
        items = data.get("items") if isinstance(data, dict) else None
        return [dict(i) for i in items or () if isinstance(i, dict)]

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

    # one election seen as one shard, as ShardLeases sees several
    count = 1

    def shards(self) -> frozenset[int]:
        return frozenset({0}) if self.held() else frozenset()

    def holder_of(self, shard: int) -> str:
        return self._holder

    def annotations_of(self, shard: int) -> dict[str, str]:
        return self.annotations

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

    def step(self, *, acquire: bool = True, lease: object = _UNREAD) -> bool:
        """One round: read the Lease (unless ``lease`` is what a LIST just read: None, absent),
        then create, take over or renew it when we may (``acquire`` False: renew only what we
        hold). Whether we hold it afterwards (by our own last write, within the renew deadline)."""
        c = self.config
        now_mono = self.monotonic()
        if lease is _UNREAD:
            lease = self.api.get(c.namespace, c.name)
        if lease is None:
            if acquire and self.api.create(c.namespace, self._body(None, transitions=0, acquired=True)):
                self._wrote(now_mono, c.identity)
            return self.held()
        assert isinstance(lease, dict)
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
        if not ours and not acquire:
            with self._lock:
                self._renewed = None
            return False
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
        if c.labels:
            metadata["labels"] = {**(metadata.get("labels") or {}), **dict(c.labels)}
        if c.annotations:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), **dict(c.annotations)}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def release(self) -> None:
        """Give the Lease up now (if ours), so another replica may take it at once."""
        try:
            self._release()
        finally:
            with self._lock:
                self._renewed = None

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


GROUP_LABEL = "automator.dev/lease-group"  # every Lease of one sharded program carries its name
ROLE_LABEL = "automator.dev/lease-role"  # "shard" or "member"


def _member_name(name: str, identity: str) -> str:
    """A member Lease's object name: ``<name>-member-<identity>``, made a DNS label (a hash
    keeps two identities that spell alike apart)."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in identity.lower()).strip("-")[:40]
    tail = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{name}-member-{safe}-{tail}".replace("--", "-")


class ShardLeases:
    """``--shards N``: N Leases (``<name>-shard-<i>``), each held by one replica, shared fairly.

    Every replica also renews a member Lease of its own (``<name>-member-<identity>``, written
    alone in its first round, so that replicas started together count each other before any
    takes a shard), so each knows how many replicas are alive: those whose member Lease it saw renewed within the lease
    duration (measured on its own clock, as for any Lease). Its fair share is
    ``ceil(N / alive)``; each round (every ``retry`` seconds, one LIST of the group's Leases by
    label, then a write per Lease renewed or taken) it renews the shards it holds, gives up one
    above its share (a replica joined: it takes that one next round), and takes free or expired
    shards while under its share, starting from a shard its identity picks, so that replicas
    starting together do not all race for shard 0. Each shard is an election of its own
    (:class:`LeaseHolder`): a dead replica's shards are taken over once their Leases expire,
    and a replica cut off from the API server stops calling a shard its own after the renew
    deadline, before anyone may take it over.

    The service sees it as it sees one :class:`LeaseHolder`: :meth:`held` is "holds a shard";
    :attr:`holder` and :attr:`annotations` are shard 0's (whose holder serves the dashboard to
    standbys); :meth:`shards`, :meth:`holder_of` and :meth:`annotations_of` tell the rest.
    """

    def __init__(
        self,
        api: LeaseAPI,
        config: LeaseConfig,
        count: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if count < 1:
            raise ConfigError(f"--shards must be 1 or more, not {count}")
        self.api, self.config, self.count = api, config, count
        self.monotonic = monotonic
        self.on_change = on_change
        group = ((GROUP_LABEL, config.name),)
        self.selector = f"{GROUP_LABEL}={config.name}"
        self.holders = [
            LeaseHolder(
                api,
                replace(config, name=f"{config.name}-shard-{i}", labels=(*group, (ROLE_LABEL, "shard"))),
                monotonic=monotonic,
                wall=wall,
            )
            for i in range(count)
        ]
        member = replace(
            config, name=_member_name(config.name, config.identity), labels=(*group, (ROLE_LABEL, "member"))
        )
        self.member = LeaseHolder(api, replace(member, annotations=()), monotonic=monotonic, wall=wall)
        self._seen: dict[str, tuple[tuple[Any, ...], float]] = {}  # member Lease -> (record, when it changed)
        self.alive = 1
        self._start = shard_of_identity(config.identity, count)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was: frozenset[int] = frozenset()
        self._rounds = 0

    # -- what the work asks -------------------------------------------------------------------

    def shards(self) -> frozenset[int]:
        """The shards this replica holds now (each renewed within the renew deadline)."""
        return frozenset(i for i, h in enumerate(self.holders) if h.held())

    def held(self) -> bool:
        return bool(self.shards())

    def holds(self, shards: frozenset[int]) -> bool:
        """Whether every shard of ``shards`` is still ours (a cycle's fence)."""
        return shards <= self.shards()

    def holder_of(self, shard: int) -> str:
        return self.holders[shard].holder

    def annotations_of(self, shard: int) -> dict[str, str]:
        return self.holders[shard].annotations

    @property
    def holder(self) -> str:
        return self.holders[0].holder

    @property
    def annotations(self) -> dict[str, str]:
        return self.holders[0].annotations

    def share(self) -> int:
        return -(-self.count // max(self.alive, 1))

    # -- the election -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"lease-{self.config.name}-shards", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop electing; release every shard held and the member Lease, so the others take the
        shards over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.retry + 5)
        for h in [*self.holders, self.member]:
            h.stop()  # each releases its Lease if it holds it (their rounds ran on our thread)
        self._changed()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except AutomatorError as exc:
                log.warning("leases %s: %s", self.selector, exc)
            self._changed()
            self._stop.wait(self.config.retry)

    def step(self) -> frozenset[int]:
        """One round (see the class docstring); the shards held afterwards."""
        c = self.config
        listed = {
            str((lease.get("metadata") or {}).get("name") or ""): lease
            for lease in self.api.list(c.namespace, self.selector)
        }
        self.member.step(lease=listed.get(self.member.config.name))
        self.alive = self._alive(listed)
        self._rounds += 1
        if self._rounds == 1:
            # the first round only announces us: replicas started together see each other's
            # member Leases in the next one, before any takes more than its share
            return self.shards()
        share = self.share()
        order = [(self._start + k) % self.count for k in range(self.count)]
        mine = [i for i in order if self.holders[i].held()]
        for i in mine:
            self.holders[i].step(acquire=False, lease=listed.get(self.holders[i].config.name))
        held = [i for i in mine if self.holders[i].held()]
        if len(held) > share:
            surplus = held[-1]
            log.info(
                "lease %s: %d replicas alive, a fair share is %d: giving it up",
                self.holders[surplus].config.name,
                self.alive,
                share,
            )
            self.holders[surplus].release()
            held.remove(surplus)
        for i in order:
            if i in mine:
                continue
            self.holders[i].step(acquire=len(held) < share, lease=listed.get(self.holders[i].config.name))
            if self.holders[i].held():
                held.append(i)
        return self.shards()

    def _alive(self, listed: dict[str, dict[str, Any]]) -> int:
        """The replicas whose member Lease was renewed within its duration, as we measured it
        (ourselves always among them)."""
        now = self.monotonic()
        alive = {self.member.config.name}
        for name, lease in listed.items():
            labels = (lease.get("metadata") or {}).get("labels") or {}
            if labels.get(ROLE_LABEL) != "member" or name == self.member.config.name:
                continue
            spec = lease.get("spec") or {}
            if not spec.get("holderIdentity"):
                continue  # released on shutdown
            record = (spec.get("holderIdentity"), spec.get("renewTime"))
            seen = self._seen.get(name)
            if seen is None or seen[0] != record:
                self._seen[name] = seen = (record, now)
            if now - seen[1] < float(spec.get("leaseDurationSeconds") or self.config.duration):
                alive.add(name)
        for gone in set(self._seen) - set(listed):
            del self._seen[gone]
        return len(alive)

    def _changed(self) -> None:
        now = self.shards()
        if now != self._was:
            self._was = now
            held = ", ".join(str(i) for i in sorted(now)) or "none"
            log.info("leases %s: holding shards %s of %d", self.config.name, held, self.count)
            if self.on_change is not None:
                self.on_change(bool(now))


def shard_of_identity(identity: str, count: int) -> int:
    """Where a replica starts looking for a free shard: spread by its name."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") % count
