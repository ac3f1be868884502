"""The automator's service loop: schedule, webhook-triggered cycles, retries, health — with a fake cycle.

The loop and its HTTP listener are real (loopback, port chosen by the OS); only the cycle is a
stand-in that lists tags through the service's registry memo, so what each cycle re-lists is
observable. Time is the service's injected clock: a :class:`ManualClock` that moves only when
the test advances it, so "10 s later" takes no time and no test sleeps or patches a constant.
(When full cycles run, without a service, is tests/unit/test_daemon_schedule.py.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from automator import httpd
from automator.daemon.clock import SystemClock
from automator.daemon.service import RELOAD_EVERY, TAG_RETRIES, AutomatorService, Schedule
from automator.errors import (
    ConfigError,
    CredentialError,
    CredentialUnavailable,
    RegistryAuthError,
    RegistryError,
    RegistryUnavailable,
)
from automator.plan import Plan
from automator.policy import Policy, SemverChoice, SourceLocation
from automator.refs import ImageRef, parse_reference
from automator.registry.base import ManifestInfo, TagListing
from automator.registry.memo import RegistryMemo
from automator.run import RunSummary
from automator.scan import ScanResult
from automator.update import UpdateResult

SECRET = "hook-secret"
DEADLINE = 10.0  # real seconds a real thread (the loop, a listener) gets to do its part
DEBOUNCE = 5.0  # the service's default --webhook-debounce
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # a Monday
A = parse_reference("registry.example.com/team/a")
B = parse_reference("registry.example.com/team/b")


def policy(name: str, image: ImageRef) -> Policy:
    return Policy(name, image, SemverChoice(">=1.0.0"), SourceLocation(f"{name}.yaml", 1))


# --------------------------------------------------------------------------- the test clock


@dataclass(eq=False)
class _Wait:
    event: threading.Event
    until: float  # on the clock's monotonic time


class ManualClock:
    """A :class:`~automator.daemon.clock.Clock` that stands still until the test moves it.

    Wall time starts at ``START`` and moves with the monotonic time. The service's loop is the
    one thread that waits on it: :meth:`settle` returns once that thread waits again for a
    deadline still ahead with nothing waking it — everything the time so far brought has run.
    :meth:`advance` settles, moves the time and settles again. Keep to whole and half seconds:
    then the loop's arithmetic is exact, and advancing onto a deadline runs what is due there.
    """

    POLL = 0.002  # real seconds between looks at a waited event (Event.set() notifies no one else)

    def __init__(self, start: datetime = START) -> None:
        self.start = start
        self.elapsed = 0.0
        self._cond = threading.Condition()
        self._waits: list[_Wait] = []

    def now(self) -> datetime:
        with self._cond:
            return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        with self._cond:
            return 5000.0 + self.elapsed  # only differences mean anything

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._cond:
            wait = _Wait(event, self.elapsed + timeout)
            self._waits.append(wait)
            self._cond.notify_all()
            try:
                while not event.is_set():
                    if self.elapsed >= wait.until:
                        return False
                    self._cond.wait(self.POLL)  # tick() notifies at once
                return True
            finally:
                self._waits.remove(wait)

    def settle(self) -> None:
        """Wait (real time, with a deadline) until the loop is idle at the current time."""
        deadline = time.monotonic() + DEADLINE
        with self._cond:
            while not any(not w.event.is_set() and w.until > self.elapsed for w in self._waits):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"the service's loop did not go back to waiting within {DEADLINE}s")
                self._cond.wait(min(self.POLL, left))

    def tick(self, seconds: float) -> None:
        """Move the time on without waiting for the loop (while a cycle hangs, say)."""
        with self._cond:
            self.elapsed += seconds
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        self.settle()
        self.tick(seconds)
        self.settle()


# --------------------------------------------------------------------------- the fake cycle


class FakeRegistry:
    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.tags = tags
        self.listed: list[str] = []

    async def list_tags(self, image: ImageRef) -> TagListing:
        self.listed.append(image.repository)
        return TagListing(image, tuple(self.tags[image.repository]))

    async def manifest(self, image: ImageRef, reference: str) -> ManifestInfo:
        raise AssertionError("not used")

    async def created(self, image: ImageRef, reference: str, platform: str) -> datetime | None:
        raise AssertionError("not used")


class FakeCycle:
    """Lists every policy's repository through the memo, like a real cycle's scan."""

    def __init__(self, policies: list[Policy]) -> None:
        self.policies = policies
        self.registry = FakeRegistry({p.image.repository: ["1.0.0"] for p in policies})
        self.runs: list[list[str]] = []  # per cycle: the repositories actually listed
        self.fail: list[Exception] = []  # raised by the next cycles, in order
        self.gate: threading.Event | None = None
        self.entered = threading.Event()  # set when a cycle starts...
        self.left = threading.Event()  # ...and when one ends

    def __call__(self, memo: RegistryMemo) -> RunSummary:
        self.entered.set()
        try:
            if self.gate is not None:
                self.gate.wait(DEADLINE)
            before = len(self.registry.listed)
            if self.fail:
                self.runs.append([])
                raise self.fail.pop(0)
            registry = memo.wrap(self.registry)

            async def scan() -> None:
                for p in self.policies:
                    await registry.list_tags(p.image)

            asyncio.run(scan())
            self.runs.append(self.registry.listed[before:])
            return RunSummary("abc123", Plan(tuple(ScanResult(p) for p in self.policies), UpdateResult()), ())
        finally:
            self.left.set()


def next_cycle_after(clock: ManualClock, cycle: FakeCycle, seconds: float) -> None:
    """The next cycle runs ``seconds`` from now: not half a second sooner, and then exactly one."""
    runs = len(cycle.runs)
    clock.advance(seconds - 0.5)
    assert len(cycle.runs) == runs, f"a cycle ran before {seconds:g}s had passed"
    clock.advance(0.5)
    assert len(cycle.runs) == runs + 1, f"{len(cycle.runs) - runs} cycles ran after {seconds:g}s, not 1"


def request(
    svc: AutomatorService, method: str, path: str, body: bytes = b"", *, hooks: bool = False, **headers: str
) -> tuple[int, str]:
    host, port = svc.hooks_address if hooks else svc.address
    req = urllib.request.Request(
        f"http://{host}:{port}{path}", data=body if method == "POST" else None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def generic(svc: AutomatorService, *images: str) -> tuple[int, str]:
    body = json.dumps({"images": list(images)}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return request(svc, "POST", "/hooks/generic", body, **{"X-Signature-256": sig})


def gauge(metrics: str, name: str) -> float:
    values = [float(line.split()[1]) for line in metrics.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} not in the metrics"
    return values[0]


def status(svc: AutomatorService) -> dict[str, Any]:
    code, text = request(svc, "GET", "/status")
    assert code == 200, text
    doc: dict[str, Any] = json.loads(text)
    return doc


@pytest.fixture
def run_service() -> Iterator[Callable[..., AutomatorService]]:
    started: list[tuple[AutomatorService, threading.Thread]] = []

    def start(cycle: FakeCycle, clock: ManualClock | None = None, **kwargs: Any) -> AutomatorService:
        clock = clock or ManualClock()
        kwargs.setdefault("secret", SECRET)
        kwargs.setdefault("debounce", DEBOUNCE)
        schedule = kwargs.pop("schedule", None) or Schedule.parse(3600, None, "UTC", now=clock.now())
        svc = AutomatorService(cycle, schedule, "127.0.0.1:0", clock=clock, **kwargs)
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        started.append((svc, thread))
        return svc

    yield start
    for svc, thread in started:
        svc.shutdown()
        if svc.cycle.gate is not None:  # type: ignore[attr-defined]
            svc.cycle.gate.set()  # type: ignore[attr-defined]
        thread.join(DEADLINE)
        assert not thread.is_alive()


# --------------------------------------------------------------------------- the schedule


def test_an_interval_runs_at_start_then_every_interval(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, schedule=Schedule.parse(600, None, "UTC", now=clock.now()))
    clock.settle()
    assert len(cycle.runs) == 1  # at start-up, before any time passed
    doc = status(svc)
    assert doc["lastCycle"]["trigger"] == "schedule"
    assert doc["lastCycle"]["started"] == doc["lastCycle"]["finished"] == START.isoformat()
    assert doc["nextScheduledCycle"] == (START + timedelta(seconds=600)).isoformat()
    next_cycle_after(clock, cycle, 600)
    next_cycle_after(clock, cycle, 600)
    metrics = request(svc, "GET", "/metrics")[1]
    assert 'automator_cycles_total{outcome="ok",trigger="schedule"} 3.0' in metrics
    # times are read off the service's clock, not the machine's
    assert gauge(metrics, "automator_next_cycle_timestamp_seconds") == (START + timedelta(seconds=1800)).timestamp()
    assert gauge(metrics, "automator_last_success_timestamp_seconds") == (START + timedelta(seconds=1200)).timestamp()


def test_a_crontab_waits_for_its_first_slot_in_its_time_zone(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()  # Monday 06:00 UTC, 07:00 in Berlin
    cycle = FakeCycle([policy("a", A)])
    schedule = Schedule.parse(300, "0 9 * * 1-5", "Europe/Berlin", now=clock.now())
    svc = run_service(cycle, clock, schedule=schedule)
    clock.settle()
    assert cycle.runs == []  # nothing at start-up
    next_cycle_after(clock, cycle, 2 * 3600)  # Monday 09:00 CET
    for _ in ("Tuesday", "Wednesday", "Thursday", "Friday"):
        next_cycle_after(clock, cycle, 24 * 3600)  # 09:00
    next_cycle_after(clock, cycle, 3 * 24 * 3600)  # not again before Monday
    assert status(svc)["nextScheduledCycle"] == datetime(2026, 1, 13, 8, 0, tzinfo=UTC).isoformat()


# --------------------------------------------------------------------------- webhooks -> cycles


def test_a_webhook_cycle_lists_only_the_pushed_repository(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle, clock)
    clock.settle()
    assert len(cycle.runs) == 1
    assert sorted(cycle.runs[0]) == [A.repository, B.repository]

    cycle.registry.tags[A.repository].append("1.1.0")
    code, text = generic(svc, f"{A}:1.1.0")
    assert (code, text) == (202, f"cycle queued for {A.repository}")
    assert status(svc)["queuedRepositories"] == [A.repository]
    next_cycle_after(clock, cycle, DEBOUNCE)
    assert cycle.runs[1] == [A.repository]  # B came from the memo
    doc = status(svc)
    assert doc["lastCycle"]["trigger"] == "webhook"
    assert doc["lastCycle"]["finished"] == (START + timedelta(seconds=DEBOUNCE)).isoformat()
    assert doc["lastCycle"]["result"]["revision"] == "abc123"
    assert doc["queuedRepositories"] == doc["awaitedTags"] == []
    metrics = request(svc, "GET", "/metrics")[1]
    assert 'automator_registry_listings_total{source="cache"} 1.0' in metrics
    assert 'automator_webhooks_total{outcome="queued",source="generic"} 1.0' in metrics


def test_a_burst_of_pushes_makes_one_cycle(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle, clock)
    clock.settle()
    cycle.registry.tags[A.repository] += ["1.1.0", "1.1.1", "1.2.0"]
    cycle.registry.tags[B.repository].append("2.0.0")
    for tag in ("1.1.0", "1.1.1", "1.2.0"):
        assert generic(svc, f"{A}:{tag}")[0] == 202
    clock.advance(2)
    assert len(cycle.runs) == 1
    assert generic(svc, f"{B}:2.0.0")[0] == 202  # inside the window the first push opened
    next_cycle_after(clock, cycle, DEBOUNCE - 2)
    assert sorted(cycle.runs[1]) == [A.repository, B.repository]
    clock.advance(600)
    assert len(cycle.runs) == 2  # no second cycle follows


def test_untracked_repositories_and_bad_deliveries_run_nothing(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock)
    clock.settle()
    # the first push no loaded policy tracks reloads the policies (one may have just been
    # merged), listing nothing again; later ones within RELOAD_EVERY are ignored
    assert generic(svc, "registry.example.com/team/zzz:1.0") == (
        202,
        "no loaded policy tracks registry.example.com/team/zzz:1.0; cycle queued to reload the policies",
    )
    next_cycle_after(clock, cycle, DEBOUNCE)
    assert cycle.runs[1] == []
    assert generic(svc, "registry.example.com/team/zzz:1.1") == (
        200,
        "ignored: no policy tracks registry.example.com/team/zzz:1.1",
    )
    body = json.dumps({"image": f"{A}:2.0.0"}).encode()
    assert request(svc, "POST", "/hooks/generic", body, **{"X-Signature-256": "sha256=00"})[0] == 401
    assert request(svc, "POST", "/hooks/generic", b"[1]", **{"X-Signature-256": "x"})[0] == 401
    assert request(svc, "POST", "/elsewhere", b"{}")[0] == 404
    assert request(svc, "GET", "/nothing")[0] == 404
    # a secret put where the source belongs is neither echoed nor used as a metric label
    code, text = request(svc, "POST", f"/hooks/{SECRET}", b"{}")
    assert code == 404 and SECRET not in text
    assert SECRET not in request(svc, "GET", "/metrics")[1]
    clock.advance(RELOAD_EVERY - DEBOUNCE - 0.5)  # just short of RELOAD_EVERY after the reload
    assert len(cycle.runs) == 2  # none of that queued a cycle
    assert generic(svc, "registry.example.com/team/zzz:1.2")[0] == 200
    clock.advance(0.5)
    assert generic(svc, "registry.example.com/team/zzz:1.3")[0] == 202  # reloaded again
    next_cycle_after(clock, cycle, DEBOUNCE)


def test_the_listener_refuses_strangers_before_reading_and_caps_what_it_reads(
    run_service: Callable[..., AutomatorService], tmp_path: Path
) -> None:
    cycle = FakeCycle([policy("a", A)])
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    svc = run_service(cycle, secret=httpd.SecretFile(str(secret_file)))
    host, port = svc.address
    # a wrong path token is refused from the request line and headers: the body is never read
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"POST /hooks/dockerhub/wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 401")
    # an authenticated body over the cap is refused too, from its Content-Length, unread
    with socket.create_connection((host, port), timeout=5) as conn:
        head = f"POST /hooks/dockerhub/{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Length: {httpd.MAX_BODY + 1}\r\n\r\n"
        conn.sendall(head.encode())
        assert conn.recv(200).startswith(b"HTTP/1.1 413")
    # a rotated secret file is honoured without a restart, and may be percent-encoded in the path
    hub = json.dumps({"push_data": {"tag": "1"}, "repository": {"repo_name": "team/a"}}).encode()
    secret_file.write_text("a+b/c\n")
    assert request(svc, "POST", "/hooks/dockerhub/a%2Bb%2Fc", hub)[0] in (200, 202)
    assert request(svc, "POST", f"/hooks/dockerhub/{SECRET}", hub)[0] == 401
    secret_file.write_text("")  # a rotation caught half-way keeps the last good secret
    assert request(svc, "POST", "/hooks/dockerhub/a%2Bb%2Fc", hub)[0] in (200, 202)
    # a client that asks for "100 Continue" is refused before it is invited to send the body
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(
            b"POST /hooks/quay/wrong HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9000\r\n\r\n"
        )
        answer = conn.recv(300)
        assert answer.startswith(b"HTTP/1.1 401") and b"Connection: close" in answer
    # chunked bodies have no length to check in advance
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 411")
    # idle connections hold no webhook slot: probes still answer (the 503 budget: test_httpd_slots)
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(httpd.MAX_CONNECTIONS + 8)]
    try:
        assert [request(svc, "GET", "/healthz") for _ in range(5)] == [(200, "ok")] * 5
    finally:
        for conn in idle:
            conn.close()


def test_a_client_trickling_bytes_loses_its_connection_at_the_deadline(
    run_service: Callable[..., AutomatorService],
) -> None:
    clock = ManualClock()  # the listener's deadlines are on the service's clock
    svc = run_service(FakeCycle([policy("a", A)]), clock)
    with socket.create_connection(svc.address, timeout=DEADLINE) as conn:
        head = b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nX-Signature-256: sha256=00\r\nContent-Length: 99\r\n\r\n"
        conn.sendall(head + b"{")  # ...and never the rest of the body
        # a later connection is accepted after this one: once it is answered, this one's deadline runs
        assert request(svc, "GET", "/healthz") == (200, "ok")
        clock.tick(httpd.CONNECTION_DEADLINE + 1)
        assert conn.recv(1) == b""  # cut by the listener (this read would give up only after DEADLINE)
    assert request(svc, "GET", "/healthz") == (200, "ok")


def test_a_secret_file_mid_rotation_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secret"
    path.write_text("first\n")
    secret = httpd.SecretFile(str(path))
    path.write_text("")  # a rotation caught half-way
    with caplog.at_level("WARNING", logger="automator.httpd"):
        assert {secret() for _ in range(50)} == {b"first"}
    assert len(caplog.records) == 1
    path.write_text("second\n")
    assert secret() == b"second"


def test_a_failure_to_report_a_cycle_does_not_stop_the_service(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])

    def broken(summary: RunSummary) -> None:
        raise BrokenPipeError("stdout is gone")

    svc = run_service(cycle, clock, report=broken)
    clock.settle()
    assert len(cycle.runs) == 1
    assert generic(svc, f"{A}:1.0.0")[0] == 202
    next_cycle_after(clock, cycle, DEBOUNCE)


def test_webhooks_can_have_a_listener_of_their_own(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, webhook_listen="127.0.0.1:0")
    assert svc.hooks_address != svc.address
    clock.settle()
    hub = json.dumps({"push_data": {"tag": "1.0.0"}, "repository": {"repo_name": "team/a"}}).encode()
    # the hooks listener takes deliveries and answers a load balancer's health check, nothing else
    assert request(svc, "POST", f"/hooks/dockerhub/{SECRET}", hub, hooks=True)[0] == 202
    assert request(svc, "GET", "/healthz", hooks=True) == (200, "ok")
    assert request(svc, "GET", "/status", hooks=True)[0] == 404
    assert request(svc, "GET", "/metrics", hooks=True)[0] == 404
    # the main listener keeps status and metrics, and sends deliveries away
    assert request(svc, "POST", f"/hooks/dockerhub/{SECRET}", hub) == (404, "webhooks are served on --webhook-listen")
    assert request(svc, "GET", "/status")[0] == 200
    next_cycle_after(clock, cycle, DEBOUNCE)


def test_the_dashboard_is_on_listen_and_never_on_the_webhook_listener(
    run_service: Callable[..., AutomatorService],
) -> None:
    from automator.dashboard import Dashboard

    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, webhook_listen="127.0.0.1:0", dashboard=Dashboard(None))
    clock.settle()
    code, page = request(svc, "GET", "/")
    assert code == 200 and "--state-dir" in page  # no state kept: the page says what it needs
    assert request(svc, "GET", "/static/dashboard.js")[0] == 200
    for path in ("/", "/static/dashboard.js", "/login", "/policies/a"):
        assert request(svc, "GET", path, hooks=True)[0] == 404
    assert request(svc, "POST", "/login", b"token=x", hooks=True)[0] == 404
    assert request(svc, "GET", "/healthz") == (200, "ok")  # the service's own endpoints still answer


def test_webhooks_are_off_without_a_secret(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, secret="")
    code, text = request(svc, "POST", f"/hooks/dockerhub/{SECRET}", b"{}")
    assert (code, text) == (404, "webhooks are disabled: start with --webhook-secret-file")


def test_a_tag_not_listed_yet_is_listed_again_a_bounded_number_of_times(
    run_service: Callable[..., AutomatorService],
) -> None:
    assert TAG_RETRIES == (10.0, 20.0, 40.0)  # as documented
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle, clock)
    clock.settle()
    # the registry (or its CDN) lags: 1.1.0 is announced but not listed for two more listings
    assert generic(svc, f"{A}:1.1.0")[0] == 202
    next_cycle_after(clock, cycle, DEBOUNCE)
    assert status(svc)["awaitedTags"] == [f"{A.repository}:1.1.0"]
    next_cycle_after(clock, cycle, 10)
    cycle.registry.tags[A.repository].append("1.1.0")
    next_cycle_after(clock, cycle, 20)  # the listing that sees 1.1.0
    assert status(svc)["awaitedTags"] == []
    clock.advance(600)
    assert len(cycle.runs) == 4  # seen: no more listings
    assert all(run == [A.repository] for run in cycle.runs[1:])

    # a tag that never shows up is given up after the bounded retries
    assert generic(svc, f"{A}:9.9.9")[0] == 202
    next_cycle_after(clock, cycle, DEBOUNCE)
    for delay in TAG_RETRIES:
        next_cycle_after(clock, cycle, delay)
    assert status(svc)["awaitedTags"] == []
    clock.advance(600)
    assert len(cycle.runs) == 8


def test_the_recheck_delays_are_a_parameter(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, tag_retries=(1.0,))
    clock.settle()
    assert generic(svc, f"{A}:2.0.0")[0] == 202
    next_cycle_after(clock, cycle, DEBOUNCE)
    next_cycle_after(clock, cycle, 1)
    clock.advance(600)
    assert len(cycle.runs) == 3


# --------------------------------------------------------------------------- failures and health


def test_a_failed_cycle_is_retried_with_backoff(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    cycle.fail = [RegistryUnavailable("registry down"), RegistryUnavailable("still down")]
    svc = run_service(cycle, clock)
    clock.settle()
    assert status(svc)["lastCycle"]["outcome"] == "error"
    next_cycle_after(clock, cycle, 5)  # 5 s after the first failure...
    next_cycle_after(clock, cycle, 10)  # ...10 s after the second
    metrics = request(svc, "GET", "/metrics")[1]
    assert 'automator_cycles_total{outcome="error",trigger="schedule"} 1.0' in metrics
    assert 'automator_cycles_total{outcome="error",trigger="retry"} 1.0' in metrics
    assert 'automator_cycles_total{outcome="ok",trigger="retry"} 1.0' in metrics
    next_cycle_after(clock, cycle, 3600 - 15)  # then the schedule again, on its grid


def test_a_credential_caught_mid_rotation_is_retried(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    cycle.fail = [CredentialUnavailable("github token file /etc/t is empty")]
    run_service(cycle, clock)
    clock.settle()
    next_cycle_after(clock, cycle, 5)


@pytest.mark.parametrize(
    "errors",
    [
        [ConfigError("automator.yaml:3: bad")],
        [RegistryAuthError("401 from the registry"), CredentialError("docker config unreadable")],
    ],
    ids=["config", "credentials"],
)
def test_a_permanent_error_waits_for_the_next_scheduled_cycle(
    run_service: Callable[..., AutomatorService], errors: list[Exception]
) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    cycle.fail = list(errors)
    svc = run_service(cycle, clock)
    clock.settle()
    doc = status(svc)
    assert doc["lastCycle"]["outcome"] == "error"
    assert doc["lastCycle"]["error"] == str(errors[0])
    for _ in errors:  # permanent by the tree: no retry before the schedule (1 h)
        next_cycle_after(clock, cycle, 3600)
        assert status(svc)["lastCycle"]["trigger"] == "schedule"
    assert status(svc)["lastCycle"]["outcome"] == "ok"


def test_webhooks_before_a_good_cycle_rescan_everything(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    cycle.fail = [RegistryError("down")]
    svc = run_service(cycle, clock, debounce=2.0)  # due before the retry (5 s)
    clock.settle()
    assert len(cycle.runs) == 1
    assert generic(svc, f"{A}:1.1.0") == (202, "cycle queued for every policy")
    next_cycle_after(clock, cycle, 2)
    assert status(svc)["lastCycle"]["trigger"] == "webhook"
    assert sorted(cycle.runs[1]) == [A.repository, B.repository]


def test_health_fails_on_a_hung_cycle_and_readiness_on_shutdown(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    cycle.gate = threading.Event()
    svc = run_service(cycle, clock)  # --cycle-timeout: 1800 s
    assert request(svc, "GET", "/readyz") == (200, "ready")
    assert cycle.entered.wait(DEADLINE)
    clock.tick(1800)
    assert request(svc, "GET", "/healthz") == (200, "ok")  # at the limit, not over it
    clock.tick(1)
    assert request(svc, "GET", "/healthz") == (503, "a cycle has run for 1801s (--cycle-timeout)")
    svc.shutdown()  # as on SIGTERM: not ready any more, the running cycle still finishes
    assert request(svc, "GET", "/readyz") == (503, "shutting down")
    cycle.gate.set()
    assert cycle.left.wait(DEADLINE)
    assert len(cycle.runs) == 1


def test_the_real_clock_is_the_default() -> None:
    clock = SystemClock()
    assert clock.now().tzinfo is UTC
    assert clock.monotonic() <= clock.monotonic()
    event = threading.Event()
    assert clock.wait(event, 0) is False
    event.set()
    assert clock.wait(event, DEADLINE) is True


def test_a_delivery_passed_on_to_an_unreachable_holder_is_answered_503() -> None:
    from automator.daemon.service import relay
    from tests.servers.registry import free_port

    url = f"http://127.0.0.1:{free_port()}/hooks/generic"
    answer = relay("POST", url, {"x-signature-256": "sha256=0"}, b"{}", by="b")
    assert answer.status == 503 and dict(answer.headers)["Retry-After"] == "5"
    assert "did not answer" in str(answer.body)


def test_a_page_passed_on_to_the_holder_keeps_its_redirect_and_cookie_headers(tmp_path: Path) -> None:
    from automator.daemon.service import relay
    from automator.dashboard import Dashboard
    from automator.httpd import Listener, SecretFile
    from tests.servers.registry import free_port

    token = tmp_path / "token"
    token.write_text("t0ken")
    holder = Dashboard(None, token=SecretFile(str(token), "--dashboard-token-file"))
    listener = Listener("127.0.0.1:0", lambda path: None, lambda p, h, b: holder.login(h, b), page=holder.page)
    listener.start()
    base = f"http://127.0.0.1:{listener.address[1]}"
    try:
        sent = relay("GET", f"{base}/policies/a%3Ab", {"sec-fetch-mode": "navigate"}, b"", by="b")
        assert sent.status == 303  # not followed: the browser goes to the sign-in form itself
        assert dict(sent.headers)["Location"] == "/login?next=%2Fpolicies%2Fa%253Ab"
        signed = relay(
            "POST", f"{base}/login", {"content-type": "application/x-www-form-urlencoded"}, b"token=t0ken", by="b"
        )
        assert signed.status == 303 and "HttpOnly" in dict(signed.headers)["Set-Cookie"]
    finally:
        listener.close()
    gone = relay("GET", f"http://127.0.0.1:{free_port()}/", {}, b"", by="b")
    assert gone.status == 503 and dict(gone.headers)["Retry-After"] == "5"
