"""The parser as the single source: every variable its help names is the one the flag reads, the
README's table is generated from it, and `--version` finds the commit without a checkout."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from automator import buildinfo, cli
from automator.sync import command as sync_command

ROOT = Path(__file__).resolve().parents[2]
# values the flags accept, for the flags whose type or choices refuse an arbitrary word
SAMPLES = {
    "concurrency": "3",
    "interval": "7m",
    "timeout": "7m",
    "lease_duration": "9s",
}


def flags_with_variables() -> list[tuple[str, argparse.Action, str]]:
    parser = cli.build_parser()
    out = []
    for verb, (p, _) in cli._verbs(parser).items():
        for action in p._actions:
            variable = cli.env_variable(action)
            if variable is not None:
                out.append((verb, action, variable))
    return out


def sample(action: argparse.Action) -> str:
    if action.choices:
        return str(list(action.choices)[-1])
    if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
        return "true"
    return SAMPLES.get(action.dest, f"from-env-{action.dest}")


@pytest.mark.parametrize(
    ("verb", "action", "variable"),
    flags_with_variables(),
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_the_variable_a_flag_names_is_the_one_it_reads(
    verb: str, action: argparse.Action, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = sample(action)
    monkeypatch.setenv(variable, value)
    args = cli.build_parser().parse_args([verb, *(["bash"] if verb == "completion" else [])])
    got = getattr(args, action.dest, None)
    if verb == "sync" and action.dest in cli.SYNC_LISTS:  # repeatable: read when the config is built
        assert sync_command._listed(None, cli.SYNC_LISTS[action.dest])[0] == (value,)
    elif action.dest == "output" and verb == "sync":
        assert args.sync_output_default == value
    elif isinstance(got, list):
        assert got == [value]
    elif isinstance(got, bool):
        assert got is True
    elif isinstance(got, float | int):
        assert got == {"3": 3, "7m": 420.0, "9s": 9.0}[value]
    else:
        assert str(got) == value


def test_every_flag_of_run_and_sync_has_a_variable() -> None:
    """The README's promise: every flag of `run` and `sync` can be set in the environment."""
    verbs = cli._verbs(cli.build_parser())
    for verb in ("run", "sync"):
        parser = verbs[verb][0]
        missing = [
            a.option_strings
            for a in parser._actions
            if a.option_strings and cli.env_variable(a) is None and a.dest not in ("help", "once", "output")
        ]
        assert missing == [], verb


def test_each_verbs_help_lists_its_variables() -> None:
    verbs = cli._verbs(cli.build_parser())
    for verb, action, variable in flags_with_variables():
        text = " ".join(verbs[verb][0].format_help().split())
        assert f"[env {variable}]" in text, (verb, action.option_strings)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_env", ROOT / "scripts" / "readme-env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_lists_every_variable_as_the_parser_has_it() -> None:
    script = load_script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.current(readme) == script.generated(), "run scripts/readme-env.py"
    for _, _, variable in flags_with_variables():
        assert f"`{variable}`" in readme
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme-env.py"), "--check"], capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr


def test_commit_from_the_build_file_else_git_else_unknown(tmp_path: Path) -> None:
    package = tmp_path / "site" / "automator"
    package.mkdir(parents=True)
    assert buildinfo.build_commit(package) == "unknown"  # an installed wheel without a build record
    (package / "_build.py").write_text('COMMIT = "0123456789abcdef0123456789abcdef01234567"\n')
    assert buildinfo.build_commit(package) == "0123456789ab"
    assert buildinfo.version_string(package) == "automator 0.1.0 (commit 0123456789ab)"

    checkout = tmp_path / "checkout"
    (checkout / "automator").mkdir(parents=True)
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True)
    assert buildinfo.build_commit(checkout / "automator") == head.stdout.strip()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_names_every_verb_and_flag(shell: str) -> None:
    parser = cli.build_parser()
    script = cli.completion_script(shell, parser)
    for verb, (p, _) in cli._verbs(parser).items():
        assert verb in script
        for action in p._actions:
            for flag in action.option_strings:
                name = flag.lstrip("-") if shell == "fish" else flag
                assert name in script, (verb, flag)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["-o", "json", "sync"], {}, "json"),
        (["sync", "-o", "json"], {}, "json"),
        (["sync", "--output", "json"], {}, "json"),
        (["sync"], {"AUTOMATOR_SYNC_OUTPUT": "json"}, "json"),
        (["--output", "json", "sync"], {"AUTOMATOR_SYNC_OUTPUT": "table"}, "json"),
        (["sync"], {}, "table"),
        (["-o", "json", "run"], {}, "json"),
        (["run"], {}, "table"),
        (["plan"], {}, "diff"),
        (["-o", "yaml", "plan", "--output", "json"], {}, "json"),  # after the verb wins, as for any flag
    ],
)
def test_output_before_or_after_the_verb(
    argv: list[str], env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = cli.build_parser(next(a for a in argv if a in cli._VERBS)).parse_args(argv)
    assert cli._settle(args) is None
    assert args.output == expected
