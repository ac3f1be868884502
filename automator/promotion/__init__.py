"""promotion stage: the proof a version needs before a later environment gets it (issue #18).

The policy says which earlier clusters a version must have run in, healthy, and for how long
(:class:`automator.policy.model.PromotionRule`); this package holds what checks the proof:
the judgement of the clusters' reports (:mod:`automator.promotion.gate`, pure; the scan's gates
apply it) and the Prometheus query that must hold over the soak window.

Public API::

    query_range(base_url, expr, start, end, step, *, token_file=None, timeout=10.0) -> RangeResult
    judge(result, query, start, end) -> QueryVerdict          (pure)
    check_query(base_url, query, start, end, step=None, ...) -> QueryVerdict
    Prometheuses({cluster: url}, token_file=None)              the scan's prober (async)
    gate.judge_step(step, repository, tag, evidence, now, better=...) -> StepVerdict   (pure)
"""

from automator.promotion.prometheus import (
    Point,
    Prometheuses,
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
    "Prometheuses",
    "QueryVerdict",
    "RangeResult",
    "Series",
    "check_query",
    "judge",
    "parse_answer",
    "query_range",
    "step_for",
]
