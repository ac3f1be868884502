"""automator: image update automation for GitOps config repositories.

The pipeline: ``registry -> policy -> update -> git -> forge`` (the automator) and
``git -> sync`` (the synchronizer).  The names below are the stable public API.
"""

from __future__ import annotations

from automator.errors import (
    AutomatorError,
    ConfigError,
    ForgeError,
    GitError,
    InvalidReference,
    PolicyFileError,
    RegistryError,
    SyncError,
    UpdateError,
)
from automator.policy import PolicySet, choose, load_policies
from automator.policy.model import Policy, TagChoice
from automator.refs import ImageRef, parse_reference
from automator.update import Change, Decisions, UpdateResult, rewrite_text, update_tree

__version__ = "0.1.0"

__all__ = [
    "AutomatorError",
    "Change",
    "ConfigError",
    "Decisions",
    "ForgeError",
    "GitError",
    "ImageRef",
    "InvalidReference",
    "Policy",
    "PolicyFileError",
    "PolicySet",
    "RegistryError",
    "SyncError",
    "TagChoice",
    "UpdateError",
    "UpdateResult",
    "__version__",
    "choose",
    "load_policies",
    "parse_reference",
    "rewrite_text",
    "update_tree",
]
