"""Leader election over a Lease: who may take it and when, with clocks the test drives and an
API that refuses a write carrying a stale resourceVersion, as the API server does."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from automator.errors import ClusterUnavailable, ConfigError
from automator.sync.lease import LeaseConfig, LeaseHolder

T0 = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


class Leases:
    """The API server's side: one store, optimistic concurrency, and a switch per client to cut it off."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.writes: list[tuple[str, str]] = []  # (who, holder written)

    def client(self, who: str) -> Client:
        return Client(self, who)


class Client:
    def __init__(self, store: Leases, who: str) -> None:
        self.store, self.who, self.cut = store, who, False

    def _reach(self) -> None:
        if self.cut:
            raise ClusterUnavailable(f"{self.who}: cannot reach the API server")

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._reach()
        found = self.store.objects.get(name)
        return copy.deepcopy(found) if found else None

    def create(self, namespace: str, body: dict[str, Any]) -> bool:
        self._reach()
        name = body["metadata"]["name"]
        if name in self.store.objects:
            return False
        return self._store(name, body)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        self._reach()
        held = self.store.objects.get(name)
        if held is None or body["metadata"].get("resourceVersion") != held["metadata"]["resourceVersion"]:
            return False
        return self._store(name, body)

    def _store(self, name: str, body: dict[str, Any]) -> bool:
        self.store.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.store.version)
        self.store.objects[name] = body
        self.store.writes.append((self.who, str(body["spec"].get("holderIdentity"))))
        return True


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0

    def __call__(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.mono)


def holder(store: Leases, who: str, clock: Clock) -> tuple[LeaseHolder, Client]:
    client = store.client(who)
    config = LeaseConfig("ns", "automator", who, duration=15, renew_deadline=10, retry=2)
    return LeaseHolder(client, config, monotonic=clock, wall=clock.wall), client


def test_the_first_replica_takes_a_free_lease_and_the_second_waits() -> None:
    store, clock = Leases(), Clock()
    a, _ = holder(store, "a", clock)
    b, _ = holder(store, "b", clock)
    assert a.step() is True and a.held()
    assert b.step() is False and not b.held() and b.holder == "a"
    for _ in range(20):  # a renews every retry: b never sees the record stand still for 15 s
        clock.mono += 2
        assert a.step() and not b.step()
    spec = store.objects["automator"]["spec"]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"], spec["leaseTransitions"]) == ("a", 15, 0)


def test_a_dead_holders_lease_is_taken_over_after_the_duration_measured_here() -> None:
    store, clock = Leases(), Clock()
    a, _ = holder(store, "a", clock)
    b, _ = holder(store, "b", clock)
    a.step()
    b.step()  # b first sees the record now
    clock.mono += 14  # a died: nothing renews
    assert not b.step()
    clock.mono += 2  # 16 s since b saw it change
    assert b.step() and b.held()
    spec = store.objects["automator"]["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


def test_a_partitioned_holder_stops_before_anyone_else_may_start() -> None:
    store, clock = Leases(), Clock()
    a, a_api = holder(store, "a", clock)
    b, _ = holder(store, "b", clock)
    a.step()
    b.step()
    a_api.cut = True  # a loses the API server; its work must stop within the renew deadline
    held_by: list[tuple[float, bool, bool]] = []
    for _ in range(12):
        clock.mono += 2
        with pytest.raises(ClusterUnavailable):
            a.step()
        b.step()
        held_by.append((clock.mono, a.held(), b.held()))
    assert not any(ha and hb for _, ha, hb in held_by)  # never two holders at once
    a_stopped = next(t for t, ha, _ in held_by if not ha)
    b_started = next(t for t, _, hb in held_by if hb)
    assert a_stopped <= 110 and b_started >= 115 and a_stopped < b_started


def test_two_replicas_racing_for_a_free_lease_cannot_both_win() -> None:
    store, clock = Leases(), Clock()
    a, _ = holder(store, "a", clock)
    b, b_api = holder(store, "b", clock)
    store.objects["automator"] = {
        "metadata": {"name": "automator", "namespace": "ns", "resourceVersion": "0"},
        "spec": {"holderIdentity": None},
    }
    stale = b_api.get("ns", "automator")
    assert a.step()  # a takes the free Lease
    assert stale is not None and not b_api.replace("ns", "automator", stale)  # b's write carries what it read
    assert not b.step() and b.holder == "a"


def test_stopping_releases_the_lease_so_another_takes_it_at_once() -> None:
    store, clock = Leases(), Clock()
    a, _ = holder(store, "a", clock)
    b, _ = holder(store, "b", clock)
    a.step()
    b.step()
    a.stop()
    assert not a.held()
    assert store.objects["automator"]["spec"]["holderIdentity"] is None
    clock.mono += 2
    assert b.step()  # a free Lease: no need to wait out the duration


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(10, 10, 2), (15, 10, 0), (15, 20, 2)])
def test_timings_must_leave_room_between_a_holder_stopping_and_another_starting(
    duration: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ConfigError, match="lease timings"):
        LeaseConfig("ns", "automator", "a", duration=duration, renew_deadline=deadline, retry=retry)


def test_forge_writes_are_refused_once_the_lease_is_lost() -> None:
    from automator.errors import ForgeUnavailable
    from automator.forge import NoneForge
    from automator.forge.fenced import FencedForge

    held = [True]
    inner = NoneForge()
    forge = FencedForge(inner, lambda: held[0])
    pr = forge.open_pull_request("automator/app", "main", "Update app", "body")
    assert [p.number for p in forge.list_pull_requests("automator/")] == [pr.number]
    held[0] = False  # cut off mid-cycle: the renew deadline passed
    with pytest.raises(ForgeUnavailable, match="no longer holds the lease"):
        forge.update_pull_request(pr, "Update app to 2", "body")
    with pytest.raises(ForgeUnavailable):
        forge.open_pull_request("automator/db", "main", "Update db", "body")
    with pytest.raises(ForgeUnavailable):
        forge.comment_on_pull_request(pr.number, "hello")
    assert len(forge.list_pull_requests("automator/")) == 1  # reads still pass; nothing else was written
