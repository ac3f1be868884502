"""The verb's flags: durations, env defaults, parsing them once into typed settings, output shapes."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pytest

from automator.errors import ConfigError
from automator.sync.__main__ import main
from automator.sync.command import add_arguments, config_from, options_from, print_result
from automator.sync.model import Action, ObjectRef, ObjectResult, SyncResult
from automator.sync.runner import Runner
from automator.sync.settings import CommitStatus, GitSource, Verification

URL = ["--git-url", "https://git.example/x.git"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m", 60), ("1h30m", 5400), ("2m30s", 150), ("0.5s", 0.5), ("250ms", 0.25)]
)
def test_durations_are_the_one_grammar_of_every_flag(text: str, seconds: float) -> None:
    assert parse(["--interval", text]).interval == seconds
    assert parse(["--timeout", text]).timeout == seconds
    from automator.cli import _duration

    assert _duration("--interval", text) == seconds  # run's flags read the very same words


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("90", "did you mean '90s'?"),
        ("", "invalid duration"),
        ("1d", "invalid duration"),
        ("m", "invalid duration"),
        ("abc", "invalid duration"),
        ("-5m", "must be positive"),
        ("0s", "must be positive"),
    ],
)
def test_a_bad_duration_is_refused_with_the_same_words_by_both_programs(
    text: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from automator.cli import _duration

    with pytest.raises(SystemExit):
        parse([f"--interval={text}"])  # "=": argparse reads "-5m" as a flag otherwise
    assert complaint in capsys.readouterr().err
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        _duration("--interval", text)


def test_defaults_match_the_issue() -> None:
    args = parse([])
    assert (args.name, args.branch, args.default_namespace, args.output) == ("default", "main", "default", "table")
    assert (args.interval, args.timeout, args.prune, args.wait, args.once, args.dry_run) == (
        60,
        300,
        True,
        False,
        False,
        False,
    )
    assert args.force_conflicts is True


def test_every_flag_also_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GIT_URL": "https://git.example/x.git", "BRANCH": "prod", "PATH": "clusters/prod,infra",
        "NAME": "edge", "INTERVAL": "2m", "PRUNE": "false", "WAIT": "true", "TIMEOUT": "10m",
        "OUTPUT": "json", "INVENTORY_NAMESPACE": "automator", "IGNORE_FIELDS": "Deployment:/spec/replicas",
        "GPG_KEYS": "/k/a.asc,/k/b.asc", "VERIFY_SIGNATURES": "true", "LISTEN": "[::]:8080",
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(f"AUTOMATOR_SYNC_{key}", value)
    args = parse([])
    assert (args.git_url, args.branch, args.name, args.interval) == ("https://git.example/x.git", "prod", "edge", 120)
    assert (args.prune, args.wait, args.timeout, args.output) == (False, True, 600, "json")
    assert args.verify_signatures is True
    opts = options_from(args)
    assert opts.paths == ("clusters/prod", "infra")
    assert opts.ignore_fields == ("Deployment:/spec/replicas",)
    assert opts.inventory_namespace == "automator"
    # A flag wins over the environment.
    assert parse(["--no-wait", "--path", "only"]).wait is False
    assert options_from(parse(["--path", "only"])).paths == ("only",)


def test_bad_ignore_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--ignore-field 'spec\.replicas'"):
        options_from(parse(["--ignore-field", "spec.replicas", "--inventory-namespace", "x"]))


def test_json_output_is_exactly_the_documented_shape() -> None:
    result = SyncResult(
        revision="abc",
        objects=(
            ObjectResult(
                ObjectRef("apps", "v1", "Deployment", "web", "api"), Action.CONFIGURED, drift=("/spec/replicas",)
            ),
            ObjectResult(ObjectRef("", "v1", "Namespace", "", "web"), Action.UNCHANGED),
        ),
        errors=(),
    )
    out = io.StringIO()
    print_result(result, "json", out)
    data = json.loads(out.getvalue())
    assert data == {
        "revision": "abc",
        "objects": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "web", "name": "api",
             "action": "configured", "drift": ["/spec/replicas"]},
            {"apiVersion": "v1", "kind": "Namespace", "namespace": "", "name": "web", "action": "unchanged"},
        ],
        "errors": [],
    }  # fmt: skip
    table = io.StringIO()
    print_result(result, "table", table)
    lines = table.getvalue().splitlines()
    assert lines[0] == "revision: abc"
    assert lines[1].split() == ["KIND", "NAMESPACE", "NAME", "ACTION", "HEALTH", "DRIFT"]
    assert lines[2].split() == ["Deployment", "web", "api", "configured", "/spec/replicas"]
    assert lines[-1] == "1 configured, 1 unchanged"


def test_the_flags_are_parsed_once_into_frozen_settings(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    config = config_from(
        parse(
            [*URL, "--branch", "prod", "--cache-dir", str(tmp_path), "--git-token-file", str(token),
             "--verify-signatures", "--allowed-signers", "/k/signers", "--wait", "--timeout", "2m",
             "--commit-status", "gitlab", "--name", "edge", "--interval", "30s", "--listen", "127.0.0.1:0",
             "--webhook-secret-file", "/s/hook", "--dry-run", "--output", "json", "--concurrency", "3"]
        )
    )  # fmt: skip
    source = config.runner.source
    assert (source.url, source.branch, source.cache_dir) == ("https://git.example/x.git", "prod", tmp_path)
    assert source.credentials.token == "s3cret-token"
    assert "s3cret-token" not in repr(config)  # settings may be logged; the token they carry never shows
    assert config.runner.verification == Verification(gpg_keys=(), allowed_signers=Path("/k/signers"))
    assert (config.runner.wait, config.runner.timeout) == (True, 120.0)
    assert config.runner.status == CommitStatus("gitlab", "automator/sync/edge")
    assert (config.runner.sync.name, config.runner.sync.dry_run, config.runner.sync.concurrency) == ("edge", True, 3)
    assert config.runner.sync.render_cache == tmp_path / "rendered"
    assert (config.service.interval, config.service.listen) == (30.0, "127.0.0.1:0")
    assert config.service.webhook_secret_file == Path("/s/hook")
    assert (config.once, config.output) == (True, "json")  # a dry run is a single pass
    with pytest.raises(AttributeError):
        config.once = False  # type: ignore[misc]
    quiet = config_from(parse(URL))
    assert (quiet.runner.verification, quiet.runner.status, quiet.once) == (None, None, False)


def test_values_from_the_environment_are_plain_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOR_SYNC_GIT_URL", "https://git.example/x.git")
    monkeypatch.setenv("AUTOMATOR_SYNC_NAME", "edge")
    config = config_from(parse([]))
    assert type(config.runner.source.url) is str and type(config.runner.sync.name) is str


def test_a_token_in_the_git_url_is_not_shown_by_the_settings() -> None:
    source = GitSource("https://bot:s3cret-token@git.example/x.git", "main", Path("/c"))
    assert "s3cret-token" not in repr(source) and "git.example" in repr(source)
    config = config_from(parse(["--git-url", "https://bot:s3cret-token@git.example/x.git"]))
    assert "s3cret-token" not in repr(config)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "--git-url (or AUTOMATOR_SYNC_GIT_URL) is required"),
        (["--git-url=-oProxyCommand=x"], {}, "--git-url '-oProxyCommand=x': git would read it as an option"),
        ([*URL, "--branch=-x"], {}, "--branch '-x': expected a branch name"),
        ([*URL, "--ignore-field", "x"], {}, "--ignore-field 'x': expected [Kind:]/json/pointer"),
        (URL, {"IGNORE_FIELDS": "/ok,x"}, "--ignore-field 'x' (from AUTOMATOR_SYNC_IGNORE_FIELDS): expected"),
        (URL, {"OUTPUT": "yaml"}, "--output 'yaml' (from AUTOMATOR_SYNC_OUTPUT): expected one of table, json"),
        (URL, {"INVENTORY_KIND": "crd"}, "--inventory-kind 'crd' (from AUTOMATOR_SYNC_INVENTORY_KIND): expected"),
        (URL, {"COMMIT_STATUS": "gitea"}, "--commit-status 'gitea' (from AUTOMATOR_SYNC_COMMIT_STATUS): expected"),
        ([*URL, "--verify-signatures"], {}, "--verify-signatures needs --gpg-key FILE or --allowed-signers FILE"),
        (URL, {"VERIFY_SIGNATURES": "yes"}, "(AUTOMATOR_SYNC_GPG_KEYS or AUTOMATOR_SYNC_ALLOWED_SIGNERS)"),
        ([*URL, "--git-token-file", "/no/such/token"], {}, "cannot read --git-token-file '/no/such/token': No such"),
        (URL, {"GIT_TOKEN_FILE": "/no/such"}, "--git-token-file '/no/such' (from AUTOMATOR_SYNC_GIT_TOKEN_FILE)"),
        ([*URL, "--listen", "8080"], {}, "--listen '8080': expected host:port"),
        (URL, {"LISTEN": "nowhere"}, "--listen 'nowhere' (from AUTOMATOR_SYNC_LISTEN): expected host:port"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_its_flag_and_variable(
    argv: list[str], env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"AUTOMATOR_SYNC_{name}", value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from(parse(argv))


def test_listen_is_checked_only_when_the_service_will_listen() -> None:
    assert config_from(parse([*URL, "--once", "--listen", "8080"])).once


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INTERVAL", "90", "argument --interval: '90' (from AUTOMATOR_SYNC_INTERVAL): invalid duration"),
        ("TIMEOUT", "0s", "argument --timeout: '0s' (from AUTOMATOR_SYNC_TIMEOUT): must be positive"),
        ("CONCURRENCY", "0", "argument --concurrency: '0' (from AUTOMATOR_SYNC_CONCURRENCY): expected a whole"),
        ("CONCURRENCY", "many", "argument --concurrency: 'many' (from AUTOMATOR_SYNC_CONCURRENCY): expected"),
    ],
)
def test_a_bad_typed_variable_is_a_usage_error_naming_it(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(f"AUTOMATOR_SYNC_{name}", value)
    with pytest.raises(SystemExit) as exit_:
        parse([])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_same_bad_flag_typed_on_the_command_line_names_no_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--concurrency", "0"])
    err = capsys.readouterr().err
    assert "argument --concurrency: '0': expected a whole number, at least 1" in err
    assert "AUTOMATOR_SYNC" not in err


def test_a_bad_setting_exits_2_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTOMATOR_SYNC_OUTPUT", "yaml")
    assert main([*URL, "--once", "--kubeconfig", "/no/such/kubeconfig"]) == 2
    captured = capsys.readouterr()
    assert "automator sync: error: --output 'yaml' (from AUTOMATOR_SYNC_OUTPUT)" in captured.err
    assert captured.out == ""


def test_commit_status_without_a_reporter_is_refused_before_fetching() -> None:
    config = config_from(parse([*URL, "--commit-status", "github"]))
    with pytest.raises(ConfigError, match="--commit-status needs the forge flags"):
        Runner(config.runner)
