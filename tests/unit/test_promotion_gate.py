"""The promotion gate's judgement (automator.promotion.gate), over reports written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from automator.policy.model import PromotionStep
from automator.promotion.gate import ClusterEvidence, Report, Running, judge_step

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = "registry.example/apps/web"
STEP = PromotionStep("staging", 1800.0, healthy_for="30m")


def semver_better(a: str, b: str) -> bool:
    return tuple(int(x) for x in a.split(".")) > tuple(int(x) for x in b.split("."))


def running(tag: str, health: str = "Ready", since: datetime = T0, reason: str = "", repo: str = REPO) -> Running:
    return Running("Deployment/apps/web", repo, tag, health, since, reason)


def evidence(*reports: tuple[datetime, tuple[Running, ...]], error: str = "") -> ClusterEvidence:
    return ClusterEvidence("staging", tuple(Report(at, r) for at, r in reports), error)


def judge(tag: str, ev: ClusterEvidence | None, now: datetime) -> tuple[bool, str, bool, datetime | None]:
    v = judge_step(STEP, REPO, tag, ev, now, better=semver_better)
    return v.ok, v.reason, v.blocked, v.until


def test_ready_for_the_soak_passes_with_the_proof() -> None:
    ok, reason, blocked, _ = judge("1.2.0", evidence((T0, (running("1.2.0"),))), T0 + timedelta(minutes=45))
    assert ok and not blocked
    assert reason == ("ran in staging (Deployment/apps/web) Ready since 2026-03-01T12:00:00Z, 45 min (healthyFor 30m)")


def test_ready_for_less_than_the_soak_waits_and_says_how_long() -> None:
    ok, reason, blocked, until = judge("1.2.0", evidence((T0, (running("1.2.0"),))), T0 + timedelta(minutes=12))
    assert (ok, blocked, reason) == (False, False, "waiting for staging: healthy 12 of 30 min")
    assert until == T0 + timedelta(minutes=30)


def test_a_version_not_running_there_waits() -> None:
    ev = evidence((T0, (running("1.1.0"),)))
    assert judge("1.2.0", ev, T0) == (
        False,
        "waiting for staging: 1.2.0 is not running there (it runs 1.1.0)",
        False,
        None,
    )
    other = evidence((T0, (running("1.2.0", repo="registry.example/apps/api"),)))
    assert judge("1.2.0", other, T0)[1] == "waiting for staging: 1.2.0 is not running there"


def test_a_rollout_in_progress_waits() -> None:
    ev = evidence((T0, (running("1.2.0", "Progressing", reason="2 of 3 updated"),)))
    reason = judge("1.2.0", ev, T0 + timedelta(hours=1))[1]
    assert reason == "waiting for staging: 1.2.0 is Progressing there (Deployment/apps/web: 2 of 3 updated)"


def test_a_failure_there_blocks_for_good_even_after_it_recovered() -> None:
    ev = evidence(
        (T0, (running("1.2.0", "Failed", since=T0, reason="CrashLoopBackOff"),)),
        (T0 + timedelta(minutes=5), (running("1.2.0", since=T0 + timedelta(minutes=5)),)),
    )
    ok, reason, blocked, _ = judge("1.2.0", ev, T0 + timedelta(hours=2))
    assert (ok, blocked) == (False, True)
    assert reason == "blocked: unhealthy in staging since 2026-03-01T12:00:00Z (CrashLoopBackOff)"


def test_a_rollback_there_blocks_the_version_it_left() -> None:
    ev = evidence(
        (T0, (running("1.2.0"),)),
        (T0 + timedelta(minutes=40), (running("1.1.0", since=T0 + timedelta(minutes=41)),)),
    )
    ok, reason, blocked, _ = judge("1.2.0", ev, T0 + timedelta(hours=2))
    assert (ok, blocked) == (False, True)
    assert reason == "blocked: rolled back in staging: it went from 1.2.0 back to 1.1.0 (seen 2026-03-01T12:40:00Z)"


def test_a_version_proved_before_the_cluster_moved_on_stays_proved() -> None:
    # staging ran 1.2.0 Ready for 40 minutes, then moved on to 1.3.0 (no rollback): 1.2.0 is proved
    ahead = evidence((T0, (running("1.2.0"),)), (T0 + timedelta(minutes=40), (running("1.3.0"),)))
    v = judge_step(STEP, REPO, "1.2.0", ahead, T0 + timedelta(hours=2), better=semver_better)
    assert v.ok and v.reason == (
        "ran in staging (Deployment/apps/web) Ready from 2026-03-01T12:00:00Z to 2026-03-01T12:40:00Z,"
        " 40 min (healthyFor 30m)"
    )
    assert v.window == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))  # the query's: the soak's end
    # moved on before its soak: never proved
    early = evidence((T0, (running("1.2.0"),)), (T0 + timedelta(minutes=20), (running("1.3.0"),)))
    assert judge("1.2.0", early, T0 + timedelta(hours=2))[1] == (
        "waiting for staging: 1.2.0 is not running there (it runs 1.3.0)"
    )


def test_no_reports_or_a_cluster_that_cannot_be_read_waits() -> None:
    assert judge("1.2.0", None, T0)[1] == "waiting for staging: it has reported nothing yet"
    assert judge("1.2.0", evidence(error="connection refused"), T0)[1] == "waiting for staging: connection refused"
    stale = evidence((T0, (running("1.2.0"),)), error="connection refused")
    assert judge("1.2.0", stale, T0 + timedelta(hours=1))[1] == (
        "waiting for staging: cannot read it this cycle (connection refused)"
    )


def test_every_workload_running_the_version_must_be_ready_and_the_latest_counts() -> None:
    late = T0 + timedelta(minutes=20)
    ev = evidence((T0, (running("1.2.0"), Running("Deployment/apps/web-2", REPO, "1.2.0", "Ready", late))))
    assert judge("1.2.0", ev, T0 + timedelta(minutes=40))[1] == "waiting for staging: healthy 20 of 30 min"


def test_the_soak_never_counts_from_before_the_version_was_seen_there() -> None:
    # an older synchronizer kept its Ready "since" across the rollout: the automator's first
    # record of 1.2.0 running there is when the soak starts
    seen = T0 + timedelta(hours=5)
    ev = evidence((T0, (running("1.1.0"),)), (seen, (running("1.2.0", since=T0),)))
    assert judge("1.2.0", ev, seen + timedelta(minutes=10))[1] == "waiting for staging: healthy 10 of 30 min"
