"""The git stage: one redacting ``Git`` runner, the clone cache and worktrees the automator
writes through, shallow fetches for the synchronizer, signing and signature checks."""

from automator.git.fetch import Checkout, fetch_branch
from automator.git.runner import Credentials, Git
from automator.git.signing import Identity, Signing
from automator.git.verify import verify_commit
from automator.git.workspace import (
    LAST_SEEN,
    BranchChange,
    BranchUpdate,
    DirectResult,
    PushResult,
    Repository,
    TreeFile,
    TreeFiles,
    Worktree,
)

__all__ = [
    "LAST_SEEN",
    "BranchChange",
    "BranchUpdate",
    "Checkout",
    "Credentials",
    "DirectResult",
    "Git",
    "Identity",
    "PushResult",
    "Repository",
    "Signing",
    "TreeFile",
    "TreeFiles",
    "Worktree",
    "fetch_branch",
    "verify_commit",
]
