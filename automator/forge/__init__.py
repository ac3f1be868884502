"""The forge stage: pull requests on GitHub or GitLab (or nowhere), and their lifecycle.

``GitHubForge`` and ``GitLabForge`` are loaded on first use, so ``forge: none`` never
imports PyGithub or python-gitlab.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from automator.forge.base import (
    CallCounter,
    CommitState,
    Forge,
    MergeMethod,
    PROptions,
    PRState,
    PRStatus,
    PullRequest,
    closed_body,
    parse_marker,
    render_marker,
    strip_marker,
    with_marker,
)
from automator.forge.body import BodyRow, Location, build_body, render_table
from automator.forge.lifecycle import DesiredPR, PRDecision, plan_pull_requests
from automator.forge.none import NoneForge

if TYPE_CHECKING:
    from automator.forge.github import GitHubForge
    from automator.forge.gitlab import GitLabForge

__all__ = [
    "BodyRow",
    "CallCounter",
    "CommitState",
    "DesiredPR",
    "Forge",
    "GitHubForge",
    "GitLabForge",
    "Location",
    "MergeMethod",
    "NoneForge",
    "PRDecision",
    "PROptions",
    "PRState",
    "PRStatus",
    "PullRequest",
    "build_body",
    "closed_body",
    "parse_marker",
    "plan_pull_requests",
    "render_marker",
    "render_table",
    "strip_marker",
    "with_marker",
]


_LAZY = {"GitHubForge": "automator.forge.github", "GitLabForge": "automator.forge.gitlab"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automator.forge' has no attribute {name!r}")
