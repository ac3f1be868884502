"""``automator sync``: flags (each also from ``AUTOMATOR_SYNC_*``), one run or the service loop.

The top of the synchronizer: the namespace argparse fills is parsed once, by
:func:`config_from`, into the frozen values of :mod:`.settings` (a bad flag or variable is a
:class:`~automator.errors.ConfigError` naming it, there and then); below this module nothing
sees a namespace. The one pass is :class:`~.runner.Runner`, the loop :mod:`.service`.

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
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TextIO, cast
from urllib.parse import urlsplit, urlunsplit

from automator import logfmt
from automator.duration import positive_duration
from automator.envflags import Env
from automator.errors import ConfigError
from automator.git import Credentials
from automator.notify import load_notifications
from automator.redact import redact_url
from automator.sync.engine import SyncOptions
from automator.sync.lease import LeaseConfig, lease_for
from automator.sync.model import SyncResult
from automator.sync.runner import Runner
from automator.sync.settings import (
    CommitStatus,
    GitSource,
    RunnerOptions,
    ServiceOptions,
    SyncConfig,
    Verification,
    pod_namespace,
)
from automator.sync.status import CommitStatusReporter

ENV_PREFIX = "AUTOMATOR_SYNC_"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INVENTORY_KINDS, OUTPUTS, COMMIT_STATUSES = ("configmap", "secret"), ("table", "json"), ("none", "github", "gitlab")

log = logging.getLogger("automator.sync")


ENV = Env(ENV_PREFIX)
_env_bool, _env_list = ENV.bool, ENV.list


class _FromEnv(str):
    """A flag's default read from ``AUTOMATOR_SYNC_*``: it remembers the variable, so an error
    about the value can name where it came from (argparse hands the default itself to ``type``)."""

    variable: str

    def __new__(cls, value: str, variable: str) -> _FromEnv:
        text = super().__new__(cls, value)
        text.variable = variable
        return text


def _env(dest: str) -> str | None:
    value = ENV(dest)
    return None if value is None else _FromEnv(value, ENV.name(dest))


def _variable(value: object) -> str | None:
    """The ``AUTOMATOR_SYNC_*`` variable a flag's value came from, if it did."""
    return value.variable if isinstance(value, _FromEnv) else None


def _shown(value: str, variable: str | None = None) -> str:
    """``'value'``, plus ``(from AUTOMATOR_SYNC_X)`` when the environment set it."""
    variable = variable or _variable(value)
    return repr(str(value)) + (f" (from {variable})" if variable else "")


def _named(flag: str, value: str, variable: str | None = None) -> str:
    return f"{flag} {_shown(value, variable)}"


def duration(flag: str, *, zero_ok: bool = False) -> Callable[[str], float]:
    """The argparse type of a duration flag: the one grammar (:mod:`automator.duration`)."""

    def parse(text: str) -> float:
        try:
            return positive_duration(flag, text, zero_ok=zero_ok)
        except ValueError as exc:
            reason = str(exc).removeprefix(f"{flag} {text!r}: ")  # argparse names the flag
            raise argparse.ArgumentTypeError(f"{_shown(text)}: {reason}") from None

    return parse


def count(flag: str) -> Callable[[str], int]:
    """The argparse type of a flag that counts something: a whole number, at least 1."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{_shown(text)}: expected a whole number, at least 1")
        return value

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
    cl.add_argument("--inventory-kind", choices=INVENTORY_KINDS, default=_env("inventory_kind") or "configmap")
    cl.add_argument(
        "--concurrency", type=count("--concurrency"), default=_env("concurrency") or "8", help="parallel applies"
    )
    cl.add_argument(
        "--pod-digests",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("pod_digests", True),
        help="record the digests the workloads' pods run (one Pod LIST per namespace, needs list pods)",
    )

    beh = parser.add_argument_group("behaviour")
    beh.add_argument(
        "--interval", type=duration("--interval"), default=_env("interval") or "1m", help="service resync period"
    )
    beh.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=_env_bool("leader_elect", False),
        help="service mode: apply only while this replica holds the Lease automator-sync-NAME (in the"
        " inventory's namespace); other replicas stand by",
    )
    beh.add_argument(
        "--lease-duration",
        type=duration("--lease-duration"),
        default=_env("lease_duration") or "15s",
        help="how long a Lease nobody renews stays its holder's; a holder cut off stops after 2/3 of it",
    )
    beh.add_argument("--lease-identity", default=_env("lease_identity"), help="default: $POD_NAME, else the host name")
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
        help="wait until every applied object that reports a status is healthy as kstatus judges it (rollouts, Jobs, "
        "Pods, PVCs, CRDs, custom resources' conditions); still Progressing, Terminating or Unknown at --timeout fails",
    )
    beh.add_argument("--timeout", type=duration("--timeout"), default=_env("timeout") or "5m", help="--wait deadline")
    beh.add_argument("--once", action="store_true", default=_env_bool("once", False), help="one pass, then exit")
    beh.add_argument(
        "--dry-run", action="store_true", default=_env_bool("dry_run", False), help="print the diff, write nothing"
    )
    beh.add_argument(
        "--suspend", action=argparse.BooleanOptionalAction, default=_env_bool("suspend", False), help="do nothing"
    )
    beh.add_argument("--output", choices=OUTPUTS, default=_env("output") or "table")
    beh.add_argument(
        "--commit-status",
        choices=COMMIT_STATUSES,
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
    beh.add_argument(
        "--notifications",
        default=_env("notifications"),
        metavar="FILE",
        help="tell the notifiers in FILE (webhook, Slack, Teams) when a sync fails, drift is reverted or a workload"
        " is unhealthy after an update (README: Notifications)",
    )


def config_from(args: argparse.Namespace) -> SyncConfig:
    """Parse the flags once into frozen values; a bad one is a ConfigError naming the flag (and
    the ``AUTOMATOR_SYNC_*`` variable, when the environment set it). Nothing below sees ``args``."""
    source = git_source(args)
    options = options_from(args)
    once = bool(args.once or args.dry_run)  # a dry run is always a single pass
    status = None
    if _choice(args.commit_status, "--commit-status", COMMIT_STATUSES) != "none":
        context = str(args.commit_status_context or f"automator/sync/{options.name}")
        status = CommitStatus(cast(Literal["github", "gitlab"], str(args.commit_status)), context)
    runner = RunnerOptions(
        source=source,
        sync=options,
        kubeconfig=str(args.kubeconfig) if args.kubeconfig else None,
        context=str(args.context) if args.context else None,
        verification=verification(args),
        wait=bool(args.wait),
        pod_digests=bool(args.pod_digests),
        timeout=float(args.timeout),
        status=status,
        notifications=load_notifications(Path(args.notifications)) if args.notifications else None,
    )
    output = cast(Literal["table", "json"], _choice(args.output, "--output", OUTPUTS))
    service = replace(service_options(args, once=once), lease=lease_config(args, options, once=once))
    return SyncConfig(runner=runner, service=service, once=once, output=output)


def lease_config(args: argparse.Namespace, options: SyncOptions, *, once: bool) -> LeaseConfig | None:
    """``--leader-elect`` (service mode): the Lease ``automator-sync-NAME`` beside the inventory."""
    if once or not args.leader_elect:
        return None
    name = f"automator-sync-{options.name}"
    return lease_for(options.inventory_namespace, name, args.lease_identity, float(args.lease_duration))


def git_source(args: argparse.Namespace) -> GitSource:
    """``--git-url``, ``--branch``, ``--cache-dir`` and the credentials (the token file is read here)."""
    url, branch = args.git_url, args.branch
    if not url:
        raise ConfigError("--git-url (or AUTOMATOR_SYNC_GIT_URL) is required")
    if url.startswith("-"):
        raise ConfigError(f"{_named('--git-url', redact_url(url), _variable(url))}: git would read it as an option")
    if not branch or branch.startswith("-"):
        raise ConfigError(f"{_named('--branch', branch)}: expected a branch name, like main")
    token = ""
    if args.git_token_file:
        try:
            token = Path(args.git_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read {_named('--git-token-file', args.git_token_file)}: {reason}") from exc
    credentials = Credentials(
        token=token,
        username=str(args.git_username),
        ssh_key=Path(args.ssh_key) if args.ssh_key else None,
        known_hosts=Path(args.ssh_known_hosts) if args.ssh_known_hosts else None,
    )
    return GitSource(url=str(url), branch=str(branch), cache_dir=_cache_dir(args), credentials=credentials)


def options_from(args: argparse.Namespace) -> SyncOptions:
    """The engine's share of :func:`config_from`: what to render and how to apply and prune it."""
    ignore_fields, variable = _listed(args.ignore_fields, "ignore_fields")
    for spec in ignore_fields:
        if "/" not in spec:
            example = "e.g. Deployment:/spec/replicas"
            raise ConfigError(f"{_named('--ignore-field', spec, variable)}: expected [Kind:]/json/pointer, {example}")
    paths = _listed(args.paths, "path")[0] or (".",)
    inventory_ns = args.inventory_namespace
    if not inventory_ns:
        inventory_ns = pod_namespace()
    return SyncOptions(
        name=str(args.name),
        paths=paths,
        default_namespace=str(args.default_namespace),
        inventory_namespace=str(inventory_ns),
        inventory_kind=_choice(args.inventory_kind, "--inventory-kind", INVENTORY_KINDS),
        prune=bool(args.prune),
        allow_empty=bool(args.allow_empty),
        force_conflicts=bool(args.force_conflicts),
        dry_run=bool(args.dry_run),
        ignore_fields=ignore_fields,
        concurrency=int(args.concurrency),
        suspend=bool(args.suspend),
        render_cache=_cache_dir(args) / "rendered",
        source=sync_source(str(args.git_url or ""), str(args.branch), paths),
        take_over=bool(args.take_over),
    )


def verification(args: argparse.Namespace) -> Verification | None:
    """``--verify-signatures`` and the keys it trusts; None when commits are not checked."""
    if not args.verify_signatures:
        return None
    gpg_keys = tuple(Path(k) for k in _listed(args.gpg_keys, "gpg_keys")[0])
    allowed_signers = Path(args.allowed_signers) if args.allowed_signers else None
    if not gpg_keys and allowed_signers is None:
        raise ConfigError(
            "--verify-signatures needs --gpg-key FILE or --allowed-signers FILE "
            f"({ENV.name('gpg_keys')} or {ENV.name('allowed_signers')})"
        )
    return Verification(gpg_keys=gpg_keys, allowed_signers=allowed_signers)


def service_options(args: argparse.Namespace, *, once: bool) -> ServiceOptions:
    """``--interval``, ``--listen`` and ``--webhook-secret-file``; ``--listen`` is checked only for
    the service (a ``--once`` run does not import the HTTP server)."""
    listen = args.listen
    if not once:
        from automator.httpd import parse_listen  # noqa: PLC0415

        try:
            parse_listen(listen)
        except ConfigError as exc:
            raise ConfigError(_named("--listen", listen) + str(exc).removeprefix(f"--listen {listen!r}")) from None
    secret_file = Path(args.webhook_secret_file) if args.webhook_secret_file else None
    return ServiceOptions(interval=float(args.interval), listen=str(listen), webhook_secret_file=secret_file)


def sync_source(url: str, branch: str, paths: Sequence[str]) -> str:
    """This sync's identity in its inventory: the URL without any credentials, branch and paths."""
    parts = urlsplit(url)
    if parts.scheme and parts.hostname is not None and (parts.username or parts.password):
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    return f"{url}#{branch}:{','.join(sorted(paths))}"


def _cache_dir(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir or Path(tempfile.gettempdir()) / "automator-sync-cache")


def _listed(given: list[str] | None, dest: str) -> tuple[tuple[str, ...], str | None]:
    """A repeatable flag's values, else its variable's comma-separated ones; and that variable."""
    if given:
        return tuple(given), None
    values = tuple(_env_list(dest))
    return values, (ENV.name(dest) if values else None)


def _choice(value: str, flag: str, choices: Sequence[str]) -> str:
    """argparse checks ``choices`` on the command line only: check the environment's default too."""
    if value not in choices:
        raise ConfigError(f"{_named(flag, value)}: expected one of {', '.join(choices)}")
    return str(value)


def status_reporter(args: argparse.Namespace, config: SyncConfig) -> CommitStatusReporter | None:
    """The forge ``--commit-status`` reports to, built by ``args.status_reporter_factory``: the
    forge stage is the synchronizer's sibling, so only the CLI edge (``automator.cli``) knows both."""
    if config.runner.status is None:
        return None
    factory: Callable[[argparse.Namespace], CommitStatusReporter] | None
    factory = getattr(args, "status_reporter_factory", None)
    return None if factory is None else factory(args)


def print_result(result: SyncResult, output: str, out: TextIO) -> None:
    """The pass's report: a table, the JSON document, or with --log-format json one JSON line."""
    if output == "json" or logfmt.json_lines():
        data: dict[str, Any] = result.to_json()
        if result.diff:
            data["diff"] = result.diff
        if result.suspended:
            data["suspended"] = True
        if logfmt.json_lines():
            out.write(logfmt.report_line("sync", data, "sync pass finished", "automator.sync"))
        else:
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


def _error(exc: Exception) -> None:
    """A bad flag or setting: a line for a person, or with --log-format json a log record."""
    if logfmt.json_lines():
        log.error("%s", exc)
    else:
        print(f"automator sync: error: {exc}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``automator sync`` with parsed ``args``; return the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        config = config_from(args)
        runner = Runner(config.runner, reporter=status_reporter(args, config))
    except ConfigError as exc:
        _error(exc)
        return EXIT_USAGE
    # The modules the runner just imported (kubernetes, pydantic, urllib3) live as long as the
    # process: keep the cyclic GC from walking them again on every collection that parsing a
    # thousand objects triggers (16 ms of a 1,000-object no-op resync).
    gc.freeze()
    try:
        if config.once:
            result = runner.once()
            print_result(result, config.output, sys.stdout)
            return EXIT_OK if result.ok else EXIT_FAILED
        # Service mode only: prometheus_client and the HTTP server stay out of a --once run's start-up.
        from automator.sync.service import serve  # noqa: PLC0415

        return serve(runner, config.service)
    except ConfigError as exc:
        _error(exc)
        return EXIT_USAGE
    finally:
        runner.close()
