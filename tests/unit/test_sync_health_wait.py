"""What ``--wait`` judges: every applied object of a kind that can report a status."""

from __future__ import annotations

import pytest

from automator.sync.health import waits_for
from automator.sync.model import Action, ObjectRef, ObjectResult


def applied(group: str, kind: str, action: Action = Action.UNCHANGED) -> ObjectResult:
    return ObjectResult(ObjectRef(group, "v1", kind, "ns", "x"), action)


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("apps", "Deployment"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("", "Pod"),
        ("", "PersistentVolumeClaim"),
        ("", "Service"),
        ("apps", "ReplicaSet"),
        ("policy", "PodDisruptionBudget"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("", "Namespace"),  # Terminating, when it is being deleted
        ("networking.k8s.io", "Ingress"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("example.com", "Widget"),
        ("example.com", "ConfigMap"),  # a custom kind named like a built-in one
    ],
)
def test_every_kind_that_can_report_a_status_is_waited_for(group: str, kind: str) -> None:
    assert waits_for(applied(group, kind))
    assert waits_for(applied(group, kind, Action.CREATED))


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("scheduling.k8s.io", "PriorityClass"),
    ],
)
def test_kinds_without_a_status_are_not_fetched(group: str, kind: str) -> None:
    assert not waits_for(applied(group, kind, Action.CREATED))


@pytest.mark.parametrize("action", [Action.PRUNED, Action.FAILED, Action.SKIPPED])
def test_objects_not_applied_are_not_waited_for(action: Action) -> None:
    assert not waits_for(applied("apps", "Deployment", action))
