"""Both services' ``/metrics`` say which build runs and how the process fares."""

from __future__ import annotations

import platform
import re

import pytest
from prometheus_client import generate_latest

from automator import __version__
from automator.buildinfo import build_commit
from automator.daemon.metrics import Metrics as AutomatorMetrics
from automator.sync.service import Metrics as SyncMetrics


@pytest.mark.parametrize(("metrics", "program"), [(AutomatorMetrics, "automator"), (SyncMetrics, "sync")])
def test_build_info_and_process_metrics_are_exposed(metrics: type, program: str) -> None:
    text = generate_latest(metrics().registry).decode()
    [info] = [line for line in text.splitlines() if line.startswith("automator_build_info{")]
    labels = dict(re.findall(r'(\w+)="([^"]*)"', info))
    assert labels == {
        "program": program,
        "version": __version__,
        "commit": build_commit(),
        "python": platform.python_version(),
    }
    assert info.endswith(" 1.0")
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "python_info"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    assert re.search(r"^python_gc_collections_total\{", text, re.M)


def test_signature_verifications_are_counted_on_the_automators_metrics() -> None:
    from automator.verify import Verifier, set_default_verifier

    verifier = Verifier()
    verifier.stats.results["verified"] += 3
    verifier.stats.cached += 1
    set_default_verifier(verifier)
    text = generate_latest(AutomatorMetrics().registry).decode()
    assert 'automator_signature_verifications_total{result="verified"} 3.0' in text
    assert 'automator_signature_verifications_total{result="unsigned"} 0.0' in text
    assert 'automator_signature_verifications_total{result="cached"} 1.0' in text
