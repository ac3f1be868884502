"""What ``automator sync`` was asked to do: frozen values, parsed once from the flags.

:func:`automator.sync.command.config_from` turns the argparse namespace into a
:class:`SyncConfig` and reports a bad flag (or ``AUTOMATOR_SYNC_*`` variable) there, before
anything runs. Below the CLI nothing sees a namespace: the :class:`~automator.sync.runner.Runner`
takes :class:`RunnerOptions`, the service :class:`ServiceOptions`, the engine its
:class:`~automator.sync.engine.SyncOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from automator.git import Credentials
from automator.redact import redact_url
from automator.sync.engine import SyncOptions
from automator.sync.lease import LeaseConfig

if TYPE_CHECKING:
    from automator.notify import Notifications

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace() -> str:
    """The namespace of the pod this runs in (its service-account mount), else ``default``."""
    if IN_CLUSTER_NAMESPACE.is_file():
        return IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    return "default"


@dataclass(frozen=True)
class GitSource:
    """The branch to apply and how to fetch it (``--git-url``, ``--branch``, ``--cache-dir``, credentials)."""

    url: str
    branch: str
    cache_dir: Path
    credentials: Credentials = field(default_factory=Credentials)  # the token is read at parse time, never shown

    def __repr__(self) -> str:  # the URL may carry a token in its userinfo
        shown = f"url={redact_url(self.url)!r}, branch={self.branch!r}, cache_dir={str(self.cache_dir)!r}"
        return f"GitSource({shown}, credentials={self.credentials!r})"


@dataclass(frozen=True)
class Verification:
    """``--verify-signatures``: apply only commits signed by one of these keys."""

    gpg_keys: tuple[Path, ...] = ()
    allowed_signers: Path | None = None


@dataclass(frozen=True)
class CommitStatus:
    """``--commit-status``: mark each applied revision on the forge under ``context``."""

    provider: Literal["github", "gitlab"]
    context: str


@dataclass(frozen=True)
class RunnerOptions:
    """One pass: fetch ``source``, check its signature, sync it with ``sync``, wait, report."""

    source: GitSource
    sync: SyncOptions
    kubeconfig: str | None = None  # None: the in-cluster config
    context: str | None = None
    verification: Verification | None = None  # None: --no-verify-signatures
    wait: bool = False
    pod_digests: bool = True  # --pod-digests: LIST pods to record the digests they run
    timeout: float = 300.0  # seconds --wait waits for health
    status: CommitStatus | None = None  # None: --commit-status none
    notifications: Notifications | None = None  # None: no --notifications


@dataclass(frozen=True)
class ServiceOptions:
    """Service mode: resync every ``interval`` seconds, serve on ``listen``, accept webhooks."""

    interval: float = 60.0
    listen: str = "0.0.0.0:8080"
    webhook_secret_file: Path | None = None  # None: /hooks/* answer 404
    lease: LeaseConfig | None = None  # --leader-elect: apply only while holding this Lease


@dataclass(frozen=True)
class SyncConfig:
    """Everything ``automator sync`` was told: a single pass (``once``) or the service."""

    runner: RunnerOptions
    service: ServiceOptions = ServiceOptions()
    once: bool = False  # --once, or --dry-run (a dry run is always a single pass)
    output: Literal["table", "json"] = "table"
