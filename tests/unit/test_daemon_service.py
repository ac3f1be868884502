"""The automator's service loop: schedule, webhook-triggered cycles, retries, health — with a fake cycle.

The loop and its HTTP listener are real (loopback, port chosen by the OS); only the cycle is a
stand-in that lists tags through the service's registry memo, so what each cycle re-lists is
observable.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from automator import httpd
from automator.daemon import service as service_module
from automator.daemon.service import AutomatorService, Schedule, cron_weekdays
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
from automator.retry import Backoff
from automator.run import RunSummary
from automator.scan import RegistryMemo, ScanResult
from automator.update import UpdateResult

SECRET = "hook-secret"
DEADLINE = 10.0
A = parse_reference("registry.example.com/team/a")
B = parse_reference("registry.example.com/team/b")


def policy(name: str, image: ImageRef) -> Policy:
    return Policy(name, image, SemverChoice(">=1.0.0"), SourceLocation(f"{name}.yaml", 1))


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

    def __call__(self, memo: RegistryMemo) -> RunSummary:
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


def wait_until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out waiting for {what}")


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


@pytest.fixture
def run_service() -> Iterator[Callable[..., AutomatorService]]:
    started: list[tuple[AutomatorService, threading.Thread]] = []

    def start(cycle: FakeCycle, **kwargs: Any) -> AutomatorService:
        kwargs.setdefault("secret", SECRET)
        kwargs.setdefault("debounce", 0.05)
        schedule = kwargs.pop("schedule", None) or Schedule.parse(3600, None, "UTC")
        svc = AutomatorService(cycle, schedule, "127.0.0.1:0", **kwargs)
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


# --------------------------------------------------------------------------- schedule


def test_interval_runs_at_start_then_on_a_fixed_grid() -> None:
    schedule = Schedule.parse(60, None, "UTC")
    assert schedule.at_start
    start = schedule.triggers[0].start_date
    assert schedule.next_after(start) == start
    assert schedule.next_after(start + timedelta(seconds=1)) == start + timedelta(seconds=60)
    # a cycle that ran 150 s skips the missed slots instead of starting twice in a row
    assert schedule.next_after(start + timedelta(seconds=150)) == start + timedelta(seconds=180)


def test_cron_schedule_follows_its_time_zone() -> None:
    schedule = Schedule.parse(300, "0 9 * * 1-5", "Europe/Berlin")
    assert not schedule.at_start
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    nxt = schedule.next_after(saturday)
    assert nxt is not None
    assert nxt.astimezone(UTC) == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 CET


@pytest.mark.parametrize(
    ("cron", "tz", "after", "expected"),
    [
        # APScheduler 3's own zone handling skips the day after a spring DST change
        ("0 0 * * *", "America/New_York", datetime(2026, 3, 8, 0, 0, 30), datetime(2026, 3, 9, 0, 0)),
        ("0 0 * * *", "Europe/Berlin", datetime(2026, 3, 29, 0, 0, 30), datetime(2026, 3, 30, 0, 0)),
        ("0 0 * * 1", "Europe/Berlin", datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 30, 0, 0)),
        # a wall time the change skips runs at the same offset after it
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 3, 30)),
        # the repeated hour in autumn runs once
        ("30 1 * * *", "Europe/Berlin", datetime(2026, 10, 25, 1, 40), datetime(2026, 10, 26, 1, 30)),
        # crontab: a restricted day of month and day of week are alternatives
        ("0 0 1 * 1", "UTC", datetime(2026, 11, 22, 12, 0), datetime(2026, 11, 23, 0, 0)),
        ("0 0 1 * 1", "UTC", datetime(2026, 11, 24, 12, 0), datetime(2026, 11, 30, 0, 0)),
        ("0 0 1 * *", "UTC", datetime(2026, 11, 24, 12, 0), datetime(2026, 12, 1, 0, 0)),
    ],
)
def test_cron_schedules_mean_what_crontab_means_across_dst(
    cron: str, tz: str, after: datetime, expected: datetime
) -> None:
    zone = ZoneInfo(tz)
    nxt = Schedule.parse(300, cron, tz).next_after(after.replace(tzinfo=zone).astimezone(UTC))
    assert nxt is not None
    assert nxt.astimezone(zone).replace(tzinfo=None) == expected


def test_a_wildcard_hour_runs_in_both_passes_of_the_repeated_autumn_hour() -> None:
    zone = ZoneInfo("Europe/Berlin")
    schedule = Schedule.parse(300, "30 * * * *", "Europe/Berlin")

    def after(hour: int, minute: int, fold: int = 0) -> datetime:
        at = datetime(2026, 10, 25, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)
        nxt = schedule.next_after(at)
        assert nxt is not None
        return nxt

    first = after(1, 40)  # CEST
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = after(2, 40)  # still the first pass
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second pass
    assert after(2, 40, fold=1) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # 03:30 CET
    # spring: the skipped hour is simply not there
    spring = Schedule.parse(300, "30 * * * *", "Europe/Berlin")
    at = datetime(2026, 3, 29, 1, 40, tzinfo=zone).astimezone(UTC)
    assert spring.next_after(at) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    # ...and nothing runs at an hour the schedule does not name, before or after the change
    even = Schedule.parse(300, "30 */2 * * *", "Europe/Berlin")
    at = datetime(2026, 3, 29, 0, 40, tzinfo=zone).astimezone(UTC)
    assert even.next_after(at) == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)  # 04:30 CEST
    havana = ZoneInfo("America/Havana")  # its spring change is at midnight, into Sunday
    sunday = Schedule.parse(300, "30 * * * 0", "America/Havana")
    at = datetime(2026, 3, 7, 23, 0, tzinfo=havana).astimezone(UTC)  # Saturday evening
    nxt = sunday.next_after(at)
    assert nxt is not None
    assert nxt.astimezone(havana).weekday() == 6  # a Sunday, never Saturday 23:30


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("61 * * * *", "UTC", "--schedule '61 * * * *'"),
        ("* * *", "UTC", "3 fields; expected 5 crontab fields"),
        ("0 9 * * *", "Mars/Olympus", "--timezone 'Mars/Olympus'"),
        ("0 0 30 2 *", "UTC", "never fires"),
    ],
)
def test_bad_schedules_are_config_errors(cron: str, tz: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        Schedule.parse(300, cron, tz)


# --------------------------------------------------------------------------- webhooks -> cycles


def test_a_webhook_cycle_lists_only_the_pushed_repository(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle)
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    assert sorted(cycle.runs[0]) == [A.repository, B.repository]

    code, text = generic(svc, f"{A}:1.1.0")
    assert (code, text) == (202, f"cycle queued for {A.repository}")
    wait_until(lambda: len(cycle.runs) == 2, "the webhook cycle")
    assert cycle.runs[1] == [A.repository]  # B came from the memo
    wait_until(lambda: json.loads(request(svc, "GET", "/status")[1])["lastCycle"]["finished"], "the cycle end")
    status = json.loads(request(svc, "GET", "/status")[1])
    assert status["lastCycle"]["trigger"] == "webhook"
    assert status["lastCycle"]["result"]["revision"] == "abc123"
    metrics = request(svc, "GET", "/metrics")[1]
    assert 'automator_registry_listings_total{source="cache"} 1.0' in metrics
    assert 'automator_webhooks_total{outcome="queued",source="generic"} 1.0' in metrics


def test_a_burst_of_pushes_makes_one_cycle(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle, debounce=2.0)
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    for tag in ("1.1.0", "1.1.1", "1.2.0"):
        assert generic(svc, f"{A}:{tag}")[0] == 202
    assert generic(svc, f"{B}:2.0.0")[0] == 202
    wait_until(lambda: len(cycle.runs) == 2, "the webhook cycle")
    time.sleep(0.5)  # no second cycle may follow
    assert len(cycle.runs) == 2
    assert sorted(cycle.runs[1]) == [A.repository, B.repository]


def test_untracked_repositories_and_bad_deliveries_run_nothing(
    run_service: Callable[..., AutomatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "RELOAD_EVERY", 3600.0)
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle)
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    # the first push no loaded policy tracks reloads the policies (one may have just been
    # merged), listing nothing again; later ones within RELOAD_EVERY are ignored
    assert generic(svc, "registry.example.com/team/zzz:1.0") == (
        202,
        "no loaded policy tracks registry.example.com/team/zzz:1.0; cycle queued to reload the policies",
    )
    wait_until(lambda: len(cycle.runs) == 2, "the reload cycle")
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
    time.sleep(0.2)  # longer than the debounce
    assert len(cycle.runs) == 2


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
    run_service: Callable[..., AutomatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(httpd, "CONNECTION_DEADLINE", 1.0)
    svc = run_service(FakeCycle([policy("a", A)]))
    host, port = svc.address
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(b"POST /hooks/generic HTTP/1.1\r\nX-Slow: 1\r\n")  # ...and never the rest
        started = time.monotonic()
        assert conn.recv(1) == b""  # closed by the listener well before the 15 s read timeout
    assert time.monotonic() - started < 8
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
    cycle = FakeCycle([policy("a", A)])

    def broken(summary: RunSummary) -> None:
        raise BrokenPipeError("stdout is gone")

    svc = run_service(cycle, report=broken)
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    assert generic(svc, f"{A}:1.1.0")[0] == 202
    wait_until(lambda: len(cycle.runs) == 2, "the next cycle")


def test_webhooks_can_have_a_listener_of_their_own(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, webhook_listen="127.0.0.1:0")
    assert svc.hooks_address != svc.address
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    hub = json.dumps({"push_data": {"tag": "1.1.0"}, "repository": {"repo_name": "team/a"}}).encode()
    # the hooks listener takes deliveries and answers a load balancer's health check, nothing else
    assert request(svc, "POST", f"/hooks/dockerhub/{SECRET}", hub, hooks=True)[0] == 202
    assert request(svc, "GET", "/healthz", hooks=True) == (200, "ok")
    assert request(svc, "GET", "/status", hooks=True)[0] == 404
    assert request(svc, "GET", "/metrics", hooks=True)[0] == 404
    # the main listener keeps status and metrics, and sends deliveries away
    assert request(svc, "POST", f"/hooks/dockerhub/{SECRET}", hub) == (404, "webhooks are served on --webhook-listen")
    assert request(svc, "GET", "/status")[0] == 200
    wait_until(lambda: len(cycle.runs) == 2, "the webhook cycle")


def test_webhooks_are_off_without_a_secret(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, secret="")
    code, text = request(svc, "POST", f"/hooks/dockerhub/{SECRET}", b"{}")
    assert (code, text) == (404, "webhooks are disabled: start with --webhook-secret-file")


def test_a_tag_not_listed_yet_is_listed_again_a_bounded_number_of_times(
    run_service: Callable[..., AutomatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "TAG_RETRIES", (0.6, 0.6, 0.6))
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    svc = run_service(cycle)
    wait_until(lambda: len(cycle.runs) == 1, "the start-up cycle")
    # the registry (or its CDN) lags: 1.1.0 is announced but not listed for two more listings
    assert generic(svc, f"{A}:1.1.0")[0] == 202
    wait_until(lambda: len(cycle.runs) == 3, "two more listings")
    cycle.registry.tags[A.repository].append("1.1.0")
    wait_until(lambda: len(cycle.runs) == 4, "the listing that sees 1.1.0")
    time.sleep(0.8)
    assert len(cycle.runs) == 4  # seen: no more listings
    assert all(run == [A.repository] for run in cycle.runs[1:])

    # a tag that never shows up is given up after the bounded retries
    assert generic(svc, f"{A}:9.9.9")[0] == 202
    wait_until(lambda: len(cycle.runs) == 8, "the webhook cycle and three retries")
    time.sleep(0.8)
    assert len(cycle.runs) == 8


# --------------------------------------------------------------------------- failures and health


def test_a_failed_cycle_is_retried_with_backoff_but_a_config_error_waits(
    run_service: Callable[..., AutomatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "BACKOFF", Backoff(base=0.05))
    cycle = FakeCycle([policy("a", A)])
    cycle.fail = [RegistryUnavailable("registry down"), RegistryUnavailable("still down")]
    svc = run_service(cycle)
    wait_until(lambda: len(cycle.runs) == 3, "two retries")
    metrics = request(svc, "GET", "/metrics")[1]
    assert 'automator_cycles_total{outcome="error",trigger="schedule"} 1.0' in metrics
    assert 'automator_cycles_total{outcome="error",trigger="retry"} 1.0' in metrics
    assert 'automator_cycles_total{outcome="ok",trigger="retry"} 1.0' in metrics

    cycle3 = FakeCycle([policy("a", A)])
    cycle3.fail = [CredentialUnavailable("github token file /etc/t is empty")]  # mid-rotation: retried
    run_service(cycle3)
    wait_until(lambda: len(cycle3.runs) == 2, "the retry after a credential error")

    cycle2 = FakeCycle([policy("a", A)])
    cycle2.fail = [ConfigError("automator.yaml:3: bad")]
    svc2 = run_service(cycle2)
    wait_until(lambda: len(cycle2.runs) == 1, "the failing cycle")
    time.sleep(0.3)
    assert len(cycle2.runs) == 1  # a config error waits for the next scheduled cycle (1h)
    cycle4 = FakeCycle([policy("a", A)])
    cycle4.fail = [RegistryAuthError("401 from the registry"), CredentialError("docker config unreadable")]
    run_service(cycle4)
    wait_until(lambda: len(cycle4.runs) == 1, "the failing cycle")
    time.sleep(0.3)
    assert len(cycle4.runs) == 1  # permanent by the tree: no retry before the schedule
    status = json.loads(request(svc2, "GET", "/status")[1])
    assert status["lastCycle"]["outcome"] == "error"
    assert status["lastCycle"]["error"] == "automator.yaml:3: bad"


def test_webhooks_before_a_good_cycle_rescan_everything(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A), policy("b", B)])
    cycle.fail = [RegistryError("down")]
    svc = run_service(cycle)
    wait_until(lambda: len(cycle.runs) == 1, "the failing cycle")
    assert generic(svc, f"{A}:1.1.0") == (202, "cycle queued for every policy")
    wait_until(lambda: len(cycle.runs) == 2, "the webhook cycle")
    assert sorted(cycle.runs[1]) == [A.repository, B.repository]


def test_health_fails_on_a_hung_cycle_and_readiness_on_shutdown(run_service: Callable[..., AutomatorService]) -> None:
    cycle = FakeCycle([policy("a", A)])
    cycle.gate = threading.Event()
    svc = run_service(cycle, cycle_timeout=0.1)
    assert request(svc, "GET", "/readyz") == (200, "ready")
    wait_until(lambda: request(svc, "GET", "/healthz")[0] == 503, "/healthz to report the hung cycle")
    assert "a cycle has run for" in request(svc, "GET", "/healthz")[1]
    svc.shutdown()  # as on SIGTERM: not ready any more, the running cycle still finishes
    assert request(svc, "GET", "/readyz") == (503, "shutting down")
    cycle.gate.set()
    wait_until(lambda: len(cycle.runs) == 1, "the cycle to finish")


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "fri,sat,sun"),
        ("fri-sun", "fri,sat,sun"),
        ("0-6", "mon,tue,wed,thu,fri,sat,sun"),
        ("*/2", "tue,thu,sat,sun"),
        ("1/2", "mon,wed,fri"),
        ("mon,wed", "mon,wed"),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(field: str, days: str) -> None:
    # APScheduler numbers days from Monday = 0; crontab from Sunday = 0
    assert cron_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "mon-", "5-1", "*/0", "funday"])
def test_bad_crontab_weekdays(field: str) -> None:
    with pytest.raises(ValueError):
        cron_weekdays(field)
