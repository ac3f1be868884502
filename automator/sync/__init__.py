"""The synchronizer: pull a branch, render it, server-side apply it, prune what left, report health."""

from automator.sync.engine import Synchronizer, SyncOptions
from automator.sync.model import Action, Health, ObjectRef, ObjectResult, SyncResult

__all__ = ["Action", "Health", "ObjectRef", "ObjectResult", "SyncOptions", "SyncResult", "Synchronizer"]
