"""Alphabetical order (Flux ``alphabetical``): ``asc`` picks the last value, ``desc`` the first.

Values compare as Go strings compare (by code point, which is byte order in UTF-8).
Two tags with the same extracted value: the greater tag wins, whatever the input order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from automator.policy.choose.base import Candidate, Pick
from automator.policy.model import AlphabeticalChoice, Order, Policy


def choose_alphabetical(
    policy: Policy, cands: Sequence[Candidate], current: str | None, created: Mapping[str, datetime] | None
) -> Pick:
    assert isinstance(policy.choice, AlphabeticalChoice)
    if not cands:
        return Pick(None, "no tag left after exclusions and filterTags")
    if policy.choice.order is Order.ASC:
        return Pick(max(cands, key=lambda c: (c[1], c[0]))[0])
    lowest = min(value for _, value in cands)
    return Pick(max(tag for tag, value in cands if value == lowest))
