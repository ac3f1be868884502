"""``automator sync``: flags (each also from ``AUTOMATOR_SYNC_*``), one run or the service loop.

Exit codes: 0 success, 1 something failed to fetch, render, apply or become healthy, 2 usage or
configuration errors.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from automator.duration import positive_duration
from automator.envflags import Env
from automator.errors import ConfigError, GitError, SyncError
from automator.git import Checkout, Credentials, Git, fetch_branch, verify_commit
from automator.sync.cluster import KubeCluster
from automator.sync.engine import Synchronizer, SyncOptions
from automator.sync.health import wait_healthy
from automator.sync.model import SyncResult
from automator.sync.status import StatusPublisher

ENV_PREFIX = "AUTOMATOR_SYNC_"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

log = logging.getLogger("automator.sync")


ENV = Env(ENV_PREFIX)
_env, _env_bool, _env_list = ENV, ENV.bool, ENV.list


def duration(flag: str, *, zero_ok: bool = False) -> Callable[[str], float]:
    """The argparse type of a duration flag: the one grammar (:mod:`automator.duration`)."""

    def parse(text: str) -> float:
        try:
            return positive_duration(flag, text, zero_ok=zero_ok)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sync`` flags; every default can come from ``AUTOMATOR_SYNC_<FLAG>``."""
    src = parser.add_argument_group("source")
    src.add_argument("--git-url", default=_env("git_url"), help="repository URL (https://, ssh://, or a path)")
    src.add_argument("--branch", default=_env("branch") or "main", help="branch to apply (default: main)")
    src.add_argument("--path", dest="paths", action="append", default=None, help="path in the repo (repeatable)")
    src.add_argument("--cache-dir", default=_env("cache_dir"), help="where fetched checkouts are kept")
    src.add_argument("--git-username", default=_env("git_username") or "x-access-token", help="user for the token")
    src.add_argument("--git-token-file", default=_env("git_token_file"), help="file holding an HTTPS token")
    src.add_argument("--ssh-key", default=_env("ssh_key"), help="SSH private key file")
    src.add_argument("--ssh-known-hosts", default=_env("ssh_known_hosts"), help="known_hosts (default: accept new)")
    src.add_argument(
        "--verify-signatures",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("verify_signatures", False),
        help="apply only commits signed by --gpg-key or --allowed-signers keys",
    )
    src.add_argument("--gpg-key", dest="gpg_keys", action="append", default=None, help="trusted GPG public key file")
    src.add_argument("--allowed-signers", default=_env("allowed_signers"), help="SSH allowed-signers file")

    cl = parser.add_argument_group("cluster")
    cl.add_argument("--kubeconfig", default=_env("kubeconfig"), help="default: in-cluster config")
    cl.add_argument("--context", default=_env("context"), help="kubeconfig context")
    cl.add_argument(
        "--default-namespace",
        default=_env("default_namespace") or "default",
        help="namespace for namespaced objects that name none",
    )
    cl.add_argument("--name", default=_env("name") or "default", help="this sync's identity (inventory, label)")
    cl.add_argument("--inventory-namespace", default=_env("inventory_namespace"), help="default: the agent's namespace")
    cl.add_argument("--inventory-kind", choices=("configmap", "secret"), default=_env("inventory_kind") or "configmap")
    cl.add_argument("--concurrency", type=int, default=_env("concurrency") or "8", help="parallel applies")

    beh = parser.add_argument_group("behaviour")
    beh.add_argument(
        "--interval", type=duration("--interval"), default=_env("interval") or "1m", help="service resync period"
    )
    beh.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("prune", True),
        help="delete objects that left the repo (only those still labelled ours)",
    )
    beh.add_argument(
        "--allow-empty",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("allow_empty", False),
        help="let an empty render prune everything",
    )
    beh.add_argument(
        "--take-over",
        action="store_true",
        default=_env_bool("take_over", False),
        help="adopt an inventory another source recorded under this --name (moving a sync on purpose)",
    )
    beh.add_argument(
        "--force-conflicts",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("force_conflicts", True),
        help="take fields owned by other managers",
    )
    beh.add_argument(
        "--ignore-field",
        dest="ignore_fields",
        action="append",
        default=None,
        help="[Kind:]/json/pointer never reverted",
    )
    beh.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("wait", False),
        help="wait for rollouts (Deployments, StatefulSets, DaemonSets, Jobs) and custom resources' Ready conditions",
    )
    beh.add_argument("--timeout", type=duration("--timeout"), default=_env("timeout") or "5m", help="--wait deadline")
    beh.add_argument("--once", action="store_true", default=_env_bool("once", False), help="one pass, then exit")
    beh.add_argument(
        "--dry-run", action="store_true", default=_env_bool("dry_run", False), help="print the diff, write nothing"
    )
    beh.add_argument(
        "--suspend", action=argparse.BooleanOptionalAction, default=_env_bool("suspend", False), help="do nothing"
    )
    beh.add_argument("--output", choices=("table", "json"), default=_env("output") or "table")
    beh.add_argument(
        "--commit-status",
        choices=("none", "github", "gitlab"),
        default=_env("commit_status") or "none",
        help="set a commit status on the applied revision (the forge is built from the --forge-* flags)",
    )
    beh.add_argument(
        "--commit-status-context", default=_env("commit_status_context"), help="default: automator/sync/NAME"
    )
    beh.add_argument("--forge-repository", default=_env("forge_repository"), help="owner/name or group/project")
    beh.add_argument("--forge-url", default=_env("forge_url"), help="API base URL (GitHub Enterprise, own GitLab)")
    beh.add_argument("--forge-token-file", default=_env("forge_token_file"), help="file holding the forge API token")
    beh.add_argument("--listen", default=_env("listen") or "0.0.0.0:8080", help="service mode: host:port")
    beh.add_argument("--webhook-secret-file", default=_env("webhook_secret_file"), help="enables /hooks/*")


def cache_dir(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir or Path(tempfile.gettempdir()) / "automator-sync-cache")


def options_from(args: argparse.Namespace) -> SyncOptions:
    for spec in args.ignore_fields or _env_list("ignore_fields"):
        if "/" not in spec:
            raise ConfigError(f"--ignore-field {spec!r}: expected [Kind:]/json/pointer, e.g. Deployment:/spec/replicas")
    inventory_ns = args.inventory_namespace
    if not inventory_ns:
        inventory_ns = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.is_file() else "default"
    return SyncOptions(
        name=args.name,
        paths=tuple(args.paths or _env_list("path") or ["."]),
        default_namespace=args.default_namespace,
        inventory_namespace=inventory_ns,
        inventory_kind=args.inventory_kind,
        prune=args.prune,
        allow_empty=args.allow_empty,
        force_conflicts=args.force_conflicts,
        dry_run=args.dry_run,
        ignore_fields=tuple(args.ignore_fields or _env_list("ignore_fields")),
        concurrency=args.concurrency,
        suspend=args.suspend,
        render_cache=cache_dir(args) / "rendered",
        source=sync_source(args.git_url or "", args.branch, args.paths or _env_list("path") or ["."]),
        take_over=args.take_over,
    )


def sync_source(url: str, branch: str, paths: list[str]) -> str:
    """This sync's identity in its inventory: the URL without any credentials, branch and paths."""
    parts = urlsplit(url)
    if parts.scheme and parts.hostname is not None and (parts.username or parts.password):
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    return f"{url}#{branch}:{','.join(sorted(paths))}"


def make_git(args: argparse.Namespace) -> Git:
    token = ""
    if args.git_token_file:
        try:
            token = Path(args.git_token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --git-token-file {args.git_token_file}: {exc.strerror}") from exc
    return Git(
        Credentials(
            token=token,
            username=args.git_username,
            ssh_key=Path(args.ssh_key) if args.ssh_key else None,
            known_hosts=Path(args.ssh_known_hosts) if args.ssh_known_hosts else None,
        )
    )


class Runner:
    """Fetch, verify and sync one revision; shared by ``--once`` and the service loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        if not args.git_url:
            raise ConfigError("--git-url (or AUTOMATOR_SYNC_GIT_URL) is required")
        self.args = args
        self.options = options_from(args)
        self.git = make_git(args)
        self.cache_dir = cache_dir(args)
        self.gpg_keys = [Path(k) for k in (args.gpg_keys or _env_list("gpg_keys"))]
        self.allowed_signers = Path(args.allowed_signers) if args.allowed_signers else None
        if args.verify_signatures and not self.gpg_keys and self.allowed_signers is None:
            raise ConfigError("--verify-signatures needs --gpg-key FILE or --allowed-signers FILE")
        self._refused: SyncResult | None = None  # the last commit the signature check refused
        self.status: StatusPublisher | None = None
        if getattr(args, "commit_status", "none") != "none":
            factory = getattr(args, "status_reporter_factory", None)
            if factory is None:
                raise ConfigError("--commit-status needs the forge flags of `automator sync`; run it through the CLI")
            context = args.commit_status_context or f"automator/sync/{self.options.name}"
            self.status = StatusPublisher(factory(args), context)
        # The first fetch starts now: git works in its own process (on the network, in production)
        # while this one imports and configures the kubernetes client.
        self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-fetch")
        self._prefetch: Future[Checkout] | None = self._fetcher.submit(self._fetch)
        try:
            self.cluster = KubeCluster.connect(args.kubeconfig, args.context, pool_size=self.options.concurrency)
        except BaseException:
            self._fetcher.shutdown(wait=True)
            raise
        self.synchronizer = Synchronizer(self.cluster, self.options)

    def _fetch(self) -> Checkout:
        return fetch_branch(self.git, self.args.git_url, self.args.branch, self.cache_dir)

    def once(self) -> SyncResult:
        result = self._once()
        if self.status is not None and not self.options.dry_run:
            self.status.publish(result)
        return result

    def _once(self) -> SyncResult:
        prefetch, self._prefetch = self._prefetch, None
        try:
            checkout = prefetch.result() if prefetch is not None else self._fetch()
        except GitError as exc:
            return SyncResult(revision="", errors=(f"fetch: {exc}; nothing applied or pruned",), error=exc)
        if self.args.verify_signatures:
            refused = self._refused
            if refused is not None and refused.revision == checkout.revision:
                return refused  # the same commit fails the same check: wait for a new one
            try:
                verify_commit(
                    self.git,
                    checkout.path,
                    checkout.revision,
                    gpg_keys=self.gpg_keys,
                    allowed_signers=self.allowed_signers,
                )
            except SyncError as exc:
                result = SyncResult(revision=checkout.revision, errors=(str(exc),), error=exc)
                self._refused = result if not exc.retryable else None
                return result
        try:
            result = self.synchronizer.sync(checkout.path, checkout.revision)
        except SyncError as exc:
            return SyncResult(revision=checkout.revision, errors=(str(exc),), error=exc)
        if self.args.wait and not self.options.dry_run and result.ok:
            result = wait_healthy(self.cluster, result, self.args.timeout)
        return result

    def close(self) -> None:
        self._fetcher.shutdown(wait=True, cancel_futures=True)
        self.cluster.close()


def print_result(result: SyncResult, output: str, out: TextIO) -> None:
    if output == "json":
        data: dict[str, Any] = result.to_json()
        if result.diff:
            data["diff"] = result.diff
        if result.suspended:
            data["suspended"] = True
        out.write(json.dumps(data, indent=2) + "\n")
        return
    out.write(f"revision: {result.revision or '-'}\n")
    if result.suspended:
        out.write("suspended: nothing applied\n")
    rows = [("KIND", "NAMESPACE", "NAME", "ACTION", "HEALTH", "DRIFT")]
    for o in result.objects:
        health = str(o.health) if o.health else ""
        rows.append((o.ref.kind, o.ref.namespace or "-", o.ref.name, str(o.action), health, ",".join(o.drift)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    counts: dict[str, int] = {}
    for o in result.objects:
        counts[str(o.action)] = counts.get(str(o.action), 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in counts.items()) or "no objects"
    out.write(f"{summary}\n")
    if result.diff:
        out.write(result.diff)
    for e in result.errors:
        out.write(f"error: {e}\n")


def run(args: argparse.Namespace) -> int:
    """Run ``automator sync`` with parsed ``args``; return the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        runner = Runner(args)
    except ConfigError as exc:
        print(f"automator sync: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # The modules the runner just imported (kubernetes, pydantic, urllib3) live as long as the
    # process: keep the cyclic GC from walking them again on every collection that parsing a
    # thousand objects triggers (16 ms of a 1,000-object no-op resync).
    gc.freeze()
    try:
        if args.once or args.dry_run:
            result = runner.once()
            print_result(result, args.output, sys.stdout)
            return EXIT_OK if result.ok else EXIT_FAILED
        # Service mode only: prometheus_client and the HTTP server stay out of a --once run's start-up.
        from automator.sync.service import serve  # noqa: PLC0415

        return serve(runner)
    except ConfigError as exc:
        print(f"automator sync: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        runner.close()
