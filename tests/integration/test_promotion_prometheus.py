"""The promotion query against Debian's real Prometheus, scraping a metrics endpoint the test serves.

Each test uses its own metric, waits (polling, with a deadline) until Prometheus stored the samples
it needs, and asks over the window those samples cover: what is judged never depends on how fast
this machine is.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.policy.model import PromotionQuery
from automator.promotion import check_query, query_range
from tests.servers.prometheus import MetricsEndpoint, RunningPrometheus, metrics_endpoint, run_prometheus
from tests.servers.registry import free_port


@pytest.fixture(scope="module")
def endpoint() -> Iterator[MetricsEndpoint]:
    with metrics_endpoint() as served:
        yield served


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, endpoint: MetricsEndpoint) -> Iterator[RunningPrometheus]:
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), [endpoint.target]) as prom:
        yield prom


def test_a_metric_below_the_threshold_passes(endpoint: MetricsEndpoint, prometheus: RunningPrometheus) -> None:
    endpoint.set("app_error_ratio_low", 0.004)
    got = prometheus.wait_for_samples("app_error_ratio_low", lambda s: len(s) >= 3)
    start, end = got[0].at, got[-1].at
    query = PromotionQuery("max by (job) (app_error_ratio_low)", below=0.01)
    verdict = check_query(prometheus.base_url, query, start, end, step=1.0)
    assert verdict.ok, (verdict, got, prometheus.log_tail())
    assert verdict.value == 0.004
    assert verdict.reason.startswith("0.004 < 0.01 over ")


def test_a_metric_above_an_above_bound_passes(endpoint: MetricsEndpoint, prometheus: RunningPrometheus) -> None:
    endpoint.set("app_success_ratio", 0.999)
    got = prometheus.wait_for_samples("app_success_ratio", lambda s: len(s) >= 2)
    verdict = check_query(prometheus.base_url, PromotionQuery("app_success_ratio", above=0.99), got[0].at, got[-1].at)
    assert verdict.ok and verdict.value == 0.999, verdict


def test_crossing_the_threshold_holds_and_says_the_value(
    endpoint: MetricsEndpoint, prometheus: RunningPrometheus
) -> None:
    endpoint.set("app_error_ratio_crossing", 0.004)
    prometheus.wait_for_samples("app_error_ratio_crossing", lambda s: len(s) >= 2)
    endpoint.set("app_error_ratio_crossing", 0.03)
    got = prometheus.wait_for_samples("app_error_ratio_crossing", lambda s: s[-1].value == 0.03)
    assert got[0].value == 0.004  # the window starts healthy
    query = PromotionQuery("app_error_ratio_crossing", below=0.01)
    verdict = check_query(prometheus.base_url, query, got[0].at, got[-1].at, step=1.0)
    # the window ends at the one sample that crossed: the evaluations are counted back from its end
    assert not verdict.ok, (verdict, got)
    assert verdict.value == 0.03
    assert re.fullmatch(r"0\.03 at \d\d:\d\d(:\d\d)? is not below 0\.01: held", verdict.reason), verdict.reason


def test_bad_promql_holds_with_prometheus_s_reason(endpoint: MetricsEndpoint, prometheus: RunningPrometheus) -> None:
    endpoint.set("app_error_ratio_parse", 0.004)
    got = prometheus.wait_for_samples("app_error_ratio_parse", lambda s: len(s) >= 2)
    query = PromotionQuery("sum(rate(app_error_ratio_parse[1m]", below=0.01)
    verdict = check_query(prometheus.base_url, query, got[0].at, got[-1].at)
    assert not verdict.ok and verdict.value is None
    assert verdict.reason.startswith("query error: Prometheus answered 400 bad_data: ")
    assert "parse error" in verdict.reason and verdict.reason.endswith(": held")


def test_no_data_holds(endpoint: MetricsEndpoint, prometheus: RunningPrometheus) -> None:
    endpoint.set("app_error_ratio_present", 0.004)
    got = prometheus.wait_for_samples("app_error_ratio_present", lambda s: len(s) >= 2)
    query = PromotionQuery("app_error_ratio_never_served", below=0.01)
    verdict = check_query(prometheus.base_url, query, got[0].at, got[-1].at)
    assert (verdict.ok, verdict.value, verdict.reason) == (False, None, "no data: held")


def test_a_series_younger_than_the_window_holds(endpoint: MetricsEndpoint, prometheus: RunningPrometheus) -> None:
    endpoint.set("app_error_ratio_young", 0.004)
    got = prometheus.wait_for_samples("app_error_ratio_young", lambda s: len(s) >= 2)
    query = PromotionQuery("app_error_ratio_young", below=0.01)
    verdict = check_query(prometheus.base_url, query, got[0].at - timedelta(minutes=30), got[-1].at, step=10.0)
    assert not verdict.ok and verdict.value == 0.004
    assert "no data before " in verdict.reason and verdict.reason.endswith(": held")


# --- credentials never reach a message -------------------------------------------------------


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every query 401, with Prometheus's error shape, echoing the Authorization header."""

    seen: list[str]

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        type(self).seen.append(auth)
        body = json.dumps({"status": "error", "errorType": "unauthorized", "error": f"refused {auth}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def refusing_server() -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_Refusing,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="refusing", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_bearer_token_is_sent_and_never_printed(tmp_path: Path) -> None:
    token = "s3cret-token-value"
    (tmp_path / "token").write_text(token + "\n")
    query = PromotionQuery("up", below=1)
    start, end = WINDOW
    with refusing_server() as (url, seen):
        verdict = check_query(url, query, start, end, token_file=tmp_path / "token")
    assert seen == [f"Bearer {token}"]
    assert not verdict.ok and verdict.reason.startswith("query error: Prometheus answered 401 unauthorized")
    assert token not in verdict.reason and "***" in verdict.reason


def test_url_credentials_are_redacted_when_the_server_is_unreachable() -> None:
    start, end = WINDOW
    url = f"http://reader:hunter22@127.0.0.1:{free_port()}"
    result = query_range(url, "up", start, end, 1.0, timeout=5)
    assert result.error is not None and result.error.startswith("cannot reach http://reader:***@127.0.0.1:")
    assert "hunter22" not in result.error


WINDOW = (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
