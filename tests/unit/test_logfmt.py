"""Log lines as text or as one JSON object per line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from automator import logfmt


def test_json_lines_carry_time_level_logger_message_and_exception(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logfmt.configure("info", "json")
        log = logging.getLogger("automator.test")
        log.debug("hidden")
        log.info("queued %s", "docker.io/library/nginx")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("cycle failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = capsys.readouterr().err.splitlines()
    docs = [json.loads(line) for line in lines]
    assert [(d["level"], d["logger"], d["message"]) for d in docs] == [
        ("info", "automator.test", "queued docker.io/library/nginx"),
        ("error", "automator.test", "cycle failed"),
    ]
    assert docs[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in docs[1]["exception"]


def test_the_cli_takes_the_format_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from automator.cli import build_parser

    monkeypatch.setenv("AUTOMATOR_LOG_FORMAT", "JSON")
    assert build_parser("validate").parse_args(["validate"]).log_format == "json"
    proc = subprocess.run(
        [sys.executable, "-m", "automator", "--log-format", "yaml", "validate", "."],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "invalid choice: 'yaml'" in proc.stderr
