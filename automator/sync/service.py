"""Service mode: sync every ``--interval`` and on push webhooks; serve health and metrics.

Endpoints (on ``--listen``):

* ``GET /healthz`` — 200 while the sync loop is alive.
* ``GET /readyz`` — 200 once a sync has succeeded, 503 before that.
* ``GET /metrics`` — Prometheus text format.
* ``POST /hooks/github`` — ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``; a push
  to ``--branch`` triggers a sync, ``ping`` answers 200.
* ``POST /hooks/gitlab`` — ``X-Gitlab-Token`` equal to the secret; a ``Push Hook`` to the branch
  triggers.
* ``POST /hooks/generic`` — ``X-Signature-256: sha256=<HMAC-SHA256 of the body>``; always triggers.

Webhooks need ``--webhook-secret-file``; without it they answer 404. The HTTP server is the
standard library's threading server: four small endpoints do not justify a web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from automator.errors import ConfigError
from automator.sync.model import Action, SyncResult

if TYPE_CHECKING:
    from automator.sync.command import Runner

log = logging.getLogger("automator.sync")
MAX_BODY = 5 * 1024 * 1024
RETRY_BASE = 5.0


def next_delay(interval: float, failures: int) -> float:
    """Seconds until the next run: the interval, or sooner (5s, 10s, 20s...) after failures in a row."""
    if failures <= 0:
        return interval
    return min(interval, RETRY_BASE * float(2 ** min(failures - 1, 16)))


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--listen {listen!r}: expected host:port, e.g. 0.0.0.0:8080 or [::]:8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
    """The sync loop plus its HTTP endpoints; ``start()`` binds, ``run()`` loops until ``stop``."""

    def __init__(self, runner: Runner, listen: str, webhook_secret: str = "") -> None:
        self.runner = runner
        self.branch = str(runner.args.branch)
        self.interval = float(runner.args.interval)
        self.secret = webhook_secret.encode()
        self.metrics = Metrics()
        self.trigger = threading.Event()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.last: SyncResult | None = None
        host, port = parse_listen(listen)
        handler = type("Handler", (_Handler,), {"service": self})
        server_class = _V6Server if ":" in host else http.server.ThreadingHTTPServer
        self.http = server_class((host, port), handler)
        self.address = self.http.server_address

    def start(self) -> None:
        threading.Thread(target=self.http.serve_forever, name="sync-http", daemon=True).start()

    def run(self) -> None:
        failures = 0
        try:
            while not self.stop.is_set():
                failures = 0 if self.sync_once().ok else failures + 1
                self.trigger.wait(next_delay(self.interval, failures))
                self.trigger.clear()
        finally:
            self.http.shutdown()
            self.http.server_close()

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

    def webhook(self, source: str, headers: Any, body: bytes) -> tuple[int, str]:
        if not self.secret:
            return 404, "webhooks are disabled: start with --webhook-secret-file"
        if source in ("github", "generic"):
            header = "X-Hub-Signature-256" if source == "github" else "X-Signature-256"
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, str(headers.get(header, ""))):
                return 401, f"bad or missing {header}"
        elif source == "gitlab":
            if not hmac.compare_digest(self.secret, str(headers.get("X-Gitlab-Token", "")).encode()):
                return 401, "bad or missing X-Gitlab-Token"
        else:
            return 404, "unknown webhook source"
        if source == "github" and headers.get("X-GitHub-Event") == "ping":
            return 200, "pong"
        if source in ("github", "gitlab"):
            event = headers.get("X-GitHub-Event") if source == "github" else headers.get("X-Gitlab-Event")
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


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    service: Service
    server_version = "automator-sync"

    def do_GET(self) -> None:
        svc = self.service
        if self.path == "/healthz":
            self._send(200, "ok")
        elif self.path == "/readyz":
            self._send(200, "ready") if svc.ready.is_set() else self._send(503, "no successful sync yet")
        elif self.path == "/metrics":
            self._send(200, generate_latest(svc.metrics.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:
        if not self.path.startswith("/hooks/"):
            self._send(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, "body too large")
            return
        body = self.rfile.read(length)
        source = self.path.removeprefix("/hooks/").strip("/")
        status, message = self.service.webhook(source, self.headers, body)
        self.service.metrics.webhooks.labels(source if status != 404 else "unknown", str(status)).inc()
        self._send(status, message)

    def _send(self, status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


def serve(runner: Runner) -> int:
    """Run the service until SIGTERM/SIGINT; exit 0 when stopped."""
    secret = ""
    if runner.args.webhook_secret_file:
        try:
            secret = Path(runner.args.webhook_secret_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --webhook-secret-file: {exc.strerror}") from exc
    service = Service(runner, runner.args.listen, secret)

    def shutdown(*_: object) -> None:
        service.stop.set()
        service.trigger.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, shutdown)
    service.start()
    log.info("sync service on %s, every %gs", runner.args.listen, service.interval)
    service.run()
    return 0
