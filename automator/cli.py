"""The ``automator`` command: each verb a thin call into the pipeline stages.

Exit codes (every verb): 0 all good, 1 some policy/object failed, 2 usage or config error.
Heavy stages (the Kubernetes client, the demo) are imported inside their verb so that
``automator scan`` does not pay for them at start-up.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from automator import __version__
from automator.errors import AutomatorError, ConfigError
from automator.policy import PolicySet, load_policies
from automator.report import error_json, plan_json, print_plan, print_scan_table, run_plan, run_scan, scan_json
from automator.scan import RegistryAccess

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"automator: error: {message}\n")


def _add_registry_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("registry access")
    g.add_argument(
        "--docker-config",
        metavar="FILE",
        default=os.environ.get("AUTOMATOR_DOCKER_CONFIG"),
        help="Docker config.json or a kubernetes.io/dockerconfigjson Secret manifest "
        "(default: $DOCKER_CONFIG/config.json, then ~/.docker/config.json)",
    )
    g.add_argument(
        "--insecure-registry",
        metavar="HOST",
        action="append",
        default=[h for h in os.environ.get("AUTOMATOR_INSECURE_REGISTRIES", "").split(",") if h],
        help="allow plain HTTP to this registry host[:port] (repeatable)",
    )
    g.add_argument(
        "--credentials-dir",
        metavar="DIR",
        default=os.environ.get("AUTOMATOR_CREDENTIALS_DIR"),
        help="where named credentials (policy 'credentials', Flux 'secretRef') are mounted: DIR/NAME/.dockerconfigjson",
    )
    g.add_argument(
        "--ca-file",
        metavar="FILE",
        default=os.environ.get("AUTOMATOR_CA_FILE"),
        help="extra CA bundle for registry TLS",
    )


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``verb`` given, other verbs' heavy arguments are left out."""
    parser = _Parser(prog="automator", description="Image update automation for GitOps config repos.")
    parser.add_argument("--version", action="version", version=f"automator {__version__}")
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


def cmd_validate(args: argparse.Namespace) -> int:
    root = _repo_root(args.path)
    policies = load_policies(root)
    if args.output == "json":
        doc = {
            "policies": [
                {"name": p.name, "image": p.image.repository, "source": str(p.source)} for p in policies.policies
            ],
            "errors": [error_json(e) for e in policies.errors],
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        for p in policies.policies:
            print(f"ok     {p.name:<40} {p.image.repository}  ({p.source})")
        _policy_errors(policies, sys.stdout)
        print(f"{len(policies.policies)} policies valid, {len(policies.errors)} errors")
    return EXIT_USAGE if policies.errors else EXIT_OK


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
    )


def cmd_scan(args: argparse.Namespace) -> int:
    root = _repo_root(args.path)
    policies = load_policies(root)
    if not policies.policies and policies.errors:
        _policy_errors(policies, sys.stderr)
        return EXIT_USAGE
    results = asyncio.run(run_scan(policies, _access(args), sys.stderr))
    if args.output == "json":
        json.dump(scan_json(results, policies), sys.stdout, indent=2)
        print()
    else:
        print_scan_table(results, sys.stdout)
        _policy_errors(policies, sys.stderr)
    if policies.errors:
        return EXIT_USAGE
    return EXIT_FAILED if any(not r.ok for r in results) else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    root = _repo_root(args.repo)
    policies = load_policies(root)
    if not policies.policies and policies.errors:
        _policy_errors(policies, sys.stderr)
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
    if policies.errors:
        return EXIT_USAGE
    return EXIT_FAILED if plan.failed else EXIT_OK


# --------------------------------------------------------------------------- entry


def cmd_demo(args: argparse.Namespace) -> int:
    from automator.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_sync(args: argparse.Namespace) -> int:
    from automator.sync import command as sync_command

    return sync_command.run(args)


_VERBS = {
    "validate": cmd_validate,
    "scan": cmd_scan,
    "plan": cmd_plan,
    "demo": cmd_demo,
    "sync": cmd_sync,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(verb if verb in _VERBS else None).parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
