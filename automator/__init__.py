"""automator: image update automation for GitOps config repositories.

The pipeline: ``registry -> policy -> update -> git -> forge`` (the automator) and
``git -> sync`` (the synchronizer).  The names below are the stable public API.
"""

from __future__ import annotations

from automator.errors import (
    AutomatorError,
    ConfigError,
    InvalidReference,
    PolicyFileError,
    RegistryError,
    SyncError,
    UpdateError,
)
from automator.refs import ImageRef, parse_reference

__version__ = "0.1.0"

__all__ = [
    "AutomatorError",
    "ConfigError",
    "ImageRef",
    "InvalidReference",
    "PolicyFileError",
    "RegistryError",
    "SyncError",
    "UpdateError",
    "__version__",
    "parse_reference",
]
