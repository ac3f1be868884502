"""The service's ``GET /status`` serves the status model, and ``/metrics`` the lead-time histograms.

The loop, the listener and the clock are test_daemon_service's (a real loop on loopback, a
manual clock); the model and the steps completed are stand-ins the test moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from automator.daemon.service import AutomatorService
from tests.unit.test_daemon_service import START, A, FakeCycle, ManualClock, policy, request, run_service, status

__all__ = ["run_service"]  # the fixture, used by name
START_SEEDED = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # tests.unit.test_status.T0


def histogram(metrics: str, stage: str) -> tuple[float, float]:
    """(count, sum) of ``automator_lead_time_seconds{stage}``."""
    found = {}
    for line in metrics.splitlines():
        for part in ("count", "sum"):
            if line.startswith(f'automator_lead_time_seconds_{part}{{stage="{stage}"}}'):
                found[part] = float(line.split()[-1])
    return found.get("count", 0.0), found.get("sum", 0.0)


def test_status_serves_the_model_beside_the_loop(run_service: Callable[..., AutomatorService]) -> None:
    model = {"generated": "now", "policies": [{"policy": "a", "state": "up to date"}], "clusters": []}
    clock = ManualClock()
    svc = run_service(FakeCycle([policy("a", A)]), clock, status_model=lambda now: model)
    clock.settle()
    doc = status(svc)
    assert doc["policies"] == model["policies"]  # what `automator status --output json` prints
    assert doc["lastCycle"]["trigger"] == "schedule"  # and the loop's own fields, as before


def test_a_step_completed_is_observed_once_and_one_before_the_service_started_never(
    run_service: Callable[..., AutomatorService],
) -> None:
    steps: list[tuple[tuple[str, ...], str, float, datetime]] = [
        (("a", "1.0.0", "", "pr_to_merge"), "pr_to_merge", 50.0, START - timedelta(days=1)),  # before we started
    ]
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, lead_times=lambda: list(steps))
    clock.settle()
    assert histogram(request(svc, "GET", "/metrics")[1], "pr_to_merge") == (0.0, 0.0)
    steps.append((("a", "1.1.0", "", "pr_to_merge"), "pr_to_merge", 120.0, START + timedelta(seconds=10)))
    steps.append((("a", "1.1.0", "prod", "merge_to_applied"), "merge_to_applied", 30.0, START + timedelta(seconds=20)))
    clock.advance(3600)  # the next cycle
    clock.advance(3600)  # and one more: the same steps again are not counted twice
    metrics = request(svc, "GET", "/metrics")[1]
    assert histogram(metrics, "pr_to_merge") == (1.0, 120.0)
    assert histogram(metrics, "merge_to_applied") == (1.0, 30.0)
    assert len(cycle.runs) == 3


def test_without_a_model_status_is_the_loop_alone(run_service: Callable[..., AutomatorService]) -> None:
    clock = ManualClock()
    svc = run_service(FakeCycle([policy("a", A)]), clock)
    clock.settle()
    doc: dict[str, Any] = status(svc)
    assert "policies" not in doc


def test_the_daemons_model_is_what_automator_status_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automator.cli import _status_sources, main
    from automator.status import record_reports
    from automator.sync.model import ClusterReport
    from tests.unit.test_status import Clock, seeded, web

    clock = Clock()
    store = seeded(tmp_path, clock)  # the service's own store, the one writer
    applied = START + timedelta(minutes=32)
    record_reports(store, {"prod": ClusterReport("prod", "bbb", applied, (web("1.1.0", "Ready", applied),))})
    sources = _status_sources(str(tmp_path / "state"), store)
    now = datetime.now(UTC)
    served = json.loads(json.dumps(sources["status_model"](now)))
    assert main(["status", "--state-dir", str(tmp_path / "state"), "-o", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert served.pop("generated") and printed.pop("generated")
    for doc in (served, printed):  # the age of an open pull request moves with the clock
        for row in doc["policies"]:
            if row["pullRequest"]:
                row["pullRequest"].pop("ageSeconds")
    assert served == printed
    assert served["policies"][0]["clusters"][0]["cluster"] == "prod"
    assert {stage for _, stage, _, _ in sources["lead_times"]()} >= {"seen_to_pr", "merge_to_applied"}
    store.close()


def test_a_webhook_announcing_a_tag_is_recorded_before_the_cycle_it_queued(
    run_service: Callable[..., AutomatorService],
) -> None:
    from tests.unit.test_daemon_service import generic

    announced: list[set[tuple[str, str, str]]] = []
    clock = ManualClock()
    cycle = FakeCycle([policy("a", A)])
    svc = run_service(cycle, clock, announce=lambda items: announced.append(set(items)))
    clock.settle()
    assert generic(svc, f"{A.repository}:1.1.0")[0] == 202
    clock.advance(5)  # the debounce: the webhook's cycle runs
    assert announced[-1] == {(A.repository, "1.1.0", "generic")}
    assert len(cycle.runs) == 2


def test_the_first_announcement_of_a_tag_is_kept_and_history_names_it(tmp_path: Path) -> None:
    from automator.status_history import histories, history_json
    from tests.unit.test_status import REPO, Clock, seeded

    clock = Clock()
    store = seeded(tmp_path, clock)
    store.record_announcements([(REPO, "1.1.0", "harbor")])
    clock.now += timedelta(minutes=1)
    store.record_announcements([(REPO, "1.1.0", "generic")])  # a second delivery: the first stands
    assert store.announcements() == {(REPO, "1.1.0"): ("harbor", START_SEEDED + timedelta(minutes=30))}
    rows = histories(store, ["apps:web"])["apps:web"]
    doc = history_json("apps:web", rows)
    assert doc["versions"][1]["announcedBy"] == {"source": "harbor", "at": "2026-12-02T01:30:00Z"}
    store.close()
