"""One pass of the synchronizer: fetch the branch, check its signature, sync it, wait, report.

Shared by ``automator sync --once`` (:mod:`.command`) and the service loop (:mod:`.service`),
both of which sit above this module; it is built from :class:`~.settings.RunnerOptions` alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial

from automator.errors import ConfigError, GitError, SyncError
from automator.git import Checkout, Git, fetch_branch, verify_commit
from automator.notify import PassAnnouncer
from automator.sync import inventory
from automator.sync.cluster import KubeCluster
from automator.sync.engine import Synchronizer
from automator.sync.health import observe, wait_healthy
from automator.sync.model import SyncResult
from automator.sync.settings import RunnerOptions
from automator.sync.status import CommitStatusReporter, StatusPublisher

log = logging.getLogger("automator.sync")


class Runner:
    """Fetch, verify and sync one revision per :meth:`once`; ``reporter`` receives commit statuses,
    ``clock`` dates what the inventory records (applied at, health since)."""

    def __init__(
        self,
        options: RunnerOptions,
        *,
        reporter: CommitStatusReporter | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.options = options
        self.git = Git(options.source.credentials)
        self.status: StatusPublisher | None = None
        if options.status is not None:
            if reporter is None:
                raise ConfigError("--commit-status needs the forge flags of `automator sync`; run it through the CLI")
            self.status = StatusPublisher(reporter, options.status.context)
        self._refused: SyncResult | None = None  # the last commit the signature check refused
        # The first fetch starts now: git works in its own process (on the network, in production)
        # while this one imports and configures the kubernetes client.
        self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-fetch")
        self._prefetch: Future[Checkout] | None = self._fetcher.submit(self._fetch)
        try:
            self.cluster = KubeCluster.connect(options.kubeconfig, options.context, pool_size=options.sync.concurrency)
        except BaseException:
            self._fetcher.shutdown(wait=True)
            raise
        observer = partial(observe, self.cluster, concurrency=options.sync.concurrency, pods=options.pod_digests)
        self.synchronizer = Synchronizer(self.cluster, options.sync, observer=observer, clock=clock)
        self.notify: PassAnnouncer | None = None
        if options.notifications is not None:
            self.notify = PassAnnouncer(options.notifications, options.sync.name)

    def _fetch(self) -> Checkout:
        source = self.options.source
        return fetch_branch(self.git, source.url, source.branch, source.cache_dir)

    def once(self) -> SyncResult:
        if self.notify is not None and self.notify.watch.images is None:
            self._seed_watch(self.notify)
        result = self._once()
        if self.status is not None and not self.options.sync.dry_run:
            self.status.publish(result)
        if self.notify is not None and not self.options.sync.dry_run:
            self._announce(self.notify, result)
        return result

    def _seed_watch(self, notify: PassAnnouncer) -> None:
        """What the inventory says ran before this process's first pass, so that pass can tell
        a workload it gives a new image from one it finds as it was."""
        sync = self.options.sync
        try:
            before = inventory.read(self.cluster, sync.inventory_namespace, sync.name, sync.inventory_kind)
        except SyncError as exc:
            log.warning("notifications: cannot read the inventory before the first pass: %s", exc)
            return
        notify.watch.seed(before.workloads)

    @staticmethod
    def _announce(notify: PassAnnouncer, result: SyncResult) -> None:
        """The pass's events: failed, drift reverted, unhealthy after an update (on their own thread)."""
        objects = [(str(o.ref), o) for o in result.objects]
        workloads = result.report.workloads if result.report is not None else None
        notify.announce(result.revision, result.errors, objects, workloads)

    def _once(self) -> SyncResult:
        prefetch, self._prefetch = self._prefetch, None
        try:
            checkout = prefetch.result() if prefetch is not None else self._fetch()
        except GitError as exc:
            return SyncResult(revision="", errors=(f"fetch: {exc}; nothing applied or pruned",), error=exc)
        verification = self.options.verification
        if verification is not None:
            refused = self._refused
            if refused is not None and refused.revision == checkout.revision:
                return refused  # the same commit fails the same check: wait for a new one
            try:
                verify_commit(
                    self.git,
                    checkout.path,
                    checkout.revision,
                    gpg_keys=verification.gpg_keys,
                    allowed_signers=verification.allowed_signers,
                )
            except SyncError as exc:
                result = SyncResult(revision=checkout.revision, errors=(str(exc),), error=exc)
                self._refused = result if not exc.retryable else None
                return result
        try:
            result = self.synchronizer.sync(checkout.path, checkout.revision)
        except SyncError as exc:
            return SyncResult(revision=checkout.revision, errors=(str(exc),), error=exc)
        if self.options.wait and not self.options.sync.dry_run and result.ok:
            result = wait_healthy(self.cluster, result, self.options.timeout)
            result = self.synchronizer.reobserve(result)  # what the wait saw, in the inventory and the status
        return result

    def close(self) -> None:
        if self.notify is not None:  # what the last pass queued goes out before the process ends
            self.notify.close()
        self._fetcher.shutdown(wait=True, cancel_futures=True)
        self.cluster.close()
