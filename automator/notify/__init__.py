"""Notifications: events from both programs' records, sent to webhooks, Slack, Teams and PRs.

    events.py     the Event record and its derivations (pure), the trackers that need memory
    config.py     the --notifications file: validated with file, line and field; secrets by file
    payloads.py   each sink's body (pure)
    deliver.py    filters, dedupe, rate limit; httpx on a worker thread, with retries
    announce.py   the automator's and the synchronizer's announcers, called after each cycle

This package sits below ``automator.run`` and ``automator.sync`` in the import layers and reads
their records through Protocols (as :mod:`automator.state.record` reads the run's).
"""

from automator.notify.announce import CycleAnnouncer, CycleRecords, PassAnnouncer
from automator.notify.config import Notifications, Notifier, load_notifications
from automator.notify.deliver import Commenter, Dispatcher
from automator.notify.events import EVENT_KINDS, Event, PullRequestRef, streaks_from

__all__ = [
    "EVENT_KINDS",
    "Commenter",
    "CycleAnnouncer",
    "CycleRecords",
    "Dispatcher",
    "Event",
    "Notifications",
    "Notifier",
    "PassAnnouncer",
    "PullRequestRef",
    "load_notifications",
    "streaks_from",
]
