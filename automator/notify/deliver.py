"""Delivery: filter, dedupe, rate-limit, then send on a worker thread, never in the cycle's way.

:meth:`Dispatcher.publish` decides in the caller's thread (the filters, the dedupe window, the
rate limit: microseconds, from an injected clock) and queues what passes; one worker thread
sends, so a receiver that hangs delays other notifications, never a cycle or a sync. Each
request has a deadline (the notifier's ``timeout``); a network error, a timeout, 429 or 5xx is
tried again (``ATTEMPTS`` in all, with backoff, honouring a short ``Retry-After``); anything
else, or the last failure, is a warning naming the notifier and the status, counted in
:attr:`Dispatcher.stats`. URLs are never logged: a Slack or Teams URL is its own secret.

The webhook sink signs each body: ``X-Automator-Signature: sha256=<hex HMAC-SHA256 of the body>``
with the key from ``secretFile``; the body carries ``timestamp`` and ``id``, and the
``X-Automator-Timestamp`` header repeats the timestamp, so a receiver can refuse an old or
replayed delivery (the timestamp is inside what is signed).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from automator.errors import AutomatorError
from automator.httpd import hmac_hex
from automator.notify.config import Notifications, Notifier
from automator.notify.events import Event
from automator.notify.payloads import comment_body, slack_body, teams_body, webhook_body

log = logging.getLogger("automator.notify")

ATTEMPTS = 3  # one try and two retries
BACKOFF = 1.0  # seconds before the first retry, doubled after
MAX_RETRY_AFTER = 30.0  # a longer Retry-After is not waited for: the delivery fails instead
QUEUE = 1000  # deliveries waiting; beyond, new ones are dropped (and counted)
USER_AGENT = "automator-notify/1"


class Commenter(Protocol):
    """The forge, as the pullRequestComment sink sees it."""

    def comment_on_pull_request(self, number: int, body: str) -> None: ...


class _Failed(Exception):
    def __init__(self, why: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retryable, self.retry_after = retryable, retry_after


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.strip().isdigit() else None


class HttpSender:
    """POSTs one body with a deadline; :class:`_Failed` says whether trying again can help."""

    def __init__(self) -> None:
        self._client: Any = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
        import httpx  # noqa: PLC0415 - on the first delivery: a sync --once without events never pays for it

        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT})
        try:
            response = self._client.post(url, content=body, headers=dict(headers), timeout=timeout)
        except httpx.TimeoutException:
            raise _Failed(f"no answer within {timeout:g}s", retryable=True) from None
        except httpx.HTTPError as exc:  # the message may carry the URL: the class name says enough
            raise _Failed(f"network error ({type(exc).__name__})", retryable=True) from None
        if response.status_code >= 300:
            code = response.status_code
            retryable = code == 429 or code >= 500
            raise _Failed(f"HTTP {code}", retryable=retryable, retry_after=_retry_after(response))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@dataclass(frozen=True)
class _Delivery:
    notifier: Notifier
    event: Event
    commenter: Commenter | None


class RateLimit:
    """At most ``count`` sends per ``per`` seconds, a sliding window over monotonic times."""

    def __init__(self, count: int, per: float) -> None:
        self.count, self.per = count, per
        self._sent: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._sent and now - self._sent[0] >= self.per:
            self._sent.popleft()
        if len(self._sent) >= self.count:
            return False
        self._sent.append(now)
        return True


class Dedupe:
    """The same event key is not sent twice by one notifier within its window. Kept in memory,
    and in ``path`` (a small JSON file under ``--state-dir``) when given, so a restart does not
    repeat what the last process sent; ``wall`` is the clock of what is kept there."""

    def __init__(self, path: Path | None = None, wall: Callable[[], float] = time.time) -> None:
        self.path, self.wall = path, wall
        self._sent: dict[str, float] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, float]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("notifications: cannot read %s (%s); starting without it", self.path, exc)
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def fresh(self, notifier: Notifier, key: str) -> bool:
        """False when ``notifier`` sent ``key`` within its window."""
        last = self._sent.get(f"{notifier.name}\t{key}")
        return notifier.dedupe <= 0 or last is None or self.wall() - last >= notifier.dedupe

    def mark(self, notifier: Notifier, key: str) -> None:
        if notifier.dedupe > 0:
            self._sent[f"{notifier.name}\t{key}"] = self.wall()
            self._dirty = True

    def save(self, windows: Mapping[str, float]) -> None:
        """Forget what is past every window, then write the rest (atomically) when kept on disk."""
        now, before = self.wall(), len(self._sent)
        self._sent = {k: t for k, t in self._sent.items() if now - t < windows.get(k.partition("\t")[0], 0.0)}
        if self.path is None or not (self._dirty or len(self._sent) != before):
            return
        self._dirty = False
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._sent, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("notifications: cannot write %s: %s", self.path, exc)


class Dispatcher:
    """Routes events to the notifiers of one :class:`Notifications` file and delivers them."""

    def __init__(
        self,
        settings: Notifications,
        *,
        sender: HttpSender | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        dedupe_file: Path | None = None,
        backoff: float = BACKOFF,
    ) -> None:
        self.settings = settings
        self.sender = sender or HttpSender()
        self.clock, self.sleep, self.backoff = clock, sleep, backoff
        self.dedupe = Dedupe(dedupe_file)
        self.limits = {n.name: RateLimit(n.rate_count, n.rate_per) for n in settings.notifiers}
        self.stats: Counter[tuple[str, str]] = Counter()  # (notifier, sent|failed|dropped|deduped|limited)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue(QUEUE)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    # -- deciding (the caller's thread) ------------------------------------------------------

    def route(self, events: Iterable[Event]) -> list[tuple[Notifier, Event]]:
        """What to send: each event past each notifier's filters, dedupe window and rate limit."""
        out = []
        unique = {e.key: e for e in events}.values()  # two derivations of one event: sent once
        for event in unique:
            for n in self.settings.notifiers:
                if not n.wants(event):
                    continue
                if not self.dedupe.fresh(n, event.key):
                    self.stats[(n.name, "deduped")] += 1
                    continue
                if not self.limits[n.name].allow(self.clock()):  # not marked sent: a later cycle may
                    self.stats[(n.name, "limited")] += 1
                    log.warning(
                        "notifier %s: over its rate limit (%d per %gs); %s not sent",
                        n.name,
                        n.rate_count,
                        n.rate_per,
                        event.kind,
                    )
                    continue
                self.dedupe.mark(n, event.key)
                out.append((n, event))
        self.dedupe.save({n.name: n.dedupe for n in self.settings.notifiers})
        return out

    def publish(self, events: Iterable[Event], commenter: Commenter | None = None) -> None:
        """Queue the deliveries ``events`` call for; returns at once. Never raises."""
        try:
            for notifier, event in self.route(events):
                self._enqueue(_Delivery(notifier, event, commenter))
        except Exception:  # notifications must never fail the cycle that produced them
            log.exception("notifications: could not route the events")

    def _enqueue(self, delivery: _Delivery) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="notify", daemon=True)
                self._worker.start()
            try:
                self._queue.put_nowait(delivery)
            except queue.Full:
                self.stats[(delivery.notifier.name, "dropped")] += 1
                log.warning(
                    "notifier %s: %d deliveries waiting; %s dropped", delivery.notifier.name, QUEUE, delivery.event.kind
                )
                return
            self._pending += 1

    def flush(self, timeout: float) -> bool:
        """Wait until every queued delivery is done (``--once`` before it exits); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> None:
        if not self.flush(timeout):
            log.warning("notifications: %d deliveries still waiting at exit; not sent", self._pending)
        worker = self._worker
        if worker is not None:
            self._queue.put(None)
            worker.join(timeout=1.0)
        self.sender.close()

    # -- sending (the worker thread) ---------------------------------------------------------

    def _work(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                self.deliver(delivery.notifier, delivery.event, delivery.commenter)
            except Exception:  # a bug in a sink must not stop the others
                log.exception("notifier %s: could not deliver %s", delivery.notifier.name, delivery.event.kind)
                self.stats[(delivery.notifier.name, "failed")] += 1
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def deliver(self, notifier: Notifier, event: Event, commenter: Commenter | None = None) -> bool:
        """Send ``event`` to ``notifier`` now, with the retries; True when it was delivered."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._send(notifier, event, commenter)
            except _Failed as exc:
                asked = exc.retry_after or 0.0
                if not exc.retryable or attempt == ATTEMPTS or asked > MAX_RETRY_AFTER:
                    self.stats[(notifier.name, "failed")] += 1
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    log.warning("notifier %s: %s not delivered%s: %s", notifier.name, event.kind, tries, exc)
                    return False
                self.sleep(max(self.backoff * 2 ** (attempt - 1), asked))
            else:
                self.stats[(notifier.name, "sent")] += 1
                return True
        return False

    def _send(self, notifier: Notifier, event: Event, commenter: Commenter | None) -> None:
        if notifier.type == "pullRequestComment":
            self._comment(event, commenter)
            return
        assert notifier.url is not None
        url = notifier.url()
        headers = {"Content-Type": "application/json"}
        if notifier.type == "webhook":
            sent = int(time.time())
            body = webhook_body(event, str(uuid.uuid4()), sent)
            headers["X-Automator-Event"] = event.kind
            headers["X-Automator-Timestamp"] = str(sent)
            if notifier.secret is not None:
                headers["X-Automator-Signature"] = "sha256=" + hmac_hex(notifier.secret(), body)
        else:
            doc: dict[str, Any] = slack_body(event) if notifier.type == "slack" else teams_body(event)
            body = json.dumps(doc, separators=(",", ":")).encode()
        self.sender.post(url, body, headers, notifier.timeout)

    @staticmethod
    def _comment(event: Event, commenter: Commenter | None) -> None:
        if event.pull_request is None:
            return
        if commenter is None:
            raise _Failed("no forge to comment through (forge: none?)", retryable=False)
        try:
            commenter.comment_on_pull_request(event.pull_request.number, comment_body(event))
        except AutomatorError as exc:
            raise _Failed(str(exc), retryable=exc.retryable, retry_after=exc.retry_after) from None
