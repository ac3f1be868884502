"""Debian's real ``prometheus`` on loopback, scraping a metrics endpoint whose values the test sets.

* :class:`MetricsEndpoint`: a plain ``http.server`` on 127.0.0.1 (a port the kernel picks) serving
  ``/metrics`` in the text exposition format (version 0.0.4), one gauge per name in
  :attr:`MetricsEndpoint.values`; the test changes a value with :meth:`MetricsEndpoint.set`.
* :func:`run_prometheus`: ``prometheus --config.file=... --storage.tsdb.path=<tmp>
  --web.listen-address=127.0.0.1:<port>`` scraping the endpoint every second; ready when
  ``/-/ready`` says so (polled with a deadline). It runs in its own process group, killed when the
  block ends.
* :meth:`RunningPrometheus.samples` reads the raw samples Prometheus stored for a metric (an
  instant query of a range selector), and :meth:`RunningPrometheus.wait_for_samples` polls it until
  a condition holds, with a deadline: tests wait for scrapes that way, never by sleeping.

``scripts/bootstrap.sh`` installs the ``prometheus`` package; without it the tests using this fail
(saying so), never skip.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.servers.fake_github import wait_until_listening
from tests.servers.registry import free_port

PROMETHEUS_BINARY = os.environ.get("AUTOMATOR_TEST_PROMETHEUS", "/usr/bin/prometheus")
READY_DEADLINE = 60.0
SAMPLES_DEADLINE = 60.0
SCRAPE_INTERVAL = "1s"


@dataclass
class MetricsEndpoint:
    """Gauges served at ``/metrics``; ``scrapes`` counts the requests Prometheus made."""

    values: dict[str, float] = field(default_factory=dict)
    scrapes: int = 0
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> str:
        """``127.0.0.1:<port>``, as a scrape config names it."""
        return self.base_url.split("://", 1)[1]

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.values[name] = value

    def exposition(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            lines = []
            for name, value in sorted(self.values.items()):
                lines += [f"# HELP {name} A value the test sets.", f"# TYPE {name} gauge", f"{name} {value!r}"]
        return ("\n".join(lines) + "\n").encode()


class _MetricsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    endpoint: MetricsEndpoint


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    server: _MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = self.server.endpoint.exposition()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def metrics_endpoint() -> Iterator[MetricsEndpoint]:
    """A :class:`MetricsEndpoint` on 127.0.0.1, on a port the kernel picks."""
    server = _MetricsServer(("127.0.0.1", 0), _MetricsHandler)
    server.endpoint = endpoint = MetricsEndpoint()
    port = int(server.server_address[1])
    endpoint.base_url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        wait_until_listening("127.0.0.1", port)
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Sample:
    at: datetime
    value: float


@dataclass
class RunningPrometheus:
    """A prometheus process on loopback and how to reach it."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def api(self, path: str, **params: str) -> dict[str, object]:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc: dict[str, object] = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            with err:
                raise AssertionError(f"prometheus answered {err.code} to {path}: {err.read()!r}") from None
        return doc

    def samples(self, metric: str, lookback: str = "10m") -> list[Sample]:
        """The raw samples of ``metric`` stored over the last ``lookback``, oldest first."""
        doc = self.api("/api/v1/query", query=f"{metric}[{lookback}]")
        data = doc["data"]
        assert isinstance(data, dict)
        out: list[Sample] = []
        for series in data["result"]:
            out += [Sample(datetime.fromtimestamp(t, UTC), float(v)) for t, v in series["values"]]
        return sorted(out, key=lambda s: s.at)

    def wait_for_samples(
        self, metric: str, until: Callable[[list[Sample]], bool], deadline: float = SAMPLES_DEADLINE
    ) -> list[Sample]:
        """Poll :meth:`samples` until ``until`` holds for them (AssertionError after ``deadline`` s)."""
        end = time.monotonic() + deadline
        got: list[Sample] = []
        while time.monotonic() < end:
            self._alive()
            got = self.samples(metric)
            if until(got):
                return got
            time.sleep(0.1)  # poll interval, bounded by the deadline
        raise AssertionError(f"prometheus did not store the samples wanted of {metric} in {deadline}s: {got}")

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")


def _wait_ready(prom: RunningPrometheus) -> None:
    end = time.monotonic() + READY_DEADLINE
    last: object = None
    while time.monotonic() < end:
        prom._alive()
        try:
            with urllib.request.urlopen(f"{prom.base_url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as err:  # 503 while it starts: close the answer it holds
            last = f"HTTP {err.code}"
            err.close()
        except OSError as err:
            last = err
        time.sleep(0.05)  # poll interval, bounded by the deadline
    raise RuntimeError(f"prometheus not ready within {READY_DEADLINE}s ({last}):\n{prom.log_tail()}")


@contextlib.contextmanager
def run_prometheus(
    workdir: Path, targets: list[str], scrape_interval: str = SCRAPE_INTERVAL
) -> Iterator[RunningPrometheus]:
    """Start prometheus scraping ``targets`` (``host:port``) every ``scrape_interval``; stop it on exit."""
    if not Path(PROMETHEUS_BINARY).exists():
        pytest.fail(f"{PROMETHEUS_BINARY} is not installed (make setup, or apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": "app", "scrape_interval": scrape_interval, "static_configs": [{"targets": targets}]}
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS_BINARY,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,  # its own process group, killed as one
        )
    prom = RunningPrometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(prom)
        yield prom
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
