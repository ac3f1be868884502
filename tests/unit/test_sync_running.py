"""Which digests a workload's pods run: selector matching, the current template only, the
kubelet's ``imageID`` forms, and what counts as no digest."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.model import WorkloadReport
from automator.sync.running import MAX_DIGESTS, digest_of, running_digests, selects

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def deployment(image: str = "reg/app:1.1", *, selector: Any = None, init: str | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "app", "image": image}, {"name": "side", "image": "reg/side:2"}]}
    if init:
        pod["initContainers"] = [{"name": "init", "image": init}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
        },
    }


def pod(
    name: str,
    digest: str,
    *,
    image: str = "reg/app:1.1",
    labels: dict[str, str] | None = None,
    namespace: str = "apps",
    side: str = B,
    prefix: str = "reg/app@",
    **meta: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "web"} if labels is None else labels,
            **meta,
        },
        "spec": {"containers": [{"name": "app", "image": image}, {"name": "side", "image": "reg/side:2"}]},
        "status": {
            "containerStatuses": [
                {"name": "app", "image": image, "imageID": f"{prefix}{digest}" if digest else ""},
                {"name": "side", "image": "reg/side:2", "imageID": f"reg/side@{side}"},
            ]
        },
    }


def test_the_pods_of_the_current_template_give_each_container_its_digest() -> None:
    pods = [pod("web-1", A), pod("web-2", A), pod("web-old", C, image="reg/app:1.0")]
    assert running_digests(deployment(), pods) == (A, B)


def test_pods_of_one_tag_with_two_digests_are_all_named_most_pods_first() -> None:
    pods = [pod("web-1", A), pod("web-2", C), pod("web-3", C)]
    assert running_digests(deployment(), pods) == (f"{C},{A}", B)


def test_at_most_a_few_digests_are_kept_per_container() -> None:
    many = [pod(f"web-{i}", f"sha256:{i:064x}") for i in range(MAX_DIGESTS + 3)]
    assert len(running_digests(deployment(), many)[0].split(",")) == MAX_DIGESTS


@pytest.mark.parametrize(
    "image_id, digest",
    [
        (f"docker-pullable://reg/app@{A}", A),  # dockershim
        (f"reg.example:5000/team/app@{A}", A),  # containerd, CRI-O
        (A, ""),  # a bare ID: the local image's config, not what the registry serves
        ("", ""),  # not pulled yet
        ("reg/app@sha256:short", ""),
        (f"docker://{A}", ""),
    ],
)
def test_only_a_repository_digest_in_image_id_counts(image_id: str, digest: str) -> None:
    assert digest_of(image_id) == digest


def test_pods_elsewhere_unlabelled_or_being_deleted_are_not_the_workloads() -> None:
    pods = [
        pod("other-ns", A, namespace="elsewhere"),
        pod("other-app", A, labels={"app": "api"}),
        pod("going", A, deletionTimestamp="2026-12-02T01:00:00Z"),
        pod("waiting", "", side=""),  # scheduled, not pulled yet
    ]
    assert running_digests(deployment(), pods) == ()


@pytest.mark.parametrize(
    "selector, labels, selected",
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "1"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "api"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": ""}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}, {"tier": ""}, False),
        ({"matchExpressions": ["tier"]}, {"tier": ""}, False),
        ({}, {"app": "web"}, False),  # selects by nothing: no pod is taken to be the workload's
        (None, {"app": "web"}, False),
        ("app=web", {"app": "web"}, False),
    ],
)
def test_label_selectors_select_as_kubernetes_does(selector: Any, labels: dict[str, str], selected: bool) -> None:
    assert selects(selector, labels) is selected


def test_init_containers_come_first_as_the_images_do() -> None:
    live = deployment(init="reg/init:1")
    p = pod("web-1", A)
    p["spec"]["initContainers"] = [{"name": "init", "image": "reg/init:1"}]
    p["status"]["initContainerStatuses"] = [{"name": "init", "imageID": f"reg/init@{C}"}]
    assert running_digests(live, [p]) == (C, A, B)


def test_a_pod_is_its_own_and_a_cronjobs_pods_are_its_jobs() -> None:
    single = pod("solo", A, labels={})
    assert running_digests(single, [single]) == (A, B)
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "apps"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": single["spec"]}}}},
    }
    owned = pod("backup-29000000-x", A, labels={}, ownerReferences=[{"kind": "Job", "name": "backup-29000000"}])
    other = pod("backup-db-1-x", C, labels={}, ownerReferences=[{"kind": "Job", "name": "backup-db-1"}])
    assert running_digests(cron, [owned, other]) == (A, B)


def test_the_record_keeps_the_digests_beside_the_images() -> None:
    live = running_digests(deployment(), [pod("web-1", A), pod("web-2", C)])
    from datetime import UTC, datetime

    w = WorkloadReport("Deployment", "apps", "web", ("reg/app:1.1", "reg/side:2"), "Ready", "", datetime.now(UTC), live)
    assert w.running_digest(0) == (A, C) and w.running_digest(1) == (B,) and w.running_digest(2) == ()
    back = WorkloadReport.from_json(w.to_json())
    assert back.digests == live and back.since == w.since.replace(microsecond=0)
    assert "digests" not in WorkloadReport.from_json({**w.to_json(), "digests": []}).to_json()
