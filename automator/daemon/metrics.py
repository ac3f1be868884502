"""The automator service's Prometheus metrics, served on ``GET /metrics``.

One :class:`Metrics` per service, each with a registry of its own (two services in one process,
as in the tests, do not share counters). :meth:`Metrics.record` renders a cycle's
:class:`~automator.run.RunSummary`; what the loop itself observes (duration, triggers, listings,
webhooks) it sets on the attributes directly, and :meth:`Metrics.render` is the exposition.
Beside them, :func:`automator.buildinfo.instrument`'s build info and process metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from automator.buildinfo import instrument
from automator.run import RunSummary
from automator.verify import default_verifier

__all__ = ["LEAD_TIME_BUCKETS", "Metrics"]

# a minute to a week: a pull request merged within the hour or left for days, a rollout in seconds
LEAD_TIME_BUCKETS = (10, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)


class Metrics:
    """The service's instruments; ``prometheus_client`` is used here only."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        instrument(r, "automator")
        self.cycles = Counter("automator_cycles", "Cycles by trigger and outcome.", ["trigger", "outcome"], registry=r)
        self.duration = Histogram(
            "automator_cycle_duration_seconds",
            "Wall time of one cycle.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.running = Gauge("automator_cycle_running", "1 while a cycle runs.", registry=r)
        self.leader = Gauge("automator_leader", "1 while this replica holds the Lease (--leader-elect).", registry=r)
        self.last_success = Gauge(
            "automator_last_success_timestamp_seconds", "When a cycle last finished without error.", registry=r
        )
        self.next_cycle = Gauge(
            "automator_next_cycle_timestamp_seconds", "When the next scheduled cycle runs.", registry=r
        )
        self.policies = Gauge("automator_policies", "Policies of the last cycle by state.", ["state"], registry=r)
        self.pending = Gauge(
            "automator_updates_pending", "Policies whose fields the last cycle found behind.", registry=r
        )
        self.groups = Counter(
            "automator_pull_requests", "Pull-request (or direct-commit) outcomes.", ["outcome"], registry=r
        )
        self.forge = Counter("automator_forge_requests", "Forge API requests.", ["kind"], registry=r)
        self.listings = Counter(
            "automator_registry_listings", "Repository listings by where they came from.", ["source"], registry=r
        )
        self.webhooks = Counter("automator_webhooks", "Webhook deliveries.", ["source", "outcome"], registry=r)
        self.lead_time = Histogram(
            "automator_lead_time_seconds",
            "Time a version took from one step to the next (first seen, pull request, merged, applied, healthy).",
            ["stage"],
            buckets=LEAD_TIME_BUCKETS,
            registry=r,
        )

        r.register(_Verifications())

    def record(self, summary: RunSummary) -> None:
        self.policies.labels("ok").set(sum(1 for s in summary.plan.scan if s.ok))
        self.policies.labels("failed").set(len(summary.plan.failed) + len(summary.policy_errors))
        self.pending.set(len(summary.plan.update.by_policy()))
        for group in summary.groups:
            self.groups.labels(group.outcome).inc()
        self.forge.labels("read").inc(summary.forge_reads)
        self.forge.labels("write").inc(summary.forge_writes)

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument (``content_type`` says which)."""
        return generate_latest(self.registry)


class _Verifications:
    """``automator_signature_verifications_total{result}`` (and ``result="cached"``, verdicts
    answered from the cache): the process's verifier's counts, read at each scrape."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "automator_signature_verifications", "Signature verifications by result.", labels=["result"]
        )
        for result, count in default_verifier().stats.snapshot().items():
            family.add_metric([result], count)
        yield family
