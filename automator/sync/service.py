"""Service mode: sync every ``--interval`` and on push webhooks; serve health and metrics.

Built from :class:`~.settings.ServiceOptions` and a :class:`~.runner.Runner` that does each pass.

Endpoints (on ``--listen``):

* ``GET /healthz`` — 200 while the sync loop is alive.
* ``GET /readyz`` — 200 once a sync has succeeded, 503 before that.
* ``GET /metrics`` — Prometheus text format.
* ``POST /hooks/github`` — ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``; a push
  to ``--branch`` triggers a sync, ``ping`` answers 200.
* ``POST /hooks/gitlab`` — ``X-Gitlab-Token`` equal to the secret; a ``Push Hook`` to the branch
  triggers.
* ``POST /hooks/generic`` — ``X-Signature-256: sha256=<HMAC-SHA256 of the body>``; always triggers.

Webhooks need ``--webhook-secret-file``; without it they answer 404. The listener is
:mod:`automator.httpd`, shared with the automator's service.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from automator.buildinfo import instrument
from automator.errors import ConfigError
from automator.httpd import PROOFS, Listener, Response, SecretFile, SecretSource, secret_source
from automator.notify.metrics import count_notifications
from automator.retry import Backoff
from automator.sync.cluster import KubeCluster
from automator.sync.lease import KubeLeases, LeaseHolder
from automator.sync.model import Action, SyncResult
from automator.sync.settings import ServiceOptions

if TYPE_CHECKING:
    from automator.sync.runner import Runner

log = logging.getLogger("automator.sync")
BACKOFF = Backoff()
SOURCES = ("github", "gitlab", "generic")  # push hooks; each authenticated as httpd.PROOFS says
MAX_PUSH_BODY = 5 * 1024 * 1024  # push payloads list commits and files (GitHub sends at most 20 commits)


def next_delay(interval: float, failures: int, error: BaseException | None = None) -> float:
    """Seconds until the next run: the interval, or sooner (5s, 10s, 20s...) after failures in a
    row, unless the error tree files what stopped the run as permanent (a commit the signature
    check refused, a render error: a new commit is needed, and a push webhook brings it sooner)."""
    if failures <= 0:
        return interval
    delay = BACKOFF.after(failures, error)
    return interval if delay is None else min(interval, delay)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        instrument(r, "sync")  # build info and process metrics
        self.runs = Counter("automator_sync_runs", "Sync runs by outcome.", ["outcome"], registry=r)
        self.duration = Histogram("automator_sync_duration_seconds", "Wall time of one sync run.", registry=r)
        self.objects = Gauge("automator_sync_objects", "Objects of the last run by action.", ["action"], registry=r)
        self.drift = Counter("automator_sync_drift", "Objects found drifted and reverted.", registry=r)
        self.writes = Counter("automator_sync_api_writes", "Write requests sent to the API server.", registry=r)
        self.last_success = Gauge(
            "automator_sync_last_success_timestamp_seconds", "When a sync last succeeded.", registry=r
        )
        self.suspended = Gauge("automator_sync_suspended", "1 while the sync is suspended.", registry=r)
        self.webhooks = Counter("automator_sync_webhooks", "Webhook deliveries.", ["source", "outcome"], registry=r)
        self.leader = Gauge(
            "automator_sync_leader", "1 while this replica holds the Lease (--leader-elect).", registry=r
        )

    def record(self, result: SyncResult, seconds: float) -> None:
        self.runs.labels("success" if result.ok else "failure").inc()
        self.duration.observe(seconds)
        for action in Action:
            self.objects.labels(str(action)).set(sum(1 for o in result.objects if o.action is action))
        self.drift.inc(sum(1 for o in result.objects if o.drift))
        self.writes.inc(result.writes)
        self.suspended.set(1 if result.suspended else 0)
        if result.ok:
            self.last_success.set(time.time())


class Service:
    """The sync loop plus its HTTP endpoints; ``start()`` binds, ``run()`` loops until ``stop``.

    Push webhooks are filtered by the runner's branch; ``webhook_secret`` empty turns them off.
    """

    def __init__(self, runner: Runner, options: ServiceOptions, webhook_secret: str | SecretSource = "") -> None:
        self.runner = runner
        self.branch = runner.options.source.branch
        self.interval = options.interval
        self._secret = secret_source(webhook_secret)
        self.metrics = Metrics()
        if runner.notify is not None:
            count_notifications(self.metrics.registry, runner.notify.dispatcher)
        self.trigger = threading.Event()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.last: SyncResult | None = None
        self.leader: LeaseHolder | None = None
        if options.lease is not None:
            # a connection of its own: the runner's refuses writes once the Lease is lost
            kube = KubeCluster.connect(
                runner.options.kubeconfig, runner.options.context, pool_size=1, timeout=options.lease.renew_deadline
            )
            self.leader = LeaseHolder(KubeLeases(kube), options.lease, on_change=lambda held: self.trigger.set())
            runner.cluster.fence = self.leader.held
        self.http = Listener(options.listen, self.get, self.post, precheck=self.precheck, max_body=MAX_PUSH_BODY)
        self.address = self.http.address

    def start(self) -> None:
        self.http.start("sync-http")

    def run(self) -> None:
        failures = 0
        standing_by = False
        if self.leader is not None:
            self.leader.start()
        try:
            while not self.stop.is_set():
                if self.leader is not None and not self.leader.held():
                    if not standing_by:
                        log.info("standing by: %s holds the lease", self.leader.holder or "nobody")
                    standing_by = True
                    self.ready.set()  # a standby is healthy: a rollout of new replicas must not wait for it
                    self.metrics.leader.set(0)
                    self.trigger.wait(self.leader.config.retry)
                    self.trigger.clear()
                    continue
                if self.leader is not None:
                    self.metrics.leader.set(1)
                standing_by = False
                result = self.sync_once()
                failures = 0 if result.ok else failures + 1
                self.trigger.wait(next_delay(self.interval, failures, result.error))
                self.trigger.clear()
        finally:
            if self.leader is not None:
                self.leader.stop()
            self.http.close()

    def sync_once(self) -> SyncResult:
        started = time.monotonic()
        try:
            result = self.runner.once()
        except ConfigError:
            raise  # the user must fix it: stop with exit code 2
        except Exception as exc:  # keep the agent alive; the next run retries with backoff
            log.exception("sync run crashed")
            result = SyncResult(revision="", errors=(f"internal error: {type(exc).__name__}: {exc}",))
        self.metrics.record(result, time.monotonic() - started)
        self.last = result
        if result.ok:
            self.ready.set()
        for o in result.objects:
            if o.drift:
                log.warning("drift reverted on %s: %s", o.ref, ", ".join(o.drift))
        level = logging.INFO if result.ok else logging.ERROR
        log.log(level, "sync at %s: %d objects, %d errors", result.revision[:12] or "-", len(result.objects),
                len(result.errors))  # fmt: skip
        for error in result.errors:
            log.error("%s", error)
        return result

    # -- webhooks --------------------------------------------------------------------------

    def get(self, path: str) -> Response | None:
        if path == "/healthz":
            return Response(200, "ok")
        if path == "/readyz":
            return Response(200, "ready") if self.ready.is_set() else Response(503, "no successful sync yet")
        if path == "/metrics":
            return Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        return None

    def precheck(self, path: str, headers: Mapping[str, str]) -> Response | None:
        """Refuse before reading a body: a wrong path, webhooks off, or no proof at all."""
        source = path.removeprefix("/hooks/").strip("/") if path.startswith("/hooks/") else None
        if source not in SOURCES:
            return None  # post() answers 404 without needing the body
        secret = self._secret()
        if not secret:
            return None
        if not PROOFS[source].may_prove("", headers, secret):
            return self._refused(source, 401, f"{source}: not authenticated; send {PROOFS[source].how}")
        return None

    def _refused(self, source: str, status: int, message: str) -> Response:
        self.metrics.webhooks.labels(source, str(status)).inc()
        return Response(status, message)

    def post(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        if not path.startswith("/hooks/"):
            return Response(404, "not found")
        source = path.removeprefix("/hooks/").strip("/")
        status, message = self.webhook(source, headers, body)
        self.metrics.webhooks.labels(source if status != 404 else "unknown", str(status)).inc()
        return Response(status, message)

    def webhook(self, source: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Authenticate and filter one delivery; ``headers`` have lower-case names."""
        secret = self._secret()
        if not secret:
            return 404, "webhooks are disabled: start with --webhook-secret-file"
        if source not in SOURCES:
            return 404, "unknown webhook source"
        if not PROOFS[source].proved("", headers, body, secret):
            return 401, f"{source}: not authenticated; send {PROOFS[source].how}"
        if source == "github" and headers.get("x-github-event") == "ping":
            return 200, "pong"
        if source in ("github", "gitlab"):
            event = headers.get("x-github-event") if source == "github" else headers.get("x-gitlab-event")
            if event not in ("push", "Push Hook"):
                return 202, f"ignored: event {event!r}"
            try:
                ref = json.loads(body or b"{}").get("ref", "")
            except (ValueError, AttributeError):
                return 400, "the body is not a JSON object"
            if ref != f"refs/heads/{self.branch}":
                return 202, f"ignored: push to {ref!r}, watching refs/heads/{self.branch}"
        self.trigger.set()
        return 202, "sync triggered"


def serve(runner: Runner, options: ServiceOptions) -> int:
    """Run the service until SIGTERM/SIGINT; exit 0 when stopped."""
    secret: str | SecretFile = ""
    if options.webhook_secret_file is not None:
        secret = SecretFile(str(options.webhook_secret_file))
    service = Service(runner, options, secret)

    def shutdown(*_: object) -> None:
        service.stop.set()
        service.trigger.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, shutdown)
    service.start()
    log.info("sync service on %s, every %gs", options.listen, service.interval)
    service.run()
    return 0
