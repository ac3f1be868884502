"""promotion stage: the proof a version needs before a later environment gets it (issue #18).

The policy says which earlier clusters a version must have run in, healthy, and for how long
(:class:`automator.policy.model.PromotionRule`); this package holds what checks the proof. For
now: the Prometheus query that must hold over the soak window. The gate that reads the clusters'
reports and holds a policy's choice lands with the rest of #18.

Public API::

    query_range(base_url, expr, start, end, step, *, token_file=None, timeout=10.0) -> RangeResult
    judge(result, query, start, end) -> QueryVerdict          (pure)
    check_query(base_url, query, start, end, step=None, ...) -> QueryVerdict
"""

from automator.promotion.prometheus import (
    Point,
    QueryVerdict,
    RangeResult,
    Series,
    check_query,
    judge,
    parse_answer,
    query_range,
    step_for,
)

__all__ = [
    "Point",
    "QueryVerdict",
    "RangeResult",
    "Series",
    "check_query",
    "judge",
    "parse_answer",
    "query_range",
    "step_for",
]
