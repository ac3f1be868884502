"""run_once with notifications, in-process as the service runs it: a real registry, a real git
remote, the fake GitHub and a webhook receiver on loopback.

Without --state-dir the service's announcer remembers the PRs it saw open and asks the forge
what became of one that left; a state database rebuilt from the forge is not announced again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from automator.notify import CycleAnnouncer, Dispatcher, load_notifications
from automator.run import RunOptions, run_once
from automator.state import DB_NAME, StateStore
from tests.integration.test_state_run import Setup
from tests.servers.fake_github import GitHubState
from tests.servers.receivers import Receiver, receiver_server
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_server() as r:
        yield r


def announcer(tmp_path: Path, receiver: Receiver) -> CycleAnnouncer:
    path = tmp_path / "notifications.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Notifications\nspec:\n  notifiers:\n"
        f"    - name: hook\n      type: webhook\n      url: {receiver.url('/webhook')}\n"
    )
    settings = load_notifications(path)
    return CycleAnnouncer(settings, Dispatcher(settings))


def kinds(receiver: Receiver, notify: CycleAnnouncer) -> list[str]:
    assert notify.dispatcher.flush(20.0)
    return [d["kind"] for d in receiver.of("/webhook")]


def test_without_state_the_service_learns_a_merge_from_the_forge(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path, receiver: Receiver
) -> None:
    s = Setup(registry, github, tmp_path, "notify/memory")
    notify = announcer(tmp_path, receiver)
    options = RunOptions(s.cache, notify=notify)
    first = run_once(s.config, s.forges, options)
    assert first.groups[0].pull_request is not None
    number = first.groups[0].pull_request.number
    assert kinds(receiver, notify) == ["pullRequestOpened"]
    github.merge("octo/app", number)
    run_once(s.config, s.forges, options)
    assert kinds(receiver, notify) == ["pullRequestOpened", "pullRequestMerged"]
    assert receiver.of("/webhook")[1]["pullRequest"]["number"] == number
    run_once(s.config, s.forges, options)  # told once
    assert kinds(receiver, notify) == ["pullRequestOpened", "pullRequestMerged"]
    notify.close()


def test_a_database_rebuilt_from_the_forge_announces_nothing_old(
    registry: RunningRegistry, github: GitHubState, tmp_path: Path, receiver: Receiver
) -> None:
    s = Setup(registry, github, tmp_path, "notify/rebuilt")
    notify = announcer(tmp_path, receiver)
    with StateStore(s.state) as store:
        first = run_once(s.config, s.forges, RunOptions(s.cache, state=store, notify=notify))
    assert first.groups[0].pull_request is not None
    github.merge("octo/app", first.groups[0].pull_request.number)
    (s.state / DB_NAME).write_bytes(b"this is not sqlite\n" * 100)
    with StateStore(s.state) as store:
        run_once(s.config, s.forges, RunOptions(s.cache, state=store, notify=notify))
    assert kinds(receiver, notify) == ["pullRequestOpened"]
    notify.close()
