"""One pass of the synchronizer: fetch the branch, check its signature, sync it, wait, report.

Shared by ``automator sync --once`` (:mod:`.command`) and the service loop (:mod:`.service`),
both of which sit above this module; it is built from :class:`~.settings.RunnerOptions` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial

from automator.errors import ConfigError, GitError, SyncError
from automator.git import Checkout, Git, fetch_branch, verify_commit
from automator.sync.cluster import KubeCluster
from automator.sync.engine import Synchronizer
from automator.sync.health import observe, wait_healthy
from automator.sync.model import SyncResult
from automator.sync.settings import RunnerOptions
from automator.sync.status import CommitStatusReporter, StatusPublisher


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

    def _fetch(self) -> Checkout:
        source = self.options.source
        return fetch_branch(self.git, source.url, source.branch, source.cache_dir)

    def once(self) -> SyncResult:
        result = self._once()
        if self.status is not None and not self.options.sync.dry_run:
            self.status.publish(result)
        return result

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
        self._fetcher.shutdown(wait=True, cancel_futures=True)
        self.cluster.close()
