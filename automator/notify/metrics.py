"""``automator_notifications_total{notifier,outcome}`` on a service's ``/metrics``.

The dispatcher counts what became of each event per notifier (sent, failed, dropped, deduped,
limited) in :attr:`~automator.notify.deliver.Dispatcher.stats`; this collector reads those
counts when Prometheus scrapes, so the dispatcher stays free of any metrics library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric

from automator.notify.deliver import Dispatcher

__all__ = ["count_notifications"]

Counts = Callable[[], Mapping[tuple[str, str], int]]


class _NotificationCounts:
    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def describe(self) -> list[Metric]:
        return []  # registering must not read the counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "automator_notifications", "Notifications by notifier and outcome.", labels=["notifier", "outcome"]
        )
        for (notifier, outcome), value in sorted(_copy(self.counts())):
            family.add_metric([notifier, outcome], value)
        yield family


def _copy(counts: Mapping[tuple[str, str], int]) -> list[tuple[tuple[str, str], int]]:
    """The counts as they are now: the delivery thread may add a key while a scrape reads."""
    for _ in range(5):
        try:
            return list(counts.items())
        except RuntimeError:  # changed size during iteration: read again
            continue
    return []


def count_notifications(registry: CollectorRegistry, dispatcher: Dispatcher) -> None:
    """Expose ``dispatcher``'s counts on ``registry``."""
    registry.register(_NotificationCounts(lambda: dispatcher.stats))
