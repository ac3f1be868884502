"""End to end: the CLI's conventions -- global flags before or after the verb, one way to name the
config repo, `-o yaml`, `--version` with the commit, shell completion, and the demo's registry
left running for the bundled examples."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_scan import EXAMPLES, automator, policy
from tests.servers.registry import RunningRegistry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "json", "validate", str(EXAMPLES)],
        ["validate", str(EXAMPLES), "-o", "json"],
        ["--output", "json", "--log-level", "debug", "validate", "--repo", str(EXAMPLES)],
        ["validate", "--log-format", "json", "--output=json", str(EXAMPLES)],
        ["--log-level", "error", "validate", "--log-level", "debug", "--repo", str(EXAMPLES), "--output", "json"],
    ],
)
def test_global_flags_before_or_after_the_verb(args: list[str]) -> None:
    proc = automator(*args)
    assert proc.returncode == 0, proc.stderr
    assert {p["name"] for p in json.loads(proc.stdout)["policies"]} >= {"apps:podinfo", "flux-system:web"}


def test_log_level_after_the_verb_wins_and_a_bad_output_is_a_usage_error() -> None:
    quiet = automator("--log-level", "debug", "validate", str(EXAMPLES), "--log-level", "error")
    assert quiet.returncode == 0
    assert "DEBUG" not in quiet.stderr
    bad = automator("-o", "diff", "validate", str(EXAMPLES))
    assert bad.returncode == 2
    assert "`automator validate` writes table, json, yaml" in bad.stderr
    twice = automator("validate", str(EXAMPLES), "--repo", "/elsewhere")
    assert twice.returncode == 2
    assert "given twice" in twice.stderr


def test_yaml_is_the_json_document(registry: RunningRegistry, tmp_path: Path) -> None:
    registry.push("conv/app", "1.0.0")
    registry.push("conv/app", "1.1.0")
    image = registry.image("conv/app")
    (tmp_path / "p.yaml").write_text(policy("app", image, "  policy:\n    semver:\n      range: '^1'\n"))
    (tmp_path / "d.yaml").write_text(f'image: {image}:1.0.0 # {{"$imagepolicy": "app"}}\n')
    for verb in ("validate", "scan", "plan"):
        as_json = automator(verb, "--repo", str(tmp_path), "-o", "json")
        as_yaml = automator("-o", "yaml", verb, str(tmp_path))
        assert as_yaml.returncode == as_json.returncode == 0, as_yaml.stderr
        doc = yaml.safe_load(as_yaml.stdout)
        expected = json.loads(as_json.stdout)
        if verb == "plan":  # timings differ from run to run
            doc.pop("timings")
            expected.pop("timings")
        assert doc == expected


def test_version_names_the_commit() -> None:
    proc = automator("--version")
    assert proc.returncode == 0
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert proc.stdout.strip() == f"automator 0.1.0 (commit {head})"


def complete(words: str, *, cword: int | None = None) -> list[str]:
    """What bash offers after ``words`` (the last one being completed) with the generated script."""
    script = automator("completion", "bash")
    assert script.returncode == 0, script.stderr
    parts = shlex.split(words) + ([""] if words.endswith(" ") else [])
    index = len(parts) - 1 if cword is None else cword
    line = (
        f"{script.stdout}\nCOMP_WORDS=({' '.join(shlex.quote(p) for p in parts)}); COMP_CWORD={index}\n"
        '_automator automator "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--norc", "-c", line], capture_output=True, text=True, timeout=30, check=True)
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completion_knows_verbs_flags_and_choices() -> None:
    assert complete("automator sc") == ["scan"]
    assert complete("automator --log-level debug p") == ["plan"]
    assert complete("automator plan --exit") == ["--exit-code"]
    assert complete("automator plan -o ") == ["diff", "json", "yaml"]
    assert complete("automator --log-format ") == ["text", "json"]
    assert complete("automator completion ") == ["bash", "zsh", "fish"]
    assert complete("automator sync --inventory-kind ") == ["configmap", "secret"]
    assert "--keep-running" in complete("automator demo --")
    assert complete("automator scan --docker-config ") == []  # a file name: bash's default completion


def test_zsh_and_fish_scripts_cover_the_verbs() -> None:
    zsh = automator("completion", "zsh").stdout
    assert zsh.startswith("#compdef automator\n")
    assert "bashcompinit" in zsh
    fish = automator("completion", "fish").stdout
    assert re.search(r"^complete -c automator .*-a plan -d ", fish, re.M)
    assert re.search(r"__fish_seen_subcommand_from plan' -l exit-code", fish)
    assert re.search(r"__fish_seen_subcommand_from scan' -s o -l output -x -a 'table json yaml'", fish)


def test_demo_keeps_its_registry_running_for_the_examples(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "automator", "demo", "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as demo:
        try:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in demo.stdout or ()], daemon=True).start()
            deadline = time.monotonic() + 120
            scan = ""
            while not scan:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))  # queue.Empty: it never printed
                scan = line.strip() if line.startswith("  ") and " scan " in line else ""
            repo = Path(shlex.split(scan)[-1])
            assert repo.is_dir()
            proc = automator("scan", str(repo), "-o", "json")
            assert proc.returncode == 0, proc.stderr
            rows = {r["policy"]: r for r in json.loads(proc.stdout)["results"]}
            assert rows["apps:podinfo"]["current"] == "6.0.0"
            assert rows["apps:podinfo"]["tag"] == "6.1.2"  # pushed by the demo's service step
            assert rows["apps:worker"]["tag"] == "1.3.0-alpine"
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=60) == 0
            assert not repo.exists()  # the scratch directory goes with the registry
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
