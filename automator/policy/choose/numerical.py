"""Numerical order (Flux ``numerical``): values read as decimal numbers; ``asc`` picks the largest.

Flux fails the whole policy when one value is not a number; here such tags are skipped
(a repository with a ``latest`` tag still works) and counted in the reason when nothing
is left.  ``NaN``/``Inf`` are not numbers for this purpose.  Equal numbers (``1``,
``1.0``, ``01``): the greater tag wins, whatever the input order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from automator.policy.choose.base import Candidate, Pick
from automator.policy.model import NumericalChoice, Order, Policy

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def choose_numerical(
    policy: Policy, cands: Sequence[Candidate], current: str | None, created: Mapping[str, datetime] | None
) -> Pick:
    assert isinstance(policy.choice, NumericalChoice)
    match = _NUMBER.match
    numbers = [
        (float(value), tag)
        for tag, value in cands
        if (value.isdigit() and value.isascii()) or match(value)  # plain digits skip the regex
    ]
    if not numbers:
        skipped = len(cands)
        return Pick(None, f"no numeric value among {skipped} candidate tag(s)" if skipped else "no candidate tags")
    if policy.choice.order is Order.ASC:
        return Pick(max(numbers)[1])
    lowest = min(n for n, _ in numbers)
    return Pick(max(tag for n, tag in numbers if n == lowest))
