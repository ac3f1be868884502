"""Drift decisions: subset comparison, JSON pointers, ignored fields, apply order."""

from __future__ import annotations

from typing import Any

import pytest

from automator.sync.diff import checksum, comparable, drifted, keep_live, parse_pointer, set_native_defaults, without
from automator.sync.engine import phase_of


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, []),
        ({"a": 1}, {"a": 2}, ["/a"]),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2, 3]}}, ["/a/b"]),
        ({"p": [{"port": 80}]}, {"p": [{"port": 80, "protocol": "TCP"}]}, []),
        ({"p": [{"port": 80}]}, {"p": [{"port": 81, "protocol": "TCP"}]}, ["/p/0/port"]),
        ({"x": 1}, {"x": 1.0}, []),
        ({"x": True}, {"x": 1}, ["/x"]),
        ({"x": "1"}, {"x": 1}, ["/x"]),
        ({"empty": {}, "none": None, "list": []}, {}, []),
        ({"a/b": {"c~d": 1}}, {"a/b": {"c~d": 2}}, ["/a~1b/c~0d"]),
        ({"missing": "x"}, {}, ["/missing"]),
        ({"metadata": {"creationTimestamp": None}}, {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}, []),
    ],
)
def test_drifted_lists_the_pointers_live_no_longer_matches(desired: Any, live: Any, expected: list[str]) -> None:
    assert drifted(desired, live) == expected


def test_ignored_fields_keep_their_live_value_and_never_compare() -> None:
    desired = {"spec": {"replicas": 1, "image": "a"}}
    live = {"spec": {"replicas": 5, "image": "a"}}
    ignored = [parse_pointer("/spec/replicas")]
    assert drifted(without(desired, ignored), live) == []
    assert keep_live(desired, live, ignored) == {"spec": {"replicas": 5, "image": "a"}}
    assert keep_live(desired, {"spec": {}}, ignored) == {"spec": {"image": "a"}}
    assert desired == {"spec": {"replicas": 1, "image": "a"}}  # inputs are never mutated


def test_pointers_must_be_absolute() -> None:
    assert parse_pointer("/metadata/annotations/a~1b") == ("metadata", "annotations", "a/b")
    with pytest.raises(ValueError, match="must start with '/'"):
        parse_pointer("spec/replicas")


def test_checksum_ignores_key_order_and_comparable_drops_bookkeeping() -> None:
    assert checksum({"a": 1, "b": {"c": 2}}) == checksum({"b": {"c": 2}, "a": 1})
    assert checksum({"a": 1}) != checksum({"a": 2})
    live = {"metadata": {"name": "x", "resourceVersion": "9", "managedFields": [], "uid": "u"}, "status": {}, "d": 1}
    assert comparable(live) == {"metadata": {"name": "x"}, "d": 1}


@pytest.mark.parametrize(
    ("group", "kind", "phase"),
    [
        ("apiextensions.k8s.io", "CustomResourceDefinition", 0),
        ("", "Namespace", 1),
        ("rbac.authorization.k8s.io", "ClusterRole", 2),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding", 2),
        ("storage.k8s.io", "StorageClass", 2),
        ("scheduling.k8s.io", "PriorityClass", 2),
        ("rbac.authorization.k8s.io", "Role", 3),
        ("apps", "Deployment", 3),
        ("example.com", "Widget", 3),
    ],
)
def test_apply_order(group: str, kind: str, phase: int) -> None:
    assert phase_of(group, kind) == phase


def test_port_protocols_are_defaulted_for_server_side_apply() -> None:
    svc: dict[str, Any] = {"kind": "Service", "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}
    set_native_defaults(svc)
    assert [p["protocol"] for p in svc["spec"]["ports"]] == ["TCP", "UDP"]
    cron: dict[str, Any] = {
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": 1}]}]}}}}},
    }
    set_native_defaults(cron)
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"
    cm: dict[str, Any] = {"kind": "ConfigMap", "data": {"ports": "x"}}
    set_native_defaults(cm)
    assert cm == {"kind": "ConfigMap", "data": {"ports": "x"}}
