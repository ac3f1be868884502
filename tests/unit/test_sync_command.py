"""The verb's flags: durations, env defaults, option building, output shapes."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest

from automator.errors import ConfigError
from automator.sync.command import add_arguments, options_from, print_result
from automator.sync.model import Action, ObjectRef, ObjectResult, SyncResult


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
