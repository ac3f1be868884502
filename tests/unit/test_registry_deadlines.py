"""The registry cycle: one probe per suspect host, a dead host remembered, the scan deadline on a driven clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from automator.errors import RegistryUnavailable
from automator.registry import Cycle, RegistryConfig, RetryPolicy, Timeouts

HOST = "registry.example:5000"


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_new_cycle_lets_everything_through() -> None:
    cycle = Cycle(clock=Clock())
    cycle.check(HOST, "list tags", scan_deadline=None)
    cycle.check(HOST, "list tags", scan_deadline=10.0)
    assert cycle.clear_to_send(HOST, object())
    assert cycle.dead == {}


def test_scan_deadline_runs_from_the_cycle_start_on_its_clock() -> None:
    clock = Clock()
    cycle = Cycle(clock=clock)
    clock.now += 9.5
    assert cycle.remaining(10.0) == pytest.approx(0.5)
    cycle.check(HOST, "list tags", scan_deadline=10.0)
    clock.now += 0.5
    with pytest.raises(RegistryUnavailable, match=r"list tags: the scan deadline of 10 s \(scan_deadline\) has passed"):
        cycle.check(HOST, "list tags", scan_deadline=10.0)
    cycle.check(HOST, "list tags", scan_deadline=None)  # a host without a deadline is not affected
    assert RegistryUnavailable.retryable


async def test_one_probe_while_the_others_wait_for_its_answer() -> None:
    cycle = Cycle(clock=Clock())
    probe, other = object(), object()
    cycle.failed(HOST, probe)
    cycle.failed(HOST, other)  # a second failure does not take the probe over
    assert cycle.clear_to_send(HOST, probe)
    assert not cycle.clear_to_send(HOST, other)
    waiter = asyncio.create_task(cycle.admit(HOST, other, "list tags", None))
    await asyncio.sleep(0)
    assert not waiter.done()
    cycle.answered(HOST)  # the host is alive after all
    await asyncio.wait_for(waiter, 5)
    assert cycle.clear_to_send(HOST, other)
    assert cycle.dead == {}


async def test_the_probe_giving_up_marks_the_host_dead_for_the_waiters() -> None:
    cycle = Cycle(clock=Clock())
    probe, other = object(), object()
    cycle.failed(HOST, probe)
    assert not cycle.give_up(HOST, other, "ReadTimeout after 1 attempts")  # not the probe: proves nothing
    waiter = asyncio.create_task(cycle.admit(HOST, other, "registry x, repository a/b: list tags", None))
    await asyncio.sleep(0)
    assert cycle.give_up(HOST, probe, "ReadTimeout after 4 attempts")
    with pytest.raises(RegistryUnavailable, match=r"list tags: .*\(ReadTimeout after 4 attempts\).*not retried again"):
        await asyncio.wait_for(waiter, 5)
    assert cycle.dead == {HOST: "ReadTimeout after 4 attempts"}
    assert not cycle.clear_to_send(HOST, probe)
    cycle.answered(HOST)  # dead stays dead for the cycle
    with pytest.raises(RegistryUnavailable, match="not retried again this cycle"):
        cycle.check(HOST, "manifest 1.0", None)
    cycle.check("other.example", "list tags", None)  # per host


async def test_a_probe_that_ends_otherwise_lets_the_next_one_probe() -> None:
    cycle = Cycle(clock=Clock())
    probe, other = object(), object()
    cycle.failed(HOST, probe)
    waiter = asyncio.create_task(cycle.admit(HOST, other, "list tags", None))
    await asyncio.sleep(0)
    cycle.release(probe)  # e.g. cancelled, or a permanent error
    await asyncio.wait_for(waiter, 5)
    cycle.failed(HOST, other)
    assert cycle.clear_to_send(HOST, other)
    assert not cycle.clear_to_send(HOST, probe)


async def test_waiting_for_a_probe_ends_at_the_scan_deadline() -> None:
    clock = Clock()
    cycle = Cycle(clock=clock)
    probe, other = object(), object()
    cycle.failed(HOST, probe)
    clock.now += 10.0 - 0.01  # 10 ms left: the wait wakes then and reads the clock again
    waiter = asyncio.create_task(cycle.admit(HOST, other, "list tags", 10.0))
    await asyncio.sleep(0)
    clock.now += 1.0
    with pytest.raises(RegistryUnavailable, match="scan deadline of 10 s"):
        await asyncio.wait_for(waiter, 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Timeouts(request=0),
        lambda: RetryPolicy(max_elapsed=0),
        lambda: RegistryConfig(scan_deadline=-1.0),
    ],
    ids=["request", "max_elapsed", "scan_deadline"],
)
def test_deadlines_must_be_positive(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        make()


def test_defaults_bound_every_request() -> None:
    config = RegistryConfig()
    assert config.timeouts.request == 30.0
    assert config.retry.max_elapsed == 60.0
    assert config.scan_deadline is None  # the caller's cycle decides
    assert RetryPolicy(max_elapsed=None).max_elapsed is None
