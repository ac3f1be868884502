"""The automator's write side of git: a clone cache, worktrees, commits, and safe pushes.

:class:`Repository` is one remote's bare clone kept in a cache directory across runs::

    with Repository(git, url, cache_dir, base="main", author=Identity("bot", "bot@x")) as repo:
        result = repo.commit_direct(rewrite, "Update podinfo to 6.5.0")           # direct mode
        update = repo.commit_branch("automator/podinfo", rewrite, "Update ...")   # pull-request mode

* The first use clones with ``git clone --bare --filter=blob:none`` (a partial clone: only the
  blobs a worktree checks out are fetched); a server without ``uploadpack.allowFilter`` gets a
  full clone. Later uses ``git fetch --prune``. The cache lives at ``cache_dir/<sha256 of the
  redacted URL>.git``; an exclusive ``flock`` on ``<same>.lock`` is held from ``__enter__`` to
  ``__exit__``, so two processes never write one cache at once.
* The cache mirrors the remote's branches into its own ``refs/heads/*`` (``--prune`` drops the
  deleted ones), so :meth:`Repository.tip` is "what we last saw of the remote branch".
* Each change set is made in its own detached worktree (``git worktree add --detach``) holding
  exactly the given tip; an idle one is reset and reused rather than checked out anew (a
  2,000-file checkout costs ~0.9 s to add and remove, a reset ~0.05 s). All are removed when
  the ``with`` block ends; ``git worktree prune`` runs on every start.
* Many branches at once (:meth:`Repository.commit_branches`, pull-request mode at scale): no
  worktree at all. The caller rewrites the files' bytes read by :meth:`Repository.read_files`
  (``ls-tree`` + one ``cat-file --batch``); one ``git fast-import`` writes every branch's
  blobs, trees and commits; one ``git push`` carries every branch that changed. 200 branches
  cost about ten git processes instead of ~18 each.
* Pushes use ``--porcelain`` so rejections are told apart (:mod:`automator.git.push`). Our
  branches are pushed with ``--force-with-lease=<ref>:<expected>``; the base branch is never
  forced (refused in code) and only ever fast-forwarded.
* The URL is stored in the cache's config, so one that embeds a password or token is refused:
  credentials travel in :class:`~automator.git.runner.Credentials` (environment only).

Hooks never run (``core.hooksPath=/dev/null``, ``--no-verify``) and the user's signing
configuration is overridden per command, so the result does not depend on ``~/.gitconfig``.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import logging
import os
import posixpath
import random
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from automator.errors import AutomatorError, ConfigError, CredentialError, GitError, PushRejected
from automator.git.push import RefUpdate, auth_error, is_auth_failure, push_outcome
from automator.git.runner import Git
from automator.git.signing import Identity, Signing, commit_config
from automator.redact import redact_url

log = logging.getLogger("automator.git")

# Nothing from the config repo or ~/.gitconfig runs as a side effect of our commands.
_NO_HOOKS = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
# git's warnings when it sends everything despite --filter: the server has uploadpack.allowFilter
# off, or the URL is a local path (hard-linked clone, which is cheap anyway).
_FILTER_IGNORED = ("filtering not recognized by server", "--filter is ignored in local clones")

Apply = Callable[[Path], object]
"""Rewrites files under the worktree root it is given; returns something truthy when it changed any."""


class _Seen(enum.Enum):
    LAST_SEEN = "last-seen"


LAST_SEEN = _Seen.LAST_SEEN
"""``expected=`` default: lease on the tip the cache last fetched (none: the branch must not exist)."""


@dataclass(frozen=True)
class PushResult:
    """A push that the remote accepted: ``ref`` went from ``old`` (None: new) to ``new`` (None: deleted)."""

    ref: str
    old: str | None
    new: str | None
    status: str


@dataclass(frozen=True)
class DirectResult:
    """The outcome of :meth:`Repository.commit_direct`.

    ``sha`` is the commit now on the base branch, or None when the rewrite changed nothing on
    ``base`` (the tip it was applied to, e.g. someone already made the same change).
    """

    sha: str | None
    base: str
    attempts: int

    @property
    def pushed(self) -> bool:
        return self.sha is not None


BranchStatus = Literal["pushed", "unchanged", "no-change"]


@dataclass(frozen=True)
class BranchUpdate:
    """The outcome of :meth:`Repository.commit_branch`.

    ``pushed``: a new commit ``sha`` on ``branch``; ``unchanged``: the branch already holds
    exactly this content (``sha`` is its tip, nothing pushed); ``no-change``: the rewrite leaves
    ``base`` as it is (``sha`` None: there is nothing to propose).
    """

    branch: str
    status: BranchStatus
    sha: str | None
    base: str


class Worktree:
    """A detached worktree of the cache, checked out at ``base``; made by :meth:`Repository.worktree`."""

    def __init__(self, repo: Repository, path: Path, base: str) -> None:
        self.repo = repo
        self.path = path
        self.base = base

    def __repr__(self) -> str:
        return f"Worktree(path={str(self.path)!r}, base={self.base!r})"

    def _run(self, args: list[str], *, env: dict[str, str] | None = None, check: bool = True) -> str:
        return self.repo.git.run([*_NO_HOOKS, *args], cwd=self.path, env=env, check=check).stdout.strip()

    @property
    def head(self) -> str:
        return self._run(["rev-parse", "HEAD"])

    def staged_tree(self) -> str:
        """Stage every change (additions, edits, deletions) and return the tree SHA it would commit."""
        self._run(["add", "-A"])
        return self._run(["write-tree"])

    def changed(self) -> bool:
        """Whether the files differ from ``HEAD`` (stages them)."""
        self._run(["add", "-A"])
        return self.repo.git.run(["diff", "--cached", "--quiet"], cwd=self.path, check=False).returncode != 0

    def commit(
        self,
        message: str,
        *,
        author: Identity,
        committer: Identity | None = None,
        signing: Signing | None = None,
        verbatim: bool = False,
    ) -> str | None:
        """Commit every change as ``author`` (committer defaults to the author); return the SHA.

        Returns None when nothing changed. ``message`` is kept as given (``#`` lines included);
        only surrounding blank lines and trailing spaces are trimmed, or nothing at all with
        ``verbatim`` (a Flux automation's message, which Flux commits byte for byte).
        """
        if not message.strip():
            raise ConfigError("the commit message is empty; check the commit message template")
        if not self.changed():
            return None
        before, flags, env = commit_config(signing)
        env = {**env, **author.env("AUTHOR"), **(committer or author).env("COMMITTER")}
        cleanup = "verbatim" if verbatim else "whitespace"
        msg = self.path.with_name(self.path.name + ".msg")
        msg.write_text(message, encoding="utf-8")
        try:
            proc = self.repo.git.run(
                [*_NO_HOOKS, *before, "commit", "-q", "--no-verify", f"--cleanup={cleanup}", *flags, "-F", str(msg)],
                cwd=self.path,
                env=env,
                check=False,
            )
        finally:
            msg.unlink(missing_ok=True)
        if proc.returncode != 0:
            detail = self.repo.git.redact(proc.stderr.strip() or proc.stdout.strip())
            hint = "; check the signing key and program" if signing is not None else ""
            raise GitError(f"git commit failed in {self.path}: {detail}{hint}")
        sha = self.head
        log.info("committed %s on %s as %s", sha[:12], self.base[:12], author)
        return sha


class Repository:
    """One remote's bare clone in a cache directory, reused across runs; see the module docstring."""

    def __init__(
        self,
        git: Git,
        url: str,
        cache_dir: Path,
        *,
        base: str = "main",
        branch_prefix: str = "automator/",
        author: Identity | None = None,
        signing: Signing | None = None,
        partial: bool = True,
        lock_timeout: float = 600.0,
    ) -> None:
        parts = urlsplit(url) if "://" in url else None
        web = parts is not None and parts.scheme in ("http", "https")
        if parts is not None and (parts.password is not None or (web and parts.username is not None)):
            raise CredentialError(
                f"the git URL {redact_url(url)} embeds a password or token; remove it from the URL and "
                "configure the token as a credential instead, so it is never written to disk"
            )
        self.git = git
        self.url = url
        self.base = _branch_name(base)
        self.branch_prefix = branch_prefix
        self.author = author
        self.signing = signing
        self.partial = partial
        self.lock_timeout = lock_timeout
        key = hashlib.sha256(redact_url(url).encode()).hexdigest()[:20]
        self.cache_dir = Path(cache_dir)
        self.path = self.cache_dir / f"{key}.git"
        self._worktrees = self.cache_dir / f"{key}.worktrees"
        self._lock_path = self.cache_dir / f"{key}.lock"
        self._lock_fd: int | None = None
        self._idle: list[Path] = []
        self.synced: Literal["cloned", "fetched"] | None = None
        self.push_options: tuple[str, ...] = ()  # `git push -o` for every push (an automation's push.options)

    @property
    def shown_url(self) -> str:
        return self.git.redact(redact_url(self.url))

    def __repr__(self) -> str:
        return f"Repository(url={self.shown_url!r}, base={self.base!r}, path={str(self.path)!r})"

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Repository:
        self._lock()
        try:
            self._sync()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            while self._idle:
                self._remove_worktree(self._idle.pop())
            if self.path.is_dir():
                self.git.run(["worktree", "prune"], cwd=self.path, check=False)
        finally:
            self._unlock()

    def _lock(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise GitError(
                        f"the clone cache {self.path} is locked by another automator process (pid {holder}) "
                        f"for more than {self.lock_timeout:.0f}s; wait for it to finish or use another cache dir"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("use the Repository as a context manager: `with Repository(...) as repo:`")

    # -- clone cache ----------------------------------------------------------------------------

    def _sync(self) -> None:
        # We hold the cache's lock: a worktree or git lock file left here is from a process that died.
        shutil.rmtree(self._worktrees, ignore_errors=True)
        for stale in self.cache_dir.glob(f"{self.path.name}.clone-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if self._usable():
            _remove_git_locks(self.path)
            self.git.run(["worktree", "prune"], cwd=self.path)
            self.fetch()
            self.synced = "fetched"
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            self._clone()
            self.synced = "cloned"
        self._worktrees.mkdir(parents=True, exist_ok=True)

    def _usable(self) -> bool:
        if not (self.path / "HEAD").is_file():
            return False
        # --git-dir: a damaged cache must not make git discover an enclosing repository instead
        proc = self.git.run(["--git-dir", str(self.path), "config", "--get", "remote.origin.url"], check=False)
        return proc.returncode == 0 and proc.stdout.strip() == self.url

    def _clone(self) -> None:
        tmp = self.cache_dir / f"{self.path.name}.clone-{os.getpid()}"
        args = ["clone", "-q", "--bare", "--no-tags"]
        if self.partial:
            args.append("--filter=blob:none")
        proc = self.git.run([*_NO_HOOKS, *args, "--", self.url, str(tmp)], check=False)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._failure("clone", proc.stderr)
        if self.partial and any(warning in proc.stderr for warning in _FILTER_IGNORED):
            log.info("%s does not serve partial clones; the cache is a full clone", self.shown_url)
            self.partial = False
            for key in ("remote.origin.promisor", "remote.origin.partialclonefilter"):
                self.git.run(["config", "--unset", key], cwd=tmp, check=False)
        self.git.run(["config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"], cwd=tmp)
        tmp.rename(self.path)
        log.info("cloned %s into %s", self.shown_url, self.path)

    def fetch(self) -> None:
        """Bring every remote branch into the cache (``--prune``: deleted ones disappear)."""
        self._require_lock()
        proc = self.git.run([*_NO_HOOKS, "fetch", "-q", "--prune", "--no-tags", "origin"], cwd=self.path, check=False)
        if proc.returncode != 0:
            raise self._failure("fetch", proc.stderr)
        self.partial = self._config("remote.origin.promisor") == "true"

    def _config(self, key: str) -> str | None:
        proc = self.git.run(["config", "--get", key], cwd=self.path, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def _failure(self, action: str, stderr: str) -> GitError:
        detail = self.git.redact(stderr.strip())
        if is_auth_failure(detail):
            return auth_error(action, self.shown_url, detail)
        return GitError(
            f"cannot {action} {self.shown_url}: {detail}; check the git URL and that the remote is reachable"
        )

    # -- branch state ---------------------------------------------------------------------------

    def tip(self, branch: str) -> str | None:
        """The remote branch's commit as of the last fetch or our last push; None when it does not exist."""
        return self._resolve(f"refs/heads/{_branch_name(branch)}^{{commit}}")

    def tree(self, rev: str) -> str | None:
        """The tree SHA of a commit or branch name; None when it does not exist."""
        ref = f"refs/heads/{rev}" if self._resolve(f"refs/heads/{rev}") else rev
        return self._resolve(f"{ref}^{{tree}}")

    def _resolve(self, spec: str) -> str | None:
        self._require_lock()
        proc = self.git.run(["rev-parse", "-q", "--verify", spec], cwd=self.path, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def branches(self, prefix: str | None = None) -> dict[str, str]:
        """Remote branches whose name starts with ``prefix`` (default: ours), name -> tip SHA."""
        self._require_lock()
        want = self.branch_prefix if prefix is None else prefix
        out = self.git.run(
            ["for-each-ref", "--format=%(objectname) %(refname:lstrip=2)", "refs/heads/"], cwd=self.path
        ).stdout
        found = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if name.startswith(want):
                found[name] = sha
        return found

    def committed_at(self, branch: str) -> float | None:
        """When ``branch``'s tip was committed (committer time, Unix seconds); None: no branch."""
        self._require_lock()
        proc = self.git.run(
            ["log", "-1", "--format=%ct", f"refs/heads/{_branch_name(branch)}", "--"], cwd=self.path, check=False
        )
        text = proc.stdout.strip()
        return float(text) if proc.returncode == 0 and text.isdigit() else None

    def authors(self, branch: str, since: str) -> set[str]:
        """The author emails of the commits on ``branch`` that ``since`` (a branch) does not have."""
        self._require_lock()
        spec = f"refs/heads/{_branch_name(since)}..refs/heads/{_branch_name(branch)}"
        proc = self.git.run(["log", "--format=%ae", spec], cwd=self.path, check=False)
        return set(proc.stdout.split()) if proc.returncode == 0 else set()

    def has_content(self, branch: str, tree: str) -> bool:
        """Whether ``branch`` exists and its tip's tree is ``tree`` (a rerun would write nothing new)."""
        tip = self.tip(branch)
        return tip is not None and self.tree(tip) == tree

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        self._require_lock()
        args = ["merge-base", "--is-ancestor", ancestor, descendant]
        return self.git.run(args, cwd=self.path, check=False).returncode == 0

    # -- worktrees and commits ------------------------------------------------------------------

    @contextlib.contextmanager
    def worktree(self, base: str) -> Iterator[Worktree]:
        """A detached worktree holding exactly ``base`` (a SHA or branch), for one change set.

        A worktree returned by an earlier block is reused when idle: it is reset to ``base``
        (``checkout --force`` + ``clean -ffdx``: edits, new and ignored files all go), which
        rewrites only the files that differ instead of checking the whole tree out again.
        Worktrees are removed when the :class:`Repository` block ends; one whose block raised
        is removed at once.
        """
        self._require_lock()
        commit = self._resolve(f"{base}^{{commit}}") or self.tip(base)
        if commit is None:
            raise GitError(f"cannot make a worktree: {base!r} is not a commit or branch of {self.shown_url}")
        path = self._reset_idle(commit) or self._add_worktree(commit)
        try:
            yield Worktree(self, path, commit)
        except BaseException:
            self._remove_worktree(path)
            raise
        self._idle.append(path)

    def _reset_idle(self, commit: str) -> Path | None:
        while self._idle:
            path = self._idle.pop()
            checkout = [*_NO_HOOKS, "checkout", "-q", "--detach", "--force", commit]
            if (
                self.git.run(checkout, cwd=path, check=False).returncode == 0
                and self.git.run(["clean", "-q", "-f", "-f", "-d", "-x"], cwd=path, check=False).returncode == 0
            ):
                return path
            self._remove_worktree(path)
        return None

    def _add_worktree(self, commit: str) -> Path:
        path = self._worktrees / uuid.uuid4().hex[:12]
        proc = self.git.run(
            [*_NO_HOOKS, "worktree", "add", "-q", "--detach", str(path), commit], cwd=self.path, check=False
        )
        if proc.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            raise self._failure("check out a worktree of", proc.stderr)
        return path

    def _remove_worktree(self, path: Path) -> None:
        self.git.run(["worktree", "remove", "--force", "--force", str(path)], cwd=self.path, check=False)
        shutil.rmtree(path, ignore_errors=True)
        self.git.run(["worktree", "prune"], cwd=self.path, check=False)

    def _author(self, author: Identity | None) -> Identity:
        who = author or self.author
        if who is None:
            raise ConfigError("no commit author configured; set the author name and email in the automation config")
        return who

    # -- pushes ---------------------------------------------------------------------------------

    def push_branch(self, branch: str, sha: str, *, expected: str | _Seen | None = LAST_SEEN) -> PushResult:
        """Point our ``branch`` at ``sha`` with ``--force-with-lease=<ref>:<expected>``.

        ``expected`` is the remote tip we believe is there (default: :meth:`tip`, what we last
        saw); None means the branch must not exist yet. Someone else moving the branch raises
        :class:`PushRejected`. The base branch and branches outside ``branch_prefix`` are refused.
        """
        name = self._own_branch(branch, "force-push")
        lease = self.tip(name) if expected is LAST_SEEN else expected
        assert not isinstance(lease, _Seen)
        ref = f"refs/heads/{name}"
        update = self._push([f"--force-with-lease={ref}:{lease or ''}", f"{sha}:{ref}"], ref)
        self._remember(ref, sha)
        return PushResult(ref, lease, sha, update.status)

    def delete_branch(self, branch: str, *, expected: str | _Seen | None = LAST_SEEN) -> bool:
        """Delete our remote ``branch`` if it still is at ``expected``; False when it is already gone.

        Raises :class:`PushRejected` when someone moved the branch since we saw it.
        """
        name = self._own_branch(branch, "delete")
        lease = self.tip(name) if expected is LAST_SEEN else expected
        assert not isinstance(lease, _Seen)
        if lease is None:
            return False
        ref = f"refs/heads/{name}"
        try:
            self._push([f"--force-with-lease={ref}:{lease}", f":{ref}"], ref)
        except PushRejected:
            if self._remote_has(ref):
                raise  # someone moved it: not ours to delete any more
            self._remember(ref, None)  # someone (a merged PR's cleanup) deleted it first
            return False
        self._remember(ref, None)
        return True

    def _remote_has(self, ref: str) -> bool:
        proc = self.git.run(["ls-remote", "--exit-code", "origin", ref], cwd=self.path, check=False)
        if proc.returncode not in (0, 2):
            raise self._failure("list the branches of", proc.stderr)
        return proc.returncode == 0

    def push_base(self, sha: str) -> PushResult:
        """Fast-forward the base branch to ``sha``; never forced (a moved base raises PushRejected)."""
        ref = f"refs/heads/{self.base}"
        seen = self.tip(self.base)
        if seen is not None and not self.is_ancestor(seen, sha):
            raise GitError(
                f"refusing to push {sha[:12]} to the base branch {self.base!r}: it does not descend from the base "
                f"tip {seen[:12]}, and the base branch is only ever fast-forwarded"
            )
        update = self._push([f"{sha}:{ref}"], ref)
        self._remember(ref, sha)
        return PushResult(ref, seen, sha, update.status)

    def push_ref(self, sha: str, ref: str, *, force: bool = False) -> PushResult:
        """Push ``sha`` to any ``ref`` outside our branches, e.g. Gerrit's ``refs/for/main``: an
        automation's ``spec.git.push.refspec``, which the user wrote out. ``force`` is its ``+``."""
        if not ref.startswith("refs/") or any(c in ref for c in " ~^:?*[\\\0\n"):
            raise ConfigError(f"{ref!r} is not a ref to push to; write refs/heads/<branch> or refs/for/<branch>")
        update = self._push([f"{'+' if force else ''}{sha}:{ref}"], ref)
        return PushResult(ref, None, sha, update.status)

    def _own_branch(self, branch: str, action: str) -> str:
        name = _branch_name(branch)
        if name == self.base:
            raise GitError(
                f"refusing to {action} the base branch {self.base!r}; only automator's own branches are "
                "forced — check the branch name template (direct mode fast-forwards the base instead)"
            )
        if not name.startswith(self.branch_prefix):
            raise GitError(
                f"refusing to {action} {name!r}: it does not start with the branch prefix {self.branch_prefix!r}, "
                "so it is not automator's branch"
            )
        return name

    def _push(self, args: list[str], ref: str) -> RefUpdate:
        self._require_lock()
        options = [f"--push-option={o}" for o in self.push_options]
        proc = self.git.run(
            [*_NO_HOOKS, "push", "--porcelain", "--no-verify", *options, "origin", *args], cwd=self.path, check=False
        )
        update = push_outcome(
            ref, proc.returncode, self.git.redact(proc.stdout), self.git.redact(proc.stderr), self.shown_url
        )
        log.info("pushed %s to %s: %s", ref, self.shown_url, update.status)
        return update

    def _remember(self, ref: str, sha: str | None) -> None:
        if sha is None:
            self.git.run(["update-ref", "-d", ref], cwd=self.path, check=False)
        else:
            self.git.run(["update-ref", ref, sha], cwd=self.path)

    # -- the two modes --------------------------------------------------------------------------

    def commit_direct(
        self,
        apply: Apply,
        message: str,
        *,
        author: Identity | None = None,
        signing: Signing | None = None,
        verbatim: bool = False,
        attempts: int = 5,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DirectResult:
        """Apply the rewrite on the base tip, commit, fast-forward the base; retry when it moved.

        On :class:`PushRejected` the base is fetched again and ``apply`` runs again on the new
        tip in a fresh worktree (so nothing the other pusher did is lost and our change is made
        once); when it then changes nothing — someone already made the change — no commit is
        made. After ``attempts`` rejections the last :class:`PushRejected` is raised.
        """
        who = self._author(author)
        signing = signing or self.signing
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.fetch()
            base_tip = self.tip(self.base)
            if base_tip is None:
                raise GitError(f"the base branch {self.base!r} does not exist at {self.shown_url}; check the branch")
            with self.worktree(base_tip) as tree:
                sha = tree.commit(message, author=who, signing=signing, verbatim=verbatim) if apply(tree.path) else None
            if sha is None:
                return DirectResult(None, base_tip, attempt)
            try:
                self.push_base(sha)
            except PushRejected:
                if attempt == attempts:
                    raise
                delay = backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                log.info("base %s moved; retrying on the new tip in %.2fs (%d/%d)", self.base, delay, attempt, attempts)
                sleep(delay)
                continue
            return DirectResult(sha, base_tip, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def commit_branch(
        self,
        branch: str,
        apply: Apply,
        message: str,
        *,
        author: Identity | None = None,
        signing: Signing | None = None,
        base: str | None = None,
        verbatim: bool = False,
    ) -> BranchUpdate:
        """Apply the rewrite on ``base`` (default: the base tip) and put it on our ``branch``.

        Pushes (``--force-with-lease`` on what we last saw) only when the branch does not already
        hold exactly this content, so a rerun with identical content pushes nothing.
        """
        name = self._own_branch(branch, "update")
        who = self._author(author)
        base_tip = self._resolve(f"{base}^{{commit}}") if base else self.tip(self.base)
        if base_tip is None:
            raise GitError(f"the base {base or self.base!r} does not exist at {self.shown_url}; check the branch")
        with self.worktree(base_tip) as tree:
            if not apply(tree.path) or not tree.changed():
                return BranchUpdate(name, "no-change", None, base_tip)
            current = self.tip(name)
            if current is not None and self.tree(current) == tree.staged_tree():
                return BranchUpdate(name, "unchanged", current, base_tip)
            sha = tree.commit(message, author=who, signing=signing or self.signing, verbatim=verbatim)
        assert sha is not None
        self.push_branch(name, sha, expected=current)
        return BranchUpdate(name, "pushed", sha, base_tip)

    # -- many branches at once ------------------------------------------------------------------

    def read_files(self, commit: str, paths: Collection[str]) -> TreeFiles:
        """The regular files among ``paths`` (repository-relative, ``/``) in ``commit``, read from
        the object store in two processes whatever their number: ``ls-tree`` for their modes
        and blob ids, one ``cat-file --batch`` for their bytes (exact: no checkout filter, no
        newline translation). Symlinks and submodules are left out, as a worktree rewrite never
        follows them. ``attributes`` says whether the tree has a ``.gitattributes`` anywhere:
        then a checkout may not hold the blob's bytes (``eol``, filters) and the caller must use
        a worktree instead."""
        self._require_lock()
        listing = self.git.run_bytes(["ls-tree", "-r", "-z", "--full-tree", commit], input=b"", cwd=self.path)
        want = set(paths)
        entries: dict[str, tuple[str, str]] = {}
        attributes = False
        for record in listing.stdout.split(b"\0"):
            if not record:
                continue
            meta, _, raw = record.partition(b"\t")
            path = raw.decode("utf-8", "surrogateescape")
            mode, kind, sha = meta.decode().split()
            attributes = attributes or posixpath.basename(path) == ".gitattributes"
            if path in want and kind == "blob" and mode in _REGULAR:
                entries[path] = (mode, sha)
        blobs = self._cat_blobs([sha for _, sha in entries.values()])
        files = {path: TreeFile(path, mode, blobs[sha]) for path, (mode, sha) in entries.items()}
        return TreeFiles(commit, files, attributes)

    def _cat_blobs(self, shas: Collection[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        unique = sorted(set(shas))
        proc = self.git.run_bytes(
            ["cat-file", "--batch"], input="".join(f"{s}\n" for s in unique).encode(), cwd=self.path
        )
        out, at = {}, 0
        data = proc.stdout
        for sha in unique:
            end = data.index(b"\n", at)
            header = data[at:end].split()
            if len(header) != 3:
                raise GitError(f"cannot read blob {sha} from the clone cache {self.path}: {header!r}")
            size = int(header[2])
            out[sha] = data[end + 1 : end + 1 + size]
            at = end + 1 + size + 1  # the content, then a newline
        return out

    def authors_since(self, branches: Collection[str], since: str) -> dict[str, set[str]]:
        """:meth:`authors` for many branches in one ``git log``: per branch, the author emails of
        its commits that ``since`` does not have (a branch that does not exist has none)."""
        self._require_lock()
        tips = {b: t for b, t in self.branches(prefix="").items() if b in set(branches)}
        out: dict[str, set[str]] = {b: set() for b in branches}
        if not tips:
            return out
        revs = [f"^refs/heads/{_branch_name(since)}", *sorted(set(tips.values()))]
        proc = self.git.run_bytes(
            ["log", "--stdin", "--format=%H%x00%ae%x00%P"],
            input="".join(f"{r}\n" for r in revs).encode(),
            cwd=self.path,
            check=False,
        )
        if proc.returncode != 0:  # e.g. no such base: as authors() does, nobody else's
            return out
        commits: dict[str, tuple[str, list[str]]] = {}
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            sha, email, parents = line.split("\0")
            commits[sha] = (email, parents.split())
        for branch, tip in tips.items():
            todo, seen = [tip], set()
            while todo:
                sha = todo.pop()
                if sha in seen or sha not in commits:
                    continue
                seen.add(sha)
                who, above = commits[sha]
                out[branch].add(who)
                todo.extend(above)
        return out

    def commit_branches(
        self,
        base: str,
        changes: Sequence[BranchChange],
        *,
        author: Identity | None = None,
        signing: Signing | None = None,
    ) -> dict[str, BranchUpdate | AutomatorError]:
        """:meth:`commit_branch` for many branches at once, without a worktree, in one push.

        Every change's commit is built on ``base`` by one ``git fast-import`` (blobs, trees and
        commits straight into the object store; with ``signing`` each commit is then re-made,
        signed, by ``git commit-tree -S`` on the same tree). A branch already holding exactly
        the new tree is ``unchanged`` and not pushed; a change that leaves ``base``'s tree as it
        is, ``no-change``. The rest go in a single ``git push`` with one
        ``--force-with-lease=<ref>:<tip we saw>`` per branch, not ``--atomic``: each branch is
        one pull request of its own, so a person's push to one branch must fail only that one
        (its entry is the :class:`PushRejected`) while the others land. Per-branch problems
        come back as that branch's error; a failure of the whole batch (fast-import, the
        network) raises.
        """
        who = self._author(author)
        signing = signing or self.signing
        results: dict[str, BranchUpdate | AutomatorError] = {}
        todo: list[BranchChange] = []
        for change in changes:
            try:
                self._own_branch(change.branch, "update")
                _check_message(change.message)
            except AutomatorError as exc:
                results[change.branch] = exc
                continue
            if change.files:
                todo.append(change)
            else:
                results[change.branch] = BranchUpdate(change.branch, "no-change", None, base)
        if not todo:
            return results
        built = self._fast_import(base, todo, who)
        tips = self.branches(prefix="")
        trees = self._trees([base, *built.values(), *(tips[c.branch] for c in todo if c.branch in tips)])
        pushes: dict[str, tuple[str, str | None]] = {}
        for change in todo:
            sha = built[change.branch]
            current = tips.get(change.branch)
            if trees[sha] == trees[base]:
                results[change.branch] = BranchUpdate(change.branch, "no-change", None, base)
            elif current is not None and trees.get(current) == trees[sha]:
                results[change.branch] = BranchUpdate(change.branch, "unchanged", current, base)
            else:
                try:
                    if signing is not None:
                        sha = self._commit_tree(trees[sha], base, change, who, signing)
                except AutomatorError as exc:
                    results[change.branch] = exc
                    continue
                pushes[change.branch] = (sha, current)
        for branch, outcome in self._push_many(pushes).items():
            results[branch] = (
                outcome
                if isinstance(outcome, AutomatorError)
                else BranchUpdate(branch, "pushed", pushes[branch][0], base)
            )
        return results

    def _fast_import(self, base: str, changes: Sequence[BranchChange], who: Identity) -> dict[str, str]:
        """One ``git fast-import`` stream: a commit on ``base`` per change; branch -> commit SHA.

        The commits are made on one scratch ref (reset to ``base`` before each), which is
        deleted afterwards: nothing but the objects stays, and ``get-mark`` gives their SHAs.
        """
        stream = bytearray(b"feature done\n")
        for i, change in enumerate(changes, 1):
            message = change.message.encode("utf-8") if change.verbatim else _cleanup(change.message).encode("utf-8")
            stream += f"reset {_SCRATCH}\nfrom {base}\n".encode()
            stream += f"commit {_SCRATCH}\nmark :{i}\n".encode()
            stream += f"author {who.name} <{who.email}> now\ncommitter {who.name} <{who.email}> now\n".encode()
            stream += b"data %d\n%s\nfrom %s\n" % (len(message), message, base.encode())
            for file in change.files:
                stream += b"M %s inline %s\ndata %d\n%s\n" % (
                    file.mode.encode(),
                    _fast_import_path(file.path),
                    len(file.data),
                    file.data,
                )
            stream += f"\nget-mark :{i}\n".encode()
        stream += b"done\n"
        args = [*_NO_HOOKS, "fast-import", "--quiet", "--force", "--date-format=now", "--done"]
        proc = self.git.run_bytes(args, input=bytes(stream), cwd=self.path, check=False)
        self.git.run(["update-ref", "-d", _SCRATCH], cwd=self.path, check=False)
        if proc.returncode != 0:
            detail = self.git.redact(proc.stderr.decode("utf-8", "replace").strip())
            raise GitError(f"git fast-import failed in the clone cache {self.path}: {detail}")
        marks = proc.stdout.decode().split()
        if len(marks) != len(changes):
            raise GitError(f"git fast-import gave {len(marks)} commits for {len(changes)} branches in {self.path}")
        return {change.branch: sha for change, sha in zip(changes, marks, strict=True)}

    def _trees(self, commits: Collection[str]) -> dict[str, str]:
        """Commit -> tree SHA for every commit, in one ``cat-file --batch-check``."""
        unique = sorted(set(commits))
        query = "".join(f"{c}^{{tree}}\n" for c in unique).encode()
        out = self.git.run_bytes(["cat-file", "--batch-check=%(objectname)"], input=query, cwd=self.path)
        trees = out.stdout.decode().split("\n")
        return {c: t for c, t in zip(unique, trees, strict=False) if not t.endswith("missing")}

    def _commit_tree(self, tree: str, base: str, change: BranchChange, who: Identity, signing: Signing) -> str:
        """The signed commit of ``tree`` on ``base``: ``git commit-tree -S``, as ``git commit -S`` signs."""
        before, flags, env = commit_config(signing)
        env = {**env, **who.env("AUTHOR"), **who.env("COMMITTER")}
        message = change.message if change.verbatim else _cleanup(change.message)
        proc = self.git.run_bytes(
            [*_NO_HOOKS, *before, "commit-tree", *flags, "-p", base, tree],
            input=message.encode("utf-8"),
            cwd=self.path,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            detail = self.git.redact(proc.stderr.decode("utf-8", "replace").strip())
            raise GitError(f"git commit-tree failed for {change.branch}: {detail}; check the signing key and program")
        return proc.stdout.decode().strip()

    def _push_many(self, pushes: Mapping[str, tuple[str, str | None]]) -> dict[str, PushResult | AutomatorError]:
        """Push every ``branch -> (sha, lease)`` in one ``git push``; per branch, what became of it."""
        if not pushes:
            return {}
        self._require_lock()
        args = []
        for branch, (sha, lease) in pushes.items():
            ref = f"refs/heads/{branch}"
            args += [f"--force-with-lease={ref}:{lease or ''}", f"{sha}:{ref}"]
        options = [f"--push-option={o}" for o in self.push_options]
        proc = self.git.run(
            [*_NO_HOOKS, "push", "--porcelain", "--no-verify", *options, "origin", *args], cwd=self.path, check=False
        )
        stdout, stderr = self.git.redact(proc.stdout), self.git.redact(proc.stderr)
        out: dict[str, PushResult | AutomatorError] = {}
        landed = []
        for branch, (sha, lease) in pushes.items():
            ref = f"refs/heads/{branch}"
            try:
                update = push_outcome(ref, proc.returncode, stdout, stderr, self.shown_url, several=len(pushes) > 1)
            except AutomatorError as exc:
                out[branch] = exc
                continue
            out[branch] = PushResult(ref, lease, sha, update.status)
            landed.append(f"update {ref} {sha}\n")
        log.info("pushed %d of %d branches to %s in one push", len(landed), len(pushes), self.shown_url)
        if landed:
            self.git.run_bytes(["update-ref", "--stdin"], input="".join(landed).encode(), cwd=self.path)
        return out


@dataclass(frozen=True)
class TreeFile:
    """One regular file of a commit's tree: its path, git mode (``100644``/``100755``) and bytes."""

    path: str
    mode: str
    data: bytes


@dataclass(frozen=True)
class TreeFiles:
    """What :meth:`Repository.read_files` read from ``commit``."""

    commit: str
    files: Mapping[str, TreeFile]
    attributes: bool  # the tree has a .gitattributes: checkouts may differ from blobs


@dataclass(frozen=True)
class BranchChange:
    """One branch's change set for :meth:`Repository.commit_branches`: the files it rewrites
    (full new contents), and its commit message (cleaned up as ``git commit`` does, unless
    ``verbatim``)."""

    branch: str
    files: tuple[TreeFile, ...]
    message: str
    verbatim: bool = False


_REGULAR = ("100644", "100755")
_SCRATCH = "refs/automator/fast-import"


def _check_message(message: str) -> None:
    if not message.strip():
        raise ConfigError("the commit message is empty; check the commit message template")


def _cleanup(message: str) -> str:
    """``git commit --cleanup=whitespace``: trailing whitespace off every line, runs of blank
    lines made one, none at the start or end, a final newline (git's ``strbuf_stripspace``)."""
    lines: list[str] = []
    blank = False
    for raw in message.split("\n"):
        line = raw.rstrip(" \t\n\r")
        if not line:
            blank = bool(lines)
            continue
        if blank:
            lines.append("")
            blank = False
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def _fast_import_path(path: str) -> bytes:
    """A path as fast-import reads it: as is, or C-quoted when it could be misread."""
    raw = path.encode("utf-8", "surrogateescape")
    if not (raw.startswith(b'"') or any(c in raw for c in b"\n\\")):
        return raw
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    return b'"' + escaped + b'"'


def _branch_name(branch: str) -> str:
    name = branch.removeprefix("refs/heads/")
    if not name or name.startswith(("-", "/")) or ".." in name or any(c in name for c in " ~^:?*[\\\0\n"):
        raise ConfigError(f"{branch!r} is not a valid branch name")
    return name


def _remove_git_locks(gitdir: Path) -> None:
    for lock in [*gitdir.glob("*.lock"), *gitdir.glob("refs/**/*.lock"), *gitdir.glob("worktrees/*/*.lock")]:
        lock.unlink(missing_ok=True)
