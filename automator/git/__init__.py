"""The git stage: one redacting ``Git`` runner, shallow branch fetches, signature checks."""

from automator.git.fetch import Checkout, fetch_branch
from automator.git.runner import Credentials, Git
from automator.git.verify import verify_commit

__all__ = ["Checkout", "Credentials", "Git", "fetch_branch", "verify_commit"]
