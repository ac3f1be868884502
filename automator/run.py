"""Run: the Deployment Automator's job, once — fetch, plan, commit, push, pull requests.

One orchestrator over the stages::

    git fetch (clone cache) -> plan on the base tip (scan, choose, rewrite in memory)
      -> pull-request mode: per group, decide from the forge's own state (open / update /
         noop / skip / close); the groups that need a commit get it built on the base tip
         from the blobs (no worktree, one fast-import), every branch that changed goes out
         in one push, then each landed group's PR is opened or updated
      -> direct mode: one commit on the base branch, re-applied on a new tip if it moved

State lives in the forge (our branch prefix + the marker in each PR body) and in git, so a
restart or a second run never opens a duplicate, and a rerun with nothing new writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import posixpath
import re
import sqlite3
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from automator.automations import AutomationClock, flux_message, job_config, signing_from_secret
from automator.config import (
    CONFIG_FILE,
    Automation,
    AutomationSpec,
    Group,
    check_repo_config,
    completed,
    group_policies,
    load_config,
    with_overrides,
)
from automator.errors import AutomatorError, ConfigError
from automator.forge import (
    BodyRow,
    Forge,
    Location,
    NoneForge,
    PROptions,
    PRState,
    PullRequest,
    build_body,
    plan_pull_requests,
    with_marker,
)
from automator.forge.lifecycle import DesiredPR, PRDecision
from automator.git import Credentials, Git
from automator.git.signing import Identity, Signing
from automator.git.workspace import BranchChange, BranchUpdate, Repository, TreeFile, TreeFiles
from automator.notify import CycleAnnouncer, CycleRecords, streaks_from
from automator.plan import Plan, Share, directory_in, make_plan, merge_plans, only, shares, unselected
from automator.policy import ParseCache, Policy, PolicySet, load_policies
from automator.policy.automation import UpdateAutomation
from automator.redact import redact_url
from automator.registry.access import RegistryAccess, open_registry
from automator.registry.config import shared
from automator.registry.memo import RegistryMemo
from automator.scan import Prober, Progress
from automator.shards import Partition, ShardSelection, Unit, partition
from automator.state import BaseHistory, PolicyChoice, PREventRecord, StateStore, record_cycle
from automator.state.gates import ClusterSight
from automator.state.gates import memory as gate_memory
from automator.templates import render
from automator.update import Change, Decisions, UpdateResult, locate_tree, rewrite_file, update_tree

log = logging.getLogger("automator.run")

Outcome = Literal["opened", "updated", "unchanged", "skipped", "closed", "committed", "failed", "deleted"]


@dataclass(frozen=True)
class GroupResult:
    """What happened to one group (or, in direct mode, to the whole change)."""

    group: str
    outcome: Outcome
    reason: str = ""
    branch: str | None = None
    sha: str | None = None
    pull_request: PullRequest | None = None
    policies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSummary:
    """One cycle: the base revision, the plan, and what each group came to."""

    revision: str
    plan: Plan
    groups: tuple[GroupResult, ...]
    policy_errors: tuple[AutomatorError, ...] = ()
    forge_reads: int = 0  # API calls this cycle
    forge_writes: int = 0
    forge: Forge | None = field(default=None, compare=False, repr=False)
    # --shards: every policy's and repository's shard (this cycle worked only the selection's)
    partition: Partition | None = field(default=None, compare=False, repr=False)
    selection: ShardSelection | None = None
    policies: tuple[Policy, ...] = ()  # every policy loaded, worked here or not

    @property
    def failed(self) -> bool:
        return bool(self.plan.failed or self.policy_errors) or any(g.outcome == "failed" for g in self.groups)


# --------------------------------------------------------------------------- change record -> text


@dataclass(frozen=True)
class FileLine:
    file: str
    line: int


@dataclass(frozen=True)
class TemplateUpdate:
    """One policy's update, as templates see it (``updates[i]``)."""

    policy: str
    image: str  # the familiar name, e.g. nginx
    repository: str  # the canonical one, e.g. docker.io/library/nginx
    tag: str
    digest: str | None
    old: str  # the tag the fields hold now
    new: str  # tag[@digest]
    files: tuple[FileLine, ...]
    source: FileLine  # where the policy is defined
    proof: str = ""  # spec.promotion: where the new version ran, healthy for how long, the query's value


@dataclass(frozen=True)
class TemplateChange:
    """One rewritten field (``changes[i]``)."""

    policy: str
    file: str
    line: int
    old: str
    new: str


@dataclass(frozen=True)
class TemplateContext:
    """The variables every user template sees (see :mod:`automator.templates`), built once per
    group from the plan's records; :meth:`variables` is the plain data a template renders."""

    group: str
    prefix: str
    base: str
    updates: tuple[TemplateUpdate, ...]
    changes: tuple[TemplateChange, ...]

    def variables(self) -> dict[str, Any]:
        return asdict(self)


def _updates(
    plan: Plan, decisions: Decisions, names: Sequence[str], current: Mapping[str, tuple[str, ...]]
) -> tuple[TemplateUpdate, ...]:
    by_policy = plan.update.by_policy()
    proofs = {r.policy.name: r.choice.promoted for r in plan.scan if r.choice is not None and r.choice.promoted}
    out = []
    for name in names:
        d = decisions[name]
        changes = by_policy.get(name, ())
        old = (current.get(name) or (changes[0].old if changes else "",))[0]
        out.append(
            TemplateUpdate(
                policy=name,
                image=d.image.familiar,
                repository=d.image.repository,
                tag=d.tag,
                digest=d.digest,
                old=old,
                new=d.tag + (f"@{d.digest}" if d.digest else ""),
                files=tuple(FileLine(c.file, c.line) for c in changes),
                source=FileLine(d.policy.source.path, d.policy.source.line),
                proof=proofs.get(name, ""),
            )
        )
    return tuple(out)


def template_context(plan: Plan, decisions: Decisions, group: Group, prefix: str, base: str) -> TemplateContext:
    """The template variables of ``group``, from the plan's records (the tags located, the changes)."""
    chosen = {d.name for d in decisions}
    names = [n for n in group.policies if n in chosen]
    changes = tuple(
        TemplateChange(c.policy, c.file, c.line, c.old, c.new) for c in plan.update.changes if c.policy in names
    )
    updates = _updates(plan, decisions, names, plan.current)
    return TemplateContext(group.name, prefix, base, updates, changes)


def _web_root(config: Automation) -> str | None:
    """The forge's web address of the repository, for links in PR bodies."""
    forge = config.spec.forge
    if forge.provider == "none" or not forge.repository:
        return None
    if forge.provider == "gitlab":
        return f"{(forge.url or 'https://gitlab.com').rstrip('/')}/{forge.repository}/-"
    api = (forge.url or "https://api.github.com").rstrip("/")
    host = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
    return f"{host}/{forge.repository}"


def _repo_path(subpath: str, path: str) -> str:
    """``path`` (relative to ``spec.git.path``) relative to the repository root."""
    return posixpath.normpath(str(PurePosixPath(subpath) / path))


def blob_url(config: Automation, path: str, line: int | None) -> str | None:
    """A link to ``path`` (relative to ``spec.git.path``) on the base branch, at ``line``."""
    root = _web_root(config)
    if root is None:
        return None
    full = _repo_path(config.spec.git.path, path)
    return f"{root}/blob/{config.spec.git.branch}/{full}" + (f"#L{line}" if line else "")


def _body(config: Automation, context: TemplateContext, state: PRState) -> str:
    template = config.spec.pull_request.body_template
    if template:
        return with_marker(render(template, context.variables(), what="pull request body"), state)
    rows = [
        BodyRow(
            image=u.repository,
            old=u.old,
            new=u.new,
            locations=tuple(Location(f.file, f.line, blob_url(config, f.file, f.line)) for f in u.files),
            policy=u.policy,
            policy_url=blob_url(config, u.source.file, u.source.line),
            proof=u.proof,
        )
        for u in context.updates
    ]
    return build_body(rows, state)


# --------------------------------------------------------------------------- the cycle


@dataclass(frozen=True)
class RunOptions:
    """What a run needs besides the config file: where things are, how to reach them."""

    cache_dir: Path
    credentials: Credentials = field(default_factory=Credentials)
    access: RegistryAccess = field(default_factory=RegistryAccess)
    progress: Progress | None = None
    # read automator.yaml from the config repo's base tip; ``overrides`` (flags, env) win over it
    repo_config: bool = False
    overrides: Mapping[str, object] = field(default_factory=dict)
    # registry answers kept across cycles (the service); None lists everything every cycle
    memo: RegistryMemo | None = field(default=None, compare=False)
    # when each ImageUpdateAutomation last ran (the service keeps one; None: every one is due)
    clock: AutomationClock | None = field(default=None, compare=False)
    # where each cycle is recorded (--state-dir); None keeps no state beyond the forge and git
    state: StateStore | None = field(default=None, compare=False)
    # who is told what the cycle did (--notifications); None tells nobody
    notify: CycleAnnouncer | None = field(default=None, compare=False)
    # --shards: the shards this replica holds; the cycle works only their policies (None: all)
    shards: ShardSelection | None = None
    # --cluster: which clusters this cycle read (their reports recorded in ``state`` first), for
    # the promotion gates; None: none read
    clusters: ClusterSight | None = field(default=None, compare=False)
    prober: Prober | None = field(default=None, compare=False)  # --prometheus: the promotion queries
    # the policy files as parsed last cycle (the service keeps one); None parses every file each time
    policy_cache: ParseCache | None = field(default=None, compare=False)


def _signing(config: Automation) -> Signing | None:
    spec = config.spec.commit.signing
    if spec is None:
        return None
    return Signing.ssh(spec.key) if spec.format == "ssh" else Signing.gpg(spec.key)


def _options(config: Automation) -> PROptions:
    pr = config.spec.pull_request
    return PROptions(
        labels=tuple(pr.labels),
        reviewers=tuple(pr.reviewers),
        team_reviewers=tuple(pr.team_reviewers),
        assignees=tuple(pr.assignees),
        draft=pr.draft,
        auto_merge=pr.auto_merge,
        merge_method=pr.merge_method,
    )


def run_once(config: Automation, forges: Callable[[Automation], Forge], options: RunOptions) -> RunSummary:
    """One full cycle against the remote in ``config.spec.git``."""
    if not config.spec.git.url:
        raise ConfigError("no git URL: set spec.git.url in automator.yaml, --git-url or AUTOMATOR_GIT_URL")
    git = Git(options.credentials)
    if options.shards is not None:  # N replicas share each registry's connections, not N times them
        fraction = len(options.shards.held) / options.shards.count
        options = dataclasses.replace(
            options, access=dataclasses.replace(options.access, base=shared(options.access.base, fraction))
        )
    started = options.state.now() if options.state is not None else None
    with Repository(
        git,
        config.spec.git.url,
        options.cache_dir,
        base=config.spec.git.branch,
        branch_prefix=config.spec.pull_request.branch_prefix,
    ) as repo:
        base_tip = repo.tip(config.spec.git.branch)
        if base_tip is None:
            raise ConfigError(f"the base branch {config.spec.git.branch!r} does not exist at {repo.shown_url}")
        with repo.worktree(base_tip) as tree:
            in_repo = tree.path / CONFIG_FILE
            if options.repo_config and in_repo.is_file():
                from_repo = load_config(in_repo, shown=CONFIG_FILE)
                check_repo_config(from_repo, CONFIG_FILE)
                config = with_overrides(from_repo, dict(options.overrides))
                repo.branch_prefix = config.spec.pull_request.branch_prefix
            config = completed(config)
            settled = Settled.of(config)  # once, before planning: nothing below re-reads the config
            spec = config.spec
            forge = forges(config)
            reads, writes = forge.calls.reads, forge.calls.writes
            found = directory_in(tree.path, spec.git.path)
            if found is None:
                raise ConfigError(f"spec.git.path {spec.git.path!r} is not a directory inside the config repo")
            root = found
            policies = load_policies(root, cache=options.policy_cache)
            memo = options.memo if options.memo is not None else RegistryMemo()  # one listing per cycle
            jobs = shares(policies, spec.git.path)
            split = None
            if options.shards is not None:
                split = partition(work_units(jobs, spec), options.shards.count)
                jobs = sharded(jobs, split, options.shards, spec)
                log.info("%s: %d of %d policies", options.shards, sum(len(j.policies) for j in jobs), len(policies))
            native = jobs[0] if jobs and jobs[0].automation is None else None
            # every policy an automation's: no pass of the automator's own over the tree
            plans: list[tuple[str, Plan]] = []
            if native is not None:
                plans.append((".", _plan(root, native.policies, options, memo, spec.marker_less_paths)))
        results: list[GroupResult] = []
        if native is not None:
            plan = plans[0][1]
            by_policy = plan.update.by_policy()
            changed = [d.name for d in plan.decisions if d.name in by_policy]
            cycle = _Cycle(
                config, repo, forge, plan, plan.decisions, settled, base_tip, options.state, options.shards, started
            )
            results = [cycle.direct(changed)] if spec.mode == "direct" else cycle.pull_requests(changed)
        for p in unselected(policies):
            log.warning(
                "policy %s (%s:%d): no ImageUpdateAutomation selects it (its namespace, policySelector), so its "
                "markers are not updated, as Flux would not update them",
                p.name,
                p.source.path,
                p.source.line,
            )
        clock = options.clock if options.clock is not None else AutomationClock()
        for share in jobs:
            if share.automation is None:
                continue
            job = _AutomationJob(config, share, repo, forge, options, memo, clock)
            job_plan, job_results = job.run()
            if job_plan is not None:
                plans.append((share.where, job_plan))
            results.extend(job_results)
        summary = RunSummary(
            base_tip,
            merge_plans(plans),
            tuple(results),
            policies.errors,
            forge.calls.reads - reads,
            forge.calls.writes - writes,
            forge,
            split,
            options.shards,
            policies.policies,
        )
        before = _before_recording(options.notify, options.state)
        if options.state is not None:  # with the clone still open: a rebuild reads its history
            record_cycle(
                options.state,
                summary.plan,
                summary.groups,
                failed=summary.failed,
                memo=memo,
                forge=forge,
                prefix=spec.pull_request.branch_prefix,
                history=BaseHistory(repo, base_tip, policies, spec.git.path, spec.marker_less_paths),
                started=started,
            )
            _record_held_back(options.state, summary.plan)
        if options.notify is not None:
            _announce(options.notify, summary, options.state, before, spec.pull_request.branch_prefix)
    return summary


# --------------------------------------------------------------------------- shards

STRAY_AGE = 600.0  # seconds: with --shards, how old a branch no pull request has must be to go


def work_units(jobs: Sequence[Share], spec: AutomationSpec) -> list[Unit]:
    """The cycle's units of work (:mod:`automator.shards`): each pull request group of the
    automator's own policies (direct mode: all of them, one branch), each ImageUpdateAutomation."""
    return [unit for share in jobs for unit in _share_units(share, spec)]


def _share_units(share: Share, spec: AutomationSpec) -> list[Unit]:
    repos = {p.name: p.image.repository for p in share.policies}
    auto = share.automation
    if auto is not None:
        branch = auto.push_branch or auto.branch(spec.git.branch)
        return [Unit("automation:" + auto.name, tuple(repos), frozenset(repos.values()), frozenset({branch}))]
    names = list(repos)
    groups = [Group("direct", tuple(names))] if spec.mode == "direct" else group_policies(names, spec.pull_request)
    return [Unit("group:" + g.name, g.policies, frozenset(repos[p] for p in g.policies)) for g in groups]


def sharded(jobs: Sequence[Share], split: Partition, selection: ShardSelection, spec: AutomationSpec) -> list[Share]:
    """The jobs with only the policies of the shards ``selection`` holds; an automation of
    another shard's is left out whole. The automator's own job stays (perhaps empty), so that
    its pull requests of other shards are seen and left as they are."""
    out = []
    for share in jobs:
        units = _share_units(share, spec)
        kept = {p for u in units if split.unit_in(u.name, selection.held) for p in u.policies}
        if share.automation is None:
            out.append(only(share, kept))
        elif kept:
            out.append(share)
    return out


# --------------------------------------------------------------------------- notifications


def _latest_pr_events(store: StateStore) -> Mapping[int, PREventRecord] | None:
    try:
        return store.latest_pr_events()
    except sqlite3.Error as exc:
        log.warning("notifications: cannot read the pull requests' events from %s: %s", store.path, exc)
        return None


def _failing(choice: PolicyChoice) -> bool:
    """A recorded choice that failed (the state keeps "no tag qualifies" in the same column)."""
    return bool(choice.error) and choice.reason is None and choice.error != "no tag qualifies"


def _before_recording(announcer: CycleAnnouncer | None, store: StateStore | None) -> Mapping[int, PREventRecord] | None:
    """What the state says before this cycle is recorded: the PRs' latest events (to see which
    become merged or closed) and, once per process, the policies' failing streaks so far."""
    if announcer is None or store is None:
        return None
    if not announcer.streaks.seeded:
        try:
            cycles = store.cycles(limit=announcer.threshold)
            history = [{c.policy for c in store.choices(cycle.id) if _failing(c)} for cycle in cycles]
        except sqlite3.Error as exc:
            log.warning("notifications: cannot read the recent cycles from %s: %s", store.path, exc)
            history = []
        announcer.streaks.seed(streaks_from(history))
    return _latest_pr_events(store)


def _announce(
    announcer: CycleAnnouncer,
    summary: RunSummary,
    store: StateStore | None,
    before: Mapping[int, PREventRecord] | None,
    prefix: str,
) -> None:
    """Hand the cycle's records to the notifications; the events go out on their own thread."""
    scan = summary.plan.scan
    versions = {
        g.group: dict(g.pull_request.marker.versions)
        for g in summary.groups
        if g.pull_request is not None and g.pull_request.marker is not None
    }
    after = _latest_pr_events(store) if store is not None and before is not None else None
    forge = summary.forge
    records = CycleRecords(
        summary.revision,
        summary.groups,
        {r.policy.name: str(r.error) for r in scan if r.error is not None},
        {r.policy.name for r in scan},
        versions,
        (before, after) if before is not None and after is not None else None,
        (lambda: forge.list_pull_requests(prefix)) if forge is not None else None,
    )
    announcer.announce(records, forge)


def _record_held_back(store: StateStore, plan: Plan) -> None:
    """What the gates held back this cycle, for ``automator status``; never fails the cycle."""
    held = {r.policy.name: r.choice.held for r in plan.scan if r.choice is not None and r.choice.held is not None}
    try:
        store.record_held_back(held)
    except (sqlite3.Error, OSError) as exc:
        log.error("state: could not record what the gates held back in %s: %s", store.path, exc)


def _plan(root: Path, policies: PolicySet, options: RunOptions, memo: RegistryMemo, marker_less: Sequence[str]) -> Plan:
    client, failed = open_registry(policies.policies, options.access)

    async def scan() -> Plan:
        async with client:
            return await make_plan(
                root,
                policies,
                memo.wrap(client),
                failed=failed,
                progress=options.progress,
                marker_less_paths=marker_less,
                memory=gate_memory(options.state, options.clusters, options.prober)
                if options.state is not None
                else None,
            )

    return asyncio.run(scan())


@dataclass
class _AutomationJob:
    """One Flux ImageUpdateAutomation's share of a cycle: its branch, its files, its policies."""

    config: Automation
    share: Share
    repo: Repository
    forge: Forge
    options: RunOptions
    memo: RegistryMemo
    clock: AutomationClock

    @property
    def auto(self) -> UpdateAutomation:
        assert self.share.automation is not None
        return self.share.automation

    def result(self, outcome: Outcome, reason: str, **kw: Any) -> GroupResult:
        return GroupResult(self.auto.name, outcome, reason, **kw)

    def run(self) -> tuple[Plan | None, list[GroupResult]]:
        auto, spec = self.auto, self.config.spec
        if auto.suspend:
            return None, [self.result("skipped", "spec.suspend is true")]
        if auto.git_url is not None and not same_repository(auto.git_url, spec.git.url or ""):
            ns, name = auto.source_ref
            why = f"its GitRepository {ns}/{name} is {redact_url(auto.git_url)}, not the repository automator updates"
            return None, [self.result("skipped", why)]
        base = auto.branch(spec.git.branch)
        tip = self.repo.tip(base)
        if tip is None:
            return None, [
                self.result("failed", f"its checkout branch {base!r} does not exist at {self.repo.shown_url}")
            ]
        try:
            job = job_config(self.config, auto, base)
        except (ConfigError, ValueError) as exc:
            return None, [self.result("failed", f"{auto.source.path}:{auto.source.line}: {exc}")]
        with self.repo.worktree(tip) as tree:
            root = directory_in(tree.path, auto.path)
            if root is None:
                where = f"{auto.source.path}:{auto.source.line}"
                why = f"spec.update.path {auto.path!r} is not a directory on {base!r} ({where})"
                return None, [self.result("failed", why)]
            plan = _plan(root, self.share.policies, self.options, self.memo, ())
        choices = {d.name: str(d.image) for d in plan.decisions}
        wait = self.clock.not_due(auto, choices)
        if wait is not None:
            return plan, [self.result("skipped", wait)]
        results = self._commit(job, base, tip, plan)
        if not any(r.outcome == "failed" for r in results):
            self.clock.ran(auto, choices)
        return plan, results

    def _commit(self, job: Automation, base: str, tip: str, plan: Plan) -> list[GroupResult]:
        auto, repo = self.auto, self.repo
        by_policy = plan.update.by_policy()
        changed = [d.name for d in plan.decisions if d.name in by_policy]
        saved = (repo.base, repo.branch_prefix, repo.push_options)
        with tempfile.TemporaryDirectory(prefix="automator-signing-") as scratch:
            try:
                signing = signing_from_secret(auto, self.options.access.credentials_dir, Path(scratch))
                settled = dataclasses.replace(Settled.of(job), automation=auto, signing=signing)
                repo.base = base
                repo.branch_prefix = job.spec.pull_request.branch_prefix
                repo.push_options = tuple(k if v == "" else f"{k}={v}" for k, v in auto.push_options)
                cycle = _Cycle(job, repo, self.forge, plan, plan.decisions, settled, tip, self.options.state)
                if job.spec.mode == "direct" or not (auto.push_branch and auto.push_branch != base):
                    if job.spec.mode != "direct":
                        log.info(
                            "ImageUpdateAutomation %s: no push branch apart from %s, so it pushes there as Flux "
                            "does (pull requests need spec.git.push.branch)",
                            auto.name,
                            base,
                        )
                    return [cycle.direct(changed)]
                return cycle.pull_requests(changed)
            except AutomatorError as exc:
                log.error("ImageUpdateAutomation %s: %s", auto.name, exc)
                return [self.result("failed", str(exc))]
            finally:
                repo.base, repo.branch_prefix, repo.push_options = saved


def same_repository(a: str, b: str) -> bool:
    """Whether two git URLs name one repository (scheme, user, ``.git`` and case of the host aside)."""

    def key(url: str) -> str:
        url = url.strip().rstrip("/").removesuffix(".git")
        if "://" in url:
            parts = urlsplit(url)
            if parts.scheme == "file":
                return str(Path(parts.path).resolve())
            return f"{(parts.hostname or '').lower()}/{parts.path.strip('/')}"
        match = re.match(r"^(?:[^@/]+@)?([^:/]+):(.*)$", url)
        if match:  # scp-like: git@host:owner/repo
            return f"{match.group(1).lower()}/{match.group(2).strip('/')}"
        return str(Path(url).resolve())

    return key(a) == key(b)


@dataclass(frozen=True)
class Settled:
    """What the effective config (flags, environment, the repo's automator.yaml, defaults) comes
    to for one cycle, worked out once before anything is committed or proposed."""

    base: str
    prefix: str
    author: Identity
    signing: Signing | None
    pr_options: PROptions
    automation: UpdateAutomation | None = None  # a Flux ImageUpdateAutomation's job: its message, branch, refspec

    @classmethod
    def of(cls, config: Automation) -> Settled:
        spec = config.spec
        author = Identity(spec.commit.author.name, spec.commit.author.email)
        return cls(spec.git.branch, spec.pull_request.branch_prefix, author, _signing(config), _options(config))


@dataclass(frozen=True)
class _Proposal:
    """One group ready for the cycle's single push: its decision, PR text and branch change."""

    decision: PRDecision
    group: Group
    title: str
    body: str
    change: BranchChange


@dataclass
class _Cycle:
    """What one cycle knows after planning; its methods turn the plan into commits and PRs."""

    config: Automation
    repo: Repository
    forge: Forge
    plan: Plan
    decisions: Decisions
    settled: Settled
    tip: str = ""  # the commit the plan was made on
    state: StateStore | None = None  # the state database, for the limits that count over time
    shards: ShardSelection | None = None  # --shards: what this replica holds as the cycle started
    started: datetime | None = None  # when the cycle started (by the state's clock)

    @property
    def prefix(self) -> str:
        return self.settled.prefix

    @property
    def base(self) -> str:
        return self.settled.base

    def _apply(self, names: Sequence[str]) -> Callable[[Path], bool]:
        """The rewrite of ``names`` on a fresh checkout, limited to the files the plan changed.

        The checkout may be a newer tip than the one planned on (direct mode retries after a
        rejected push): a policy whose fields someone else changed meanwhile is left out, so a
        concurrent upgrade is never overwritten by our older choice; the next cycle re-plans it.
        """
        subset = self.decisions.subset(names)
        spec = self.config.spec
        files = {_repo_path(spec.git.path, c.file) for c in self.plan.update.changes if c.policy in names}
        planned = self.current

        def apply(root: Path) -> bool:
            if self._at_tip(root):  # the tree planned on: nobody changed a field since
                return not rewrite(root, subset).empty
            # another tip (a retry after someone pushed): what the fields hold now, over the whole
            # tree as planned, must be what the plan saw, or the policy waits for the next cycle
            now = locate_tree(
                root,
                [d.policy for d in subset],
                others=subset.others,
                subpath=spec.git.path,
                marker_less_paths=spec.marker_less_paths,
            ).current
            keep = [d for d in subset if now.get(d.name) == planned.get(d.name)]
            for d in subset:
                if d not in keep:
                    log.warning(
                        "policy %s: its fields changed on %s since planning; left for the next cycle", d.name, self.base
                    )
            return bool(keep) and not rewrite(root, self.decisions.subset(d.name for d in keep)).empty

        def rewrite(root: Path, decisions: Decisions) -> UpdateResult:
            return update_tree(
                root, decisions, write=True, subpath=spec.git.path, only=files, marker_less_paths=spec.marker_less_paths
            )

        return apply

    def _at_tip(self, root: Path) -> bool:
        if not self.tip:
            return False
        head = self.repo.git.run(["rev-parse", "HEAD"], cwd=root, check=False).stdout.strip()
        return head == self.tip

    @property
    def author(self) -> Identity:
        return self.settled.author

    @property
    def current(self) -> Mapping[str, tuple[str, ...]]:
        """Per policy, the tags its fields held on the planned tip (located once per cycle)."""
        return self.plan.current

    def _context(self, group: Group) -> TemplateContext:
        return template_context(self.plan, self.decisions, group, self.prefix, self.base)

    def _message(self, group: Group, variables: Mapping[str, Any]) -> str:
        auto = self.settled.automation
        if auto is not None:
            return flux_message(auto, self.plan.update, group.policies)
        return render(self.config.spec.commit.message_template, variables, what="commit message")

    @property
    def _name(self) -> str:
        """The group name of direct mode's one change: ``all``, or the automation's name."""
        auto = self.settled.automation
        return auto.name if auto is not None else "all"

    def _refspec(self, sha: str) -> None:
        """An automation's ``spec.git.push.refspec``: the same commit, pushed there too (as Flux does)."""
        auto = self.settled.automation
        if auto is None or auto.refspec is None:
            return
        force = auto.refspec.startswith("+")
        self.repo.push_ref(sha, auto.refspec.lstrip("+").split(":", 1)[1], force=force)

    def direct(self, changed: list[str]) -> GroupResult:
        name = self._name
        if not changed:
            return GroupResult(name, "unchanged", self.plan.why_unchanged)
        group = Group(name, tuple(changed))
        auto = self.settled.automation
        push = auto.push_branch if auto is not None and auto.push_branch not in (None, self.base) else None
        try:
            message = self._message(group, self._context(group).variables())
            if push is not None:
                # Flux: the push branch is the checkout branch plus the change, overwritten each time
                update = self.repo.commit_branch(
                    push,
                    self._apply(changed),
                    message,
                    author=self.author,
                    signing=self.settled.signing,
                    verbatim=True,
                )
                if update.status == "no-change" or update.sha is None:
                    return GroupResult(name, "unchanged", "the rewrite changes nothing on the checkout branch")
                if update.status == "pushed":
                    self._refspec(update.sha)
                else:
                    return GroupResult(name, "unchanged", f"{push} already holds these changes", push, update.sha)
                return GroupResult(name, "committed", f"pushed to {push}", push, update.sha, None, group.policies)
            result = self.repo.commit_direct(
                self._apply(changed),
                message,
                author=self.author,
                signing=self.settled.signing,
                verbatim=auto is not None,
            )
            if result.sha is not None:
                self._refspec(result.sha)
        except AutomatorError as exc:
            return GroupResult(name, "failed", str(exc), policies=group.policies)
        if result.sha is None:
            return GroupResult(name, "unchanged", "the base branch already has these changes")
        return GroupResult(name, "committed", f"pushed to {self.base}", self.base, result.sha, None, group.policies)

    def pull_requests(self, changed: list[str]) -> list[GroupResult]:
        pr_spec = self.config.spec.pull_request
        desired, contexts = [], {}
        auto = self.settled.automation
        groups = (
            [Group(auto.name, tuple(changed))] if auto is not None and changed else group_policies(changed, pr_spec)
        )
        for group in groups:
            context = self._context(group)
            if auto is not None and auto.push_branch:
                branch = auto.push_branch  # Flux's push branch is the pull request's head
            else:
                branch = render(pr_spec.branch_template, context.variables(), what="branch name")
            if not branch.startswith(self.prefix):
                raise ConfigError(f"branch {branch!r} from branchTemplate must start with branchPrefix {self.prefix!r}")
            desired.append(DesiredPR(group.name, branch, self._versions(group)))
            contexts[group.name] = (group, context)
        branches: dict[str, str] = {}
        for want in desired:
            if want.branch in branches:
                raise ConfigError(
                    f"branchTemplate gives groups {branches[want.branch]!r} and {want.group!r} the same branch "
                    f"{want.branch!r}; include {{{{ group | slug }}}} in it or group the policies together"
                )
            branches[want.branch] = want.group
        existing = self.forge.list_pull_requests(self.prefix)
        results = []
        desired, moved_back = self._moved_back(desired, existing)
        results += moved_back
        decisions = plan_pull_requests(desired, existing, self._settled(existing, contexts, changed))
        limited = self._over_limits(decisions, existing)
        acting = []
        for decision in decisions:
            if decision.group in limited and decision.action == "open":
                policies = contexts[decision.group][0].policies if decision.group in contexts else ()
                skip = GroupResult(decision.group, "skipped", limited[decision.group], decision.branch)
                results.append(dataclasses.replace(skip, policies=policies))
            else:
                acting.append(decision)
        results += self._act_all(acting, contexts)
        return results + self._purposeless(existing, desired, results)

    def _act_all(
        self, decisions: Sequence[PRDecision], contexts: Mapping[str, tuple[Group, TemplateContext]]
    ) -> list[GroupResult]:
        """Every decision's result, in order: the groups that need a commit go through
        :meth:`_commit_all` together (one fast-import, one push), the rest one by one."""
        batch = [d for d in decisions if d.action in ("open", "update") and d.group in contexts]
        done = self._commit_all(batch, contexts) if self._batchable() and batch else {}
        out = []
        for decision in decisions:
            if decision.group in done:
                out.append(done[decision.group])
                continue
            try:
                out.append(self._act(decision, contexts))
            except AutomatorError as exc:
                log.error("group %s: %s", decision.group, exc)
                out.append(GroupResult(decision.group, "failed", str(exc), decision.branch))
        return out

    def _batchable(self) -> bool:
        """Whether this cycle's groups can be committed without worktrees, all in one push.

        Not for an ImageUpdateAutomation (one group, Flux's verbatim message and its refspec
        pushed after the branch: the per-group path keeps that order), nor without the planned
        tip to build on."""
        return self.settled.automation is None and bool(self.tip)

    def _commit_all(
        self, decisions: Sequence[PRDecision], contexts: Mapping[str, tuple[Group, TemplateContext]]
    ) -> dict[str, GroupResult]:
        """Build every group's commit on the planned tip from the blobs (no worktree), push them
        all at once, then make the forge calls for the groups whose branch landed.

        Groups left out of the result go the per-group way: all of them when the tree has a
        ``.gitattributes`` (a checkout may not hold the blobs' bytes, so only a worktree
        rewrite is exact) or when the batch itself fails (fast-import, the push as a whole).
        """
        by_policy = self.plan.update.by_policy()
        files = {d.group: self._files(contexts[d.group][0].policies, by_policy) for d in decisions}
        try:
            read = self.repo.read_files(self.tip, set().union(*files.values()))
        except AutomatorError as exc:
            log.warning("cannot read the files to rewrite in one go (%s); committing group by group", exc)
            return {}
        if read.attributes:
            log.info("the config repo has a .gitattributes: committing group by group in worktrees")
            return {}
        updates = [d.branch for d in decisions if d.action == "update"]
        foreign = self.repo.authors_since(updates, self.base) if updates else {}
        out: dict[str, GroupResult] = {}
        proposals: list[_Proposal] = []
        for decision in decisions:
            group, context = contexts[decision.group]
            ready = self._proposal(decision, group, context, files=files[group.name], read=read, foreign=foreign)
            if isinstance(ready, GroupResult):
                out[group.name] = ready
            else:
                proposals.append(ready)
        try:
            landed = self.repo.commit_branches(
                self.tip, [p.change for p in proposals], author=self.author, signing=self.settled.signing
            )
        except AutomatorError as exc:
            log.warning("cannot commit the groups in one go (%s); committing group by group", exc)
            return out
        for p in proposals:
            try:
                out[p.group.name] = self._propose(p.decision, p.group, p.title, p.body, landed[p.change.branch])
            except AutomatorError as exc:
                log.error("group %s: %s", p.group.name, exc)
                out[p.group.name] = GroupResult(p.group.name, "failed", str(exc), p.decision.branch)
        return out

    def _proposal(
        self,
        decision: PRDecision,
        group: Group,
        context: TemplateContext,
        *,
        files: Collection[str],
        read: TreeFiles,
        foreign: Mapping[str, set[str]],
    ) -> _Proposal | GroupResult:
        """Everything ``group`` needs before the push: its rewritten files, message, title and
        body (a template error fails the group here, leaving no orphan branch); or why not."""
        others = foreign.get(decision.branch, set()) - {self.author.email}
        if decision.action == "update" and others:
            # someone pushed to our branch (a fix-up, a rebase): theirs wins, as Renovate does
            reason = f"the branch has commits by {', '.join(sorted(others))}; not overwriting them"
            return GroupResult(group.name, "skipped", reason, decision.branch, None, decision.pr, group.policies)
        try:
            variables = context.variables()
            message = self._message(group, variables)
            title = render(self.config.spec.pull_request.title_template, variables, what="pull request title")
            body = _body(self.config, context, PRState(group.name, self._versions(group)))
            change = BranchChange(decision.branch, self._rewrite_files(group.policies, files, read), message)
        except AutomatorError as exc:
            log.error("group %s: %s", group.name, exc)
            return GroupResult(group.name, "failed", str(exc), decision.branch)
        return _Proposal(decision, group, title.strip(), body, change)

    def _files(self, names: Sequence[str], by_policy: Mapping[str, Sequence[Change]]) -> frozenset[str]:
        """The files (repository-relative) the plan changed for the policies ``names``."""
        subpath = self.config.spec.git.path
        return frozenset(_repo_path(subpath, c.file) for name in names for c in by_policy.get(name, ()))

    def _rewrite_files(self, names: Sequence[str], files: Collection[str], read: TreeFiles) -> tuple[TreeFile, ...]:
        """The rewrite of ``names`` on the planned tip's blobs: what :meth:`_apply` writes into a
        worktree of that tip, byte for byte (the same pure rewrite of each file's text)."""
        subset = self.decisions.subset(names)
        out = []
        for path in sorted(files):
            blob = read.files.get(path)
            if blob is None:
                continue  # not a regular file on the tip: a worktree rewrite would not touch it either
            data = rewrite_file(blob.data, path, subset, marker_less_paths=self.config.spec.marker_less_paths)
            if data is not None:
                out.append(TreeFile(path, blob.mode, data))
        return tuple(out)

    def _propose(
        self, decision: PRDecision, group: Group, title: str, body: str, update: BranchUpdate | AutomatorError
    ) -> GroupResult:
        """Open or update ``group``'s pull request once its branch holds the commit."""
        if isinstance(update, AutomatorError):
            raise update
        if update.status == "no-change":
            return GroupResult(group.name, "unchanged", "the rewrite changes nothing on the base tip", decision.branch)
        if update.status == "unchanged" and isinstance(self.forge, NoneForge):
            # forge: none keeps no state between processes; the branch itself says it is proposed
            reason = "the branch already proposes this (forge: none)"
            return GroupResult(group.name, "unchanged", reason, decision.branch, update.sha, None, group.policies)
        if decision.action == "open":
            pr = self.forge.open_pull_request(decision.branch, self.base, title, body, self.settled.pr_options)
            outcome: Outcome = "opened"
        else:
            assert decision.pr is not None
            pr = self.forge.update_pull_request(decision.pr, title, body)
            outcome = "updated"
        return GroupResult(group.name, outcome, decision.reason, decision.branch, update.sha, pr, group.policies)

    def _over_limits(self, decisions: Sequence[PRDecision], existing: Sequence[PullRequest]) -> dict[str, str]:
        """Groups that would open a pull request past ``spec.pullRequest.maxOpen`` (our PRs open
        at once, counting this cycle's closes) or ``maxOpenedPerHour`` (opened in the last hour,
        from the state database), and why. Groups go in name order, so the same ones go first
        each cycle; updates of open PRs are never limited."""
        spec = self.config.spec.pull_request
        opens = sorted(d.group for d in decisions if d.action == "open")
        if not opens or (spec.max_open is None and spec.max_opened_per_hour is None):
            return {}
        room: list[tuple[int, str]] = []
        if spec.max_open is not None:
            closing = sum(d.action == "close" for d in decisions)
            now_open = max(0, sum(pr.state == "open" for pr in existing) - closing)
            at = max(now_open, spec.max_open)  # what is open once the groups before it have opened
            why = (
                f"spec.pullRequest.maxOpen is {spec.max_open}: {at} open pull request{'s' * (at != 1)} of ours; "
                "opens when one is merged or closed"
            )
            room.append((spec.max_open - now_open, why))
        if spec.max_opened_per_hour is not None:
            if self.state is not None:
                opened = self.state.opened_since(self.state.now() - timedelta(hours=1))
            else:  # no state: what the forge says it opened for us in the last hour
                since = datetime.now(UTC) - timedelta(hours=1)
                opened = sum(pr.created_at is not None and pr.created_at >= since for pr in existing)
                if any(pr.created_at is None for pr in existing):
                    log.warning(
                        "spec.pullRequest.maxOpenedPerHour: the forge gives no creation time for some pull "
                        "requests, so they do not count; --state-dir counts them all"
                    )
            at = max(opened, spec.max_opened_per_hour)
            why = (
                f"spec.pullRequest.maxOpenedPerHour is {spec.max_opened_per_hour}: {at} opened in the last hour; "
                "opens in a later cycle"
            )
            room.append((spec.max_opened_per_hour - opened, why))
        out = {}
        for i, name in enumerate(opens):
            over = next((w for free, w in room if i >= free), None)
            if over is not None:
                out[name] = over
        if out:
            log.info("pull-request limits: %d group(s) wait: %s", len(out), ", ".join(sorted(out)))
        return out

    def _moved_back(
        self, desired: Sequence[DesiredPR], existing: Sequence[PullRequest]
    ) -> tuple[list[DesiredPR], list[GroupResult]]:
        """Groups whose exact versions a merged PR of ours proposed, which the base branch no
        longer holds: someone moved them back (a revert before any cycle saw the merge, or no
        state to remember it by). They are not proposed again; a newer version is."""
        merged = [pr for pr in existing if pr.state == "merged" and pr.marker is not None]
        keep, skipped = [], []
        for want in desired:
            pr = next(
                (p for p in merged if p.marker is not None and dict(p.marker.versions) == dict(want.versions)), None
            )
            if pr is None:
                keep.append(want)
                continue
            reason = (
                f"#{pr.number} merged these versions and the base branch moved back since; not proposing them again"
            )
            log.info("group %s: %s", want.group, reason)
            skipped.append(GroupResult(want.group, "skipped", reason, want.branch, None, pr, tuple(want.versions)))
        return keep, skipped

    def _purposeless(
        self, existing: Sequence[PullRequest], desired: Sequence[DesiredPR], results: Sequence[GroupResult]
    ) -> list[GroupResult]:
        """Delete our branches that nothing needs: no open pull request, no group wants them this
        cycle, and every commit on them is ours (a branch pushed just before a crash whose change
        was then no longer needed). Only when the cycle knows everything it would need to: a real
        forge (``forge: none`` remembers no pull requests across processes), no scan failure and
        no file left out."""
        if isinstance(self.forge, NoneForge) or self.plan.failed or self.plan.update.warnings:
            return []
        if self.settled.automation is not None:
            return []  # an automation's push branch is the user's to keep, as with Flux
        if self.shards is not None and 0 not in self.shards.held:
            return []  # with --shards, shard 0's holder alone deletes stray branches
        keep = {d.branch for d in desired} | {r.branch for r in results if r.branch}
        keep |= {pr.branch for pr in existing if pr.state == "open"}
        out = []
        for branch in sorted(set(self.repo.branches()) - keep):
            if self._foreign_authors(branch):
                continue  # someone's work: theirs to delete
            if self.shards is not None and not self._stray(branch):
                continue  # perhaps another shard's, pushed a moment ago, its pull request on the way
            try:
                self.repo.delete_branch(branch)
            except AutomatorError as exc:
                log.warning("cannot delete the branch %s, which nothing needs: %s", branch, exc)
                continue
            out.append(GroupResult("-", "deleted", "no pull request and no change needs it any more", branch))
        return out

    def _stray(self, branch: str) -> bool:
        """With shards, a branch no pull request has is deleted only once it is older than
        ``STRAY_AGE`` when the cycle started: another shard pushes its branch a moment before it
        opens the pull request, and this cycle listed the pull requests before."""
        at = self.repo.committed_at(branch)
        start = (self.started or datetime.now(UTC)).timestamp()
        return at is not None and at < start - STRAY_AGE

    def _settled(self, existing: Sequence[PullRequest], contexts: Mapping[str, object], changed: list[str]) -> set[str]:
        """Groups with an open PR whose changes are already on the base branch.

        Closing a PR is only safe when we know: every policy it proposes was scanned and chose a
        tag this run, and the rewrite read every file cleanly (a file skipped as unparsable or too
        big may hold the very field). A registry outage or a broken file never closes a PR.
        """
        if self.plan.update.warnings:
            return set()
        chose = {r.policy.name for r in self.plan.scan if r.ok and r.choice is not None and r.choice.tag is not None}
        return {
            pr.marker.group
            for pr in existing
            if pr.state == "open"
            and pr.marker is not None
            and pr.marker.group not in contexts
            and all(p in chose and p not in changed for p in pr.marker.versions)
        }

    def _foreign_authors(self, branch: str) -> set[str]:
        """Emails of commits on our ``branch`` (since it left the base) that we did not make."""
        if self.repo.tip(branch) is None:
            return set()
        return self.repo.authors(branch, since=self.base) - {self.author.email}

    def _versions(self, group: Group) -> dict[str, str]:
        return {n: str(self.decisions[n].image) for n in group.policies}

    def _act(self, decision: PRDecision, contexts: Mapping[str, tuple[Group, TemplateContext]]) -> GroupResult:
        action = decision.action
        if action == "close":
            assert decision.pr is not None
            self.forge.close_pull_request(decision.pr, f"Closed by automator: {decision.reason}.")
            if decision.pr.branch.startswith(self.prefix):
                self.repo.delete_branch(decision.pr.branch)
            return GroupResult(decision.group, "closed", decision.reason, decision.pr.branch, None, decision.pr)
        if action in ("skip", "noop") or decision.group not in contexts:
            outcome: Outcome = "skipped" if action == "skip" else "unchanged"
            return GroupResult(decision.group, outcome, decision.reason, decision.branch, None, decision.pr)
        group, context = contexts[decision.group]
        spec = self.config.spec
        if action == "update" and (others := self._foreign_authors(decision.branch)):
            # someone pushed to our branch (a fix-up, a rebase): theirs wins, as Renovate does
            reason = f"the branch has commits by {', '.join(sorted(others))}; not overwriting them"
            return GroupResult(group.name, "skipped", reason, decision.branch, None, decision.pr, group.policies)
        # everything rendered before anything is pushed: a template error leaves no orphan branch
        variables = context.variables()
        message = self._message(group, variables)
        title = render(spec.pull_request.title_template, variables, what="pull request title").strip()
        body = _body(self.config, context, PRState(group.name, self._versions(group)))
        update = self.repo.commit_branch(
            decision.branch,
            self._apply(group.policies),
            message,
            author=self.author,
            signing=self.settled.signing,
            verbatim=self.settled.automation is not None,
        )
        if update.status == "pushed" and update.sha is not None:
            self._refspec(update.sha)
        return self._propose(decision, group, title, body, update)
