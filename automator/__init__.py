"""automator: image update automation for GitOps config repositories.

The pipeline: ``registry -> policy -> update -> git -> forge`` (the automator) and
``git -> sync`` (the synchronizer).  The names below are the stable public API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from automator.buildinfo import __version__
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
from automator.refs import ImageRef, parse_reference

if TYPE_CHECKING:
    from automator.policy import PolicySet, load_policies
    from automator.policy.choose import choose  # the function, not the subpackage of that name
    from automator.policy.model import Policy, TagChoice
    from automator.update import Change, Decisions, UpdateResult, rewrite_text, update_tree

# Loaded on first use, so `import automator` (and every CLI start) stays cheap.
_LAZY = {
    "PolicySet": "automator.policy",
    "choose": "automator.policy",
    "load_policies": "automator.policy",
    "Policy": "automator.policy.model",
    "TagChoice": "automator.policy.model",
    "Change": "automator.update",
    "Decisions": "automator.update",
    "UpdateResult": "automator.update",
    "rewrite_text": "automator.update",
    "update_tree": "automator.update",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'automator' has no attribute {name!r}")


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
