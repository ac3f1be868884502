"""The ``automator`` command: each verb a thin call into the pipeline stages.

Exit codes (every verb): 0 all good, 1 some policy/object failed, 2 usage or config error.
Heavy stages (the Kubernetes client, the demo) are imported inside their verb so that
``automator scan`` does not pay for them at start-up.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from automator import __version__, logfmt
from automator.duration import positive_duration
from automator.envflags import Env
from automator.errors import AutomatorError, ConfigError
from automator.policy import PolicySet, load_policies
from automator.registry import RegistryConfig
from automator.registry.access import RegistryAccess
from automator.report import (
    ScanProgress,
    error_json,
    plan_json,
    print_plan,
    print_scan_table,
    run_plan,
    run_scan,
    scan_json,
)

if TYPE_CHECKING:
    from automator.forge import Forge

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("automator")

ENV = Env("AUTOMATOR_")  # every flag of run (and the shared ones) as AUTOMATOR_<NAME>


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"automator: error: {message}\n")


def _add_registry_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("registry access")
    g.add_argument(
        "--docker-config",
        metavar="FILE",
        default=ENV("docker_config"),
        help="Docker config.json or a kubernetes.io/dockerconfigjson Secret manifest "
        "(default: $DOCKER_CONFIG/config.json, then ~/.docker/config.json)",
    )
    g.add_argument(
        "--insecure-registry",
        metavar="HOST",
        action="append",
        default=ENV.list("insecure_registries"),
        help="allow plain HTTP to this registry host[:port] (repeatable)",
    )
    g.add_argument(
        "--credentials-dir",
        metavar="DIR",
        default=ENV("credentials_dir"),
        help="where named credentials (policy 'credentials', Flux 'secretRef') are mounted: DIR/NAME/.dockerconfigjson",
    )
    g.add_argument(
        "--ca-file",
        metavar="FILE",
        default=ENV("ca_file"),
        help="extra CA bundle for registry TLS",
    )
    g.add_argument(
        "--max-response-size",
        metavar="SIZE",
        default=ENV("max_response_size", "16MiB"),
        help="the largest registry answer read, e.g. one page of a tag listing (default 16MiB; KiB, MiB, GiB)",
    )
    g.add_argument(
        "--scan-deadline",
        metavar="DURATION",
        default=ENV("scan_deadline", "10m"),
        help="give up on registry requests not answered this long after a scan starts (default 10m);"
        " each request also has 30s, and a registry that stopped answering is not waited on again",
    )


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``verb`` given, other verbs' heavy arguments are left out."""
    parser = _Parser(prog="automator", description="Image update automation for GitOps config repos.")
    parser.add_argument("--version", action="version", version=f"automator {__version__}")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=ENV("log_level", "warning").lower(),
        help="log detail on stderr (env AUTOMATOR_LOG_LEVEL; default warning)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=ENV("log_format", "text").lower(),
        help="text, or one JSON object per line for log pipelines (env AUTOMATOR_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="load and check every policy file in a config repo")
    p.add_argument("path", nargs="?", default=".", help="config repo root (default: .)")
    p.add_argument("--output", choices=("table", "json"), default="table")

    p = sub.add_parser("scan", help="list tags for every policy and show the chosen tag")
    p.add_argument("path", nargs="?", default=".", help="config repo root (default: .)")
    p.add_argument("--output", choices=("table", "json"), default="table")
    _add_registry_args(p)

    p = sub.add_parser("plan", help="scan, choose and show the rewrite as a diff; nothing changes")
    p.add_argument("--repo", default=".", help="config repo root (default: .)")
    p.add_argument("--output", choices=("diff", "json"), default="diff")
    _add_registry_args(p)

    p = sub.add_parser("run", help="the automator: scan, rewrite, commit, push and open pull requests")
    p.add_argument("--once", action="store_true", help="one cycle, then exit (default: repeat every --interval)")
    p.add_argument("--config", default=ENV("config"), help="automator.yaml (default: built-in defaults)")
    p.add_argument("--git-url", default=ENV("git_url"), help="config repo remote (https, ssh, file, path)")
    p.add_argument("--branch", default=ENV("branch"), help="base branch (default: main)")
    p.add_argument("--path", default=ENV("path"), help="sub-directory with policies and manifests")
    p.add_argument("--mode", choices=("pull-request", "direct"), default=ENV("mode"))
    p.add_argument("--forge", choices=("github", "gitlab", "none"), default=ENV("forge"))
    p.add_argument("--forge-url", default=ENV("forge_url"), help="GitHub Enterprise API / GitLab URL")
    p.add_argument("--forge-repository", default=ENV("forge_repository"), help="owner/repo")
    p.add_argument("--forge-token-env", default=ENV("forge_token_env"), help="env var with the API token")
    p.add_argument("--forge-token-file", default=ENV("forge_token_file"), help="file with the API token")
    p.add_argument("--git-username", default=ENV("git_username"), help="HTTPS user (x-access-token)")
    p.add_argument("--git-token-file", default=ENV("git_token_file"), help="file with the HTTPS token")
    p.add_argument("--git-token-env", default=ENV("git_token_env"), help="env var with the HTTPS token")
    p.add_argument("--ssh-key", default=ENV("ssh_key"), help="SSH private key for git")
    p.add_argument("--ssh-known-hosts", default=ENV("ssh_known_hosts"), help="known_hosts for git over SSH")
    p.add_argument("--author-name", default=ENV("git_author_name"))
    p.add_argument("--author-email", default=ENV("git_author_email"))
    p.add_argument(
        "--cache-dir",
        default=ENV("cache_dir") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "automator"),
        help="clone cache reused across runs",
    )
    p.add_argument("--interval", default=ENV("interval", "5m"), help="time between cycles without --once")
    p.add_argument("--output", choices=("table", "json"), default="table")
    g = p.add_argument_group("service (without --once)")
    g.add_argument(
        "--listen",
        default=ENV("listen", ":8080"),
        help="/healthz, /readyz, /metrics, /status and (without --webhook-listen) /hooks/*",
    )
    g.add_argument(
        "--schedule",
        default=ENV("schedule"),
        help="crontab expression for full cycles instead of --interval, e.g. '*/15 7-19 * * 1-5'",
    )
    g.add_argument("--timezone", default=ENV("timezone", "UTC"), help="time zone of --schedule")
    g.add_argument(
        "--webhook-secret-file",
        default=ENV("webhook_secret_file"),
        help="shared secret registry webhooks must present; without it /hooks/* answer 404",
    )
    g.add_argument(
        "--webhook-listen",
        default=ENV("webhook_listen"),
        help="serve /hooks/* here instead of on --listen, so only they face the registries",
    )
    g.add_argument(
        "--webhook-debounce",
        default=ENV("webhook_debounce", "5s"),
        help="wait this long after a webhook so one cycle covers a burst of pushes",
    )
    g.add_argument(
        "--cycle-timeout",
        default=ENV("cycle_timeout", "30m"),
        help="/healthz fails once a cycle runs longer than this (a hung git or API call)",
    )
    _add_registry_args(p)

    p = sub.add_parser("demo", help="run the main job on an embedded local registry and config repo")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory and print its path")

    p = sub.add_parser("sync", help="apply a config repo branch to the cluster (the synchronizer)")
    if verb in (None, "sync"):
        from automator.sync import command as sync_command

        sync_command.add_arguments(p)
    return parser


# --------------------------------------------------------------------------- validate


def _policy_errors(policies: PolicySet, out: TextIO) -> None:
    for err in policies.errors:
        print(f"error: {err}", file=out)


def _config_errors(root: Path) -> list[AutomatorError]:
    """Problems in the repo's ``automator.yaml``, when it has one."""
    from automator.config import CONFIG_FILE, check_repo_config, load_config

    path = root / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        check_repo_config(load_config(path, shown=CONFIG_FILE), CONFIG_FILE)
    except AutomatorError as exc:
        return [exc]
    return []


def cmd_validate(args: argparse.Namespace) -> int:
    root = _repo_root(args.path)
    policies = load_policies(root)
    errors = [*policies.errors, *_config_errors(root)]
    if args.output == "json":
        doc = {
            "policies": [
                {"name": p.name, "image": p.image.repository, "source": str(p.source)} for p in policies.policies
            ],
            "errors": [error_json(e) for e in errors],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        for p in policies.policies:
            print(f"ok     {p.name:<40} {p.image.repository}  ({p.source})")
        for err in errors:
            print(f"error: {err}")
        print(f"{len(policies.policies)} policies valid, {len(errors)} errors")
    return EXIT_USAGE if errors else EXIT_OK


def _repo_root(path: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{path}: not a directory; give the config repo's root")
    return root


# --------------------------------------------------------------------------- scan


def _access(args: argparse.Namespace) -> RegistryAccess:
    return RegistryAccess(
        docker_config=Path(args.docker_config) if args.docker_config else None,
        credentials_dir=Path(args.credentials_dir) if args.credentials_dir else None,
        insecure_hosts=tuple(args.insecure_registry),
        ca_file=args.ca_file,
        base=RegistryConfig(
            scan_deadline=_duration("--scan-deadline", args.scan_deadline),
            max_response_bytes=_size("--max-response-size", args.max_response_size),
        ),
    )


_SIZE = re.compile(r"(\d+)\s*(|B|KB|KiB|MB|MiB|GB|GiB)", re.IGNORECASE)
_UNIT = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 1 << 20, "gb": 10**9, "gib": 1 << 30}


def _size(flag: str, text: str) -> int:
    """``16MiB``, ``64MB``, ``1048576`` -> bytes; at least 1 KiB."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{flag} {text!r}: expected a number of bytes with an optional unit, e.g. 64MiB")
    size = int(m.group(1)) * _UNIT[m.group(2).lower()]
    if size < 1024:
        raise ConfigError(f"{flag} {text!r}: must be at least 1KiB")
    return size


def _load_repo(path: str) -> tuple[Path, PolicySet | None]:
    """The repo root and its policies; None (the errors printed) when not one policy loaded."""
    root = _repo_root(path)
    policies = load_policies(root)
    if not policies.policies and policies.errors:
        _policy_errors(policies, sys.stderr)
        return root, None
    return root, policies


def _exit_code(errors: Sequence[object], failed: bool) -> int:
    """2 when a file was wrong, else 1 when something failed, else 0."""
    if errors:
        return EXIT_USAGE
    return EXIT_FAILED if failed else EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    _, policies = _load_repo(args.path)
    if policies is None:
        return EXIT_USAGE
    gc.freeze()  # the policies live as long as the scan: keep the cyclic GC from walking them again (see main)
    results = asyncio.run(run_scan(policies, _access(args), sys.stderr))
    if args.output == "json":
        json.dump(scan_json(results, policies), sys.stdout, indent=2)
        print()
    else:
        print_scan_table(results, sys.stdout)
        _policy_errors(policies, sys.stderr)
    return _exit_code(policies.errors, any(not r.ok for r in results))


def cmd_plan(args: argparse.Namespace) -> int:
    root, policies = _load_repo(args.repo)
    if policies is None:
        return EXIT_USAGE
    plan = asyncio.run(run_plan(root, policies, _access(args), sys.stderr))
    if args.output == "json":
        json.dump(plan_json(plan, policies), sys.stdout, indent=2)
        print()
    else:
        # a clean patch on stdout when redirected (`automator plan > fix.patch`); the table beside it
        table_out = sys.stdout if sys.stdout.isatty() else sys.stderr
        print_plan(plan, sys.stdout, table_out)
        _policy_errors(policies, sys.stderr)
    return _exit_code(policies.errors, bool(plan.failed))


# --------------------------------------------------------------------------- entry


def cmd_run(args: argparse.Namespace) -> int:
    from automator.config import DEFAULT, load_config, with_overrides
    from automator.git import Credentials
    from automator.registry.memo import RegistryMemo
    from automator.report import print_run, run_json
    from automator.run import RunOptions, RunSummary, run_once
    from automator.wiring import ForgeCache

    overrides: dict[str, object] = {
        "spec.git.url": args.git_url,
        "spec.git.branch": args.branch,
        "spec.git.path": args.path,
        "spec.git.auth.username": args.git_username,
        "spec.git.auth.tokenFile": args.git_token_file,
        "spec.git.auth.tokenEnv": args.git_token_env,
        "spec.git.auth.sshKeyFile": args.ssh_key,
        "spec.git.auth.knownHostsFile": args.ssh_known_hosts,
        "spec.commit.author.name": args.author_name,
        "spec.commit.author.email": args.author_email,
        "spec.mode": args.mode,
        "spec.forge.provider": args.forge,
        "spec.forge.url": args.forge_url,
        "spec.forge.repository": args.forge_repository,
        "spec.forge.auth.tokenEnv": args.forge_token_env,
        "spec.forge.auth.tokenFile": args.forge_token_file,
    }
    config = with_overrides(load_config(Path(args.config)) if args.config else DEFAULT, overrides)
    auth = config.spec.git.auth
    durations = {flag: _duration(flag, getattr(args, flag[2:].replace("-", "_"))) for flag in _DURATION_FLAGS}

    def credentials() -> Credentials:  # read per cycle, so a rotated token file is picked up
        return Credentials(
            token=auth.resolve("git token"),
            username=auth.username,
            ssh_key=Path(auth.ssh_key_file) if auth.ssh_key_file else None,
            known_hosts=Path(auth.known_hosts_file) if auth.known_hosts_file else None,
        )

    forges = ForgeCache()
    options = RunOptions(
        Path(args.cache_dir),
        credentials(),
        _access(args),
        ScanProgress(0, sys.stderr) if args.once else None,
        repo_config=not args.config,
        overrides=overrides,
    )

    def report(summary: RunSummary) -> None:
        if args.output == "json":
            json.dump(run_json(summary), sys.stdout, indent=2)
            print(flush=True)
        else:
            print_run(summary, sys.stdout, brief_when_idle=not args.once)
            sys.stdout.flush()

    if args.once:
        summary = run_once(config, forges, replace(options, credentials=credentials()))
        report(summary)
        return _exit_code(summary.policy_errors, summary.failed)

    from automator.daemon import AutomatorService, Schedule, serve
    from automator.httpd import SecretFile

    def cycle(memo: RegistryMemo) -> RunSummary:
        return run_once(config, forges, replace(options, credentials=credentials(), memo=memo))

    service = AutomatorService(
        cycle,
        Schedule.parse(durations["--interval"], args.schedule, args.timezone),
        args.listen,
        secret=SecretFile(args.webhook_secret_file) if args.webhook_secret_file else "",
        debounce=durations["--webhook-debounce"],
        cycle_timeout=durations["--cycle-timeout"],
        report=report,
        webhook_listen=args.webhook_listen or None,
    )
    return serve(service)


_DURATION_FLAGS = ("--interval", "--webhook-debounce", "--cycle-timeout")
_MAY_BE_ZERO = ("--webhook-debounce",)


def _duration(flag: str, text: str) -> float:
    try:
        return positive_duration(flag, text, zero_ok=flag in _MAY_BE_ZERO)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from automator.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_sync(args: argparse.Namespace) -> int:
    from automator.sync import command as sync_command

    args.status_reporter_factory = _status_forge
    return sync_command.run(args)


def _status_forge(args: argparse.Namespace) -> Forge:
    """The forge the synchronizer reports commit statuses to (sync and forge are sibling layers)."""
    from automator.config import DEFAULT, with_overrides
    from automator.wiring import make_forge

    config = with_overrides(
        DEFAULT,
        {
            "spec.forge.provider": args.commit_status,
            "spec.forge.url": args.forge_url,
            "spec.forge.repository": args.forge_repository,
            "spec.forge.auth.tokenFile": args.forge_token_file,
        },
    )
    return make_forge(config)


_VERBS = {
    "validate": cmd_validate,
    "scan": cmd_scan,
    "plan": cmd_plan,
    "run": cmd_run,
    "demo": cmd_demo,
    "sync": cmd_sync,
}


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # as PID 1 in a container, SIGTERM is otherwise ignored


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(verb if verb in _VERBS else None).parse_args(argv)
    except ConfigError as exc:  # a default from the environment that cannot be read
        print(f"automator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # argparse does not check defaults (taken from the environment) against the choices
    for flag, value, allowed in (
        ("--log-level / AUTOMATOR_LOG_LEVEL", args.log_level, ("debug", "info", "warning", "error")),
        ("--log-format / AUTOMATOR_LOG_FORMAT", args.log_format, ("text", "json")),
    ):
        if value not in allowed:
            print(f"automator: {flag} {value!r}: choose from {', '.join(allowed)}", file=sys.stderr)
            return EXIT_USAGE
    logfmt.configure(args.log_level, args.log_format)
    signal.signal(signal.SIGTERM, _terminate)
    # Modules, models and the parser live as long as the process: keep the cyclic GC from
    # walking them again on every collection of a scan's many short-lived objects.
    gc.freeze()
    try:
        return _VERBS[args.verb](args)
    except ConfigError as exc:
        print(f"automator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AutomatorError as exc:
        print(f"automator: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `automator plan | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
