"""Commit statuses: one per change of state, never a failure of the sync itself."""

from __future__ import annotations

import logging

import pytest

from automator.errors import ClusterUnavailable, ConfigError, ForgeError, RenderError, VerificationError
from automator.forge import NoneForge
from automator.httpd import parse_listen
from automator.sync.model import Action, ObjectRef, ObjectResult, SyncResult
from automator.sync.service import next_delay
from automator.sync.status import StatusPublisher, describe

REF = ObjectRef("", "v1", "ConfigMap", "ns", "a")


def test_describe() -> None:
    ok = SyncResult("abc", (ObjectResult(REF, Action.CREATED), ObjectResult(REF, Action.UNCHANGED)))
    assert describe(ok) == ("success", "applied: 1 created, 1 unchanged")
    bad = SyncResult("abc", (ObjectResult(REF, Action.FAILED, error="boom"),), errors=("boom",))
    assert describe(bad) == ("failure", "1 error(s): boom")
    assert describe(SyncResult("abc", suspended=True))[0] == "pending"
    long = SyncResult("abc", errors=("x" * 500,))
    assert len(describe(long)[1]) == 140


def test_publishes_once_per_revision_and_state() -> None:
    forge = NoneForge()
    publisher = StatusPublisher(forge, "automator/sync/prod")
    ok = SyncResult("abc", (ObjectResult(REF, Action.CREATED),))
    publisher.publish(ok)
    publisher.publish(ok)
    publisher.publish(SyncResult("abc", errors=("boom",)))
    publisher.publish(SyncResult("", errors=("fetch failed",)))  # no commit to mark
    assert [(s.sha, s.state, s.context) for s in forge.statuses] == [
        ("abc", "success", "automator/sync/prod"),
        ("abc", "failure", "automator/sync/prod"),
    ]


class Refusing:
    def set_commit_status(
        self, sha: str, state: str, context: str, description: str = "", url: str | None = None
    ) -> None:
        raise ForgeError("403 from the forge")


def test_a_forge_failure_does_not_fail_the_sync(caplog: pytest.LogCaptureFixture) -> None:
    publisher = StatusPublisher(Refusing(), "ctx")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        publisher.publish(SyncResult("abc"))  # returns: the sync goes on
    assert [r.getMessage() for r in caplog.records] == ["cannot set the commit status on abc: 403 from the forge"]


def test_failed_runs_are_retried_sooner_with_backoff() -> None:
    assert [next_delay(60, n) for n in range(6)] == [60, 5, 10, 20, 40, 60]
    assert next_delay(3600, 100) == 3600
    transient = ClusterUnavailable("the API server answered 503")
    assert [next_delay(60, n, transient) for n in range(1, 4)] == [5, 10, 20]


def test_a_permanent_failure_waits_for_the_interval_not_the_backoff() -> None:
    refused = VerificationError("commit abc is not signed by a trusted key")
    assert [next_delay(60, n, refused) for n in range(1, 4)] == [60, 60, 60]
    assert next_delay(60, 1, RenderError("a.yaml:3: invalid YAML")) == 60


def test_listen_addresses() -> None:
    assert parse_listen("[::]:8080") == ("::", 8080)
    assert parse_listen("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_listen(":8080") == ("0.0.0.0", 8080)
    with pytest.raises(ConfigError, match="expected host:port"):
        parse_listen("8080")
