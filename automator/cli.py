"""The ``automator`` command: each verb a thin call into the pipeline stages.

Exit codes (every verb): 0 all good, 1 some policy/object failed, 2 usage or config error;
``plan --exit-code`` adds 3 (changes pending) and 4 (markers that name no policy).
The stages are imported inside their verb, so ``automator scan`` does not pay for the
Kubernetes client or the demo, and ``--version``, ``--help`` and ``completion`` for none.

The parser is the one source for what is documented about flags: each flag read from an
``AUTOMATOR_*`` variable names it in its help (``[env NAME]``), and the README's table of
variables (``scripts/readme-env.py``) and the shell completion scripts are generated from it.
The completion generator is hand-written: argcomplete, the library for it, would be a new
dependency hooked into every start-up, for the three small scripts written here.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from automator import logfmt
from automator.buildinfo import version_string
from automator.duration import positive_duration
from automator.envflags import Env
from automator.errors import AutomatorError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from automator.config import Automation
    from automator.forge import Forge
    from automator.notify import CycleAnnouncer
    from automator.plan import MemorySource
    from automator.policy import PolicySet
    from automator.registry.access import RegistryAccess
    from automator.state import StateStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_PENDING, EXIT_UNKNOWN_MARKERS = 3, 4  # `plan --exit-code` only: changes pending; markers naming no policy
log = logging.getLogger("automator")

ENV = Env("AUTOMATOR_")  # every flag of run (and the shared ones) as AUTOMATOR_<NAME>


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"automator: error: {message}\n")


# --------------------------------------------------------------------------- flags and variables

_ENV_NOTE = re.compile(r"\s*\[env (AUTOMATOR_[A-Z0-9_]+)\]$")
LOG_LEVELS, LOG_FORMATS = ("debug", "info", "warning", "error"), ("text", "json")
# the --output formats of each verb, the default first; given before the verb or after it
OUTPUTS: dict[str, tuple[str, ...]] = {
    "validate": ("table", "json", "yaml"),
    "scan": ("table", "json", "yaml"),
    "plan": ("diff", "json", "yaml"),
    "run": ("table", "json", "yaml"),
    "sync": ("table", "json"),
    "status": ("table", "json", "yaml"),
    "history": ("table", "json", "yaml"),
}
# `automator sync` reads AUTOMATOR_SYNC_<DEST> for every flag; these repeatable ones, a list
SYNC_LISTS = {"paths": "path", "gpg_keys": "gpg_keys", "ignore_fields": "ignore_fields"}


def _with_env(help_text: str | None, variable: str) -> str:
    """A flag's help naming its variable, in the one form the README's table is generated from."""
    return f"{help_text or ''} [env {variable}]".lstrip()


def _flag(
    p: argparse._ActionsContainer, *flags: str, env: str, default: str | None = None, listed: bool = False, **kw: Any
) -> None:
    """A flag whose default comes from ``AUTOMATOR_<ENV>`` (set and empty: the default); its help
    names the variable."""
    value: Any = ENV.list(env) if listed else (ENV(env) or default)
    p.add_argument(*flags, default=value, help=_with_env(kw.pop("help", None), ENV.name(env)), **kw)


def env_variable(action: argparse.Action) -> str | None:
    """The ``AUTOMATOR_*`` variable a flag reads, as its help names it."""
    found = _ENV_NOTE.search(action.help or "") if action.help not in (None, argparse.SUPPRESS) else None
    return found.group(1) if found else None


def _global_flags(p: argparse.ArgumentParser, *, top: bool, outputs: Sequence[str] = ()) -> None:
    """--log-level, --log-format and -o/--output: before the verb (``top``) or after it.

    After the verb their default is SUPPRESS, so a value given before the verb is not reset
    by the verb's parser; the real defaults are set once, on the top parser (and per verb for
    --output, after parsing).
    """
    level = ENV("log_level", "warning").lower() if top else argparse.SUPPRESS
    fmt = ENV("log_format", "text").lower() if top else argparse.SUPPRESS
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=level,
        help=_with_env("log detail on stderr (default warning)", ENV.name("log_level")),
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=fmt,
        help=_with_env("text, or one JSON object per line for log pipelines", ENV.name("log_format")),
    )
    if outputs:
        shown = "the verb's formats" if top else f"{', '.join(outputs)} (default {outputs[0]})"
        p.add_argument("-o", "--output", choices=outputs, default=argparse.SUPPRESS, help=shown)


def _repo_args(p: argparse.ArgumentParser) -> None:
    """The config repo's root, one way for validate, scan and plan: PATH, or --repo PATH."""
    p.add_argument("path", nargs="?", default=None, metavar="PATH", help="config repo root (default: .)")
    p.add_argument("--repo", metavar="PATH", default=None, help="the same as PATH")


def _add_registry_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("registry access")
    _flag(
        g,
        "--docker-config",
        env="docker_config",
        metavar="FILE",
        help="Docker config.json or a kubernetes.io/dockerconfigjson Secret manifest "
        "(default: $DOCKER_CONFIG/config.json, then ~/.docker/config.json)",
    )
    _flag(
        g,
        "--insecure-registry",
        env="insecure_registries",
        listed=True,
        metavar="HOST",
        action="append",
        help="allow plain HTTP to this registry host[:port] (repeatable; the variable: comma-separated)",
    )
    _flag(
        g,
        "--credentials-dir",
        env="credentials_dir",
        metavar="DIR",
        help="where Secrets are mounted: pull secrets (policy 'credentials', Flux 'secretRef') as"
        " DIR/NAME/.dockerconfigjson, Flux certSecretRef as DIR/NAME/ca.crt, tls.crt, tls.key, and"
        " ImageUpdateAutomation signing keys as DIR/NAME/git.asc or identity",
    )
    _flag(g, "--ca-file", env="ca_file", metavar="FILE", help="extra CA bundle for registry TLS")
    _flag(
        g,
        "--sigstore-trusted-root",
        env="sigstore_trusted_root",
        metavar="FILE",
        help="trusted_root.json of the Sigstore that keyless `verify` policies trust, a private or air-gapped one"
        " (default: a policy's own trustedRoot, else the public Sigstore's)",
    )
    _flag(
        g,
        "--max-response-size",
        env="max_response_size",
        default="16MiB",
        metavar="SIZE",
        help="the largest registry answer read, e.g. one page of a tag listing (default 16MiB; KiB, MiB, GiB)",
    )
    _flag(
        g,
        "--scan-deadline",
        env="scan_deadline",
        default="10m",
        metavar="DURATION",
        help="give up on registry requests not answered this long after a scan starts (default 10m);"
        " each request also has 30s, and a registry that stopped answering is not waited on again",
    )


def _state_flags(p: argparse.ArgumentParser) -> None:
    """``--state-dir`` for the verbs that read the state database (required there)."""
    _flag(p, "--state-dir", env="state_dir", metavar="DIR", help="the state `automator run --state-dir` keeps")


def _gate_flags(p: argparse.ArgumentParser) -> None:
    """``--state-dir`` for scan and plan: choose past the gates that need memory, as ``run`` does."""
    _flag(
        p,
        "--state-dir",
        env="state_dir",
        metavar="DIR",
        help="the state `automator run --state-dir` keeps, read only: minAge counts from when run first saw"
        " a tag, and rolled-back versions stay held, as in run (default: no state)",
    )


def _gate_memory(directory: str | None) -> MemorySource | None:
    """The gates' memory from the state database at ``directory``, opened read-only (None: no state)."""
    if not directory:
        return None
    from automator.state import StateStore
    from automator.state.gates import memory

    return memory(StateStore.read_only(Path(directory)))


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    """``--cluster NAME=KUBECONFIG`` and the synchronizer's identity in each cluster."""
    g = p.add_argument_group("clusters (what runs where)")
    _flag(
        g,
        "--cluster",
        env="clusters",
        listed=True,
        metavar="NAME=KUBECONFIG",
        action="append",
        help="read what runs in this cluster from the synchronizer's inventory (repeatable; NAME= or NAME: the"
        " in-cluster config; the variable: comma-separated); with --state-dir what it reports is recorded",
    )
    _flag(
        g,
        "--sync-name",
        env="cluster_sync_name",
        default="default",
        help="the synchronizer's --name (default: default)",
    )
    _flag(
        g,
        "--sync-namespace",
        env="cluster_sync_namespace",
        help="where the synchronizer keeps its inventory (its --inventory-namespace; default: the kubeconfig"
        " context's namespace, in the cluster the pod's, else default)",
    )
    _flag(
        g,
        "--inventory-kind",
        env="cluster_inventory_kind",
        default="configmap",
        choices=("configmap", "secret"),
        help="the synchronizer's --inventory-kind (default: configmap)",
    )


def _add_status_forge_args(p: argparse.ArgumentParser) -> None:
    """Without --cluster: the synchronizer's commit statuses on the base branch's recent commits."""
    g = p.add_argument_group("without cluster access: the synchronizer's commit statuses")
    _flag(g, "--forge", env="forge", choices=("github", "gitlab", "none"), help="where the statuses are posted")
    _flag(g, "--forge-url", env="forge_url", help="GitHub Enterprise API / GitLab URL")
    _flag(g, "--forge-repository", env="forge_repository", help="owner/repo")
    _flag(g, "--forge-token-env", env="forge_token_env", help="env var with the API token")
    _flag(g, "--forge-token-file", env="forge_token_file", help="file with the API token")


class _Version(argparse.Action):
    """``--version``: the version and the commit it was built from, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_string())
        parser.exit()


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``verb`` given (``""``: none), other verbs' heavy arguments are left out."""
    parser = _Parser(
        prog="automator",
        description="Image update automation for GitOps config repos.",
        epilog="--log-level, --log-format and -o/--output go before or after the verb. Each flag's "
        "environment variable is named in `automator VERB --help`. Exit codes: 0 all good, 1 some "
        "policy (or object) failed, 2 usage or configuration error; `plan --exit-code` adds 3 and 4.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and the commit, then exit")
    _global_flags(parser, top=True, outputs=sorted({o for v in OUTPUTS.values() for o in v}))
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=_Parser)

    def verb_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, description=kw.get("help"), **kw)
        _global_flags(p, top=False, outputs=OUTPUTS.get(name, ()) if name != "sync" else ())
        return p

    p = verb_parser("validate", help="load and check every policy file and every setter marker in a config repo")
    _repo_args(p)

    p = verb_parser("scan", help="list tags for every policy; show the tag its files hold and the choice made")
    _repo_args(p)
    _add_registry_args(p)
    _gate_flags(p)

    p = verb_parser(
        "plan",
        help="scan, choose and show the rewrite as a diff; nothing changes",
        epilog="With --exit-code: 0 nothing to do, 1 some policy failed, 2 usage or configuration error "
        "(a policy file included), 3 changes pending, 4 markers that name no policy (before 3).",
    )
    _repo_args(p)
    p.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 3 when changes are pending and 4 when a marker names no policy, instead of 0 (for CI)",
    )
    _add_registry_args(p)
    _gate_flags(p)

    p = verb_parser("run", help="the automator: scan, rewrite, commit, push and open pull requests")
    p.add_argument("--once", action="store_true", help="one cycle, then exit (default: repeat every --interval)")
    _flag(p, "--config", env="config", help="automator.yaml (default: built-in defaults)")
    _flag(p, "--git-url", env="git_url", help="config repo remote (https, ssh, file, path)")
    _flag(p, "--branch", env="branch", help="base branch (default: main)")
    _flag(p, "--path", env="path", help="sub-directory with policies and manifests")
    _flag(p, "--mode", env="mode", choices=("pull-request", "direct"), help="pull-request (default) or direct")
    _flag(p, "--forge", env="forge", choices=("github", "gitlab", "none"), help="where pull requests are opened")
    _flag(p, "--forge-url", env="forge_url", help="GitHub Enterprise API / GitLab URL")
    _flag(p, "--forge-repository", env="forge_repository", help="owner/repo")
    _flag(p, "--forge-token-env", env="forge_token_env", help="env var with the API token")
    _flag(p, "--forge-token-file", env="forge_token_file", help="file with the API token")
    _flag(p, "--git-username", env="git_username", help="HTTPS user (x-access-token)")
    _flag(p, "--git-token-file", env="git_token_file", help="file with the HTTPS token")
    _flag(p, "--git-token-env", env="git_token_env", help="env var with the HTTPS token")
    _flag(p, "--ssh-key", env="ssh_key", help="SSH private key for git")
    _flag(p, "--ssh-known-hosts", env="ssh_known_hosts", help="known_hosts for git over SSH")
    _flag(p, "--author-name", env="git_author_name", help="commit author name")
    _flag(p, "--author-email", env="git_author_email", help="commit author email")
    _flag(
        p,
        "--cache-dir",
        env="cache_dir",
        default=str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "automator"),
        help="clone cache reused across runs (default $XDG_CACHE_HOME/automator)",
    )
    _flag(p, "--interval", env="interval", default="5m", help="time between cycles without --once (default 5m)")
    _flag(
        p,
        "--state-dir",
        env="state_dir",
        metavar="DIR",
        help="keep what each cycle saw and did (tags first seen, choices, pull requests, merges) in DIR/state.db"
        " (default: no state beyond git and the forge)",
    )
    _cluster_flags(p)
    g = p.add_argument_group("promotion (spec.promotion's queries)")
    _flag(
        g,
        "--prometheus",
        env="prometheus",
        listed=True,
        metavar="NAME=URL",
        action="append",
        help="the Prometheus HTTP API of the cluster NAME (as --cluster names it), where spec.promotion's"
        " queries for that cluster run (repeatable; the variable: comma-separated)",
    )
    _flag(
        g,
        "--prometheus-token-file",
        env="prometheus_token_file",
        metavar="FILE",
        help="a bearer token for the Prometheus servers, read again for each query (default: none)",
    )
    _flag(
        p,
        "--notifications",
        env="notifications",
        metavar="FILE",
        help="tell the notifiers in FILE (webhook, Slack, Teams, PR comments) about pull requests opened, updated,"
        " merged, closed and policies failing cycle after cycle (README: Notifications)",
    )
    _flag(
        p,
        "--state-retention",
        env="state_retention",
        default="2160h",
        help="forget cycles, choices and events older than this (default 2160h: 90 days)",
    )
    g = p.add_argument_group("service (without --once)")
    _flag(
        g,
        "--listen",
        env="listen",
        default=":8080",
        help="/healthz, /readyz, /metrics, /status and (without --webhook-listen) /hooks/*",
    )
    _flag(
        g,
        "--schedule",
        env="schedule",
        help="crontab expression for full cycles instead of --interval, e.g. '*/15 7-19 * * 1-5'",
    )
    _flag(g, "--timezone", env="timezone", default="UTC", help="time zone of --schedule")
    _flag(
        g,
        "--webhook-secret-file",
        env="webhook_secret_file",
        help="shared secret registry webhooks must present; without it /hooks/* answer 404",
    )
    _flag(
        g,
        "--webhook-listen",
        env="webhook_listen",
        help="serve /hooks/* here instead of on --listen, so only they face the registries",
    )
    g.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=ENV.bool("leader_elect", False),
        help=_with_env(
            "run cycles only while this replica holds a coordination.k8s.io Lease (several replicas: one works,"
            " the others stand by and take over)",
            ENV.name("leader_elect"),
        ),
    )
    _flag(
        g,
        "--shards",
        env="shards",
        default="1",
        metavar="N",
        help="with --leader-elect: split the policies into N shards by a stable hash of their image, each"
        " worked by the replica holding its Lease (<lease-name>-shard-<i>); replicas share them fairly"
        " (default 1: plain leader election)",
    )
    _flag(g, "--lease-name", env="lease_name", default="automator", help="the Lease's name (default automator)")
    _flag(g, "--lease-namespace", env="lease_namespace", help="the Lease's namespace (default: the pod's)")
    _flag(
        g,
        "--lease-duration",
        env="lease_duration",
        default="15s",
        help="how long a Lease nobody renews stays its holder's; a holder cut off stops working after 2/3 of it",
    )
    _flag(g, "--lease-kubeconfig", env="lease_kubeconfig", metavar="FILE", help="default: the in-cluster config")
    _flag(
        g,
        "--lease-identity",
        env="lease_identity",
        help="this replica's name in the Lease (default: $POD_NAME, else the host name)",
    )
    _flag(
        g,
        "--lease-advertise",
        env="lease_advertise",
        metavar="HOST",
        help="the address other replicas reach this one at while it holds the Lease, so standbys pass"
        " webhooks and dashboard pages on to it (default: $POD_IP; without it, standbys answer 503)",
    )
    _flag(
        g,
        "--dashboard-token-file",
        env="dashboard_token_file",
        metavar="FILE",
        help="the dashboard (/ on --listen) and /status need this token (Authorization: Bearer, or sign in);"
        " read again when the file changes (default: open to whoever reaches --listen)",
    )
    _flag(
        g,
        "--dashboard-refresh",
        env="dashboard_refresh",
        default="15s",
        help="how often an open dashboard page refreshes itself (0s: never)",
    )
    _flag(
        g,
        "--webhook-debounce",
        env="webhook_debounce",
        default="5s",
        help="wait this long after a webhook so one cycle covers a burst of pushes",
    )
    _flag(
        g,
        "--cycle-timeout",
        env="cycle_timeout",
        default="30m",
        help="/healthz fails once a cycle runs longer than this (a hung git or API call)",
    )
    _add_registry_args(p)

    p = verb_parser(
        "status",
        help="per policy: the newest tag, the one that qualifies, the value in git, the open pull request and"
        " what each cluster runs; one state word each and, when held or failing, why",
    )
    p.add_argument("policies", nargs="*", metavar="POLICY", help="only these policies (default: every one)")
    _state_flags(p)
    _cluster_flags(p)
    _add_status_forge_args(p)

    p = verb_parser("history", help="the timeline of each version of a policy, with the lead time of each step")
    p.add_argument("policy", nargs="?", metavar="POLICY", help="the policy, as `automator status` names it")
    _state_flags(p)

    p = verb_parser("demo", help="run the main job on an embedded local registry and config repo")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory and print its path")
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="then leave the registry running and print the commands that run the bundled examples against"
        " it, until Ctrl-C",
    )

    p = verb_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="e.g. `source <(automator completion bash)`")

    p = verb_parser("sync", help="apply a config repo branch to the cluster (the synchronizer)")
    if verb in (None, "sync"):
        from automator.sync import command as sync_command

        sync_command.add_arguments(p)
        _sync_env_help(p, sync_command.ENV)
        for action in p._actions:
            if action.dest == "output":  # -o before the verb must survive the verb's parser
                p.set_defaults(sync_output_default=action.default)
                action.default = argparse.SUPPRESS
        p.add_argument("-o", dest="output", choices=OUTPUTS["sync"], default=argparse.SUPPRESS, help="= --output")
    return parser


def _sync_env_help(p: argparse.ArgumentParser, env: Env) -> None:
    """Name each sync flag's ``AUTOMATOR_SYNC_*`` variable in its help (the synchronizer reads
    every one, :mod:`automator.sync.command`)."""
    for action in p._actions:
        if action.option_strings and action.dest != "help" and env_variable(action) is None:
            action.help = _with_env(action.help, env.name(SYNC_LISTS.get(action.dest, action.dest)))


# --------------------------------------------------------------------------- generated from the parser


@dataclass(frozen=True)
class _Option:
    flags: tuple[str, ...]
    choices: tuple[str, ...]
    takes_value: bool
    help: str


def _verbs(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Each verb's parser and one-line help, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (p, helps.get(name, "")) for name, p in action.choices.items()}
    return {}


def _options(p: argparse.ArgumentParser) -> list[_Option]:
    out = []
    for a in p._actions:
        if not a.option_strings or a.help == argparse.SUPPRESS:
            continue
        text = _ENV_NOTE.sub("", a.help or "")
        out.append(_Option(tuple(a.option_strings), tuple(map(str, a.choices or ())), a.nargs != 0, text))
    return out


def _positional_choices(p: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(str(c) for a in p._actions if not a.option_strings and a.choices for c in a.choices)


def environment_variables(parser: argparse.ArgumentParser) -> list[tuple[str, str, str, str]]:
    """Every ``AUTOMATOR_*`` variable the parser's flags read: (variable, flag, verbs, help)."""
    found: dict[str, tuple[str, list[str], str]] = {}
    everywhere = {env_variable(a) for a in parser._actions} - {None}
    for verb, (p, _) in [("", (parser, "")), *_verbs(parser).items()]:
        for a in p._actions:
            variable = env_variable(a)
            if variable is None:
                continue
            long = [f for f in a.option_strings if f.startswith("--") and not f.startswith("--no-")]
            text = _ENV_NOTE.sub("", a.help or "") or (f"one of {', '.join(map(str, a.choices))}" if a.choices else "")
            entry = found.setdefault(variable, ((long or a.option_strings)[0], [], text))
            if verb and variable not in everywhere:
                entry[1].append(verb)
    rows = [(var, flag, ", ".join(verbs) or "every verb", text) for var, (flag, verbs, text) in found.items()]
    return sorted(rows, key=lambda r: (r[0].startswith("AUTOMATOR_SYNC_"), r[0]))


def environment_table(parser: argparse.ArgumentParser | None = None) -> str:
    """The README's table of variables, generated from the parser (``scripts/readme-env.py``)."""
    lines = ["| variable | flag | verbs | what it sets |", "| --- | --- | --- | --- |"]
    for variable, flag, verbs, text in environment_variables(parser or build_parser()):
        lines.append(f"| `{variable}` | `{flag}` | {verbs} | {text.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """A completion script for ``shell`` (bash, zsh, fish), generated from the parser."""
    if shell == "fish":
        return _fish(parser)
    body = _bash(parser)
    if shell == "zsh":
        return (
            "#compdef automator\n# zsh completion for automator (bash's, through bashcompinit); generated by"
            " `automator completion zsh`.\n# Load it: source <(automator completion zsh)\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + body
        )
    return body


def _words(items: Sequence[str]) -> str:
    return " ".join(items)


def _bash(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)

    def values(opts: list[_Option], indent: str) -> list[str]:
        out = []
        for o in opts:
            if o.choices:
                reply = f'COMPREPLY=($(compgen -W "{_words(o.choices)}" -- "$cur"))'
                out.append(f"{indent}{'|'.join(o.flags)}) {reply}; return ;;")
            elif o.takes_value:
                out.append(f"{indent}{'|'.join(o.flags)}) return ;;  # a value: file names")
        return out

    top = _options(parser)
    lines = [
        "# bash completion for automator; generated by `automator completion bash`.",
        "# Load it: source <(automator completion bash); keep it: automator completion bash >"
        " ~/.local/share/bash-completion/completions/automator",
        "_automator() {",
        "    # $2: the word completed, $3: the one before (bash and zsh's bashcompinit alike)",
        '    local cur="$2" prev="$3" verb="" word',
        '    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do  # 0-based slice in zsh too',
        '        case "$word" in',
        f'            {"|".join(verbs)}) verb="$word"; break ;;',
        "        esac",
        "    done",
        '    case "$verb" in',
        '        "")',
        '            case "$prev" in',
        *values(top, "                "),
        "            esac",
        '            if [[ "$cur" == -* ]]; then',
        f'                COMPREPLY=($(compgen -W "{_words([f for o in top for f in o.flags])}" -- "$cur"))',
        "            else",
        f'                COMPREPLY=($(compgen -W "{_words(list(verbs))}" -- "$cur"))',
        "            fi ;;",
    ]
    for name, (p, _) in verbs.items():
        opts = _options(p)
        positional = _positional_choices(p)
        lines += [
            f"        {name})",
            '            case "$prev" in',
            *values(opts, "                "),
            "            esac",
            '            if [[ "$cur" == -* ]]; then',
            f'                COMPREPLY=($(compgen -W "{_words([f for o in opts for f in o.flags])}" -- "$cur"))',
        ]
        if positional:
            lines += ["            else", f'                COMPREPLY=($(compgen -W "{_words(positional)}" -- "$cur"))']
        lines += ["            fi ;;"]
    lines += ["    esac", "}", "complete -o default -F _automator automator", ""]
    return "\n".join(lines)


def _fish(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    none_yet = f"not __fish_seen_subcommand_from {_words(list(verbs))}"

    def quoted(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def option(o: _Option, condition: str) -> str:
        parts = [f"complete -c automator -n {quoted(condition)}"]
        for flag in o.flags:
            parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
        if o.choices:
            parts.append(f"-x -a {quoted(_words(o.choices))}")
        elif o.takes_value:
            parts.append("-r")
        if o.help:
            parts.append(f"-d {quoted(o.help)}")
        return " ".join(parts)

    lines = [
        "# fish completion for automator; generated by `automator completion fish`.",
        "# Keep it: automator completion fish > ~/.config/fish/completions/automator.fish",
    ]
    for name, (_, text) in verbs.items():
        lines.append(f"complete -c automator -f -n {quoted(none_yet)} -a {name} -d {quoted(text)}")
    lines += [option(o, none_yet) for o in _options(parser)]
    for name, (p, _) in verbs.items():
        condition = f"__fish_seen_subcommand_from {name}"
        lines += [option(o, condition) for o in _options(p)]
        positional = _positional_choices(p)
        if positional:
            lines.append(f"complete -c automator -f -n {quoted(condition)} -a {quoted(_words(positional))}")
    return "\n".join(lines) + "\n"


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
    from automator.plan import unselected
    from automator.policy import load_policies
    from automator.report import dump, error_json
    from automator.update.markercheck import check_tree

    root = _repo_root(args.root)
    policies = load_policies(root)
    errors = [*policies.errors, *check_tree(root, policies), *_config_errors(root)]
    warnings = [
        f"{p.source}: policy {p.name}: no ImageUpdateAutomation selects it (its namespace, policySelector), "
        "so its markers are not updated"
        for p in unselected(policies)
    ]
    if args.output in ("json", "yaml"):
        doc = {
            "policies": [
                {"name": p.name, "image": p.image.repository, "source": str(p.source)} for p in policies.policies
            ],
            "automations": [
                {"name": a.name, "path": a.path, "source": str(a.source), "suspend": a.suspend}
                for a in policies.automations
            ],
            "errors": [error_json(e) for e in errors],
            "warnings": warnings,
        }
        dump(doc, args.output, sys.stdout)
    else:
        for p in policies.policies:
            print(f"ok     {p.name:<40} {p.image.repository}  ({p.source})")
        for a in policies.automations:
            state = " (suspended)" if a.suspend else ""
            print(f"ok     {a.name:<40} ImageUpdateAutomation, update.path {a.path}{state}  ({a.source})")
        for warning in warnings:
            print(f"warning: {warning}")
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
    """How registries are reached, and how signatures are verified (`verify` policies): the
    process's verifier reads keys from ``--credentials-dir`` and trusts ``--sigstore-trusted-root``."""
    from automator.registry import RegistryConfig
    from automator.registry.access import RegistryAccess
    from automator.verify import Verifier, set_default_verifier

    root = Path(args.sigstore_trusted_root) if args.sigstore_trusted_root else None
    if root is not None and not root.is_file():
        raise ConfigError(f"--sigstore-trusted-root {str(root)!r}: not a file")
    secrets = Path(args.credentials_dir) if args.credentials_dir else None
    set_default_verifier(Verifier(secrets_dir=secrets, trusted_root=root))
    return RegistryAccess(
        docker_config=Path(args.docker_config) if args.docker_config else None,
        credentials_dir=Path(args.credentials_dir) if args.credentials_dir else None,
        insecure_hosts=tuple(args.insecure_registry),
        ca_file=args.ca_file,
        base=RegistryConfig(
            scan_deadline=_duration("--scan-deadline", args.scan_deadline),
            max_response_bytes=_size("--max-response-size", args.max_response_size),
            user_agent=_user_agent(args),
        ),
    )


def _user_agent(args: argparse.Namespace) -> str:
    """``automator/<version>``; with ``--leader-elect``, the replica's name too, so a registry's
    logs (and the tests' counting proxy) tell the replicas apart."""
    from automator.buildinfo import __version__

    if not getattr(args, "leader_elect", False):
        return f"automator/{__version__}"
    from automator.sync.lease import replica_identity

    return f"automator/{__version__} (replica {replica_identity(args.lease_identity)})"


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
    from automator.policy import load_policies

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
    from automator.report import dump, print_scan_table, run_scan, scan_json

    root, policies = _load_repo(args.root)
    if policies is None:
        return EXIT_USAGE
    gc.freeze()  # the policies live as long as the scan: keep the cyclic GC from walking them again (see main)
    results = asyncio.run(run_scan(root, policies, _access(args), sys.stderr, _gate_memory(args.state_dir)))
    if args.output in ("json", "yaml"):
        dump(scan_json(results, policies), args.output, sys.stdout)
    else:
        print_scan_table(results, sys.stdout)
        _policy_errors(policies, sys.stderr)
    return _exit_code(policies.errors, any(not r.ok for r in results))


def cmd_plan(args: argparse.Namespace) -> int:
    from automator.report import dump, plan_json, print_plan, run_plan

    root, policies = _load_repo(args.root)
    if policies is None:
        return EXIT_USAGE
    plan = asyncio.run(run_plan(root, policies, _access(args), sys.stderr, _gate_memory(args.state_dir)))
    if args.output in ("json", "yaml"):
        dump(plan_json(plan, policies), args.output, sys.stdout)
    else:
        # a clean patch on stdout when redirected (`automator plan > fix.patch`); the table beside it
        table_out = sys.stdout if sys.stdout.isatty() else sys.stderr
        print_plan(plan, sys.stdout, table_out)
        _policy_errors(policies, sys.stderr)
    code = _exit_code(policies.errors, bool(plan.failed))
    if code != EXIT_OK or not args.exit_code:
        return code
    if plan.markers:
        return EXIT_UNKNOWN_MARKERS
    return EXIT_OK if plan.update.empty else EXIT_PENDING


# --------------------------------------------------------------------------- entry


def cmd_run(args: argparse.Namespace) -> int:
    from automator.config import DEFAULT, load_config, with_overrides
    from automator.git import Credentials
    from automator.registry.memo import RegistryMemo
    from automator.report import ScanProgress, dump, print_run, run_json
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
    notify = _notifications(args.notifications, args.state_dir)
    options = RunOptions(
        Path(args.cache_dir),
        credentials(),
        _access(args),
        ScanProgress(0, sys.stderr) if args.once and not logfmt.json_lines() else None,
        repo_config=not args.config,
        overrides=overrides,
        state=_state_store(args.state_dir, durations["--state-retention"]),
        notify=notify,
        prober=_prometheuses(args),
    )

    def report(summary: RunSummary) -> None:
        if logfmt.json_lines():  # --log-format json: the cycle's report is one JSON line too
            sys.stdout.write(logfmt.report_line("cycle", run_json(summary), "cycle finished", "automator.run"))
            sys.stdout.flush()
        elif args.output in ("json", "yaml"):
            dump(run_json(summary), args.output, sys.stdout)
            sys.stdout.flush()
        else:
            print_run(summary, sys.stdout, brief_when_idle=not args.once)
            sys.stdout.flush()

    _shard_count(args)  # a bad --shards fails before any cycle
    if args.once:
        try:
            sight = _observe_clusters(args, options.state)  # the promotion gates read what runs now
            summary = run_once(config, forges, replace(options, credentials=credentials(), clusters=sight))
        finally:
            if notify is not None:  # what the cycle queued goes out before the process ends
                notify.close()
        _observe_clusters(args, options.state)
        report(summary)
        return _exit_code(summary.policy_errors, summary.failed)

    from automator.automations import AutomationClock
    from automator.daemon import AutomatorService, Schedule, serve
    from automator.httpd import SecretFile

    clock = AutomationClock()  # ImageUpdateAutomations' spec.interval, across the service's cycles

    leader = _leader(args)
    from automator.policy import ParseCache

    parsed = ParseCache()  # the policy files, parsed again only when they change

    def cycle(memo: RegistryMemo) -> RunSummary:
        selection = _selection(leader)
        sight = _observe_clusters(args, options.state)  # the promotion gates read what runs now
        summary = run_once(
            config,
            _fenced(forges, leader, selection),
            replace(
                options,
                credentials=credentials(),
                memo=memo,
                clock=clock,
                shards=selection,
                clusters=sight,
                policy_cache=parsed,
            ),
        )
        _observe_clusters(args, options.state)
        return summary

    service = AutomatorService(
        cycle,
        Schedule.parse(durations["--interval"], args.schedule, args.timezone),
        args.listen,
        secret=SecretFile(args.webhook_secret_file) if args.webhook_secret_file else "",
        debounce=durations["--webhook-debounce"],
        cycle_timeout=durations["--cycle-timeout"],
        report=report,
        webhook_listen=args.webhook_listen or None,
        dashboard=_dashboard(args, config, lambda: service),
        leader=leader,
        **_status_sources(args.state_dir, options.state),
    )
    if notify is not None:
        from automator.notify.metrics import count_notifications

        count_notifications(service.metrics.registry, notify.dispatcher)
    if leader is not None:
        leader.on_change = lambda held: service.wake.set()  # a new holder starts at once
    try:
        return serve(service)
    finally:
        if notify is not None:  # after the last cycle (SIGTERM lets it finish): its events go out
            notify.close()


def _shard_count(args: argparse.Namespace) -> int:
    text = str(args.shards).strip()
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise ConfigError(f"--shards {text!r}: expected a whole number from 1 to 1024")
    if int(text) > 1 and not args.leader_elect:
        raise ConfigError("--shards needs --leader-elect: each shard is held through a Lease")
    return int(text)


def _leader(args: argparse.Namespace) -> Any:
    """``--leader-elect``: this replica's side of the election (None without it); with
    ``--shards N`` above 1, its side of N elections (:class:`~automator.sync.lease.ShardLeases`)."""
    count = _shard_count(args)
    if not args.leader_elect:
        return None
    from automator.sync.cluster import KubeCluster
    from automator.sync.lease import KubeLeases, LeaseHolder, ShardLeases, lease_for
    from automator.sync.settings import pod_namespace

    duration = _duration("--lease-duration", args.lease_duration)
    namespace = args.lease_namespace or pod_namespace()
    config = lease_for(namespace, args.lease_name, args.lease_identity, duration, _advertised(args))
    cluster = KubeCluster.connect(args.lease_kubeconfig, pool_size=1, timeout=config.renew_deadline)
    if count > 1:
        return ShardLeases(KubeLeases(cluster), config, count)
    return LeaseHolder(KubeLeases(cluster), config)


def _selection(leader: Any) -> Any:
    """The shards a cycle works (``--shards``), as it starts: None for one shard or none at all."""
    if leader is None or leader.count == 1:
        return None
    from automator.shards import ShardSelection

    return ShardSelection(leader.count, leader.shards())


def _advertised(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Where this replica takes webhooks and serves its dashboard, written on the Lease while it
    holds it: ``http://HOST:PORT`` of ``--webhook-listen`` (else ``--listen``) and of
    ``--listen``, HOST being ``--lease-advertise`` or ``$POD_IP``; none outside a pod."""
    from automator.daemon.service import DASHBOARD_URL, WEBHOOK_URL
    from automator.httpd import parse_listen

    host = (args.lease_advertise or os.environ.get("POD_IP", "")).strip()
    if not host:
        return ()
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    _, hooks = parse_listen(
        args.webhook_listen or args.listen, "--webhook-listen" if args.webhook_listen else "--listen"
    )
    _, pages = parse_listen(args.listen)
    return ((WEBHOOK_URL, f"http://{host}:{hooks}"), (DASHBOARD_URL, f"http://{host}:{pages}"))


def _fenced(forges: Callable[[Automation], Forge], leader: Any, selection: Any = None) -> Callable[[Automation], Forge]:
    """The forges, their writes refused once ``leader`` no longer holds the Lease (with shards:
    every shard the cycle started with); NoneForge, whose writes stay in this process, unfenced."""
    if leader is None:
        return forges
    from automator.forge import NoneForge
    from automator.forge.fenced import FencedForge

    held: Callable[[], bool] = leader.held if selection is None else (lambda: leader.holds(selection.held))

    def fenced(config: Automation) -> Forge:
        forge = forges(config)
        return forge if isinstance(forge, NoneForge) else FencedForge(forge, held)

    return fenced


def _dashboard(args: argparse.Namespace, config: Automation, service: Callable[[], Any]) -> Any:
    """The dashboard on --listen: from the state database (without --state-dir it says it needs
    one), linking each policy to its file on the forge as the last cycle loaded it."""
    from automator.dashboard import Dashboard, state_source
    from automator.httpd import SecretFile
    from automator.run import blob_url

    def policy_url(name: str) -> str | None:
        for policy in service().policies or ():
            if policy.name == name:
                return blob_url(config, policy.source.path, policy.source.line)
        return None

    def cycle() -> str | None:
        last = service().last
        if last is None:
            return None
        when = (last.finished or last.started).strftime("%Y-%m-%d %H:%M:%SZ")
        return f"{last.outcome} at {when} ({last.trigger})"

    refresh = int(positive_duration("--dashboard-refresh", args.dashboard_refresh, zero_ok=True))
    source = state_source(Path(args.state_dir), policy_url=policy_url, cycle=cycle) if args.state_dir else None
    token = SecretFile(args.dashboard_token_file, "--dashboard-token-file") if args.dashboard_token_file else None
    return Dashboard(source, token=token, refresh=refresh)


def _notifications(path: str | None, state_dir: str | None) -> CycleAnnouncer | None:
    """``--notifications FILE``, validated now; with ``--state-dir`` what was sent is remembered
    there (the dedupe window holds across a restart)."""
    if not path:
        return None
    from automator.notify import CycleAnnouncer, Dispatcher, load_notifications

    settings = load_notifications(Path(path))
    sent = Path(state_dir) / "notifications-sent.json" if state_dir else None
    return CycleAnnouncer(settings, Dispatcher(settings, dedupe_file=sent))


def _observe_clusters(args: argparse.Namespace, store: StateStore | None) -> Any:
    """Before and after a cycle: what each ``--cluster`` reports, recorded in the state (a
    cluster that cannot be read is a warning: the cycle's own work goes on). What was read, for
    the promotion gates (a :class:`~automator.state.gates.ClusterSight`; None without state)."""
    if store is None or not args.cluster:
        return None
    from automator.state.gates import ClusterSight
    from automator.status import read_clusters, record_reports

    reports, errors = read_clusters(
        args.cluster, sync_name=args.sync_name, namespace=args.sync_namespace, inventory_kind=args.inventory_kind
    )
    for cluster, error in sorted(errors.items()):
        log.warning("cluster %s: %s", cluster, error)
    try:
        record_reports(store, reports)
    except Exception:  # recording must not stop the automator's own work
        log.exception("state: could not record the clusters' reports")
        errors = {**errors, **dict.fromkeys(reports, "its report could not be recorded")}
    return ClusterSight(tuple(sorted({*reports, *errors})), errors)


def _prometheuses(args: argparse.Namespace) -> Any:
    """``--prometheus NAME=URL``: the promotion queries' Prometheus per cluster (None: none)."""
    if not args.prometheus:
        return None
    from automator.promotion import Prometheuses

    urls: dict[str, str] = {}
    for flag in args.prometheus:
        name, sep, url = flag.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ConfigError(f"--prometheus {flag!r}: expected NAME=URL, NAME as --cluster names the cluster")
        if name.strip() in urls:
            raise ConfigError(f"--prometheus: cluster {name.strip()!r} is given twice")
        urls[name.strip()] = url.strip()
    token = Path(args.prometheus_token_file) if args.prometheus_token_file else None
    if token is not None and not token.is_file():
        raise ConfigError(f"--prometheus-token-file {str(token)!r}: not a file")
    try:
        return Prometheuses(urls, token_file=token)
    except ConfigError as exc:
        raise ConfigError(f"--prometheus: {exc}") from None


def _status_sources(directory: str | None, store: StateStore | None) -> dict[str, Any]:
    """With --state-dir, the service's ``/status`` model (a read-only connection per request:
    the loop writes on its own) and the steps completed, for the lead-time histograms."""
    if not directory or store is None:
        return {}
    from datetime import datetime

    from automator.status import status_from_state, status_json
    from automator.status_history import completed_steps, histories

    def model(now: datetime) -> dict[str, Any]:
        return status_json(status_from_state(Path(directory), now))

    return {
        "status_model": model,
        "lead_times": lambda: completed_steps(histories(store)),
        "announce": store.record_announcements,
    }


_DURATION_FLAGS = ("--interval", "--webhook-debounce", "--cycle-timeout", "--state-retention")


def _state_store(directory: str | None, retention: float) -> StateStore | None:
    """The state database under ``--state-dir``, open for the life of the process (None: no state)."""
    if not directory:
        return None
    from datetime import timedelta

    from automator.state import StateStore

    return StateStore(Path(directory), retention=timedelta(seconds=retention))


_MAY_BE_ZERO = ("--webhook-debounce",)


def _duration(flag: str, text: str) -> float:
    try:
        return positive_duration(flag, text, zero_ok=flag in _MAY_BE_ZERO)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _read_state(directory: str | None, verb: str) -> StateStore:
    """The state database, read-only (beside the automator writing it); --state-dir is required."""
    if not directory:
        raise ConfigError(
            f"`automator {verb}` reads the state `automator run --state-dir DIR` keeps: give --state-dir DIR"
            " (or AUTOMATOR_STATE_DIR)"
        )
    from automator.state import StateStore

    return StateStore.read_only(Path(directory))


def _record_clusters(directory: str | None, reports: dict[str, Any]) -> None:
    """What the clusters reported, into the state database when no automator holds it (one that
    does records its own, given --cluster)."""
    if not directory or not reports:
        return
    from automator.state import StateStore
    from automator.status import record_reports

    try:
        store = StateStore(Path(directory))
    except ConfigError as exc:
        log.info("state: not recording the clusters' reports: %s", exc)
        return
    try:
        record_reports(store, reports)
    finally:
        store.close()


def _cluster_reports(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """``--cluster``: each one's report from its synchronizer's inventory (none given: none)."""
    if not args.cluster:
        return {}, {}
    from automator.status import read_clusters

    return read_clusters(
        args.cluster, sync_name=args.sync_name, namespace=args.sync_namespace, inventory_kind=args.inventory_kind
    )


def cmd_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from automator.status import FAILING, build_status, dump, forge_reports, print_status, status_json, stored_report

    store = _read_state(args.state_dir, "status")
    try:
        reports, errors = _cluster_reports(args)
        if args.cluster:
            _record_clusters(args.state_dir, reports)
        elif args.forge and args.forge != "none":
            forge = _forge_from_flags(args)
            revisions = list(dict.fromkeys(c.revision for c in reversed(store.cycles(50))))
            reports, errors = forge_reports(forge.commit_statuses, revisions)
        else:  # what `automator run --cluster` last recorded
            reports = {c: stored_report(r) for c, r in store.latest_cluster_reports().items()}
        status = build_status(store, reports, now=datetime.now(UTC), only=args.policies, cluster_errors=errors)
    finally:
        store.close()
    if args.output in ("json", "yaml"):
        dump(status_json(status), args.output, sys.stdout)
    else:
        print_status(status, sys.stdout)
    return EXIT_FAILED if errors or any(p.state == FAILING for p in status.policies) else EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from automator.status import dump
    from automator.status_history import histories, history_json, print_history

    if not args.policy:
        raise ConfigError("`automator history` shows one policy: give POLICY, as `automator status` names it")
    store = _read_state(args.state_dir, "history")
    try:
        rows = histories(store, [args.policy])[args.policy]
    finally:
        store.close()
    if args.output in ("json", "yaml"):
        dump(history_json(args.policy, rows), args.output, sys.stdout)
    else:
        print_history(args.policy, rows, sys.stdout)
    return EXIT_OK


def _forge_from_flags(args: argparse.Namespace) -> Forge:
    """The forge the --forge-* flags name (for reading the synchronizer's commit statuses)."""
    from automator.config import DEFAULT, with_overrides
    from automator.wiring import make_forge

    config = with_overrides(
        DEFAULT,
        {
            "spec.forge.provider": args.forge,
            "spec.forge.url": args.forge_url,
            "spec.forge.repository": args.forge_repository,
            "spec.forge.auth.tokenEnv": args.forge_token_env,
            "spec.forge.auth.tokenFile": args.forge_token_file,
        },
    )
    return make_forge(config)


def cmd_demo(args: argparse.Namespace) -> int:
    from automator.demo import run_demo

    return run_demo(keep=args.keep, keep_running=args.keep_running)


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(args.shell, build_parser()))
    return EXIT_OK


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
    "completion": cmd_completion,
    "sync": cmd_sync,
    "status": cmd_status,
    "history": cmd_history,
}


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # as PID 1 in a container, SIGTERM is otherwise ignored


def _settle(args: argparse.Namespace) -> str | None:
    """What parsing leaves to do: defaults from the environment checked against the choices
    (argparse checks the command line only), the verb's --output default, one repo root."""
    for flag, value, allowed in (
        ("--log-level / AUTOMATOR_LOG_LEVEL", args.log_level, LOG_LEVELS),
        ("--log-format / AUTOMATOR_LOG_FORMAT", args.log_format, LOG_FORMATS),
    ):
        if value not in allowed:
            return f"{flag} {value!r}: choose from {', '.join(allowed)}"
    outputs = OUTPUTS.get(args.verb)
    if hasattr(args, "output"):
        if outputs is None:
            return f"--output: `automator {args.verb}` has no output formats"
        if args.output not in outputs and args.verb != "sync":  # sync checks its own (and its variable)
            return f"--output {args.output!r}: `automator {args.verb}` writes {', '.join(outputs)}"
    elif outputs is not None:
        args.output = getattr(args, "sync_output_default", None) or outputs[0]
    if args.verb in ("validate", "scan", "plan"):
        if args.path is not None and args.repo is not None and args.path != args.repo:
            return f"the config repo is given twice ({args.path!r} and --repo {args.repo!r}); give it once"
        args.root = args.repo or args.path or "."
    return None


def _error(exc: Exception) -> None:
    """What stopped the verb: a line for a person, or with --log-format json a log record."""
    if logfmt.json_lines():
        log.error("%s", exc)
    else:
        print(f"automator: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if a in _VERBS), "")  # "": no verb, so no verb's heavy flags either
    try:
        args = build_parser(verb).parse_args(argv)
    except ConfigError as exc:  # a default from the environment that cannot be read
        print(f"automator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = _settle(args)
    if problem:
        print(f"automator: {problem}", file=sys.stderr)
        return EXIT_USAGE
    logfmt.configure(args.log_level, args.log_format)
    signal.signal(signal.SIGTERM, _terminate)
    # Modules, models and the parser live as long as the process: keep the cyclic GC from
    # walking them again on every collection of a scan's many short-lived objects.
    gc.freeze()
    try:
        return _VERBS[args.verb](args)
    except ConfigError as exc:
        _error(exc)
        return EXIT_USAGE
    except AutomatorError as exc:
        _error(exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `automator plan | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
