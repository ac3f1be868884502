"""Delivery to real receivers on loopback: each sink's body as the receiver checks it (the HMAC
verified, Slack's blocks, the Adaptive Card), the retries on 5xx/429, no retry on a refusal,
and a rotated secret picked up without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from automator.notify import Dispatcher, Event, PullRequestRef, load_notifications
from tests.servers.receivers import Receiver, receiver_server

SECRET = b"hmac-key-1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_server(SECRET) as r:
        yield r


def merged() -> Event:
    return Event(
        "pullRequestMerged",
        "automator",
        "info",
        "podinfo",
        "pull request #7 for podinfo merged",
        "pullRequestMerged:7",
        datetime(2026, 12, 2, tzinfo=UTC),
        revision="0123456789abcdef",
        policies=("podinfo",),
        pull_request=PullRequestRef(7, "https://github.example/o/r/pull/7", "Update podinfo", "automator/podinfo"),
        versions=(("podinfo", "ghcr.io/x/podinfo:6.5.0"),),
    )


def settings_file(tmp_path: Path, receiver: Receiver) -> Path:
    (tmp_path / "key").write_bytes(SECRET + b"\n")
    (tmp_path / "slack-url").write_text(receiver.url("/slack/T000/B000/XXXX") + "\n")
    (tmp_path / "teams-url").write_text(receiver.url("/teams/workflows/abc?sig=secret") + "\n")
    path = tmp_path / "notifications.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Notifications\nspec:\n  notifiers:\n"
        f"    - name: hook\n      type: webhook\n      url: {receiver.url('/webhook')}\n"
        f"      secretFile: {tmp_path / 'key'}\n"
        f"    - name: chat\n      type: slack\n      urlFile: {tmp_path / 'slack-url'}\n"
        f"    - name: teams\n      type: teams\n      urlFile: {tmp_path / 'teams-url'}\n"
    )
    return path


def test_every_sink_gets_its_documented_shape(tmp_path: Path, receiver: Receiver) -> None:
    d = Dispatcher(load_notifications(settings_file(tmp_path, receiver)))
    d.publish([merged()])
    assert d.flush(20.0)
    d.close()
    assert receiver.refused == []
    [hook] = receiver.of("/webhook")
    assert (hook["kind"], hook["subject"], hook["pullRequest"]["number"]) == ("pullRequestMerged", "podinfo", 7)
    assert hook["versions"] == {"podinfo": "ghcr.io/x/podinfo:6.5.0"}
    [slack] = receiver.of("/slack")
    assert slack["text"].startswith("Pull request merged: podinfo")
    [teams] = receiver.of("/teams")
    assert teams["attachments"][0]["content"]["version"] == "1.4"
    assert (d.stats[("hook", "sent")], d.stats[("chat", "sent")], d.stats[("teams", "sent")]) == (1, 1, 1)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_transient_answer_is_retried(tmp_path: Path, receiver: Receiver, status: int) -> None:
    settings = load_notifications(settings_file(tmp_path, receiver))
    d = Dispatcher(settings, backoff=0.0)
    receiver.fail_next(status, status)
    assert d.deliver(settings.notifiers[0], merged())
    assert receiver.attempts == 3 and len(receiver.of("/webhook")) == 1


def test_a_refusal_is_not_retried_and_the_cycle_never_sees_it(tmp_path: Path, receiver: Receiver) -> None:
    settings = load_notifications(settings_file(tmp_path, receiver))
    d = Dispatcher(settings, backoff=0.0)
    receiver.fail_next(404)
    assert not d.deliver(settings.notifiers[0], merged())
    assert receiver.attempts == 1 and d.stats[("hook", "failed")] == 1


def test_a_wrong_signature_is_refused_and_a_rotated_secret_is_used(tmp_path: Path, receiver: Receiver) -> None:
    settings = load_notifications(settings_file(tmp_path, receiver))
    hook = settings.notifiers[0]
    d = Dispatcher(settings, backoff=0.0)
    receiver.secret = b"hmac-key-2"  # the receiver rotated first: our old key no longer verifies
    assert not d.deliver(hook, merged())
    assert "does not verify" in receiver.refused[0]
    (tmp_path / "key").write_text("hmac-key-2\n")  # the Secret is updated in place
    assert d.deliver(hook, merged())
    assert len(receiver.of("/webhook")) == 1
