"""``automator status``'s model: one state word per policy and why, from the state database."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.state import PolicyChoice, StateStore
from automator.status import (
    ClusterVersion,
    Facts,
    build_status,
    cluster_payload,
    print_status,
    report_from_payload,
    state_of,
    status_json,
)
from automator.sync.model import ClusterReport, WorkloadReport

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
REPO = "ghcr.io/acme/web"
UNSIGNED = "semver 1.1.0 is the newest in range; skipped 1.2.0: no signature (neither a .sig tag nor a referrer)"
VARIANT = "variant rule: only tags shaped like the current 1.2.0-alpine (variant 'alpine', 3 parts) are candidates"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def ready(version: str = "1.1.0") -> ClusterVersion:
    return ClusterVersion("prod", version, "Ready", "")


@pytest.mark.parametrize(
    ("facts", "state", "reasons"),
    [
        (Facts(qualifies="1.1.0", git=("1.1.0",)), "up to date", ()),
        (Facts(qualifies="1.1.0", git=("1.1.0",), clusters=(ready(),)), "up to date", ()),
        (Facts(qualifies="1.1.0", git=("1.0.0",), open_pr=(7, "1.1.0")), "pull request open", ()),
        (
            Facts(qualifies="1.1.0", git=("1.0.0",), closed_pr=(6, "1.1.0")),
            "held",
            ("pull request #6 for 1.1.0 was closed without merging",),
        ),
        (
            Facts(qualifies="1.1.0", git=("1.0.0",)),
            "failing",
            ("no pull request proposes 1.1.0 (see the last cycle's groups)",),
        ),
        (
            Facts(qualifies="1.1.0", git=("1.1.0",), clusters=(ready("1.0.0"),)),
            "merged not applied",
            ("prod runs 1.0.0",),
        ),
        (
            Facts(qualifies="1.1.0", git=("1.1.0",), clusters=(ClusterVersion("prod", "1.1.0", "Failed", "crash"),)),
            "applied and unhealthy",
            ("prod: Failed (crash)",),
        ),
        (Facts(scanned=False, git=("1.0.0",)), "held", ("suspended (or removed): the last cycle did not scan it",)),
        (Facts(error="registry said 401", git=("1.0.0",)), "failing", ("registry said 401",)),
        (Facts(error="no tag qualifies", git=("1.0.0",)), "held", ("no tag qualifies",)),
        (
            Facts(qualifies="1.1.0", git=("1.0.0",), holds=("cooldown until 2026-12-03T01:00:00Z",)),
            "held",
            ("cooldown until 2026-12-03T01:00:00Z",),
        ),
        (  # verify: the newest tag's signature did not verify, so an older one is the choice
            Facts(qualifies="1.1.0", git=("1.1.0",), newest="1.2.0", reason=UNSIGNED),
            "held",
            ("skipped 1.2.0: no signature (neither a .sig tag nor a referrer)",),
        ),
        (  # ... and once the newest is signed and chosen, nothing is held
            Facts(qualifies="1.2.0", git=("1.2.0",), newest="1.2.0", reason=UNSIGNED),
            "up to date",
            (),
        ),
        (  # the variant rule keeps -alpine while a newer tag of another shape is listed
            Facts(qualifies="1.2.0-alpine", git=("1.2.0-alpine",), newest="1.3.0", reason=VARIANT),
            "held",
            (VARIANT,),
        ),
        (  # a reason not naming the rule is prefixed
            Facts(qualifies="1.2.0-alpine", git=("1.2.0-alpine",), newest="1.3.0", reason="the variant rule kept it"),
            "held",
            ("variant rule: the variant rule kept it",),
        ),
        (  # the newest tag is the choice: nothing is held back
            Facts(qualifies="1.3.0-alpine", git=("1.3.0-alpine",), newest="1.3.0-alpine", reason=VARIANT),
            "up to date",
            (),
        ),
        (  # a reason that does not name the variant rule keeps today's word
            Facts(qualifies="1.1.0", git=("1.1.0",), newest="1.2.0", reason="kept 1.1.0: 1.0.0 is lower"),
            "up to date",
            (),
        ),
        (  # a pull request proposing a tag of the variant says so first
            Facts(qualifies="1.3.0-alpine", git=("1.2.0-alpine",), newest="1.4.0", reason=VARIANT, open_pr=(7, "x")),
            "pull request open",
            (),
        ),
    ],
)
def test_one_state_word_per_policy_and_why(facts: Facts, state: str, reasons: tuple[str, ...]) -> None:
    assert state_of(facts) == (state, reasons)


def test_a_row_held_by_the_variant_rule_says_so(tmp_path: Path) -> None:
    clock = Clock()
    store = StateStore(tmp_path / "state", now=clock)
    store.rebuilt()
    store.record_listing(REPO, ["1.2.0-alpine", "1.2.0"])
    clock.now = T0 + timedelta(minutes=5)
    store.record_listing(REPO, ["1.2.0-alpine", "1.2.0", "1.3.0"])  # no 1.3.0-alpine yet
    cycle = store.begin_cycle("aaa")
    kept = PolicyChoice("apps:web", REPO, "1.2.0-alpine", current="1.2.0-alpine", reason=VARIANT)
    store.record_choices(cycle, [kept])
    store.record_merge("aaa", T0, {"apps:web": ["1.2.0-alpine"]})
    [row] = build_status(store, {}, now=clock.now).policies
    assert (row.newest, row.qualifies, row.state, row.reasons) == ("1.3.0", "1.2.0-alpine", "held", (VARIANT,))
    out = io.StringIO()
    print_status(status := build_status(store, {}, now=clock.now), out)
    assert f"apps:web: held: {VARIANT}" in out.getvalue()
    assert status_json(status)["policies"][0]["reasons"] == [VARIANT]

    clock.now = T0 + timedelta(minutes=10)  # the variant catches up: chosen, nothing held back
    store.record_listing(REPO, ["1.2.0-alpine", "1.2.0", "1.3.0", "1.3.0-alpine"])
    later = store.begin_cycle("aaa")
    store.record_choices(
        later, [PolicyChoice("apps:web", REPO, "1.3.0-alpine", current="1.2.0-alpine", reason=VARIANT)]
    )
    store.record_pr_event("apps-web", 8, "https://forge/pr/8", "opened", {"apps:web": f"{REPO}:1.3.0-alpine"})
    [row] = build_status(store, {}, now=clock.now).policies
    assert (row.newest, row.state) == ("1.3.0-alpine", "pull request open")
    store.close()


def web(version: str, health: str, since: datetime) -> WorkloadReport:
    return WorkloadReport("Deployment", "prod", "web", (f"{REPO}:{version}",), health, "", since)


def seeded(tmp_path: Path, clock: Clock) -> StateStore:
    """One policy whose 1.1.0 was seen, proposed, merged; the cluster runs it Ready."""
    store = StateStore(tmp_path / "state", now=clock)
    store.rebuilt()
    store.record_listing(REPO, ["1.0.0"])
    c1 = store.begin_cycle("aaa")
    store.record_choices(c1, [PolicyChoice("apps:web", REPO, "1.0.0", current="1.0.0")])
    store.record_merge("aaa", T0, {"apps:web": ["1.0.0"]})
    clock.now = T0 + timedelta(minutes=10)
    store.record_listing(REPO, ["1.0.0", "1.1.0"])
    c2 = store.begin_cycle("aaa")
    store.record_choices(c2, [PolicyChoice("apps:web", REPO, "1.1.0", current="1.0.0")])
    store.record_pr_event("apps-web", 7, "https://forge/pr/7", "opened", {"apps:web": f"{REPO}:1.1.0"})
    clock.now = T0 + timedelta(minutes=30)
    store.record_pr_event("apps-web", 7, "https://forge/pr/7", "merged", {"apps:web": f"{REPO}:1.1.0"})
    store.record_merge("bbb", T0 + timedelta(minutes=25), {"apps:web": ["1.1.0"]})
    c3 = store.begin_cycle("bbb")
    store.record_choices(c3, [PolicyChoice("apps:web", REPO, "1.1.0", current="1.1.0")])
    return store


def test_status_from_state_shows_each_step_and_its_lead_time(tmp_path: Path) -> None:
    clock = Clock()
    store = seeded(tmp_path, clock)
    applied, healthy = T0 + timedelta(minutes=32), T0 + timedelta(minutes=35)
    live = ClusterReport("prod", "bbb", applied, (web("1.1.0", "Ready", healthy),), 3)
    clock.now = T0 + timedelta(hours=1)
    status = build_status(store, {"prod": live}, now=clock.now)
    [row] = status.policies
    assert (row.policy, row.newest, row.qualifies, row.git, row.state) == (
        "apps:web",
        "1.1.0",
        "1.1.0",
        ("1.1.0",),
        "up to date",
    )
    assert row.pull_request is None  # merged: none open
    [cluster] = row.clusters
    assert (cluster.cluster, cluster.version, cluster.health, cluster.revision) == ("prod", "1.1.0", "Ready", "bbb")
    assert (cluster.applied_at, cluster.since) == (applied, healthy)
    assert cluster.lead_times == {
        "seen_to_pr": 0.0,
        "pr_to_merge": 900.0,  # opened at +10m, the merge commit at +25m
        "merge_to_applied": 420.0,
        "applied_to_healthy": 180.0,
        "seen_to_healthy": 1500.0,
    }
    doc = status_json(status)
    assert doc["policies"][0]["clusters"][0]["leadTimes"]["seen_to_healthy"] == 1500.0
    assert json.loads(json.dumps(doc)) == doc
    out = io.StringIO()
    print_status(status, out)
    text = out.getvalue()
    assert "apps:web" in text and "up to date" in text and "prod" in text and "Ready" in text
    store.close()


def test_pods_running_another_digest_than_the_registrys_are_a_re_pushed_tag(tmp_path: Path) -> None:
    clock = Clock()
    store = seeded(tmp_path, clock)
    pulled, pushed_again = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    store.record_listing(REPO, ["1.0.0", "1.1.0"], {"1.1.0": pushed_again})  # what the registry now serves
    running = WorkloadReport("Deployment", "prod", "web", (f"{REPO}:1.1.0",), "Ready", "", T0, (pulled,))
    status = build_status(store, {"prod": ClusterReport("prod", "bbb", T0, (running,))}, now=clock.now)
    [cluster] = status.policies[0].clusters
    assert (cluster.digest, cluster.registry_digest, cluster.repushed) == (pulled, pushed_again, True)
    doc = status_json(status)["policies"][0]["clusters"][0]
    assert (doc["digests"], doc["registryDigest"], doc["repushed"]) == ([pulled], pushed_again, True)
    out = io.StringIO()
    print_status(status, out)
    assert f"(re-pushed: the registry's is {pushed_again[:19]})" in out.getvalue()
    same = WorkloadReport("Deployment", "prod", "web", (f"{REPO}:1.1.0",), "Ready", "", T0, (pushed_again,))
    [cluster] = (
        build_status(store, {"prod": ClusterReport("prod", "bbb", T0, (same,))}, now=clock.now).policies[0].clusters
    )
    assert not cluster.repushed
    store.close()


def test_an_open_pull_request_shows_its_number_link_version_and_age(tmp_path: Path) -> None:
    clock = Clock()
    store = StateStore(tmp_path / "state", now=clock)
    store.record_listing(REPO, ["1.0.0", "1.1.0", "2.0.0-rc.1"])
    cycle = store.begin_cycle("aaa")
    store.record_choices(cycle, [PolicyChoice("apps:web", REPO, "1.1.0", current="1.0.0")])
    store.record_merge("aaa", T0, {"apps:web": ["1.0.0"]})
    store.record_pr_event("apps-web", 3, "https://forge/pr/3", "opened", {"apps:web": f"{REPO}:1.1.0"})
    clock.now = T0 + timedelta(hours=2)
    old = ClusterReport("prod", "aaa", T0, (web("1.0.0", "Ready", T0),))
    [row] = build_status(store, {"prod": old}, now=clock.now).policies
    assert row.state == "pull request open"
    assert row.pull_request is not None
    assert (row.pull_request.number, row.pull_request.url, row.pull_request.version) == (
        3,
        "https://forge/pr/3",
        "1.1.0",
    )
    assert row.pull_request.age == 7200.0
    assert row.newest == "2.0.0-rc.1"  # the registry's newest, whether or not it qualifies
    assert row.clusters[0].version == "1.0.0"
    store.close()


def test_only_the_policies_asked_for_and_a_policy_not_known_is_an_error(tmp_path: Path) -> None:
    clock = Clock()
    store = seeded(tmp_path, clock)
    assert [p.policy for p in build_status(store, {}, now=clock.now, only=["apps:web"]).policies] == ["apps:web"]
    with pytest.raises(Exception, match="apps:nope"):
        build_status(store, {}, now=clock.now, only=["apps:nope"])
    store.close()


def test_a_cluster_report_round_trips_through_its_payload() -> None:
    report = ClusterReport("prod", "bbb", T0, (web("1.1.0", "Ready", T0),), 3, 1)
    assert report_from_payload("prod", "bbb", cluster_payload(report)) == report


def test_history_gives_each_version_its_steps_and_lead_times(tmp_path: Path) -> None:
    from automator.status import record_reports
    from automator.status_history import completed_steps, histories, history_json

    clock = Clock()
    store = seeded(tmp_path, clock)
    clock.now = T0 + timedelta(minutes=33)
    applied, healthy = T0 + timedelta(minutes=32), T0 + timedelta(minutes=35)
    assert (
        record_reports(store, {"prod": ClusterReport("prod", "bbb", applied, (web("1.1.0", "Progressing", applied),))})
        == 1
    )
    ready_report = ClusterReport("prod", "bbb", applied, (web("1.1.0", "Ready", healthy),))
    assert record_reports(store, {"prod": ready_report}) == 1
    assert record_reports(store, {"prod": ready_report}) == 0  # the same report again: no row
    rows = histories(store, ["apps:web"])["apps:web"]
    assert [v.version for v in rows] == ["1.0.0", "1.1.0"]
    new = rows[1]
    assert (new.seen, new.opened, new.merged) == (
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=25),
    )
    [prod] = new.clusters
    assert (prod.applied, prod.healthy) == (applied, healthy)
    assert prod.lead_times["merge_to_applied"] == 420.0
    assert prod.lead_times["seen_to_healthy"] == 1500.0
    assert history_json("apps:web", rows)["versions"][1]["pullRequest"] == {"number": 7, "url": "https://forge/pr/7"}
    stages = sorted(stage for key, stage, _, _ in completed_steps({"apps:web": rows}) if key[1] == "1.1.0")
    assert stages == ["applied_to_healthy", "merge_to_applied", "pr_to_merge", "seen_to_healthy", "seen_to_pr"]
    store.close()


def test_status_and_history_need_the_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automator.cli import main

    assert main(["status"]) == 2
    assert "give --state-dir DIR" in capsys.readouterr().err
    assert main(["history", "apps:web", "--state-dir", str(tmp_path / "none")]) == 2
    assert "no state.db there" in capsys.readouterr().err


def test_json_is_one_line_per_policy_and_reads_back() -> None:
    from automator.status import dump

    doc = {"generated": "t", "policies": [{"policy": "a", "clusters": []}, {"policy": "b", "clusters": []}], "x": []}
    out = io.StringIO()
    dump(doc, "json", out)
    assert json.loads(out.getvalue()) == doc
    assert out.getvalue().splitlines()[3:5] == [
        '    {"policy": "a", "clusters": []},',
        '    {"policy": "b", "clusters": []}',
    ]


def test_a_tag_the_gates_held_back_makes_the_policy_held_and_says_until_when(tmp_path: Path) -> None:
    clock = Clock()
    store = seeded(tmp_path, clock)
    record = getattr(store, "record_held_back", None)
    if record is None:
        pytest.skip("the store does not keep what the gates held back (automator.state.gates not landed)")
    from automator.policy.model import HeldTag

    due = T0 + timedelta(days=3)
    record({"apps:web": HeldTag("1.2.0", "minAge", f"1.2.0 waits for minAge 72h: due {due.isoformat()}", due)})
    [row] = build_status(store, {}, now=clock.now).policies
    assert (row.state, row.reasons) == ("held", (f"1.2.0 waits for minAge 72h: due {due.isoformat()}",))
    store.close()
