"""Where the control plane for the chart's install tests comes from (tests/servers/kube.py).

Without envtest assets the tests that need a kube-apiserver are skipped, saying what is missing
and how to get it; assets that are there but broken fail loudly instead of hiding behind a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import kube

VAR = "AUTOMATOR_TEST_ENVTEST_ASSETS"


def test_missing_assets_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(VAR, raising=False)
    nowhere = (tmp_path / "a" / "setup.sh", tmp_path / "b" / "setup.sh")
    monkeypatch.setattr(kube, "SETUP_CANDIDATES", nowhere)
    with pytest.raises(pytest.skip.Exception) as skipped:
        kube._assets(VAR, nowhere[0])
    reason = str(skipped.value)
    assert f"{VAR} is unset" in reason
    assert all(str(p) in reason for p in nowhere)
    assert "shared/envtest/setup.sh" in reason and "kube-apiserver" in reason


def test_assets_that_are_there_but_broken_fail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(VAR, str(tmp_path))
    (tmp_path / "etcd").write_text("#!/bin/sh\n")
    with pytest.raises(pytest.fail.Exception, match=r"etcd is missing or not executable"):
        kube._assets(VAR)

    monkeypatch.delenv(VAR)
    setup = tmp_path / "setup.sh"
    setup.write_text("echo 'no etcd here' >&2\nexit 3\n")
    with pytest.raises(pytest.fail.Exception, match=r"failed \(exit 3\): no etcd here"):
        kube._assets(VAR, setup)
