"""Tag choice: pure functions from a policy and a tag list to a :class:`TagChoice`.

One module per kind (:mod:`.semver`, :mod:`.numerical`, :mod:`.alphabetical`,
:mod:`.newest`, :mod:`.digest`) behind one interface, :data:`~.base.Chooser`:
``(policy, candidates, current, created) -> Pick``.  :func:`choose` applies the
exclusions and ``filterTags`` once, dispatches on the policy's choice type and wraps
the answer; it never does I/O and never fills the digest (the scanner does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from automator.errors import ChoiceError
from automator.policy.choose.alphabetical import choose_alphabetical
from automator.policy.choose.base import Candidate, Chooser, Pick, policy_matcher
from automator.policy.choose.digest import choose_digest
from automator.policy.choose.newest import choose_newest
from automator.policy.choose.numerical import choose_numerical
from automator.policy.choose.semver import choose_semver
from automator.policy.model import (
    AlphabeticalChoice,
    DigestChoice,
    NewestBuildChoice,
    NumericalChoice,
    Policy,
    SemverChoice,
    TagChoice,
)

__all__ = ["Candidate", "Chooser", "Pick", "candidate_pairs", "candidates", "choose"]

CHOOSERS: dict[type, Chooser] = {
    SemverChoice: choose_semver,
    NumericalChoice: choose_numerical,
    AlphabeticalChoice: choose_alphabetical,
    NewestBuildChoice: choose_newest,
    DigestChoice: choose_digest,
}


def candidate_pairs(policy: Policy, tags: Sequence[str]) -> list[Candidate]:
    """``(tag, compared value)`` for every tag left after exclusions and ``filterTags``."""
    if isinstance(policy.choice, DigestChoice):
        return [(t, t) for t in tags if t == policy.choice.tag][:1]
    return policy_matcher(policy).pairs(tags)


def candidates(policy: Policy, tags: Sequence[str]) -> list[str]:
    """The tags a policy would consider, in input order (newestBuild fetches times for these)."""
    return [tag for tag, _ in candidate_pairs(policy, tags)]


def choose(
    policy: Policy,
    tags: Sequence[str],
    current: str | None = None,
    created: Mapping[str, datetime] | None = None,
) -> TagChoice:
    """Choose the best tag of ``tags`` for ``policy``; ``current`` guards against downgrades.

    ``created`` maps tags to image build times (needed by newestBuild only).  The
    result's ``digest`` is None: resolving it is I/O, left to the scanner.
    """
    chooser = CHOOSERS.get(type(policy.choice))
    if chooser is None:
        raise ChoiceError(f"policy {policy.name}: unknown choice kind {type(policy.choice).__name__}")
    pairs = candidate_pairs(policy, tags)
    pick = chooser(policy, pairs, current, created)
    return TagChoice(
        policy=policy.name,
        image=policy.image,
        tag=pick.tag,
        seen=len(tags),
        candidates=len(pairs),
        reason=pick.reason,
    )
