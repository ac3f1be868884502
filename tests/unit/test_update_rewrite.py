"""rewrite_text behaviour beyond the golden files: objects, conflicts, the re-parse check."""

from __future__ import annotations

import pytest

from automator.policy.model import DigestMode, Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import Decision, Decisions, ObjectId, rewrite_text
from automator.update import rewrite as rewrite_module


def decision(name: str, image: str, chosen: str, **kw: object) -> Decision:
    policy = Policy(
        name=name,
        image=parse_reference(image),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
        **kw,  # type: ignore[arg-type]
    )
    return Decision(policy, parse_reference(chosen))


APP = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2.0.0")
NGINX = decision("nginx", "nginx", "nginx:1.27.0", marker_less=True)


def test_nothing_to_do_returns_the_text_unparsed() -> None:
    text = "not: [valid\n"
    result = rewrite_text(text, "a.yaml", Decisions.of([APP]))
    assert result.text == text
    assert not result.changed
    assert result.warnings == ()  # no marker, no marker-less policy: never parsed


def test_objects_are_the_innermost_kubernetes_objects() -> None:
    text = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: one, namespace: a}
  spec:
    containers:
    - {name: c, image: "ghcr.io/org/app:1"} # {"$imagepolicy": "ns:app"}
- apiVersion: v1
  kind: Pod
  metadata: {name: two}
  spec:
    containers:
    - {name: c, image: "ghcr.io/org/app:1"} # {"$imagepolicy": "ns:app"}
"""
    result = rewrite_text(text, "list.yaml", Decisions.of([APP]))
    assert [(o.object, [c.line for c in o.changes]) for o in result.objects] == [
        (ObjectId("v1", "Pod", "a", "one"), [9]),
        (ObjectId("v1", "Pod", "", "two"), [15]),
    ]


def test_marker_less_pod_in_a_list_and_through_a_merge_key() -> None:
    text = """apiVersion: v1
kind: PodList
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: one}
  spec: &spec
    containers:
    - name: web
      image: nginx:1.25
- apiVersion: v1
  kind: Pod
  metadata: {name: two}
  spec:
    <<: *spec
"""
    result = rewrite_text(text, "pods.yaml", Decisions.of([NGINX]))
    assert result.text == text.replace("nginx:1.25", "nginx:1.27.0")
    assert len(result.changes) == 1  # the anchored scalar is edited once


def test_marker_less_is_off_unless_asked() -> None:
    plain = decision("nginx", "nginx", "nginx:1.27.0")
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx:1.25}\n"
    assert not rewrite_text(text, "p.yaml", Decisions.of([plain])).changed
    assert rewrite_text(text, "p.yaml", Decisions.of([plain]), marker_less=True).changed


def test_a_marker_wins_over_marker_less() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        '  - name: a\n    image: nginx:1.25 # {"$imagepolicy": "other:tag"}\n'
    )
    other = decision("other", "nginx", "nginx:1.26.0")
    result = rewrite_text(text, "p.yaml", Decisions.of([NGINX, other]))
    assert result.text == text.replace("image: nginx:1.25", "image: 1.26.0")
    assert [c.policy for c in result.changes] == ["other"]


def test_two_marker_less_policies_on_one_repository_are_reported() -> None:
    twin = decision("nginx-mainline", "docker.io/library/nginx", "nginx:1.28.0", marker_less=True)
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx:1.25}\n"
    result = rewrite_text(text, "p.yaml", Decisions.of([NGINX, twin]))
    assert not result.changed
    assert [str(w) for w in result.warnings] == [
        "p.yaml:6: image 'nginx:1.25' matches several marker-less policies (nginx, nginx-mainline); left as it is"
    ]


def test_two_markers_on_one_value_cannot_happen_but_two_policies_on_an_alias_are_reported() -> None:
    text = 'a: &img ghcr.io/org/app:1 # {"$imagepolicy": "ns:app"}\nb: *img\n'
    other = decision("ns:other", "ghcr.io/org/app", "ghcr.io/org/app:3.0.0", marker_less=True)
    result = rewrite_text(text, "values.yaml", Decisions.of([APP, other]))
    assert result.text == text.replace(":1 #", ":2.0.0 #")  # the marked scalar is not marker-less's


def test_kustomize_entry_without_new_tag_is_reported() -> None:
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: nginx\n  newName: nginx\n"
    )
    result = rewrite_text(text, "kustomization.yaml", Decisions.of([NGINX]))
    assert not result.changed
    assert [w.message for w in result.warnings] == ["'nginx' has no newTag to update; left as it is"]


def test_marker_less_digest_pins_move_only_for_digest_policies() -> None:
    digest = "sha256:" + "c" * 64
    tracking = decision("pinned", "nginx", f"nginx:1.27.0@{digest}", marker_less=True, digest=DigestMode.ALWAYS)
    without_digest = decision("pinned", "nginx", "nginx:1.27.0", marker_less=True, digest=DigestMode.ALWAYS)
    text = "image:\n  repository: nginx\n  tag: 1.25.0\n  digest: sha256:" + "0" * 64 + "\n"
    moved = rewrite_text(text, "values.yaml", Decisions.of([tracking]))
    assert [c.new for c in moved.changes] == ["1.27.0", digest]
    kept = rewrite_text(text, "values.yaml", Decisions.of([NGINX]))
    assert not kept.changed
    assert "does not track digests" in kept.warnings[0].message
    missing = rewrite_text(text, "values.yaml", Decisions.of([without_digest]))
    assert not missing.changed
    assert "chose no digest" in missing.warnings[0].message


def test_plain_string_image_gains_a_digest_when_the_policy_tracks_digests() -> None:
    digest = "sha256:" + "c" * 64
    tracking = decision("pinned", "nginx", f"nginx:1.27.0@{digest}", marker_less=True, digest=DigestMode.IF_NOT_PRESENT)
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx:1.25}\n"
    result = rewrite_text(text, "p.yaml", Decisions.of([tracking]))
    assert [c.new for c in result.changes] == [f"nginx:1.27.0@{digest}"]


def test_a_rewrite_that_does_not_read_back_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rewrite_module, "render", lambda value, style: "[" + value)
    text = 'image: ghcr.io/org/app:1 # {"$imagepolicy": "ns:app"}\n'
    result = rewrite_text(text, "a.yaml", Decisions.of([APP]))
    assert result.text == text
    assert not result.changed
    assert "file left untouched" in result.warnings[-1].message


def test_a_rewrite_that_changes_another_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rewrite_module, "render", lambda value, style: value + "\nextra: key")
    text = 'image: ghcr.io/org/app:1 # {"$imagepolicy": "ns:app"}\nother: x\n'
    result = rewrite_text(text, "a.yaml", Decisions.of([APP]))
    assert result.text == text
    assert "did not re-parse as expected" in result.warnings[-1].message


def test_changes_carry_file_line_old_new_policy() -> None:
    text = '\n\n# comment\nimage: ghcr.io/org/app:1 # {"$imagepolicy": "ns:app"}\n'
    [change] = rewrite_text(text, "dir/a.yaml", Decisions.of([APP])).changes
    assert (change.file, change.line, change.old, change.new, change.policy) == (
        "dir/a.yaml",
        4,
        "ghcr.io/org/app:1",
        "ghcr.io/org/app:2.0.0",
        "ns:app",
    )
