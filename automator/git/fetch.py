"""Shallow-fetch one branch into a cache directory and check it out, recording the revision."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from automator.errors import ConfigError, GitAuthError, GitError
from automator.git.runner import Git
from automator.redact import redact_url

_AUTH_FAILED = re.compile(
    r"Authentication failed|could not read (Username|Password)|returned error: 40[13]|Permission denied \(publickey"
    r"|HTTP Basic: Access denied|access denied|not authorized",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Checkout:
    """A working tree at ``revision`` (a full commit SHA) of ``branch``."""

    path: Path
    revision: str
    branch: str


def cache_path(cache_dir: Path, url: str, branch: str) -> Path:
    digest = hashlib.sha256(f"{redact_url(url)}\0{branch}".encode()).hexdigest()[:16]
    return cache_dir / digest


def fetch_branch(git: Git, url: str, branch: str, cache_dir: Path, *, depth: int = 1) -> Checkout:
    """Fetch the tip of ``branch`` (depth ``depth``) and check it out detached, cleaned.

    The URL is passed on each fetch rather than stored as a remote, so nothing credential-like is
    written to the cache's ``.git/config``.
    """
    if url.startswith("-") or branch.startswith("-") or not branch:
        raise ConfigError(f"refusing git URL/branch {redact_url(url)!r}/{branch!r}: it would be read as an option")
    repo = cache_path(cache_dir, url, branch)
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        git.run(["init", "-q", str(repo)])
    ref = f"refs/remotes/origin/{branch}"
    proc = git.run(
        ["fetch", "-q", "--no-tags", f"--depth={depth}", "--force", url, f"+refs/heads/{branch}:{ref}"],
        cwd=repo,
        check=False,
    )
    if proc.returncode != 0:
        stderr = git.redact(proc.stderr.strip())
        where = f"cannot fetch branch {branch!r} from {git.redact(redact_url(url))}: {stderr}"
        if _AUTH_FAILED.search(stderr):
            raise GitAuthError(f"{where}; the remote refused the credentials: check the token or SSH key")
        hint = "check --branch" if "couldn't find remote ref" in stderr else "check --git-url and credentials"
        raise GitError(f"{where}; {hint}")
    git.run(["checkout", "-q", "--force", "--detach", ref], cwd=repo)
    git.run(["clean", "-q", "-f", "-d", "-x"], cwd=repo)
    revision = git.run(["rev-parse", "HEAD"], cwd=repo).stdout.strip()
    return Checkout(repo, revision, branch)
