"""Read what ``git push --porcelain`` says and turn a failure into the right error.

Three outcomes matter to the caller and they need different handling:

* the remote moved (``[rejected] (non-fast-forward | fetch first | stale info)``, or the server
  lost the race for the ref to a concurrent push: ``[remote rejected] (cannot lock ref ...)``):
  transient, :class:`PushRejected` — fetch, re-apply, retry;
* the remote refused our credentials (401/403, ``Authentication failed``, ``Permission denied
  (publickey)``, a token without write access): :class:`GitAuthError` — a person must fix it;
* anything else (a protected branch, a declined hook, the network): :class:`GitError`.

Porcelain lines are ``<flag>\\t<from>:<to>\\t<summary>``, between ``To <url>`` and ``Done``
(``git-push(1)``, OUTPUT); flags: `` `` fast-forward, ``+`` forced, ``-`` deleted, ``*`` new,
``!`` rejected, ``=`` up to date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automator.errors import GitAuthError, GitError, PushRejected

_STATUS = {" ": "fast-forward", "+": "forced", "-": "deleted", "*": "new", "!": "rejected", "=": "up-to-date"}
_REASON = re.compile(r"\((?P<reason>[^()]*)\)\s*$")
_MOVED = ("non-fast-forward", "fetch first", "stale info", "already exists")
# receive-pack's words when another push updated the ref between our fetch and our update
_LOST_RACE = ("cannot lock ref", "failed to lock", "failed to update ref", "incorrect old value provided")

_AUTH = re.compile(
    r"authentication failed|could not read (username|password)|returned error: (401|403)"
    r"|http (basic: )?access denied|\b(401|403)\b.*(unauthori[sz]ed|forbidden)|permission denied \(publickey"
    r"|invalid username or password|write access to repository not granted|not allowed to push"
    r"|permission to .* denied|host key verification failed|access denied|bad credentials",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RefUpdate:
    """One line of ``git push --porcelain``: what happened to one remote ref."""

    flag: str
    source: str
    ref: str
    summary: str

    @property
    def status(self) -> str:
        return _STATUS.get(self.flag, "unknown")

    @property
    def reason(self) -> str:
        match = _REASON.search(self.summary)
        return match["reason"] if match else ""

    @property
    def moved(self) -> bool:
        """True when the remote was rejected because the ref moved since we last saw it: git's own
        check before sending, or the server losing the race for the ref's lock to another push."""
        if self.flag != "!":
            return False
        if self.summary.startswith("[rejected]"):
            return self.reason in _MOVED
        return self.summary.startswith("[remote rejected]") and self.reason.startswith(_LOST_RACE)


def parse_porcelain(stdout: str) -> list[RefUpdate]:
    """Every ref line of ``git push --porcelain`` output, in order."""
    updates = []
    for line in stdout.splitlines():
        if len(line) < 2 or line[0] not in _STATUS or line[1] != "\t":
            continue
        parts = line[2:].split("\t", 1)
        if len(parts) != 2 or ":" not in parts[0]:
            continue
        source, _, ref = parts[0].rpartition(":")
        updates.append(RefUpdate(line[0], source, ref, parts[1].strip()))
    return updates


def is_auth_failure(stderr: str) -> bool:
    """Whether git's stderr says the remote refused the credentials (any transport)."""
    return bool(_AUTH.search(stderr))


def auth_error(action: str, where: str, stderr: str) -> GitAuthError:
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "credentials refused"
    return GitAuthError(
        f"cannot {action} {where}: the remote refused our credentials ({last}); check that the token "
        "(or SSH key and known_hosts) is set, not expired, and has read and write access to the repository"
    )


def push_outcome(
    ref: str, returncode: int, stdout: str, stderr: str, where: str, *, several: bool = False
) -> RefUpdate:
    """Return the :class:`RefUpdate` for ``ref`` when the push succeeded; raise the right error if not.

    ``stdout``/``stderr`` must already be redacted; ``where`` names the remote (redacted URL).
    ``several``: the push carried other refs too (not ``--atomic``), so a non-zero exit may be
    another ref's rejection; this ref's own porcelain line decides whether it landed.
    """
    mine = [u for u in parse_porcelain(stdout) if u.ref == ref]
    if mine and mine[0].flag != "!" and (returncode == 0 or several):
        return mine[0]
    if mine and mine[0].moved:
        update = mine[0]
        raise PushRejected(
            f"push of {ref} to {where} was rejected ({update.reason}): the remote branch moved since we "
            "fetched it; fetch and retry on the new tip"
        )
    if is_auth_failure(stderr) or (mine and is_auth_failure(mine[0].summary)):
        raise auth_error(f"push {ref} to", where, stderr or mine[0].summary)
    if mine and mine[0].flag == "!":
        raise GitError(
            f"the remote refused to update {ref} at {where}: {mine[0].summary}; check branch protection "
            "rules and server-side hooks for that branch"
        )
    detail = stderr.strip() or stdout.strip() or f"exit {returncode}"
    raise GitError(f"cannot push {ref} to {where}: {detail}; check the git URL and that the remote is reachable")
