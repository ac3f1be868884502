"""Shared test configuration: real servers on loopback live in tests/servers/ as fixture plugins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the plugins below are imported by pytest, after this file, for their assertions
    from tests.servers.fake_github import GitHubState

pytest_plugins = [
    "tests.servers.registry",
    "tests.servers.kube",
    "tests.servers.fake_github",
    "tests.servers.fake_gitlab",
    "tests.servers.browser",
]


@pytest.fixture
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """git as a user runs it here, without ~/.gitconfig or /etc/gitconfig (``GIT_ENV``)."""
    from tests.e2e.test_run_forges import GIT_ENV

    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def github() -> Iterator[GitHubState]:
    """The fake GitHub on loopback, its token for ``automator-bot`` known (``GITHUB_TOKEN``)."""
    from tests.servers.fake_github import GITHUB_TOKEN, github_server

    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        yield gh
