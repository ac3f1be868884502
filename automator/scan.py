"""Scan: for every policy, list its repository's tags and choose the best one.

The one orchestrator between the registry edge and the pure choice functions.  A
repository shared by several policies is listed once; build times are fetched only
for the filtered candidates of ``newestBuild`` policies; digests only where a policy
tracks them.  A policy that fails never stops the others: its result carries the error.

**Gates that need memory** act here, on the choice: a tag younger than the policy's
``minAge`` (counted from when the state database first listed it, or from its build time)
and a tag held after a rollback (:mod:`automator.state.gates`) are not candidates. The
choice is made once over every tag; only when a gate holds the tag chosen is it made again
without the held tags, so the tag chosen is the best one no gate holds, and the one held back
(with when it is due) is the choice's ``held``. Build times for ``minAgeFrom: buildTime``
are fetched only for the tags chosen on the way (at most :data:`MAX_GATE_STEPS`). What the
state knows reaches the scan as a :class:`Memory`, plain data: the scan never reads the state.

**Signatures** (``spec.verify``) act last, on the choice past the gates: the chosen tag's digest is
verified (:class:`automator.verify.Verifier`; a digest that verified is kept for the process, any
other verdict asked again next scan, as CI may sign after it pushes); when it does not verify,
the choice is made again without it, best first, at most
``Verifier.max_candidates`` times, and each tag left out is the choice's ``skipped`` with the reason
(and in its ``reason``, which ``scan``, ``plan`` and the state's ``choices.reason`` show). Tags that
hold signatures (``*.sig``, ``*.att``, ``sha256-*``) are never candidates of such a policy. In
``warn`` mode the choice stands and the failure is logged and recorded in its reason. A check that
cannot run (the registry down, a key Secret missing) fails the policy's scan in ``enforce`` mode:
an older tag is never proposed because a signature could not be read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from automator.errors import AutomatorError, ChoiceError, PolicyFileError, SignatureError
from automator.policy import candidates, choose
from automator.policy.model import (
    SKIPPED,
    DigestMode,
    HeldTag,
    MinAgeFrom,
    NewestBuildChoice,
    Policy,
    PromotionQuery,
    SkippedTag,
    TagChoice,
    VerifyMode,
)
from automator.promotion.gate import ClusterEvidence, judge_step
from automator.promotion.prometheus import QueryVerdict
from automator.registry.base import ArtifactRegistry, Registry, TagListing

if TYPE_CHECKING:  # imported where a policy verifies: cryptography is not every scan's cost
    from automator.verify import Verifier

log = logging.getLogger("automator.verify")

Progress = Callable[["ScanResult"], None]
OFF_LOOP_TAGS = 5_000  # a listing longer than this is chosen from in a worker thread
MAX_GATE_STEPS = 20  # choices made again, at most, past tags a gate holds (each may fetch a build time)


@dataclass(frozen=True)
class Memory:
    """What the state database knows for one cycle, for the gates that need memory.

    ``first_seen``: per repository, when each tag was first listed (a tag missing from it is
    first seen now); None without a state database. ``held``: per policy, the tags held after a
    rollback on the base branch and why. ``now``: the cycle's clock (the store's)."""

    now: datetime
    first_seen: Callable[[str], Mapping[str, datetime]] | None = None
    held: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # per cluster (--cluster), what its synchronizer reported, for spec.promotion; None: not read
    clusters: Mapping[str, ClusterEvidence] | None = None
    prober: Prober | None = None  # asks a cluster's Prometheus a promotion query; None: none configured


# asks the Prometheus of a cluster whether a promotion query held over [start, end]
Prober = Callable[[str, PromotionQuery, datetime, datetime], Awaitable[QueryVerdict]]


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds:g}s"


class _Gates:
    """The gates of one policy in one cycle: which tags they hold, and why."""

    def __init__(self, registry: Registry, policy: Policy, memory: Memory | None) -> None:
        self.registry, self.policy = registry, policy
        self.now = memory.now if memory is not None else datetime.now(UTC)
        self.held = dict(memory.held.get(policy.name, {})) if memory is not None else {}
        self.clusters = memory.clusters if memory is not None else None
        self.prober = memory.prober if memory is not None else None
        self.proof: dict[str, str] = {}  # the tags the promotion gate let through, and its proof
        self.first_seen: Mapping[str, datetime] = {}
        if policy.min_age_seconds > 0 and policy.min_age_from is MinAgeFrom.FIRST_SEEN:
            if memory is None or memory.first_seen is None:
                raise PolicyFileError(
                    f"policy {policy.name}: {policy.min_age_field} counts from when a tag was first seen, which "
                    "only the state database knows: set --state-dir (or count from the image's build time: "
                    "minAgeFrom: buildTime)",
                    path=policy.source.path,
                    line=policy.source.line,
                    field=policy.min_age_field,
                )
            self.first_seen = memory.first_seen(policy.image.repository)

    @property
    def active(self) -> bool:
        return bool(self.held) or self.policy.min_age_seconds > 0 or self.policy.promotion is not None

    def known(self, tags: Iterable[str]) -> set[str]:
        """The tags held without asking the registry: rollback holds, tags first seen too recently,
        tags no earlier cluster of the promotion ever ran (as far as its reports kept go)."""
        tags = list(tags)
        out = {t for t in tags if t in self.held}
        if self.policy.min_age_seconds > 0 and self.policy.min_age_from is MinAgeFrom.FIRST_SEEN:
            cutoff = self.now - timedelta(seconds=self.policy.min_age_seconds)
            out |= {t for t in tags if self.first_seen.get(t, self.now) > cutoff}
        rule = self.policy.promotion
        if rule is not None and self.clusters is not None:
            for step in rule.after:
                found = self.clusters.get(step.cluster)
                repo = self.policy.image.repository
                ran = {r.tag for rep in (found.reports if found else ()) for r in rep.running if r.repository == repo}
                out |= {t for t in tags if t not in ran}
        return out

    def _better(self, a: str, b: str) -> bool:
        """Whether the policy ranks tag ``a`` above ``b``."""
        return choose(self.policy, [a, b], None, None).tag == a

    async def _promotion(self, tag: str) -> HeldTag | None:
        """The promotion gate (:mod:`automator.promotion.gate`) on ``tag``: held with why, or
        None with the proof kept in :attr:`proof`."""
        rule = self.policy.promotion
        assert rule is not None
        if self.clusters is None:
            why = f"waiting: {rule.field} reads the clusters' reports, which need --state-dir and --cluster NAME=..."
            return HeldTag(tag, "promotion", why)
        proofs = []
        for step in rule.after:
            evidence = self.clusters.get(step.cluster) or ClusterEvidence(
                step.cluster, (), f"automator does not read it (--cluster {step.cluster}=KUBECONFIG)"
            )
            verdict = judge_step(step, self.policy.image.repository, tag, evidence, self.now, better=self._better)
            if not verdict.ok:
                return HeldTag(tag, "promotion", verdict.reason, verdict.until)
            proof = verdict.reason
            if step.query is not None:
                if self.prober is None:
                    why = f"waiting for {step.cluster}: its query needs --prometheus {step.cluster}=URL"
                    return HeldTag(tag, "promotion", why)
                start, end = verdict.window or (self.now - timedelta(seconds=step.healthy_for_seconds), self.now)
                answer = await self.prober(step.cluster, step.query, start, end)
                if not answer.ok:
                    return HeldTag(tag, "promotion", f"waiting for {step.cluster}: {answer.reason}")
                proof += f"; `{step.query.expr}`: {answer.reason}"
            proofs.append(proof)
        self.proof[tag] = "; ".join(proofs)
        return None

    async def hold(self, tag: str) -> HeldTag | None:
        if tag in self.held:
            return HeldTag(tag, "rollback", self.held[tag])
        aged = await self._min_age(tag)
        if aged is not None or self.policy.promotion is None:
            return aged
        return await self._promotion(tag)

    async def _min_age(self, tag: str) -> HeldTag | None:
        policy = self.policy
        if policy.min_age_seconds <= 0:
            return None
        if policy.min_age_from is MinAgeFrom.FIRST_SEEN:
            since, what = self.first_seen.get(tag, self.now), "first seen"
        else:
            built = await self.registry.created(policy.image, tag, policy.platform)
            if built is None:
                why = f"{tag} is held: minAge {_age(policy.min_age_seconds)} counts from its build time, unknown"
                return HeldTag(tag, "minAge", why)
            since, what = (built if built.tzinfo else built.replace(tzinfo=UTC)), "built"
        due = policy.due(since)
        if due <= self.now:
            return None
        why = f"{tag} waits for minAge {_age(policy.min_age_seconds)}: {what} {_stamp(since)}, due {_stamp(due)}"
        return HeldTag(tag, "minAge", why, due)


def _pinned(policy: Policy, tags: Sequence[str]) -> TagChoice:
    """A pin set by hand is the choice, past every rule and gate, when the registry has it."""
    pin = policy.pin
    assert pin is not None
    listed = pin in tags
    reason = f"pinned to {pin} by {policy.pin_field}" + ("" if listed else ", which the registry does not list")
    return TagChoice(policy.name, policy.image, pin if listed else None, None, len(tags), int(listed), reason)


async def _gated(
    gates: _Gates,
    choice: TagChoice,
    tags: Sequence[str],
    current: str | None,
    created: Mapping[str, datetime] | None,
) -> TagChoice:
    """``choice``, or when a gate holds its tag, the best choice no gate holds, with the held tag."""
    first: HeldTag | None = None
    excluded: set[str] = set()
    for _ in range(MAX_GATE_STEPS):
        tag = choice.tag
        if tag is None or tag == current:  # what the fields hold already is never held back
            break
        hold = await gates.hold(tag)
        if hold is None:
            break
        if first is None:
            first = hold
            excluded |= gates.known(tags) - {current}
        excluded.add(tag)
        choice = choose(gates.policy, [t for t in tags if t not in excluded], current, created)
    else:
        why = f"the {MAX_GATE_STEPS} best tags are all held by gates"
        choice = replace(choice, tag=None, reason=why)
    if choice.tag is not None and choice.tag in gates.proof:
        choice = replace(choice, promoted=gates.proof[choice.tag])
    if first is None:
        return choice
    reason = f"{choice.reason}; {first.reason}" if choice.reason else first.reason
    return replace(choice, held=first, seen=len(tags), reason=reason)


Rechoose = Callable[[set[str]], Awaitable[TagChoice]]


def _skipped_text(skipped: Sequence[SkippedTag]) -> str:
    return "; ".join(f"{SKIPPED}{s.tag}: {s.reason}" for s in skipped)


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


async def _verified(
    verifier: Verifier,
    registry: Registry,
    policy: Policy,
    choice: TagChoice,
    *,
    current: str | None,
    rechoose: Rechoose,
) -> TagChoice:
    """``choice`` if its signature verifies, else the best choice whose signature does (see the
    module docstring); the tag the fields hold already is not verified again (it is not proposed)."""
    rule = policy.verify
    assert rule is not None
    if not isinstance(registry, ArtifactRegistry):
        raise SignatureError(f"policy {policy.name}: {rule.field}: this registry client cannot read signatures")
    skipped: list[SkippedTag] = []
    excluded: set[str] = set()
    for _ in range(max(verifier.max_candidates, 1)):
        tag = choice.tag
        if tag is None or tag == current:
            break
        digest = (await registry.manifest(policy.image, tag)).digest
        verdict = await verifier.verify(registry, policy, digest)
        pinned = digest if policy.tracks_digest else choice.digest
        if verdict.ok:
            return replace(
                choice,
                digest=pinned,
                verified=verdict.reason,
                skipped=tuple(skipped),
                reason=_joined(choice.reason, _skipped_text(skipped)),
            )
        if rule.mode is VerifyMode.WARN:
            log.warning(
                "policy %s: %s@%s: signature not verified (mode warn): %s", policy.name, tag, digest, verdict.reason
            )
            why = f"{tag}: signature not verified, chosen anyway ({rule.field}.mode warn): {verdict.reason}"
            return replace(choice, digest=pinned, reason=_joined(choice.reason, why))
        if verdict.error is not None:
            raise verdict.error
        skipped.append(SkippedTag(tag, digest, verdict.reason))
        excluded.add(tag)
        if policy.pin is not None:
            choice = replace(choice, tag=None)
            break
        choice = await rechoose(excluded)
    else:
        if choice.tag is not None and choice.tag != current:
            choice = replace(
                choice,
                tag=None,
                digest=None,
                reason=f"the {len(skipped)} best candidates have no signature that verifies",
            )
    return replace(choice, skipped=tuple(skipped), reason=_joined(choice.reason, _skipped_text(skipped)))


@dataclass(frozen=True)
class ScanResult:
    """What scanning one policy found: a choice, or the error that prevented one."""

    policy: Policy
    choice: TagChoice | None = None
    error: AutomatorError | None = None
    current: str | None = None  # the tag the policy's fields hold now, chosen against; None: none found

    @property
    def ok(self) -> bool:
        return self.error is None


class ListingCache:
    """Lists each repository once per scan, however many policies share it.

    The first policy lists in its own task; later ones for the same repository wait on a
    future the first fills (no extra task per policy: a scan of 1,000 repositories is CPU
    bound in the client, and tasks are not free).
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._listed: dict[str, asyncio.Future[TagListing]] = {}

    async def get(self, policy: Policy) -> TagListing:
        key = policy.image.repository
        pending = self._listed.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        done: asyncio.Future[TagListing] = asyncio.get_running_loop().create_future()
        self._listed[key] = done
        try:
            listing = await self._registry.list_tags(policy.image)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                done.cancel()
            else:
                done.set_exception(exc)
                done.exception()  # retrieved: waiters re-raise it; nobody waiting is not an error
            raise
        done.set_result(listing)
        return listing


async def _build_times(registry: Registry, policy: Policy, tags: Iterable[str]) -> dict[str, datetime]:
    async def one(tag: str) -> tuple[str, datetime | None]:
        return tag, await registry.created(policy.image, tag, policy.platform)

    pairs = await asyncio.gather(*(one(tag) for tag in tags))
    return {tag: when for tag, when in pairs if when is not None}


async def scan_policy(
    registry: Registry,
    policy: Policy,
    current: str | None = None,
    *,
    listings: ListingCache | None = None,
    pinned: str | None = None,
    memory: Memory | None = None,
    verifier: Verifier | None = None,
) -> ScanResult:
    """List, filter and choose for one policy (past the gates and signatures); resolve the digest
    when the policy tracks it."""
    try:
        listing = await (listings or ListingCache(registry)).get(policy)
        tags: Sequence[str] = listing.tags
        if policy.verify is not None:  # a signature is never an image to propose, whatever the exclusions
            from automator.verify import is_signature_tag  # noqa: PLC0415 - see TYPE_CHECKING above

            tags = [t for t in tags if not is_signature_tag(t)]
        created: Mapping[str, datetime] | None = None
        if isinstance(policy.choice, NewestBuildChoice) and policy.pin is None:
            created = await _build_times(registry, policy, candidates(policy, tags))
        if policy.pin is not None:
            choice = _pinned(policy, tags)
        elif len(tags) > OFF_LOOP_TAGS:  # milliseconds of CPU: not on the loop other scans share
            choice = await asyncio.to_thread(choose, policy, tags, current, created)
        else:
            choice = choose(policy, tags, current, created)
        gates = _Gates(registry, policy, memory) if policy.pin is None else None
        if gates is not None and gates.active:
            choice = await _gated(gates, choice, tags, current, created)
        if policy.verify is not None:
            from automator.verify import default_verifier  # noqa: PLC0415 - see TYPE_CHECKING above

            async def again(excluded: set[str]) -> TagChoice:
                left = [t for t in tags if t not in excluded]
                chosen = choose(policy, left, current, created)
                if gates is not None and gates.active:
                    chosen = await _gated(gates, chosen, left, current, created)
                return chosen

            choice = await _verified(
                verifier or default_verifier(), registry, policy, choice, current=current, rechoose=again
            )
            choice = replace(choice, seen=len(listing.tags))
        tag = choice.tag
        if tag is not None and policy.tracks_digest and choice.digest is None:
            if pinned is not None and tag == current and policy.digest is DigestMode.IF_NOT_PRESENT:
                choice = replace(choice, digest=pinned)  # resolved when the tag was chosen; kept (as Flux)
            else:
                info = await registry.manifest(policy.image, tag)
                choice = replace(choice, digest=info.digest)
        return ScanResult(policy, choice, current=current)
    except AutomatorError as exc:
        return ScanResult(policy, error=exc, current=current)
    except ValueError as exc:  # a choice function refusing its data is a bug report, not a crash
        return ScanResult(policy, error=ChoiceError(f"policy {policy.name}: {exc}"), current=current)


async def scan_all(
    registry: Registry,
    policies: Iterable[Policy],
    *,
    current: Mapping[str, str] | None = None,
    digests: Mapping[str, str] | None = None,
    failed: Mapping[str, AutomatorError] | None = None,
    progress: Progress | None = None,
    listings: ListingCache | None = None,
    memory: Memory | None = None,
    verifier: Verifier | None = None,
) -> tuple[ScanResult, ...]:
    """Scan every non-suspended policy concurrently; results keep the input order.

    Concurrency and rate limits are the registry client's business (per host), so
    this schedules everything at once and lets the client pace the requests.
    """
    listings = listings or ListingCache(registry)
    current = current or {}

    failed = failed or {}

    async def one(policy: Policy) -> ScanResult:
        if policy.name in failed:
            result = ScanResult(policy, error=failed[policy.name], current=current.get(policy.name))
        else:
            pinned = (digests or {}).get(policy.name)
            result = await scan_policy(
                registry,
                policy,
                current.get(policy.name),
                listings=listings,
                pinned=pinned,
                memory=memory,
                verifier=verifier,
            )
        if progress is not None:
            progress(result)
        return result

    active = [p for p in policies if not p.suspend]
    return tuple(await asyncio.gather(*(one(p) for p in active)))
