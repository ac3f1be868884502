"""``automator run`` as a service: cycles on a schedule and on registry webhooks, with health.

One loop on the main thread runs the cycles one at a time; the HTTP listener runs beside it.
This module is the loop and its endpoints; when full cycles run is :mod:`.schedule`, what is
counted is :mod:`.metrics`, and every reading of the time goes through the injected
:class:`~automator.daemon.clock.Clock` (the real one unless a test passes its own).

* **Schedule.** ``--interval`` (first cycle at start-up) or a ``--schedule`` crontab expression
  in ``--timezone`` (see :class:`Schedule`). A full cycle lists every repository afresh.
* **Webhooks.** ``POST /hooks/<source>[/<secret>]`` (see :mod:`automator.daemon.webhooks`).
  A delivery naming repositories that policies track queues a cycle ``--webhook-debounce``
  later (a CI pushing three tags makes one cycle); that cycle lists only those repositories and
  reuses the previous answers for the rest. If a pushed tag is not listed yet (registries
  and their caches lag), the repository is listed again after 10 s, 20 s and 40 s
  (``TAG_RETRIES``). A delete lists the repository again; a push no loaded policy tracks
  reloads the policies (at most every ``RELOAD_EVERY`` seconds).
* **Failures.** A cycle that raised is retried after 5 s, 10 s, 20 s... (``BACKOFF``, read off
  the error tree; never later than the next scheduled cycle); a bad in-repo config waits for
  the next scheduled cycle, a credential caught mid-rotation does not.
* ``GET /healthz`` — 503 once a cycle has run longer than ``--cycle-timeout`` (a hung git or
  forge call: let the kubelet restart us), else 200.
* ``GET /readyz`` — 200 while serving, 503 once shutting down.
* ``GET /metrics`` — Prometheus; ``GET /status`` — the last cycle as JSON and, given a
  ``status_model`` (with ``--state-dir``), the status model ``automator status --output json``
  prints (its keys beside the loop's). After each cycle the steps ``lead_times`` lists as
  completed since the service started are observed, once each, in the
  ``automator_lead_time_seconds{stage}`` histograms; the tags webhooks announced are handed to
  ``announce`` (the state's record of which webhook announced each tag first) before the cycle.
* ``GET /``, ``/policies/<name>``, ``/static/*``, ``/login`` — the read-only dashboard
  (:mod:`automator.dashboard`), on ``--listen`` only; its token, when set, guards ``/status`` too.
* **Leader election** (``leader``, a :class:`~automator.sync.lease.LeaseHolder`): a replica
  that does not hold the Lease runs no cycle and passes webhooks on to the holder (where its
  Lease's ``automator.dev/webhook-url`` annotation says), or answers 503 when it cannot (the
  registry retries); once it holds the Lease, it runs a full cycle at once. ``/status`` says
  who holds it. On shutdown the Lease is released, so another replica takes over without
  waiting for it to expire.
* ``--webhook-listen`` moves ``/hooks/*`` to a listener of its own (with ``/healthz`` for load
  balancers), so that only the hooks face the registries.
* SIGTERM/SIGINT finish the running cycle, then exit 0; a second signal exits at once.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode

from automator.daemon.clock import SYSTEM_CLOCK, Clock, SystemClock
from automator.daemon.metrics import Metrics
from automator.daemon.schedule import Schedule, cron_weekdays
from automator.daemon.webhooks import SOURCES, Delivery, WebhookRejected, affected, preauthenticate, receive
from automator.dashboard import Dashboard, is_page
from automator.errors import AutomatorError
from automator.httpd import Listener, Request, Response, SecretSource, secret_source
from automator.policy.model import Policy
from automator.registry.memo import RegistryMemo
from automator.report import run_json
from automator.retry import Backoff
from automator.run import RunSummary
from automator.shards import Partition
from automator.sync.lease import LeaseHolder, ShardLeases

# Schedule, cron_weekdays, Metrics and the clocks live in rooms of their own; they stay
# importable from here, where they were first.
__all__ = [
    "BACKOFF",
    "RELOAD_EVERY",
    "SYSTEM_CLOCK",
    "TAG_RETRIES",
    "AutomatorService",
    "Clock",
    "Metrics",
    "Schedule",
    "SystemClock",
    "cron_weekdays",
    "serve",
]

log = logging.getLogger("automator.daemon")
# The defaults of the service's parameters of the same names (lower case):
BACKOFF = Backoff()  # after a failed cycle: 5 s, 10 s, 20 s ... unless the error is permanent
TAG_RETRIES = (10.0, 20.0, 40.0)  # a pushed tag not listed yet is looked for again after these
RELOAD_EVERY = 600.0  # a push no loaded policy tracks reloads the policies at most this often
_TICK = timedelta(microseconds=1)  # the resolution of a datetime


@dataclass
class _Pending:
    """What the next webhook cycle must list again (guarded by the service's lock)."""

    repositories: set[str] = field(default_factory=set)
    everything: bool = False
    due: float | None = None  # monotonic time the queued cycle may start
    tags: set[tuple[str, str]] = field(default_factory=set)  # pushed (repository, tag) to look for after
    announced: set[tuple[str, str, str]] = field(default_factory=set)  # (repository, tag, webhook source)


@dataclass(frozen=True)
class _Recheck:
    due: float  # monotonic
    attempts: int  # listings so far that did not show the tag


@dataclass
class _Last:
    trigger: str
    started: datetime
    finished: datetime | None = None
    outcome: str = "running"
    error: str = ""
    summary: RunSummary | None = None
    cpu_seconds: float | None = None  # this process's CPU and its git children's, over the cycle


def _cpu() -> float:
    """CPU seconds of this process (every thread) and of its children waited for (git)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


Cycle = Callable[[RegistryMemo], RunSummary]
Report = Callable[[RunSummary], None]
StatusModel = Callable[[datetime], Mapping[str, Any]]  # given the service clock's now
# the steps completed: (a key naming each once, the stage, its lead time in seconds, when it completed)
LeadTimes = Callable[[], Iterable[tuple[tuple[str, ...], str, float, datetime]]]
# the tags webhooks announced since the last cycle: (repository, tag, the webhook's source)
Announce = Callable[[set[tuple[str, str, str]]], None]


class AutomatorService:
    """The loop, its triggers and its HTTP endpoints; ``run()`` returns when stopped.

    Every reading of the time and every wait goes through ``clock`` (wall time for the
    schedule and what is reported, monotonic time for everything measured in seconds, the
    listeners' connection deadlines included).
    ``backoff``, ``tag_retries`` and ``reload_every`` default to the module's constants.
    """

    def __init__(
        self,
        cycle: Cycle,
        schedule: Schedule,
        listen: str,
        *,
        secret: str | SecretSource = "",
        debounce: float = 5.0,
        cycle_timeout: float = 1800.0,
        report: Report | None = None,
        webhook_listen: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff = BACKOFF,
        tag_retries: Sequence[float] = TAG_RETRIES,
        reload_every: float = RELOAD_EVERY,
        status_model: StatusModel | None = None,
        lead_times: LeadTimes | None = None,
        announce: Announce | None = None,
        dashboard: Dashboard | None = None,
        leader: LeaseHolder | ShardLeases | None = None,
    ) -> None:
        self.cycle = cycle
        self.dashboard = dashboard
        self.leader = leader
        self._standing_by = False  # a replica that does not hold the Lease: no cycles until it does
        self._shards: frozenset[int] = frozenset()  # --shards: those held when last looked
        self.partition: Partition | None = None  # --shards: every repository's shard, from the last cycle
        self.status_model = status_model
        self.lead_times = lead_times
        self.announce = announce
        self.observed: set[tuple[str, ...]] = set()  # the steps already observed in the histograms
        self.started = clock.now()  # a step completed before is not observed
        self.schedule = schedule
        self._secret = secret_source(secret)
        self.debounce = debounce
        self.cycle_timeout = cycle_timeout
        self.report = report
        self.clock = clock
        self.backoff = backoff
        self.tag_retries = tuple(tag_retries)
        self.reload_every = reload_every
        self.memo = RegistryMemo()
        self.metrics = Metrics()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.pending = _Pending()
        self.rechecks: dict[tuple[str, str], _Recheck] = {}
        self.last_reload = float("-inf")  # monotonic time a push no policy tracked last queued a reload
        self.policies: tuple[Policy, ...] | None = None  # from the last cycle; None before the first
        self.last: _Last | None = None
        self.running_since: float | None = None
        self.next_full: datetime | None = None
        # With --webhook-listen the hooks get a listener of their own, the one to expose to
        # registries; /status and /metrics then stay on --listen, inside the cluster.
        # The listeners' connection deadlines are measured on the service's clock too.
        self.hooks: Listener | None = None
        if webhook_listen:
            self.http = Listener(
                listen, self.get, self.post, precheck=self._hooks_elsewhere, page=self._page, clock=clock.monotonic
            )
            self.hooks = Listener(
                webhook_listen,
                self._hooks_get,
                self.post,
                precheck=self.precheck,
                flag="--webhook-listen",
                clock=clock.monotonic,
            )
        else:
            self.http = Listener(
                listen, self.get, self.post, precheck=self.precheck, page=self._page, clock=clock.monotonic
            )
        self.address = self.http.address
        self.hooks_address = self.hooks.address if self.hooks is not None else self.address

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        self.http.start("automator-http")
        if self.hooks is not None:
            self.hooks.start("automator-hooks")
        now = self.clock.now()
        self.next_full = now if self.schedule.at_start else self.schedule.next_after(now)
        failures = 0
        retry_at: datetime | None = None
        if self.leader is not None:
            self.leader.start()
        try:
            while not self.stop.is_set():
                if self._stand_by():
                    continue
                now, mono = self.clock.now(), self.clock.monotonic()
                full_due = self.next_full is not None and now >= self.next_full
                retry_due = retry_at is not None and now >= retry_at
                with self.lock:
                    hook_due = self.pending.due is not None and mono >= self.pending.due
                    recheck_due = any(r.due <= mono for r in self.rechecks.values())
                if not (full_due or retry_due or hook_due or recheck_due):
                    self._sleep(retry_at)
                    continue
                trigger = "schedule" if full_due else "retry" if retry_due else "webhook" if hook_due else "recheck"
                error = self._one(trigger, full=full_due or retry_due)
                if full_due and self.next_full is not None:
                    # the slot just run never comes round again, even on a clock that stood
                    # still (a test's) or stepped back (NTP)
                    after = max(self.clock.now(), self.next_full + _TICK)
                    self.next_full = self.schedule.next_after(after)
                failures = 0 if error is None else failures + 1
                delay = None if error is None else self.backoff.after(failures, error)
                retry_at = None if delay is None else self.clock.now() + timedelta(seconds=delay)
                if retry_at is not None and self.next_full is not None and retry_at >= self.next_full:
                    retry_at = None  # the scheduled cycle comes first anyway
        finally:
            if self.leader is not None:
                self.leader.stop()  # released: another replica takes over at once
            self.http.close()
            if self.hooks is not None:
                self.hooks.close()

    def _stand_by(self) -> bool:
        """Without the Lease (``--leader-elect``): wait for it, running no cycle. Once it is ours,
        a full cycle runs at once, since what the last holder saw is not known here."""
        if self.leader is None:
            return False
        shards = self.leader.shards()
        held = bool(shards)
        self.metrics.leader.set(1 if held else 0)
        if held:
            if self._standing_by or not shards <= self._shards:
                self._standing_by = False
                self.next_full = self.clock.now()
                what = "the lease" if self.leader.count == 1 else f"shards {sorted(shards)} of the lease"
                log.info("holding %s %s: running a full cycle", what, self.leader.config.name)
            self._shards = shards
            return False
        self._shards = frozenset()
        if not self._standing_by:
            self._standing_by = True
            log.info("standing by: %s holds the lease %s", self.leader.holder or "nobody", self.leader.config.name)
        self.clock.wait(self.wake, self.leader.config.retry)
        self.wake.clear()
        return True

    def _sleep(self, retry_at: datetime | None) -> None:
        now, mono = self.clock.now(), self.clock.monotonic()
        deadlines = [d for d in (self.next_full, retry_at) if d is not None]
        timeout = min(((d - now).total_seconds() for d in deadlines), default=3600.0)
        with self.lock:
            dues = [r.due for r in self.rechecks.values()]
            if self.pending.due is not None:
                dues.append(self.pending.due)
        timeout = min([timeout, *(due - mono for due in dues)])
        if self.next_full is not None:
            self.metrics.next_cycle.set(self.next_full.timestamp())
        self.clock.wait(self.wake, max(0.0, min(timeout, 3600.0)))
        self.wake.clear()

    def _one(self, trigger: str, *, full: bool) -> BaseException | None:
        """One cycle; returns what stopped it (the error tree says whether and when to retry)."""
        with self.lock:
            pending, self.pending = self.pending, _Pending()
            mono = self.clock.monotonic()
            due = {key: r for key, r in self.rechecks.items() if r.due <= mono}
            for key in due:
                del self.rechecks[key]
        if pending.announced and self.announce is not None:
            try:  # on the loop's thread, before the cycle that lists them: "first seen" follows
                self.announce(pending.announced)
            except Exception:
                log.exception("recording the webhooks' announcements failed")
        if full or pending.everything:
            self.memo.clear()
        else:
            self.memo.invalidate(pending.repositories | {repo for repo, _ in due})
        hits, misses = self.memo.hits, self.memo.misses
        started = self.clock.monotonic()
        cpu = _cpu()
        self.running_since = started
        self.metrics.running.set(1)
        self.last = last = _Last(trigger, self.clock.now())
        error: BaseException | None = None
        try:
            summary = self.cycle(self.memo)
        except Exception as exc:  # keep serving: a registry, git host or forge back online is picked up
            error = exc
            last.outcome = "error"
            last.error = str(exc) if isinstance(exc, AutomatorError) else f"{type(exc).__name__}: {exc}"
            permanent = self.backoff.after(1, exc) is None
            hint = " (fix it; the next scheduled cycle tries again)" if permanent else ""
            log.error("cycle failed: %s%s", exc, hint, exc_info=not isinstance(exc, AutomatorError))
        else:
            last.summary = summary
            last.outcome = "failed" if summary.failed else "ok"
            self.policies = summary.policies or tuple(r.policy for r in summary.plan.scan)
            self.partition = summary.partition
            self.metrics.last_success.set(self.clock.now().timestamp())
            try:  # what is shown of a cycle must not stop the service (a closed stdout, say)
                self.metrics.record(summary)
                if self.report is not None:
                    self.report(summary)
                self._observe_lead_times()
                if self.dashboard is not None:
                    self.dashboard.warm()  # the next page renders without building the model
            except Exception:
                log.exception("reporting the cycle failed")
        finally:
            self.running_since = None
            self.metrics.running.set(0)
            last.finished = self.clock.now()
            last.cpu_seconds = round(_cpu() - cpu, 3)
            self.metrics.duration.observe(self.clock.monotonic() - started)
            self.metrics.cycles.labels(trigger, last.outcome).inc()
            self.metrics.listings.labels("registry").inc(self.memo.misses - misses)
            self.metrics.listings.labels("cache").inc(self.memo.hits - hits)
        attempts = dict.fromkeys(pending.tags, 0) | {key: r.attempts for key, r in due.items()}
        self._verify(attempts)
        return error

    def _observe_lead_times(self) -> None:
        """Each step completed since the service started, observed once in its stage's histogram."""
        if self.lead_times is None:
            return
        for key, stage, seconds, completed in self.lead_times():
            if key in self.observed:
                continue
            self.observed.add(key)
            if completed >= self.started:
                self.metrics.lead_time.labels(stage).observe(seconds)

    def _listed(self, repo: str, tag: str) -> bool:
        listing = self.memo.listing(repo)
        return listing is not None and tag in listing.tags

    def _verify(self, attempts: Mapping[tuple[str, str], int]) -> None:
        """Pushed tags the registry did not list yet are looked for again, a bounded number of times."""
        mono = self.clock.monotonic()
        with self.lock:
            for key in [k for k in self.rechecks if self._listed(*k)]:
                del self.rechecks[key]  # another cycle's listing showed it
            for (repo, tag), n in attempts.items():
                if self._listed(repo, tag):
                    continue
                if n >= len(self.tag_retries):
                    log.warning("%s:%s was pushed but the registry still does not list it; giving up", repo, tag)
                    continue
                log.info("%s:%s is not listed yet; listing again in %gs", repo, tag, self.tag_retries[n])
                self.rechecks[(repo, tag)] = _Recheck(mono + self.tag_retries[n], n + 1)

    # -- triggers ---------------------------------------------------------------------------

    def _queue(
        self,
        repositories: set[str],
        *,
        everything: bool = False,
        tags: set[tuple[str, str]] | None = None,
    ) -> None:
        """Add to the next webhook cycle (the caller holds the lock); nothing listed again when
        ``repositories`` is empty, but the cycle still loads the policies afresh."""
        p = self.pending
        p.repositories |= repositories
        p.everything |= everything
        p.tags |= tags or set()
        due = self.clock.monotonic() + self.debounce
        p.due = due if p.due is None else min(p.due, due)
        self.wake.set()

    def shutdown(self) -> None:
        self.stop.set()
        self.wake.set()

    # -- HTTP -------------------------------------------------------------------------------

    def get(self, path: str) -> Response | None:
        if path == "/healthz":
            since = self.running_since
            running = None if since is None else self.clock.monotonic() - since
            if running is not None and running > self.cycle_timeout:
                return Response(503, f"a cycle has run for {running:.0f}s (--cycle-timeout)")
            return Response(200, "ok")
        if path == "/readyz":
            return Response(503, "shutting down") if self.stop.is_set() else Response(200, "ready")
        if path == "/metrics":
            return Response(200, self.metrics.render(), self.metrics.content_type)
        if path == "/status":
            return Response(200, json.dumps(self.status(), indent=2) + "\n", "application/json")
        return None

    def _page(self, request: Request) -> Response | None:
        """The dashboard's pages (and the sign-in its token puts before ``/status``), on --listen
        only. A standby (``--leader-elect``) has no current state: it passes the dashboard's
        pages on to the Lease holder, where the Lease says it serves them."""
        if self.dashboard is None:
            return None
        if self._standby_pages(request.path):
            return self._pages_from_holder("GET", request.path, request.query, request.headers, b"")
        return self.dashboard.page(request)

    def _standby_pages(self, path: str) -> bool:
        return is_page(path) and self.leader is not None and not self.leader.held()

    def _pages_from_holder(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Response:
        assert self.leader is not None
        holder = self.leader.holder or "no replica yet"
        url = self.leader.annotations.get(DASHBOARD_URL, "")
        if not url or FORWARDED in headers or not self.leader.holder:
            message = f"this replica stands by; {holder} holds the lease and serves the dashboard: retry"
            return Response(503, message, headers=(("Retry-After", str(int(self.leader.config.retry) + 1)),))
        target = url.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")  # path: as it came, encoded
        return relay(method, target, headers, body, by=self.leader.config.identity)

    def status(self) -> dict[str, Any]:
        last = self.last
        with self.lock:
            pending = sorted(self.pending.repositories)
            rechecks = sorted(f"{repo}:{tag}" for repo, tag in self.rechecks)
        out: dict[str, Any] = {
            "schedule": self.schedule.text,
            "nextScheduledCycle": self.next_full.isoformat() if self.next_full else None,
            "running": self.running_since is not None,
            "queuedRepositories": pending,
            "awaitedTags": rechecks,
            "lastCycle": None,
        }
        if self.leader is not None:
            out["leader"] = {
                "lease": f"{self.leader.config.namespace}/{self.leader.config.name}",
                "identity": self.leader.config.identity,
                "holder": self.leader.holder or None,
                "held": self.leader.held(),
            }
            if self.leader.count > 1:
                out["leader"]["shards"] = [
                    {"shard": i, "holder": self.leader.holder_of(i) or None, "held": i in self.leader.shards()}
                    for i in range(self.leader.count)
                ]
        if last is not None:
            out["lastCycle"] = {
                "trigger": last.trigger,
                "started": last.started.isoformat(),
                "finished": last.finished.isoformat() if last.finished else None,
                "outcome": last.outcome,
                "error": last.error or None,
                "cpuSeconds": last.cpu_seconds,
                "result": run_json(last.summary) if last.summary is not None else None,
            }
        if self.status_model is not None:
            try:
                out.update(self.status_model(self.clock.now()))
            except Exception as exc:  # the loop's own fields still answer
                log.exception("building the status model failed")
                out["statusError"] = str(exc) if isinstance(exc, AutomatorError) else f"{type(exc).__name__}: {exc}"
        return out

    @staticmethod
    def _hook(path: str) -> tuple[str, str] | None:
        parts = path.strip("/").split("/", 2)
        if len(parts) < 2 or parts[0] != "hooks":
            return None
        return parts[1], unquote(parts[2]) if len(parts) > 2 else ""

    def _answer(self, source: str, response: Response) -> Response:
        known = response.status != 404 and source in SOURCES  # never a label from an unknown path
        outcome = {202: "queued", 200: "ignored"}.get(response.status, str(response.status))
        self.metrics.webhooks.labels(source if known else "unknown", outcome).inc()
        if response.status >= 400:
            log.debug("webhook refused (%d): %s", response.status, response.body)
        return response

    def precheck(self, path: str, headers: Mapping[str, str]) -> Response | None:
        """Refuse before the body is read: a wrong path, webhooks off, or a proof missing or wrong."""
        if path == "/login" and self.dashboard is not None:
            return None
        hook = self._hook(path)
        if hook is None:
            return Response(404, "not found")
        secret = self._secret()
        if not secret:
            return self._answer("", Response(404, "webhooks are disabled: start with --webhook-secret-file"))
        rejected = preauthenticate(hook[0], hook[1], headers, secret)
        return None if rejected is None else self._answer(hook[0], Response(rejected.status, str(rejected)))

    def _to_holder(self, source: str, token: str, headers: Mapping[str, str], body: bytes) -> Response:
        """A delivery to a standby: passed on to the Lease holder where it advertises its webhooks
        (the ``automator.dev/webhook-url`` annotation), else answered 503 so the registry retries.
        A delivery already passed on once is never passed on again (no loops between standbys)."""
        assert self.leader is not None
        holder = self.leader.holder or "no replica yet"
        url = self.leader.annotations.get(WEBHOOK_URL, "")
        if url and FORWARDED not in headers and self.leader.holder:
            path = f"/hooks/{quote(source, safe='')}" + (f"/{quote(token, safe='')}" if token else "")
            log.info("webhook %s: passed on to the lease holder %s", source, holder)
            return relay("POST", url.rstrip("/") + path, headers, body, by=self.leader.config.identity)
        message = f"this replica does not hold the lease ({holder} does): retry"
        return Response(503, message, headers=(("Retry-After", str(int(self.leader.config.retry) + 1)),))

    def _hooks_elsewhere(self, path: str, headers: Mapping[str, str]) -> Response | None:
        if path == "/login" and self.dashboard is not None:
            return None
        return Response(404, "webhooks are served on --webhook-listen")

    def _hooks_get(self, path: str) -> Response | None:
        if path in ("/healthz", "/readyz"):  # for a load balancer's checks
            return self.get(path)
        return None

    def post(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        if path == "/login" and self.dashboard is not None:
            if self._standby_pages(path):
                return self._pages_from_holder("POST", path, {}, headers, body)
            return self.dashboard.login(headers, body)
        hook = self._hook(path)
        if hook is None:
            return Response(404, "not found")
        return self._answer(hook[0], self._webhook(hook[0], hook[1], headers, body))

    def _webhook(self, source: str, token: str, headers: Mapping[str, str], body: bytes) -> Response:
        secret = self._secret()
        if not secret:
            return Response(404, "webhooks are disabled: start with --webhook-secret-file")
        if self.leader is not None and self.leader.count == 1 and not self.leader.held():
            return self._to_holder(source, token, headers, body)
        try:
            delivery = receive(source, token, headers, body, secret)
        except WebhookRejected as exc:
            return Response(exc.status, str(exc))
        if delivery.ignored:
            return Response(200, f"ignored: {delivery.ignored}")
        if isinstance(self.leader, ShardLeases):
            return self._sharded_webhook(source, token, headers, body, delivery)
        return self._take(source, delivery)

    def _sharded_webhook(
        self, source: str, token: str, headers: Mapping[str, str], body: bytes, delivery: Delivery
    ) -> Response:
        """``--shards``: a delivery on any replica reaches the holder of each shard it concerns.

        This replica queues what is its own and passes the delivery on to the holders of the
        other shards it names (where their Leases say they take webhooks; they keep only their
        own part). Which shard a repository is, the last cycle's partition says; before one, or
        for a repository no policy tracks (perhaps a policy for it was just merged), every shard
        is concerned. A shard with no holder yet, or a holder that does not answer, makes the
        answer 503 so the registry retries (what was queued meanwhile is listed once more, no
        harm). A delivery passed on once is never passed on again."""
        assert isinstance(self.leader, ShardLeases)
        leader = self.leader
        mine = leader.shards()
        wanted = self._shards_for(delivery, leader.count)
        problems: list[str] = []
        answers: list[str] = []
        queued = False
        if FORWARDED not in headers:
            targets: dict[str, str] = {}
            for i in sorted(wanted - mine):
                holder, url = leader.holder_of(i), leader.annotations_of(i).get(WEBHOOK_URL, "")
                if not holder or not url or holder == leader.config.identity:
                    problems.append(f"shard {i} has no holder that takes webhooks yet")
                    continue
                targets.setdefault(url, holder)
            path = f"/hooks/{quote(source, safe='')}" + (f"/{quote(token, safe='')}" if token else "")
            for url, holder in targets.items():
                log.info("webhook %s: passed on to %s, which holds other shards", source, holder)
                answer = relay("POST", url.rstrip("/") + path, headers, body, by=leader.config.identity)
                if answer.status >= 300:
                    problems.append(f"{holder} answered {answer.status}: {_text(answer.body)}")
                else:
                    queued |= answer.status == 202
                    answers.append(f"{holder}: {_text(answer.body)}")
        if mine & wanted:
            local = self._take(source, delivery, shards=mine)
            queued |= local.status == 202
            here = _text(local.body)
            answers.insert(0, f"{leader.config.identity}: {here}" if answers or problems else here)
        if problems:
            retry = str(int(leader.config.retry) + 1)
            text = "; ".join([*problems, *answers]) + ": retry"
            return Response(503, text, headers=(("Retry-After", retry),))
        if not answers:
            return Response(200, "ignored: no shard of this replica's is concerned")
        return Response(202 if queued else 200, "; ".join(answers))

    def _shards_for(self, delivery: Delivery, count: int) -> frozenset[int]:
        """The shards a delivery concerns (see :meth:`_sharded_webhook`)."""
        policies, split = self.policies, self.partition
        if delivery.everything or policies is None or split is None:
            return frozenset(range(count))
        repos = affected(delivery.events, policies)
        if not repos:
            return frozenset(range(count))
        return frozenset(split.repositories.get(repo, 0) for repo in repos)

    def _take(self, source: str, delivery: Delivery, *, shards: frozenset[int] | None = None) -> Response:
        """Queue the cycle a delivery asks for (with ``shards``: only their repositories')."""
        policies = self.policies
        if shards is not None and policies is not None and self.partition is not None:
            split = self.partition
            policies = tuple(p for p in policies if split.repositories.get(p.image.repository, 0) in shards)
        with self.lock:
            if delivery.everything or policies is None:  # before a first good cycle: list everything
                self._queue(set(), everything=True)
                log.info("webhook %s: cycle queued for every policy", source)
                return Response(202, "cycle queued for every policy")
            repos = affected(delivery.events, policies)
            if not repos:
                names = ", ".join(sorted({str(e) for e in delivery.events}))
                mono = self.clock.monotonic()
                if mono - self.last_reload < self.reload_every:
                    return Response(200, f"ignored: no policy tracks {names}")
                # perhaps a policy for it was just merged: load the policies again (listing only
                # what no loaded policy tracked), at most every ``reload_every`` seconds
                self.last_reload = mono
                self._queue(set())
                log.info("webhook %s: no loaded policy tracks %s; reloading the policies", source, names)
                return Response(202, f"no loaded policy tracks {names}; cycle queued to reload the policies")
            tags = {(repo, e.tag) for e in delivery.events if e.tag for repo in affected([e], policies)}
            self.pending.announced |= {(repo, tag, source) for repo, tag in tags}
            self._queue(repos, tags=tags)
        log.info("webhook %s: cycle queued for %s", source, ", ".join(sorted(repos)))
        return Response(202, "cycle queued for " + ", ".join(sorted(repos)))


def _text(body: str | bytes) -> str:
    return (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()


FORWARDED = "x-automator-forwarded"  # a request a standby passed on: never passed on again
WEBHOOK_URL = "automator.dev/webhook-url"  # the Lease annotation where its holder takes webhooks
DASHBOARD_URL = "automator.dev/dashboard-url"  # ... and where it serves the dashboard
_RELAYED = ("content-type", "location", "set-cookie", "cache-control", "content-security-policy",
            "www-authenticate", "retry-after", "x-content-type-options", "referrer-policy")  # fmt: skip
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the browser follows the holder's redirects itself


def relay(method: str, url: str, headers: Mapping[str, str], body: bytes, *, by: str, timeout: float = 5.0) -> Response:
    """A request a standby passes on to the Lease holder (a webhook delivery, a dashboard page),
    headers and body as received: the holder's answer as it gave it (status, body and the
    headers a caller needs: cookies, redirects, the content security policy, Retry-After),
    redirects not followed; 503 when it cannot be reached (the caller retries)."""
    sent = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
    sent[FORWARDED] = by
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=sent)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as answer:
            status, data, got = answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as err:
        status, data, got = err.code, err.read(), err.headers
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(503, f"the lease holder did not answer ({reason}): retry", headers=(("Retry-After", "5"),))
    kept = tuple((k, v) for k, v in got.items() if k.lower() in _RELAYED and k.lower() != "content-type")
    return Response(status, data, got.get("content-type", "text/plain; charset=utf-8"), kept)


def serve(service: AutomatorService) -> int:
    """Run until SIGTERM/SIGINT: the running cycle finishes, then exit 0; a second signal exits now."""

    def on_signal(signum: int, frame: object) -> None:
        if service.stop.is_set():
            raise SystemExit(128 + signum)
        log.info("signal %d: finishing the running cycle, then exiting", signum)
        service.shutdown()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    host, port = service.address
    log.info("automator service on %s:%d, %s", host, port, service.schedule.text)
    if service.hooks is not None:
        log.info("webhooks on %s:%d", *service.hooks_address)
    service.run()
    return 0
