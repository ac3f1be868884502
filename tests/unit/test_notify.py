"""Notifications: each event derived from the records the programs keep, the notifiers' filters,
the dedupe window and the rate limit, the config file's errors, and each sink's body."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from automator.errors import ConfigError, ForgeUnavailable, PolicyFileError
from automator.forge import NoneForge, PRState, PullRequest
from automator.notify import CycleAnnouncer, CycleRecords, Dispatcher, Event, Notifications, Notifier, PullRequestRef
from automator.notify.config import load_notifications
from automator.notify.events import (
    FailureStreaks,
    RolloutWatch,
    drift_corrected,
    pull_request_events,
    recorded_transitions,
    streaks_from,
    sync_failed,
)
from automator.notify.payloads import comment_body, slack_body, teams_body, webhook_body
from automator.run import GroupResult
from automator.state import PREventRecord
from automator.sync.model import Action, ObjectRef, ObjectResult, WorkloadReport
from tests.servers.receivers import ShapeError, check_slack, check_teams, check_webhook

T = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def pr(number: int, state: str = "open", title: str = "Update app to 1.1.0") -> PullRequest:
    marker = PRState("app", {"app": "reg/app:1.1.0"})
    return PullRequest(number, f"https://forge/pr/{number}", "automator/app", "main", title, "", state, marker=marker)  # type: ignore[arg-type]


def group(outcome: str, number: int | None = 7, sha: str | None = "abc123") -> GroupResult:
    return GroupResult("app", outcome, "why", "automator/app", sha, pr(number) if number else None, ("app",))  # type: ignore[arg-type]


def event(kind: str = "pullRequestOpened", key: str = "k", policies: tuple[str, ...] = ("app",), **kw: Any) -> Event:
    return Event(kind, "automator", "info", "app", "m", key, T, policies=policies, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- events: the automator


@pytest.mark.parametrize(
    ("outcome", "kind", "key"),
    [
        ("opened", "pullRequestOpened", "pullRequestOpened:7"),
        ("updated", "pullRequestUpdated", "pullRequestUpdated:7:abc123"),
        ("closed", "pullRequestClosed", "pullRequestClosed:7"),
    ],
)
def test_pull_request_outcomes_become_events(outcome: str, kind: str, key: str) -> None:
    [e] = pull_request_events([group(outcome)], "rev", versions={"app": {"app": "reg/app:1.1.0"}}, at=T)
    assert (e.kind, e.key, e.subject, e.policies) == (kind, key, "app", ("app",))
    assert e.pull_request == PullRequestRef(7, "https://forge/pr/7", "Update app to 1.1.0", "automator/app")
    assert e.versions == (("app", "reg/app:1.1.0"),)


@pytest.mark.parametrize("outcome", ["unchanged", "skipped", "failed", "committed"])
def test_other_outcomes_are_not_pull_request_events(outcome: str) -> None:
    assert pull_request_events([group(outcome)], "rev") == []


def test_each_update_of_a_pr_is_its_own_event_but_a_repeat_is_not() -> None:
    first = pull_request_events([group("updated", sha="a")], "rev")[0].key
    assert first != pull_request_events([group("updated", sha="b")], "rev")[0].key
    assert first == pull_request_events([group("updated", sha="a")], "rev")[0].key


def rec(number: int, event_name: str) -> PREventRecord:
    return PREventRecord("app", number, f"https://forge/pr/{number}", event_name, {"app": "reg/app:1.1.0"}, T)  # type: ignore[arg-type]


def test_merged_and_closed_come_from_the_state_transitions() -> None:
    before = {1: rec(1, "opened"), 2: rec(2, "updated"), 3: rec(3, "merged")}
    after = {1: rec(1, "merged"), 2: rec(2, "closed"), 3: rec(3, "merged"), 4: rec(4, "opened")}
    events = recorded_transitions(before, after, "rev", at=T)
    assert [(e.kind, e.pull_request.number if e.pull_request else 0) for e in events] == [
        ("pullRequestMerged", 1),
        ("pullRequestClosed", 2),
    ]
    assert events[0].policies == ("app",)  # from the recorded versions


def test_a_database_rebuilt_from_the_forge_is_not_news() -> None:
    old = PREventRecord("app", 9, "u", "merged", {}, T, rebuilt=True)
    assert recorded_transitions({}, {9: old}, "rev") == []


def test_without_state_the_announcer_asks_the_forge_what_became_of_prs_that_left() -> None:
    settings = Notifications(())
    announcer = CycleAnnouncer(settings)
    calls: list[int] = []

    def listing() -> list[PullRequest]:
        calls.append(1)
        return [pr(7, "merged"), pr(8, "open")]

    first = CycleRecords("r1", [group("opened")], {}, {"app"}, list_pull_requests=listing)
    assert [e.kind for e in announcer.events(first)] == ["pullRequestOpened"]
    assert calls == []  # nothing left: no forge call
    second = CycleRecords("r2", [], {}, {"app"}, list_pull_requests=listing)
    [merged] = announcer.events(second)
    assert (merged.kind, merged.subject, merged.pull_request.number if merged.pull_request else 0) == (
        "pullRequestMerged",
        "app",
        7,
    )
    assert announcer.events(second) == []  # told once: it is no longer remembered open


def test_a_policy_failing_n_cycles_is_one_event_and_recovering_is_another() -> None:
    streaks = FailureStreaks(3)
    seen = []
    for failing in [{"a": "boom"}, {"a": "boom"}, {"a": "boom"}, {"a": "boom"}, {}, {}]:
        seen.append([e.kind for e in streaks.observe(failing, {"a", "b"}, "rev", at=T)])
    assert seen == [[], [], ["policyFailing"], [], ["policyRecovered"], []]


def test_a_policy_that_fails_less_than_n_cycles_says_nothing() -> None:
    streaks = FailureStreaks(3)
    for failing in [{"a": "x"}, {"a": "x"}, {}, {"a": "x"}, {"a": "x"}]:
        assert streaks.observe(failing, {"a"}, "rev") == []


def test_streaks_seeded_from_the_state_survive_a_restart() -> None:
    assert streaks_from([{"a", "b"}, {"a"}, {"a", "c"}]) == {"a": 3, "c": 1}
    streaks = FailureStreaks(3)
    streaks.seed(streaks_from([{"a"}, {"a"}]))
    [e] = streaks.observe({"a": "boom"}, {"a"}, "rev")
    assert (e.kind, e.policies, e.details) == ("policyFailing", ("a",), ("boom",))


# --------------------------------------------------------------------------- events: the synchronizer


def test_sync_errors_are_one_event_keyed_by_revision_and_errors() -> None:
    [e] = sync_failed("prod", "abcdef1234567890", ["render: bad", "apply: no"], at=T)
    assert (e.kind, e.source, e.severity) == ("syncFailed", "sync", "error")
    assert e.message == "sync prod failed at abcdef123456: render: bad (and 1 more)"
    assert e.details == ("render: bad", "apply: no")
    assert e.key != sync_failed("prod", "abcdef1234567890", ["render: other"])[0].key
    assert sync_failed("prod", "rev", []) == []


def obj(kind: str, name: str, action: Action, drift: tuple[str, ...] = ()) -> tuple[str, ObjectResult]:
    ref = ObjectRef("apps" if kind == "Deployment" else "", "v1", kind, "ns", name)
    return str(ref), ObjectResult(ref, action, drift=drift)


def test_drift_corrected_lists_the_reverted_objects_and_fields() -> None:
    objects = [
        obj("ConfigMap", "settings", Action.CONFIGURED, ("/data/level",)),
        obj("Deployment", "web", Action.UNCHANGED),
        obj("ConfigMap", "other", Action.CONFIGURED),  # changed in git, not drifted
    ]
    [e] = drift_corrected("prod", "rev", objects, at=T)
    assert e.objects == ("ConfigMap ns/settings",)
    assert e.details == ("ConfigMap ns/settings: /data/level",)
    assert drift_corrected("prod", "rev", objects[1:]) == []


def workload(images: tuple[str, ...], health: str, reason: str = "") -> WorkloadReport:
    return WorkloadReport("Deployment", "ns", "web", images, health, reason, T)


def test_a_workload_failed_after_a_new_image_is_reported_once() -> None:
    watch = RolloutWatch()
    watch.seed([workload(("nginx:1.25",), "Ready")])
    assert watch.observe("prod", "r2", [workload(("nginx:1.27",), "Progressing")]) == []
    [e] = watch.observe("prod", "r2", [workload(("nginx:1.27",), "Failed", "progress deadline exceeded")])
    assert (e.kind, e.objects) == ("workloadUnhealthy", ("Deployment ns/web",))
    assert "nginx:1.27" in e.message and "progress deadline exceeded" in e.message
    assert watch.observe("prod", "r2", [workload(("nginx:1.27",), "Failed")]) == []  # told once


def test_a_workload_failing_without_an_update_is_not_unhealthy_after_an_update() -> None:
    watch = RolloutWatch()
    watch.seed([workload(("nginx:1.25",), "Ready")])
    assert watch.observe("prod", "r1", [workload(("nginx:1.25",), "Failed")]) == []
    unseeded = RolloutWatch()  # no inventory read: the first pass only learns the images
    assert unseeded.observe("prod", "r1", [workload(("nginx:1.25",), "Failed")]) == []


def test_a_rollout_that_becomes_ready_ends_the_watch() -> None:
    watch = RolloutWatch()
    watch.seed([])
    assert watch.observe("prod", "r1", [workload(("nginx:1.25",), "Ready")]) == []
    assert watch.observe("prod", "r1", [workload(("nginx:1.25",), "Failed")]) == []


# --------------------------------------------------------------------------- filters, dedupe, rate limit


def notifier(**kw: Any) -> Notifier:
    return Notifier(kw.pop("name", "n"), kw.pop("type", "webhook"), lambda: "http://127.0.0.1:9/", **kw)


@pytest.mark.parametrize(
    ("kw", "e", "wanted"),
    [
        ({}, event(), True),
        ({"events": frozenset({"pullRequestMerged"})}, event(), False),
        ({"events": frozenset({"pullRequestOpened"})}, event(), True),
        ({"policies": ("ap*",)}, event(), True),
        ({"policies": ("web", "db")}, event(), False),
        ({"policies": ("web",)}, event("syncFailed", policies=()), True),  # names no policy
        ({"type": "pullRequestComment"}, event(), False),  # no PR to comment on
        ({"type": "pullRequestComment"}, event(pull_request=PullRequestRef(1, "u")), True),
    ],
)
def test_the_events_and_policies_filters(kw: dict[str, Any], e: Event, wanted: bool) -> None:
    assert notifier(**kw).wants(e) is wanted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_key_is_sent_once_within_the_dedupe_window(tmp_path: Path) -> None:
    clock = Clock()
    d = Dispatcher(Notifications((notifier(dedupe=60.0),)), clock=clock)
    d.dedupe.wall = clock
    assert len(d.route([event(key="a"), event(key="a")])) == 1  # two derivations of one event
    assert d.route([event(key="a")]) == []
    assert len(d.route([event(key="b")])) == 1
    clock.now += 61
    assert len(d.route([event(key="a")])) == 1
    assert d.stats[("n", "deduped")] == 1


def test_the_dedupe_window_holds_across_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    settings = Notifications((notifier(dedupe=3600.0),))
    first = Dispatcher(settings, dedupe_file=tmp_path / "sent.json")
    assert len(first.route([event(key="a")])) == 1
    second = Dispatcher(settings, dedupe_file=tmp_path / "sent.json")
    assert second.route([event(key="a")]) == []
    assert Dispatcher(settings).route([event(key="a")]) != []  # in memory only: a new process forgets


def test_the_rate_limit_drops_what_is_over_it_and_recovers() -> None:
    clock = Clock()
    d = Dispatcher(Notifications((notifier(rate_count=2, rate_per=60.0, dedupe=0.0),)), clock=clock)
    assert len(d.route([event(key=str(i)) for i in range(5)])) == 2
    assert d.stats[("n", "limited")] == 3
    clock.now += 60
    assert len(d.route([event(key="3")])) == 1  # a limited event was not marked as sent


def test_a_failing_comment_is_retried_when_the_forge_says_it_may_help() -> None:
    class Flaky(NoneForge):
        fails = 1

        def comment_on_pull_request(self, number: int, body: str) -> None:
            if self.fails:
                self.fails -= 1
                raise ForgeUnavailable("GitHub is down")
            super().comment_on_pull_request(number, body)

    forge, slept = Flaky(), []
    d = Dispatcher(Notifications((notifier(type="pullRequestComment"),)), sleep=slept.append)
    assert d.deliver(d.settings.notifiers[0], event(pull_request=PullRequestRef(7, "u")), forge)
    assert len(forge.comments[7]) == 1 and "Pull request opened" in forge.comments[7][0]
    assert slept == [1.0]


def test_publish_never_raises_and_delivers_on_its_own_thread() -> None:
    forge = NoneForge()
    d = Dispatcher(Notifications((notifier(type="pullRequestComment"),)))
    d.publish([event(pull_request=PullRequestRef(3, "u"))], forge)
    assert d.flush(10.0)
    assert list(forge.comments) == [3]
    d.close()


# --------------------------------------------------------------------------- the file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifications.yaml"
    path.write_text("apiVersion: automator.dev/v1alpha1\nkind: Notifications\n" + text)
    return path


def test_a_complete_file_loads(tmp_path: Path) -> None:
    (tmp_path / "slack").write_text("http://127.0.0.1:1/slack/T0/B0/x\n")
    (tmp_path / "key").write_text("s3cret\n")
    path = write(
        tmp_path,
        "spec:\n  failingCycles: 5\n  notifiers:\n"
        "    - name: hook\n      type: webhook\n      url: http://127.0.0.1:1/webhook\n"
        f"      secretFile: {tmp_path / 'key'}\n      events: [syncFailed]\n      policies: ['app*']\n"
        "      rateLimit: {count: 3, per: 10s}\n      dedupe: 0s\n"
        f"    - name: chat\n      type: slack\n      urlFile: {tmp_path / 'slack'}\n"
        "    - name: pr\n      type: pullRequestComment\n",
    )
    got = load_notifications(path)
    assert got.failing_cycles == 5
    hook, chat, comment = got.notifiers
    assert (hook.events, hook.policies, hook.rate_count, hook.rate_per, hook.dedupe) == (
        frozenset({"syncFailed"}),
        ("app*",),
        3,
        10.0,
        0.0,
    )
    assert hook.secret is not None and hook.secret() == b"s3cret"
    assert chat.url is not None and chat.url() == "http://127.0.0.1:1/slack/T0/B0/x"
    assert (comment.type, comment.url, chat.dedupe, chat.rate_count) == ("pullRequestComment", None, 3600.0, 20)
    assert "T0/B0" not in repr(got)  # the secret URL is never shown


@pytest.mark.parametrize(
    ("spec", "where", "says"),
    [
        (
            "    - name: a\n      type: webhook\n      url: http://x\n      events: [prOpened]\n",
            ":8:7:",
            "unknown event",
        ),
        ("    - name: a\n      type: slack\n      url: http://x\n", ":5:", "urlFile"),
        ("    - name: a\n      type: webhook\n", ":5:", "exactly one of url and urlFile"),
        ("    - name: a\n      type: email\n      url: http://x\n", ":6:", "[spec.notifiers[0].type]"),
        (
            "    - name: a\n      type: webhook\n      url: http://x\n      rateLimt: {count: 1}\n",
            ":8:",
            "did you mean 'rateLimit'",
        ),
        ("    - name: a\n      type: webhook\n      url: http://x\n      dedupe: 5\n", ":8:", "dedupe"),
        ("    - name: a\n      type: webhook\n      url: ftp://x\n", ":7:12:", "http"),
    ],
)
def test_errors_name_the_file_line_and_field(tmp_path: Path, spec: str, where: str, says: str) -> None:
    path = write(tmp_path, "spec:\n  notifiers:\n" + spec)
    with pytest.raises(PolicyFileError) as err:
        load_notifications(path)
    assert str(err.value).startswith(str(path) + where), str(err.value)
    assert says in str(err.value)


def test_a_missing_secret_file_fails_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, f"spec:\n  notifiers:\n    - name: a\n      type: teams\n      urlFile: {tmp_path / 'no'}\n")
    with pytest.raises(ConfigError, match=r"spec.notifiers\[0\].urlFile"):
        load_notifications(path)


def test_a_rotated_secret_is_read_again(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("one\n")
    path = write(
        tmp_path,
        f"spec:\n  notifiers:\n    - name: a\n      type: webhook\n      url: http://x\n      secretFile: {key}\n",
    )
    [n] = load_notifications(path).notifiers
    assert n.secret is not None and n.secret() == b"one"
    key.write_text("two-rotated\n")
    assert n.secret() == b"two-rotated"


# --------------------------------------------------------------------------- payloads


def full_event() -> Event:
    return Event(
        "pullRequestMerged",
        "automator",
        "info",
        "app <&>",
        "pull request #7 for app merged",
        "pullRequestMerged:7",
        T,
        revision="0123456789abcdef",
        policies=("app",),
        pull_request=PullRequestRef(7, "https://forge/pr/7", "Update app", "automator/app"),
        versions=(("app", "reg/app:1.1.0"),),
        details=("a" * 5000,),
    )


def test_the_webhook_body_follows_the_documented_schema() -> None:
    body = webhook_body(full_event(), "id-1", 1_800_000_000)
    headers = {
        "x-automator-timestamp": "1800000000",
        "x-automator-event": "pullRequestMerged",
        "content-type": "application/json",
    }
    doc = check_webhook(headers, body, None, now=1_800_000_000)
    assert doc["pullRequest"] == {
        "number": 7,
        "url": "https://forge/pr/7",
        "title": "Update app",
        "branch": "automator/app",
    }
    assert (doc["occurredAt"], doc["versions"]) == ("2026-12-02T03:00:00Z", {"app": "reg/app:1.1.0"})
    with pytest.raises(ShapeError, match="replay"):
        check_webhook(headers, body, None, now=1_800_000_000 + 3600)


def test_slack_blocks_escape_and_fit_slacks_limits() -> None:
    doc = check_slack(json.dumps(slack_body(full_event())).encode())
    assert doc["blocks"][0]["text"]["text"] == "Pull request merged: app <&>"  # plain_text: as written
    assert "&lt;https://forge/pr/7|" not in doc["blocks"][1]["text"]["text"]
    assert "<https://forge/pr/7|Open pull request #7>" in doc["blocks"][1]["text"]["text"]
    assert len(doc["blocks"][-1]["text"]["text"]) <= 3000


def test_teams_gets_an_adaptive_card() -> None:
    doc = check_teams(json.dumps(teams_body(full_event())).encode())
    card = doc["attachments"][0]["content"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open pull request #7", "url": "https://forge/pr/7"}]
    assert {"title": "Revision", "value": "0123456789ab"} in card["body"][2]["facts"]


def test_the_comment_is_markdown_with_the_details() -> None:
    text = comment_body(event("policyFailing", details=("registry said 500",)))
    assert text.startswith("**Policy failing: app**") and "```\nregistry said 500\n```" in text


def test_a_url_is_never_logged_when_delivery_fails(caplog: pytest.LogCaptureFixture) -> None:
    secret_url = "http://127.0.0.1:9/slack/T0/B0/very-secret"
    n = Notifier("chat", "slack", lambda: secret_url, timeout=2.0)
    d = Dispatcher(Notifications((n,)), sleep=lambda _: None)
    with caplog.at_level(logging.WARNING, logger="automator.notify"):
        assert not d.deliver(n, event())
    assert "not delivered after 3 attempts" in caplog.text
    assert "very-secret" not in caplog.text and d.stats[("chat", "failed")] == 1


def test_the_counts_reach_the_services_metrics() -> None:
    from prometheus_client import generate_latest

    from automator.daemon.metrics import Metrics
    from automator.notify.metrics import count_notifications

    d = Dispatcher(Notifications((notifier(name="ops", dedupe=60.0),)))
    metrics = Metrics()
    count_notifications(metrics.registry, d)
    d.route([event(key="a")])
    d.route([event(key="a")])  # deduped
    text = generate_latest(metrics.registry).decode()
    assert 'automator_notifications_total{notifier="ops",outcome="deduped"} 1.0' in text
    d.stats[("ops", "sent")] += 2  # what the delivery thread counts, read at each scrape
    assert (
        'automator_notifications_total{notifier="ops",outcome="sent"} 2.0' in generate_latest(metrics.registry).decode()
    )
