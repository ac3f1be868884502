"""The pullRequestComment sink's forge call, against the stateful fakes: a GitHub issue comment
and a GitLab merge request note, on an open PR and on a merged one; a missing PR is ForgeNotFound."""

from __future__ import annotations

import pytest

from automator.errors import ForgeNotFound
from automator.forge.base import Forge
from automator.forge.github import GitHubForge
from automator.forge.gitlab import GitLabForge
from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.fake_gitlab import GITLAB_TOKEN, gitlab_server


def test_a_comment_on_a_github_pull_request_open_or_merged() -> None:
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        repo = gh.add_repo("octo/app", collaborators=("automator-bot",))
        forge: Forge = GitHubForge("octo/app", token=GITHUB_TOKEN, base_url=gh.base_url)
        gh.push("octo/app", "automator/app")
        pr = forge.open_pull_request("automator/app", "main", "Update app", "body")
        forge.comment_on_pull_request(pr.number, "**Pull request opened**")
        gh.merge("octo/app", pr.number)
        forge.comment_on_pull_request(pr.number, "**Pull request merged**")
        assert repo.pulls[pr.number].comments == ["**Pull request opened**", "**Pull request merged**"]
        with pytest.raises(ForgeNotFound):
            forge.comment_on_pull_request(99, "nobody reads this")


def test_a_note_on_a_gitlab_merge_request() -> None:
    with gitlab_server() as gl:
        gl.tokens[GITLAB_TOKEN] = "automator-bot"
        project = gl.add_project("group/app", members=("automator-bot",))
        forge: Forge = GitLabForge("group/app", token=GITLAB_TOKEN, url=gl.url)
        gl.push("group/app", "automator/app")
        mr = forge.open_pull_request("automator/app", "main", "Update app", "body")
        forge.comment_on_pull_request(mr.number, "**Pull request opened**")
        assert project.mrs[mr.number].notes == ["**Pull request opened**"]
        assert forge.calls.writes == 2
