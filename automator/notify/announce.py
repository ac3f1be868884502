"""Each program's announcer: its records in, events out to the dispatcher, after every cycle.

:class:`CycleAnnouncer` (``automator run``) and :class:`PassAnnouncer` (``automator sync``) own
the memory the derivations need between cycles and hand the events to one
:class:`~.deliver.Dispatcher`. Both are called once per cycle or pass, after its work is done,
and never raise into it.

Merged and closed pull requests, in the automator: with ``--state-dir`` the state records each
PR's events (:func:`automator.state.record_cycle`), so the announcer compares the latest event
of every PR before and after the cycle, and a PR merged while the automator was down is still
announced by the first cycle after the restart. Without it, the announcer keeps the PRs the
last cycle held open in memory and, when one leaves the results, reads the forge's listing
(one call) to see whether it was merged or closed; a PR that leaves while no process runs, or
before a ``--once`` process's only cycle, is not announced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from automator.errors import AutomatorError
from automator.notify.config import Notifications
from automator.notify.deliver import Commenter, Dispatcher
from automator.notify.events import (
    Event,
    FailureStreaks,
    GroupLike,
    ObjectLike,
    OpenPR,
    PREventLike,
    PullRequestLike,
    RolloutWatch,
    WorkloadLike,
    departed,
    drift_corrected,
    listed_transitions,
    open_pull_requests,
    pull_request_events,
    recorded_transitions,
    sync_failed,
)

log = logging.getLogger("automator.notify")


@dataclass(frozen=True)
class CycleRecords:
    """What one automator cycle produced, as the announcer reads it.

    ``recorded``: the state's latest event of each PR before and after the cycle was recorded
    (None without ``--state-dir``); ``list_pull_requests``: the forge's listing of our PRs, read
    only when a PR left the results and there is no state."""

    revision: str
    groups: Sequence[GroupLike]
    failing: Mapping[str, str]  # policy -> why it failed this cycle
    scanned: Collection[str]
    versions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # group -> policy -> image
    recorded: tuple[Mapping[int, PREventLike], Mapping[int, PREventLike]] | None = None
    list_pull_requests: Callable[[], Sequence[PullRequestLike]] | None = None


class CycleAnnouncer:
    """The automator's: pull requests opened, updated, merged, closed; policies failing N cycles
    in a row, and recovered."""

    def __init__(self, settings: Notifications, dispatcher: Dispatcher | None = None) -> None:
        self.dispatcher = dispatcher or Dispatcher(settings)
        self.streaks = FailureStreaks(settings.failing_cycles)
        self.open: dict[int, OpenPR] = {}

    @property
    def threshold(self) -> int:
        return self.streaks.threshold

    def events(self, records: CycleRecords) -> list[Event]:
        """This cycle's events (and the memory for the next one's)."""
        rev = records.revision
        out = pull_request_events(records.groups, rev, versions=records.versions)
        if records.recorded is not None:
            before, after = records.recorded
            out += recorded_transitions(before, after, rev)
        else:
            gone = departed(self.open, records.groups)
            if gone and records.list_pull_requests is not None:
                try:
                    out += listed_transitions(gone, records.list_pull_requests(), rev)
                except AutomatorError as exc:
                    log.warning("notifications: cannot read the pull requests to see which were merged: %s", exc)
        self.open = open_pull_requests(records.groups)
        out += self.streaks.observe(records.failing, records.scanned, rev)
        return out

    def announce(self, records: CycleRecords, commenter: Commenter | None = None) -> list[Event]:
        """Derive and queue this cycle's events; never raises (the cycle's work is done)."""
        try:
            found = self.events(records)
        except Exception:
            log.exception("notifications: could not derive this cycle's events")
            return []
        self.dispatcher.publish(found, commenter)
        return found

    def close(self, timeout: float = 30.0) -> None:
        self.dispatcher.close(timeout)


class PassAnnouncer:
    """The synchronizer's: a sync failed, drift corrected, a workload unhealthy after an update."""

    def __init__(self, settings: Notifications, name: str, dispatcher: Dispatcher | None = None) -> None:
        self.name = name
        self.dispatcher = dispatcher or Dispatcher(settings)
        self.watch = RolloutWatch()
        for n in settings.notifiers:
            if n.type == "pullRequestComment":
                log.warning("notifier %s: the synchronizer's events concern no pull request; it gets none", n.name)

    def events(
        self,
        revision: str,
        errors: Sequence[str],
        objects: Sequence[tuple[str, ObjectLike]],
        workloads: Sequence[WorkloadLike] | None,
    ) -> list[Event]:
        out = sync_failed(self.name, revision, errors)
        out += drift_corrected(self.name, revision, objects)
        if workloads is not None:  # None: nothing applied (suspended, refused, failed early)
            out += self.watch.observe(self.name, revision, workloads)
        return out

    def announce(
        self,
        revision: str,
        errors: Sequence[str],
        objects: Sequence[tuple[str, ObjectLike]],
        workloads: Sequence[WorkloadLike] | None,
    ) -> list[Event]:
        """Derive and queue this pass's events; never raises (the pass's work is done)."""
        try:
            found = self.events(revision, errors, objects, workloads)
        except Exception:
            log.exception("notifications: could not derive this pass's events")
            return []
        self.dispatcher.publish(found)
        return found

    def close(self, timeout: float = 30.0) -> None:
        self.dispatcher.close(timeout)
