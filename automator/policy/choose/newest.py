"""Newest build: the candidate whose image config has the latest ``created`` time.

The scanner fetches build times only for :func:`automator.policy.candidates` (one
manifest and config blob each), so filter first.  Naive times are taken as UTC; equal
times: the greater tag wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from automator.policy.choose.base import Candidate, Pick
from automator.policy.model import Policy


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def choose_newest(
    policy: Policy, cands: Sequence[Candidate], current: str | None, created: Mapping[str, datetime] | None
) -> Pick:
    if created is None:
        return Pick(None, "build times were not fetched for this newestBuild policy")
    dated = [(_aware(created[tag]), tag) for tag, _ in cands if tag in created]
    if not dated:
        return Pick(None, f"no build time known for any of {len(cands)} candidate tag(s)")
    return Pick(max(dated)[1])
