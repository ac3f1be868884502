"""The git runner's environment: credentials in, repository-pointing variables out."""

from __future__ import annotations

import pytest

from automator.git import Git


def test_repository_pointing_variables_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    # set by git for hooks: inherited, every command of ours would act on another repository
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_INDEX_FILE", "/elsewhere/index")
    env = Git().environment()
    assert "GIT_DIR" not in env
    assert "GIT_INDEX_FILE" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
