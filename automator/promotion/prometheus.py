"""Ask a Prometheus HTTP API whether a promotion query held over a soak window.

Two halves, as elsewhere in automator: the I/O at the edge and a pure judgement.

* :func:`query_range` calls ``GET <base>/api/v1/query_range`` (the range-query endpoint of the
  Prometheus HTTP API, https://prometheus.io/docs/prometheus/latest/querying/api/) with a bounded
  deadline and a bounded answer, and parses what came back into a :class:`RangeResult`. What the
  network or the server did (a refused connection, a timeout, an HTTP error, Prometheus's own
  ``"status": "error"``, an answer that is not its JSON) is never raised: it is the result's
  ``error``, so the gate holds and says why. Only what the user must fix here raises: a base URL
  that is not ``http(s)://host``, an unreadable token file (:class:`~automator.errors.ConfigError`).
* :func:`judge` turns a result into a :class:`QueryVerdict` for a :class:`PromotionQuery`. It
  holds (``ok`` False, with the reason a person reads) on a query error, an answer that is not a
  range of values (``matrix``), no series or no points, a NaN, a series that does not cover the
  window (its first point later than ``start + 2 steps``, its last earlier than ``end - 2
  steps``), and on any value of any series outside the bound. Only a window every series covers
  with every value inside the bound passes: proof, never the absence of evidence.

Credentials: URL userinfo (Basic) as httpx reads it, or a bearer token read from a file on each
call (a mounted Secret may rotate). The token never reaches a message; URLs in messages go through
:func:`automator.redact.redact_url`. httpx lives here as the promotion gate's own adapter (as it
does in ``registry/`` and ``notify/``); nothing in the policy core imports this module.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from automator.errors import ConfigError, CredentialError, CredentialUnavailable
from automator.policy.model import PromotionQuery
from automator.redact import redact, redact_url

DEFAULT_TIMEOUT = 10.0  # seconds for one query: the server is told too, so it stops evaluating
MAX_RESPONSE_BYTES = 16 << 20  # 16 MiB: 11,000 points of a few hundred series
MAX_POINTS = 11_000  # per series: Prometheus refuses a finer resolution itself
MAX_TOKEN_BYTES = 64 << 10
USER_AGENT = "automator-promotion/1"
COVERAGE_STEPS = 2  # a series may start (or stop) this many steps inside the window, no more


@dataclass(frozen=True)
class Point:
    """One value of a series at one evaluation time."""

    at: datetime
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range answer: its labels and its points, oldest first."""

    labels: tuple[tuple[str, str], ...] = ()
    points: tuple[Point, ...] = ()
    histograms: int = 0  # native-histogram samples, which are not numbers a bound can judge

    @property
    def name(self) -> str:
        """The series as PromQL writes it: ``{job="app",code="500"}`` (``{}`` for an aggregate)."""
        inner = ",".join(f"{k}={json.dumps(v)}" for k, v in self.labels)
        return "{" + inner + "}"


@dataclass(frozen=True)
class RangeResult:
    """What one range query answered; ``error`` set when it did not answer (the reason, redacted)."""

    expr: str
    step: float  # seconds between evaluations, as asked
    series: tuple[Series, ...] = ()
    result_type: str = "matrix"
    error: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryVerdict:
    """Whether the query held over the window; ``value``: the worst value seen (None: none seen)."""

    ok: bool
    value: float | None
    reason: str


# --- the pure half --------------------------------------------------------------------------------


def parse_answer(expr: str, step: float, status: int, body: bytes) -> RangeResult:
    """A :class:`RangeResult` from an HTTP status and body of ``/api/v1/query_range``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and doc.get("status") == "error":
        kind = doc.get("errorType")
        said = _text(doc.get("error")) or "no reason given"
        return RangeResult(expr, step, error=f"Prometheus answered {status} {_text(kind) or 'error'}: {said}")
    if status >= 300:
        hint = " (a redirect: point the URL at the Prometheus server itself)" if 300 <= status < 400 else ""
        return RangeResult(expr, step, error=f"Prometheus answered HTTP {status}{hint}")
    if not isinstance(doc, dict) or doc.get("status") != "success" or not isinstance(doc.get("data"), dict):
        return RangeResult(expr, step, error="the answer is not the Prometheus API's JSON (is the URL right?)")
    data: dict[str, Any] = doc["data"]
    warnings = tuple(_text(w) for w in doc.get("warnings") or () if isinstance(w, str))
    kind = data.get("resultType")
    if kind != "matrix":
        return RangeResult(expr, step, result_type=_text(kind) or "nothing", warnings=warnings)
    raw = data.get("result")
    if not isinstance(raw, list):
        return RangeResult(expr, step, error="the answer's data.result is not a list of series")
    series: list[Series] = []
    for item in raw:
        parsed = _series(item)
        if parsed is None:
            return RangeResult(expr, step, error="the answer holds a series that is not {metric, values}")
        series.append(parsed)
    return RangeResult(expr, step, tuple(series), warnings=warnings)


def _text(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + "..."


def _series(item: Any) -> Series | None:
    if not isinstance(item, dict):
        return None
    metric = item.get("metric", {})
    values = item.get("values", [])
    if not isinstance(metric, dict) or not isinstance(values, list):
        return None
    points: list[Point] = []
    for pair in values:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int | float)):
            return None
        try:
            value = float(pair[1])  # Prometheus writes values as strings: "0.004", "NaN", "+Inf"
        except (TypeError, ValueError):
            return None
        points.append(Point(datetime.fromtimestamp(pair[0], UTC), value))
    labels = tuple(sorted((str(k), str(v)) for k, v in metric.items()))
    histograms = item.get("histograms")
    return Series(labels, tuple(points), len(histograms) if isinstance(histograms, list) else 0)


def judge(result: RangeResult, query: PromotionQuery, start: datetime, end: datetime) -> QueryVerdict:
    """Whether ``query`` held over ``[start, end]`` in ``result``: every point of every series
    within the bound, every series covering the window. Anything less holds, with its reason."""
    if result.error is not None:
        return QueryVerdict(False, None, f"query error: {result.error}: held")
    if result.result_type != "matrix":
        return QueryVerdict(
            False, None, f"query error: the answer is a {result.result_type}, not a range of values: held"
        )
    series = [s for s in result.series if s.points]
    if not series:
        histograms = any(s.histograms for s in result.series)
        why = "native histograms, not numbers a bound can judge" if histograms else "no data"
        return QueryVerdict(False, None, f"{why}: held")
    several = len(result.series) > 1
    for s in series:
        nan = next((p for p in s.points if math.isnan(p.value)), None)
        if nan is not None:
            where = f" in {s.name}" if several else ""
            return QueryVerdict(False, None, f"NaN at {_clock(nan.at)}{where} (a division by zero?): held")
    worst_series, worst = max(((s, p) for s in series for p in s.points), key=lambda sp: _badness(query, sp[1].value))
    if not query.passes(worst.value):
        where = f" in {worst_series.name}" if several else ""
        return QueryVerdict(
            False, worst.value, f"{_num(worst.value)} at {_clock(worst.at)}{where} is not {query.bound}: held"
        )
    slack = timedelta(seconds=COVERAGE_STEPS * result.step)
    for s in result.series:
        where = f" of {s.name}" if several else ""
        if not s.points:
            return QueryVerdict(False, worst.value, f"no data{where}: held")
        if s.points[0].at > start + slack:
            first = _clock(s.points[0].at)
            return QueryVerdict(
                False, worst.value, f"no data{where} before {first}, the window starts at {_clock(start)}: held"
            )
        if s.points[-1].at < end - slack:
            last = _clock(s.points[-1].at)
            return QueryVerdict(
                False, worst.value, f"no data{where} after {last}, the window ends at {_clock(end)}: held"
            )
    sign = "<" if query.below is not None else ">"
    bound = query.below if query.below is not None else query.above
    assert bound is not None
    note = f" (worst of {len(result.series)} series)" if several else ""
    return QueryVerdict(True, worst.value, f"{_num(worst.value)} {sign} {_num(bound)} over {_span(end - start)}{note}")


def _badness(query: PromotionQuery, value: float) -> float:
    """Larger is worse: the highest value against ``below``, the lowest against ``above``."""
    return value if query.below is not None else -value


def _num(value: float) -> str:
    return f"{value:g}"


def _clock(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%H:%M" if at.second == 0 and at.microsecond == 0 else "%H:%M:%S")


def _span(delta: timedelta) -> str:
    """A window as the policy would write it: ``30m``, ``1h30m``, ``45s``."""
    seconds = delta.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out or "0s"


def step_for(start: datetime, end: datetime, points: int = 240) -> float:
    """A step (whole seconds, at least 1) giving about ``points`` evaluations over the window."""
    if points < 1:
        raise ValueError("points must be at least 1")
    return float(max(1, math.ceil((end - start).total_seconds() / points)))


# --- the I/O half ---------------------------------------------------------------------------------


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; ConfigError when it is not ``http(s)://host[:port][/path]``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"Prometheus URL {redact_url(base_url)!r} is not http(s)://host[:port][/path] "
            "(e.g. http://prometheus.monitoring:9090)"
        )
    return base_url.rstrip("/")


def read_token(token_file: Path) -> str:
    """The bearer token in ``token_file``, stripped; CredentialError when it cannot be read,
    CredentialUnavailable (retryable) when it is empty, as a Secret caught mid-rotation."""
    try:
        with token_file.open("rb") as fh:
            raw = fh.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise CredentialError(f"Prometheus token file {token_file}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise CredentialError(f"Prometheus token file {token_file} is over {MAX_TOKEN_BYTES:,} bytes: not a token")
    token = raw.decode("utf-8", errors="replace").strip()
    if not token:
        raise CredentialUnavailable(f"Prometheus token file {token_file} is empty")
    return token


def query_range(
    base_url: str,
    expr: str,
    start: datetime,
    end: datetime,
    step: float,
    *,
    token_file: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_RESPONSE_BYTES,
    transport: httpx.BaseTransport | None = None,
) -> RangeResult:
    """Evaluate ``expr`` every ``step`` seconds over ``[start, end]`` (timezone-aware) on the
    Prometheus at ``base_url``. Never raises for what the network or the server did (see the
    module docstring); ValueError for a window or step that cannot be asked.

    Prometheus evaluates at ``start + k * step`` up to ``end``, so a value in the last part of a
    step would go unseen; the evaluations are counted back from ``end`` instead (the first up to
    one step before ``start``): the latest value is always judged, and never a gap at the end."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    if not end > start:
        raise ValueError(f"the window must end after it starts ({start.isoformat()} .. {end.isoformat()})")
    if not step > 0 or (end - start).total_seconds() / step > MAX_POINTS:
        raise ValueError(f"step {step!r}: must be positive and give at most {MAX_POINTS:,} points over the window")
    base = check_base_url(base_url)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    secrets: tuple[str, ...] = ()
    if token_file is not None:
        token = read_token(token_file)
        headers["Authorization"] = f"Bearer {token}"
        secrets = (token,)
    first = end - timedelta(seconds=math.ceil((end - start).total_seconds() / step - 1e-9) * step)
    params = {
        "query": expr,
        "start": f"{first.timestamp():.3f}",
        "end": f"{end.timestamp():.3f}",
        "step": f"{step:g}",
        "timeout": f"{timeout:g}s",
    }
    where = redact_url(base)
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(transport=transport, follow_redirects=False, timeout=timeout, headers=headers) as client,
            client.stream("GET", f"{base}/api/v1/query_range", params=params) as response,
        ):
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    return RangeResult(
                        expr, step, error=f"the answer is over {max_bytes:,} bytes: narrow the query or widen the step"
                    )
                if time.monotonic() > deadline:
                    return RangeResult(expr, step, error=f"{where} did not answer within {timeout:g}s")
            status = response.status_code
    except httpx.TimeoutException:
        return RangeResult(expr, step, error=f"{where} did not answer within {timeout:g}s")
    except httpx.HTTPError as exc:
        return RangeResult(expr, step, error=f"cannot reach {where}: {type(exc).__name__}: {redact(str(exc), secrets)}")
    result = parse_answer(expr, step, status, bytes(body))
    if result.error is not None:
        result = RangeResult(expr, step, error=redact(result.error, secrets))
    return result


def check_query(
    base_url: str,
    query: PromotionQuery,
    start: datetime,
    end: datetime,
    step: float | None = None,
    **options: Any,
) -> QueryVerdict:
    """:func:`query_range` then :func:`judge`: the verdict on ``query`` over ``[start, end]``
    (``step``: :func:`step_for` the window when not given; ``options``: :func:`query_range`'s)."""
    step = step_for(start, end) if step is None else step
    return judge(query_range(base_url, query.expr, start, end, step, **options), query, start, end)


class Prometheuses:
    """The Prometheus of each cluster (``--prometheus NAME=URL``) as the scan asks it: an async
    callable ``(cluster, query, start, end) -> QueryVerdict`` (the query runs in a worker thread;
    a cluster without one holds, never passes)."""

    def __init__(self, urls: Mapping[str, str], *, token_file: Path | None = None) -> None:
        for url in urls.values():
            check_base_url(url)
        self.urls, self.token_file = dict(urls), token_file

    async def __call__(self, cluster: str, query: PromotionQuery, start: datetime, end: datetime) -> QueryVerdict:
        url = self.urls.get(cluster)
        if url is None:
            return QueryVerdict(False, None, f"no Prometheus for {cluster} (--prometheus {cluster}=URL): held")
        return await asyncio.to_thread(check_query, url, query, start, end, token_file=self.token_file)


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "Point",
    "Prometheuses",
    "QueryVerdict",
    "RangeResult",
    "Series",
    "check_base_url",
    "check_query",
    "judge",
    "parse_answer",
    "query_range",
    "read_token",
    "step_for",
]
