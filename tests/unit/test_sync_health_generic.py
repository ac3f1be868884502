"""kstatus's generic rules for custom resources, and shapes a custom resource's status may take."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.health import NOTHING_REPORTED, status_of
from automator.sync.model import Health


def obj(api: str, kind: str, status: Any, generation: int = 2) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"generation": generation}, "status": status}


def cond(**types: str) -> list[dict[str, str]]:
    return [{"type": t, "status": v, "reason": "R"} for t, v in types.items()]


@pytest.mark.parametrize(
    ("live", "health"),
    [
        (obj("example.com/v1", "Widget", {"observedGeneration": 1, "conditions": cond(Ready="True")}), "Progressing"),
        (obj("example.com/v1", "Widget", {"observedGeneration": 2, "conditions": cond(Ready="True")}), "Ready"),
        (obj("example.com/v1", "Widget", {"conditions": cond(Ready="True")}), "Ready"),
        (obj("example.com/v1", "Widget", {"conditions": cond(Stalled="True", Ready="False")}), "Failed"),
        (obj("example.com/v1", "Widget", {"conditions": cond(Reconciling="True")}), "Progressing"),
        (obj("example.com/v1", "Widget", {"conditions": cond(Ready="Unknown")}), "Progressing"),
        # a custom kind named like a built-in workload follows the generic rules, not the Job's
        (obj("batch.volcano.sh/v1alpha1", "Job", {"conditions": cond(Ready="True")}), "Ready"),
        # shapes that are not Kubernetes conventions do not crash the wait: kstatus cannot read them
        (obj("example.com/v1", "Widget", "Active"), "Unknown"),
        (obj("example.com/v1", "Widget", {"conditions": {"Ready": True}}), "Unknown"),
        (obj("example.com/v1", "Widget", {"conditions": ["Ready", 3]}), "Unknown"),
        (obj("example.com/v1", "Widget", {"observedGeneration": "2"}), "Unknown"),
        # being deleted, whatever the conditions say
        (
            {
                **obj("example.com/v1", "Widget", {"conditions": cond(Ready="True")}),
                "metadata": {"generation": 2, "deletionTimestamp": "2026-12-01T00:00:00Z"},
            },
            "Terminating",
        ),
        # built-in kinds keep their own rules
        (obj("batch/v1", "Job", {"conditions": cond(Complete="True")}), "Ready"),
        (obj("apps/v1", "Deployment", {}), "Progressing"),
    ],
)
def test_custom_resources_follow_the_generic_rules(live: dict[str, Any], health: str) -> None:
    assert status_of(live)[0] == Health(health)


def reports_nothing(live: dict[str, Any]) -> bool:
    return status_of(live)[1] == NOTHING_REPORTED


def test_only_standard_conditions_or_a_generation_count_as_something_to_wait_for() -> None:
    """What --wait does not judge: Ready only because nothing kstatus reads says otherwise."""
    assert not reports_nothing(obj("example.com/v1", "Widget", {"conditions": cond(Ready="False")}))
    assert not reports_nothing(obj("example.com/v1", "Widget", {"conditions": cond(Ready="True")}))
    assert not reports_nothing(obj("example.com/v1", "Widget", {"observedGeneration": 2}))
    assert not reports_nothing(obj("example.com/v1", "Widget", "Active"))  # Unknown: waited for
    assert reports_nothing(obj("example.com/v1", "Widget", {"conditions": cond(Synced="True")}))
    assert reports_nothing(obj("example.com/v1", "Widget", None))
    assert reports_nothing(obj("networking.k8s.io/v1", "Ingress", {"loadBalancer": {}}))
