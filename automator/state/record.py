"""What one cycle leaves in the state database, and the rebuild of a database started afresh."""

from __future__ import annotations

import logging
import posixpath
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from automator.errors import AutomatorError
from automator.forge import Forge, PullRequest
from automator.git.workspace import Repository
from automator.plan import Plan
from automator.policy import PolicySet
from automator.policy.model import TagChoice
from automator.registry.memo import RegistryMemo
from automator.scan import ScanResult
from automator.state.store import PolicyChoice, PREvent, StateStore
from automator.update import locate_tree

log = logging.getLogger("automator.state")

HISTORY_COMMITS = 200  # the rebuild walks at most this many commits of the base branch
HISTORY_SECONDS = 60.0  # and stops walking after this long
FORGE_PULL_REQUESTS = 500  # and reads at most this many of our pull requests


class GroupOutcome(Protocol):
    """What the recorder reads of a group's result (:class:`automator.run.GroupResult`)."""

    @property
    def group(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def pull_request(self) -> PullRequest | None: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def sha(self) -> str | None: ...


@dataclass(frozen=True)
class BaseHistory:
    """The base branch as the cycle saw it: the clone, its tip, and where the policies' fields are."""

    repo: Repository
    tip: str
    policies: PolicySet
    subpath: str = "."
    marker_less_paths: Sequence[str] = ()

    def commit_time(self, revision: str) -> datetime:
        out = self.repo.git.run(["log", "-1", "--format=%ct", revision], cwd=self.repo.path).stdout.strip()
        return datetime.fromtimestamp(int(out), UTC)

    def versions_at(
        self, commit: str, only: Iterable[str] | None = None
    ) -> tuple[dict[str, tuple[str, ...]], set[str]]:
        """What each policy's fields hold at ``commit`` (and the files holding them)."""
        active = [p for p in self.policies.policies if not p.suspend]
        with self.repo.worktree(commit) as tree:
            root = tree.path / self.subpath
            if not root.is_dir():
                return {}, set()
            found = locate_tree(
                root,
                active,
                others=self.policies.refused,
                marker_less_paths=self.marker_less_paths,
                only=None if only is None else set(only),
            )
        return {name: _norm(tags) for name, tags in found.current.items()}, set(found.files)


def _norm(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(tags)))


def record_cycle(
    store: StateStore,
    plan: Plan,
    groups: Sequence[GroupOutcome],
    *,
    failed: bool,
    memo: RegistryMemo,
    forge: Forge | None,
    prefix: str,
    history: BaseHistory,
    started: datetime | None = None,
) -> None:
    """Record one cycle: the tags listed, each policy's choice, merges on the base branch, the
    pull requests' events; rebuild first when the database was started afresh. Never raises:
    the cycle's work is done, so a failure to record it is logged as an error."""
    listings = {}  # what the cycle listed (a listing that failed is not there: its tags are not gone)
    for r in plan.scan:
        listing = memo.listing(r.policy.image.repository)
        if listing is not None:
            listings[r.policy.image.repository] = listing.tags
    try:
        with store.transaction():  # the whole cycle or none of it: a crash mid-way never half-records
            _record(
                store,
                plan,
                groups,
                failed=failed,
                listings=listings,
                forge=forge,
                prefix=prefix,
                history=history,
                started=started,
            )
    except (sqlite3.Error, OSError, AutomatorError) as exc:
        log.error("state: could not record the cycle in %s: %s", store.path, exc)
    except Exception:  # a bug here must not stop the automator's own work, cycle after cycle
        log.exception("state: could not record the cycle in %s", store.path)


def _record(
    store: StateStore,
    plan: Plan,
    groups: Sequence[GroupOutcome],
    *,
    failed: bool,
    listings: Mapping[str, Sequence[str]],
    forge: Forge | None,
    prefix: str,
    history: BaseHistory,
    started: datetime | None,
) -> None:
    cycle = store.begin_cycle(history.tip, started)
    rebuilding = store.rebuild_pending
    if rebuilding:  # the PRs this cycle acted on are recorded from its results, not twice
        acted = {g.pull_request.number for g in groups if g.pull_request is not None and g.outcome in _EVENTS}
        rebuild(store, history, forge, prefix, skip=acted)
    digests: dict[str, dict[str, str]] = {}
    for r in plan.scan:
        if r.choice is not None and r.choice.tag is not None and r.choice.digest is not None:
            digests.setdefault(r.policy.image.repository, {})[r.choice.tag] = r.choice.digest
    store.record_listings(listings, digests, rebuilt=rebuilding)
    store.record_choices(cycle, (_choice(r) for r in plan.scan))
    _record_base(store, plan.current, history)
    _record_commits(store, groups, history)
    _record_pull_requests(store, groups, forge, prefix)
    if rebuilding:
        store.rebuilt()
    store.finish_cycle(cycle, "failed" if failed else "ok")
    store.prune()


def _choice(r: ScanResult) -> PolicyChoice:
    choice = r.choice
    return PolicyChoice(
        r.policy.name,
        r.policy.image.repository,
        choice.tag if choice is not None else None,
        choice.digest if choice is not None else None,
        r.current,
        str(r.error) if r.error is not None else _no_tag(choice),
        (choice.reason or None) if choice is not None else None,  # a chosen tag's too: the variant rule
    )


def _no_tag(choice: TagChoice | None) -> str | None:
    """Why a policy chose nothing, when it did not fail."""
    if choice is None or choice.tag is not None:
        return None
    return choice.reason or "no tag qualifies"


def _record_base(store: StateStore, current: Mapping[str, Sequence[str]], history: BaseHistory) -> None:
    """A merge row when the base tip's fields hold other tags than the last one recorded.

    Only policies located this cycle count: one whose file could not be read (or that was
    removed) is not recorded as a change."""
    base = store.base_versions()
    changed = {p: _norm(tags) for p, tags in current.items() if tags and base.get(p) != _norm(tags)}
    if changed:
        store.record_merge(history.tip, history.commit_time(history.tip), changed)


def _record_commits(store: StateStore, groups: Sequence[GroupOutcome], history: BaseHistory) -> None:
    """Our own commits on the base branch (direct mode) as merges, in the cycle that made them:
    what the fields hold at the commit, the commit's time. So a revert before the next cycle
    is seen as a rollback of ours ("ours -> older"), not as the base branch never moving."""
    for g in groups:
        if g.outcome != "committed" or g.sha is None or g.branch != history.repo.base:
            continue  # a push branch (Flux's spec.git.push.branch) is not the base branch
        try:
            at_commit, _ = history.versions_at(g.sha)
            when = history.commit_time(g.sha)
        except (AutomatorError, OSError) as exc:
            log.warning("state: cannot read our commit %s to record it as a merge: %s", g.sha[:12], exc)
            continue
        base = store.base_versions()
        changed = {p: tags for p, tags in at_commit.items() if tags and base.get(p) != tags}
        if changed:
            store.record_merge(g.sha, when, changed)


def _event(pr: PullRequest) -> PREvent:
    return "merged" if pr.state == "merged" else "closed" if pr.state == "closed" else "opened"


_EVENTS: Mapping[str, PREvent] = {"opened": "opened", "updated": "updated", "closed": "closed"}


def _record_pull_requests(store: StateStore, groups: Sequence[GroupOutcome], forge: Forge | None, prefix: str) -> None:
    events = _EVENTS
    seen = set()
    for g in groups:
        pr = g.pull_request
        if pr is None:
            continue
        seen.add(pr.number)
        event = events.get(g.outcome)
        if event is not None:
            store.record_pr_event(g.group, pr.number, pr.url, event, dict(pr.marker.versions) if pr.marker else {})
    waiting = {n: e for n, e in store.latest_pr_events().items() if e.event in ("opened", "updated") and n not in seen}
    if not waiting or forge is None:
        return
    # a PR of ours no group proposes any more: merged or closed since; the forge says which
    try:
        listed = forge.list_pull_requests(prefix)
    except AutomatorError as exc:
        log.warning("state: cannot read the pull requests to see which were merged: %s", exc)
        return
    for pr in listed:
        was = waiting.get(pr.number)
        if was is not None and pr.state != "open":
            store.record_pr_event(was.group, pr.number, pr.url, _event(pr), was.versions)


def rebuild(
    store: StateStore, history: BaseHistory, forge: Forge | None, prefix: str, *, skip: Collection[int] = ()
) -> None:
    """Fill a database started afresh from the git history of the base branch (merges) and the
    forge (our pull requests), each bounded; the tags come from this cycle's listings."""
    started = time.monotonic()
    merges = _rebuild_merges(store, history, started)
    prs = 0
    if forge is not None:
        try:
            listed = forge.list_pull_requests(prefix)[:FORGE_PULL_REQUESTS]
        except AutomatorError as exc:
            log.warning("state: cannot read the pull requests to rebuild their events: %s", exc)
            listed = []
        for pr in reversed(listed):  # newest first from the forge: recorded oldest first
            if pr.number in skip:
                continue
            group = pr.marker.group if pr.marker is not None else pr.branch
            versions = dict(pr.marker.versions) if pr.marker is not None else {}
            store.record_pr_event(group, pr.number, pr.url, _event(pr), versions, rebuilt=True)
            prs += 1
    log.warning(
        "state: rebuilt %s: %d merges from the last %d commits of the base branch, %d pull requests from the "
        "forge (their event times are now); tags' first-seen times start with this cycle's listings",
        store.path,
        merges,
        HISTORY_COMMITS,
        prs,
    )


def _rebuild_merges(store: StateStore, history: BaseHistory, started: float) -> int:
    _, files = history.versions_at(history.tip)
    if not files:
        return 0
    paths = sorted(posixpath.normpath(posixpath.join(history.subpath, f)) for f in files)
    if len(paths) > 1000:  # too many for one command line: every commit under the policy root
        paths = [history.subpath]
    cutoff = int((store.now() - store.retention).timestamp())
    out = history.repo.git.run(
        [
            "log",
            "--first-parent",
            f"--max-count={HISTORY_COMMITS}",
            f"--since={cutoff}",
            "--format=%H %ct",
            history.tip,
            "--",
            *paths,
        ],
        cwd=history.repo.path,
    ).stdout
    commits = [line.split() for line in out.splitlines() if line.strip()][::-1]
    held: dict[str, tuple[str, ...]] = {}
    count = 0
    for sha, ct in commits:
        if time.monotonic() - started > HISTORY_SECONDS:
            log.warning("state: the rebuild stopped walking the git history after %gs", HISTORY_SECONDS)
            break
        now, _ = history.versions_at(sha, files)
        changed = {p: v for p, v in now.items() if v and held.get(p) != v}
        if changed:
            store.record_merge(sha, datetime.fromtimestamp(int(ct), UTC), changed, rebuilt=True)
            held.update(changed)
            count += 1
    return count
