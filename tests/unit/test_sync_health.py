"""kstatus rollout rules as a pure function of one live object (every other kind: test_sync_health_kstatus)."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.health import status_of
from automator.sync.model import Health


def deploy(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": status or {}}


READY = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
         "conditions": [{"type": "Available", "status": "True"}]}  # fmt: skip
STS_READY = {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2,
             "currentRevision": "a", "updateRevision": "a"}  # fmt: skip
DS_READY = {"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "updatedNumberScheduled": 3, "numberAvailable": 3, "numberReady": 3}  # fmt: skip


def sts(status: dict[str, Any], *, partition: int | None = None, strategy: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": 2}
    if strategy:
        spec["updateStrategy"] = {"type": strategy}
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    return {"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": spec, "status": status}


def ds(status: dict[str, Any], *, strategy: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"updateStrategy": {"type": strategy}} if strategy else {}
    return {"kind": "DaemonSet", "metadata": {"generation": 2}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "health", "reason"),
    [
        (deploy(READY), Health.READY, "available"),
        (deploy({**READY, "observedGeneration": 2}), Health.PROGRESSING, "generation"),
        (deploy(), Health.PROGRESSING, "replicas 0/2"),
        (deploy({**READY, "conditions": []}), Health.PROGRESSING, "Deployment not Available"),
        (deploy({**READY, "updatedReplicas": 1}), Health.PROGRESSING, "updatedReplicas 1/2"),
        (deploy({**READY, "availableReplicas": 1}), Health.PROGRESSING, "availableReplicas 1/2"),
        (deploy({**READY, "replicas": 3}), Health.PROGRESSING, "old replicas"),
        (
            deploy({**READY, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
            Health.FAILED,
            "deadline",
        ),
        (sts(STS_READY), Health.READY, "ready at the update revision"),
        (sts({**STS_READY, "replicas": 1}), Health.PROGRESSING, "replicas 1/2"),
        (sts({**STS_READY, "readyReplicas": 1}), Health.PROGRESSING, "readyReplicas 1/2"),
        (sts({**STS_READY, "replicas": 3}), Health.PROGRESSING, "1 extra replicas pending termination"),
        (sts({**STS_READY, "currentReplicas": 1}), Health.PROGRESSING, "currentReplicas 1/2"),
        (sts({**STS_READY, "updateRevision": "b"}), Health.PROGRESSING, "rolling update in progress: revision a -> b"),
        (sts({**STS_READY, "observedGeneration": 1}), Health.PROGRESSING, "generation"),
        # A canary held by a partition is done once the ordinals above it are updated (kstatus).
        (sts({**STS_READY, "updateRevision": "b", "updatedReplicas": 1}, partition=1), Health.READY, "partitioned"),
        (sts({**STS_READY, "updateRevision": "b", "updatedReplicas": 0}, partition=1), Health.PROGRESSING,
         "updatedReplicas 0/1"),
        (sts({**STS_READY, "updateRevision": "b"}, strategy="OnDelete"), Health.READY, "OnDelete"),
        (ds(DS_READY), Health.READY, "available"),
        (ds({**DS_READY, "numberAvailable": 2}), Health.PROGRESSING, "numberAvailable 2/3"),
        (ds({**DS_READY, "currentNumberScheduled": 2}), Health.PROGRESSING, "currentNumberScheduled 2/3"),
        (ds({**DS_READY, "updatedNumberScheduled": 1}), Health.PROGRESSING, "updatedNumberScheduled 1/3"),
        # unlike a StatefulSet's, an OnDelete DaemonSet's rollout waits for its pods to be replaced (kstatus)
        (ds({**DS_READY, "updatedNumberScheduled": 1}, strategy="OnDelete"), Health.PROGRESSING,
         "updatedNumberScheduled 1/3"),
        (ds({"observedGeneration": 2}), Health.PROGRESSING, "desiredNumberScheduled"),
        ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
         Health.READY, "completed"),
        ({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
         Health.FAILED, "failed"),
        ({"kind": "Job", "status": {}}, Health.PROGRESSING, "not started"),
        ({"kind": "Job", "status": {"startTime": "2026-12-01T00:00:00Z"}}, Health.PROGRESSING, "running"),
    ],
)  # fmt: skip
def test_status_of(obj: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(obj)
    assert got is health
    assert reason in why
