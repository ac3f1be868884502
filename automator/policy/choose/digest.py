"""Digest tracking: follow one mutable tag (``latest``, ``stable``); the scanner adds its digest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from automator.policy.choose.base import Candidate, Pick
from automator.policy.model import DigestChoice, Policy


def choose_digest(
    policy: Policy, cands: Sequence[Candidate], current: str | None, created: Mapping[str, datetime] | None
) -> Pick:
    assert isinstance(policy.choice, DigestChoice)
    tag = policy.choice.tag
    if any(t == tag for t, _ in cands):
        return Pick(tag)
    return Pick(None, f"tag {tag!r} is not in the repository's tag list")
