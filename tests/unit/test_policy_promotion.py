"""``spec.promotion`` (issue #18): how a policy declares it, how a bad one fails when it loads, and
the pure judgement of a Prometheus range answer against the policy's query."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.errors import ConfigError, CredentialError, CredentialUnavailable
from automator.policy import PolicySet, load_policies
from automator.policy.model import PromotionQuery, PromotionRule, PromotionStep
from automator.policy.schema_models import CLUSTER_NAME
from automator.promotion import Point, RangeResult, Series, judge, parse_answer, query_range, step_for
from automator.promotion.prometheus import read_token

NATIVE = """\
apiVersion: automator.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: app-production
spec:
  image: ghcr.io/example/app
  policy: {semver: {range: '>=1'}}
"""
FLUX = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: apps
spec:
  image: ghcr.io/example/app
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: app
  namespace: apps
  annotations:
{annotations}
spec:
  imageRepositoryRef:
    name: app
  policy:
    semver:
      range: 1.x
"""
PROMOTION = """\
  promotion:
    after:
      - cluster: staging
        healthyFor: 30m
        query:
          expr: 'sum(rate(http_errors_total[5m])) / sum(rate(http_requests_total[5m]))'
          below: 0.01
      - cluster: canary.eu-1
        healthyFor: 1h30m
"""


def load_text(tmp_path: Path, text: str) -> PolicySet:
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    return load_policies(tmp_path)


def test_native_promotion_becomes_a_frozen_rule(tmp_path: Path) -> None:
    ps = load_text(tmp_path, NATIVE + PROMOTION)
    assert ps.errors == ()
    [policy] = ps.policies
    query = PromotionQuery("sum(rate(http_errors_total[5m])) / sum(rate(http_requests_total[5m]))", below=0.01)
    assert policy.promotion == PromotionRule(
        (
            PromotionStep("staging", 1800.0, query, healthy_for="30m"),
            PromotionStep("canary.eu-1", 5400.0, None, healthy_for="1h30m"),
        ),
        field="spec.promotion",
    )
    assert policy.promotion.clusters == ("staging", "canary.eu-1")
    with pytest.raises(AttributeError):
        policy.promotion.after[0].cluster = "prod"  # type: ignore[misc]


def test_no_promotion_is_none(tmp_path: Path) -> None:
    [policy] = load_text(tmp_path, NATIVE).policies
    assert policy.promotion is None


def test_an_above_bound(tmp_path: Path) -> None:
    text = NATIVE + "  promotion: {after: [{cluster: staging, healthyFor: 10m, query: {expr: up, above: 0}}]}\n"
    [policy] = load_text(tmp_path, text).policies
    assert policy.promotion is not None
    assert policy.promotion.after[0].query == PromotionQuery("up", below=None, above=0.0)


AFTER = "  promotion:\n    after:\n"
STEP = "      - cluster: staging\n        healthyFor: 30m\n"


@pytest.mark.parametrize(
    ("extra", "line", "field", "message"),
    [
        ("  promotion: {}\n", 8, "spec.promotion.after", "missing required field 'after'"),
        ("  promotion: {after: []}\n", 8, "spec.promotion.after", "at least 1 item"),
        (AFTER + STEP + "        soak: 1h\n", 12, "spec.promotion.after[0].soak", "unknown field 'soak'"),
        ("  promotion:\n    afterr: []\n", 9, "spec.promotion.afterr", "did you mean 'after'?"),
        (
            AFTER + STEP + "        query: {expr: up, below: 1, threshold: 2}\n",
            12,
            "spec.promotion.after[0].query.threshold",
            "fields allowed here: expr, below, above",
        ),
        (
            AFTER + STEP + "      - cluster: production\n        healthyFor: 1h\n" + STEP,
            14,
            "spec.promotion.after[2].cluster",
            "cluster 'staging' is named twice (also after[0])",
        ),
        (
            AFTER + "      - cluster: staging\n        healthyFor: 3d\n",
            11,
            "spec.promotion.after[0].healthyFor",
            "'3d'",
        ),
        (
            AFTER + "      - cluster: staging\n        healthyFor: 0s\n",
            11,
            "spec.promotion.after[0].healthyFor",
            "must be positive",
        ),
        (
            AFTER + "      - cluster: staging\n        healthyFor: 30\n",
            11,
            "spec.promotion.after[0].healthyFor",
            "quote",
        ),
        (
            AFTER + "      - healthyFor: 30m\n",
            10,
            "spec.promotion.after[0].cluster",
            "missing required field 'cluster'",
        ),
        (
            AFTER + "      - cluster: Staging EU\n        healthyFor: 30m\n",
            10,
            "spec.promotion.after[0].cluster",
            "not a cluster name as --cluster NAME=KUBECONFIG names them",
        ),
        (
            AFTER + STEP + "        query: {expr: '  ', below: 0.01}\n",
            12,
            "spec.promotion.after[0].query.expr",
            "expr is empty",
        ),
        (
            AFTER + STEP + "        query: {expr: up, below: 0.01, above: 0.5}\n",
            12,
            "spec.promotion.after[0].query",
            "set exactly one of below, above (got both)",
        ),
        (
            AFTER + STEP + "        query: {expr: up}\n",
            12,
            "spec.promotion.after[0].query",
            "set exactly one of below, above (got neither)",
        ),
        (
            AFTER + STEP + "        query: {expr: up, below: '0.01'}\n",
            12,
            "spec.promotion.after[0].query.below",
            "valid number",
        ),
        (
            AFTER + STEP + "        query: {expr: up, below: .nan}\n",
            12,
            "spec.promotion.after[0].query.below",
            "finite number",
        ),
    ],
)
def test_bad_promotion_fails_when_it_loads_with_file_line_and_field(
    tmp_path: Path, extra: str, line: int, field: str, message: str
) -> None:
    ps = load_text(tmp_path, NATIVE + extra)
    assert not ps.policies
    [err] = ps.errors
    assert (err.path, err.line, err.field) == ("p.yaml", line, field), str(err)
    assert message in err.reason, str(err)
    assert "app-production" in ps.refused  # its markers are left alone, never handed to a look-alike


def test_the_cluster_names_are_the_ones_cluster_flags_accept() -> None:
    from automator.sync.report import _CLUSTER_NAME

    assert CLUSTER_NAME.pattern == _CLUSTER_NAME.pattern


def test_flux_reads_promotion_from_its_annotation(tmp_path: Path) -> None:
    notes = "    automator.dev/promotion: |\n      after:\n        - {cluster: staging, healthyFor: 30m}\n"
    ps = load_text(tmp_path, FLUX.format(annotations=notes))
    assert ps.errors == ()
    [policy] = ps.policies
    assert policy.promotion == PromotionRule(
        (PromotionStep("staging", 1800.0, healthy_for="30m"),), field="annotation automator.dev/promotion"
    )


@pytest.mark.parametrize(
    ("notes", "message"),
    [
        (
            "    automator.dev/promotion: '{after: [{cluster: staging, healthyFor: 30}]}'\n",
            "annotation automator.dev/promotion: [after[0].healthyFor] Input should be a valid string",
        ),
        (
            "    automator.dev/promotion: |\n      after:\n        - {cluster: a, healthyFor: 1m}\n"
            "        - {cluster: a, healthyFor: 2m}\n",
            "annotation automator.dev/promotion: [after[1].cluster] cluster 'a' is named twice",
        ),
        ("    automator.dev/promotion: staging\n", "not a mapping of the spec.promotion fields"),
        (
            "    automator.dev/promotion: "
            '\'{"after": [{"cluster": "s", "healthyFor": "1m", "query": {"expr": "up"}}]}\'\n',
            "[after[0].query] set exactly one of below, above (got neither)",
        ),
    ],
)
def test_flux_annotation_errors_name_the_annotation(tmp_path: Path, notes: str, message: str) -> None:
    ps = load_text(tmp_path, FLUX.format(annotations=notes))
    assert not ps.policies
    [err] = ps.errors
    assert (err.field, err.line) == ("metadata.annotations.automator.dev/promotion", 16), str(err)
    assert message in str(err)
    assert "apps:app" in ps.refused


def test_flux_without_the_annotation_has_no_promotion(tmp_path: Path) -> None:
    ps = load_text(tmp_path, FLUX.format(annotations="    automator.dev/min-age: 1h\n"))
    [policy] = ps.policies
    assert policy.promotion is None


def test_schema_has_the_promotion_field() -> None:
    from automator.policy.schema import policy_schema

    defs = policy_schema()["$defs"]
    assert "promotion" in defs["NativeSpec"]["properties"]
    assert set(defs["PromotionSpec"]["properties"]) == {"after"}
    assert set(defs["PromotionStepSpec"]["properties"]) == {"cluster", "healthyFor", "query"}
    assert set(defs["PromotionStepSpec"]["required"]) == {"cluster", "healthyFor"}
    assert set(defs["PromotionQuerySpec"]["properties"]) == {"expr", "below", "above"}


# --- judging a range answer (pure) -------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=30)
BELOW = PromotionQuery("ratio", below=0.01)
ABOVE = PromotionQuery("ratio", above=0.99)


def series(values: list[float], *, first: int = 0, step: int = 60, **labels: str) -> Series:
    points = tuple(Point(T0 + timedelta(seconds=first + i * step), v) for i, v in enumerate(values))
    return Series(tuple(sorted(labels.items())), points)


def result(*many: Series, step: float = 60.0) -> RangeResult:
    return RangeResult("ratio", step, tuple(many))


FULL = 31  # points at 12:00, 12:01, ... 12:30


@pytest.mark.parametrize(
    ("answer", "query", "ok", "value", "reason"),
    [
        (result(series([0.004] * FULL)), BELOW, True, 0.004, "0.004 < 0.01 over 30m"),
        (result(series([0.001, 0.004, 0.002] + [0.0] * 28)), BELOW, True, 0.004, "0.004 < 0.01 over 30m"),
        (result(series([0.999] * FULL)), ABOVE, True, 0.999, "0.999 > 0.99 over 30m"),
        (
            result(series([0.004] * FULL, pod="a"), series([0.005] * FULL, pod="b")),
            BELOW,
            True,
            0.005,
            "0.005 < 0.01 over 30m (worst of 2 series)",
        ),
        (
            result(series([0.004] * 4 + [0.03, 0.02] + [0.0] * 25)),
            BELOW,
            False,
            0.03,
            "0.03 at 12:04 is not below 0.01: held",
        ),
        (result(series([0.01] * FULL)), BELOW, False, 0.01, "0.01 at 12:00 is not below 0.01: held"),
        (
            result(series([0.999] * 10 + [0.5] + [0.999] * 20)),
            ABOVE,
            False,
            0.5,
            "0.5 at 12:10 is not above 0.99: held",
        ),
        (
            result(series([0.004] * FULL, pod="a"), series([0.004] * 7 + [0.2] + [0.0] * 23, pod="b")),
            BELOW,
            False,
            0.2,
            '0.2 at 12:07 in {pod="b"} is not below 0.01: held',
        ),
        (
            result(series([0.004, math.nan] + [0.0] * 29)),
            BELOW,
            False,
            None,
            "NaN at 12:01 (a division by zero?): held",
        ),
        (result(series([math.inf] * FULL)), BELOW, False, math.inf, "inf at 12:00 is not below 0.01: held"),
        (result(), BELOW, False, None, "no data: held"),
        (result(Series((("pod", "a"),), ())), BELOW, False, None, "no data: held"),
        (
            result(series([0.004] * FULL, pod="a"), Series((("pod", "b"),), ())),
            BELOW,
            False,
            0.004,
            'no data of {pod="b"}: held',
        ),
        (
            result(series([0.004] * 28, first=180)),
            BELOW,
            False,
            0.004,
            "no data before 12:03, the window starts at 12:00: held",
        ),
        (result(series([0.004] * 29, first=120)), BELOW, True, 0.004, "0.004 < 0.01 over 30m"),  # within 2 steps
        (
            result(series([0.004] * 20)),
            BELOW,
            False,
            0.004,
            "no data after 12:19, the window ends at 12:30: held",
        ),
        (RangeResult("ratio", 60.0, error="Prometheus answered HTTP 502"), BELOW, False, None, None),
        (
            RangeResult("ratio", 60.0, result_type="vector"),
            BELOW,
            False,
            None,
            "query error: the answer is a vector, not a range of values: held",
        ),
        (
            RangeResult("ratio", 60.0, (Series((), (), histograms=31),)),
            BELOW,
            False,
            None,
            "native histograms, not numbers a bound can judge: held",
        ),
    ],
)
def test_judge(answer: RangeResult, query: PromotionQuery, ok: bool, value: float | None, reason: str | None) -> None:
    verdict = judge(answer, query, T0, END)
    assert (verdict.ok, verdict.value) == (ok, value)
    assert verdict.reason == (reason or "query error: Prometheus answered HTTP 502: held")


def test_parse_a_matrix() -> None:
    body = (
        b'{"status":"success","data":{"resultType":"matrix","result":['
        b'{"metric":{"job":"app"},"values":[[1772366400,"0.004"],[1772366460.5,"NaN"],[1772366520,"+Inf"]]}]}}'
    )
    got = parse_answer("ratio", 60.0, 200, body)
    assert got.error is None and got.result_type == "matrix"
    [s] = got.series
    assert s.labels == (("job", "app"),) and s.name == '{job="app"}'
    assert [p.at for p in s.points] == [T0, T0 + timedelta(seconds=60.5), T0 + timedelta(seconds=120)]
    assert s.points[0].value == 0.004 and math.isnan(s.points[1].value) and s.points[2].value == math.inf


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}',
            "Prometheus answered 400 bad_data: 1:5: parse error: unexpected end of input",
        ),
        (
            422,
            b'{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}',
            "Prometheus answered 422 execution: many-to-many matching not allowed",
        ),
        (502, b"<html>Bad Gateway</html>", "Prometheus answered HTTP 502"),
        (302, b"", "Prometheus answered HTTP 302 (a redirect: point the URL at the Prometheus server itself)"),
        (200, b"<html>Grafana</html>", "the answer is not the Prometheus API's JSON (is the URL right?)"),
        (200, b'{"status":"success","data":{"resultType":"matrix","result":{}}}', "data.result is not a list"),
        (
            200,
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}',
            "a series that is not {metric, values}",
        ),
    ],
)
def test_parse_errors(status: int, body: bytes, error: str) -> None:
    got = parse_answer("ratio", 60.0, status, body)
    assert got.error is not None and error in got.error
    assert not judge(got, BELOW, T0, END).ok


def test_parse_another_result_type_is_judged_a_hold() -> None:
    got = parse_answer("ratio", 60.0, 200, b'{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}')
    assert got.result_type == "scalar" and got.error is None
    assert judge(got, BELOW, T0, END).reason == "query error: the answer is a scalar, not a range of values: held"


def test_step_for_the_window() -> None:
    assert step_for(T0, END) == 8.0  # 1800 s / 240 points, rounded up
    assert step_for(T0, T0 + timedelta(seconds=10)) == 1.0


# --- what the client refuses before it asks ------------------------------------------------------


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://prometheus", "http://", "http://user:pw@h:9090/?x=1"])
def test_a_base_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="is not http") as caught:
        query_range(url, "up", T0, END, 60.0)
    assert ":pw@" not in str(caught.value)


def test_the_token_file_is_read_or_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  abc.def  \n")
    assert read_token(tmp_path / "token") == "abc.def"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CredentialUnavailable, match="is empty"):
        read_token(tmp_path / "empty")
    with pytest.raises(CredentialError, match="cannot read it"):
        read_token(tmp_path / "missing")


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        (T0.replace(tzinfo=None), END, 60.0),
        (END, T0, 60.0),
        (T0, END, 0.0),
        (T0, END, 0.1),  # 18,000 points: more than Prometheus answers
    ],
)
def test_a_window_or_step_that_cannot_be_asked(start: datetime, end: datetime, step: float) -> None:
    with pytest.raises(ValueError):
        query_range("http://127.0.0.1:9", "up", start, end, step)
