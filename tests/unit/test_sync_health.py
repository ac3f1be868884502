"""kstatus rollout rules as a pure function of one live object."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.health import status_of
from automator.sync.model import Health


def deploy(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": status or {}}


READY = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}


@pytest.mark.parametrize(
    ("obj", "health", "reason"),
    [
        (deploy(READY), Health.READY, "available"),
        (deploy({**READY, "observedGeneration": 2}), Health.PROGRESSING, "generation"),
        (deploy(), Health.PROGRESSING, "generation"),
        (deploy({**READY, "updatedReplicas": 1}), Health.PROGRESSING, "updatedReplicas 1/2"),
        (deploy({**READY, "availableReplicas": 1}), Health.PROGRESSING, "availableReplicas 1/2"),
        (deploy({**READY, "replicas": 3}), Health.PROGRESSING, "old replicas"),
        (
            deploy({**READY, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
            Health.FAILED,
            "deadline",
        ),
        (
            {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
             "status": {"observedGeneration": 1, "readyReplicas": 2, "currentReplicas": 2,
                        "currentRevision": "a", "updateRevision": "b"}},
            Health.PROGRESSING, "rolling update",
        ),
        (
            {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
             "status": {"observedGeneration": 1, "readyReplicas": 2, "currentReplicas": 2,
                        "currentRevision": "b", "updateRevision": "b"}},
            Health.READY, "ready",
        ),
        (
            {"kind": "DaemonSet", "metadata": {"generation": 1},
             "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                        "updatedNumberScheduled": 3, "numberAvailable": 2, "numberReady": 3}},
            Health.PROGRESSING, "numberAvailable 2/3",
        ),
        ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
         Health.READY, "completed"),
        ({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
         Health.FAILED, "failed"),
        ({"kind": "Job", "status": {}}, Health.PROGRESSING, "not complete"),
    ],
)  # fmt: skip
def test_status_of(obj: dict[str, Any], health: Health, reason: str) -> None:
    got, why = status_of(obj)
    assert got is health
    assert reason in why
